#!/usr/bin/env bash
# The GPU figures of the README's benchmark table (issue 11), in one run: Inception v3, JAX, bf16,
# batch 128: the `incdsl train` path against the ceiling (a jitted step on data already on the
# device), for ours and keras.applications, on synthetic data and then on a generated JPEG folder;
# then the Pillow folder reader by number of threads.
#
# Meant for a GPU machine whose Python has JAX (with CUDA), numpy, h5py and Pillow but no Keras or
# Lark (the H200 of the issue): the wheels of keras, namex, optree and lark travel with the code in
# wheels/. Fetch them beforehand on a machine with PyPI (Python 3.12, x86_64 Linux):
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_17_x86_64 -d wheels keras namex optree lark
# then run, from the repository root:  tools/bench_gpu.sh   (PYTHON=python3.12 to choose the interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python3}
site="$PWD/.gpu_site"
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax
if ! "$py" -c "import keras, lark" 2>/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --find-links wheels --target "$site" keras namex optree lark
fi
"$py" -c "import jax; print('jax', jax.__version__, jax.devices())"
common=(--precision mixed_bfloat16 --batch-size 128 --classes 1000 --warmup 16 --steps 64 --repeats 2)
"$py" tools/bench_train.py "${common[@]}"
"$py" tools/bench_train.py "${common[@]}" --data jpeg --images 4096
"$py" tools/bench_train.py --mode reader --images 1024 --batch-size 128 --batches 8 --repeats 2
