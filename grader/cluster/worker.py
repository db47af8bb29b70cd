"""A Dask worker's side of a grading run: warm slots for the whole run, one task per submission.

The coordinator registers a `GradingSlots` plugin for its run on every worker (and Dask gives
it to workers that join or restart later). It carries a `RunSpec`: the session's settings,
the reference's observations, the expected answers, the limits and the run's fingerprint;
never the course's settings key. On its first task a worker prepares the run once: its own
copy of the test split, shuffled in its own order, whose labels stay in the worker process (the
judge runs here, so the labels never travel and the report is all that comes back), and one
warm sandbox slot per worker thread with uids leased on this machine. It then recomputes the
run's fingerprint from its own grader code, release notebook and test split and refuses to
grade (every task fails, and the coordinator sends those students to review) when that differs
from the coordinator's: a worker with other code or data would give other grades under the
same fingerprint.

`grade_task` is idempotent: it reads nothing but its arguments and writes only into this
worker's scratch slots, so a task that Dask runs again on another worker after losing one
grades the same submission the same way, and the coordinator records the result it receives.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin, get_worker

from grader.checks.assemble import build_checkset
from grader.grade import GradeConfig, GradingRun
from grader.inputs import prepare_inputs
from grader.judge import Accepted
from grader.manifest import Manifest
from grader.safe_fs import remove
from grader.session import Session
from grader.slots import SlotPool, grade_with_retry
from grader.staging import Staged


class WorkerNotReady(RuntimeError):
    """This worker cannot grade the run as the coordinator would (the reason says why)."""


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs of the coordinator's run, sent once per worker with its plugin."""

    manifest: Manifest
    checks: tuple[str, ...]
    settings: dict[str, dict]  # observer name -> the settings it probes with
    accepted: tuple[Accepted, ...]  # the reference's observations, then each alternative's
    expected: dict[str, Any]
    config: GradeConfig
    settings_id: str  # a digest of the course's seed, for the fingerprint
    fingerprint: str  # the coordinator's: a worker grading otherwise refuses the run

    @classmethod
    def of(cls, run: GradingRun) -> RunSpec:
        session = run.session
        return cls(
            session.manifest,
            session.checks,
            dict(session.settings),
            session.accepted,
            dict(session.expected),
            run.config,
            run.settings_id,
            run.fingerprint,
        )

    def session(self) -> Session:
        """The coordinator's session, its check set assembled from this worker's code."""
        checkset = build_checkset(self.manifest)
        return Session(
            self.manifest, checkset, self.checks, self.settings, self.accepted, self.expected
        )


class GradingSlots(WorkerPlugin):
    """One run's state on one worker (see the module docstring), made on the first task and
    kept until the coordinator unregisters the plugin at the end of its run (`teardown`)."""

    def __init__(self, spec: RunSpec):
        self.spec = spec

    def setup(self, worker) -> None:
        self._address = worker.address
        self._threads = worker.state.nthreads
        self._lock = threading.Lock()
        self._ready: tuple[GradingRun, SlotPool] | None = None
        self._refused = ""  # why this worker cannot grade the run, once found
        self._folder: Path | None = None

    def ready(self) -> tuple[GradingRun, SlotPool]:
        """The run as this worker grades it, and its slots; prepared by the first caller."""
        with self._lock:
            if self._ready is None and not self._refused:
                try:
                    self._ready = self._prepare()
                except WorkerNotReady as err:
                    self._refused = str(err)
            if self._refused:
                raise WorkerNotReady(self._refused)
            return self._ready

    def _prepare(self) -> tuple[GradingRun, SlotPool]:
        spec = self.spec
        folder = Path(tempfile.mkdtemp(prefix="dlgrade-input-"))
        try:
            inputs = prepare_inputs(spec.manifest, folder)
            threads = max(1, (os.cpu_count() or 1) // self._threads)
            config = replace(spec.config, threads=threads, scratch_root=None)
            run = GradingRun.assemble(spec.session(), inputs, config, spec.settings_id)
            if run.fingerprint != spec.fingerprint:
                raise WorkerNotReady(
                    f"worker {self._address} would grade differently from the coordinator: "
                    "its grader code, release notebook or test split differ (run the same "
                    "checkout and data on every machine)"
                    + (f"; {inputs.missing}" if inputs.missing else "")
                )
            pool = SlotPool(run, self._threads)
        except BaseException:
            remove(folder)
            raise
        self._folder = folder
        return run, pool

    def teardown(self, worker) -> None:
        with self._lock:
            if self._ready is not None:
                self._ready[1].close()
                self._ready = None
            if self._folder is not None:
                remove(self._folder)
            self._refused = "the run is over"


def grade_task(plugin: str, student: str, staged: Staged) -> dict:
    """Grade one staged submission in a warm slot of this worker; the report as JSON data."""
    run, pool = get_worker().plugins[plugin].ready()
    with pool.host() as host:
        return grade_with_retry(staged, run, host, student).to_dict()
