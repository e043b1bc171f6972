# Sourced by tools/demo and tools/test: make .venv in the repo root if missing and install incdsl
# with what the caller needs. Re-running is quick: a stamp file records what was installed.
#   SETUP_EXTRAS  pip extras of incdsl ("onnx" for tools/demo; "all,dev,refs" for tools/test)
#   SETUP_FULL=1  also the pinned torch/torchvision and the Debian packages the tests need
#   SETUP_WHY     what the install is for, said once with it
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
extras="${SETUP_EXTRAS:?tools/_setup.sh: set SETUP_EXTRAS}"
full="${SETUP_FULL:-0}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setting up .venv: incdsl[$extras]${SETUP_WHY:+ ($SETUP_WHY)}" >&2
  "$py" -m venv .venv
fi
full_stamp=.venv/.incdsl-installed  # everything (tools/test): enough for tools/demo too
stamp=$full_stamp; [[ $full == 1 ]] || stamp=".venv/.incdsl-installed-$extras"
fresh() { [[ -f $1 && ! pyproject.toml -nt $1 && ! tools/_setup.sh -nt $1 ]]; }
if ! fresh "$stamp" && ! fresh "$full_stamp"; then
  pins=()
  # torch/torchvision pinned to the CPU-usable builds this machine family has on disk; only the
  # reference tests need them (torchvision and timm models)
  [[ $full == 1 ]] && pins=("torch==2.14.1" "torchvision==0.29.1")
  # The installer's chatter (index warnings, setuptools' editable-install banner) goes to a log
  # that is shown only when the install fails. uv first (a pip install of uv takes seconds; uv then
  # installs incdsl[onnx] in about 3 s where pip takes minutes, and its cache is the one the tests'
  # fresh venvs hardlink from); pip where uv cannot be had or INCDSL_TEST_INSTALLER=pip.
  : >.venv/pip-install.log
  pip_install=(.venv/bin/python -m pip install -q --disable-pip-version-check)
  installed=0
  if [[ ${INCDSL_TEST_INSTALLER:-uv} != pip ]] && "${pip_install[@]}" uv >>.venv/pip-install.log 2>&1; then
    if .venv/bin/python tools/venv_installer.py .venv -e ".[$extras]" "${pins[@]}" >>.venv/pip-install.log 2>&1
    then
      installed=1
    else  # uv could not (an index it cannot reach, say): pip, which reads the machine's pip.conf itself
      echo "(uv pip install failed: pip install instead)" >>.venv/pip-install.log
    fi
  fi
  if [[ $installed == 0 ]] && ! "${pip_install[@]}" -e ".[$extras]" "${pins[@]}" >>.venv/pip-install.log 2>&1; then
    grep -v -e "^WARNING: Location" -e "is ignored: it is neither" .venv/pip-install.log >&2
    echo "tools/_setup.sh: pip install failed (log: .venv/pip-install.log)" >&2; exit 1
  fi
  check="import incdsl, lark, networkx, onnx, onnxruntime"
  [[ $full == 1 ]] && check="$check, torchvision, timm, keras, hypothesis, selenium, pygls, pytest_lsp"
  # TensorFlow greets on stderr while keras imports: keep it in the log unless the check fails
  .venv/bin/python -c "$check" >>.venv/pip-install.log 2>&1 \
    || { tail -20 .venv/pip-install.log >&2; echo "tools/_setup.sh: installing dependencies failed" >&2; exit 1; }
  if [[ $full == 1 ]]; then
    # Debian packages, for the tests and drawings only (tools/demo needs none): said once, here
    need=()
    command -v dot >/dev/null 2>&1 || need+=(graphviz)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
    command -v node >/dev/null 2>&1 || need+=(nodejs)
    if (( ${#need[@]} )); then
      echo "installing Debian packages for the tests: ${need[*]} (graphviz: --to svg/png and the drawing" \
           "tests; chromium, chromium-driver: the browser tests of --to html; nodejs: the editor tests)" >&2
      (apt-get install -y -q "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null 2>&1; }) \
        || echo "note: could not install ${need[*]} (apt-get); the tests that use them will fail" >&2
    fi
  fi
  touch "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
