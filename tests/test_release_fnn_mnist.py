"""`fnn_mnist`: is the committed source notebook what the builder makes, is the committed release
what nbgrader makes from it, does the release leak nothing, and do its visible tests pass on
every correct solution and fail on the mistakes they mirror?"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest

from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions import notebook_builder
from solutions.fnn_mnist import notebook as content
from solutions.fnn_mnist.student import answers
from solutions.notebook_builder import student_chunks
from tests.conftest import REPO, run_cli
from tests.fixtures.variants import variants_of

matplotlib.use("Agg")

ID = "fnn_mnist"
MANIFEST = load_manifest(ID)
SOURCE = REPO / "source" / ID
RELEASE = REPO / "release" / ID
STUDENT = REPO / "solutions" / ID / "student.py"
# The visible test that mirrors each check the manifest marks `hidden = false`.
VISIBLE_TEST = {
    "dense_layer_shapes": "visible_dense_layer",
    "dense_layer_batchnorm": "visible_dense_layer",
    "fnn_output": "visible_fnn",
    "fnn_parameters": "visible_fnn",
    "deep_fnn_shapes": "visible_deep_fnn",
    "init_weights": "visible_init_weights",
    "flatten_transform": "visible_data",
    "sum_correct_preds": "visible_metrics",
    "regularization_values": "visible_metrics",
    "save_load_roundtrip": "visible_user",
}


VARIANTS = variants_of(ID)


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _notebook(folder: Path):
    return nbformat.read(folder / f"{ID}.ipynb", as_version=4)


def test_is_the_source_notebook_what_the_builder_makes():
    built = notebook_builder.build(content.cells(MANIFEST))
    assert nbformat.writes(built) == nbformat.writes(_notebook(SOURCE)), (
        f"run `python -m solutions notebook {ID}`"
    )
    precheck = notebook_builder.precheck_script(MANIFEST, content.cells(MANIFEST))
    assert (SOURCE / "precheck.py").read_text() == precheck


def test_are_the_solution_cells_the_reference_code():
    by_id = {_grade_id(c): c.source for c in _notebook(SOURCE).cells}
    for cell_id, code in student_chunks(STUDENT).items():
        assert by_id[cell_id] == code


def test_do_grade_cells_carry_the_manifest_points_in_the_four_parts_order():
    cells = [
        (c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["points"])
        for c in _notebook(SOURCE).cells
        if c.metadata.get("nbgrader", {}).get("grade")
    ]
    assert dict(cells) == {
        name: sum(c.points for c in checks) for name, checks in MANIFEST.cells().items()
    }
    assert sum(points for _, points in cells) == MANIFEST.max_score
    order = [name for name, _ in cells]
    parts = ["test_dense_layer", "test_data", "test_trainer", "test_user", "test_accuracy"]
    assert [order.index(p) for p in parts] == sorted(order.index(p) for p in parts)


def test_does_every_visible_check_have_its_visible_test_before_its_grade_cell():
    ids = [_grade_id(c) for c in _notebook(RELEASE).cells]
    visible = {c.name for c in MANIFEST.checks if not c.hidden}
    assert visible == set(VISIBLE_TEST)
    for check in MANIFEST.checks:
        if not check.hidden:
            assert ids.index(VISIBLE_TEST[check.name]) < ids.index(check.cell), check.name


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(SOURCE, root / "source" / ID)
    result = run_cli("nbgrader", "generate_assignment", ID, "--force", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "release" / ID


def test_is_the_committed_release_what_nbgrader_generates(fresh_release):
    def cells(folder):
        return [(c.cell_type, c.source) for c in _notebook(folder).cells]

    assert cells(fresh_release) == cells(RELEASE)
    assert (fresh_release / "precheck.py").read_text() == (RELEASE / "precheck.py").read_text()


def test_does_the_release_leak_no_solution_hidden_test_or_expected_value():
    text = (RELEASE / f"{ID}.ipynb").read_text() + (RELEASE / "precheck.py").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "grade_cell(" not in text
    assert "BEGIN SOLUTION" not in text
    for code in student_chunks(STUDENT).values():
        for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", code, re.S):
            for line in region.splitlines():
                if len(line.strip()) > 25:  # short lines (`return x`) may occur anywhere
                    assert json.dumps(line.strip())[1:-1] not in text, line
    for entry in load_expected(ID)["accuracy"].values():
        assert f"{entry['threshold']}" not in text
    for key in ("fnn_parameters", "fnn_batchnorm_parameters"):
        assert str(answers()[key]) not in text


# ---------------------------------------------------------------- visible tests, run as on Colab


def _run_visible_tests(tmp_path, monkeypatch, replaced: dict[str, str]) -> dict[str, str]:
    """Run the source notebook's set-up, solution and visible-test cells in order (data,
    training and grade cells left out); return {visible test: error} for those that fail."""
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__main__"}
    failures = {}
    for cell in _notebook(SOURCE).cells:
        grade_id = _grade_id(cell)
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grade_id is None or grade_id.startswith("train_"):
            continue
        if meta.get("solution"):
            exec(compile(replaced.get(grade_id, cell.source), grade_id, "exec"), ns)  # noqa: S102
        elif grade_id == "setup" or grade_id.startswith("visible_"):
            try:
                exec(compile(cell.source, grade_id, "exec"), ns)  # noqa: S102
            except Exception as err:  # noqa: BLE001 - a failing visible test, reported
                failures[grade_id] = f"{type(err).__name__}: {err}"
    matplotlib.pyplot.close("all")
    return failures


def test_do_the_visible_tests_pass_on_the_reference(tmp_path, monkeypatch):
    assert _run_visible_tests(tmp_path, monkeypatch, {}) == {}


CORRECT = [v for v in VARIANTS.values() if v.correct]


@pytest.mark.parametrize("variant", CORRECT, ids=[v.name for v in CORRECT])
def test_do_the_visible_tests_accept_every_correct_variant(variant, tmp_path, monkeypatch):
    assert _run_visible_tests(tmp_path, monkeypatch, dict(variant.cells)) == {}


MIRRORED = {
    "batchnorm_keeps_bias": {"visible_dense_layer", "visible_fnn"},  # the FNN count too
    "dense_layer_ignores_activation": set(),  # a hidden check's matter: visible tests use ReLU
    "fnn_without_flatten": {"visible_fnn"},
    "batchnorm_on_output_layer": {"visible_fnn"},
    "deep_fnn_plain_list": {"visible_deep_fnn"},
    "init_leaves_biases": {"visible_init_weights"},
    "flatten_by_columns": {"visible_data"},
    "correct_preds_tensor": {"visible_metrics"},
    "l1_squared": {"visible_metrics"},
    "save_whole_model": {"visible_user"},
    "loss_mean_of_batch_means": {"visible_trainer"},
}


@pytest.mark.parametrize(("name", "visible"), MIRRORED.items(), ids=list(MIRRORED))
def test_does_a_mistake_fail_only_the_visible_test_that_mirrors_it(
    name, visible, tmp_path, monkeypatch
):
    failures = _run_visible_tests(tmp_path, monkeypatch, dict(VARIANTS[name].cells))
    assert set(failures) == visible, failures
