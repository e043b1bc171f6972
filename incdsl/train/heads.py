"""What the losses need from the IR: each head's units, logits or probabilities, loss weight.
No Keras here: spec problems surface before Keras loads."""
from __future__ import annotations

from ..errors import SpecError
from ..text import ParamText
from .config import HeadLoss


def _last_activation(net, node: str) -> tuple[str | None, str]:
    """The activation a head ends in, looking through layers that keep values as they are."""
    while True:
        layer = net.layers[node]
        if layer.op == "act":
            return layer.attrs["fn"], node
        if layer.op in ("dropout", "flatten") and layer.inputs:
            node = layer.inputs[0]
            continue
        return layer.attrs.get("act"), node


def head_losses(net, aux_weight: float | None = None) -> list[HeadLoss]:
    """One entry per head, in net.heads order: units, logits or probabilities, loss weight."""
    out = []
    for head in net.heads:
        if len(head.shape) != 1:
            raise SpecError(f"output '{head.name}' gives a {'x'.join(map(str, head.shape))} map; "
                            "training needs a flat vector of class scores per output",
                            _head_span(net, head.name),
                            hint="end the output in gap/flatten and dense(classes)")
        act, node = _last_activation(net, head.node)
        if act not in (None, "softmax", "log_softmax"):
            raise SpecError(f"output '{head.name}' ends in {act}; a classifier's output must be logits "
                            "(no activation) or softmax", net.layers[node].span)
        # softmax(log_softmax(x)) == softmax(x), so log-probabilities count as logits.
        weight = head.loss_weight
        if head.train_only and aux_weight is not None:
            weight = aux_weight
        out.append(HeadLoss(head.name, head.shape[0], act != "softmax", float(weight), head.train_only))
    return out


def main_head(net):
    """The network's one inference output (not `train_output`), the one accuracy and the saved model
    use. Raises `incdsl.errors.SpecError` when there is none or more than one."""
    heads = [h for h in net.heads if not h.train_only]
    if len(heads) != 1:
        names = ", ".join(h.name for h in heads) or "none"
        raise SpecError(f"training needs exactly one main (inference) output; the network has {names}",
                        hint="mark auxiliary outputs `train_output`")
    return heads[0]


def _head_span(net, name: str):
    return next((o.span for o in net.graph.outputs if o.name == name), None)


def check_classes(net, classes: list[str], source: str) -> None:
    """Every head must score exactly as many classes as the data has."""
    for head in net.heads:
        units = head.shape[-1]
        if units != len(classes):
            node = _last_activation(net, head.node)[1]
            span = net.layers[node].span or _head_span(net, head.name)
            shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
            raise SpecError(
                f"output '{head.name}' scores {units} classes but {source} has {len(classes)} ({shown})",
                span,
                label=f"{units} units",
                hint=ParamText("{set_classes}={n}", words={"set_classes": "build the network with classes"},
                               n=len(classes)) if "classes" in net.params else
                f"give the network {len(classes)} outputs")

