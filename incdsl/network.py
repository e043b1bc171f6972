"""The checked network: the record the passes built (graph IR, shapes, counts, pads...) and the
public API on it."""
from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .elaborate.statements import elaborate, network_params
from .errors import ArgumentError, OptionError, UsageError, missing_file
from .frontend.program import Program, load_program, load_program_text
from .ir.graph import Graph, Layer
from .ir.window import Pads
from .ops import Count, Shape
from .ops.groups import WEIGHTED
from .passes import count as count_pass
from .passes import pipeline
from .passes.count import total
from .passes.record import Record


class Spec:
    """A parsed spec file. Parse once, then `build` as many variants as you like.

    `path` is a `.inc` file or the name of a shipped reference spec (`"inception_v3"`, `"v3"`,
    `incdsl list` names them); `network` picks one network when the file defines several.
    Raises `SpecError` (syntax, unknown names, missing files, with file:line:col).
    """

    def __init__(self, path: str | Path, network: str | None = None, *, _program: Program | None = None):
        self.path = str(path)
        self.network_name = network
        with _gc_paused():
            self.program: Program = _program if _program is not None else load_program(path)

    @classmethod
    def from_text(cls, text: str, network: str | None = None, name: str = "<string>") -> "Spec":
        """A spec from text in memory (`use` paths are relative to the working directory)."""
        return cls(name, network, _program=load_program_text(text, name))

    @classmethod
    def from_sources(cls, path: str | Path, sources: dict[Path, str], network: str | None = None) -> "Spec":
        """The spec `path` with its files' text taken from `sources` (resolved path -> text) where
        given rather than read from disk; the files still read from disk are `program.files`."""
        return cls(path, network, _program=load_program(path, overlays=sources))

    @cached_property
    def params(self) -> dict:
        """The network's parameters with their default values (`{"classes": 1000, "width": 1.0}`)."""
        return network_params(self.program, self.network_name)

    @cached_property
    def variants(self) -> dict[str, dict]:
        """The spec's named variants: label -> the arguments it sets."""
        return self.build().graph.variants

    def build(self, **overrides) -> "Network":
        """Elaborate and check one variant. Values may be Python values or command-line text
        (`width="0.75"` is read as the default's type). Raises `SpecError` for a spec that does
        not check at these values and `UsageError` (`ArgumentError`) for an unknown parameter or a
        value of the wrong kind."""
        with _gc_paused():
            g = elaborate(self.program, self.network_name, overrides)
            return Network(g, self.path, tuple(self.program.files))


def _check_depth(depth) -> None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ArgumentError("depth", depth, "depth must be None or an int of at least 1")


