"""Does staging find what an honest student handed in a little off the layout: a weights file
in a subfolder or under another ending, the worked "Copy of" beside the untouched release, a
notebook or JSON file with a byte order mark; and does it say so, or say plainly why it cannot
(several candidates, an archive)? In-process: staging reads files, runs nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from grader.manifest import load_manifest
from grader.notebook_io import NotebookError, parse_notebook
from grader.staging import stage
from tests.conftest import REPO

ID = "res_dense_nets"
BOM = b"\xef\xbb\xbf"


def _notebook(unfinished: int) -> bytes:
    cells = [{"cell_type": "code", "metadata": {}, "source": "raise NotImplementedError()"}]
    done = [{"cell_type": "code", "metadata": {}, "source": "x = 1"}]
    return json.dumps({"cells": cells * unfinished + done, "nbformat": 4}).encode()


@pytest.fixture
def folder(tmp_path):
    """A submission of res_dense_nets: a finished notebook and both weights files."""
    folder = tmp_path / ID
    folder.mkdir()
    (folder / f"{ID}.ipynb").write_bytes(_notebook(0))
    for name in ("resmlp.pt", "densenet.pt"):
        (folder / name).write_bytes(name.encode())
    return folder


@pytest.mark.parametrize("where", ["weights/densenet.pt", "densenet.pth", "DenseNet.pt"])
def test_is_a_weights_file_elsewhere_graded_and_named(folder, where):
    (folder / where).parent.mkdir(exist_ok=True)
    (folder / "densenet.pt").rename(folder / where)
    staged = stage(folder, load_manifest(ID))
    assert staged.weights["densenet.pt"] == b"densenet.pt" and not staged.problems
    assert f"graded {where} as densenet.pt" in " ".join(staged.notes)
    assert "not read: weights/" not in " ".join(staged.notes)


def test_are_several_candidates_refused_with_their_names(folder):
    (folder / "a").mkdir()
    shutil.move(folder / "densenet.pt", folder / "a" / "densenet.pt")
    (folder / "densenet.pth").write_bytes(b"other")
    problem = stage(folder, load_manifest(ID)).problems["densenet.pt"]
    assert "a/densenet.pt" in problem and "densenet.pth" in problem


def test_is_one_renamed_weights_file_graded_as_the_one_missing(folder):
    (folder / "densenet.pt").rename(folder / "my_model.pth")
    staged = stage(folder, load_manifest(ID))
    assert staged.weights["densenet.pt"] == b"densenet.pt" and not staged.problems
    assert "graded my_model.pth as densenet.pt" in " ".join(staged.notes)
    assert "my_model.pth" not in staged.extras


@pytest.mark.parametrize("mb, shown", [(20.3, "20.3 MB"), (20.04, "20.04 MB"), (26, "26 MB")])
def test_is_a_weights_file_over_its_limit_told_apart_from_the_limit(folder, mb, shown):
    # A checkpoint with Adam's state in it; 20.3 MB was "20 MB; the limit is 20 MB".
    (folder / "densenet.pt").write_bytes(b"x" * int(mb * 1024**2))
    problem = stage(folder, load_manifest(ID)).problems["densenet.pt"]
    assert problem.startswith(f"densenet.pt is {shown}; the limit is 20 MB (if it is a checkpoint")
    assert "model.state_dict() alone" in problem


def test_is_nothing_guessed_when_two_files_could_be_it(folder):
    (folder / "densenet.pt").rename(folder / "a.pt")
    (folder / "b.pt").write_bytes(b"b")
    staged = stage(folder, load_manifest(ID))
    assert staged.problems["densenet.pt"] == "densenet.pt was not submitted"
    assert "densenet.pt" not in staged.weights


def test_does_an_archive_alone_say_it_is_not_unpacked(folder):
    for path in list(folder.iterdir()):
        path.unlink()
    (folder / f"{ID}.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(NotebookError, match=f"only the archive {ID}.zip: the grader does not"):
        stage(folder, load_manifest(ID))


def test_is_an_archive_unpacked_with_its_own_folder_graded_from_it(folder):
    """An LMS zip unpacked by hand keeps its top folder: the files one level down are graded."""
    inner = folder / "Erin_4711_assignsubmission_file"
    inner.mkdir()
    for path in [p for p in folder.iterdir() if p.is_file()]:
        path.rename(inner / ("Copy of " + path.name if path.suffix == ".ipynb" else path.name))
    staged = stage(folder, load_manifest(ID))
    assert staged.notebook_name == f"Copy of {ID}.ipynb" and not staged.problems
    assert staged.notes[0].startswith(f"graded the files in {inner.name}/")
    (folder / "other").mkdir()  # two folders with notebooks: nothing is guessed
    (folder / "other" / "x.ipynb").write_bytes(_notebook(0))
    with pytest.raises(NotebookError, match="no notebook"):
        stage(folder, load_manifest(ID))


def test_is_the_worked_copy_graded_beside_the_untouched_release(folder):
    (folder / f"Copy of {ID}.ipynb").write_bytes((folder / f"{ID}.ipynb").read_bytes())
    (folder / f"{ID}.ipynb").write_bytes(_notebook(5))
    staged = stage(folder, load_manifest(ID))
    assert staged.notebook_name == f"Copy of {ID}.ipynb"
    assert f"{ID}.ipynb has 5)" in " ".join(staged.notes)
    (folder / f"{ID}.ipynb").write_bytes(_notebook(0))  # as complete: the release's name wins
    assert stage(folder, load_manifest(ID)).notebook_name == f"{ID}.ipynb"


def test_does_a_scratch_notebook_never_replace_unfinished_work(folder):
    # One part left undone, and a scratch notebook of another name that has no parts at all.
    (folder / f"{ID}.ipynb").write_bytes(_notebook(1))
    (folder / "experiments.ipynb").write_bytes(_notebook(0))
    assert stage(folder, load_manifest(ID)).notebook_name == f"{ID}.ipynb"


def test_are_byte_order_marks_read_past(folder):
    (folder / "histories.json").write_bytes(BOM + b'{"a": 1}\r\n')
    release = (REPO / "release" / ID / f"{ID}.ipynb").read_bytes()
    assert parse_notebook("n.ipynb", BOM + release.replace(b"\n", b"\r\n")).code_cells
    staged = stage(folder, load_manifest(ID))
    assert json.loads(staged.extras["histories.json"]) == {"a": 1}


@pytest.mark.parametrize(
    ("content", "why"), [(None, "was not handed in"), (b'{"baseline": {', "is not valid JSON")]
)
def test_do_missing_or_broken_curves_say_why_once(tmp_path, content, why):
    """cnn_techniques' curves check, when the notebook read no histories.json: the file's fault,
    said once, not "missing" for every run."""
    from grader.checks.cnn_techniques import training
    from grader.probe.context import ProbeContext

    if content is not None:
        (tmp_path / "histories.json").write_bytes(content)
    manifest = load_manifest("cnn_techniques")
    ctx = ProbeContext(ns={"histories": {}}, manifest=manifest, workdir=tmp_path)
    verdict = training.curves_per_epoch(training.submitted_curves(ctx), None, ctx)
    assert verdict.message.startswith(f"histories.json {why}") and "missing;" not in verdict.message


def test_is_a_run_left_undone_charged_to_its_own_part_not_to_the_curves(tmp_path):
    """cnn_techniques: fine-tuning never done (no MNIST or fine-tuned weights, no curves) costs
    the fine-tuning checks, not curves_per_epoch; a run handed in without its curves still does."""
    from grader.checks.cnn_techniques import training
    from grader.probe.context import ProbeContext

    manifest = load_manifest("cnn_techniques")
    curve = {c: [0.5, 0.75] for c in training.CURVES} | {"best_epoch": 2, "best_accuracy": 0.75}
    done = {"baseline": curve, "augmented": curve, "batchnorm": curve}
    undone = {f"cnn_{k}.pt": f"cnn_{k}.pt was not submitted" for k in ("mnist", "finetuned")}
    for problems, passes in (({}, False), (undone, True)):
        ctx = ProbeContext(
            ns={"histories": done}, manifest=manifest, workdir=tmp_path, weights_problems=problems
        )
        verdict = training.curves_per_epoch(training.submitted_curves(ctx), None, ctx)
        assert (verdict.fraction == 1) is passes, verdict.message


def test_are_tool_folders_passed_over_and_other_folders_named(folder):
    """Jupyter's checkpoints and Python's caches come with every Colab or Jupyter folder: no
    note (it would list the student to look at); a folder of the student's own is named."""
    for made in (".ipynb_checkpoints", "__pycache__", "data/MNIST"):
        (folder / made).mkdir(parents=True)
        (folder / made / "x").write_bytes(b"x")
    staged = stage(folder, load_manifest(ID))
    assert staged.notes == ("not read: data/ (a folder: only the files beside it are read)",)


