"""End to end: grade the reference and every submission variant of `res_dense_nets` with the
real command line (`python -m grader grade ... --json`), once, and ask of each report whether
the grader scored it as it should.

Buggy variants must lose points on the checks they name; correct-but-different variants and the
reference must score full marks. Nothing here hard-codes a score or an accuracy: points come from
the manifest, thresholds from the expected answers file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
import torch

from solutions.manifest import load_manifest
from solutions.paths import REPO_ROOT, WEIGHTS_DIR
from solutions.res_dense_nets import student as reference_code
from solutions.submission import write_submission
from tests.fixtures.variants import model_namespace, remap_state, variants_of, write_variant

ASSIGNMENT = "res_dense_nets"
MANIFEST = load_manifest(ASSIGNMENT)
VARIANTS = variants_of(ASSIGNMENT)
BUGGY = [v for v in VARIANTS.values() if not v.correct]
CORRECT = [v for v in VARIANTS.values() if v.correct]
REFERENCE = "reference"  # folder (student) name of the reference submission
ACCURACY_CHECKS = {f"{m.key}_accuracy" for m in MANIFEST.models}
GRADING_TIMEOUT_S = 60 * 60


def _ids(variants):
    return [v.name for v in variants]


def _params(variants):
    return [pytest.param(v, id=v.name) for v in variants]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """Every variant and the reference, graded in one CLI call; reports by student name."""
    root = tmp_path_factory.mktemp("variants")
    assert REFERENCE not in VARIANTS
    folders = [root / REFERENCE]
    write_submission(MANIFEST, folders[0])
    for name in VARIANTS:
        write_variant(name, root / name, ASSIGNMENT)
        folders.append(root / name)
    json_path = root / "reports.json"
    command = [sys.executable, "-m", "grader", "grade", *map(str, folders)]
    command += ["--assignment", ASSIGNMENT, "--json", str(json_path), "--jobs", "2", "--quiet"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=GRADING_TIMEOUT_S
    )
    assert result.returncode == 0, f"grader exited {result.returncode}:\n{result.stderr[-3000:]}"
    data = json.loads(json_path.read_text())
    assert isinstance(data, list), "--json with several submissions should write a list"
    by_student = {report["student"]: report for report in data}
    assert sorted(by_student) == sorted([REFERENCE, *VARIANTS])
    return by_student


def _checks(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def _lost(report: dict) -> list[str]:
    return [
        f"{c['name']}: {c['points']:g}/{c['max_points']:g} ({c['status']}) {c['message']}"
        for c in report["checks"]
        if c["points"] < c["max_points"]
    ]


def _assert_full_marks(report: dict) -> None:
    assert [c["name"] for c in report["checks"]] == [c.name for c in MANIFEST.checks]
    assert report["max_score"] == pytest.approx(MANIFEST.max_score)
    lost = _lost(report)
    assert not lost, "lost points:\n" + "\n".join(lost)
    assert report["score"] == pytest.approx(report["max_score"])
    assert all(c["status"] == "pass" for c in report["checks"])


# ---------------------------------------------------------------- graded end to end


def test_does_the_reference_score_full_marks(reports):
    _assert_full_marks(reports[REFERENCE])


@pytest.mark.parametrize("variant", _params(CORRECT))
def test_does_correct_variant_score_full_marks(variant, reports):
    _assert_full_marks(reports[variant.name])


@pytest.mark.parametrize("variant", _params(BUGGY))
def test_does_buggy_variant_lose_points_on_its_check(variant, reports):
    report = reports[variant.name]
    required = variant.catches
    checks = _checks(report)
    kept = [
        f"{name}: {checks[name]['points']:g}/{checks[name]['max_points']:g} "
        f"({checks[name]['message']})"
        for name in required
        if checks[name]["points"] >= checks[name]["max_points"]
    ]
    assert not kept, f"{variant.description}\nkept full points on:\n" + "\n".join(kept)
    assert report["max_score"] == pytest.approx(MANIFEST.max_score)
    assert report["score"] < report["max_score"]


@pytest.mark.parametrize("variant", _params(BUGGY))
def test_does_buggy_variant_keep_the_points_of_what_it_got_right(variant, reports):
    # A mistake costs the checks meant to catch it, and the accuracy of any model whose weights
    # it could not train; every other check must be graded as for the reference.
    untrained = {
        f"{m.key}_accuracy" for m in MANIFEST.models if variant.weights_for(m.key) != "reference"
    }
    allowed = set(variant.catches) | untrained
    lost = [line for line in _lost(reports[variant.name]) if line.split(":")[0] not in allowed]
    assert not lost, f"{variant.description}\nalso lost points on:\n" + "\n".join(lost)


# ---------------------------------------------------------------- the fixtures themselves


def test_are_the_catches_names_of_checks():
    known = {c.name for c in MANIFEST.checks}
    unknown = {v.name: sorted(set(v.catches) - known) for v in BUGGY if set(v.catches) - known}
    assert not unknown


def test_does_every_check_have_a_variant_that_fails_it():
    caught = {name for v in BUGGY for name in v.catches}
    assert [c.name for c in MANIFEST.checks if c.name not in caught] == []


def test_are_there_enough_variants():
    assert len(BUGGY) >= 12 and len(CORRECT) >= 3
    assert "summed_features" in VARIANTS  # `make demo` writes it


def _randomised(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The state with every float tensor random (variances positive), so no mapping hides."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            out[key] = tensor.clone()
        elif key.endswith("running_var"):
            out[key] = torch.rand(tensor.shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(tensor.shape, generator=g) * 0.5
    return out


REMAPPED = [v for v in VARIANTS.values() if v.correct and v.weights == "reference"]


@pytest.mark.parametrize("variant", REMAPPED, ids=_ids(REMAPPED))
def test_do_remapped_weights_reproduce_the_reference_outputs(variant, tmp_path):
    """A correct variant keeps the trained weights only if it computes the same logits with them."""
    notebook = nbformat.read(write_variant(variant.name, tmp_path, ASSIGNMENT), as_version=4)
    namespace = model_namespace(notebook)
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for seed, spec in enumerate(MANIFEST.models):
        reference = getattr(reference_code, spec.class_name)(*spec.args)
        stored = torch.load(WEIGHTS_DIR / ASSIGNMENT / spec.weights, weights_only=True)
        state = _randomised(stored, seed)
        reference.load_state_dict(state)
        model = namespace[spec.class_name](*spec.args)
        model.load_state_dict(remap_state(variant, spec.key, state, model))
        with torch.no_grad():
            want, got = reference.eval()(x), model.eval()(x)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=spec.class_name)


def test_does_the_variants_command_write_a_submission(tmp_path):
    out = tmp_path / "buggy" / ASSIGNMENT
    command = [sys.executable, "-m", "tests.fixtures.variants", ASSIGNMENT, "summed_features"]
    result = subprocess.run(
        [*command, str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(MANIFEST.submit_files)
    notebook = nbformat.read(out / MANIFEST.notebook, as_version=4)
    sources = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in notebook.cells
        if c.cell_type == "code"
    }
    for grade_id, source in VARIANTS["summed_features"].cells.items():
        assert sources[grade_id] == source
    for spec in MANIFEST.models:
        state = torch.load(out / spec.weights, weights_only=True)
        assert isinstance(state, dict) and state
