"""Backends: each translates a checked `incdsl.network.Network` to another form and never
recomputes shapes (it reads `net.shapes` and `net.pads`).

- `keras` (with `keras_layers`, `keras_apps`, `keras_weights`, `keras_file`): a Keras 3 model
  (incdsl[keras]);
- `onnx` (`onnx_direct`, `onnx_tf2onnx`, `onnx_verify`, `onnx_weights`): an ONNX file
  (incdsl[onnx]);
- `numpy_ref`: a small numpy forward pass, the reference ONNX is checked against without Keras;
- `dot`, `html`: drawings of the graph.

TensorFlow, Keras, onnx and torch are imported inside these modules only, lazily, so the front end
(parse, check, count, summary) starts without them.
"""