def test_is_a_file_graded_as_one_model_never_graded_as_another(folder):
    """resmlp.pth is taken as resmlp.pt: it is not also the lone file for densenet.pt."""
    (folder / "resmlp.pt").rename(folder / "resmlp.pth")
    (folder / "densenet.pt").unlink()
    staged = stage(folder, load_manifest(ID))
    assert staged.weights == {"resmlp.pt": b"resmlp.pt"}
    assert staged.problems["densenet.pt"] == "densenet.pt was not submitted"
    assert "resmlp.pth" not in staged.extras


@pytest.mark.parametrize("copy", ["final_config (1).json", "Copy of final_config.json"])
def test_is_a_downloaded_copy_of_a_config_file_graded_under_its_name(tmp_path, copy):
    """Blind round 11: a second download ("final_config (1).json") beside "mlp_final (1).pt":
    the weights were graded (one lone weights file), the configuration was not found and cost
    config_matches_weights and final_accuracy, 7 points."""
    folder = tmp_path / "mlp_tuning"
    folder.mkdir()
    (folder / "mlp_tuning.ipynb").write_bytes(_notebook(0))
    (folder / "mlp_final (1).pt").write_bytes(b"weights")
    (folder / copy).write_bytes(b'{"width": 8}')
    (folder / "notes (1).json").write_bytes(b"{}")  # named after no expected file: left alone
    staged = stage(folder, load_manifest("mlp_tuning"))
    assert staged.extras["final_config.json"] == b'{"width": 8}' and copy not in staged.extras
    assert f"graded {copy} as final_config.json" in " ".join(staged.notes)
    assert "notes (1).json" in staged.extras
