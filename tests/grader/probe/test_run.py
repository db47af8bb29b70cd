"""Does a given cell of the notebook that runs after the student's leave the student's own
helpers to the checks, and do the checks meet the modules the student's code ran with?
In-process: run_cells on a plain shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from grader.notebook_io import StudentNotebook, cells_to_run, normalise, release_test_sources
from grader.probe.context import MissingDefinition, ProbeContext
from grader.probe.run import run_cells
from grader.probe.shell import GradingShell
from solutions.paths import RELEASE_DIR


class _Quiet:
    """Progress that keeps only the last event's fields."""

    last: dict = {}

    def emit(self, event, **fields):
        self.last = {"event": event, **fields}


def _closing(cells: list[str], given: list[int], closing_after: int | None):
    """(shell, progress) after running `cells` (numbered from 1) as a notebook whose cells at
    `given` are the release's and whose last part is the cell at `closing_after`; each ran."""
    job = {
        "cells": cells,
        "cell_numbers": list(range(1, len(cells) + 1)),
        "skip": {},
        "given": given,
        "closing_after": closing_after,
    }
    shell, progress = GradingShell(), _Quiet()
    assert [o.status for o in run_cells(shell, job, progress)] == ["ok"] * len(cells)
    return shell, progress


def test_does_a_given_cell_leave_the_students_helper_to_the_checks(tmp_path):
    """fnn_mnist's given predictions cell binds `_images, _labels`; a mean_std whose helper was
    called `_images` then raised "'Tensor' object is not callable" in the checks (0/2), though it
    ran right in the notebook. A helper the student redefines later, and a given cell's own
    names, stay as the cells left them."""
    release = RELEASE_DIR / "fnn_mnist" / "fnn_mnist.ipynb"
    given = release_test_sources(release, given=True)
    cells = json.loads(release.read_text())["cells"]
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells]
    predictions = cells[ids.index("predictions")]
    assert normalise("".join(predictions["source"])) in given
    assert "_images" in "".join(predictions["source"])  # what the student's helper met
    job = {
        "cells": [
            "def _images(n):\n    return n + 1\n\ndef _labels(n):\n    return n\n",
            "_images, _labels, user = 5, 6, 7\n",  # the given cell
            "def _labels(n):\n    return n * 2\n",  # the student's own later definition
        ],
        "cell_numbers": [1, 2, 3],
        "skip": {},
        "given": [1],
    }
    shell = GradingShell()
    outcomes = run_cells(shell, job, _Quiet())
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert shell.user_ns["_images"](1) == 2
    assert shell.user_ns["_labels"](3) == 6
    assert shell.user_ns["user"] == 7


def test_do_the_helpers_of_our_test_cells_reach_the_students_code():
    """fnn_mnist's visible test cell of dense_layer defines `_as_module`; FNNs that called it
    ran in Colab but raised NameError when graded (13 of 40 points lost): the grader left the
    cell out. Its definitions run now, its asserts not, and a student's own `_shapes` stays."""
    release = RELEASE_DIR / "fnn_mnist" / "fnn_mnist.ipynb"
    cells = json.loads(release.read_text())["cells"]
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells]
    visible = "".join(cells[ids.index("visible_dense_layer")]["source"])
    mine = "from torch import nn\n\ndef _shapes(module):\n    return 'mine'\n"
    code = [mine, visible, "net = _as_module([nn.Linear(2, 3)])\n"]
    run = cells_to_run(StudentNotebook(release, code, [4, 5, 6]), release)
    assert [(number, given) for number, _, given in run] == [(4, False), (5, True), (6, False)]
    assert "assert" not in run[1][1]  # dense_layer is not defined here: the asserts would fail
    job = {"cells": [c for _, c, _ in run], "cell_numbers": [4, 5, 6], "skip": {}, "given": [1]}
    shell = GradingShell()
    assert [o.status for o in run_cells(shell, job, _Quiet())] == ["ok", "ok", "ok"]
    assert type(shell.user_ns["net"]).__name__ == "Sequential"
    assert shell.user_ns["_shapes"](None) == "mine"


