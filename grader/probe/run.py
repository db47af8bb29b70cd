"""The probe's main loop: run the cells, wait for the challenge, restore, observe, write.

Progress goes to `progress.jsonl` in the attempt's output folder, one event per line, flushed
as it happens, so that the supervisor (outside the sandbox) knows which cell or observer was
running when a time limit hit or the process died, and can start again without it.

The settings the observers probe with (the *challenge*) do not exist while the cells run: the
supervisor writes them into the read-only job folder only after the probe reported
`cells_done`. Every observation carries the challenge's nonce; the supervisor accepts nothing
else, so whatever student code wrote into the output folder beforehand counts for nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from grader.cell_code import cell_reads
from grader.checks.assemble import build_checkset
from grader.checks.common import describe_error, observe_on_cpu
from grader.manifest import Manifest
from grader.observations import encode
from grader.probe import colab
from grader.probe.context import STACK_FILE, CellOutcome, ProbeContext
from grader.probe.integrity import Snapshot
from grader.probe.kept import Kept
from grader.probe.shell import GradingShell, make_shell, run_cell
from grader.probe.unrun_imports import bind_unrun_imports

CHALLENGE_WAIT_S = 120.0


class Progress:
    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the probe

    def emit(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
        self._file.flush()


class StackWatch:
    """Writes the main thread's stack to `STACK_FILE` shortly before a cell's or an observer's
    time limit (`job["stack_after"]`, seconds by kind), so that the supervisor, stopping the
    probe, can say which of the student's functions was running. A timer thread reads the frames
    with `sys._current_frames()` under the GIL (faulthandler's dump, which reads them without
    it, crashed two probes with SIGSEGV in round 10b)."""

    def __init__(self, path: Path, after: dict[str, float]):
        self._path, self._after = path, after
        self._main = threading.main_thread().ident
        self._timer: threading.Timer | None = None

    def arm(self, kind: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._path.write_text("")
        if self._after.get(kind):
            self._timer = threading.Timer(self._after[kind], self._dump)
            self._timer.daemon = True
            self._timer.start()

    def _dump(self) -> None:
        frame = sys._current_frames().get(self._main)
        lines = [
            f'  File "{f.f_code.co_filename}", line {line} in {f.f_code.co_name}'
            for f, line in traceback.walk_stack(frame)
        ]  # most recent call first, as faulthandler writes it
        self._path.write_text("Thread (most recent call first):\n" + "\n".join(lines) + "\n")


def write_observation(out_dir: Path, name: str, nonce: str, result: Any) -> None:
    """`<name>.json` and `<name>.bin` (raw tensor bytes), the JSON renamed into place last."""
    text, blob = encode({"nonce": nonce, "data": result})
    (out_dir / f"{name}.bin").write_bytes(blob)
    tmp = out_dir / f"{name}.json.tmp"
    tmp.write_text(text)
    tmp.rename(out_dir / f"{name}.json")


def run_cells(
    shell: GradingShell, job: dict, progress: Progress, watch: StackWatch | None = None
) -> list[CellOutcome]:
    """Run every code cell not marked skip, in order.

    Cells that fail with a NameError run again after the others, as long as that helps: a
    notebook whose cells were moved around (Colab makes it easy) then still defines everything.
    Ends with the `cells_done` event, which names the definitions the checks meet where the
    student's cells define one several times (`Kept.graded`: the supervisor's note says which).
    """
    skip = {int(k): v for k, v in job["skip"].items()}
    numbers, keep = job["cell_numbers"], Kept(set(job.get("given", ())), job.get("closing_after"))
    cut = job.get("cut_short", {})  # index -> (its source, why): run as its definitions alone
    outcomes: dict[int, CellOutcome] = {}
    pending = [i for i in range(len(job["cells"])) if i not in skip]
    imported: list[str] | None = None
    while pending:
        retry = []
        for index in pending:
            source = job["cells"][index]
            progress.emit("cell_start", index=index)
            if watch:
                watch.arm("cell")
            before = dict(shell.user_ns)
            run = run_cell(shell, source)
            reads = cell_reads(source) if index in keep.given else set()  # given cells'
            keep.after(index, before, shell.user_ns, reads)
            progress.emit("cell_end", index=index, status=run.status, message=run.message)
            outcomes[index] = CellOutcome(index, source, run.status, run.message, numbers[index])
            if str(index) in cut and run.status == "ok":  # its own text, for what it lacks
                original, why = cut[str(index)]
                outcomes[index] = CellOutcome(index, original, "cut short", why, numbers[index])
            if run.message.startswith("NameError"):
                retry.append(index)
        helped = False
        if imported is None:  # after the first pass, what only a branch run on Colab imports
            imported = bind_unrun_imports(shell.user_ns, job["cells"])
            if imported:
                print(f"[grader] imported as on Colab (a branch not run here): {imported}")
            helped = bool(imported)
        if len(retry) == len(pending) and not helped:
            break
        pending = retry
    shell.user_ns.update(keep.clobbered())
    keep.put_back_members()
    # Before pinned functions are made anew:
    graded, patched = keep.graded(shell.user_ns, numbers), keep.patched(numbers)
    keep.pin(shell.user_ns)
    for index, reason in skip.items():
        outcomes[index] = CellOutcome(index, job["cells"][index], "skipped", reason, numbers[index])
    progress.emit("cells_done", graded=graded, patched=patched)
    return [outcomes[i] for i in sorted(outcomes)]


def wait_for_challenge(path: Path, timeout: float = CHALLENGE_WAIT_S) -> dict:
    """The challenge the supervisor writes once it has seen `cells_done`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:  # being renamed into place: read again
                pass
        time.sleep(0.02)
    raise TimeoutError("no challenge arrived")


