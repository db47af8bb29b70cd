"""The probe's main loop: run the cells, restore the libraries, run the observers, write data.

Progress goes to `progress.jsonl` in the output folder, one event per line, flushed as it
happens, so that the supervisor (outside the sandbox) knows which cell or observer was running
when a time limit hit or the process died, and can start again without it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from grader.checks.common import describe_error
from grader.probe.context import CellOutcome, ProbeContext
from grader.probe.integrity import Snapshot
from grader.probe.shell import GradingShell, make_shell, run_cell
from grader.spec import load_checkset

TENSOR_SUFFIX = "_tensor"


class Progress:
    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the probe

    def emit(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
        self._file.flush()


def split_tensors(value: Any, tensors: dict, path: str = "") -> Any:
    """Replace tensors under `*_tensor` keys by references, collecting them in `tensors`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            where = f"{path}/{key}"
            if key.endswith(TENSOR_SUFFIX) and isinstance(item, torch.Tensor):
                tensors[where] = item.detach().cpu().contiguous().clone()
                out[key] = {"__tensor__": where}
            else:
                out[key] = split_tensors(item, tensors, where)
        return out
    if isinstance(value, list | tuple):
        return [split_tensors(v, tensors, path) for v in value]
    return value


def write_observation(out_dir: Path, name: str, result: Any) -> None:
    tensors: dict = {}
    data = split_tensors(result, tensors)
    if tensors:
        torch.save(tensors, out_dir / f"{name}.pt")
    tmp = out_dir / f"{name}.json.tmp"
    tmp.write_text(json.dumps(data))
    tmp.rename(out_dir / f"{name}.json")


def run_cells(shell: GradingShell, job: dict, progress: Progress) -> list[CellOutcome]:
    """Run every code cell not marked skip, in order.

    Cells that fail with a NameError run again after the others, as long as that helps: a
    notebook whose cells were moved around (Colab makes it easy) then still defines everything.
    """
    skip = {int(k): v for k, v in job["skip"].items()}
    numbers = job.get("cell_numbers") or [i + 1 for i in range(len(job["cells"]))]
    outcomes: dict[int, CellOutcome] = {}
    pending = [i for i in range(len(job["cells"])) if i not in skip]
    while pending:
        retry = []
        for index in pending:
            source = job["cells"][index]
            progress.emit("cell_start", index=index)
            run = run_cell(shell, source)
            progress.emit("cell_end", index=index, status=run.status, message=run.message)
            outcomes[index] = CellOutcome(index, source, run.status, run.message, numbers[index])
            if run.message.startswith("NameError"):
                retry.append(index)
        if len(retry) == len(pending):
            break
        pending = retry
    for index, reason in skip.items():
        outcomes[index] = CellOutcome(index, job["cells"][index], "skipped", reason, numbers[index])
    return [outcomes[i] for i in sorted(outcomes)]


def main(job_path: Path) -> int:
    job = json.loads(job_path.read_text())
    out_dir = Path(job["out"])
    (out_dir / "obs").mkdir(exist_ok=True)
    progress = Progress(out_dir / "progress.jsonl")
    checkset = load_checkset(job["assignment"])
    # Our own references, taken before any student code runs: a cell may reach the check set
    # through sys.modules and swap an observer.
    observers = dict(checkset.observers)
    own = [
        m for n, m in list(sys.modules.items()) if n.startswith(("grader.checks", "grader.probe"))
    ]
    if job.get("matplotlib_cache") and Path(job["matplotlib_cache"]).is_dir():
        target = Path(os.environ.get("MPLCONFIGDIR", "/tmp/matplotlib"))
        shutil.copytree(job["matplotlib_cache"], target, dirs_exist_ok=True)
    snapshot = Snapshot.take(own)  # before any student code runs
    os.chdir(job["workdir"])
    shell = make_shell()
    progress.emit("started")

    cells = run_cells(shell, job, progress)
    progress.emit("cells_done")

    ctx = ProbeContext(
        ns=shell.user_ns,
        workdir=Path(job["workdir"]),
        settings=job.get("settings", {}),
        models=job.get("models", []),
        mean=tuple(job.get("mean", ())),
        std=tuple(job.get("std", ())),
        test_images=Path(job["test_images"]) if job.get("test_images") else None,
        weights_problems=job.get("weights_problems", {}),
        cells=cells,
    )
    for name in job["observers"]:
        restored = snapshot.restore()
        progress.emit("observer_start", name=name, restored=restored[:50])
        try:
            result = observers[name](ctx)
        except BaseException as err:  # noqa: BLE001 - SystemExit from student code included
            result = {"__error__": describe_error(err, 500)}
        snapshot.restore()
        write_observation(out_dir / "obs", name, result)
        progress.emit("observer_end", name=name)
    progress.emit("done")
    return 0
