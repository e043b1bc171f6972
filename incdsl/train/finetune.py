"""Fine-tuning for `incdsl train`: start from pretrained weights (`--weights`), freeze part of the
network (`--freeze NAME|backbone`), and unfreeze it for a second phase at a lower learning rate
(`--unfreeze-after N`, `--unfreeze-lr`), the usual transfer-learning recipe (Keras' guide
"Transfer learning & fine-tuning": train the new head on a frozen base, then the whole model at a
much lower rate).

- What loads: every layer of the file whose arrays fit this spec's shapes (.keras by layer name,
  PyTorch .pth/.pt/.safetensors through incdsl/weights/torch.py); layers that do not fit, like a
  classifier for another number of classes, keep their initial values and are listed. Other files
  (keras.applications .h5 / .weights.h5) load whole, as `incdsl compile --weights` does.
- What freezes: `--freeze NAME` freezes the layer or module call NAME and every layer it depends on
  (its ancestors in the graph); `--freeze backbone` everything but the heads, i.e. the layers the
  last feature map before the main head depends on. Frozen layers have `trainable=False`, so their
  batch norms run in inference mode, as Keras does for `trainable=False` (keras.layers.BatchNormalization).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from ..errors import DataError, OptionError, SpecError, missing_file
from ..ir.graph import ancestors
from ..text import first_line
from ..weights.arrays import keras_name, weight_shapes
from .data import seek


def backbone(net) -> set[str]:
    """Every layer the main head's last feature map (HxWxC) depends on, that map included."""
    main = next(h for h in net.heads if not h.train_only)
    node = main.node
    while len(net.shapes[node]) != 3:
        node = net.layers[node].inputs[0]
    return ancestors(net.layers, [node])


def frozen_nodes(net, name: str) -> set[str]:
    """The layers `--freeze NAME` freezes: `backbone`, or NAME (a layer or module call) and every
    layer it depends on. Raises UsageError for an unknown name."""
    if name == "backbone":
        return backbone(net)
    blocks = {b.name: b.output for b in net.graph.blocks}
    node = blocks.get(name, name)
    if node not in net.layers:
        from ..errors import did_you_mean
        hint = did_you_mean(name, list(blocks) + list(net.layers))
        tail = "; {hint}" if hint else " (try {freeze} backbone)"
        raise OptionError("{freeze} {name}: network {net} has no layer or module call of that name" + tail,
                          name=name, net=net.name, **({"hint": hint} if hint else {}))
    return ancestors(net.layers, [node])


def set_trainable(core, net, nodes: set[str], trainable: bool) -> int:
    """Set `trainable` on the Keras layers of `nodes` (the layer and its batch norm); returns how
    many weighted nodes that touched."""
    layers = {layer.name: layer for layer in core.layers}
    count = 0
    for n in nodes:
        parts = [layers.get(keras_name(n)), layers.get(keras_name(n, "bn"))]
        for layer in (p for p in parts if p is not None):
            layer.trainable = trainable
        count += bool(weight_shapes(net, n)) and any(p is not None for p in parts)
    return count


def load_pretrained(core, net, path) -> str:
    """Load what fits from `path` into `core` (the training model of `net`); returns a one-line
    account. Raises SpecError when nothing fits."""
    from ..backends.keras.build import load_weights_file
    from ..backends.keras.weights import from_keras, to_keras
    from ..weights.torch import is_torch_file, read_state_dict, torch_weights

    path = Path(path)
    if not path.is_file():
        raise missing_file("weights file", path)
    if is_torch_file(path):
        got = torch_weights(net, read_state_dict(path), str(path), ordered=path.suffix != ".safetensors",
                            partial=True)
    elif path.suffix == ".keras":
        try:
            got = from_keras(keras.models.load_model(path, compile=False), net)
        except Exception as e:  # not a Keras archive
            raise DataError(f"cannot read {path} as a Keras model: {first_line(e, '')}") from None
    else:
        how = load_weights_file(core, net, path)
        return f"loaded every layer from {path} ({how})"
    fits = {n: a for n, a in got.items()
            if set(a) == set(weight_shapes(net, n))
            and all(np.shape(v) == tuple(weight_shapes(net, n)[k]) for k, v in a.items())}
    if not fits:
        raise SpecError(f"no layer of {path} fits network {net.name}", hint="was it saved from another spec?")
    weighted = [n for n in net.layers if weight_shapes(net, n)]
    fresh = [n for n in weighted if n not in fits]
    to_keras(core, net, {**from_keras(core, net), **fits})
    left = (
        f"; left at their initial values: {', '.join(fresh[:4])}{' ...' if len(fresh) > 4 else ''}"
        if fresh
        else ""
    )
    return f"loaded {len(fits)} of {len(weighted)} weighted layers from {path}{left}"


