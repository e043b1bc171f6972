"""`python -m incdsl ...`: runs the `incdsl` command (`incdsl.cli.main.main`) and exits with its code."""
import sys

from .cli.main import main

sys.exit(main())
