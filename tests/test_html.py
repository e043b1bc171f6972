"""`incdsl compile --to html`: the page, checked in a real browser (headless Chromium from Debian's
`chromium` and `chromium-driver`, driven by Selenium over /usr/bin/chromedriver: nothing is
downloaded). Without the browser these tests fail; tools/_setup.sh installs it."""
import json
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

import incdsl
from incdsl import cli
from incdsl.backends.html import page_data, to_html

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"the browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} "
                    f"missing): apt-get install chromium chromium-driver, as tools/_setup.sh does")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def v3(tmp_path_factory):
    net = incdsl.load(ROOT / "specs" / "inception_v3.inc", aux=True)  # with its training-only head
    page = tmp_path_factory.mktemp("html") / "v3.html"
    assert cli.main(["compile", str(ROOT / "specs" / "inception_v3.inc"), "--to", "html", "--set", "aux=true",
                     "-o", str(page)]) == 0
    return net, page


def open_page(d, page: Path) -> None:
    d.get_log("browser"), d.get_log("performance")  # start each page with empty logs
    d.get(page.as_uri())
    try:
        WebDriverWait(d, 20).until(lambda d: d.execute_script("return !!(window.incdsl && window.incdsl.ready)"))
    except TimeoutException:
        pytest.fail(f"the page never got ready; console: {d.get_log('browser')}")


def console(d) -> list[dict]:
    return [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def requests(d) -> list[str]:
    events = (json.loads(e["message"])["message"] for e in d.get_log("performance"))
    return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]


def test_v3_page_loads_offline_with_no_console_errors(browser, v3):
    _, page = v3
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text  # scripts and styles are inside
    open_page(browser, page)
    assert console(browser) == []
    browser.execute_script("incdsl.unfoldAll(); incdsl.find('mixed9')")
    assert console(browser) == []
    assert requests(browser) == [page.as_uri()]  # the page itself, and nothing else


def test_unfolding_everything_shows_every_layer(browser, v3):
    net, page = v3
    open_page(browser, page)
    folded = browser.execute_script("return incdsl.layerNodes()")
    browser.find_element(By.ID, "unfold-all").click()
    ids = browser.execute_script("return incdsl.cy.nodes('.layer').map(n => n.id())")
    assert len(ids) == len(net.layers) == 130 and set(ids) == set(net.layers)
    assert folded < 10  # the page opened folded
    edges = browser.execute_script("return incdsl.cy.edges().map(e => [e.source().id(), e.target().id()])")
    assert sorted(map(tuple, edges)) == sorted((s, n) for n, l in net.layers.items() for s in l.inputs)


def test_folding_a_module_hides_its_layers(browser, v3):
    net, page = v3
    open_page(browser, page)
    browser.execute_script("incdsl.unfoldAll()")
    inside = [n for n in net.layers if n.startswith("mixed9/")]
    count = "return incdsl.cy.nodes('.layer').filter(n => n.id().startsWith('mixed9/')).length"
    assert browser.execute_script(count) == len(inside) == 13
    browser.execute_script("incdsl.fold('mixed9')")
    assert browser.execute_script(count) == 0
    assert browser.execute_script("return incdsl.layerNodes()") == len(net.layers) - len(inside)
    assert browser.execute_script("return incdsl.cy.getElementById('mixed9').hasClass('cy-expand-collapse-collapsed-node')")


def test_search_finds_mixed9(browser, v3):
    _, page = v3
    open_page(browser, page)
    box = browser.find_element(By.ID, "search")
    box.send_keys("mixed9", Keys.ENTER)
    assert browser.find_element(By.ID, "status").text == "found mixed9 (module v3_e)"
    assert browser.find_element(By.CSS_SELECTOR, "#info [data-field=name]").text == "mixed9"
    assert browser.execute_script("return incdsl.cy.$(':selected').map(n => n.id())") == ["mixed9"]
    inside = browser.execute_script("""const n = incdsl.cy.getElementById('mixed9'), p = n.renderedPosition();
        return p.x > 0 && p.y > 0 && p.x < incdsl.cy.width() && p.y < incdsl.cy.height()""")
    assert inside  # centred in view
    # a layer inside a folded module: the search unfolds it
    box.clear()
    box.send_keys("mixed9/b3/conv_2", Keys.ENTER)
    assert browser.execute_script("return incdsl.cy.$(':selected').map(n => n.id())") == ["mixed9/b3/conv_2"]


def hover(d, node_id: str) -> None:
    d.execute_script("incdsl.cy.center(incdsl.cy.getElementById(arguments[0]))", node_id)
    pos = d.execute_script("return incdsl.cy.getElementById(arguments[0]).renderedPosition()", node_id)
    cy = d.find_element(By.ID, "cy")
    size = cy.size
    ActionChains(d).move_to_element_with_offset(cy, int(pos["x"] - size["width"] / 2),
                                                int(pos["y"] - size["height"] / 2)).perform()


