"""The trusted side of a warm probe: one sandbox per grading job slot, reused across students.

A `Slot` is a job slot's folders (mounted into its sandbox) and its unprivileged uid. A
`ProbeHost` keeps the slot's zygote (`grader.probe.zygote`) running inside the sandbox and asks
it for one probe run at a time. Between runs the slot's folders are emptied and every process of
the slot's uid is killed, so nothing of one submission reaches the next.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.sandbox import Sandbox


class ProbeHostError(RuntimeError):
    """The zygote could not be started or stopped answering."""


@dataclass(frozen=True)
class Slot:
    """Scratch folders of one job slot: `work` (the submission, the probe's cwd), `outs`
    (what probes write), `job` (job files, read-only inside) and `tmp` (used without bwrap)."""

    root: Path
    uid: int

    def folder(self, name: str) -> Path:
        return self.root / name

    def clear(self) -> None:
        """Empty the folders, keeping them (they are mount points inside the sandbox)."""
        for name in ("work", "outs", "job", "tmp"):
            folder = self.folder(name)
            folder.mkdir(parents=True, exist_ok=True)
            for entry in folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _pids_of(uid: int) -> list[int]:
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

    The uid belongs to one slot's probes alone. Its processes count against the uid's process
    limit until they have exited, so the next probe right after a fork bomb could not start.
    """
    deadline = time.monotonic() + timeout
    while (pids := _pids_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


class ProbeHost:
    """A slot's zygote: started on first use, restarted if it dies, asked for one run at a time."""

    def __init__(self, sandbox: Sandbox, slot: Slot, assignment: str, startup_timeout: float):
        self.sandbox = sandbox
        self.slot = slot
        self.assignment = assignment
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._log = slot.root / "zygote.log"
        self._child: int | None = None  # the running probe's pid (meaningful without bwrap)

    # -------------------------------------------------------------- zygote process

    @property
    def _tmp(self) -> Path:
        """The probes' temporary folder: the sandbox's own /tmp, else one of the slot's."""
        return Path("/tmp") if self.sandbox.isolated else self.slot.folder("tmp")

    def _start(self) -> None:
        argv = [sys.executable, "-m", "grader.probe.zygote", self.assignment]
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                self.sandbox.command(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env={**self.sandbox.env, **_tmp_env(self._tmp)},
                start_new_session=True,  # the whole group can be killed
            )
        self._buffer = b""
        reply = self._read(self.startup_timeout)
        if reply != {"ready": True}:
            tail = self._log.read_bytes()[-1500:].decode("utf-8", "replace")
            self.close()
            raise ProbeHostError(f"the grading sandbox did not start ({reply}):\n{tail}")

    def _read(self, timeout: float) -> dict | None:
        """The zygote's next message, or None when none came within `timeout` seconds."""
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._proc.stdout], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(self._proc.stdout.fileno(), 65536)
                if not chunk:
                    raise ProbeHostError("the grading sandbox stopped")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()
            self._proc = None
        if self.sandbox.drops_privileges:
            reap(self.slot.uid)

    # -------------------------------------------------------------- one probe run

    def spawn(self, job: Path, log: Path, threads: int) -> None:
        """Start one probe run of `job` (host path) writing its output to `log` (host path)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        inside, tmp = self.sandbox.inside, self._tmp
        request = {
            "job": str(inside(job)),
            "log": str(inside(log)),
            "uid": self.slot.uid,
            "drop": self.sandbox.drops_privileges,
            "threads": threads,
            "tmp": str(tmp),
            "keep": [str(p) for p in self.sandbox.mount_points() if tmp in p.parents],
            "limits": asdict(self.sandbox.limits),
            "env": {**self.sandbox.env, **_tmp_env(tmp)},
        }
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(request) + "\n").encode())
        self._proc.stdin.flush()
        reply = self._read(30.0)
        if not reply or "pid" not in reply:
            self.close()
            raise ProbeHostError(f"the grading sandbox did not start a probe ({reply})")
        self._child = int(reply["pid"])

    def wait(self, timeout: float) -> int | None:
        """The probe's exit status when it ended within `timeout` s, else None."""
        try:
            reply = self._read(timeout)
        except ProbeHostError:
            self.close()
            return -signal.SIGKILL
        return None if reply is None else int(reply.get("exit", -1))

    def stop(self) -> int:
        """Kill the running probe and all it started; return its exit status."""
        if self.sandbox.drops_privileges:
            reap(self.slot.uid)
        elif self._child is not None:
            try:  # the probe leads its own process group (it called setsid)
                os.killpg(self._child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        status = self.wait(10.0)
        if status is None:
            self.close()  # no answer: the zygote goes too, and starts again on next use
            return -signal.SIGKILL
        return status

    def finish(self) -> None:
        """After a run: whatever the probe left running goes."""
        if self.sandbox.drops_privileges:
            reap(self.slot.uid)


def _tmp_env(tmp: Path) -> dict[str, str]:
    """Per-run homes for the libraries that write caches and settings."""
    return {
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "MPLCONFIGDIR": str(tmp / "matplotlib"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "TORCH_HOME": str(tmp / "torch"),
    }
