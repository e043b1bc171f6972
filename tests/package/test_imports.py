"""The front end never loads the heavy stacks: `import incdsl` and the check / summary / expand /
compare code paths must run with none of TensorFlow, Keras, onnx, tf2onnx, onnxruntime, torch or
matplotlib in sys.modules. Each check runs in a fresh interpreter, since this one may have them."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "onnx", "tf2onnx", "onnxruntime", "torch", "matplotlib")

PROBE = r"""
import contextlib, io, json, sys
heavy = {heavy!r}
import incdsl
from incdsl.cli import main as cli
steps = {{"import incdsl": None}}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
steps["import incdsl"] = loaded()
for argv in {argvs!r}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(argv)
    steps[" ".join(argv)] = [code, loaded()]
net = incdsl.Spec("specs/googlenet_tv.inc").build(width="0.5")
net.report(); net.expand(); net.table(1); net.nx
steps["Spec.build + reports + nx"] = loaded()
print(json.dumps(steps))
"""

ARGVS = [
    ["check", "specs/googlenet.inc"],
    ["summary", "specs/googlenet_tv.inc"],
    ["summary", "specs/googlenet_tv.inc", "--json", "--depth", "1"],
    ["expand", "specs/googlenet_tv.inc", "--set", "width=0.5"],
    ["compare", "specs/googlenet.inc", "specs/googlenet_tv.inc"],
    ["compare", "specs/googlenet_tv.inc", "--sweep", "width=0.5,1.0", "--json"],
    ["check", "tests/errors/concat_spatial_mismatch.inc"],
    ["summary", "specs/googlenet_tv.inc", "--json", "--memory", "--device", "h200", "--convention", "fvcore"],
    ["summary", "specs/googlenet_tv.inc", "--depth", "1", "--memory", "--device", "cpu", "--convention",
     "thop"],
    ["diff", "specs/googlenet.inc", "specs/googlenet_tv.inc", "--json"],
    ["fit", "specs/googlenet.inc", "--params", "5M", "--scale", "width=1.1,size=1.15"],
    ["fit", "specs/googlenet.inc", "--memory", "16GiB", "--latency", "50ms", "--vary", "batch"],
]


def test_front_end_loads_no_heavy_modules():
    code = PROBE.format(heavy=HEAVY, argvs=ARGVS)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    steps = json.loads(p.stdout.splitlines()[-1])
    assert steps.pop("import incdsl") == []
    assert steps.pop("Spec.build + reports + nx") == []
    for argv, (exit_code, heavy) in steps.items():
        assert heavy == [], f"`incdsl {argv}` loaded {heavy}"
        assert exit_code == (1 if "errors/" in argv else 0), argv


def test_probe_would_notice_a_heavy_import():
    """The probe itself works: importing a heavy package shows up in sys.modules."""
    p = subprocess.run([sys.executable, "-c", "import sys, matplotlib; print('matplotlib' in sys.modules)"],
                       capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "True"
