"""Which layers the inference graph keeps: those that feed an output that is not training-only."""
from __future__ import annotations

from ..ir.graph import Graph, ancestors


def inference_layers(g: Graph) -> frozenset[str]:
    """The names of the layers the inference graph keeps: every layer some output not marked
    training-only reads, directly or through other layers. Auxiliary classifiers (GoogLeNet's
    aux1/aux2, Inception-v3's aux) and the layers only they read are left out, as
    keras.applications and torchvision do at inference (torchvision's `aux_logits=False`)."""
    return frozenset(ancestors(g.layers, [o.node for o in g.outputs if not o.train_only]))
