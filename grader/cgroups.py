"""Control groups that hold one probe attempt as a whole: its memory, its processes, its CPU.

rlimits bound one process at a time; a probe may fork, map System V shared memory (which
outlives a detached process and counts against no address space) and fill its tmpfs. Each
attempt therefore runs in a group of its own, created by the trusted host before the attempt
starts and removed after it: `memory` (resident memory, page cache, shared memory and tmpfs
pages, swap included) and `pids` (processes and threads). On OOM the kernel kills inside the
group only; the host kills whatever is left and removes the group. Where the machine also offers
`cpu`, each job slot's group is one entity to the scheduler with the default weight: a probe
running 64 busy processes gets the same share of the cores as its neighbour's one process,
instead of 64 shares that would push the neighbour's cells past their time limits.

Two layouts are supported, found from /proc/self/mountinfo:
* cgroup v2 (one unified hierarchy) when its root delegates `memory` and `pids`: groups under
  the root, `memory.max`, `memory.swap.max = 0`, `memory.oom.group`, `pids.max`, `cgroup.kill`;
  `cpu` too where the root delegates it;
* cgroup v1 (these machines): the `memory` and `pids` hierarchies, groups under the grader's own
  group of each (so the probes stay inside whatever limits the grader itself has),
  `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (with swap accounting), `pids.max`;
  the `cpu` hierarchy too where it is mounted (alone or as `cpu,cpuacct`).

The grader only ever creates, writes and removes groups named `dlgrade-<pid>-<uid>` (a slot of
the run with process id <pid>) and the attempt groups inside them; it never moves or changes a
group it did not create. A group left by a run that died is emptied and removed by the next.
Without root, or with neither layout, there are none, and the sandbox says its limits are per
process only.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "dlgrade-"
CONTROLLERS = ("memory", "pids")  # required
OPTIONAL = ("cpu",)  # used where offered: fair shares of the cores between slots


@dataclass(frozen=True)
class Layout:
    """Where this machine lets the grader make groups: one parent folder per hierarchy."""

    version: int  # 1 or 2
    parents: dict[str, Path]  # v1: {"memory": ..., "pids": ...[, "cpu": ...]}; v2: {"unified": ...}
    cpu: bool = False  # whether each slot's group gets its fair share of the cores

    def describe(self) -> str:
        return f"cgroup v{self.version}" + (
            ", a fair share of the cores per job slot" if self.cpu else ""
        )


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside the hierarchy, file system type, super options) per mount."""
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        found.append((fields[4], fields[3], tail[0], set(tail[2].split(","))))
    return found


