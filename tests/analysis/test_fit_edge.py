"""Issue 27 item 7: `fit` at the edge where networks stop building. `fit --scale` (and `--vary`)
stepped down past the smallest network that builds and said "nothing fits" even when that network
was within the budget. Checked against a dense scan of the same networks: whenever some value that
builds is within the budget, fit returns the largest such value (to the scan's resolution: nothing
scanned above it fits, it fits itself)."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import incdsl
import incdsl.analysis.fitting
from incdsl.analysis.fitting import fit
from incdsl.analysis.scaling import compound, scaled
from incdsl.cli.main import main
from incdsl.errors import NothingFits, SpecError, UsageError

from conftest import SPECS

REFERENCE = sorted(p.name for p in SPECS.glob("*.inc"))
BASES = {"width": 1.1, "size": 1.15}
_BUILT: dict = {}


def cached_build(variant):
    """sweep.build, once per (spec, settings): the scans and the searches share their networks."""
    key = (str(variant.spec.path), tuple(sorted((k, repr(v)) for k, v in variant.sets.items())))
    if key not in _BUILT:
        try:
            _BUILT[key] = variant.spec.build(**variant.sets)
        except (SpecError, UsageError) as e:
            _BUILT[key] = e
    got = _BUILT[key]
    if isinstance(got, Exception):
        raise got
    return got


def params_or_none(spec, sets):
    try:
        return cached_build(incdsl.analysis.fitting.Variant("scan", spec, sets)).total().params
    except (SpecError, UsageError):
        return None


@pytest.mark.slow
def test_scale_inception_v3_under_5M_finds_the_smallest_networks(capsys, monkeypatch):
    """The issue's case: at 5M the search stepped to phi=-15 (does not build) and gave up, though
    phi=-9.94 (size 75, the smallest that builds) has 4,042,909 params."""
    assert main(["fit", str(SPECS / "inception_v3.inc"), "--scale", "width=1.1,size=1.15", "--params",
                 "5M"]) == 0
    out = capsys.readouterr().out
    assert "size=89: 4,989,086 params" in out and "<- fits" in out
    monkeypatch.setattr(incdsl.analysis.fitting, "build", cached_build)
    spec = incdsl.Spec(SPECS / "inception_v3.inc")
    for budget in (4_100_000, 9_900_000):
        r = compound(spec, BASES, {"params": budget})
        assert r.best.count.params <= budget < r.next.count.params
        assert r.next_phi == math.nextafter(r.phi, 0)
    # below the smallest network that builds, nothing fits, and the message says what that network gives
    with pytest.raises(NothingFits,
                       match=r"smallest network that builds: phi=-9.9\d+ gives 4,042,909 params"):
        compound(spec, BASES, {"params": 4_000_000})


def _scan(spec, mode):
    """(value, params or None) over a dense grid: phi for --scale, width for --vary."""
    if mode == "scale":
        grid = [x / 4 for x in range(-72, 5)]  # phi -18 .. 1
        return [(phi, params_or_none(spec, scaled(spec, BASES, phi))) for phi in grid]
    grid = [x / 50 for x in range(1, 76)]  # width 0.02 .. 1.5
    return [(w, params_or_none(spec, {"width": w})) for w in grid]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["scale", "vary"])
@pytest.mark.parametrize("name", REFERENCE)
def test_fit_returns_the_largest_fitting_value(monkeypatch, name, mode):
    monkeypatch.setattr(incdsl.analysis.fitting, "build", cached_build)
    spec = incdsl.Spec(SPECS / name)
    scan = _scan(spec, mode)
    built = sorted({p for _, p in scan if p is not None})
    assert len(built) > 3, (name, mode)

    @settings(max_examples=3, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.sampled_from(built), st.sampled_from([0, 1, 997]))
    def check(at, extra):
        budget = at + extra  # on a network's count exactly, and just above it
        fitting = [v for v, p in scan if p is not None and p <= budget]
        assert fitting  # `at` is a network that builds
        if mode == "scale":
            r = compound(spec, BASES, {"params": budget})
            found, found_params = r.phi, r.best.count.params
            nxt = r.next.count.params if r.next is not None else None
        else:
            r = fit(spec, "width", "params", budget)
            found, found_params = r.best.value, r.best.count.params
            nxt = r.next.count.params if r.next is not None else None
        assert found_params <= budget and (nxt is None or nxt > budget)
        assert found >= max(fitting), (name, mode, budget, found, max(fitting))
        above = [v for v, p in scan if v > found and p is not None and p <= budget]
        assert not above, (name, mode, budget, found, above)

    check()