def test_does_a_student_cell_shadowing_a_given_module_leave_the_module_to_the_checks():
    """Blind round 7: an extra last cell computed F-scores as `F = 2 * P * R / (P + R)`; Net,
    train_epoch and evaluate, which call `F.relu` and `F.cross_entropy`, then raised in every
    check (27 of 50 points lost) though they ran right in the notebook. A module the student
    imports under the name stays theirs."""
    job = {
        "cells": [
            "import math\nfrom torch.nn import functional as F\n",  # the given setup cell
            "def act(x):\n    return F.relu(x)\n",
            "F = 0.5\nmath = 'pi'\n",  # the student's later experiment
            "import operator as math\n",  # a module of the student's own under a given name
        ],
        "cell_numbers": [1, 2, 3, 4],
        "skip": {},
        "given": [0],
    }
    shell = GradingShell()
    assert [o.status for o in run_cells(shell, job, _Quiet())] == ["ok"] * 4
    assert shell.user_ns["act"](torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert shell.user_ns["math"].__name__ == "operator"


def test_does_a_shadowed_module_come_back_unless_later_code_reads_the_name():
    """Blind round 7: `nn = DeepFNN(...)` in a closing fnn_mnist experiment cell ran fine in the
    notebook, but every check then met `nn.Linear` on a DeepFNN (24/40). A module rebound by a
    student's cell comes back, unless code they define from then on (a function, a class's
    method) reads the name: then it stays as the cells left it."""
    job = {
        "cells": [
            "import json\nimport math\nimport torch\nfrom torch import nn\n"
            "from torch.nn import functional as F\n",
            "def layer(n):\n    return nn.Linear(n, n)\n",
            "math = 28\n\ndef size():\n    return math * 2\n",
            "nn = layer(3)\n",  # the closing experiments
            "for F in (torch.nn.ReLU, torch.nn.Tanh):\n    pass\n",
            "def plot(values):\n    return [v * 2 for v in values]\n",  # reads no F
            "json = {'a': 1}\n\nclass Saver:\n    def get(self):\n        return json['a']\n",
        ],
        "cell_numbers": [1, 2, 3, 4, 5, 6, 7],
        "skip": {},
        "given": [0],
    }
    shell = GradingShell()
    assert [o.status for o in run_cells(shell, job, _Quiet())] == ["ok"] * 7
    assert type(shell.user_ns["layer"](2)).__name__ == "Linear"
    assert shell.user_ns["size"]() == 56
    assert shell.user_ns["F"].relu(torch.tensor([-1.0])).item() == 0
    assert shell.user_ns["Saver"]().get() == 1


def test_does_code_defined_before_a_module_name_was_rebound_keep_the_module():
    """Blind round 12: `F = 4  # filters of the stem` in res_dense_nets' DenseNet cell, which
    reads it, stayed 4 (later code reads the name); ResBlock's `F.relu`, which ran right in the
    notebook before that cell, then raised in every check (37/50). The earlier code keeps the
    module under that name, and still reads every other global as the cells left it."""
    job = {
        "cells": [
            "import numpy as np\nimport torch\nfrom torch.nn import functional as F\n",
            "class Block:\n    def __call__(self, x):\n        return F.relu(x) * SCALE\n"
            "    @staticmethod\n    def act(x):\n        return F.relu(x)\n\n"
            "def act(x):\n    return F.relu(x)\n\nalias = act\nSCALE = 1\n",
            "F = 4\n\nclass Net:\n    def width(self):\n        return F * 3\n",
            "SCALE = 10\n",
            "def filters():\n    return np * 2\n",  # reads `np` as the number set after it
            "np = 8\n\ndef more():\n    return np + 1\n",
        ],
        "cell_numbers": [1, 2, 3, 4, 5, 6],
        "skip": {},
        "given": [0],
    }
    shell = GradingShell()
    assert [o.status for o in run_cells(shell, job, _Quiet())] == ["ok"] * 6
    ns, x = shell.user_ns, torch.tensor([-1.0, 2.0])
    assert ns["filters"]() == 16 and ns["more"]() == 9  # no attribute of the module read
    assert ns["F"] == 4 and ns["Net"]().width() == 12
    assert ns["Block"]()(x).tolist() == [0.0, 20.0]  # F the module, SCALE as the cells left it
    assert ns["Block"].act(x).tolist() == [0.0, 2.0]
    assert ns["act"](x).tolist() == ns["alias"](x).tolist() == [0.0, 2.0]


def test_does_an_import_only_a_branch_run_on_colab_makes_reach_the_students_code():
    """mlp_tuning, blind round 9: `import copy` inside a cell's Colab-only branch ran on Colab,
    not while grading; run_search, reading `copy`, failed (35/40). The names of a cell's
    top-level imports still unbound after the cells ran are bound; a function's own import, a
    name the cells bound, and a package the machine lacks are left as they are."""
    job = {
        "cells": [
            "import sys\n%matplotlib inline\n"
            "if 'google.colab' in sys.modules:\n"
            "    import copy, os.path as osp\n"
            "    from collections import OrderedDict as OD\n"
            "    import xml.dom\n"
            "    import not_a_package_anywhere\n"
            "    json = 'mine'\n",
            "def best(state):\n    import heapq\n    return copy.deepcopy(state)\n",
            "json = 'mine'\ntry:\n    pass\nexcept ImportError:\n    import json\n",
            "snapshot = best({'a': [1]})\n",  # failed once with a NameError, run again
            "%%time\nif 'google.colab' in sys.modules:\n    import bisect\n",  # a timed body
        ],
        "cell_numbers": [1, 2, 3, 4, 5],
        "skip": {},
    }
    shell = GradingShell()
    outcomes = run_cells(shell, job, _Quiet())
    assert [o.status for o in outcomes] == ["ok"] * 5
    ns = shell.user_ns
    assert ns["snapshot"] == {"a": [1]} and ns["OD"].__name__ == "OrderedDict"
    assert ns["osp"].__name__ == "posixpath" and ns["xml"].dom.__name__ == "xml.dom"
    assert ns["json"] == "mine" and ns["bisect"].__name__ == "bisect"
    assert "heapq" not in ns and "not_a_package_anywhere" not in ns


def test_does_a_graded_function_that_calls_display_find_it_in_the_checks():
    """Blind round 10: a data_answers that shows a pandas table with `display(...)` (IPython's
    builtin, there on Colab) raised NameError in the check (0/2): the snapshot that observers
    run in was taken before the shell, so the restore took IPython's builtins away. A fresh
    process, as a probe is (in this one the shell may already exist)."""
    code = (
        "from grader.probe.run import start_shell, run_cell\n"
        "shell, snapshot = start_shell([])\n"
        "assert run_cell(shell, 'def show(x):\\n    display(x)\\n    return x\\n').status == 'ok'\n"
        "snapshot.restore()\n"
        "assert shell.user_ns['show'](3) == 3\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_does_a_name_a_cut_short_cell_assigned_say_which_cell_and_why():
    """A cell that stopped the probe runs again as its definitions alone; `model = Net()`
    under them is gone. The check that reads `model` names that cell and why, from the cell's
    own text (the definitions alone do not assign it: "no cell defines it" misled)."""
    original = "class Net:\n    pass\n\nmodel = Net()\nfit(model, epochs=50)\n"
    job = {
        "cells": ["class Net:\n    pass\n"],
        "cell_numbers": [7],
        "skip": {},
        "cut_short": {"0": [original, "it stopped the probe (it ran longer than 30 s)"]},
    }
    shell = GradingShell()
    outcomes = run_cells(shell, job, _Quiet())
    assert [o.status for o in outcomes] == ["cut short"] and outcomes[0].source == original
    ctx = ProbeContext(ns=shell.user_ns, manifest=None, cells=tuple(outcomes))
    with pytest.raises(MissingDefinition, match=r"cell 7, which defines it, cut short: .*30 s"):
        ctx.get("model")
    assert ctx.get("Net")


def test_does_a_closing_experiment_leave_the_graded_definitions_to_the_checks():
    """Blind round 11 (fnn_mnist): B1 asks for "a variant of dense_layer"; a student's closing
    cell defined it under the same name (batch norm after the activation), and every check then
    met the variant through FNN: dense_layer_batchnorm 0/2 and fnn_bn.pt no longer loaded (36/40),
    though the notebook's own cells ran with the student's dense_layer. A definition that a cell
    after the last part (`closing_after`) rebinds after the last given cell that used the
    student's code is put back; a fix in their parts stands, and so does a name first defined
    in a closing cell, or one a given cell used after its experiment. The probe tells the
    supervisor which cell's definition the checks meet (for the report's note)."""
    cells = [
        "import torch\n",  # the given setup cell
        "def layer(n):\n    return n + 1\n\ndef model(n):\n    return layer(n) * 10\n",
        "def model(n):\n    return layer(n) * 100\n",  # a fix in a cell of the student's own
        "out = model(1)\n",  # a given cell uses the student's code
        "def scale(n):\n    return n\n\ndef model(n):\n    return layer(n) * scale(1000)\n",
        "def scale(n):\n    return 2 * n\n",  # an experiment a given cell then uses
        "used = model(1)\n",  # given
        "def layer(n):\n    return n - 1\n\ndef plot(n):\n    return n\n",  # the experiment
        "plot = 'figure'\nnet = model(1)\n",
    ]
    shell, progress = _closing(cells, given=[0, 3, 6], closing_after=4)  # the student's last part
    # plot: a value bound over a definition, named with its cell (blind round 15)
    assert progress.last["graded"] == {"model": 5, "layer": 2, "scale": 6, "plot": 9}
    assert (shell.user_ns["out"], shell.user_ns["used"]) == (200, 4000)
    assert shell.user_ns["net"] == 0  # the notebook's own experiment met its variant
    assert shell.user_ns["model"](1) == 4000  # the checks meet what the given cells used
    assert shell.user_ns["plot"] == "figure"
    # no last part found: the latest binding stands, as before
    shell, _ = _closing(cells, given=[0, 3, 6], closing_after=None)
    assert shell.user_ns["model"](1) == 0


def test_does_a_closing_experiment_leave_the_values_the_graded_code_reads():
    """Blind round 11b (cnn_techniques): train_epoch read a global `criterion =
    nn.CrossEntropyLoss()`; a closing cell tried `criterion = nn.CrossEntropyLoss(
    label_smoothing=0.1)`, and train_loss met the smoothed loss (49/50), though every cell of the
    notebook's own ran with the plain one. Put back, as a redefined function is."""
    cells = [
        "scale = 10\n\ndef model(n):\n    return n * scale\n",
        "out = model(1)\n",  # a given cell uses the student's code
        "scale = 20\nlocal = 5\n",  # the student's last part rebinds it: stands
        "scale = 100\nlocal = 6\nnet = model(1)\n",  # the experiment
    ]
    shell, _ = _closing(cells, given=[1], closing_after=2)
    assert shell.user_ns["net"] == 100  # the experiment met its own value
    assert shell.user_ns["model"](1) == 20 and shell.user_ns["local"] == 6


def test_does_a_closing_experiment_that_patches_a_class_in_place_leave_it_to_the_checks():
    """The last note's open item: `ResBlock.forward = plain` in a cell after the last part (to
    see what the skip connection buys) changed the class the notebook's own cells used, in
    place, so the checks met the patched class. Put back, and what it added removed; a patch in
    the student's own part, or one a given cell then used, stands."""
    cells = [
        "class Block:\n    def forward(self, x):\n        return x + 1\n",
        "Block.scale = 2\n",  # the student's own part patches it: stands
        "out = Block().forward(1)\n",  # given
        "Block.forward = lambda self, x: x * 100\nBlock.extra = 1\nnet = Block().forward(1)\n",
        "used = Block().forward(2)\n",
    ]
    shell, progress = _closing(cells, given=[2], closing_after=1)
    assert progress.last["patched"] == {}  # put back: the checks meet the class's own method
    block = shell.user_ns["Block"]
    assert shell.user_ns["net"] == 100  # the experiment met its patch
    assert block().forward(1) == 2 and block.scale == 2 and not hasattr(block, "extra")
    # a given cell then ran with the patch: it stands, and is told
    shell, progress = _closing(cells, given=[2, 4], closing_after=1)
    assert shell.user_ns["Block"]().forward(1) == 100
    assert progress.last["patched"] == {"Block.forward": 4}  # `Block.extra = 1`: no method


def test_does_a_given_cell_after_an_experiment_keep_only_the_code_it_used():
    """Blind round 12b (cifar_cnn_svm): a closing cell inserted after test_width patched
    `Dense.forward` (sigmoid) and defined `class CNN(CNN)` (an experiment); the given train_part2
    cell ran after it, and since it read the student's code (DeepClassifier, train_epoch), every
    experiment before it stood: dense_behaviour, cnn_behaviour and cnn_accuracy lost (35/40).
    A given cell keeps what it used, itself or through the code it calls (an instance's class
    too): only that."""
    cells = [
        "class Dense:\n    def forward(self, x):\n        return x + 1\n\n"
        "class CNN:\n    def forward(self, x):\n        return x + 2\n\n"
        "def helper(x):\n    return x\n\ndef train(x):\n    return helper(x) * 10\n\n"
        "class Deep:\n    def forward(self, x):\n        return train(x)\n",
        "dense = Dense()\n",  # given: uses Dense as it is
        "Dense.forward = lambda self, x: x * 100\n\nclass CNN(CNN):\n"
        "    def forward(self, x):\n        return 0\n\ndef helper(x):\n    return -x\n",
        "out = Deep().forward(1)\n",  # given: Deep, through it train and helper
        "net = CNN().forward(1)\n",
    ]
    shell, progress = _closing(cells, given=[1, 3], closing_after=0)
    ns = shell.user_ns
    assert ns["out"] == -10 and ns["net"] == 0  # the notebook's cells met the experiment
    assert ns["Dense"]().forward(1) == 2 and ns["CNN"]().forward(1) == 3
    assert ns["Deep"]().forward(1) == -10  # the helper a given cell then used stands
    assert progress.last["graded"] == {"CNN": 1, "helper": 3}
    cells[3] = "out = dense.forward(1)\n"  # given: the instance, so its class's patch
    shell, _ = _closing(cells, given=[1, 3], closing_after=0)
    assert shell.user_ns["Dense"]().forward(1) == 100 and shell.user_ns["CNN"]().forward(1) == 3


def test_does_code_that_read_a_name_as_a_number_keep_it_when_the_module_comes_back():
    """Blind round 12b (cifar_cnn_svm): `F = 64  # filters` in the CNN's cell, which reads it
    (`nn.Conv2d(32, F, ...)`, `F * 7 * 7`) and calls `fn.silu`; the deep cell imports F as the
    module again for DeepClassifier's `F.leaky_relu`. The notebook's cells built CNN with 64,
    but every check built it with the module: cnn_shape, cnn_raw_logits and cnn_accuracy raised
    TypeError (34/40). Code that reads the name itself keeps the value it was defined with; code
    that reads the module's attributes (`F.relu`) meets the module."""
    job = {
        "cells": [
            "from torch.nn import functional as F\n",
            "F = 64\n\nclass CNN:\n    def width(self):\n        return F * 7\n\n"
            "def act(x):\n    return F.relu(x)\n",
            "out = CNN().width()\n",  # given
            "from torch.nn import functional as F\n\ndef deep(x):\n    return F.relu(x)\n",
        ],
        "cell_numbers": [1, 2, 3, 4],
        "skip": {},
        "given": [0, 2],
    }
    shell = GradingShell()
    assert [o.status for o in run_cells(shell, job, _Quiet())] == ["ok"] * 4
    ns, x = shell.user_ns, torch.tensor([-1.0, 2.0])
    assert ns["out"] == 448 and ns["CNN"]().width() == 448
    assert ns["act"](x).tolist() == ns["deep"](x).tolist() == [0.0, 2.0]
    assert ns["F"].relu is torch.nn.functional.relu


def test_does_a_closing_loop_over_a_name_the_graded_code_reads_leave_its_value():
    """Blind round 12b (fnn_mnist): the answers cell bound `F = 28 * 28` (the features), flatten
    then read that F, and a closing cell's `for F in (nn.ReLU, nn.Tanh)` rebound it: the checks
    met F as torch.nn.functional, the module the setup cell had once bound to the name, and
    flatten raised TypeError (flatten_transform 0/1, normalisation_stats 1/2). The value the
    student's code read, 784, comes back; a module comes back only for a name a cell takes over
    from the module (or from an earlier such cell)."""
    cells = [
        "import math\nimport torch\nfrom torch.nn import functional as F\n",  # given
        "F = 28 * 28\n",  # the student's part
        "def flatten(image):\n    return image.reshape(F)\n",
        "out = flatten(torch.zeros(1, 28, 28)).shape\n",  # given
        "for F in (torch.nn.ReLU, torch.nn.Tanh):\n    pass\nmath = 3\nmath = 4\n",
    ]
    shell, _ = _closing(cells, given=[0, 3], closing_after=2)
    assert shell.user_ns["F"] == 784
    assert shell.user_ns["flatten"](torch.zeros(1, 28, 28)).shape == (784,)
    assert shell.user_ns["math"].sqrt(4.0) == 2.0  # shadowed by the experiment: back


def test_does_a_closing_experiment_shadowing_a_builtin_leave_it_to_the_graded_code():
    """Blind round 18 (fnn_mnist): a B3 cell counted parameters into `sum = 0` (and left
    `torch.set_grad_enabled(False)`); l2_regularization and answers, which call `sum(...)` and ran
    right in every cell of the notebook's own, raised "'int' object is not callable" in the
    checks (regularization_values and answers 0/2 each). The builtin comes back for them; a value
    the student's own part binds stands."""
    cells = [
        "def penalty(values):\n    return sum(values) + max(values)\n",
        "out = penalty([1, 2])\n",  # a given cell uses the student's code
        "len = 3\n\ndef size():\n    return len * 2\n",  # the student's own part
        "sum = 0\nfor n in (1, 2):\n    sum += n\nmax = 7\nlen = 4\n",  # the experiment
    ]
    shell, _ = _closing(cells, given=[1], closing_after=2)
    ns = shell.user_ns
    assert ns["penalty"]([1, 2]) == 5 and ns["out"] == 5
    assert ns["size"]() == 6  # the own part's `len = 3`, which size() read
    # A given cell after the experiment (one retried after a NameError) that meets the student's
    # code without calling it does not make the experiment's `sum = 0` stand for that code (fnn
    # s08 without a test split: its reads, attributes included, reach `sum`).
    cells.append("ready = callable(penalty)\n")
    shell, _ = _closing(cells, given=[1, 4], closing_after=2)
    assert shell.user_ns["penalty"]([1, 2]) == 5
