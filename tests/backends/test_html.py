"""`incdsl compile --to html`: the page, checked in a real browser (headless Chromium from Debian's
`chromium` and `chromium-driver`, driven by Selenium over /usr/bin/chromedriver: nothing is
downloaded). Without the browser these tests fail; tools/_setup.sh installs it."""
import json
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

import incdsl
from incdsl.backends.html import page_data, to_html
from incdsl.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
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
        WebDriverWait(d,
                      20).until(lambda d: d.execute_script("return !!(window.incdsl && window.incdsl.ready)"))
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
    assert browser.execute_script(
        "return incdsl.cy.getElementById('mixed9').hasClass('cy-expand-collapse-collapsed-node')")


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
    assert field(browser,
                 "params") == f"{c.params:,} ({c.trainable:,} trainable, {c.non_trainable:,} non-trainable)"
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
    rows = lambda: browser.execute_script(
        "return [...document.querySelectorAll('#blocks tbody tr')].map(r => r.dataset.id)")
    assert rows() == [b.name for b in net.graph.blocks]
    header = browser.find_element(By.CSS_SELECTOR, "#blocks th[data-key=params]")
    header.click()
    groups = net.group_counts()
    assert rows() == sorted(rows(), key=lambda b: groups[b].params)
    header.click()
    assert rows()[0] == "mixed10"
    assert browser.execute_script(
        "return document.querySelector('#blocks tr[data-id=aux_logits]').className") == "train"
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
    p = spec_file(
        "network n() {\n  input 8x8x3\n  conv(4, 3)  # </script><script>window.pwned = 1</script>\n}\n")
    page = tmp_path / "n.html"
    assert cli.main(["compile", str(p), "--to", "html", "-o", str(page)]) == 0
    open_page(browser, page)
    assert browser.execute_script("return window.pwned === undefined && incdsl.layerNodes()") == 2
    browser.execute_script("incdsl.show('conv_1')")
    assert "</script>" in field(browser, "place")


@pytest.mark.parametrize("comment, name", [("# <!--<script>", "t.inc"), ("", "f<!--<script>.inc"),
                                           ("# a & b > c <!-- x", "g<!--<script>&.inc")])
def test_html_comment_openers_in_the_spec_leave_the_page_drawing(browser, spec_file, tmp_path, comment, name):
    # issue 24 #10: "<!--<script>" inside the JSON data block put the HTML tokenizer in its
    # "script data escaped" state, which swallowed the viewer's scripts: a blank page
    p = spec_file(f"network n() {{\n  input 8x8x3\n  conv(4, 3)  {comment}\n}}\n", name=name)
    page = tmp_path / "n.html"
    assert cli.main(["compile", str(p), "--to", "html", "-o", str(page)]) == 0
    assert "<!--<script>" not in page.read_text().split("<script", 1)[1].split("</script>", 1)[0]
    open_page(browser, page)
    assert browser.execute_script("return incdsl.layerNodes()") == 2
    browser.execute_script("incdsl.show('conv_1')")
    if comment:
        assert comment.lstrip("# ") in field(browser, "place")
    assert console(browser) == []


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
    for lib in ("cytoscape@", "cytoscape-expand-collapse@", "@dagrejs/dagre@"):
        assert lib in versions
    text = to_html(incdsl.load(ROOT / "specs" / "googlenet.inc"))
    assert text.count("Permission is hereby granted") >= 3  # the MIT texts, inline


# --- the first view, edges, table and search as a new user meets them -----------------------------

REFERENCE_NETS = sorted(p.stem for p in (ROOT / "specs").glob("*.inc"))


