"""`python -m incdsl ...`: runs the `incdsl` command (`incdsl.cli.main`) and exits with its code."""
import sys

from .cli import main

sys.exit(main())