def start_shell(own: list) -> tuple[GradingShell, Snapshot]:
    """The shell, then the snapshot that undoes what cells change (before any student code runs).
    Taken after the shell, so that IPython's own builtins stay: a restore removed `display`, and
    a `display(df)` in fit raised NameError when a check called it."""
    shell = make_shell()
    return shell, Snapshot.take(own)


def main(job_path: Path, out_dir: Path, challenge_path: Path) -> int:
    job = json.loads(job_path.read_text())
    (out_dir / "obs").mkdir(exist_ok=True)
    progress = Progress(out_dir / "progress.jsonl")
    watch = StackWatch(out_dir / STACK_FILE, job.get("stack_after", {}))
    manifest = Manifest.model_validate(job["manifest"])
    checkset = build_checkset(manifest)
    # Our own references, taken before any student code runs: a cell may reach the check set
    # through sys.modules and swap an observer.
    observers = {name: spec.observe for name, spec in checkset.observers.items()}
    own = [
        m for n, m in list(sys.modules.items()) if n.startswith(("grader.checks", "grader.probe"))
    ]
    if job.get("matplotlib_cache") and Path(job["matplotlib_cache"]).is_dir():
        target = Path(os.environ.get("MPLCONFIGDIR", "/tmp/matplotlib"))
        shutil.copytree(job["matplotlib_cache"], target, dirs_exist_ok=True)
    os.chdir(job["workdir"])
    colab.link_data(Path(job["workdir"]))  # `datasets.X("data", download=True)` finds it
    colab.link_drive(Path(job["workdir"]))  # a Drive folder holds the submitted files
    colab.find_data_anywhere()  # and so does a Drive folder's root
    shell, snapshot = start_shell(own)
    progress.emit("started")

    cells = run_cells(shell, job, progress, watch)  # its last event: cells_done
    snapshot.restore()
    challenge = wait_for_challenge(challenge_path)
    nonce, settings = challenge["nonce"], challenge["settings"]

    ctx = ProbeContext(
        ns=shell.user_ns,
        manifest=manifest,
        workdir=Path(job["workdir"]),
        weights_dir=Path(job["weights_dir"]),
        test_images=Path(job["test_images"]) if job.get("test_images") else None,
        weights_problems=job.get("weights_problems", {}),
        cells=tuple(cells),
    )
    for name in job["observers"]:
        restored = snapshot.restore()
        progress.emit("observer_start", name=name, restored=restored[:50])
        watch.arm("observer")
        try:
            observed = ctx.with_settings(settings.get(name, {}))
            result = observe_on_cpu(observers[name], observed, snapshot.restore)
        except BaseException as err:  # noqa: BLE001 - SystemExit from student code included
            result = {"__error__": describe_error(err, 500)}
        snapshot.restore()
        write_observation(out_dir / "obs", name, nonce, result)
        progress.emit("observer_end", name=name)
    progress.emit("done")
    return 0
