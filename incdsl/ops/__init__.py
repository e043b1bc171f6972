"""The ops of the language, each in one place: its arguments (kinds.py), its rule returning output
shape, weight shapes and MACs (rules.py, result.py), its row in the table (table.py) and the text
that describes a layer of it (describe.py); the groups of ops that passes and backends treat alike
(groups.py: CONVS, WEIGHTED, POOLS, WINDOWED, KEEPS_CHANNELS) and the activation table
(activations.py: each activation's Keras name, ONNX builder, numpy function, torch name).
Import from here: `from incdsl.ops import OPS, normalize`.
"""
from . import groups
from .activations import ELU_ALPHA, LEAKY_RELU_SLOPE, Activation
from .activations import TABLE as ACTIVATION_TABLE
from .applies import applies
from .describe import describe
from .kinds import (
                    ACTIVATION_NAMES,
                    ACTIVATIONS,
                    FITS,
                    KINDS,
                    MAX_DIM,
                    POSITIVE_MIN,
                    REQUIRED,
                    Arg,
                    ArgError,
                    Symbol,
                    show_value,
)
from .result import BN_KEYS, NON_TRAINABLE, ZERO, Count, Rule, Shape, ShapeError
from .rules import affine_of, fitted_kernel
from .table import ALIASES, DEFAULTS, KEYWORD_ONLY, OPS, Op, apply, infer, normalize

__all__ = ["ACTIVATION_NAMES", "ACTIVATION_TABLE", "ACTIVATIONS", "ALIASES", "BN_KEYS", "DEFAULTS",
           "ELU_ALPHA", "FITS",
           "KEYWORD_ONLY", "KINDS", "LEAKY_RELU_SLOPE", "MAX_DIM", "NON_TRAINABLE", "OPS", "POSITIVE_MIN",
           "REQUIRED",
           "ZERO", "Activation", "Arg", "ArgError", "Count", "Op", "Rule", "Shape", "ShapeError", "Symbol",
           "affine_of",
           "applies", "apply", "describe", "fitted_kernel", "groups", "infer", "normalize", "show_value"]
