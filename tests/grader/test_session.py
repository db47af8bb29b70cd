"""Does one grading session serve the CLI, nbgrader's hidden cells and the tests alike, and does
a grade's fingerprint follow the reference and the release?"""

from __future__ import annotations

import json
import shutil

import pytest

import grader.grade as grade
import grader.session as session_module
from grader.grade import GradeConfig, release_tests_digest, run_fingerprint
from grader.judge import load_expected
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from grader.session import Session
from solutions.paths import RELEASE_DIR

ID = "res_dense_nets"


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(ID)


@pytest.fixture(scope="module")
def session(manifest):
    return Session.prepare(manifest, 7)


def test_does_one_seed_give_the_same_settings_and_reference(manifest, session):
    again = Session.prepare(manifest, 7)
    assert again.settings == session.settings
    assert again.reference_digest() == session.reference_digest()
    assert Session.prepare(manifest, 8).reference_digest() != session.reference_digest()


def test_does_the_reference_graded_in_process_score_full_marks(manifest, session):
    reference = session.accepted[0]
    assert reference.name == "reference"
    namespace = session_module.references(manifest)[0].ns
    results = session.judge(session.observe(ProbeContext(ns=namespace, manifest=manifest)))
    structural = [r for r in results if not r.name.endswith("_accuracy")]
    assert structural and all(r.status == "pass" for r in structural), [
        (r.name, r.message) for r in structural if r.status != "pass"
    ]


def test_does_a_session_for_one_cell_judge_it_with_what_it_builds_on(manifest):
    cell = Session.prepare(manifest, 7, checks=["resmlp_behaviour"])
    assert set(cell.checks) == {
        "resmlp_behaviour",
        "resblock_behaviour",
        "resmlp_output",
        "resmlp_structure",
        "resblock_widths",
        "resblock_skip",
    }
    assert not cell.needs_test_images
    assert "predictions" not in cell.observers


def test_does_a_changed_reference_regrade_the_class(manifest, session, monkeypatch):
    """A fix of the reference (solutions/<id>/student.py) changes what every check compares
    with, so it must change every grade's fingerprint."""
    original = session_module.references

    def fixed(manifest, folder=None):
        found = original(manifest, folder)

        class Scaled(found[0].ns["ResBlock"]):
            def forward(self, x):
                return 2 * super().forward(x)

        found[0].ns["ResBlock"] = Scaled
        return found

    monkeypatch.setattr(session_module, "references", fixed)
    changed = Session.prepare(manifest, 7)
    assert changed.reference_digest() != session.reference_digest()
    expected = load_expected(ID)
    prints = [
        run_fingerprint(manifest, expected, GradeConfig(), "key", s.reference_digest())
        for s in (session, changed)
    ]
    assert prints[0] != prints[1]


def test_does_a_re_released_test_cell_regrade_the_class(manifest, tmp_path, monkeypatch):
    before = release_tests_digest(manifest)
    release = tmp_path / ID
    shutil.copytree(RELEASE_DIR / ID, release)
    notebook = json.loads((release / manifest.notebook).read_text())
    test_cell = next(
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code"
        and c.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").startswith("visible_")
    )
    test_cell["source"] = "".join(test_cell["source"]) + "\nassert True  # one more check\n"
    (release / manifest.notebook).write_text(json.dumps(notebook))
    monkeypatch.setattr(grade, "RELEASE_DIR", tmp_path)
    assert release_tests_digest(manifest) != before


def test_are_the_reference_s_observations_kept_for_the_next_run(manifest, tmp_path, monkeypatch):
    """A course's regrade with the same key and code reuses what the reference computed; a
    changed setting (another key) computes it again."""
    first = Session.prepare(manifest, 7, cache=tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".json"]
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in tmp_path.iterdir())

    def not_again(*args, **kwargs):
        raise AssertionError("the reference was observed again")

    monkeypatch.setattr(session_module, "references", not_again)
    again = Session.prepare(manifest, 7, cache=tmp_path)
    assert again.reference_digest() == first.reference_digest()
    assert [a.name for a in again.accepted] == [a.name for a in first.accepted]
    with pytest.raises(AssertionError, match="observed again"):
        Session.prepare(manifest, 8, cache=tmp_path)


def test_does_observing_the_reference_print_nothing(capfd):
    """Blind 19: fnn_mnist's reference train_network prints a line per epoch, which reached the
    operator's terminal through `grade --quiet`."""
    Session.prepare(load_manifest("fnn_mnist"), 7, checks=["regularized_step"])
    assert capfd.readouterr().out == ""
