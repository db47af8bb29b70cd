"""Hostile and broken submissions, graded end to end with the real command line.

Every fixture of `tests/fixtures/hostile.py` is the reference submission, or a buggy variant,
with something hostile or broken added. They are laid out as an nbgrader course
(`submitted/<name>/res_dense_nets/`) and graded in two CLI calls (`--jobs 2`, the venv's Python
called directly without its `bin` on PATH, as an operator's cron job would): everything else,
then the fork bomb with plain reference copies started with it, while it runs and as it ends,
while a second, independent grading run of reference copies goes on at the same time. Each test
then asks one question: the checks the fixture attacks lose points with a clear reason, every
other check is graded as usual, an attack on a buggy variant never earns more than that variant
graded honestly in the same batch, nothing got out of the sandbox (files, links, connections,
processes), and every student's results are written (report, autograded notebook, gradebook,
CSV, JSON).

Nothing here hard-codes a score or an accuracy: points and the total come from the manifest,
thresholds from the expected-answers file, what a mistake costs from its honest variant, and
accuracies of weights without any attack from a control fixture graded in the same batch.

Tests marked xfail (strict) are attacks that still work, with the reason; they turn into
failures the day the grader stops them, so that the marker goes.
"""

from __future__ import annotations

import shutil
import socket

import pytest

from grader.sandbox import bubblewrap_works
from solutions.data import DataNotFoundError, resolve_root
from tests.fixtures.grading import (
    remove_tree,
    start_grading,
    tree_state,
)
from tests.fixtures.hostile import (
    ASSIGNMENT,
    Targets,
    build,
)
from tests.grader.hostile.run import (
    BATCH,
    CLI_OPTIONS,
    CONCURRENT,
    FORK_BOMB_BATCH,
    MAIN_BATCH,
    MANIFEST,
    Graded,
    content,
    leftovers_of,
)


@pytest.fixture(scope="package")
def graded(tmp_path_factory, reference_submission) -> Graded:
    """Build every fixture, grade them with the CLI, and record what happened around that."""
    try:
        resolve_root(MANIFEST.dataset, online=False)
    except DataNotFoundError as err:
        pytest.skip(f"the real test split is needed: {err}")
    if not bubblewrap_works():
        pytest.skip("the hostile fixtures need the bubblewrap sandbox")
    base = tmp_path_factory.mktemp("hostile")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    targets = Targets.create(base / "targets", port=listener.getsockname()[1])
    result = Graded(base / "course", targets)
    submitted = result.course / "submitted"
    folders = {n: build(n, submitted, targets, reference_submission) for n in BATCH}
    others = base / "other-run"
    for name in CONCURRENT:
        shutil.copytree(reference_submission, others / name / ASSIGNMENT)
    protected = targets.protected_files()
    result.before = {p: content(p) for p in protected}
    result.victims_before = targets.victim_state()
    result.submitted_before = tree_state(submitted)
    scratch = base / "scratch"
    try:
        main = start_grading(
            [folders[n] for n in MAIN_BATCH], base / "main.json", scratch, *CLI_OPTIONS
        )
        reports = main.finish()
        result.seconds.append(main.seconds)
        result.csv_rows = (result.course / f"dlgrade-{ASSIGNMENT}.csv").read_text().splitlines()
        # The fork bomb's batch, and another run of its own at the same time.
        bomb = start_grading(
            [folders[n] for n in FORK_BOMB_BATCH], base / "bomb.json", scratch, *CLI_OPTIONS
        )
        other = start_grading(
            [others / n / ASSIGNMENT for n in CONCURRENT],
            base / "other.json",
            scratch,
            *CLI_OPTIONS,
        )
        reports += bomb.finish()
        result.concurrent = {r["student"]: r for r in other.finish()}
        result.seconds += [bomb.seconds, other.seconds]
        result.order = [r["student"] for r in reports]
        result.reports = {r["student"]: r for r in reports}
        result.leftovers = leftovers_of(targets, scratch)
        # Only the grader's own folders (libraries may leave caches of theirs in TMPDIR).
        result.scratch_left = sorted(p.name for p in scratch.glob("dlgrade-*"))
        while True:
            try:
                listener.accept()[0].close()
                result.connections += 1
            except BlockingIOError:
                break
        result.after = {p: content(p) for p in protected}
        result.victims_after = targets.victim_state()
        result.submitted_after = tree_state(submitted)
        yield result
    finally:
        listener.close()
        # A sandbox that let a marker through must not leave it in the repository.
        for marker in targets.all_markers(BATCH, submitted):
            marker.unlink(missing_ok=True)
        targets.gradebook_journal.unlink(missing_ok=True)
        # Deeper than pytest's own (recursive) clean-up of old temporary folders goes.
        remove_tree(folders["deep_submission_folder"])
        remove_tree(scratch)
