"""Where the submissions of a run are graded: warm sandbox slots, and the executors using them.

A `SlotPool` is one machine's job slots for one run: a warm probe host per slot (its zygote
started on first use and kept for the whole run), each with a uid of the pool's own lease. It
serves this machine's run (`LocalSlots`, `--jobs N` threads) and each worker of a Dask cluster
(`grader.cluster.worker`) alike, and `grade_with_retry` grades one staged submission in a slot
the same way on both: a result the grading machine may have caused is graded once more, and
sent for review when it happens again.

An executor (`Executor`) is what `grader.batch.grade_many` hands staged submissions to; it
returns each report as a future, and the batch saves every report itself, in one thread.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from grader.grade import GradingRun, close_host, grade_submission, open_host
from grader.probe_host import ProbeHost
from grader.report import Report
from grader.sandbox import Sandbox
from grader.staging import Staged
from grader.uids import UidLease


class ExecutorUnavailable(RuntimeError):
    """The executor cannot grade at all (no cluster at that address, say): an operator error."""


class Executor(Protocol):
    """Grades staged submissions of one run somewhere; the caller saves the reports."""

    def start(self, run: GradingRun, count: int) -> None:
        """Get ready to grade `count` submissions of `run` (0: nothing will be submitted);
        ExecutorUnavailable when it cannot."""

    def capacity(self) -> int:
        """How many submissions to keep in flight now (at least 1)."""

    def submit(self, student: str, staged: Staged) -> Future[Report]:
        """Grade one staged submission; its report, never an exception for what it holds."""

    def close(self) -> None:
        """Give back everything `start` took (idempotent)."""


def grade_with_retry(staged: Staged, run: GradingRun, host: ProbeHost, student: str) -> Report:
    """Grade `staged` in `host`'s slot; once more when the grading machine may be to blame,
    and status "review" when it may be to blame again."""
    report = grade_submission(None, run, host, student, staged)
    if report.machine_trouble:
        first = "; ".join(report.machine_trouble)
        report = grade_submission(None, run, host, student, staged)
        if report.machine_trouble:
            report.status = "review"
            report.reason = f"the grading machine may be to blame: {first}"
            report.notes.append(
                "graded twice, and both times the grading machine may be to blame "
                f"({first}; then {'; '.join(report.machine_trouble)}): look at this one"
            )
        else:
            report.notes.append(f"graded again after: {first}")
    return report


class SlotPool:
    """`count` warm sandbox slots of `run` on this machine, each with a uid of this pool's own
    lease (when the sandbox drops to probe uids); `host()` lends one to a thread."""

    def __init__(self, run: GradingRun, count: int):
        self.run = run
        self.size = count
        self._lease = UidLease.take(count) if count and Sandbox.root_drops_privileges() else None
        self._hosts: list[ProbeHost] = []
        self._idle: queue.SimpleQueue[ProbeHost] = queue.SimpleQueue()
        try:
            for uid in self._lease.uids if self._lease else [0] * count:
                self._hosts.append(open_host(run, uid))
                self._idle.put(self._hosts[-1])
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def host(self) -> Iterator[ProbeHost]:
        """An idle slot's host for one submission (waits for one)."""
        host = self._idle.get()
        try:
            yield host
        finally:
            self._idle.put(host)

    def close(self) -> None:
        """Stop every zygote, remove the slots' folders, give the uids back."""
        hosts, self._hosts = self._hosts, []
        for host in hosts:
            close_host(host, self.run.config)
        if self._lease is not None:
            self._lease.release()


class LocalSlots:
    """This machine's executor: `jobs` slots, each graded by a thread of its own."""

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self._pool: SlotPool | None = None
        self._threads: ThreadPoolExecutor | None = None

    def start(self, run: GradingRun, count: int) -> None:
        self._pool = SlotPool(run, min(self.jobs, count))
        self._threads = ThreadPoolExecutor(max_workers=max(1, self._pool.size))

    def capacity(self) -> int:
        return max(1, self._pool.size if self._pool else 1)

    def submit(self, student: str, staged: Staged) -> Future[Report]:
        return self._threads.submit(self._grade, student, staged)

    def _grade(self, student: str, staged: Staged) -> Report:
        with self._pool.host() as host:
            return grade_with_retry(staged, self._pool.run, host, student)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        if self._pool is not None:
            self._pool.close()
        self._threads = self._pool = None
