"""The files README.md's "Start from pretrained weights" commands name, made here from the real
reference models with random weights and saved the way a reader would bring them (nothing can be
downloaded in a test): keras.applications' legacy .h5 and Keras 3's .weights.h5, a torchvision
googlenet state_dict, a timm inception_v4 state_dict as .safetensors, a folder of 5 classes of
images (iv3.keras, a model compiled by incdsl, the test makes with the CLI).
tests/cli/test_readme_pretrained.py runs the commands on them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

FLOWERS = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def write_flowers(root: Path, per_class: int = 4, size: int = 64) -> None:
    """flowers/<class>/NNNN.jpg: `per_class` JPEGs of size x size per class, each class its own
    colour plus noise (something a network can tell apart)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(FLOWERS):
        d = root / "flowers" / name
        d.mkdir(parents=True)
        base = np.zeros(3)
        base[k % 3] = 200.0 if k < 3 else 120.0
        for i in range(per_class):
            img = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype("uint8")
            Image.fromarray(img).save(d / f"{i:04d}.jpg", quality=90)


def write_keras_files(root: Path) -> dict[str, object]:
    """The three keras.applications files, from models with random weights (and random batch-norm
    statistics); returns the models by file name, to compare with what the commands wrote."""
    import keras

    notop = randomized(keras.applications.InceptionV3(include_top=False, weights=None), seed=1)
    save_legacy_h5(notop, root / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    top = randomized(keras.applications.InceptionV3(weights=None), seed=2)
    top.save_weights(root / "iv3.weights.h5")  # Keras 3's own format
    irv2 = randomized(keras.applications.InceptionResNetV2(weights=None), seed=3)
    save_legacy_h5(irv2, root / "irv2.h5")
    return {"inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5": notop, "iv3.weights.h5": top,
            "irv2.h5": irv2}


def write_torch_files(root: Path) -> dict[str, dict]:
    """googlenet.pth (torchvision's, with the aux heads its downloaded weights hold) and
    inception_v4.safetensors (timm); returns their state_dicts as numpy arrays."""
    import timm
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    g = torchvision.models.googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=True)
    torch.save(g.state_dict(), root / "googlenet.pth")
    v4 = timm.create_model("inception_v4", pretrained=False)
    save_file({k: v.contiguous() for k, v in v4.state_dict().items()}, str(root / "inception_v4.safetensors"))
    return {"googlenet.pth": {k: v.numpy() for k, v in g.state_dict().items()},
            "inception_v4.safetensors": {k: v.numpy() for k, v in v4.state_dict().items()}}


def randomized(ref, seed=0):
    """Random values in every weight of a keras.applications model (kernels and batch-norm
    statistics alike: fresh batch norms are the identity)."""
    rng = np.random.default_rng(seed)
    for layer in ref.layers:
        for w in layer.weights:
            name = w.path.split("/")[-1]
            if name == "moving_variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            elif name in ("gamma", "moving_mean", "beta", "bias"):
                v = rng.normal(1.0 if name == "gamma" else 0.0, 0.2, w.shape)
            else:  # kernels: scaled so activations stay O(1) through 100+ layers
                fan_in = int(np.prod(w.shape[:-1])) or 1
                v = rng.normal(0, np.sqrt(2.0 / fan_in), w.shape)
            w.assign(v.astype("float32"))
    return ref


def save_legacy_h5(model, path):
    """keras.applications' own file layout (what its *.h5 downloads hold)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
