"""Screenshots of the `--to html` page for the README, taken in headless Chromium (Debian's
`chromium` and `chromium-driver`, driven by Selenium; nothing is downloaded).

    .venv/bin/python tools/html_screenshots.py     # writes docs/img/googlenet_html.png,
    inception_v3_mixed9_html.png
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import incdsl  # noqa: E402
from incdsl.backends.html import to_html  # noqa: E402


def browser(width: int, height: int) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
              "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def shot(spec: str, out: str, size: tuple[int, int], script: str) -> None:
    net = incdsl.load(f"specs/{spec}")  # relative, so the page shows specs/... as the spec place
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "net.html"
        page.write_text(to_html(net))
        d = browser(*size)
        try:
            d.get(page.as_uri())
            d.execute_script(script)
            d.save_screenshot(str(ROOT / "docs" / "img" / out))
        finally:
            d.quit()
    print(f"wrote docs/img/{out}")


if __name__ == "__main__":
    import os
    os.chdir(ROOT)
    # the page as it opens (top to bottom, labels at 10 px or more), scrolled to inception4a
    shot("googlenet.inc", "googlenet_html.png", (1400, 900), "incdsl.reveal('inception4a');")
    shot("inception_v3.inc", "inception_v3_mixed9_html.png", (1700, 950),
         "incdsl.unfold('mixed9'); incdsl.cy.fit(incdsl.cy.getElementById('mixed9'), 15);"
         "incdsl.show('mixed9/b2/concat_1');")
