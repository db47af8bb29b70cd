"""Packages a notebook imports that the grading machine lacks (Colab's `torchinfo`,
`tensorboard`, `wandb`, installed there with `!pip install`, which is not run while grading).

Off Colab, `from torchinfo import summary` in the imports cell raised ModuleNotFoundError and
took the rest of the cell with it (`import torch` included): every later cell failed and correct
work scored 17/40. While grading, an import written in a notebook cell of a package nobody can
find gives a stand-in instead, with a line in the probe's log: its names can be used and called
and do nothing. Imports made by libraries are left alone, so their optional-dependency checks
(`try: import scipy except ImportError`) still see what is installed. A module of an installed
package that a cell imports and that needs a missing one (`from torch.utils.tensorboard import
SummaryWriter` without tensorboard: blind round 11, the loops cell failed, 31/40) becomes a
stand-in itself when that need stops it, as the missing package would have been.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType

CELL_FILE = "<ipython-input-"  # the file name IPython gives each cell's code
# The reference package, hidden in the sandbox (grader/sandbox.py): importing it keeps failing.
HIDDEN = frozenset({"solutions"})


class Absent:
    """A name of a missing package: calling it or reading its attributes gives more of them."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args, **kwargs) -> Absent:
        return Absent(f"{self._name}()")

    def __getattr__(self, name: str) -> Absent:
        if name.startswith("__"):  # copy, pickle and friends: it has no such protocol
            raise AttributeError(name)
        return Absent(f"{self._name}.{name}")

    def __repr__(self) -> str:
        return f"<{self._name}: not installed on the grading machine nor handed in>"

    def _arithmetic(self, *_) -> Absent:
        return Absent(f"{self._name}(...)")

    # A value of the package's (torchmetrics' accuracy) flows on through `correct += acc * n`
    # and f-strings: only what reads it is wrong, not the loss computed beside it.
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __neg__ = _arithmetic

    def __format__(self, spec: str) -> str:
        return repr(self)


def missing_module(value: Absent) -> str:
    """The missing package or module a stand-in name came from."""
    return value._name.partition(".")[0]


class MissingPackage(ModuleType):
    __path__: list[str] = []  # a package: `import missing.sub` finds a stand-in too

    def __getattr__(self, name: str) -> Absent:
        if name.startswith("__"):
            raise AttributeError(name)
        return Absent(f"{self.__name__}.{name}")


class _StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: asked only for what no other finder found."""

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        if top in HIDDEN or not _imported_by_a_cell():
            return None
        if rest and not isinstance(sys.modules.get(fullname.rpartition(".")[0]), MissingPackage):
            return None  # a module missing from an installed package (torch.nope): no stand-in
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec) -> ModuleType:
        print(f"[grader] {spec.name} is not installed on the grading machine: a stand-in is used")
        return MissingPackage(spec.name)

    def exec_module(self, module) -> None:
        pass


class _CellImports(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: a module a cell imports loads as usual, through a loader that
    turns it into a stand-in if its own code stops for want of a package nobody has."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in HIDDEN or not _imported_by_a_cell():
            return None
        spec = _real_spec(fullname, path, target)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _NeedsMissing(spec.loader)
        return spec


class _NeedsMissing(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # nothing of ours stays
        try:
            self.loader.exec_module(module)
        except ModuleNotFoundError as err:
            missing = (err.name or "").partition(".")[0]
            if not missing or missing in HIDDEN or _real_spec(missing) is not None:
                raise  # a module missing from an installed package, or a hidden one: an error
            print(
                f"[grader] {module.__name__} needs {missing}, which is not installed on the "
                "grading machine: a stand-in is used"
            )
            module.__class__ = MissingPackage


def _real_spec(fullname, path=None, target=None):
    """The spec the finders other than the grader's own give, or None."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None or isinstance(finder, _CellImports | _StandIns):
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def stand_ins() -> list[str]:
    """The modules that are stand-ins in this process, outermost only (for error messages:
    common.describe_error); google.colab, a stand-in in every probe, left out."""
    found = {n for n, m in list(sys.modules.items()) if isinstance(m, MissingPackage)}
    colab = {"google", "google.colab"}
    return sorted(n for n in found - colab if n.rpartition(".")[0] not in found)


def _imported_by_a_cell() -> bool:
    """Whether the import statement being served is in a notebook cell's own code, or in a
    module of the student's own in the working folder (`%%writefile my_layers.py` with `import
    wandb` at its top: the whole module became a stand-in and its correct ResBlock and
    Transition were lost, 21/50 in blind round 11b), which Colab runs as it runs the cells."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(("<frozen", __file__)):
        frame = frame.f_back
    if frame is None:
        return False
    name = frame.f_code.co_filename
    return name.startswith(CELL_FILE) or _in_working_folder(name)


def _in_working_folder(filename: str) -> bool:
    """Whether `filename` is a module right in the working folder (not below it)."""
    if not filename.endswith(".py"):
        return False
    folder = os.path.dirname(os.path.realpath(filename))
    return folder == os.path.realpath(os.getcwd())


def install() -> None:
    """Put the stand-in finder last on sys.meta_path, the cell imports' first (once)."""
    if not any(isinstance(f, _StandIns) for f in sys.meta_path):
        sys.meta_path.append(_StandIns())
    if not any(isinstance(f, _CellImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _CellImports())
