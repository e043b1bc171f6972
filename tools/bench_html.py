"""How the `--to html` page copes with a large network: Inception-ResNet-v2 (414 layers) against
GoogLeNet (97 layers) as the baseline, in the same headless Chromium session.

    .venv/bin/python tools/bench_html.py

Prints, per network: page load (navigation start to the end of the load event, which includes the
first folded layout), unfold all (dagre layout of every layer) and fold all, in ms, and the ratios.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from html_screenshots import browser  # noqa: E402

import incdsl  # noqa: E402
from incdsl.backends.html import to_html  # noqa: E402

TIMES = """const t0 = performance.now(); incdsl.unfoldAll(); const t1 = performance.now();
incdsl.foldAll(); const t2 = performance.now();
return [performance.getEntriesByType('navigation')[0].loadEventEnd, t1 - t0, t2 - t1, incdsl.layerNodes()];"""


def measure(d, spec: str, repeat: int = 3) -> list[float]:
    net = incdsl.load(ROOT / "specs" / spec)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "p.html"
        page.write_text(to_html(net))
        runs = []
        for _ in range(repeat):
            d.get(page.as_uri())
            runs.append(d.execute_script(TIMES)[:3])
    return [min(r[i] for r in runs) for i in range(3)]  # best of `repeat`: the least disturbed run


if __name__ == "__main__":
    d = browser(1400, 900)
    try:
        base = measure(d, "googlenet.inc")
        big = measure(d, "inception_resnet_v2.inc")
    finally:
        d.quit()
    for what, b, g in zip(("page load", "unfold all", "fold all"), base, big):
        print(f"{what:11s} googlenet {b:7.0f} ms   inception_resnet_v2 {g:7.0f} ms   ratio {g / b:5.2f}x")
