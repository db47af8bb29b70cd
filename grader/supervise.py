"""Run the probe in its sandbox and keep going whatever the submission does.

The supervisor watches the probe's progress file. When a cell or an observer outlives its time
limit, or the process dies (a crash, `os._exit`, a kill signal), the item that was running is
blamed: a cell is skipped on the next attempt, an observer is recorded as failed with the
reason. Then the probe starts again without it, keeping what earlier attempts observed. Nothing
the probe writes is trusted: JSON is size-limited and parsed, tensors are loaded with
`weights_only=True`.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grader.probe.context import CellOutcome
from grader.probe_host import ProbeHost, ProbeHostError

MAX_JSON_BYTES = 20 * 1024**2
MAX_TENSOR_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class TimeLimits:
    """Wall-clock limits of one submission's probe, in seconds."""

    cell: float = 30.0
    observer: float = 60.0
    startup: float = 60.0
    total: float = 300.0
    attempts: int = 5


@dataclass
class ProbeResult:
    observations: dict[str, Any]  # observer name -> data, or {"__error__": reason}
    cells: list[CellOutcome]
    attempts: int
    log_tail: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class _Attempt:
    """What one run of the probe got through before it ended."""

    events: list[dict] = field(default_factory=list)
    current: tuple[str, Any] | None = None  # ("cell", index) / ("observer", name) / ("startup", 0)
    ended: str = ""  # why the process ended, when it did not finish

    @property
    def finished(self) -> bool:
        return any(e.get("event") == "done" for e in self.events)


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        return f"the process was killed by {name}"
    if code >= 128 and code - 128 in signal.Signals._value2member_map_:
        return f"the process was killed by {signal.Signals(code - 128).name}"
    if code == 0:
        return "the process exited early (exit(), sys.exit() or os._exit() in the notebook?)"
    return f"the process exited with status {code}"


def _read_events(path: Path, offset: int) -> tuple[list[dict], int]:
    if not path.exists():
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        chunk = handle.read(1024**2)
    complete = chunk.rfind(b"\n") + 1
    events = []
    for line in chunk[:complete].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + complete


def _run_attempt(
    host: ProbeHost,
    job: Path,
    out: Path,
    log: Path,
    limits: TimeLimits,
    threads: int,
    deadline: float,
) -> _Attempt:
    """One probe run: start it, follow its progress, stop it when an item outlives its limit."""
    attempt = _Attempt(current=("startup", 0))
    try:
        host.spawn(job, log, threads)
    except ProbeHostError as err:
        attempt.ended = str(err)
        return attempt
    started = time.monotonic()
    offset, progress = 0, out / "progress.jsonl"
    try:
        while True:
            status = host.wait(0.05)
            events, offset = _read_events(progress, offset)
            for event in events:
                attempt.events.append(event)
                kind = event.get("event")
                if kind in ("cell_start", "observer_start", "started"):
                    started = time.monotonic()
                    attempt.current = (
                        ("cell", event.get("index"))
                        if kind == "cell_start"
                        else ("observer", event.get("name"))
                        if kind == "observer_start"
                        else None
                    )
                elif kind in ("cell_end", "observer_end"):
                    attempt.current = None
            if status is not None:
                if not attempt.finished:
                    attempt.ended = _describe_exit(status)
                return attempt
            what = attempt.current[0] if attempt.current else "cell"
            limit = {"startup": limits.startup, "observer": limits.observer}.get(what, limits.cell)
            now = time.monotonic()
            if now - started > limit or now > deadline:
                host.stop()
                attempt.ended = (
                    f"it ran longer than {limit:.0f} s"
                    if now - started > limit
                    else f"grading this submission took longer than {limits.total:.0f} s"
                )
                return attempt
    finally:
        host.finish()  # whatever the probe started goes with it


