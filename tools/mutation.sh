#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut 3 (config: tools/mutation.cfg), then the score
# per module (tools/mutation_score.py).
#
#   tools/mutation.sh                       # every module the config names
#   tools/mutation.sh 'incdsl.window*'      # only mutants whose names match (mutmut's patterns)
#   tools/mutation.sh --survivors           # ... and list the surviving mutants' names
#
# The run happens in a scratch copy of the checkout (MUTATION_DIR, default .mutation/, git-ignored),
# so the working tree never holds a mutant. mutmut caches results there: a rerun only checks the
# mutants of functions that changed. `cd .mutation && mutmut show NAME` prints a mutant's diff.
# MUTATION_PYTHON picks the interpreter (default .venv/bin/python; it needs mutmut, which the
# dev extra installs, plus the test dependencies); MUTATION_JOBS the parallel mutants (default 1:
# the machine is shared); the run is niced. About 40 minutes on 2 shared cores for every module.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MUTATION_PYTHON:-$ROOT/.venv/bin/python}"
WORK="${MUTATION_DIR:-$ROOT/.mutation}"
JOBS="${MUTATION_JOBS:-1}"
SURVIVORS=()
PATTERNS=()
for a in "$@"; do
  if [ "$a" = "--survivors" ]; then SURVIVORS=(--survivors); else PATTERNS+=("$a"); fi
done
if ! "$PY" -c "import mutmut" 2>/dev/null; then
  echo "error: $PY has no mutmut; install the dev extra (pip install -e '.[dev]') or set MUTATION_PYTHON" >&2
  exit 2
fi
mkdir -p "$WORK"
# the tracked files as they are in the working tree (uncommitted edits included), nothing else
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | \
  tar --null --files-from=- -cf - | tar -xf - -C "$WORK")
cp "$ROOT/tools/mutation.cfg" "$WORK/setup.cfg"
cd "$WORK"
echo "mutmut run in $WORK (log: $WORK/mutmut.log)"
start=$(date +%s)
# mutmut imports incdsl from $WORK/mutants; PYTHONPATH must not point at another checkout
PYTHONPATH= TF_CPP_MIN_LOG_LEVEL=3 nice -n 10 "$PY" -m mutmut run --max-children "$JOBS" \
  ${PATTERNS[@]+"${PATTERNS[@]}"} >mutmut.log 2>&1 || { tail -40 mutmut.log; exit 1; }
echo "done in $(( $(date +%s) - start )) s"
"$PY" "$ROOT/tools/mutation_score.py" "$WORK" ${SURVIVORS[@]+"${SURVIVORS[@]}"}
