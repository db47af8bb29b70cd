"""Does the released pre-submission check find renamed notebooks, name sections instead of cell
ids, end an operator mistake in one line with exit status 2, and leave nothing but its own
report in the cell that runs it? (Only a one-cell notebook is run here.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import nbformat
import pytest
import torch

from grader.names import original_name as grader_original_name
from grader.staging import MAX_EXTRA_FILE_BYTES
from tests.conftest import REPO

PRECHECK = REPO / "release" / "res_dense_nets" / "precheck.py"
NB = "res_dense_nets.ipynb"


@pytest.fixture(scope="module")
def precheck():
    """The released precheck.py as a module (its `__main__` part does not run)."""
    spec = importlib.util.spec_from_file_location("released_precheck", PRECHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_does_it_use_only_the_standard_library_nbformat_nbclient_and_torch():
    imported = {
        line.split()[1].split(".")[0]
        for line in PRECHECK.read_text().splitlines()
        if line.strip().startswith(("import ", "from "))
    }
    allowed = set(sys.stdlib_module_names) | {"nbformat", "nbclient", "torch", "IPython", "google"}
    assert imported <= allowed, imported - allowed


@pytest.mark.parametrize(
    "name",
    [NB, f"Copy of {NB}", "res_dense_nets (1).ipynb", f"{NB}.ipynb", "homework.ipynb", "x.ipynb"],
)
def test_does_it_read_copy_names_as_the_grader_does(precheck, name):
    assert precheck.original_name(name) == grader_original_name(name)


def test_does_it_find_the_notebook_or_its_newest_renamed_copy(precheck, tmp_path):
    (tmp_path / "unrelated.ipynb").write_text("{}")
    with pytest.raises(precheck.Stop, match="no notebook named res_dense_nets.ipynb"):
        precheck.find_notebook(NB, [str(tmp_path)])
    older, newer = tmp_path / f"Copy of {NB}", tmp_path / "res_dense_nets (1).ipynb"
    older.write_text("{}")
    newer.write_text("{}")
    os.utime(older, (time.time() - 60, time.time() - 60))
    assert precheck.find_notebook(NB, [str(tmp_path)]) == str(newer)
    (tmp_path / NB).write_text("{}")
    assert precheck.find_notebook(NB, [str(tmp_path)]) == str(tmp_path / NB)


def test_does_a_copy_in_the_colab_drive_folder_count(precheck, tmp_path):
    drive = tmp_path / "Colab Notebooks"
    drive.mkdir()
    (drive / f"Copy of {NB}").write_text("{}")
    found = precheck.find_notebook(NB, [str(tmp_path / "content"), str(drive)])
    assert found == str(drive / f"Copy of {NB}")


def test_are_parts_named_by_their_section(precheck):
    nb = nbformat.read(REPO / "release" / "res_dense_nets" / NB, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith("def shape_answers")]
    nb.cells.append(nbformat.v4.new_code_cell("class DenseBlock:\n    pass"))
    problems = precheck.check_cells(nbformat.from_dict(nb))
    text = "\n".join(problems)
    assert '"A1. The residual block" (`class ResBlock`) still raises NotImplementedError' in text
    assert '"B4. Shapes inside the network": the solution cell starting with' in text
    assert '"B1. The dense block": `class DenseBlock` is written in 2 cells' in text
    for grade_id in ("resblock", "answers", "denseblock", "train_resmlp"):
        assert f"'{grade_id}'" not in text


def test_is_a_part_bound_by_an_assignment_found(precheck):
    """Blind 19 (cifar): `make_transforms = partial(...)` was reported missing; the grader
    graded it."""
    nb = nbformat.read(REPO / "release" / "res_dense_nets" / NB, as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("def shape_answers"):
            cell.source = "shape_answers = lambda: {}"
    assert not [p for p in precheck.check_cells(nb) if "B4." in p]


def test_is_a_whole_pickled_model_told_what_to_save(precheck, tmp_path, monkeypatch):
    """Blind 19 (res): torch's own message advised weights_only=False, which the grader never
    uses."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(precheck, "ASSIGNMENT", {"weights": [{"file": "m.pt", "max_mb": 2}]})
    torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    (problem,) = precheck.check_weights()
    assert "it holds a pickled torch.nn.modules.linear.Linear" in problem, problem
    assert "save model.state_dict() alone" in problem and "weights_only=False" not in problem


