"""The variants an experiment trains, planned as `incdsl compare` and `incdsl fit` plan them
(`sweep.plan` for the grid, `scaling.pareto_grid` for a params or MACs budget), each built and
measured before any training starts, so that a variant that does not build is an error naming it.
No Ray and no Keras here."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..analysis.sweep import build, plan, row_of
from ..errors import NothingFits
from ..network import Spec
from ..train.heads import check_classes, head_losses, main_head
from .options import ExploreConfig


@dataclass(frozen=True)
class Planned:
    """One variant to train: its `label` (as `incdsl compare` labels it: "width=0.5 size=96"), `sets`
    (the spec arguments that make it, as given), its total `params` and `macs` (per image, counted
    as `incdsl fit` counts budgets: training-only heads included) and `folder`, the name of its trial
    folder under the experiment folder's trials/."""
    label: str
    sets: dict
    params: int
    macs: int
    folder: str
    # the name Keras logs the main head's accuracy under ('fc_accuracy' beside aux heads)
    acc_key: str = "accuracy"


def plan_variants(config: ExploreConfig, classes: list[str] | None = None) -> list[Planned]:
    """The variants of `config`: the grid of `config.sweep` on top of `config.sets` (one variant, the
    spec with `sets`, without a sweep); with a `params` or `macs` budget, only the grid's Pareto set
    under it, as `incdsl fit --vary A=... --vary B=...` finds it (no fitting variant has every swept
    value at least as large). Every variant is built and counted here, and its outputs checked
    against `classes` (the data folder's class names, None for synthetic data) as `incdsl train`
    checks them. Raises `SpecError` naming the variant that does not build or does not score as
    many classes as the data folder has, `UsageError` for an unknown parameter, `NothingFits` (exit 1) when
    no variant meets the budgets."""
    spec = Spec(config.spec, config.network)
    sweeps = [(name, [_text(v) for v in values]) for name, values in config.sweep.items()]
    sets = {k: _text(v) for k, v in config.sets.items()}
    variants = plan([spec], sets, sweeps)
    rows, keys = [], []
    for v in variants:  # SpecError "while building variant 'size=8' of ..." before any training
        net = build(v)
        head_losses(net)  # what training refuses (an output that is not a class vector), refused now
        if classes is not None:  # as train.train checks it, before Ray starts rather than in each trial
            check_classes(net, classes, f"the data folder {config.data}"
                          + (f" (variant '{v.label}')" if config.sweep else ""))
        # as train.model.accuracy_key
        keys.append("accuracy" if len(net.heads) == 1 else f"{main_head(net).name}_accuracy")
        rows.append(row_of(net, v.label, v.sets))
    if config.params is not None or config.macs is not None:
        from ..analysis.scaling import pareto_grid
        budgets = {m: getattr(config, m) for m in ("params", "macs") if getattr(config, m) is not None}
        _, front = pareto_grid(spec, sweeps, budgets, sets=sets)
        keep = {tuple(_key(p.values[n]) for n, _ in sweeps) for p in front}
        chosen = [(v, r, k) for v, r, k in zip(variants, rows,
                                               keys) if tuple(_key(v.sets[n]) for n, _ in sweeps) in keep]
        if not chosen:  # pareto_grid raises NothingFits first; kept for safety of the matching above
            raise NothingFits("nothing fits: no variant of the grid meets the budgets")
    else:
        chosen = list(zip(variants, rows, keys))
    out, folders = [], set()
    for v, r, key in chosen:
        folder = folder_name(v.label)
        while folder in folders:  # two labels that differ only in characters a file name cannot hold
            folder += "_"
        folders.add(folder)
        out.append(Planned(v.label, dict(v.sets), r.total.params, r.total.macs, folder, key))
    return out


def folder_name(label: str) -> str:
    """A trial folder's name from a variant label: "width=0.5 size=96" -> "width=0.5_size=96"
    (letters, digits and . _ = + - only)."""
    name = re.sub(r"[^A-Za-z0-9._=+-]", "-", label.replace(" ", "_")).strip(".")
    return name or "variant"


def _text(value) -> str:
    """A parameter value as the command line writes it (the spec parses the text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key(value):
    """A swept value comparable between the plan (text) and the Pareto set (numbers)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
