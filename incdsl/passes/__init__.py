"""Passes over the graph IR: plain functions from the facts they need to those they add, run in
order (PIPELINE, passes/pipeline.py) into one frozen `Record` (passes/record.py), each leaving
the IR valid (passes/verify.py)."""
from .count import count
from .outputs import inference_layers
from .pipeline import PIPELINE, Pass
from .prune import prune
from .record import Record
from .shapes import infer_shapes

__all__ = ["infer_shapes", "count", "inference_layers", "prune", "PIPELINE", "Pass", "Record"]
