"""incdsl: a graph DSL and compiler for Inception-family CNNs."""
from .errors import SpecError, Span, UsageError
from .network import Network, Spec, load

__version__ = "0.1.0"
__all__ = ["load", "Spec", "Network", "SpecError", "Span", "UsageError", "__version__"]
