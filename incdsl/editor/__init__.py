"""What editors use: the formatter (`incdsl fmt`) and the language server (`incdsl lsp`)."""
