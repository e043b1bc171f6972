"""incdsl: a graph DSL and compiler for Inception-family CNNs."""
from .errors import SpecError, Span, UsageError
from .network import Network, Spec, load
from .backends import keras_register as _keras_register

_keras_register.install()  # custom Keras layers load after `import incdsl`; Keras itself is not imported

__version__ = "0.1.0"
__all__ = ["load", "Spec", "Network", "SpecError", "Span", "UsageError", "__version__"]
