"""For every assignment: is the committed source notebook what the builder makes, is the
committed release what nbgrader makes from it, does the release leak nothing, do its visible
tests pass on every correct solution, and does `nbgrader autograde` give each grade cell the
points `python -m grader grade` gives it?"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from grader.gradebook import create_if_new, sqlite_url
from grader.judge import load_expected
from grader.manifest import assignment_ids, load_manifest
from grader.notebook_io import VISIBLE_PREFIX
from solutions import notebook_builder, registry
from solutions.data import DATA_ENV, resolve_root
from solutions.notebook_builder import student_chunks
from solutions.paths import RELEASE_DIR, REPO_ROOT, SOURCE_DIR
from tests.conftest import GRADED_TEST_IMAGES, run_cli
from tests.fixtures.variants import variants_of

matplotlib.use("Agg")

IDS = assignment_ids()
# nbgrader and its kernels run in a course folder: they import this checkout's packages, not
# whichever the environment has installed.
CHECKOUT = {"PYTHONPATH": str(REPO_ROOT)}
SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def _notebook(folder: Path, assignment: str):
    return nbformat.read(folder / assignment / load_manifest(assignment).notebook, as_version=4)


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or ""


def _student(assignment: str) -> Path:
    return registry.assignment(assignment).student_file


@pytest.fixture(scope="module")
def data(data_env):
    """`env(assignment)`: {DLGRADE_DATA: a root holding its data set} (what the notebook's data
    cell and the grader read): the real one where this machine has it, its test split cut to
    GRADED_TEST_IMAGES, else a generated stand-in."""

    def env(assignment: str) -> dict[str, str]:
        dataset = load_manifest(assignment).dataset
        found = data_env(dataset, GRADED_TEST_IMAGES)
        return found or {DATA_ENV: str(resolve_root(dataset, online=False).root)}

    return env


# ---------------------------------------------------------------- source notebook


@pytest.mark.parametrize("assignment", IDS)
def test_is_the_source_notebook_what_the_builder_makes(assignment):
    manifest = load_manifest(assignment)
    cells = registry.assignment(assignment).notebook(manifest)
    committed = _notebook(SOURCE_DIR, assignment)
    assert nbformat.writes(notebook_builder.build(cells)) == nbformat.writes(committed), (
        f"run `python -m solutions notebook {assignment}`"
    )
    precheck = notebook_builder.precheck_script(manifest, cells)
    assert (SOURCE_DIR / assignment / "precheck.py").read_text() == precheck


@pytest.mark.parametrize("found", [a for a in registry.ASSIGNMENTS if a.files], ids=lambda a: a.id)
def test_are_the_handed_out_files_what_the_package_writes(found, tmp_path):
    for written in found.files(tmp_path):
        for folder in (SOURCE_DIR, RELEASE_DIR):
            assert (folder / found.id / written.name).read_bytes() == written.read_bytes()


@pytest.mark.parametrize("assignment", IDS)
def test_are_the_solution_cells_the_reference_code(assignment):
    by_id = {_grade_id(c): c.source for c in _notebook(SOURCE_DIR, assignment).cells}
    for cell_id, code in student_chunks(_student(assignment)).items():
        assert by_id[cell_id] == code


@pytest.mark.parametrize("assignment", IDS)
def test_does_the_release_list_every_file_to_hand_in_with_the_grader_s_limits(assignment):
    """Size limits and the accuracy each judged model must reach, from the manifest and the
    expected answers (blind students had to guess them)."""
    manifest = load_manifest(assignment)
    cells = _notebook(RELEASE_DIR, assignment).cells
    last = next(c.source for c in cells if c.source.startswith("## Before you submit"))
    listed = {line.split("`")[1]: line for line in last.splitlines() if line.startswith("* `")}
    assert sorted(listed) == sorted(manifest.submit_files[1:])  # all but the notebook
    expected = load_expected(assignment)["accuracy"]
    for model in manifest.models:
        assert f"at most {model.max_weights_mb:g} MB" in listed[model.weights]
    for check in manifest.sourced("accuracy"):
        model = manifest.model(check.source.split(".")[1])
        threshold = expected[model.key]["threshold"]
        assert f"test accuracy at least {threshold:.2f}" in listed[model.weights]


@pytest.mark.parametrize("assignment", IDS)
def test_is_every_question_followed_by_where_its_answer_goes(assignment):
    """Students cannot ask: each **Question** is followed by its answer cell, or by the code
    cell that computes the answer."""
    cells = registry.assignment(assignment).notebook(load_manifest(assignment))
    pairs = zip(cells, cells[1:], strict=False)
    questions = [(c, after) for c, after in pairs if "**Question" in c.source]
    assert questions
    for question, after in questions:
        answered = after.kind == "code" or (after.cell_id or "").startswith("answer_")
        assert question.kind == "markdown" and answered, question.source[:80]


@pytest.mark.parametrize("assignment", IDS)
def test_do_grade_cells_carry_the_manifest_points(assignment):
    manifest = load_manifest(assignment)
    cells = {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in _notebook(SOURCE_DIR, assignment).cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert cells == {
        name: sum(c.points for c in checks) for name, checks in manifest.cells().items()
    }
    assert sum(cells.values()) == manifest.max_score


def _sections(nb) -> dict[str, set[str]]:
    """grade cell -> the visible tests between the grade cell before it and itself."""
    sections, visible = {}, set()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            sections[_grade_id(cell)], visible = visible, set()
        elif _grade_id(cell).startswith(VISIBLE_PREFIX):
            visible.add(_grade_id(cell))
    return sections


@pytest.mark.parametrize("assignment", IDS)
def test_does_every_visible_check_have_a_visible_test_before_its_grade_cell(assignment):
    sections = _sections(_notebook(RELEASE_DIR, assignment))
    for check in load_manifest(assignment).checks:
        if not check.hidden:
            assert sections[check.cell], f"{check.name} is visible, {check.cell} has no test"


# The order of the sheet's parts, where a sheet fixes one: its grade cells, in order.
SHEET_ORDER = {
    "fnn_mnist": ["test_dense_layer", "test_data", "test_trainer", "test_user", "test_accuracy"],
}


@pytest.mark.parametrize(("assignment", "parts"), SHEET_ORDER.items(), ids=list(SHEET_ORDER))
def test_are_the_graded_parts_in_the_sheet_s_order(assignment, parts):
    order = [_grade_id(c) for c in _notebook(SOURCE_DIR, assignment).cells]
    assert [order.index(p) for p in parts] == sorted(order.index(p) for p in parts)


# ---------------------------------------------------------------- release


def _mount_drive_first(path: Path) -> None:
    """Put Colab's `drive.mount` on top of the notebook's first solution cell (nbgrader's
    kernel must answer it, or that cell's definitions and the checks on them fail; nbgrader
    restores locked cells, such as the set-up cell, from the source)."""
    notebook = nbformat.read(path, as_version=4)
    first = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution"))
    first.source = 'from google.colab import drive\ndrive.mount("/content/drive")\n' + first.source
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def course(tmp_path_factory, reference_submissions):
    """`root(assignment)`: a throw-away nbgrader course with the assignment's source, a fresh
    release and one submitted student (alice, the reference submission as written on Colab:
    Drive mounted on top of the first solution cell), made once."""
    made: dict[str, Path] = {}

    def root(assignment: str) -> Path:
        if assignment not in made:
            folder = tmp_path_factory.mktemp(f"course-{assignment}")
            shutil.copy(REPO_ROOT / "nbgrader_config.py", folder)
            shutil.copytree(SOURCE_DIR / assignment, folder / "source" / assignment)
            # The gradebook as nbgrader makes it, without its 3.6 s `alembic heads` command.
            create_if_new(sqlite_url(folder))
            result = run_cli(
                "nbgrader", "generate_assignment", assignment, "--force", cwd=folder, env=CHECKOUT
            )
            assert result.returncode == 0, result.stderr[-3000:]
            submitted = folder / "submitted" / "alice" / assignment
            shutil.copytree(reference_submissions(assignment), submitted)
            _mount_drive_first(submitted / f"{assignment}.ipynb")
            made[assignment] = folder
        return made[assignment]

    return root


@pytest.mark.parametrize("assignment", IDS)
def test_is_the_committed_release_what_nbgrader_generates(assignment, course):
    def cells(folder):
        return [(c.cell_type, c.source) for c in _notebook(folder, assignment).cells]

    fresh = course(assignment) / "release"
    assert cells(fresh) == cells(RELEASE_DIR)
    precheck = (fresh / assignment / "precheck.py").read_text()
    assert precheck == (RELEASE_DIR / assignment / "precheck.py").read_text()


@pytest.mark.parametrize("assignment", IDS)
def test_does_the_release_leak_no_solution_hidden_test_or_expected_value(assignment):
    manifest = load_manifest(assignment)
    sources = [c.source for c in _notebook(RELEASE_DIR, assignment).cells]
    text = "\n".join([*sources, (RELEASE_DIR / assignment / "precheck.py").read_text()])
    assert "BEGIN HIDDEN TESTS" not in text and "grade_cell(" not in text
    assert "BEGIN SOLUTION" not in text
    for code in student_chunks(_student(assignment)).values():
        for region in SOLUTION_REGION.findall(code):
            for line in region.splitlines():
                if len(line.strip()) > 25:  # short lines (`return x`) may occur anywhere
                    assert line.strip() not in text, line
    # The reference's accuracies stay out; the thresholds are published (the last section).
    for key, entry in load_expected(assignment)["accuracy"].items():
        value = entry["test_accuracy"]
        assert value is None or str(value) not in text, (key, value)
    # The numbers a check compares with, computed from the reference code itself: parameter
    # counts of the submitted models, and the answers as the answers function writes them.
    reference = registry.assignment(assignment).student
    for spec in manifest.models:
        count = sum(p.numel() for p in spec.build(reference).parameters())
        assert str(count) not in text, (spec.key, count)
    if manifest.answers:
        for key, value in getattr(reference, manifest.answers.function)().items():
            assert f'"{key}": {json.dumps(value)}' not in text, key


# ---------------------------------------------------------------- visible tests, run as on Colab


def _run_visible_tests(assignment: str, replaced: dict[str, str]) -> dict[str, str]:
    """Run the source notebook up to its last visible test as a student does on Colab, in this
    process and folder: set-up, provided and solution cells (those in `replaced` rewritten) and
    visible tests, leaving out grade cells and training cells (grade ids `train_*`). Return
    {visible test: error} for those that fail; any other cell failing is an error."""
    cells = [c for c in _notebook(SOURCE_DIR, assignment).cells if c.cell_type == "code"]
    last = max(i for i, c in enumerate(cells) if _grade_id(c).startswith(VISIBLE_PREFIX))
    ipython = TransformerManager()  # `%pip`, `%run`: IPython syntax, as the notebook holds it
    ns: dict = {"__name__": "__main__"}
    failures = {}
    for cell in cells[: last + 1]:
        grade_id = _grade_id(cell)
        if cell.metadata.get("nbgrader", {}).get("grade") or grade_id.startswith("train_"):
            continue
        code = compile(
            ipython.transform_cell(replaced.get(grade_id, cell.source)), grade_id, "exec"
        )
        if not grade_id.startswith(VISIBLE_PREFIX):
            exec(code, ns)  # noqa: S102 - the notebook's own code, or a variant's
            continue
        try:
            exec(code, ns)  # noqa: S102
        except Exception as err:  # noqa: BLE001 - a failing visible test, reported
            failures[grade_id] = f"{type(err).__name__}: {err}"
    matplotlib.pyplot.close("all")
    return failures


@pytest.fixture
def colab(data, tmp_path, monkeypatch):
    """`run(assignment, replaced)`: `_run_visible_tests` in a folder of its own, with the
    assignment's data where its data cell looks."""

    def run(assignment: str, replaced: dict[str, str]) -> dict[str, str]:
        for name, value in data(assignment).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        return _run_visible_tests(assignment, replaced)

    return run


