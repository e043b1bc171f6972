#!/usr/bin/env python3
"""`incdsl import` of an ONNX chain grows linearly: a chain of N nodes (Conv 1x1 -> Relu, repeated)
and one of 10N are imported (read, fused, written as a spec and checked against the model) and the
CPU-time ratio printed; about 10 is linear, about 100 quadratic.

Run: .venv/bin/python tools/bench_import_chain.py [--n 2000]
(CPU time of this process: these machines are shared and their wall clocks noisy.)

Issue 24 #9: a 20,000-node chain did not finish in 120 s; fusion rescanned every node for each
node it folded (importers/flat.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def chain(path: Path, nodes: int) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    made, inits, prev = [], [], "x"
    for i in range(nodes // 2):
        inits.append(numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), f"w{i}"))
        made += [helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}"),
                 helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        prev = f"r{i}"
    graph = helper.make_graph(made, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 2, 4, 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="nodes of the smaller chain (default 2000)")
    args = ap.parse_args()
    from incdsl.importers.model import import_model

    times = {}
    with tempfile.TemporaryDirectory() as d:
        for n in (args.n, 10 * args.n):
            src = chain(Path(d) / f"c{n}.onnx", n)
            t = time.process_time()
            import_model(src, Path(d) / f"c{n}.inc")
            times[n] = time.process_time() - t
            print(f"{n:>7,} nodes: {times[n]:.2f} s CPU", flush=True)
    print(f"ratio {10 * args.n:,} / {args.n:,} nodes: {times[10 * args.n] / times[args.n]:.1f} (10 is "
          f"linear, 100 quadratic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
