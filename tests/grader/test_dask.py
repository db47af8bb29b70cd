"""A class graded on a Dask cluster: the grades of one machine, even when a worker is lost.

A `distributed.LocalCluster` with two worker processes (one thread each) stands in for a
cluster of grading machines. One small class (the reference, a buggy variant whose
points depend on the course's settings, a hostile notebook that ends its own process, and a
notebook that is not JSON) is graded on this machine with `--jobs 2`, then a copy of the
course as it was before (settings key and the reference's observations included) is graded
with `--dask` while the test kills a worker process that is grading, once the first report is
written. Then `--dask --student ann` regrades ann alone.

Every question compares the cluster's run with the local run of the same class: nothing here
hard-codes a score, and no verdict depends on how fast the machine is (the kill waits for
states, never for a time).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grader.grade import GradeConfig, GradingRun
from grader.manifest import load_manifest
from grader.sandbox import bubblewrap_works
from grader.session import Session
from grader.settings_key import key_path, load_key, settings_seed
from solutions.data import DataNotFoundError, resolve_root
from tests.fixtures import toy
from tests.fixtures.course import ID, make_class, scores
from tests.fixtures.grading import Grading, leftovers, orphans, start_grading
from tests.fixtures.hostile import build

distributed = pytest.importorskip("distributed")
from grader.cluster.coordinator import ClusterUnreachable, DaskExecutor  # noqa: E402
from grader.cluster.worker import GradingSlots, RunSpec  # noqa: E402

CLASS = {
    "ann": "reference",
    "cat": "broken",  # not JSON: refused by the coordinator, never sent to a worker
    "summed_features": "variant:summed_features",
}
HOSTILE = "os_exit"  # os._exit(0) between model cells: the probe is run again without it
STUDENTS = sorted([*CLASS, HOSTILE])
PROBED = [s for s in STUDENTS if s != "cat"]


@dataclass
class Runs:
    """The same class graded locally and on the cluster, and what the test saw meanwhile."""

    local: Path  # the course graded with --jobs 2
    cluster: Path  # its copy graded with --dask
    local_reports: dict[str, dict]
    cluster_reports: list[dict]  # as the --dask run's --json listed them
    killed: dict[str, object] = field(default_factory=dict)  # worker, pid, keys it was grading
    rerun: list[dict] = field(default_factory=list)  # --dask --student ann
    worker_scratch: Path | None = None
    scratch_before_rerun: list[str] = field(default_factory=list)
    scratch_after_rerun: list[str] = field(default_factory=list)


def _course(root: Path, reference: Path) -> Path:
    """The class, with its settings key written before it is copied (one key, two copies)."""
    course = make_class(root, reference, CLASS)
    build(HOSTILE, course / "submitted", None, reference)
    (course / "submitted" / HOSTILE / ID / "timestamp.txt").write_text(
        "2026-11-20 12:00:00.000000 UTC"
    )
    load_key(key_path(course))
    return course


def _ungraded_copy(course: Path, dest: Path) -> Path:
    """The course as it was before grading, with the settings key and the reference's
    observations the local run kept beside it: both runs judge against the same numbers."""
    shutil.copytree(course / "submitted", dest / "submitted", symlinks=True)
    shutil.copytree(course / ".dlgrade", dest / ".dlgrade", ignore=shutil.ignore_patterns("lock"))
    return dest


def _kill_a_busy_worker(client, course: Path, run: Grading) -> dict[str, object]:
    """Once a probed student's report is written, SIGKILL a worker process that is grading."""
    while run.process.poll() is None:
        written = any((course / "autograded" / s / ID / "report.json").is_file() for s in PROBED)
        busy = {w: keys for w, keys in client.processing().items() if keys} if written else {}
        if busy:
            worker, keys = sorted(busy.items())[0]
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
            return {"worker": worker, "pid": pid, "keys": list(keys)}
        time.sleep(0.2)
    raise AssertionError("the run ended before a worker could be killed while grading")


def _dlgrade_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("dlgrade-*"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, reference_submission) -> Runs:
    try:
        resolve_root(load_manifest(ID).dataset, online=False)
    except DataNotFoundError as err:
        pytest.skip(f"the real test split is needed: {err}")
    if not bubblewrap_works():
        pytest.skip("the os._exit fixture needs the bubblewrap sandbox")
    base = tmp_path_factory.mktemp("dask")
    course = _course(base / "local", reference_submission)
    scratch, workers_tmp = base / "scratch", base / "workers"
    workers_tmp.mkdir()

    local = start_grading([course / "submitted"], base / "local.json", scratch, "--jobs", "2")
    local_reports = {r["student"]: r for r in local.finish()}
    cluster_course = _ungraded_copy(course, base / "cluster")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"TMPDIR": str(workers_tmp)},  # also for a worker the nanny restarts
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        submitted, dask = [cluster_course / "submitted"], ("--dask", cluster.scheduler_address)
        run = start_grading(submitted, base / "cluster.json", scratch, *dask)
        killed = _kill_a_busy_worker(client, cluster_course, run)
        result = Runs(course, cluster_course, local_reports, run.finish(), killed, [], workers_tmp)
        client.wait_for_workers(2)  # the nanny's new worker, before the next run needs it
        result.scratch_before_rerun = _dlgrade_entries(workers_tmp)
        rerun = start_grading(submitted, base / "rerun.json", scratch, *dask, "--student", "ann")
        result.rerun = rerun.finish()
        result.scratch_after_rerun = _dlgrade_entries(workers_tmp)
    return result


