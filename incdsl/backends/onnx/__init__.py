"""The ONNX backend: `export` (convert.py) with the direct emitter (direct.py, ops.py) or tf2onnx,
verified against the numpy reference and onnxruntime (verify.py)."""
from .convert import export

__all__ = ["export"]
