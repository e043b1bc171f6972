"""`incdsl.backends.keras_export.export`, the path the README has always given: the Keras export
lives in backends/keras/export.py."""
from .keras.export import export

__all__ = ["export"]
