"""incdsl: a graph DSL and compiler for Inception-family CNNs.

    net = incdsl.load("inception_v3", width=0.5)   # a .inc file or a shipped reference name
    net.summary()                                  # the table, as Keras prints it
    net.count_params(), net.macs                   # params (Keras' count), MACs per image
    model = net.to_keras()                         # keras.Model (Keras is imported only now)
    net.to_onnx("v3.onnx"); net.draw("v3.svg", depth=1)
    incdsl.compare("inception_v3", sweep={"width": [0.5, 1.0]})   # rows of counts per variant
    incdsl.fit("inception_v3", "width", params=10_000_000)      # the widest v3 under 10 M params
    incdsl.explore("tiny.inc", "digits/train", sweep={"width": [0.5, 1]}, epochs=2)  # trained on Ray Tune

Errors: `SpecError` (a bad spec, with file:line:col), `UsageError` (a bad request, such as an
unknown argument; `ArgumentError` for a value of the wrong kind), `DataError` (a training run that
failed while it ran: the loss diverged, the data vanished or does not decode).
"""
from .analysis.budgets import compare, fit
from .backends.keras import quiet_import as _quiet_import
from .backends.keras import register as _keras_register
from .errors import ArgumentError, DataError, Span, SpecError, UsageError
from .explore import explore  # the function shadows the package's name (incdsl.explore.x still imports)
from .network import Network, Spec, load, loads
from .version import __version__

_keras_register.install()  # custom Keras layers load after `import incdsl`; Keras itself is not imported
_quiet_import.install()  # TensorFlow's native start-up lines filtered when it imports (quiet_import.py)

__all__ = ["load", "loads", "compare", "fit", "explore", "Spec", "Network", "SpecError", "UsageError",
           "ArgumentError", "DataError", "Span", "__version__"]
