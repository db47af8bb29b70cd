"""Run the probe in its sandbox and keep going whatever the submission does.

The supervisor follows the probe's progress file. When a cell or an observer outlives its time
limit, or the process dies (a crash, `os._exit`, a kill signal), the item that was running is
blamed: a cell is skipped on the next attempt, an observer is recorded as failed with the
reason. Then the probe starts again without it (a cheap fork), keeping what earlier attempts
observed.

Nothing the probe writes is trusted. Files are read without following links, as regular files
of the probe's uid, with their size capped before reading (`grader.safe_fs`), and observations
are JSON plus raw tensor bytes (`grader.observations`). The challenge (the settings observers
probe with, and a nonce) is written only once the probe has reported that the cells are done;
observations count only when they carry the nonce and arrive after it, so anything student code
wrote ahead of time counts for nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.cell_code import definitions_only
from grader.observations import ObservationError, decode
from grader.probe.context import STACK_FILE, CellOutcome
from grader.probe_host import ProbeHost, ProbeHostError
from grader.safe_fs import UnsafeFile, over_disk_limit, read_capped, read_from, tail
from grader.text import inert, inert_line

MAX_JSON_BYTES = 8 * 1024**2
MAX_TENSOR_BYTES = 64 * 1024**2  # per observation; the test split's logits are 0.4 MB
MAX_PROGRESS_READ = 1024**2
MAX_STACK_READ = 64 * 1024
# A frame of a notebook cell's code in the probe's stack dump (a `%%time` cell's body is compiled
# as "<timed exec>"); `<module>` (a cell's own top level) is no function's name and does not match.
_CELL_FRAME = re.compile(
    r'\s*File "(<ipython-input-\d+-[0-9a-f]+>|<timed exec>)", line (\d+) in ([A-Za-z_]\w{0,59})$'
)


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
    # Why the grading machine, not the submission, may be to blame (retried, then reviewed).
    machine_trouble: list[str] = field(default_factory=list)
    # Name -> the cell whose definition the checks met, where the notebook defines it in several,
    # and "Class.method" -> the cell that set it outside the class, where the checks meet that
    # (as the probe reports them with `cells_done`; empty when it got no further).
    graded: dict[str, int] = field(default_factory=dict)
    patched: dict[str, int] = field(default_factory=dict)


# Events the supervisor acts on; anything else in the progress file is passed over.
KNOWN_EVENTS = frozenset(
    ("started", "cell_start", "cell_end", "cells_done", "observer_start", "observer_end", "done")
)


@dataclass
class _Attempt:
    """What one run of the probe got through before it ended.

    `events` keeps what `run_probe` reads afterwards, one entry per cell and observer at most
    (the latest), so that a probe filling its progress file with lines (256 MB fit in its file
    size limit) costs the trusted parent no more memory than an honest one.
    """

    cells: int = 0  # how many cells the job has
    observers: frozenset[str] = frozenset()
    kept: dict[tuple[str, Any], dict] = field(default_factory=dict)
    current: tuple[str, Any] | None = None  # ("cell", index) / ("observer", name) / ("startup", 0)
    ended: str = ""  # why the process ended, when it did not finish
    challenged: bool = False
    started: bool = False
    done: bool = False
    killed_by: int | None = None  # a signal we did not send
    timed_out_total: bool = False
    graded: dict[str, int] = field(default_factory=dict)
    patched: dict[str, int] = field(default_factory=dict)

    def keep(self, event: dict) -> None:
        """Remember `event` if `run_probe` needs it: the latest end of each known cell and
        observer; whether the probe started and finished."""
        kind = event.get("event")
        if kind == "started":
            self.started = True
        elif kind == "done":
            self.done = True
        elif kind == "cells_done":
            self.graded, self.patched = (_cell_numbers(event.get(k)) for k in ("graded", "patched"))
        elif kind == "cell_end":
            index = event.get("index")
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < self.cells:
                self.kept.pop(("cell", index), None)  # re-inserted last: events stay in order
                self.kept[("cell", index)] = event
        elif kind == "observer_end" and event.get("name") in self.observers:
            self.kept.pop(("observer", event["name"]), None)
            self.kept[("observer", event["name"])] = event

    @property
    def events(self) -> list[dict]:
        return list(self.kept.values())

    @property
    def finished(self) -> bool:
        return self.challenged and self.done


def _cell_numbers(value: Any) -> dict[str, int]:
    """A name -> cell number map of the probe's (student code runs in it): at most 100 names,
    of at most 100 characters, whole numbers only; {} for anything else."""
    if not isinstance(value, dict):
        return {}
    items = list(value.items())[:100]
    return {str(k)[:100]: v for k, v in items if isinstance(v, int) and not isinstance(v, bool)}


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        return f"the process was killed by {name}"
    if code >= 128 and code - 128 in signal.Signals._value2member_map_:
        return f"the process was killed by {signal.Signals(code - 128).name}"
    if code == 0:
        return "the process exited early (exit(), sys.exit() or os._exit() in the notebook?)"
    return f"the process exited with status {code}"


def _opening(source: str, width: int = 60) -> str:
    """` (`first line`)`: the cell's first line of code (no comment, no cell magic), which
    finds it in a notebook where cells show no numbers (Colab); '' when it has none."""
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "%%")):
            short = line if len(line) <= width else line[: width - 3] + "..."
            return f" (`{inert_line(short)}`)"
    return ""


def _parse_events(chunk: bytes) -> tuple[list[dict], int]:
    complete = chunk.rfind(b"\n") + 1
    events = []
    for line in chunk[:complete].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, complete


def _run_attempt(
    host: ProbeHost,
    attempt_no: int,
    out: Path,
    challenge: bytes,
    limits: TimeLimits,
    deadline: float,
    cells: int = 0,
    observers: tuple[str, ...] = (),
) -> _Attempt:
    """One probe run: start it, follow its progress, hand it the challenge once the cells are
    done, stop it when an item outlives its limit or its folders outgrow theirs."""
    attempt = _Attempt(cells=cells, observers=frozenset(observers), current=("startup", 0))
    try:
        host.spawn(attempt_no)
    except ProbeHostError as err:
        attempt.ended = str(err)
        return attempt
    started = next_disk_check = time.monotonic()
    offset, progress, owner = 0, out / "progress.jsonl", host.probe_uid
    writable, held = [host.slot.folder("work"), host.slot.folder("outs")], host.sandbox.limits
    try:
        caught_up = True
        while True:
            status = host.wait(0.05 if caught_up else 0)  # a backlog is read without pausing
            chunk = read_from(progress, offset, MAX_PROGRESS_READ, owner=owner)
            events, used = _parse_events(chunk)
            # A line longer than a whole read is no event of ours: pass over it, not wait on it.
            offset += used or (len(chunk) if len(chunk) == MAX_PROGRESS_READ else 0)
            ended_cell = None  # what a cell wrote is all there when it ends: measured then too
            for event in events:
                kind = event.get("event")
                if kind not in KNOWN_EVENTS:
                    continue
                if kind in ("observer_end", "done") and not attempt.challenged:
                    continue  # before the challenge existed: not the grader's observers
                attempt.keep(event)
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
                    ended_cell = event.get("index") if kind == "cell_end" else None
                elif kind == "cells_done" and not attempt.challenged:
                    host.slot.publish(f"challenge-{attempt_no}.json", challenge)
                    attempt.challenged = True
                    attempt.current, started = ("observer", None), time.monotonic()
            if status is not None:
                if not attempt.finished:
                    attempt.ended = _describe_exit(status)
                    if status < 0 or status >= 128:
                        attempt.killed_by = -status if status < 0 else status - 128
                return attempt
            what = attempt.current[0] if attempt.current else "cell"
            limit = {"startup": limits.startup, "observer": limits.observer}.get(what, limits.cell)
            now = time.monotonic()
            # An item's limit is judged on what the probe has said so far: while lines are still
            # waiting to be read (a flood of them, a busy machine), its next start may be among
            # them. The whole submission's deadline holds whatever is pending.
            caught_up = len(chunk) < MAX_PROGRESS_READ
            if ended_cell is not None or now >= next_disk_check:
                next_disk_check = now + 1.0
                full = over_disk_limit(writable, held.disk_bytes, held.disk_entries)
                if full:
                    host.stop()
                    attempt.current = attempt.current or ("cell", ended_cell)
                    attempt.ended = full
                    return attempt
            if (caught_up and now - started > limit) or now > deadline:
                host.stop()
                attempt.timed_out_total = now > deadline and now - started <= limit
                attempt.ended = (
                    f"grading this submission took longer than {limits.total:.0f} s"
                    if attempt.timed_out_total
                    else f"it ran longer than {limit:.0f} s"
                    + running_student_code(out / STACK_FILE, host.probe_uid)
                )
                return attempt
    finally:
        host.finish()  # whatever the probe started goes with it


def running_student_code(stack: Path, owner: int | None) -> str:
    """The student's functions the probe's stack dump shows running, as the end of a time-out's
    reason (", in forward (line 24 of its cell), called by train_epoch (line 16), from fit
    (line 14)"), or ""."""
    text = read_from(stack, 0, MAX_STACK_READ, owner=owner).decode("utf-8", "replace")
    for thread in text.split("\n\n"):  # most recent call first in each thread's block
        frames = [m.groups() for m in map(_CELL_FRAME.match, thread.splitlines()) if m]
        if not frames:
            continue
        # A `%%time` body's lines are one short of its cell's (the magic's line is not in it).
        where = [f"{n} (line {int(line) + (f == '<timed exec>')})" for f, line, n in frames]
        where[0] = where[0].replace(")", " of its cell)")
        chain = [where[0], *(f"called by {w}" for w in where[1:2])]
        chain += [f"from {where[-1]}"] if len(where) > 2 else []
        return ", in " + ", ".join(chain)
    return ""


def _gib(usage) -> str:
    return f"{usage.limit_bytes / 1024**3:.3g} GiB" if usage.limit_bytes else "unknown"


def load_observation(obs_dir: Path, name: str, nonce: str, owner: int | None) -> Any:
    """An observer's result, if it is a well-formed answer to this challenge."""
    try:
        text = read_capped(obs_dir / f"{name}.json", MAX_JSON_BYTES, owner=owner)
        blob = read_capped(obs_dir / f"{name}.bin", MAX_TENSOR_BYTES, owner=owner)
        wrapped = decode(text, blob)
    except (OSError, UnsafeFile, ObservationError) as err:
        return {"__error__": f"the probe wrote no usable result ({err})"}
    if not isinstance(wrapped, dict) or wrapped.get("nonce") != nonce:
        return {"__error__": "the result does not answer this grading run's challenge"}
    return wrapped.get("data")


def run_probe(
    host: ProbeHost,
    job: dict,
    settings: dict[str, Any],
    limits: TimeLimits,
    stage_work: Callable[[Path], None] = lambda folder: None,
) -> ProbeResult:
    """Run the probe until every observer has a result or a reason it has none.

    `job` holds the cells and file paths (see `grader.grade`), `settings` the run's challenge;
    `stage_work` fills each attempt's fresh working folder with the submission's files.
    """
    deadline = time.monotonic() + limits.total
    skip: dict[int, str] = {int(k): v for k, v in job["skip"].items()}
    numbers = job["cell_numbers"]
    observations: dict[str, Any] = {}
    cells: dict[int, CellOutcome] = {}
    slot, owner = host.slot, host.probe_uid
    notes: list[str] = []
    trouble: list[str] = []
    graded: dict[str, int] = {}
    patched: dict[str, int] = {}
    # Cells that stopped the probe: (their definitions alone, why).
    reduced: dict[int, tuple[str, str]] = {}
    attempts = start_failures = 0
    log = Path()
    while attempts < limits.attempts:
        attempts += 1
        remaining = [n for n in job["observers"] if n not in observations]
        if attempts > 1 and not remaining:
            break
        slot.forget_attempts()  # nothing of an earlier attempt is left for this one's cells
        work, out = slot.attempt_folders(attempts, owner)
        stage_work(work)
        nonce = secrets.token_hex(16)
        challenge = json.dumps({"nonce": nonce, "settings": settings}).encode()
        slot.write_job_file(
            f"job-{attempts}.json",
            json.dumps(
                {
                    **job,
                    "cells": [reduced.get(i, (c, ""))[0] for i, c in enumerate(job["cells"])],
                    "cut_short": {i: (job["cells"][i], why) for i, (_, why) in reduced.items()},
                    "skip": skip,
                    "observers": remaining,
                    "workdir": str(host.inside(work)),
                    # the stack is written 2 s before an item's limit (sooner for short limits)
                    "stack_after": {
                        "cell": max(limits.cell - 2.0, 0.75 * limits.cell),
                        "observer": max(limits.observer - 2.0, 0.75 * limits.observer),
                    },
                }
            ).encode(),
        )
        log = out / "probe.log"
        attempt = _run_attempt(
            host, attempts, out, challenge, limits, deadline, len(job["cells"]), tuple(remaining)
        )
        if host.usage.oom_kills and not attempt.finished:
            # The kernel killed inside the probe's control group: the submission's doing (it
            # ran out of the whole probe's memory), not the machine's.
            attempt.killed_by = None
            attempt.ended = f"it ran out of memory (the probe's limit is {_gib(host.usage)})"
        elif host.usage.oom_kills:
            notes.append(
                f"a process of the probe ran out of memory ({_gib(host.usage)} for the whole "
                "probe) and was killed"
            )
        for event in attempt.events:
            if event.get("event") == "cell_end" and isinstance(event.get("index"), int):
                index = event["index"]
                if 0 <= index < len(job["cells"]):
                    cells[index] = CellOutcome(
                        index,
                        job["cells"][index],
                        inert(str(event.get("status"))),
                        inert(str(event.get("message", ""))[:300]),  # the student's exception
                        numbers[index],
                    )
            if event.get("event") == "observer_end" and event.get("name") in remaining:
                observations[event["name"]] = load_observation(
                    out / "obs", event["name"], nonce, owner
                )
        graded, patched = attempt.graded or graded, attempt.patched or patched
        if attempt.finished:
            break
        reason = attempt.ended
        if attempt.killed_by is not None:
            trouble.append(f"attempt {attempts}: {reason}")
        if attempt.timed_out_total:
            trouble.append(reason)
        kind, item = attempt.current or ("cell", None)
        started = attempt.started
        if kind == "cell" and isinstance(item, int) and 0 <= item < len(job["cells"]):
            stopped = f"cell {numbers[item]}{_opening(job['cells'][item])} stopped the probe"
            # First its definitions alone (a training call left under them); then nothing.
            kept = "" if item in reduced else definitions_only(job["cells"][item])
            if kept:
                why = f"it stopped the probe ({reason}) and ran again as its definitions alone"
                reduced[item] = (kept, why)
                notes.append(
                    f"{stopped} ({reason}); graded with its definitions alone (imports, "
                    "functions, classes, constants), without what it ran"
                )
            else:
                skip[item] = f"not run: {reason}"
                notes.append(f"{stopped} ({reason}); graded without it")
        elif kind == "observer" and item in remaining:
            observations[item] = {"__error__": f"stopped while checking: {reason}"}
        elif kind == "observer" and attempt.challenged:
            notes.append(f"the probe stopped before its first observer ({reason}); started again")
        elif started:
            notes.append(f"the probe stopped between two steps ({reason}); started it again")
        elif start_failures < 2:
            # A start can fail for reasons that pass (the machine short of processes or
            # memory for a moment): try again before giving up on the submission.
            start_failures += 1
            time.sleep(1.0)
        else:
            message = f"the grading process could not start: {reason}"
            notes.append(message + "\n" + inert(tail(log, 1500, owner=owner)))  # what cells print
            trouble.append(message)
            for name in remaining:
                observations.setdefault(name, {"__error__": message})
            break
        if time.monotonic() > deadline:
            trouble.append(f"grading this submission took longer than {limits.total:.0f} s")
            break
    for name in job["observers"]:
        observations.setdefault(name, {"__error__": "not checked: the time budget ran out"})
    for index, reason in skip.items():
        cells[index] = CellOutcome(index, job["cells"][index], "skipped", reason, numbers[index])
    return ProbeResult(
        observations=observations,
        cells=[cells[i] for i in sorted(cells)],
        attempts=attempts,
        log_tail=tail(log, owner=owner),
        notes=notes,
        machine_trouble=trouble,
        graded=graded,
        patched=patched,
    )
