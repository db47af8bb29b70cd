"""The coordinating side of a run on a Dask cluster: an executor for `grader.batch.grade_many`.

`DaskExecutor` registers the run's `GradingSlots` plugin on the workers, sends each staged
submission (its bytes, the student's name) as one task, and turns each returned report (JSON
data) back into a `Report` for the batch, which saves it exactly as after a local run. It keeps
about two submissions per worker thread in flight, so that a worker's next submission is
already waiting when it finishes one. A worker lost mid-run needs nothing from here: the
scheduler gives its tasks to another worker; a task that cannot be graded at all (its workers
died three times, or refused the run) comes back as an error, which the batch sends to review.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
from concurrent.futures import Future

import dask
from distributed import Client

from grader.cluster.worker import GradingSlots, RunSpec, grade_task
from grader.grade import GradingRun
from grader.notebook_io import MAX_NOTEBOOK_BYTES
from grader.report import Report
from grader.slots import ExecutorUnavailable
from grader.staging import MAX_EXTRA_FILE_BYTES, MAX_EXTRA_FILES, Staged


class ClusterUnreachable(ExecutorUnavailable):
    """No Dask scheduler answered at the address given, or its workers refused the run."""


class ClusterError(RuntimeError):
    """The cluster could not grade a submission (the message says what Dask reported)."""


class DaskExecutor:
    """Grades on the workers of the Dask cluster whose scheduler is at `address`."""

    def __init__(self, address: str, *, timeout: float = 30.0):
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ClusterUnreachable(f"no Dask scheduler at {address}: {_line(err)}") from None
        self.address = address
        self._plugin = ""
        self._largest_task = 0
        self._numbers = itertools.count()
        # A distributed future that nobody holds is cancelled: each is kept until it settles.
        self._remote: dict[Future, object] = {}
        self._lock = threading.Lock()

    def start(self, run: GradingRun, count: int) -> None:
        if not count:
            return
        manifest = run.manifest
        weights = sum(int(m.max_weights_mb * 1024**2) for m in manifest.models)
        self._largest_task = MAX_NOTEBOOK_BYTES + weights + MAX_EXTRA_FILES * MAX_EXTRA_FILE_BYTES
        self._plugin = f"dlgrade-{manifest.id}-{secrets.token_hex(8)}"
        try:
            self.client.register_plugin(GradingSlots(RunSpec.of(run)), name=self._plugin)
        except Exception as err:  # noqa: BLE001 - whatever a worker raised, in one line
            self._plugin = ""
            raise ClusterUnreachable(f"the workers refused the run: {_line(err)}") from None

    def capacity(self) -> int:
        return max(1, 2 * sum(self.client.nthreads().values()))

    def submit(self, student: str, staged: Staged) -> Future[Report]:
        local: Future[Report] = Future()
        # Every task carries one student's files, by design: no warning about large graphs.
        threshold = {"distributed.admin.large-graph-warning-threshold": self._largest_task}
        with dask.config.set(threshold):
            remote = self.client.submit(
                grade_task,
                self._plugin,
                student,
                staged,
                key=f"{self._plugin}-{next(self._numbers)}",
                pure=False,
            )
        with self._lock:
            self._remote[local] = remote

        def settle(done) -> None:
            try:
                local.set_result(Report.from_dict(done.result()))
            except BaseException as err:  # noqa: BLE001 - cancelled, lost, refused: for review
                local.set_exception(ClusterError(f"{type(err).__name__}: {err}"))
            with self._lock:
                self._remote.pop(local, None)

        remote.add_done_callback(settle)
        return local

    def close(self) -> None:
        """Tear the run's slots down on every worker and disconnect (the cluster stays)."""
        if self._plugin:
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(self._plugin)
            self._plugin = ""
        self.client.close()


def _line(err: BaseException) -> str:
    """The first line of an error's text (an operator error is one line)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
