#!/bin/bash
# The CLI's outputs on the reference specs, one file per command, for a refactor that must change
# none of them: run it before and after into two folders, then `diff -r BEFORE AFTER`.
out=${1:?usage: tools/cli_outputs.sh OUTDIR}; mkdir -p "$out"; cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
i=0
run() { i=$((i+1)); { echo "\$ incdsl $*"; $py -m incdsl "$@" 2>&1; echo "rc=$?"; } > $out/$(printf %03d $i).txt; }
for s in specs/*.inc; do
  run check $s; run summary $s; run summary $s --json; run expand $s; run summary $s --rf; run summary $s --memory
  run compile $s --to dot -o /tmp/incdsl_cli_outputs.dot; cp /tmp/incdsl_cli_outputs.dot $out/$(printf %03d $i).dot
done
run compare specs/googlenet.inc specs/inception_v3.inc specs/inception_v4.inc
run compare specs/inception_v3.inc --sweep width=0.5,0.75,1.0 --sweep size=160,224
run fit specs/inception_v3.inc --vary width --params 5M
run fit specs/inception_v3.inc --scale --macs 2G
run diff specs/googlenet.inc specs/googlenet_tv.inc
run summary inception_v3 --convention torchinfo
run check tests/errors/add_shape_mismatch.inc
run fmt --check specs/inception_v4.inc
run --help
run compile --help
run train --help