@pytest.mark.slow  # nine pages: about 7 s
def test_first_view_is_readable_for_every_reference_net(browser, tmp_path):
    """Every reference net opens top to bottom at a zoom where a node label is at least 10 px on
    screen, with the network's input in view (the rest by scrolling)."""
    assert len(REFERENCE_NETS) >= 9
    for name in REFERENCE_NETS:
        page = tmp_path / f"{name}.html"
        page.write_text(to_html(incdsl.load(ROOT / "specs" / f"{name}.inc")))
        open_page(browser, page)
        sizes = browser.execute_script("""const cy = incdsl.cy, z = cy.zoom();
            const first = cy.nodes('.layer')[0], p = first.renderedPosition();
            return {zoom: z, layer: parseFloat(first.style('font-size')) * z,
                    block: cy.nodes('.block').map(n => parseFloat(n.style('font-size')) * z),
                    input: first.id(), inView: p.x > 0 && p.y > 0 && p.x < cy.width() && p.y < cy.height(),
                    below: cy.nodes('.layer').last().position().y > first.position().y}""")
        assert sizes["layer"] >= 10 and min(sizes["block"], default=11) >= 10, (name, sizes)
        assert sizes["inView"] and sizes["below"], (name, sizes)  # top to bottom, starting at the input
        assert console(browser) == [], name
    browser.save_screenshot(str(tmp_path / "last.png"))


def polyline_hits(d) -> list:
    """Edges whose drawn path crosses a node that is neither of its ends (nor their module box)."""
    return d.execute_script("""
        const cy = incdsl.cy, leaves = cy.nodes().filter(n => !n.isParent()), hits = [];
        cy.edges().forEach(e => {
          const pts = [e.sourceEndpoint()].concat(e.segmentPoints() || []).concat([e.targetEndpoint()]);
          const others = leaves.filter(n => n !== e.source() && n !== e.target());
          for (let i = 0; i + 1 < pts.length; i++) {
            const a = pts[i], b = pts[i + 1], steps = Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / 2);
            for (let k = 0; k <= steps; k++) {
              const x = a.x + (b.x - a.x) * k / steps, y = a.y + (b.y - a.y) * k / steps;
              const n = others.filter(n => { const bb = n.boundingBox({includeLabels: false});
                return x > bb.x1 + 3 && x < bb.x2 - 3 && y > bb.y1 + 3 && y < bb.y2 - 3; })[0];
              if (n) { hits.push([e.source().id(), e.target().id(), n.id()]); return; }
            }
          }
        });
        return hits;""")


def test_edges_follow_dagres_routes_around_the_nodes(browser, v3):
    _, page = v3
    open_page(browser, page)
    browser.execute_script("incdsl.unfoldAll()")
    off = browser.execute_script("""const out = [];
        incdsl.cy.edges('.routed').forEach(e => {
          const want = e.scratch('route').bends, got = e.segmentPoints();
          if (!got || got.length !== want.length ||
              got.some((p, i) => Math.hypot(p.x - want[i].x, p.y - want[i].y) > 1)) out.push(e.id());
        });
        return [out, incdsl.cy.edges('.routed').length, incdsl.cy.edges().length]""")
    assert off[0] == [] and off[1] > off[2] / 2  # drawn through dagre's bend points
    assert polyline_hits(browser) == []
    browser.execute_script("incdsl.foldAll()")
    assert polyline_hits(browser) == []


def test_unfolded_module_labels_are_unique(browser, v3):
    net, page = v3
    open_page(browser, page)
    browser.execute_script("incdsl.unfold('mixed9')")
    labels = browser.execute_script(
        "return incdsl.cy.nodes('.layer').filter(n => n.id().startsWith('mixed9/'))"
        ".map(n => n.data('label').split('\\n')[0])")
    assert len(labels) == sum(1 for n in net.layers if n.startswith("mixed9/")) == 13
    assert len(set(labels)) == len(labels)
    assert "b2/conv_1" in labels and "b3/b1/conv_1" in labels and "concat_1" in labels


def test_side_table_fits_inception_resnet_v2(browser, tmp_path):
    page = tmp_path / "irv2.html"
    net = incdsl.load(ROOT / "specs" / "inception_resnet_v2.inc")
    page.write_text(to_html(net))
    open_page(browser, page)
    fit = browser.execute_script("""const box = document.getElementById('table-box');
        const right = box.getBoundingClientRect().right;
        const cells = [...document.querySelectorAll('#blocks tr > :last-child')];
        return [box.scrollWidth <= box.clientWidth,
                cells.every(c => c.getBoundingClientRect().right <= right + 0.5), cells.length]""")
    assert fit == [True, True, len(net.graph.blocks) + 1]  # the header and every row


