"""The `--resume` backup written at each epoch's end, cheaply and so that a kill at any moment
leaves a whole backup: the old one or the new one.

Why: Keras' BackupAndRestore writes it with `model.save_weights`, which walks the model's object
tree (`dir()` and `getattr` of every attribute of every layer) and creates each HDF5 group and
dataset through h5py's high-level API: 0.4-0.5 s of CPU per epoch for Inception v3 at width 0.25
(319 groups, 569 arrays), 5-6% of an epoch on a 2-core CPU (issue 31 item 4; cProfile in
tools/bench_train_vs_keras.py's notes). Here:

- `WeightsPlan` walks the tree once, with Keras' own walk (`saving_lib._save_state`, into a store
  that only records), and keeps which objects save their variables under which HDF5 path and
  attributes. Each save then asks only those objects for their variables (`save_own_variables`,
  Keras' own code, so the values are exactly Keras') and writes them with h5py's low-level calls
  in the layout Keras writes and `load_weights` reads (`<path>/vars/<i>`, the group's `name`
  attribute). A plan is for one set of variables: it is rebuilt when the model's or the
  optimizer's variables are not the ones it was made for (an unfrozen phase, a rebuilt optimizer).
  Where Keras is laid out otherwise (the private names are gone), `model.save_weights` is used.
- The files are written under staged names and renamed into place in an order that `settle()`
  can finish after a kill (`save_backup` lists the steps). Renames are atomic (POSIX), so at every
  moment the folder holds the last whole backup, or the staged new one complete with its metadata.
  No fsync: a kill (SIGKILL) loses nothing the kernel holds; a power cut is not covered (nor was it
  by Keras' writer, which rewrote the weights file in place).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
# the new backup while it is written; whole once STAGED_METADATA exists (written after the weights)
STAGED_WEIGHTS = "staged.weights.h5"
STAGED_METADATA = "staged_metadata.json"
STAGED = (STAGED_WEIGHTS, STAGED_METADATA)


def _staged_epoch(path: Path) -> int | None:
    """The epoch count in a staged metadata file, or None when it is missing or not whole (a kill
    while it was written: then nothing after it happened either)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    epoch = found.get("epoch") if isinstance(found, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1 else None


def settle(backup: Path, quiet: bool = False) -> int | None:
    """Finish or undo a save that a kill interrupted in the backup folder `backup`, so that its
    `latest.weights.h5` and `training_metadata.json` (and the `.bkp` pair) are a whole backup.
    A complete staged backup (its metadata whole: written after its weights) is moved into place
    by the steps `save_backup` had left; an incomplete one is deleted (the previous backup was not
    touched yet). Returns the epoch count of the backup it completed (a note on stderr unless
    `quiet`), else None. Idempotent: a kill during `settle` is finished by the next call."""
    weights, meta = backup / WEIGHTS, backup / METADATA
    staged_w, staged_m = backup / STAGED_WEIGHTS, backup / STAGED_METADATA
    if not staged_m.is_file() and not staged_w.exists():
        return None
    epoch = _staged_epoch(staged_m) if staged_m.is_file() else None
    if epoch is None:  # the kill came before the new backup was whole: the old one is untouched
        for p in (staged_w, staged_m):
            if p.is_file():
                p.unlink()
        return None
    if staged_w.is_file():  # steps 3-5 not all done
        _rotate(weights, meta)
        os.replace(staged_w, weights)
    os.replace(staged_m, meta)
    if not quiet:
        print(f"note: {backup}: completed the backup after epoch {epoch} that the interrupted run was "
              f"writing", file=sys.stderr)
    return epoch


def _rotate(weights: Path, meta: Path) -> None:
    """Keep the current pair as the `.bkp` pair (Keras' double checkpoint), weights first."""
    for p in (weights, meta):
        if p.is_file():
            os.replace(p, p.with_name(p.name + ".bkp"))


def save_backup(backup: Path, write_weights, metadata: dict, keep_previous: bool = True) -> None:
    """Write a new backup into the folder `backup`: `write_weights(path)` writes the weights file,
    `metadata` becomes training_metadata.json. The steps, each one a whole file or an atomic rename:
    (1) the weights to staged.weights.h5, (2) the metadata to staged_metadata.json (from here on
    the new backup is complete), (3) the current pair renamed to the `.bkp` pair (only with
    `keep_previous`), (4) the staged weights and (5) the staged metadata renamed into place. A kill
    before (2) is complete leaves the old backup (`settle` deletes the staged files); after it,
    `settle` does what is left of (3)-(5)."""
    backup.mkdir(parents=True, exist_ok=True)
    staged_w, staged_m = backup / STAGED_WEIGHTS, backup / STAGED_METADATA
    settle(backup, quiet=True)  # a kill's leftovers (resuming settles them first: none then)
    write_weights(staged_w)
    # no temp name: a kill while it is written leaves a prefix of a JSON object, never valid JSON,
    # which settle() takes for an incomplete backup
    staged_m.write_text(json.dumps(metadata))
    if keep_previous:
        _rotate(backup / WEIGHTS, backup / METADATA)
    os.replace(staged_w, backup / WEIGHTS)
    os.replace(staged_m, backup / METADATA)


class LayoutError(RuntimeError):
    """Keras' saving code is not laid out as `WeightsPlan` expects (another Keras version)."""


class WeightsPlan:
    """Which objects of `model` (a built Keras model, its optimizer built) save which variables
    where in a `.weights.h5` file, found once with Keras' own walk; `write(path)` then writes the
    file Keras' `model.save_weights(path)` would, without walking again. Raises LayoutError when
    this Keras's saving code is not laid out as expected (the caller then uses save_weights)."""

    def __init__(self, model):
        self.model = model
        self.key = self.fingerprint(model)
        self.entries = _record(model)  # [(inner path, group attributes or None, saveable)]

    @staticmethod
    def fingerprint(model) -> tuple:
        """What the plan depends on: the model, its optimizer and the identity of their variables."""
        opt = getattr(model, "optimizer", None)
        opt_vars = tuple(map(id, opt.variables)) if opt is not None else ()
        return id(model), id(opt), tuple(map(id, model.variables)), opt_vars

    def fits(self, model) -> bool:
        """Whether this plan still describes `model` (same object, same variables)."""
        return self.fingerprint(model) == self.key

    def snapshot(self) -> list[tuple[str, dict | None, list[tuple[str, object]]]]:
        """The variables' values now, as NumPy arrays, by entry: [(path, attributes, [(key, array)])];
        each object's own `save_own_variables` says what it saves (as in Keras' save)."""
        import keras
        out = []
        for path, attrs, saveable in self.entries:
            store = _Collect(keras.ops.convert_to_numpy)
            saveable.save_own_variables(store)
            out.append((path, attrs, list(store.items())))
        return out

    def write(self, path: str | Path) -> None:
        """Write the model's variables to `path` (HDF5), as `model.save_weights` would."""
        write_h5(path, self.snapshot())


class _Collect(dict):
    """The store `save_own_variables` fills (`store[key] = value`), converting each value to
    NumPy as Keras' H5IOStore does on writing."""

    def __init__(self, convert):
        super().__init__()
        self._convert = convert

    def __setitem__(self, key, value):
        super().__setitem__(key, self._convert(value))


def _record(model) -> list:
    """Keras' walk of `model` (saving_lib._save_state, as save_weights_only runs it) into a store
    that records each entry's path and attributes and the object whose variables go there."""
    try:
        from keras.src.saving import saving_lib
        base = saving_lib.H5IOStore
        walk = saving_lib._save_state
    except (ImportError, AttributeError) as e:
        raise LayoutError(f"Keras' saving code is laid out otherwise: {e}") from None
    entries: list = []
    current: list = []

    class Recorder(base):  # _save_state accepts only its own stores
        def __init__(self):  # no file
            self.mode = "w"

        def __bool__(self):
            return True

        def make(self, path, metadata=None):
            if not current:
                raise LayoutError("Keras' saving code is laid out otherwise: make() outside _save_state")
            entries.append((path, dict(metadata) if metadata else None, current[-1]))
            return _Collect(lambda v: None)  # the values are read at each save, not now

        def close(self):
            pass

    def spy(saveable, *args, **kwargs):
        current.append(saveable)
        try:
            return walk(saveable, *args, **kwargs)
        finally:
            current.pop()

    saving_lib._save_state = spy  # the walk calls itself by this module-level name
    try:
        spy(model, weights_store=Recorder(), assets_store=None, inner_path="", visited_saveables=set())
    finally:
        saving_lib._save_state = walk
    return entries


def write_h5(path: str | Path, entries) -> None:
    """Write `entries` ([(path, attributes, [(key, array)])]) to the HDF5 file `path` in the layout
    of Keras' H5IOStore: group `<path>/vars` (`vars` at the root for path ""), made at once when it
    has attributes (Keras' metadata: the object's name) and else only for its first array; one
    dataset per array, named by its key. Numeric arrays go through h5py's low-level calls (the
    high-level API's Python costs about as much again); others (bfloat16, strings, booleans) through
    the same high-level call Keras makes."""
    import h5py
    import numpy as np
    from h5py import h5a, h5d, h5g, h5p, h5s, h5t

    lcpl = h5p.create(h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(True)
    scalar = h5s.create(h5s.SCALAR)
    utf8 = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        for inner, attrs, items in entries:
            name = f"{inner}/vars" if inner else "vars"
            gid = None
            if attrs:
                gid = h5g.create(f.id, name.encode(), lcpl=lcpl)
                for k, v in attrs.items():
                    if isinstance(v, str):  # what h5py's attrs[k] = str makes: a scalar UTF-8 string
                        aid = h5a.create(gid, k.encode(), h5t.py_create(utf8, logical=True), scalar)
                        aid.write(np.array(v, dtype=utf8))
                    else:
                        h5py.Group(gid).attrs[k] = v
            for key, value in items:
                if gid is None:
                    gid = h5g.create(f.id, name.encode(), lcpl=lcpl)
                a = np.asarray(value)
                if a.dtype.kind in "iuf" and a.dtype.isnative:  # (bfloat16's kind is "V")
                    space = h5s.create_simple(a.shape) if a.shape else scalar
                    did = h5d.create(gid, str(key).encode(), h5t.py_create(a.dtype), space)
                    did.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(a))
                elif a.dtype.name == "bfloat16":  # as H5IOStore.__setitem__
                    ds = h5py.Group(gid).create_dataset(key, data=a)
                    ds.attrs["dtype"] = "bfloat16"
                else:
                    h5py.Group(gid)[key] = a


__all__ = ["WEIGHTS", "METADATA", "STAGED_WEIGHTS", "STAGED_METADATA", "STAGED", "settle", "save_backup",
           "LayoutError", "WeightsPlan", "write_h5"]
