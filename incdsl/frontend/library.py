"""The reference spec library that ships inside the package, and the names people call it by.

`incdsl summary inception_v3`, `incdsl.load("v3")` and `use "lib/inception_v3.inc"` (in a spec of
your own, when no file of that name sits beside it) all read the specs installed with incdsl, so a
`pip install incdsl` without a checkout has the ten reference networks. In a checkout the package's
`specs` entry is a link to the repository's `specs/` folder: one copy of each file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The folder of the shipped specs (`specs/*.inc`, `specs/lib/*.inc`).
LIBRARY = Path(__file__).resolve().parent / "specs"


@dataclass(frozen=True)
class Reference:
    """One shipped spec: its file name, what it reproduces, and the short names it answers to."""
    file: str
    matches: str
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The built-in name: the file name without `.inc` (`inception_v3`)."""
        return self.file.removesuffix(".inc")

    @property
    def path(self) -> Path:
        """Where the shipped spec file lies inside the installed package (`incdsl/frontend/specs/`)."""
        return LIBRARY / self.file


# spec file -> what it reproduces (tests/backends/test_references.py checks each "exact" claim)
REFERENCES: tuple[Reference, ...] = (
    Reference("googlenet.inc", "GoogLeNet paper, Table 1 (Szegedy et al. 2014)",
              ("v1", "inception_v1", "inception-v1")),
    Reference("googlenet_tv.inc", "torchvision `googlenet` (exact)", ("v1_tv", "inception_v1_tv")),
    Reference("bn_inception.inc", "BN-Inception paper, Figure 5 (Ioffe & Szegedy 2015)",
              ("v2", "inception_v2", "inception-v2", "bn-inception", "bninception")),
    Reference("inception_v3.inc", "keras.applications `InceptionV3` (exact; aux head from the paper)",
              ("v3", "inception-v3", "inceptionv3")),
    Reference("inception_v3_slim.inc",
              "keras.applications `InceptionV3` under TF-slim's `inception_v3_arg_scope` (same counts)",
              ("v3_slim",)),
    Reference("inception_v3_tv.inc", "torchvision `inception_v3` (exact)", ("v3_tv",)),
    Reference("inception_v4.inc", "timm `inception_v4` (exact; aux head from TF-slim)",
              ("v4", "inception-v4", "inceptionv4")),
    Reference("inception_resnet_v1.inc",
              "Inception-ResNet-v1 paper, Figures 7, 10-15 (Szegedy et al. 2016)",
              ("irv1", "ir_v1", "inception-resnet-v1")),
    Reference("inception_resnet_v2.inc",
              "keras.applications `InceptionResNetV2` (exact; aux head from TF-slim)",
              ("irv2", "ir_v2", "inception-resnet-v2", "inceptionresnetv2")),
    Reference("xception.inc", "keras.applications `Xception` (exact)", ()),
)

_BY_NAME: dict[str, Reference] = {}
for _ref in REFERENCES:
    for _key in (_ref.name, *_ref.aliases):
        _BY_NAME[_key.lower()] = _ref


def builtin(name: str) -> Reference | None:
    """The shipped spec a name stands for (`inception_v3`, `v3`, `irv2`, `v3.inc`), or None."""
    return _BY_NAME.get(name.lower().removesuffix(".inc"))


def resolve(spec: str | Path) -> Path:
    """The file a command's SPEC argument means.

    An existing path is itself. A missing one is a built-in name when it has no folder part
    (`inception_v3`, `v3`) or when its folder is the library's own (`specs/v3.inc` in a checkout);
    anything else is returned unchanged, so the loader reports it missing.
    """
    path = Path(spec)
    try:
        if path.exists():
            return path
    except OSError:  # a name too long for the system: the loader says so
        return path
    ref = builtin(path.name)
    if ref is None:
        return path
    if str(path.parent) in ("", ".") or _same_dir(path.parent, LIBRARY):
        return ref.path
    return path


def shipped_import(relative: str) -> Path | None:
    """`use "lib/inception_v3.inc"` with no such local file: the shipped file, if there is one."""
    try:
        candidate = (LIBRARY / relative).resolve()
        candidate.relative_to(LIBRARY.resolve())  # never step outside the library with ../
        return candidate if candidate.is_file() else None
    except (ValueError, OSError, RuntimeError):  # outside, a name too long, a symlink loop
        return None


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
