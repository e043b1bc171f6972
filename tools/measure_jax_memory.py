"""Measure one training step's memory on Keras' JAX backend (CPU) and print it beside incdsl's
estimate, as JSON. Run in its own process (the Keras backend is chosen at import):

    KERAS_BACKEND=jax python tools/measure_jax_memory.py specs/googlenet.inc --set size=96 --batch 4

The measurement is XLA's own account of the compiled training step (jax's AOT API:
`jax.jit(step).lower(...).compile().memory_analysis()`): arguments (variables, optimizer state,
the batch), outputs, and temporaries (what the step keeps between forward and backward, plus
workspace), less the outputs aliased to donated arguments. The step is Keras' stateless API:
`model.stateless_call` under `jax.value_and_grad`, then `optimizer.stateless_apply` (SGD with
momentum), the arguments donated as a training loop does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def measure(spec: str, sets: dict, batch: int) -> dict:
    assert os.environ.get("KERAS_BACKEND") == "jax", "run with KERAS_BACKEND=jax"
    import jax
    import keras
    import numpy as np

    import incdsl
    from incdsl.passes.memory import training_step

    net = incdsl.load(spec, **sets)
    model = net.to_keras(inference=True)
    h, w, c = net.input_shape
    x = np.zeros((batch, h, w, c), "float32")
    y = np.zeros((batch,), "int32")
    opt = keras.optimizers.SGD(0.01, momentum=0.9)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=False)

    def loss(tv, ntv, x, y):
        out, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, out), ntv

    def step(tv, ntv, ov, x, y):
        (l, ntv), g = jax.value_and_grad(loss, has_aux=True)(tv, ntv, x, y)
        tv, ov = opt.stateless_apply(ov, g, tv)
        return l, tv, ntv, ov

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in opt.variables]
    compiled = jax.jit(step, donate_argnums=(0, 1, 2)).lower(tv, ntv, ov, x, y).compile()
    m = compiled.memory_analysis()
    peak = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
    est = training_step(net, batch, "float32", "momentum")
    return {"spec": spec, "sets": sets, "batch": batch,
            "backend": f"keras {keras.__version__} on jax {jax.__version__} "
            f"({jax.devices()[0].platform})",
            "xla": {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
                    "temp": m.temp_size_in_bytes, "alias": m.alias_size_in_bytes, "peak": peak},
            "estimate": {"params": est.params, "gradients": est.gradients, "optimizer": est.optimizer,
                         "activations": est.activations, "total": est.total},
            "error": est.total / peak - 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--batch", type=int, default=4)
    a = ap.parse_args()
    from incdsl.cli.commands.spec_args import parse_sets
    print(json.dumps(measure(a.spec, parse_sets(a.set), a.batch), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
