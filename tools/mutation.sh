#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut 3, one module group at a time (groups and their
# quick tests: tools/mutation.cfg), then the score per module (tools/mutation_score.py).
#
#   tools/mutation.sh                       # every group: window ops kinds passes onnx callbacks io
#   tools/mutation.sh window callbacks      # only these groups
#   tools/mutation.sh --survivors window    # ... and list the surviving mutants' names
#   tools/mutation.sh --retest window       # check the last run's survivors again (after new tests)
#
# Each group runs in its own scratch copy of the checkout (MUTATION_DIR/<group>, default
# .mutation/, git-ignored), so the working tree never holds a mutant. mutmut caches results there:
# a rerun only checks the mutants of functions that changed. `cd .mutation/window && mutmut show
# NAME` prints a mutant's diff. MUTATION_PYTHON picks the interpreter (default .venv/bin/python;
# it needs mutmut, pip install "mutmut>=3.8", plus the test dependencies); MUTATION_JOBS the
# mutants run at once (default 1: the machine is shared); the runs are niced (nice -n 10).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MUTATION_PYTHON:-$ROOT/.venv/bin/python}"
BASE="${MUTATION_DIR:-$ROOT/.mutation}"
JOBS="${MUTATION_JOBS:-1}"
SURVIVORS=()
RETEST=0
GROUPS_=()
for a in "$@"; do
  case "$a" in
    --survivors) SURVIVORS=(--survivors) ;;
    --retest) RETEST=1 ;;
    *) GROUPS_+=("$a") ;;
  esac
done
[ ${#GROUPS_[@]} -gt 0 ] || GROUPS_=(window ops kinds passes onnx callbacks io)
if ! "$PY" -c "import mutmut" 2>/dev/null; then
  echo "error: $PY has no mutmut; pip install 'mutmut>=3.8' there or set MUTATION_PYTHON" >&2
  exit 2
fi
for group in "${GROUPS_[@]}"; do
  WORK="$BASE/$group"
  mkdir -p "$WORK"
  # the tracked and new files as they are in the working tree (uncommitted edits included)
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | \
    tar --null --files-from=- -cf - | tar -xf - -C "$WORK")
  "$PY" "$ROOT/tools/mutation_score.py" --config "$ROOT/tools/mutation.cfg" "$group" > "$WORK/setup.cfg"
  NAMES=()
  if [ "$RETEST" = 1 ] && [ -d "$WORK/mutants" ]; then
    # mutmut keeps a mutant's verdict until its function changes: name the survivors to rerun them
    mapfile -t NAMES < <("$PY" "$ROOT/tools/mutation_score.py" "$WORK" --names)
    [ ${#NAMES[@]} -gt 0 ] || { echo "== $group: no survivors to retest"; continue; }
    # and retrace which test reaches which function: mutmut traces only tests it has not seen,
    # so a test edited to reach a function would not be run on its mutants
    rm -f "$WORK/mutants/mutmut-stats.json"
  fi
  echo "== $group: mutmut run in $WORK (log: $WORK/mutmut.log)"
  start=$(date +%s)
  # mutmut imports incdsl from $WORK/mutants; PYTHONPATH must not point at another checkout. mutmut
  # forks each mutant's test run from a process that has run the tests once: torch's OpenMP threads
  # (and MKL's) do not survive a fork, and a child's first parallel conv waited for them forever
  # (each mutant then ran to its timeout); one thread each makes no pool to inherit
  (cd "$WORK" && PYTHONPATH= TF_CPP_MIN_LOG_LEVEL=3 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    nice -n 10 "$PY" -m mutmut run --max-children "$JOBS" \
    ${NAMES[@]+"${NAMES[@]}"} >mutmut.log 2>&1) || { tr '\r' '\n' < "$WORK/mutmut.log" | tail -40; exit 1; }
  echo "   done in $(( $(date +%s) - start )) s"
done
for group in "${GROUPS_[@]}"; do
  "$PY" "$ROOT/tools/mutation_score.py" "$BASE/$group" ${SURVIVORS[@]+"${SURVIVORS[@]}"}
done
