"""Bringing weights and models in from other tools: keras.applications, PyTorch, ONNX."""