def _load_observation(obs_dir: Path, name: str) -> Any:
    path = obs_dir / f"{name}.json"
    if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
        return {"__error__": "the probe wrote no usable result"}
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return {"__error__": "the probe wrote an unreadable result"}
    tensors: dict = {}
    tensor_file = obs_dir / f"{name}.pt"
    if tensor_file.is_file() and tensor_file.stat().st_size <= MAX_TENSOR_BYTES:
        try:
            loaded = torch.load(tensor_file, map_location="cpu", weights_only=True)
            if isinstance(loaded, dict):
                tensors = loaded
        except Exception:  # noqa: BLE001 - an unreadable file means no tensors
            tensors = {}
    return _resolve_tensors(data, tensors)


def _resolve_tensors(value: Any, tensors: dict) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            found = tensors.get(value["__tensor__"])
            return found if isinstance(found, torch.Tensor) else None
        return {k: _resolve_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_tensors(v, tensors) for v in value]
    return value


def _tail(path: Path, size: int = 4000) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


def run_probe(host: ProbeHost, job: dict, limits: TimeLimits, threads: int) -> ProbeResult:
    """Run the probe until every observer has a result or a reason it has none."""
    deadline = time.monotonic() + limits.total
    skip: dict[int, str] = {int(k): v for k, v in job["skip"].items()}
    numbers = job.get("cell_numbers") or [i + 1 for i in range(len(job["cells"]))]
    observations: dict[str, Any] = {}
    cells: dict[int, CellOutcome] = {}
    slot, inside = host.slot, host.sandbox.inside
    log = slot.folder("outs") / "probe.log"
    notes: list[str] = []
    attempts = start_failures = 0
    while attempts < limits.attempts:
        attempts += 1
        remaining = [n for n in job["observers"] if n not in observations]
        if attempts > 1 and not remaining:
            break
        out = slot.folder("outs") / f"out{attempts}"
        host.sandbox.prepare(out)
        job_file = slot.folder("job") / f"job{attempts}.json"
        job_file.write_text(
            json.dumps({**job, "skip": skip, "observers": remaining, "out": str(inside(out))})
        )
        attempt = _run_attempt(host, job_file, out, log, limits, threads, deadline)
        for event in attempt.events:
            if event.get("event") == "cell_end" and isinstance(event.get("index"), int):
                index = event["index"]
                if 0 <= index < len(job["cells"]):
                    cells[index] = CellOutcome(
                        index,
                        job["cells"][index],
                        str(event.get("status")),
                        str(event.get("message", ""))[:300],
                        numbers[index],
                    )
            if event.get("event") == "observer_end" and event.get("name") in remaining:
                observations[event["name"]] = _load_observation(out / "obs", event["name"])
        if attempt.finished:
            break
        reason = attempt.ended
        kind, item = attempt.current or ("cell", None)
        started = any(e.get("event") == "started" for e in attempt.events)
        if kind == "cell" and isinstance(item, int) and 0 <= item < len(job["cells"]):
            skip[item] = f"not run: {reason}"
            notes.append(f"cell {numbers[item]} stopped the probe ({reason}); graded without it")
        elif kind == "observer" and item in remaining:
            observations[item] = {"__error__": f"stopped while checking: {reason}"}
        elif started:
            notes.append(f"the probe stopped between two steps ({reason}); started it again")
        elif start_failures < 2:
            # A start can fail for reasons that pass (the machine short of processes or
            # memory for a moment): try again before giving up on the submission.
            start_failures += 1
            time.sleep(1.0)
        else:
            message = f"the grading process could not start: {reason}"
            notes.append(message + "\n" + _tail(log, 1500))
            for name in remaining:
                observations.setdefault(name, {"__error__": message})
            break
        if time.monotonic() > deadline:
            break
    for name in job["observers"]:
        observations.setdefault(name, {"__error__": "not checked: the time budget ran out"})
    for index, reason in skip.items():
        cells[index] = CellOutcome(index, job["cells"][index], "skipped", reason, numbers[index])
    return ProbeResult(
        observations=observations,
        cells=[cells[i] for i in sorted(cells)],
        attempts=attempts,
        log_tail=_tail(log),
        notes=notes,
    )
