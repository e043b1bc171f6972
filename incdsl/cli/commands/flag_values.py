"""The text of the command line's option values, parsed into what the library takes: budgets
(`--params 10M`, `--memory 16GiB`, `--latency 10ms`), sweeps and grids (`--sweep width=0.5:1:0.25`,
`--vary`), `--variant LABEL:NAME=VALUE,...`, compound-scaling bases (`--scale width=1.1,size=1.15`)
and `--device` profiles. Errors name the flag and quote the text (`UsageError`, exit 2)."""
from __future__ import annotations

import re
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from ...analysis.roofline import DEVICES, Device
from ...errors import UsageError

UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_budget(text: str, flag: str) -> int:
    """'10M' -> 10_000_000 (K, M, G, T are powers of 1000; plain numbers and 1.5e6 work too)."""
    s = text.strip().replace("_", "").replace(",", "")
    unit = s[-1:].lower() if s[-1:].isalpha() and s[-1:].lower() in UNITS else ""
    num = s[:-1] if unit else s
    try:
        value = Decimal(num.strip()) * UNITS[unit]
    except InvalidOperation:
        raise UsageError(
            f"{flag} {text}: expected a number with an optional K, M, G or T, e.g. 10M") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{flag} {text}: the budget must be a positive number")
    return int(value.to_integral_value(ROUND_FLOOR))  # counts are integers: n <= 5.5 iff n <= 5


BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
         "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50}
SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _with_unit(text: str, flag: str, units: dict, example: str) -> float:
    m = re.fullmatch(r"\s*([0-9.eE+_-]+)\s*([A-Za-zµ]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in units:
        raise UsageError(f"{flag} {text}: expected a number and a unit ({', '.join(units)}), e.g. {example}")
    try:
        v = Decimal(m.group(1).replace("_", "")) * Decimal(units[unit] if isinstance(units[unit], int)
                                                            else repr(units[unit]))
    except InvalidOperation:
        raise UsageError(f"{flag} {text}: expected a number and a unit, e.g. {example}") from None
    if not v.is_finite() or v <= 0:
        raise UsageError(f"{flag} {text}: the budget must be positive")
    return v


def parse_limit(metric: str, text: str):
    """A budget's limit from the command line: counts (10M), bytes (16GiB, 16GB) or seconds (30ms)."""
    flag = f"--{metric}"
    if metric == "memory":
        return int(_with_unit(text, flag, BYTES, "16GiB").to_integral_value(ROUND_FLOOR))
    if metric == "latency":
        return float(_with_unit(text, flag, SECONDS, "10ms"))
    return parse_budget(text, flag)


def parse_sweep(text: str, flag: str = "--sweep") -> tuple[str, list[str]]:
    """`width=0.5,0.75,1` or `size=96:224:32` (start:stop:step, stop included). `flag` names the
    option in errors (`--sweep` for compare, `--vary` for fit)."""
    name, sep, values = text.partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise UsageError(f"{flag} expects NAME=V1,V2,... or NAME=START:STOP:STEP, got '{text}'")
    if ":" in values:
        return name, _range(name, values, text, flag)
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"{flag} {text}: empty value in the list")
    return name, items


def _range(name: str, values: str, text: str, flag: str = "--sweep") -> list[str]:
    parts = values.split(":")
    try:
        if len(parts) != 3:
            raise InvalidOperation
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        raise UsageError(
            f"{flag} {text}: a range is START:STOP:STEP with numbers, e.g. {name}=0.5:1:0.25") from None
    if step <= 0 or stop < start:
        raise UsageError(f"{flag} {text}: a range needs START <= STOP and a positive STEP")
    n = int((stop - start) / step) + 1
    if n > 100_000:
        raise UsageError(f"{flag} {text}: {n:,} values is too many")
    # Decimal keeps 0.1 steps exact, so the values print as the user would write them.
    return [str(start + i * step) for i in range(n)]


def parse_variant(text: str) -> tuple[str, dict | None]:
    """`LABEL:K=V,K=V` -> (label, {K: V}); `LABEL` alone -> (label, None): the spec's named variant;
    `LABEL:` -> (label, {}): the spec's defaults under that label."""
    label, sep, rest = text.partition(":")
    label = label.strip()
    if not label:
        raise UsageError(f"--variant expects LABEL or LABEL:NAME=VALUE,..., got '{text}'")
    if not sep:
        return label, None
    sets: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        k, eq, v = item.partition("=")
        if not eq or not k.strip() or not v.strip():
            raise UsageError(f"--variant {text}: expected NAME=VALUE, got '{item}'")
        if k.strip() in sets:
            raise UsageError(f"--variant {text}: '{k.strip()}' is given twice")
        sets[k.strip()] = v.strip()
    return label, sets


def parse_scale(text: str) -> dict[str, float]:
    """`width=1.1,size=1.15` -> {"width": 1.1, "size": 1.15}. UsageError on anything else."""
    out: dict[str, float] = {}
    for item in text.split(","):
        k, eq, v = item.partition("=")
        try:
            base = float(v)
        except ValueError:
            base = None
        if not eq or not k.strip() or base is None:
            raise UsageError(f"--scale {text}: expected NAME=BASE,..., e.g. width=1.1,size=1.15")
        if not base > 1:  # phi grows every parameter; a smaller network is a negative phi, not a base < 1
            raise UsageError(f"--scale {text}: the base of '{k.strip()}' must be above 1 (each parameter "
                             f"grows with phi; the search goes to negative phi for smaller networks)")
        if k.strip() in out:
            raise UsageError(f"--scale {text}: '{k.strip()}' is given twice")
        out[k.strip()] = base
    return out


_SI = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}


def _number(text: str, what: str) -> float:
    s = text.strip().lower().replace("_", "")
    unit = s[-1] if s and s[-1] in _SI and s[-1].isalpha() else ""
    try:
        v = float(Decimal(s[:-1] if unit else s)) * _SI[unit]
    except InvalidOperation:
        raise UsageError(f"--device: {what} '{text}' is not a number (989T, 4.8e12)") from None
    if not v > 0:
        raise UsageError(f"--device: {what} must be positive, got '{text}'")
    return v


def parse_device(text: str) -> Device:
    """A built-in profile name (h200, h100, cpu) or `FLOPS,BYTES_PER_S` (989T,4.8T or 989e12,4.8e12).
    Raises UsageError otherwise."""
    key = text.strip().lower()
    if key in DEVICES:
        return DEVICES[key]
    parts = text.split(",")
    if len(parts) != 2:
        raise UsageError(f"--device {text}: give a profile ({', '.join(DEVICES)}) or FLOPS,BYTES_PER_S")
    flops, bw = _number(parts[0], "peak FLOP/s"), _number(parts[1], "bandwidth")
    return Device("your --device", flops, bw, "--device (one peak for every precision)")
