"""Unprivileged uids for probes, leased to one grading run at a time.

After every probe all processes of its uid are killed, so a uid must belong to one job slot of
one run and to nothing else. A run takes uids from 990000 up by locking `<uid>.lock` in a
root-only folder (`flock`, released when the run ends or dies); two grading runs on one machine
(two instructors, or a test suite and a class run) therefore never share a uid, and never kill
each other's probes. A uid taken over from a run that died is reaped once before use.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

FIRST_UID = 990_000
SPAN = 1_000
LOCK_DIR = Path("/run/dlgrade-uids")


class NoFreeUid(RuntimeError):
    """Every uid of the range is leased to another grading run."""


def pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile
                pass
    return pids


def reap(uid: int, timeout: float = 15.0) -> None:
    """Kill every process of `uid` and wait until they are gone.

    Its processes count against the uid's process limit until they have exited, so the next
    probe right after a fork bomb could not start otherwise.
    """
    if uid < FIRST_UID:
        raise ValueError(f"refusing to reap uid {uid}: not a probe uid")
    deadline = time.monotonic() + timeout
    while (pids := pids_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def orphaned(lock_dir: Path = LOCK_DIR) -> dict[int, list[int]]:
    """Processes of probe uids that no running grading run holds (uid -> pids): what a run
    that died left behind. Nothing should ever be here for long."""
    found = {}
    if not lock_dir.is_dir():
        return found
    seen = set()  # the probe uids with a process now: one pass over /proc, not one per uid
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and FIRST_UID <= (uid := entry.stat().st_uid) < FIRST_UID + SPAN
            ):
                seen.add(uid)
        except OSError:  # gone meanwhile
            pass
    for uid in sorted(seen):
        fd = os.open(lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Looked at again while the lock is ours: its run may have ended since the first look.
            if pids := pids_of(uid):
                found[uid] = pids
        except BlockingIOError:
            continue  # leased to a run that is alive
        finally:
            os.close(fd)
    return found


@dataclass
class UidLease:
    """Uids held by this run; `release` (or the end of the process) gives them back."""

    uids: list[int] = field(default_factory=list)
    _fds: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def take(cls, count: int, lock_dir: Path = LOCK_DIR) -> UidLease:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lease = cls()
        for uid in range(FIRST_UID, FIRST_UID + SPAN):
            if len(lease.uids) == count:
                return lease
            fd = os.open(lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            reap(uid)  # whatever a run that died left behind
            lease.uids.append(uid)
            lease._fds.append(fd)
        if len(lease.uids) < count:
            lease.release()
            raise NoFreeUid(f"no free probe uid in {FIRST_UID}..{FIRST_UID + SPAN - 1}")
        return lease

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self.uids.clear()