def _own_groups(text: str) -> dict[str, str]:
    """The grader's own group per controller ("" for the unified hierarchy)."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                own[name] = parts[2]
    return own


def _inside(mount: str, root: str, group: str) -> Path:
    """The folder of `group` (a path in the hierarchy) under a mount of that hierarchy."""
    relative = os.path.relpath(group, root) if group.startswith(root) else "."
    return (Path(mount) / relative).resolve() if relative != "." else Path(mount)


def find_layout(
    mountinfo: str | None = None, own: str | None = None, root_ok: bool | None = None
) -> Layout | None:
    """The layout this machine offers the grader, or None (not root, no usable controllers)."""
    if root_ok is None:
        root_ok = os.geteuid() == 0
    if not root_ok:
        return None
    try:
        mountinfo = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
        own = own if own is not None else Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    mounts, groups = _mounts(mountinfo), _own_groups(own)
    for point, root, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        base = Path(point)
        try:
            delegated = set((base / "cgroup.subtree_control").read_text().split())
        except OSError:
            continue
        # Only where the root already delegates both: enabling them would change its group.
        if set(CONTROLLERS) <= delegated and root == "/":
            return Layout(2, {"unified": base}, cpu="cpu" in delegated)
    parents = {}
    for point, root, fstype, options in mounts:
        for name in CONTROLLERS + OPTIONAL:
            if fstype == "cgroup" and name in options and name not in parents:
                folder = _inside(point, root, groups.get(name, "/"))
                if folder.is_dir() and os.access(folder, os.W_OK):
                    parents[name] = folder
    if set(CONTROLLERS) <= set(parents):
        return Layout(1, parents, cpu="cpu" in parents)
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read_int(path: Path, key: str | None = None) -> int | None:
    """A number from a cgroup file: the whole file, or the `key value` line of it."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        text = text.strip()
        return int(text) if text.isdigit() else None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def _pids(folder: Path) -> list[int]:
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _empty_and_remove(folder: Path, timeout: float = 10.0) -> None:
    """Kill every process of a group (and of groups inside it), then remove them."""
    if not folder.is_dir():
        return
    for inner in [p for p in folder.iterdir() if p.is_dir()]:
        _empty_and_remove(inner, timeout)
    kill = folder / "cgroup.kill"
    if kill.exists():
        try:
            _write(kill, "1")
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while (pids := _pids(folder)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # still busy for a moment after its last process exited
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass(frozen=True)
class Usage:
    """What one attempt's group measured before it was removed."""

    peak_bytes: int | None = None
    oom_kills: int = 0
    limit_bytes: int | None = None


class SlotGroups:
    """The groups of one job slot: `dlgrade-<pid>-<uid>` per hierarchy, an attempt group each.

    The sandbox binds each slot folder into the zygote (`inside`), where a freshly forked probe
    moves itself into its attempt's group before it does anything else.
    """

    def __init__(self, layout: Layout, uid: int):
        self.layout = layout
        self.name = f"{PREFIX}{os.getpid()}-{uid}"
        self.folders = {key: parent / self.name for key, parent in layout.parents.items()}
        self.attempt: str | None = None

    @staticmethod
    def inside(key: str) -> Path:
        """Where the slot folder of hierarchy `key` appears inside the sandbox."""
        return Path("/dlgrade-cgroup") / key

    def create(self) -> None:
        remove_stale(self.layout)
        for folder in self.folders.values():
            folder.mkdir(exist_ok=True)
        if self.layout.version == 2:
            enable = CONTROLLERS + (OPTIONAL if self.layout.cpu else ())
            _write(
                self.folders["unified"] / "cgroup.subtree_control",
                " ".join(f"+{c}" for c in enable),
            )

    def start(self, attempt: int, memory_bytes: int, processes: int) -> str:
        """A fresh group for `attempt` with the whole probe's limits; its name."""
        self.finish()
        name = f"a{attempt}"
        for key, folder in self.folders.items():
            group = folder / name
            group.mkdir()
            if key == "unified":
                _write(group / "memory.max", str(memory_bytes))
                _write(group / "memory.swap.max", "0")
                _write(group / "memory.oom.group", "1")
                _write(group / "pids.max", str(processes))
            elif key == "memory":
                _write(group / "memory.limit_in_bytes", str(memory_bytes))
                if (group / "memory.memsw.limit_in_bytes").exists():  # swap accounting on
                    _write(group / "memory.memsw.limit_in_bytes", str(memory_bytes))
            elif key == "pids":
                _write(group / "pids.max", str(processes))
        self.attempt = name
        return name

    def usage(self) -> Usage:
        """Peak memory and OOM kills of the running (or just ended) attempt."""
        if self.attempt is None:
            return Usage()
        if self.layout.version == 2:
            group = self.folders["unified"] / self.attempt
            return Usage(
                _read_int(group / "memory.peak"),
                _read_int(group / "memory.events", "oom_kill") or 0,
                _read_int(group / "memory.max"),
            )
        group = self.folders["memory"] / self.attempt
        return Usage(
            _read_int(group / "memory.max_usage_in_bytes"),
            _read_int(group / "memory.oom_control", "oom_kill") or 0,
            _read_int(group / "memory.limit_in_bytes"),
        )

    def finish(self) -> Usage:
        """Kill what the attempt left and remove its group; what it measured."""
        usage = self.usage()
        if self.attempt is not None:
            for folder in self.folders.values():
                _empty_and_remove(folder / self.attempt)
            self.attempt = None
        return usage

    def remove(self) -> None:
        self.attempt = None
        for folder in self.folders.values():
            _empty_and_remove(folder)


def remove_stale(layout: Layout) -> None:
    """Groups of grading runs that are gone (their process no longer exists)."""
    for parent in layout.parents.values():
        for folder in parent.glob(f"{PREFIX}*"):
            pid = folder.name[len(PREFIX) :].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
                try:
                    _empty_and_remove(folder)
                except OSError:
                    pass
