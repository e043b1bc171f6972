"""A checked network saved as a `.keras` file (`incdsl compile --to keras`, `export`): the Keras model
built by `backends.keras`, its weights seeded or loaded, incdsl's spec metadata added, written
atomically and byte-reproducible (`keras_file`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import OptionError, missing_file
from ...io import atomic_path, check_output, inputs_of
from ...weights.torch import is_torch_file, load_torch_weights
from . import without_tf
from .build import build_model, load_weights_file
from .file import make_reproducible, write_spec_meta


@dataclass(frozen=True)
class Result:
    """What `export` wrote: the `.keras` file's `path`, which model (`inference`: the training-only
    heads left out), its output names, its parameter count (Keras' `count_params()`: trainable and
    non-trainable), the weights file it holds (None: seeded) and how that file was read."""
    path: Path
    network: str
    inference: bool
    outputs: tuple[str, ...]
    params: int
    weights: str | None = None
    how: str | None = None  # "the PyTorch importer", or what load_weights_file says it read

    def line(self) -> str:
        """The line `incdsl compile --to keras` prints."""
        kind = "inference" if self.inference else "training"
        src = (
            f", weights from {self.weights} ({self.how})"
            if self.how
            else ", weights seeded (init_weights seed 0)"
        )
        return (f"wrote {self.path}: {self.network} {kind} model, outputs {', '.join(self.outputs)}, "
                f"{self.params:,} params{src}")


def export(net, path: str | Path, *, inference: bool = False, weights: str | Path | None = None) -> Result:
    """Save `net` (a checked `Network`) as the Keras model file `path` and return what was written.

    Options:
    - `inference` (default False): the inference model, training-only heads (auxiliary classifiers)
      left out; by default the training model with every head.
    - `weights` (default None): a weights file to load: `.keras`, `.weights.h5`, a keras.applications
      `.h5`, or a PyTorch state dict (`.pth`, `.pt`, `.safetensors`); None seeds the initial weights
      (`incdsl.weights.arrays.init_weights`, seed 0), so the same spec gives the same file.

    The file is written atomically (a failure leaves nothing behind) and byte-reproducible: the same
    spec, weights and versions give the same bytes. It holds incdsl's spec metadata
    (incdsl_spec.json) so that `incdsl import` gives the spec back.

    Raises `OptionError` for a path not ending in `.keras`, `MissingFileError` (a `FileNotFoundError`) for a
    missing weights file, `SpecError` for weights that do not fit the network, `UsageError` for a path that
    cannot be written or that is one of the network's spec files or the weights file (`io.check_output`)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise OptionError("{keras} writes a .keras file; got {path} {value}",
                          words={"keras": "the Keras export", "path": "path"}, value=path)
    check_output(path, inputs=inputs_of(net, weights))  # before the slow build; atomic_path checks again
    if weights and not Path(weights).is_file():
        raise missing_file("weights file", weights)
    if weights and is_torch_file(weights):  # read and matched before the slow Keras build
        model = build_model(net, inference=inference, weights=load_torch_weights(net, weights))
        how = "the PyTorch importer"
    else:
        model = build_model(net, inference=inference, seed=None if weights else 0)
        how = load_weights_file(model, net, weights) if weights else None
    without_tf.install()  # on JAX and PyTorch, Keras' serializer imported TensorFlow
    with atomic_path(path, inputs=inputs_of(net, weights)) as tmp:
        model.save(tmp)
        write_spec_meta(tmp, net, inference)
        make_reproducible(tmp)  # the same spec and weights give the same bytes (after every entry is in)
    return Result(path, net.name, inference, tuple(model.output_names), model.count_params(),
                  str(weights) if weights else None, how)
