"""Which of a layer's arguments mean something for it: a conv's batch-norm options (`bn_scale`,
`bn_eps`, `bn_momentum`, ...) configure a batch norm that exists only with `bn=true`. `incdsl expand`
shows, and `incdsl diff` compares, only the arguments that apply (Inception-ResNet-v2's up-projection
`conv(320, bn=false, bias=true)` inherits `bn_scale=false` from `defaults` but has no batch norm)."""
from __future__ import annotations


def applies(attrs: dict, name: str) -> bool:
    """Does the argument `name` of a layer with arguments `attrs` change anything? False only for a
    `bn_*` option of a conv, dwconv or sepconv without its batch norm (`bn` false)."""
    if name.startswith("bn_") and "bn" in attrs:
        return bool(attrs["bn"])
    return True