@pytest.mark.parametrize("assignment", IDS)
def test_do_the_visible_tests_pass_on_the_reference(assignment, colab):
    assert colab(assignment, {}) == {}


CORRECT = [
    pytest.param(a, v.name, id=f"{a}-{v.name}")
    for a in IDS
    for v in variants_of(a).values()
    if v.correct and not v.colab_only
]


@pytest.mark.parametrize(("assignment", "name"), CORRECT)
def test_do_the_visible_tests_accept_every_correct_variant(assignment, name, colab):
    assert colab(assignment, dict(variants_of(assignment)[name].cells)) == {}


# Mistakes and the visible tests that must catch them: only those (a mistake a visible test
# does not mirror fails none).
MIRRORED = {
    ("cifar_cnn_svm", "random_test_transform"): {"visible_transforms"},
    ("cifar_cnn_svm", "dense_without_log_softmax"): {"visible_dense"},
    ("cifar_cnn_svm", "cnn_log_softmax"): {"visible_cnn"},
    ("cifar_cnn_svm", "hidden_layers_in_a_list"): {"visible_deep"},
    ("cifar_cnn_svm", "cnn_silu_after_pool"): set(),  # right shapes: only the grader can tell
    ("cnn_techniques", "augment_test_set"): {"visible_transforms"},
    ("cnn_techniques", "finetune_all_trainable"): {"visible_finetune"},
    ("cnn_techniques", "optimizer_all_parameters"): {"visible_finetune"},
    ("cnn_techniques", "tsne_on_logits"): set(),  # right shapes: only the grader can tell
    ("fnn_mnist", "batchnorm_keeps_bias"): {"visible_dense_layer", "visible_fnn"},
    ("fnn_mnist", "dense_layer_ignores_activation"): set(),  # visible tests use ReLU
    ("fnn_mnist", "fnn_without_flatten"): {"visible_fnn"},
    ("fnn_mnist", "batchnorm_on_output_layer"): {"visible_fnn"},
    ("fnn_mnist", "deep_fnn_plain_list"): {"visible_deep_fnn"},
    ("fnn_mnist", "init_leaves_biases"): {"visible_init_weights"},
    ("fnn_mnist", "flatten_by_columns"): {"visible_data"},
    ("fnn_mnist", "correct_preds_tensor"): {"visible_metrics"},
    ("fnn_mnist", "l1_squared"): {"visible_metrics"},
    ("fnn_mnist", "save_whole_model"): {"visible_user"},
    ("fnn_mnist", "loss_mean_of_batch_means"): {"visible_trainer"},
    ("mlp_tuning", "augmented_evaluation"): {"visible_transforms"},
    ("mlp_tuning", "hidden_layers_minus_one"): {"visible_mlp"},
    ("mlp_tuning", "stats_all_images"): set(),  # right shapes: only the grader can tell
    ("res_dense_nets", "ignores_hidden_features"): {"visible_resblock"},
    ("res_dense_nets", "summed_features"): {"visible_denseblock"},
    ("res_dense_nets", "pool_stride_1"): {"visible_transition"},
    ("res_dense_nets", "no_skip"): set(),  # right shapes: only the grader can tell
}


