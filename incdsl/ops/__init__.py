"""The ops of the language, each in one place: its arguments (kinds.py), its rule returning output
shape, weight shapes and MACs (rules.py, result.py), its row in the table (table.py) and the text
that describes a layer of it (describe.py). Import from here: `from incdsl.ops import OPS, normalize`.
"""
from .applies import applies
from .describe import describe
from .kinds import (ACTIVATION_NAMES, ACTIVATIONS, FITS, KINDS, LEAKY_RELU_SLOPE, MAX_DIM, POSITIVE_MIN, REQUIRED, Arg,
                    ArgError, Symbol, show_value)
from .result import BN_KEYS, NON_TRAINABLE, ZERO, Count, Rule, Shape, ShapeError
from .rules import affine_of, fitted_kernel
from .table import ALIASES, DEFAULTS, KEYWORD_ONLY, OPS, Op, apply, infer, normalize

__all__ = ["ACTIVATION_NAMES", "ACTIVATIONS", "ALIASES", "BN_KEYS", "DEFAULTS", "FITS", "KEYWORD_ONLY", "KINDS",
           "LEAKY_RELU_SLOPE", "MAX_DIM", "NON_TRAINABLE", "OPS", "POSITIVE_MIN", "REQUIRED", "ZERO", "Arg",
           "ArgError", "Count", "Op", "Rule", "Shape", "ShapeError", "Symbol", "affine_of", "applies", "apply", "describe", "fitted_kernel",
           "infer", "normalize", "show_value"]
