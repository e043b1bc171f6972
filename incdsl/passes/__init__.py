"""Passes over the graph IR: plain functions, run in order, each leaving the IR valid."""
from .count import count
from .outputs import inference_layers
from .shapes import infer_shapes

__all__ = ["infer_shapes", "count", "inference_layers"]