@pytest.mark.parametrize(
    ("assignment", "name", "visible"),
    [(a, n, v) for (a, n), v in MIRRORED.items()],
    ids=[f"{a}-{n}" for a, n in MIRRORED],
)
def test_does_a_mistake_fail_only_the_visible_tests_that_mirror_it(
    assignment, name, visible, colab
):
    failures = colab(assignment, dict(variants_of(assignment)[name].cells))
    assert set(failures) == visible, failures


# ---------------------------------------------------------------- nbgrader autograde

# nbgrader's own limit per cell is 30 s; res_dense_nets' test_densenet (DenseNet observers on the
# reference and its alternative) passes it on a busy machine, and a verdict must not depend on
# how busy the machine is.
CELL_TIMEOUT_S = 600


@pytest.mark.parametrize(
    "assignment",
    IDS,
)
def test_does_nbgrader_autograde_give_each_cell_the_grader_s_points(
    assignment, course, data, reference_reports
):
    """The hidden test cells, run by nbgrader in a kernel on the reference submission, give
    every grade cell the points the grader's report gives its checks."""
    root = course(assignment)
    options = ("--create", "--force", f"--Execute.timeout={CELL_TIMEOUT_S}")
    env = {**data(assignment), **CHECKOUT}
    result = run_cli("nbgrader", "autograde", assignment, *options, cwd=root, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    from nbgrader.api import Gradebook

    manifest = load_manifest(assignment)
    report = reference_reports(assignment)
    graded = {cell: [0.0, 0.0] for cell in manifest.cells()}  # cell -> [points, max points]
    for check in report["checks"]:
        graded[manifest.check(check["name"]).cell][0] += check["points"]
        graded[manifest.check(check["name"]).cell][1] += check["max_points"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(Path(manifest.notebook).stem, assignment, "alice")
        by_cell = {g.name: [round(g.score, 4), g.max_score] for g in notebook.grades}
        assert by_cell == {cell: [round(p, 4), m] for cell, (p, m) in graded.items()}
        submission = gb.find_submission(assignment, "alice")
        assert (submission.score, submission.max_score) == pytest.approx(
            (report["score"], report["max_score"])
        )