def test_table_sorts_names_and_shapes_naturally(browser, v3):
    net, page = v3
    open_page(browser, page)
    rows = lambda: browser.execute_script(
        "return [...document.querySelectorAll('#blocks tbody tr')].map(r => r.dataset.id)")
    browser.find_element(By.CSS_SELECTOR, "#blocks th[data-key=id]").click()
    mixed = [r for r in rows() if r.startswith("mixed")]
    assert mixed == [f"mixed{i}" for i in range(11)]  # mixed10 last, not after mixed1
    browser.find_element(By.CSS_SELECTOR, "#blocks th[data-key=shape]").click()
    shapes = browser.execute_script(
        "return [...document.querySelectorAll('#blocks tbody tr td:nth-child(3)')].map(c => c.textContent)")
    key = lambda s: [int(x) for x in s.split("x")]
    assert shapes == sorted(shapes, key=lambda s: (len(key(s)), key(s))) or \
        [key(s) for s in shapes] == sorted(key(s) for s in shapes)
    assert shapes.index("8x8x2048") < shapes.index("17x17x768") < shapes.index("35x35x256")


def test_search_ignores_case_clears_a_miss_and_names_the_module(browser, v3):
    _, page = v3
    open_page(browser, page)
    box = browser.find_element(By.ID, "search")
    status = lambda: browser.find_element(By.ID, "status").text
    selected = lambda: browser.execute_script("return incdsl.cy.$('.found, :selected').map(n => n.id())")
    box.send_keys("MIXED9", Keys.ENTER)
    assert status() == "found mixed9 (module v3_e)" and selected() == ["mixed9"]
    box.clear()
    box.send_keys("nosuchlayer", Keys.ENTER)
    assert status() == "no layer or module call matches 'nosuchlayer'" and selected() == []
    box.clear()
    box.send_keys("aux", Keys.ENTER)
    assert status() == "found aux_logits (module v3_aux)"
    box.clear()
    box.send_keys("aux_logits/conv_1", Keys.ENTER)
    assert status() == "found aux_logits/conv_1 (conv 1x1 bn relu in aux_logits, module v3_aux)"


def test_a_net_without_module_calls_says_so(browser, spec_file, tmp_path):
    p = spec_file("network n() {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(10)\n}\n")
    page = tmp_path / "n.html"
    assert cli.main(["compile", str(p), "--to", "html", "-o", str(page)]) == 0
    open_page(browser, page)
    assert not browser.find_element(By.ID, "blocks").is_displayed()
    assert browser.find_element(By.ID, "no-blocks").text.startswith("This network calls no modules")


def test_depth_is_the_pages_first_fold(browser, tmp_path, capsys):
    spec = ROOT / "specs" / "googlenet.inc"
    page = tmp_path / "g.html"
    assert cli.main(["compile", str(spec), "--to", "html", "--depth", "all", "-o", str(page)]) == 0
    open_page(browser, page)
    assert browser.execute_script("return incdsl.layerNodes()") == len(incdsl.load(spec).layers)
    assert cli.main(["compile", str(spec), "--to", "html", "--depth", "1", "-o", str(page)]) == 0
    open_page(browser, page)
    assert browser.execute_script("return incdsl.cy.nodes('.cy-expand-collapse-collapsed-node').length") == 11
    assert cli.main(["compile", str(spec), "--to", "html", "--depth", "0", "-o",
                     str(tmp_path / "x.html")]) == 2
    assert cli.main(["compile", str(spec), "--to", "html", "--only", "inception3a", "-o",
                     str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "--depth must be at least 1" in err and "--only is for drawings" in err
    assert not (tmp_path / "x.html").exists()
