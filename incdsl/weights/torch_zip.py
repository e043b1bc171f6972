"""A torch.save state_dict (`.pth`, `.pt`) read without PyTorch, for machines with Keras on JAX and
no torch (`pip install incdsl[jax]`).

torch.save writes (since PyTorch 1.6, torch/serialization.py `_save`) a zip archive: `<name>/data.pkl`,
a pickle of the state_dict whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` calls on persistent storages `('storage', torch.FloatStorage, key, location,
numel)`, the bytes of each storage in `<name>/data/<key>`, and their byte order in `<name>/byteorder`
(absent: little-endian). This reader unpickles with a fixed list of allowed globals (those calls,
the storage classes and OrderedDict) and so, like torch.load(weights_only=True), runs no code from the
file: anything else is refused. Tensors come back as numpy arrays (floating types as float32, as
incdsl.weights.torch gives them), in the file's order.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from ..errors import SpecError

# torch storage class -> numpy dtype of its elements (BFloat16: its 16 bits, widened below)
STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
            "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
            "ByteStorage": "u1", "BoolStorage": "?"}


class _Storage:
    """Stands for a torch storage class while unpickling (`torch.FloatStorage` -> its numpy dtype)."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGES[name]


class _Tensor:
    """A tensor as the pickle describes it: its storage's key and the view on it."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_rest):
    return data


_ALLOWED = {("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch" and name in STORAGES:
            return _Storage(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1],
                                                                                                _Storage)):
            raise pickle.UnpicklingError(f"a persistent object {str(pid)[:60]}")
        return pid[1], str(pid[2])


def _array(zf: zipfile.ZipFile, prefix: str, tensor: _Tensor, big: bool) -> np.ndarray:
    kind, key = tensor.storage
    dtype = np.dtype(
        kind.dtype).newbyteorder(
            ">" if big else "<") if np.dtype(kind.dtype).itemsize > 1 else np.dtype(kind.dtype)
    flat = np.frombuffer(zf.read(f"{prefix}data/{key}"), dtype=dtype)
    need = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size,
                                                           tensor.stride)) + 1 if all(tensor.size) else 0
    if need > flat.size:
        raise ValueError(f"tensor of shape {tensor.size} runs past its storage of {flat.size} elements")
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset:], shape=tensor.size,
                                           strides=[s * flat.itemsize for s in tensor.stride])
    out = np.array(view)
    if kind.name == "BFloat16Storage":  # bfloat16 is float32's upper half
        out = (out.astype(np.uint32) << 16).view(np.float32)
    elif out.dtype.kind == "f":
        out = out.astype(np.float32)
    return out.astype(out.dtype.newbyteorder("="))


def read_torch_zip(path) -> dict:
    """The state_dict in a torch.save zip file at `path`, tensors as numpy arrays (nested dicts, such
    as a checkpoint's {"state_dict": {...}}, kept as dicts). Raises SpecError for a file that is not
    such an archive (the legacy pre-1.6 pickle format needs PyTorch itself), or that holds anything
    but tensors, numbers, strings and dicts (a pickled model: reading it would run its code)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SpecError(f"{path} is not a torch.save zip archive ({e}); reading it needs PyTorch",
                        hint="pip install torch, or save the state_dict with safetensors") from None
    with zf:
        names = zf.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise SpecError(f"{path} is a zip archive but not one torch.save wrote (no single data.pkl)")
        prefix = pickles[0][:-len("data.pkl")]
        big = (f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() == b"big")
        try:
            state = _Unpickler(zf.open(pickles[0])).load()
        except pickle.UnpicklingError as e:
            raise SpecError(
                f"{path} holds pickled Python objects, not only tensors (it holds a {e}): a whole "
                f"model saved with torch.save(model), which is not read, as unpickling it would run "
                f"code from the file",
                hint="save the weights alone: torch.save(model.state_dict(), path)",
            ) from None
        except Exception as e:  # a damaged archive or pickle
            raise SpecError(f"{path} is not a readable PyTorch file: {type(e).__name__}: {e}") from None

        def convert(value):
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, _Tensor):
                try:
                    return _array(zf, prefix, value, big)
                except (KeyError, ValueError) as e:
                    raise SpecError(f"{path} is not a readable PyTorch file: {e}") from None
            return value
        return convert(state)


__all__ = ["read_torch_zip", "STORAGES"]
