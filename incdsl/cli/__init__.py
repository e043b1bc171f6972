"""The `incdsl` program: main.py (argument parsing and dispatch; `incdsl.cli.main:main` is the entry
point), the subcommands (commands/), and guard.py (signals and standard output around a command)."""