def field(d, name: str) -> str:
    return d.find_element(By.CSS_SELECTOR, f"#info [data-field={name}]").text


def test_hover_shows_the_right_params(browser, v3):
    net, page = v3
    open_page(browser, page)
    browser.execute_script("incdsl.unfold('mixed9'); incdsl.cy.zoom(1)")
    layer = "mixed9/b3/conv_2"  # conv 3x3 448 -> 384 with batch norm: 1,548,288 params
    hover(browser, layer)
    assert field(browser, "name") == layer
    c = net.counts[layer]
    assert field(browser, "params") == f"{c.params:,} ({c.trainable:,} trainable, {c.non_trainable:,} non-trainable)"
    assert c.params == 448 * 9 * 384 + 3 * 384  # Keras: kernel, then gamma-less bn's beta, mean, variance
    assert field(browser, "macs") == f"{c.macs:,}"
    assert field(browser, "shape") == "8x8x384"
    assert field(browser, "op") == "conv 3x3 bn relu"
    assert field(browser, "place").startswith(f"{net.layers[layer].span}\n")
    hover(browser, "mixed5")  # a folded module call: its totals
    assert field(browser, "name") == "mixed5"
    assert field(browser, "params").startswith(f"{net.group_counts()['mixed5'].params:,} ")


def test_table_sorts_and_marks_training_only_heads(browser, v3):
    net, page = v3
    open_page(browser, page)
    rows = lambda: browser.execute_script("return [...document.querySelectorAll('#blocks tbody tr')].map(r => r.dataset.id)")
    assert rows() == [b.name for b in net.graph.blocks]
    header = browser.find_element(By.CSS_SELECTOR, "#blocks th[data-key=params]")
    header.click()
    groups = net.group_counts()
    assert rows() == sorted(rows(), key=lambda b: groups[b].params)
    header.click()
    assert rows()[0] == "mixed10"
    assert browser.execute_script("return document.querySelector('#blocks tr[data-id=aux_logits]').className") == "train"
    assert browser.execute_script("return incdsl.cy.getElementById('aux_logits').hasClass('train')")


def test_large_network_opens_folded(browser, tmp_path):
    net = incdsl.load(ROOT / "specs" / "inception_resnet_v2.inc")
    assert len(net.layers) == 414
    page = tmp_path / "irv2.html"
    page.write_text(to_html(net))
    open_page(browser, page)
    visible = browser.execute_script("return incdsl.cy.nodes(':visible').length")
    assert visible <= len(net.graph.blocks) + 10
    browser.execute_script("incdsl.unfoldAll()")
    assert browser.execute_script("return incdsl.layerNodes()") == 414
    assert console(browser) == []


def test_script_in_the_spec_stays_text(browser, spec_file, tmp_path):
    p = spec_file("network n() {\n  input 8x8x3\n  conv(4, 3)  # </script><script>window.pwned = 1</script>\n}\n")
    page = tmp_path / "n.html"
    assert cli.main(["compile", str(p), "--to", "html", "-o", str(page)]) == 0
    open_page(browser, page)
    assert browser.execute_script("return window.pwned === undefined && incdsl.layerNodes()") == 2
    browser.execute_script("incdsl.show('conv_1')")
    assert "</script>" in field(browser, "place")


def test_names_are_the_summary_names():
    net = incdsl.load(ROOT / "specs" / "googlenet.inc")
    data, summary = page_data(net), net.report()  # what `incdsl summary --json` prints
    assert [l["id"] for l in data["layers"]] == [l["name"] for l in summary["layers"]]
    assert [(b["id"], b["params"], b["macs"]) for b in data["blocks"]] == \
        [(b["name"], b["params"]["total"], b["macs"]) for b in summary["blocks"]]


def test_a_spec_with_errors_is_refused_cleanly(spec_file, tmp_path, capsys):
    p = spec_file("network n() {\n  input 8x8x3\n  conv(4, 9, pad=valid)\n}\n")
    out = tmp_path / "out.html"
    assert cli.main(["compile", str(p), "--to", "html", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{p}:3:3: error:" in err and "^^^" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_vendored_libraries_carry_their_licenses():
    vendor = ROOT / "incdsl" / "backends" / "html_assets" / "vendor"
    versions = (vendor / "VERSIONS").read_text()
    for lib in ("cytoscape@", "cytoscape-dagre@", "cytoscape-expand-collapse@", "@dagrejs/dagre@"):
        assert lib in versions
    text = to_html(incdsl.load(ROOT / "specs" / "googlenet.inc"))
    assert text.count("Permission is hereby granted") >= 4  # the MIT texts, inline
