"""One way to act around a heavy package's import without importing it: a `sys.meta_path` finder
that finds nothing itself and wraps the real loader of one module (`keras`, `tensorflow`).

The hook leaves `sys.meta_path` only when the import actually runs (`exec_module`), not when the
module is merely looked up: `importlib.util.find_spec("keras")`, which the backend rule uses to
see what is installed, asks every finder too, and a hook that removed itself there was gone
before the real import (incdsl's layers then never got registered, so `incdsl import` of a
compiled model with `lrn` failed: "Functional could not be deserialized").
"""
from __future__ import annotations

import importlib.abc
import sys
from typing import Callable


class ImportHook(importlib.abc.MetaPathFinder):
    """Runs `around(execute)` in place of module `name`'s own execution, once: `execute()` runs the
    real loader, so `around` acts before (settling a backend), after (registering layers) or
    around it (filtering native log lines). `install()` puts it first on `sys.meta_path`."""

    def __init__(self, name: str, around: Callable[[Callable[[], None]], None]) -> None:
        self.name, self.around = name, around

    def install(self) -> None:
        """Put this hook first on `sys.meta_path`, unless one for the same module is there."""
        if not any(isinstance(f, ImportHook) and f.name == self.name for f in sys.meta_path):
            sys.meta_path.insert(0, self)

    def find_spec(self, fullname, path=None, target=None):
        """The real finders' spec for `name`, its loader wrapped; None for every other module."""
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Wrapped(spec.loader, self)
        return spec


class _Wrapped(importlib.abc.Loader):
    def __init__(self, loader, hook: ImportHook) -> None:
        self._loader, self._hook = loader, hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self._hook]  # the import runs now
        module.__loader__ = self._loader  # the package sees its own loader (resources, is_package)
        module.__spec__.loader = self._loader
        try:
            self._hook.around(lambda: self._loader.exec_module(module))
        except BaseException:
            self._hook.install()  # the import failed: a later one is wrapped again
            raise

    def __getattr__(self, name):
        return getattr(self._loader, name)
