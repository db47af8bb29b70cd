"""Does every manifest have its assignment record, declared by its own package, and does
`python -m solutions` find an assignment's parts there (the submission, a quick training)?"""

from __future__ import annotations

import inspect
import json

import nbformat
import pytest
import torch

from grader.manifest import UnknownAssignmentError, assignment_ids, load_manifest
from solutions.cli import main
from solutions.data import DATASETS
from solutions.expected import sha256
from solutions.registry import ASSIGNMENTS, assignment, selected
from tests.conftest import run_cli
from tests.fixtures.variants import reference_cells


def test_does_every_manifest_have_exactly_one_record():
    assert [a.id for a in ASSIGNMENTS] == assignment_ids()
    assert [a.id for a in selected("all")] == assignment_ids()


@pytest.mark.parametrize("found", ASSIGNMENTS, ids=lambda a: a.id)
def test_is_each_record_declared_by_its_own_package(found):
    assert found.student.__name__ == f"solutions.{found.id}.student"
    assert found.student_file.is_file() and found.student_file.parent.name == found.id
    assert found.train.__module__.startswith(f"solutions.{found.id}.")
    assert found.notebook.__module__.startswith(f"solutions.{found.id}.")
    # An alternatives file exactly when the manifest accepts alternatives.
    manifest = load_manifest(found.id)
    assert (found.alternatives is not None) == bool(manifest.alternatives)
    if found.alternatives is not None:
        assert found.alternatives.is_file() and found.alternatives.parent.name == found.id


def _same(seen, want) -> bool:
    """Optimisers and schedulers by type and settings, modules (losses) by type, else by value."""
    if isinstance(want, torch.optim.Optimizer):
        return type(seen) is type(want) and seen.defaults == want.defaults
    if isinstance(want, torch.optim.lr_scheduler.LRScheduler):
        return type(seen) is type(want) and seen.state_dict() == want.state_dict()
    if isinstance(want, torch.nn.Module):
        return type(seen) is type(want)
    return seen == want


@pytest.mark.parametrize("found", [a for a in ASSIGNMENTS if a.training_code], ids=lambda a: a.id)
def test_does_the_notebook_hyperparameter_code_build_what_the_reference_trains_with(found):
    for code, model, made in found.training_code():
        scope = {**vars(found.student), "model": model}
        exec(code, scope)  # the text the notebook's training cells show students
        wrong = {
            name: scope.get(name) for name, want in made.items() if not _same(scope.get(name), want)
        }
        assert not wrong, f"{code}\nsets {wrong}, not what the reference trains with"


@pytest.mark.parametrize("found", ASSIGNMENTS, ids=lambda a: a.id)
def test_does_the_submission_command_write_the_reference_notebook_and_files(found, tmp_path):
    manifest, out = load_manifest(found.id), tmp_path / "submission"
    result = run_cli("solutions", "submission", found.id, str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest.submit_files)
    notebook = nbformat.read(out / manifest.notebook, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "raise NotImplementedError" not in code and "HIDDEN TESTS" not in code
    lines = set(code.splitlines())  # every line of the reference's solution cells
    assert all(set(cell.splitlines()) <= lines for cell in reference_cells(found.id).values())


def _build(spec, namespace, folder):
    """The reference model of a manifest model: from its configuration file when it has one."""
    if not spec.config:
        return spec.build(namespace)
    cls = getattr(namespace, spec.class_name)
    config = json.loads((folder / spec.config).read_text())
    return cls(**{k: v for k, v in config.items() if k in inspect.signature(cls).parameters})


@pytest.mark.parametrize("found", ASSIGNMENTS, ids=lambda a: a.id)
def test_does_quick_training_write_answers_weights_and_figures(found, tmp_path, data_env):
    """`python -m solutions train ID --quick` (every code path on a few images): an expected
    file that says it is quick, an accuracy entry per model whose threshold is the manifest's
    where nothing was measured, the weights it hashes (loading into the reference's classes),
    and figures."""
    manifest, out = load_manifest(found.id), tmp_path / "out"
    env = {}
    for dataset in DATASETS:  # the data sets this machine lacks, as generated stand-ins
        env |= data_env(dataset)
    args = ("train", found.id, "--quick", "--device", "cpu", "--output-dir", str(out))
    result = run_cli("solutions", *args, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((out / f"{found.id}.json").read_text())
    assert (written["assignment"], written["quick"]) == (found.id, True)
    assert set(written["provenance"]["epochs"].values()) == {1}
    assert set(written["accuracy"]) == {m.key for m in manifest.models}
    for spec in manifest.models:
        entry = written["accuracy"][spec.key]
        if entry.get("measured", True):
            assert 0 <= entry["test_accuracy"] <= 1
        else:
            assert entry["test_accuracy"] is None and entry["reason"]
            assert entry["threshold"] == spec.threshold and entry["threshold_source"]
        weights = out / "weights" / spec.weights
        assert written["weights"][spec.weights]["sha256"] == sha256(weights)
        model = _build(spec, found.student, out / "weights")
        model.load_state_dict(torch.load(weights, weights_only=True))
    figures = sorted(out.glob("*.png"))
    assert figures and all(str(f) in result.stdout for f in figures)
    assert all(f.stat().st_size > 5_000 for f in figures)


def test_does_an_unknown_id_name_the_known_ones(capsys):
    with pytest.raises(UnknownAssignmentError, match=ASSIGNMENTS[0].id):
        assignment("no_such_assignment")
    assert main(["notebook", "no_such_assignment"]) == 2
    assert "unknown assignment 'no_such_assignment'" in capsys.readouterr().err


def test_does_search_say_which_assignment_has_none():
    without = next(a for a in ASSIGNMENTS if a.search is None)
    with pytest.raises(SystemExit, match=f"{without.id} has no hyper-parameter search"):
        main(["search", without.id])