def _checks(report: dict) -> list[tuple]:
    return [(c["name"], c["points"], c["status"]) for c in report["checks"]]


def test_does_the_cluster_give_every_student_the_local_grade(runs):
    assert sorted(r["student"] for r in runs.cluster_reports) == STUDENTS
    for report in runs.cluster_reports:
        local = runs.local_reports[report["student"]]
        assert report["score"] == local["score"], report["student"]
        assert _checks(report) == _checks(local), report["student"]
        assert report["status"] == local["status"], report["student"]


def test_does_the_class_cover_full_marks_a_mistake_and_a_hostile_notebook(runs):
    """The comparison means something: the class is not all alike."""
    totals = {s: r["score"] for s, r in runs.local_reports.items()}
    full = runs.local_reports["ann"]["max_score"]
    assert totals["ann"] == totals[HOSTILE] == full
    assert totals["cat"] == 0 and 0 < totals["summed_features"] < full
    for reports in (runs.local_reports, {r["student"]: r for r in runs.cluster_reports}):
        assert any("exited early" in note for note in reports[HOSTILE]["notes"])


def test_was_a_worker_killed_while_it_graded(runs):
    assert runs.killed["keys"], runs.killed
    assert all(str(k).startswith(f"dlgrade-{ID}-") for k in runs.killed["keys"])


def test_does_a_lost_worker_cost_no_grade(runs):
    """Its submissions were graded elsewhere: nobody is sent to review or left out."""
    statuses = {r["student"]: r["status"] for r in runs.cluster_reports}
    assert statuses == {s: runs.local_reports[s]["status"] for s in STUDENTS}
    assert "review" not in statuses.values()


def test_is_every_student_written_once(runs):
    listed = [r["student"] for r in runs.cluster_reports]
    assert len(listed) == len(set(listed)) == len(STUDENTS)
    rows = list(csv.DictReader(io.StringIO((runs.cluster / f"dlgrade-{ID}.csv").read_text())))
    assert sorted(r["student"] for r in rows) == STUDENTS
    in_gradebook = scores(f"sqlite:///{runs.cluster / 'gradebook.db'}")
    assert in_gradebook == scores(f"sqlite:///{runs.local / 'gradebook.db'}")
    with Gradebook(f"sqlite:///{runs.cluster / 'gradebook.db'}") as gb:
        assert len(gb.find_assignment(ID).submissions) == len(STUDENTS)


def test_does_the_cluster_run_write_what_a_local_run_writes(runs):
    for student in STUDENTS:
        ours = runs.cluster / "autograded" / student / ID
        theirs = runs.local / "autograded" / student / ID
        assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
        saved = json.loads((ours / "report.json").read_text())
        assert saved["score"] == runs.local_reports[student]["score"]
        assert (
            saved["fingerprint"] == json.loads((theirs / "report.json").read_text())["fingerprint"]
        )
    for name in (f"{ID}-scores.png", f"{ID}-checks.png"):
        assert (runs.cluster / name).is_file()
    header = (runs.cluster / f"dlgrade-{ID}.csv").read_text().splitlines()[0]
    assert header == (runs.local / f"dlgrade-{ID}.csv").read_text().splitlines()[0]


def test_does_a_rerun_on_the_cluster_regrade_only_the_student_named(runs):
    statuses = {r["student"]: r["status"] for r in runs.rerun}
    assert statuses["ann"] == "graded"
    # Every other report is final (none went to review), so each is reused, "cat"'s too.
    assert {s for s, status in statuses.items() if status == "reused"} == set(STUDENTS) - {"ann"}
    rerun = {r["student"]: r["score"] for r in runs.rerun}
    assert rerun == {s: runs.local_reports[s]["score"] for s in STUDENTS}


def test_does_a_lost_worker_leave_no_probe_running(runs):
    assert orphans() == []
    assert leftovers(runs.worker_scratch) == []


def test_does_a_run_take_its_slots_off_the_workers_when_it_ends(runs):
    """The re-run's slots and test split are gone from the workers' scratch afterwards (the
    killed worker's were left where it died, as a killed local run leaves its own)."""
    assert runs.scratch_after_rerun == runs.scratch_before_rerun


def test_does_the_settings_key_stay_on_the_coordinator(tmp_path):
    """What the workers are sent (the plugin, pickled as Dask ships it) holds the settings the
    probes need, and neither the course's key nor the seed drawn from it."""
    key, seed = load_key(key_path(tmp_path)), settings_seed(tmp_path, toy.ID)
    session = Session.prepare(toy.manifest(), seed.seed, expected={}, folder=toy.FOLDER)
    run = GradingRun(session, None, GradeConfig(), "fingerprint", seed.digest)
    spec = RunSpec.of(run)
    assert spec.settings == dict(session.settings) and spec.settings
    sent = pickle.dumps(GradingSlots(spec))
    seed_bytes = seed.seed.to_bytes(16, "big")
    for secret in (key, key.hex().encode(), seed_bytes, seed_bytes[::-1], str(seed.seed).encode()):
        assert secret not in sent


def test_is_a_missing_scheduler_an_operator_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ClusterUnreachable, match="no Dask scheduler at"):
        DaskExecutor(address, timeout=2)