def prepare(core, net, config) -> list[str]:
    """--weights and --freeze on a freshly built training model, before it is compiled."""
    notes = []
    if config.weights:
        notes.append(load_pretrained(core, net, config.weights))
    if config.freeze:
        frozen = frozen_nodes(net, config.freeze)
        n = set_trainable(core, net, frozen, False)
        trainable = sum(int(np.prod(w.shape)) for w in core.trainable_weights)
        if not trainable:
            raise OptionError("{freeze} {name} leaves nothing to train in network {net}", name=config.freeze,
                              net=net.name)
        later = f", unfrozen after epoch {config.unfreeze_after}" if config.unfreeze_after else ""
        notes.append(
            f"frozen: {n} weighted layers up to {config.freeze} ({trainable:,} params left to train{later})")
    return notes


def fit_in_phases(model, core, net, config, recompile, start: int = 0, progress=None, **fit_args):
    """model.fit, in two phases with --unfreeze-after N: N epochs as compiled, then every layer
    trainable and the model recompiled at the lower rate (`recompile(lr)`), to the last epoch. The
    run's state goes on across the switch (`carry_optimizer_state`): the optimizer's step count, so
    the learning-rate schedule continues (at the new base rate), and the momentum (or RMSProp's and
    Adam's moving averages) of every variable that trained in the first phase; the newly trainable
    ones start from zero. A run resumed after epoch `start` > N starts in the second phase; one
    resumed after epoch N exactly restores in a first fit of no epochs (its backup holds the first
    phase's optimizer) and then switches. `progress`: a keras.callbacks.ProgbarLogger counting the
    run's epochs (headers in both phases), added to the callbacks when given. Returns a History
    whose `history` holds both phases."""
    if progress is not None:
        fit_args["callbacks"] = list(fit_args.get("callbacks", [])) + [progress]
    n = config.unfreeze_after
    if not config.freeze or not n or n >= config.epochs:
        return model.fit(epochs=config.epochs, **fit_args)
    lr = config.unfreeze_lr if config.unfreeze_lr is not None else config.learning_rate / 10
    if start > n:  # resumed in the second phase: its optimizer, so the backup's state fits
        set_trainable(core, net, set(net.layers), True)
        recompile(lr)
        return model.fit(initial_epoch=start, epochs=config.epochs, **fit_args)
    first = model.fit(epochs=n, **fit_args)
    old = model.optimizer
    set_trainable(core, net, set(net.layers), True)
    recompile(lr)
    carry_optimizer_state(old, model.optimizer, model.trainable_variables)
    # a restore in the first fit set the epoch Keras starts from (BackupAndRestore's _initial_epoch),
    # which fit prefers to its argument
    model._initial_epoch = None
    if fit_args.get("steps_per_epoch"):  # an image folder's stream: on at epoch n's first batch
        seek(fit_args["x"], n * fit_args["steps_per_epoch"])
    second = model.fit(initial_epoch=n, epochs=config.epochs, **fit_args)
    for key, values in first.history.items():
        second.history[key] = list(values) + list(second.history.get(key, []))
    return second


def carry_optimizer_state(old, new, variables) -> int:
    """Build optimizer `new` for `variables` and give it `old`'s state: the step count
    (`iterations`) and every slot variable (momentum, velocity...) of a variable both optimize.
    Keras names a slot after its variable's path (`add_variable_from_reference`), so the names
    match across two optimizers of one model; the learning rate itself is `new`'s. Returns how many
    variables were carried."""
    new.build(variables)
    before = {v.name: v for v in old.variables}
    carried = 0
    for v in new.variables:
        o = before.get(v.name)
        if o is not None and v.name != "learning_rate" and tuple(o.shape) == tuple(v.shape):
            v.assign(o)
            carried += 1
    return carried


def still_frozen(model, net, config) -> None:
    """Mark the layers that stay frozen to the end (no second phase) in another model of `net`."""
    n = config.unfreeze_after
    if config.freeze and not (n and n < config.epochs):
        set_trainable(model, net, frozen_nodes(net, config.freeze) & set(net.inference), False)


def phase_config(config, lr: float):
    """A copy of `config` with the learning rate `lr`: the settings of the second (unfrozen) phase."""
    return dataclasses.replace(config, lr=lr)
