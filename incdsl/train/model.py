"""The model as it trains and as it is saved: preprocessing inside (raw 0-255 pixels in), losses,
optimizer with the papers' schedules, compile."""
from __future__ import annotations

import keras

from ..errors import OptionError
from .config import RECIPES, HeadLoss, TrainConfig


def preprocessing_layer(kind: str, channels: int):
    """The Keras layer that turns raw 0-255 pixels (H, W, C) into the network's input, named
    'preprocess': 'inception' scales to [-1, 1]
    (keras.applications.inception_v3.preprocess_input), 'unit' to [0, 1], 'imagenet'
    subtracts torchvision's ImageNet mean and divides by its std per channel
    (keras.layers.Normalization); 'none' gives None (no layer). Raises UsageError for
    'imagenet' with `channels` other than 3."""
    if kind == "inception":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if kind == "unit":
        return keras.layers.Rescaling(1 / 255.0, name="preprocess")
    if kind == "imagenet":
        if channels != 3:
            raise OptionError("{preprocess} imagenet needs 3-channel images")
        mean = [255 * m for m in (0.485, 0.456, 0.406)]  # torchvision's ImageNet statistics
        var = [(255 * s) ** 2 for s in (0.229, 0.224, 0.225)]
        return keras.layers.Normalization(mean=mean, variance=var, name="preprocess")
    return None


def with_preprocessing(core, input_shape, kind: str, output_names: list[str]):
    """core(preprocess(raw image)), outputs named after the heads and cast to float32 (what the
    losses want under mixed precision). A single output stays a tensor, several form a dict."""
    inp = keras.Input(tuple(input_shape), name="image")
    layer = preprocessing_layer(kind, input_shape[-1])
    outs = core(layer(inp) if layer is not None else inp)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    outs = [keras.layers.Identity(name=n, dtype="float32")(o) for n, o in zip(output_names, outs)]
    return keras.Model(inp, outs[0] if len(outs) == 1 else dict(zip(output_names, outs)),
                       name=f"{core.name}_train")


# --- losses -------------------------------------------------------------------------------

class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical crossentropy with label smoothing, which Keras' sparse loss lacks."""

    def __init__(self, classes: int, from_logits: bool, label_smoothing: float, name="crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.classes, self.from_logits, self.label_smoothing = classes, from_logits, label_smoothing

    def call(self, y_true, y_pred):
        """Per-sample loss: integer labels `y_true` (batch,) or (batch, 1) made one-hot over
        `classes`, then keras.losses.categorical_crossentropy with label smoothing
        (targets y * (1 - s) + s / classes; Inception-v3 paper Section 7)."""
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        y = keras.ops.one_hot(labels, self.classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(y, y_pred, from_logits=self.from_logits,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        """Keras' config: the base loss's plus classes, from_logits and label_smoothing."""
        return {**super().get_config(), "classes": self.classes, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


def make_loss(head: HeadLoss, label_smoothing: float):
    """The loss of one head: sparse categorical crossentropy on integer labels (from logits unless
    the head ends in softmax), with label smoothing when `label_smoothing` > 0."""
    if label_smoothing:
        return SmoothedSparseCrossentropy(head.units, head.from_logits, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=head.from_logits)


def make_optimizer(name: str, lr: float, steps_per_epoch: int, weight_decay: float = 0.0):
    """Keras optimizer with the paper's schedule. `weight_decay` is decoupled (Keras' optimizers:
    each step w -= lr * weight_decay * w, after the gradient step) and applies to kernels only, not
    to biases or batch norm's gamma and beta."""
    opt = _optimizer(name, lr, steps_per_epoch, weight_decay or None)
    if weight_decay:
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def _optimizer(name: str, lr: float, steps_per_epoch: int, weight_decay: float | None):
    recipe = RECIPES[name]
    rate = lr
    if recipe.decay_rate != 1.0:
        rate = keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=max(1, steps_per_epoch * recipe.decay_epochs), decay_rate=recipe.decay_rate,
            staircase=True)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, weight_decay=weight_decay)
    if name == "rmsprop":
        # Keras adds epsilon inside the square root, as TF1's RMSProp (the paper's) did: eps 1.0 as in v3.
        return keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1.0, global_clipnorm=2.0,
                                        weight_decay=weight_decay)
    return keras.optimizers.Adam(rate, weight_decay=weight_decay)


def compile_for_training(model, heads: list[HeadLoss], config: TrainConfig, steps_per_epoch: int,
                         steps_per_execution: int = 1) -> None:
    """Compile `model` for training: one loss per head weighted by its `weight` (aux heads 0.3 in
    GoogLeNet, Section 5), the optimizer of `config` with its schedule (`make_optimizer`),
    top-1 accuracy on the main head (weighted by the batches' sample weights where they have them), XLA when
    `config.jit`, and `steps_per_execution` steps per call. Returns None."""
    main = next(h for h in heads if not h.train_only)
    single = len(heads) == 1
    loss = {h.name: make_loss(h, config.label_smoothing) for h in heads}
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate, steps_per_epoch,
                                 config.weight_decay),
        loss=loss[main.name] if single else loss,
        loss_weights=None if single else {h.name: h.weight for h in heads},
        # weighted: the validation batches filled up for several replicas weight their repeats 0
        # (shard.ShardValBatches); without sample weights a weighted metric is the plain one
        weighted_metrics=(
            {main.name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]} if not single
                          else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]),
        jit_compile=True if config.jit else "auto",
        steps_per_execution=steps_per_execution,
    )


def accuracy_key(heads: list[HeadLoss]) -> str:
    """The name Keras logs the main head's accuracy under: 'accuracy' for a one-output model,
    '<head>_accuracy' with aux heads (prefix 'val_' for validation)."""
    main = next(h for h in heads if not h.train_only)
    return "accuracy" if len(heads) == 1 else f"{main.name}_accuracy"
