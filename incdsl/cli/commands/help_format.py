"""An argparse help formatter that shows each option's default, as `incdsl train --help` needs."""
from __future__ import annotations

import argparse
import re

# help text that already states its default: "(default: ...)", "(default 0.1", "default: up to", "default 10"
STATES_DEFAULT = re.compile(r"\(default|default[:)]|default \d")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's `ArgumentDefaultsHelpFormatter`, less its noise: "(default: X)" after an option's
    help only when there is a default to state (not None, not a store_true/false switch's own
    False/True) and the help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        quiet = (default in (None, [], argparse.SUPPRESS) or isinstance(default,
                                                                        bool) or not action.option_strings
                 or STATES_DEFAULT.search(text) is not None)
        if quiet:
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"
