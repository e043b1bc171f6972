"""What incdsl says about a checked network and its variants: the summary report, counting
conventions, roofline, compare/fit/scaling sweeps, diff and plots. Front end only: nothing heavy."""