def _run(folder, *args):
    return subprocess.run(
        [sys.executable, "precheck.py", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder)},
    )


@pytest.mark.parametrize(
    ("setup", "args", "says"),
    [
        (None, ["missing.ipynb"], "no notebook missing.ipynb"),
        ("not json", ["broken.ipynb"], "is not a readable notebook"),
        (None, [], "no notebook named res_dense_nets.ipynb"),
        (None, ["."], "is a folder"),
    ],
)
def test_does_a_mistake_end_in_one_line_and_status_2(tmp_path, setup, args, says):
    (tmp_path / "precheck.py").write_bytes(PRECHECK.read_bytes())
    if setup:
        (tmp_path / "broken.ipynb").write_text(setup)
    result = _run(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr


def test_does_it_check_a_renamed_notebook_found_on_its_own(tmp_path):
    (tmp_path / "precheck.py").write_bytes(PRECHECK.read_bytes())
    release = REPO / "release" / "res_dense_nets" / NB
    (tmp_path / f"Copy of {NB}").write_bytes(release.read_bytes())
    result = _run(tmp_path)
    assert result.returncode == 1, result.stderr  # the release is unfinished: not ready
    assert f"Checking Copy of {NB}" in result.stdout
    assert f"name it {NB} to hand in" in result.stdout


def test_does_running_the_notebook_from_a_cell_leave_no_kernel_log_in_its_output(tmp_path):
    """The kernel the check starts must not write its log (recent ipykernels warn about
    unencrypted TCP) into the output of the student's cell, which is where its stderr goes."""
    from nbclient import NotebookClient

    (tmp_path / "precheck.py").write_bytes(PRECHECK.read_bytes())
    inner = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    (tmp_path / "inner.ipynb").write_text(nbformat.writes(inner))
    outer = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import importlib.util, json\n"
                "spec = importlib.util.spec_from_file_location('precheck', 'precheck.py')\n"
                "precheck = importlib.util.module_from_spec(spec)\n"
                "spec.loader.exec_module(precheck)\n"
                "print('problems:', precheck.check_runs(json.load(open('inner.ipynb')), 120))"
            )
        ]
    )
    client = NotebookClient(
        outer, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # ipykernel forwards what is written to its file descriptors into the cell's output, as in
    # a student's notebook, unless it finds itself under pytest.
    client.execute(env={k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"})
    outputs = outer.cells[0].outputs
    assert [o.get("name") for o in outputs] == ["stdout"], outputs
    assert outputs[0]["text"] == "problems: []\n"


def test_does_it_refuse_a_configuration_file_missing_broken_or_over_the_grader_s_limit(
    tmp_path, monkeypatch
):
    spec = importlib.util.spec_from_file_location(
        "mlp_precheck", REPO / "release" / "mlp_tuning" / "precheck.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    (name,) = module.ASSIGNMENT["json_files"]
    assert module.ASSIGNMENT["json_max_mb"] * 1024**2 == MAX_EXTRA_FILE_BYTES
    assert module.check_json_files() == [
        f"{name} is missing: run the cell that writes it, then download it"
    ]
    (tmp_path / name).write_text("[1]")
    assert module.check_json_files() == [f"{name} holds a list, not a JSON object"]
    (tmp_path / name).write_text('{"x": "' + "a" * MAX_EXTRA_FILE_BYTES + '"}')
    assert f"the limit is {module.ASSIGNMENT['json_max_mb']} MB" in module.check_json_files()[0]
    (tmp_path / name).write_text('{"width": 64}')
    assert module.check_json_files() == []