@contextlib.contextmanager
def _gc_paused():
    """The front end allocates many small objects and frees few, so Python's cyclic collector
    would scan them over and over: a third of the time of a 100,000-layer spec (issue 12). What
    it builds holds no cycles worth collecting meanwhile; the collector resumes afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load(path: str | Path, network: str | None = None, **arguments) -> "Network":
    """Parse, elaborate and check a spec: `incdsl.load("specs/googlenet.inc", width=0.5)`.

    `path` is a `.inc` file or a shipped reference name (`"inception_v3"`, `"v3"`, `"irv2"`).
    `arguments` override the network's parameters (see `Network.arguments`). Raises `SpecError`
    for a bad spec (with file:line:col), `UsageError` for an unknown argument or a bad value.
    """
    return Spec(path, network).build(**arguments)


def loads(text: str, network: str | None = None, **arguments) -> "Network":
    """`load` for spec text in memory: `incdsl.loads("network n() { input 8x8x3 ... }")`."""
    return Spec.from_text(text, network).build(**arguments)


@dataclass(frozen=True)
class Head:
    """One output of the network: `name`, the graph `node` it reads, its `shape` (NHWC or `(n,)`, batch
    left out), whether it is `train_only` (an auxiliary classifier, `train_output`) and its
    `loss_weight` in the training loss (1.0 for the main output).
    """
    name: str
    node: str
    shape: Shape
    train_only: bool
    loss_weight: float


class Network:
    """A checked network: the graph IR plus the shapes and counts the passes computed.

    Build one with `incdsl.load(...)` / `incdsl.loads(...)`. Shapes are NHWC with the batch left
    out (`(299, 299, 3)`; flat vectors `(1000,)`). Counts follow the README's conventions: params
    as Keras' `count_params()` (trainable plus batch-norm moving statistics), MACs of conv and
    dense layers for one image. Training-only heads (auxiliary classifiers) are counted unless
    `inference=True`. Making one runs the passes of `incdsl.passes.PIPELINE` in order on `graph`
    (prune, infer-shapes, mark-inference) into `record`, the frozen `Record` (passes/record.py)
    whose fields `graph`, `shapes`, `counts`, `derivations`, `inference` and `pads` are this
    object's attributes of those names; raises `SpecError` where a layer does not fit.
    """

    def __init__(self, graph: Graph, path: str = "<memory>", input_files: tuple[Path, ...] = ()):
        self.path = path
        self.input_files = input_files  # the spec and the files it `use`s: never replaced by an output
        self.record: Record = pipeline.run(Record(graph))
        # The record's fields, as plain attributes: the backends and reports read them in their
        # inner loops, where a property per read makes Inception-ResNet-v2's `report()` 8% slower.
        self.graph: Graph = self.record.graph  # as the passes left it: pruned, `fit` kernels fitted
        self.shapes: dict[str, Shape] = self.record.shapes  # NHWC, batch left out
        self.counts: dict[str, Count] = self.record.counts  # params and MACs for one image
        self.derivations: dict[str, str] = self.record.derivations  # size arithmetic, for error notes
        self.inference: frozenset[str] = self.record.inference  # the layers the inference graph keeps

    @cached_property
    def pads(self) -> dict[str, Pads]:
        """Layer name -> `Pads` (top, bottom, left, right and ceil overhang, in pixels) of every conv
        and pool, from the pipeline's on-demand pass resolve-pads (passes/pads.py), which the
        backends read. Run on first use (the record then holds it too), as `fields` is: summaries
        and sweeps never need it."""
        self.record = pipeline.demand(self.record, "pads")
        return self.record.pads

    # -- what it is -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The network's name in the spec (`network inception_v3(...)`)."""
        return self.graph.name

    @property
    def arguments(self) -> dict:
        """The network's parameter values this build used, e.g. `{"classes": 1000, "width": 0.5}`."""
        return self.graph.params

    @property
    def params(self) -> dict:
        """Deprecated name of `arguments` (it never was a parameter count: see `count_params`)."""
        return self.graph.params

    @property
    def layers(self) -> dict[str, Layer]:
        """Every layer by hierarchical name (`mixed9/b2/conv_1`), in topological order."""
        return self.graph.layers

    @property
    def nx(self):
        """The graph IR as a networkx DiGraph (node attribute "layer"; edge attribute "port")."""
        return self.graph.g

    @property
    def input_shape(self) -> Shape:
        """The image input, NHWC without the batch: `(299, 299, 3)`."""
        return self.shapes["input"]

    @property
    def heads(self) -> list[Head]:
        """Every output with its node, shape, whether it is training-only, and its loss weight."""
        return [Head(o.name, o.node, self.shapes[o.node], o.train_only,
                     o.loss_weight) for o in self.graph.outputs]

    @property
    def outputs(self) -> dict[str, Shape]:
        """Output name -> shape, training-only heads included (`{"predictions": (1000,)}`)."""
        return {h.name: h.shape for h in self.heads}

    def is_train_only(self, name: str) -> bool:
        """True for a layer that only a training-only head reads."""
        return name not in self.inference

    # -- counts --------------------------------------------------------------------------
    def total(self, inference: bool = False) -> Count:
        """Trainable and non-trainable params and MACs of the whole network (`inference=True`:
        without training-only heads)."""
        return total(self.counts, self.inference if inference else None)

    def count_params(self, inference: bool = False) -> int:
        """Parameters as Keras' `Model.count_params()` counts them (trainable + non-trainable)."""
        return self.total(inference).params

    def count_macs(self, inference: bool = False) -> int:
        """Multiply-accumulates of conv and dense layers for one image (FLOPs = 2 x MACs)."""
        return self.total(inference).macs

    @property
    def macs(self) -> int:
        """MACs of one inference forward pass (training-only heads left out), as `incdsl check`."""
        return self.count_macs(inference=True)

    def group_counts(self, depth: int | None = None) -> dict[str, Count]:
        """Counts per module call (and per nesting level down to `depth`), by call name. Raises
        `ArgumentError` for a depth that is not None or an int of at least 1."""
        _check_depth(depth)
        return count_pass(self.counts, depth)

    @cached_property
    def depth(self) -> int:
        """Layers with weights (conv of any kind, and dense) on the longest path from the input to
        an output: GoogLeNet's "22 layers deep when counting only layers with parameters" (Szegedy
        et al. 2014, Section 5). Batch norm is not counted: it belongs to its conv."""
        best: dict[str, int] = {}
        for name, layer in self.layers.items():
            d = max((best[i] for i in layer.inputs), default=0)
            best[name] = d + (layer.op in WEIGHTED)
        return max(best[o.node] for o in self.graph.outputs)

    @cached_property
    def fields(self) -> dict:
        """Receptive field and effective stride of every layer, in input pixels
        (passes/receptive_field.py): {layer: Field(size=(h, w), stride=(h, w))}."""
        from .passes.receptive_field import receptive_fields
        return receptive_fields(self)

    # -- reports -------------------------------------------------------------------------
    def summary(self, depth: int | None = None, print_fn=print) -> None:
        """Print the summary table, as Keras' `Model.summary()` does: one row per layer (or per
        module call with `depth`), output shape, params and MACs, totals at the foot.
        `print_fn` receives the whole table as one string."""
        print_fn(self.table(depth))

    def report(self, batch: int = 1, precision: str = "float32", optimizer: str = "momentum") -> dict:
        """The summary as plain data, what `incdsl summary --json` prints: network, input,
        params {total, trainable, non_trainable}, macs, flops, inference, outputs, heads, depth,
        blocks and layers (each with its receptive field and memory), taps (backbone feature maps
        with stride and channels, as timm's feature_info) and memory (bytes: parameters by dtype,
        one image's forward pass, what a training step of `batch` images keeps, with the
        `optimizer`'s state at `precision`; passes/memory.py says how it is counted).
        Raises `OptionError` for a batch below 1, or a precision or optimizer it does not know."""
        from .analysis import summary_extras as extras
        from .passes.memory import OPTIMIZER_SLOTS, PRECISIONS
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise OptionError("{batch} must be an int of at least 1, got {value!r}", value=batch)
        for name, value, known in (("precision", precision, PRECISIONS),
                                   ("optimizer", optimizer, OPTIMIZER_SLOTS)):
            if value not in known:
                raise OptionError("{%s} {value!r} is not one of %s" % (name, ", ".join(known)), value=value)
        from .analysis.report import summary_dict
        data = summary_dict(self)
        data["taps"] = extras.taps(self)
        data["memory"] = extras.memory_json(self, batch, precision, optimizer)
        extras.add_layer_memory(data, self, precision)
        return data

    to_dict = report

    def expand(self) -> str:
        """The flat network, one layer per line with its inputs and shape (`incdsl expand`)."""
        from .analysis.report import expand_text
        return expand_text(self)

    def table(self, depth: int | None = None, rf: bool = False, **extras) -> str:
        """The summary table as text (what `summary()` prints); `rf` adds receptive fields;
        `extras` go to report.summary_table (columns, footer, ops, ops_label)."""
        _check_depth(depth)
        from .analysis.report import summary_table
        return summary_table(self, depth, rf=rf, **extras)

    # -- backends (imported lazily: the front end never loads TensorFlow, Keras or onnx) ---
    def to_keras(self, inference: bool = False, weights=None, seed: int | None = 0):
        """The `keras.Model`, raw NHWC float input as the spec's `input`.

        By default the *training* model: every head, auxiliary classifiers included (GoogLeNet:
        three outputs); `inference=True` leaves the training-only heads out. `weights`: a
        `.keras` / `.weights.h5` / keras.applications `.h5` file, or a weights dict; otherwise
        `seed` draws reproducible initial weights (`None`: Keras' own initializers).
        Needs `incdsl[keras]`; raises `MissingFileError` (a `FileNotFoundError`) for a weights file
        that is not there, `SpecError` for weights that do not fit. TensorFlow's native start-up
        lines are filtered from stderr meanwhile (incdsl/backends/keras/quiet_import.py).
        """
        if weights is not None and not isinstance(weights, dict) and not Path(weights).is_file():
            raise missing_file("weights file", weights)  # before building the model
        from .backends.keras.quiet_import import quiet_native  # Keras' backend room, loaded when used
        with quiet_native():
            from .backends.keras.build import build_model, load_weights_file
            if weights is None or isinstance(weights, dict):
                return build_model(self, inference=inference, seed=None if weights else seed, weights=weights)
            model = build_model(self, inference=inference, seed=seed)
            load_weights_file(model, self, str(weights))
            return model

    def to_onnx(self, path: str | Path, weights=None, *, via: str = "direct", layout: str = "nchw",
                batch: int | None = None, opset: int | None = None, fold_bn: bool = True,
                verify: bool | str = True, seed: int = 0):
        """Write the inference graph as an ONNX model and return what was written (a `Result`
        with path, opset, layout, size in bytes and the verification line).

        `via`: "direct" (onnx only) or "tf2onnx"; `layout`: "nchw" (PyTorch's) or "nhwc";
        `batch`: None for a dynamic batch or a fixed size; `verify` (True or "numpy", "keras",
        False) runs the ONNX checker, shape inference against this network's shapes and
        onnxruntime against incdsl's numpy reference (no Keras imported) or, with "keras", against
        the Keras model holding the same weights. Needs
        `incdsl[onnx]`. Raises `OptionError` (a `UsageError` naming the parameter) for options out
        of range (backends/onnx/convert.py `export` checks them), `UsageError` for a path it must not
        write (this network's own spec files among them), `MissingFileError` (a `FileNotFoundError`)
        for a weights file that is not there, `SpecError` for weights that do not fit.
        """
        from .backends.keras.quiet_import import quiet_native  # Keras' backend room, loaded when used
        with quiet_native():  # verifying against Keras imports TensorFlow
            from .backends.onnx.convert import DEFAULT_OPSET, export
            return export(self, path, weights, opset=DEFAULT_OPSET if opset is None else opset, layout=layout,
                          batch=batch, fold_bn=fold_bn, via=via, verify=verify, seed=seed)

    def draw(self, path: str | Path, depth: int | None = None, only: str | None = None) -> Path:
        """Draw the network with Graphviz; the format follows the suffix (.dot, .svg, .png).

        `depth` folds module calls below that depth into one box; `only` draws one module call
        (e.g. "mixed9"). Returns the path written. Raises `UsageError` for another suffix or when
        Graphviz' `dot` is missing (.svg/.png).
        """
        from .backends.dot import FORMATS, export
        path = Path(path)
        fmt_ = path.suffix.lstrip(".").lower()
        if fmt_ not in FORMATS:
            raise UsageError(f"draw writes {', '.join('.' + f for f in FORMATS)} files, not {path.name}")
        export(self, path, fmt=fmt_, depth=depth, only=only)
        return path

    def __repr__(self) -> str:
        inf, full = self.total(inference=True), self.total()
        extra = f" ({full.params:,} with training-only heads)" if full.params != inf.params else ""
        return (f"<Network {self.name}: {len(self.layers)} layers, {inf.params:,} params{extra}, "
                f"{inf.macs:,} MACs>")
