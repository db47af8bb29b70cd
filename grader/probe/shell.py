"""Run notebook cells with IPython's machinery, without a Jupyter kernel.

`%magics` and `!commands` are translated as Jupyter would, but shell commands are not run during
grading (a `!pip install` has no network anyway), GUI/matplotlib event loops are no-ops,
`%load_ext` of an extension the grading machine lacks (Colab's `tensorboard`) does nothing,
Colab's Drive and file transfers do nothing (grader/probe/colab.py), and a package the grading
machine lacks is imported as a stand-in (grader/probe/packages.py).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from IPython.core.extensions import ExtensionManager
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.text import SList

from grader.checks.common import describe_error
from grader.probe import colab, packages


class GradingExtensions(ExtensionManager):
    def load_extension(self, module_str: str):
        """Colab has extensions the grader lacks: `%load_ext tensorboard` at the top of the
        imports cell failed it, and every later cell with it."""
        try:
            return super().load_extension(module_str)
        except ModuleNotFoundError as err:
            print(f"[grader] %load_ext {module_str} does nothing while grading ({err})")
            return None


class GradingShell(InteractiveShell):
    def init_extension_manager(self):
        self.extension_manager = GradingExtensions(shell=self, parent=self)
        self.configurables.append(self.extension_manager)

    def enable_gui(self, gui=None):  # `%matplotlib inline` asks for this; nothing to show here
        return None

    def system(self, cmd):
        print(f"[grader] shell command not run while grading: !{cmd}")
        self.user_ns["_exit_code"] = 0

    def getoutput(self, cmd, split=True, depth=0):
        print(f"[grader] shell command not run while grading: !{cmd}")
        return SList()


@dataclass(frozen=True)
class CellRun:
    status: str  # "ok" or "error"
    message: str = ""


def import_from_working_folder() -> None:
    """A kernel imports modules from its working folder (`%%writefile helpers.py`, then `from
    helpers import to_device` in the loops cell); the probe did not, and the helpers were a
    missing package's stand-in (blind round 11, 25/40). Last on sys.path, so that nothing
    written there shadows a library the grader imports."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def make_shell() -> GradingShell:
    shell = GradingShell.instance()
    colab.install()  # `from google.colab import drive` at the top of a cell fails nothing
    colab.quiet_cuda()  # nor does `torch.cuda.synchronize()` before reading the clock
    packages.install()  # nor does `from torchinfo import summary` (not installed here)
    import_from_working_folder()
    shell.user_ns.setdefault("__name__", "__main__")
    # Plain tracebacks without colours: IPython's default formatting inspected the source of
    # every frame and took 0.7-2 s for one failing `%run precheck.py`; these still name the
    # cell and line in the probe's log.
    shell.InteractiveTB.set_mode(mode="Plain")
    shell.colors = "NoColor"
    return shell


def run_cell(shell: GradingShell, source: str) -> CellRun:
    """Execute one cell; report its exception by type and message (tracebacks stay in the log)."""
    # Through the class: a cell that replaces `get_ipython().run_cell` changes nothing here.
    result = GradingShell.run_cell(shell, source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is None:
        return CellRun("ok")
    return CellRun("error", describe_error(error))
