# Sourced by tools/test and tools/demo: make .venv in the repo root if missing and install incdsl
# with everything it needs. Re-running is quick: pip skips what is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setting up .venv (first run takes a few minutes)" >&2
  "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi
stamp=.venv/.incdsl-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || tools/_setup.sh -nt $stamp ]]; then
  # torch/torchvision pinned to the CPU-usable builds this machine family has on disk; they are only
  # needed by the reference tests (torchvision and timm models).
  # pip's own chatter (index warnings, setuptools' editable-install banner) goes to a log that is
  # shown only when the install fails
  if ! .venv/bin/python -m pip install -q -e ".[all,dev,refs]" "torch==2.14.1" "torchvision==0.29.1" \
      >.venv/pip-install.log 2>&1; then
    grep -v -e "^WARNING: Location" -e "is ignored: it is neither" .venv/pip-install.log >&2
    echo "tools/_setup.sh: pip install failed (log: .venv/pip-install.log)" >&2; exit 1
  fi
  # TensorFlow greets on stderr while keras imports: keep it in the log unless the check fails
  .venv/bin/python -c "import torchvision, timm, incdsl, lark, networkx, keras, onnx, onnxruntime, hypothesis, selenium, pygls, pytest_lsp" \
    >>.venv/pip-install.log 2>&1 \
    || { tail -20 .venv/pip-install.log >&2; echo "tools/_setup.sh: installing dependencies failed" >&2; exit 1; }
  if ! command -v dot >/dev/null 2>&1; then
    (apt-get install -y -q graphviz >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1; }) \
      || echo "note: could not install graphviz (Debian package); --to svg/png will say so" >&2
  fi
  # headless Chromium and its driver for the browser tests of `--to html` (tests/test_html.py)
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }) \
      || echo "note: could not install chromium and chromium-driver (Debian packages); tests/test_html.py will fail" >&2
  fi
  # node runs editors/vscode/detect.js in tests/test_editors.py
  if ! command -v node >/dev/null 2>&1; then
    (apt-get install -y -q nodejs >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nodejs >/dev/null 2>&1; }) \
      || echo "note: could not install nodejs (Debian package); tests/test_editors.py will fail" >&2
  fi
  touch "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
