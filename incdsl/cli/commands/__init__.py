"""The command line's subcommands, one module each (`incdsl compile` is `commands/compile.py`):
each has `add_parser(sub)` and `run(args)`, reads its arguments, calls the Python API, and prints;
`incdsl.cli.main` registers them. Shared arguments live in `spec_args`; no command imports
`incdsl.cli.main`."""
