"""A class of 20 in an nbgrader course, honest students and attackers mixed, graded as an
operator grades it: one CLI batch of `submitted/`, `--jobs 2`, the venv's Python called directly
without its `bin` on PATH, while another instructor's run grades its own course on the same
machine.

Asked of the result: every honest student has full marks; every attack scores no more than its
honest counterpart (the reference, or the buggy variant it is built on, graded in the same
class); every student has a report, an autograded notebook and, when the report is final, a
gradebook row, and the CSV and JSON list them all; nothing was written outside the scratch
folders (marker files, the victims of planted links, the submitted files themselves) and
nothing is left running.

The hostile tests (tests/grader/hostile/) grades every fixture as such a course too, with
the same questions (and a second run beside it); this test is the issue's acceptance run in one
piece, with the students in the alphabetical order a course has (the odd metadata and the
probe's deep tree come first, so that most of the class is graded after them in the same job
slots). It is marked slow for that reason: it adds about 80 s on this 2-core machine (20
submissions with retries and time-outs, a second run beside it) and asks nothing the hostile
module does not. Run it with `pytest -m slow tests/grader/test_hostile_class.py`.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader.manifest import load_manifest
from grader.sandbox import bubblewrap_works
from solutions.data import DataNotFoundError, resolve_root
from tests.conftest import points
from tests.fixtures.grading import (
    leftovers,
    orphans,
    remove_tree,
    start_grading,
    tree_state,
)
from tests.fixtures.hostile import ASSIGNMENT, NOTEBOOK, Targets, build, honest_of
from tests.fixtures.variants import write_variant

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # and run alone (see the Makefile)

MANIFEST = load_manifest(ASSIGNMENT)
OPTIONS = ("--jobs", "2", "--cell-timeout", "10", "--timeout", "120")

# student -> (what they hand in, "honest" or "attack"); variants are correct ones.
CLASS = {
    "s01": ("odd_nbgrader_metadata", "attack"),
    "s02": ("deep_tree_left_behind", "attack"),
    "s03": ("reference", "honest"),
    "s04": ("zygote_requests", "attack"),
    "s05": ("variant:sequential_style", "honest"),
    "s06": ("links_for_the_host", "attack"),
    "s07": ("test_label_lookup", "attack"),
    "s08": ("reference", "honest"),
    "s09": ("honest_no_skip", "yardstick"),  # what the forgers below would earn honestly
    "s10": ("forged_files_then_exit", "attack"),
    "s11": ("padded_observations", "attack"),
    "s12": ("variant:functional_style", "honest"),
    "s13": ("notebook_links_classmate", "attack"),
    "s14": ("observation_bombs", "attack"),
    "s15": ("reference_classmate", "honest"),  # the one s13 links to
    "s16": ("huge_weights_file", "attack"),
    "s17": ("deep_submission_folder", "attack"),
    "s18": ("background_processes", "attack"),
    "s19": ("variant:torch_idioms", "honest"),
    "s20": ("writes_gradebook", "attack"),
}
# Checks an attack may lose without gaining anything: what its own weights or files cost.
OWN_LOSSES = {
    "test_label_lookup": {"resmlp_accuracy", "densenet_accuracy"},  # anti-trained weights
    "huge_weights_file": {"densenet_accuracy"},
    "observation_bombs": None,  # compared on the score only: its results were refused
    "forged_files_then_exit": None,
    "notebook_links_classmate": None,
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, reference_submission):
    try:
        resolve_root(MANIFEST.dataset, online=False)
    except DataNotFoundError as err:
        pytest.skip(f"the real test split is needed: {err}")
    if not bubblewrap_works():
        pytest.skip("the hostile fixtures need the bubblewrap sandbox")
    base = tmp_path_factory.mktemp("class")
    targets = Targets.create(base / "targets", port=9)
    course, submitted = base / "course", base / "course" / "submitted"
    fixtures = base / "built"
    for student, (what, _) in CLASS.items():
        folder = submitted / student / ASSIGNMENT
        folder.parent.mkdir(parents=True)
        if what == "reference":
            shutil.copytree(reference_submission, folder)
        elif what.startswith("variant:"):
            write_variant(what.split(":", 1)[1], folder, ASSIGNMENT)
        else:
            build(what, fixtures, targets, reference_submission).rename(folder)
    # s13 links to the classmate's notebook by the fixture's own path: point it at s15's.
    (submitted / "s13" / ASSIGNMENT / NOTEBOOK).unlink()
    (submitted / "s13" / ASSIGNMENT / NOTEBOOK).symlink_to(
        submitted / "s15" / ASSIGNMENT / NOTEBOOK
    )
    other = base / "other-course" / "submitted"
    for student in ("o1", "o2", "o3"):
        shutil.copytree(reference_submission, other / student / ASSIGNMENT)
    before, victims = tree_state(submitted), targets.victim_state()
    scratch = base / "scratch"
    try:
        run = start_grading([course], base / "class.json", scratch, *OPTIONS)
        second = start_grading([other.parent], base / "other.json", scratch, *OPTIONS)
        reports = {r["student"]: r for r in run.finish()}
        others = {r["student"]: r for r in second.finish()}
        print(f"class of {len(CLASS)} graded in {run.seconds:.0f} s (another run beside it)")
        yield {
            "course": course,
            "reports": reports,
            "others": others,
            "targets": targets,
            "tree_before": before,
            "tree_after": tree_state(submitted),
            "victims": (victims, targets.victim_state()),
            "markers": [
                p
                for student, (what, _) in CLASS.items()
                for p in targets.markers_for(what, submitted / student / ASSIGNMENT)
                if p.exists()
            ],
            "running": {
                "named": subprocess.run(
                    ["pgrep", "-a", targets.process_name("background")],
                    capture_output=True,
                    text=True,
                ).stdout.splitlines(),
                "sandboxes": leftovers(scratch),
                "probe uids": orphans(),
            },
            "scratch": sorted(p.name for p in scratch.glob("dlgrade-*")),
        }
    finally:
        for student, (what, _) in CLASS.items():
            for marker in targets.markers_for(what, submitted / student / ASSIGNMENT):
                marker.unlink(missing_ok=True)
        remove_tree(submitted / "s17")  # deeper than pytest's clean-up goes
        remove_tree(scratch)


def _honest_score(reports: dict, what: str) -> float:
    counterpart = honest_of(what)
    if counterpart is None:
        return MANIFEST.max_score
    student = next(s for s, (w, _) in CLASS.items() if w == counterpart)
    return reports[student]["score"]


def test_does_every_honest_student_get_full_marks(graded_class):
    reports = graded_class["reports"]
    honest = [s for s, (_, kind) in CLASS.items() if kind == "honest"]
    assert {s: reports[s]["score"] for s in honest} == dict.fromkeys(honest, MANIFEST.max_score)


def test_does_no_attack_score_more_than_its_honest_counterpart(graded_class):
    reports = graded_class["reports"]
    over = {}
    for student, (what, kind) in CLASS.items():
        if kind != "attack":
            continue
        honest = _honest_score(reports, what)
        if reports[student]["score"] > honest:
            over[student] = f"{what}: {reports[student]['score']} > {honest}"
        allowed = OWN_LOSSES.get(what, set())
        if allowed is not None and honest == MANIFEST.max_score:
            lost = {n for n, (got, most, _) in points(reports[student]).items() if got < most}
            if lost - allowed:
                over[student] = f"{what} lost {sorted(lost - allowed)}: the attack hurt grading"
    assert over == {}


def test_is_every_student_written_where_nbgrader_looks(graded_class):
    course, reports = graded_class["course"], graded_class["reports"]
    assert sorted(reports) == sorted(CLASS)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s.student.id: s.score for s in gradebook.find_assignment(ASSIGNMENT).submissions}
    # Only final grades reach the gradebook (a report in review awaits a person).
    final = {s: r["score"] for s, r in reports.items() if r["status"] not in ("review",)}
    assert scores == pytest.approx(final)
    for student in CLASS:
        folder = course / "autograded" / student / ASSIGNMENT
        saved = json.loads((folder / "report.json").read_text())
        assert saved["score"] == reports[student]["score"]
        nbformat.validate(nbformat.read(folder / NOTEBOOK, as_version=4))
    header, *rows = (course / f"dlgrade-{ASSIGNMENT}.csv").read_text().splitlines()
    assert sorted(row.split(",")[0] for row in rows) == sorted(CLASS)


def test_was_nothing_written_outside_the_scratch_folders(graded_class):
    assert graded_class["markers"] == []
    before, after = graded_class["victims"]
    assert after == before
    assert graded_class["tree_after"] == graded_class["tree_before"]  # submissions untouched


def test_is_nothing_left_running_or_lying_around(graded_class):
    assert graded_class["running"] == {"named": [], "sandboxes": [], "probe uids": []}
    assert graded_class["scratch"] == []


def test_does_the_other_instructor_s_run_get_full_marks(graded_class):
    others = graded_class["others"]
    assert sorted(others) == ["o1", "o2", "o3"]
    assert all(r["score"] == MANIFEST.max_score for r in others.values())
