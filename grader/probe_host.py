"""The trusted side of a warm probe: one sandbox per grading job slot, reused across students.

A `Slot` is a job slot's folders (mounted into its sandbox) and its leased unprivileged uid. The
three mount points (`work`, `outs`, `job`) belong to root and are never writable by a probe;
for each attempt the host makes fresh folders inside them (`work/a<N>` and `outs/a<N>` owned by
the probe's uid, the job files root's), so nothing a probe leaves behind is ever walked, opened
or changed by root. A `ProbeHost` keeps the slot's zygote (`grader.probe.zygote`) running and
asks it for one attempt at a time, each in control groups of its own where the machine has them
(`grader.cgroups`); between attempts every process of the slot's uid and of the attempt's groups
is killed, and the groups are removed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.cgroups import SlotGroups, Usage
from grader.safe_fs import fresh_dir, remove, write_new
from grader.sandbox import Sandbox
from grader.uids import reap


class ProbeHostError(RuntimeError):
    """The zygote could not be started or stopped answering."""


@dataclass(frozen=True)
class Slot:
    """Scratch folders of one job slot: `work` (the probe's cwd per attempt), `outs` (what
    probes write), `job` (job files, weights and challenges, read-only inside), `tmp` (the
    probes' temporary folder without bubblewrap)."""

    root: Path
    uid: int

    def folder(self, name: str) -> Path:
        return self.root / name

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the probe's uid crosses it
        for name in ("work", "outs", "job", "tmp"):
            folder = self.folder(name)
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)

    def clear(self) -> None:
        """Remove what earlier submissions left (mount points stay: the sandbox binds them)."""
        for name in ("work", "outs", "job", "tmp"):
            for entry in os.scandir(self.folder(name)):
                remove(Path(entry.path))

    def forget_attempts(self) -> None:
        """Remove every earlier attempt's job file, challenge, working and output folder, so
        that the cells of the next attempt (which run before its challenge exists) cannot read
        an earlier challenge's settings or what earlier observers recorded."""
        for entry in os.scandir(self.folder("job")):
            if entry.name.startswith(("job-", "challenge-", ".challenge-")):
                remove(Path(entry.path))
        for name in ("work", "outs"):
            for entry in os.scandir(self.folder(name)):
                remove(Path(entry.path))

    def attempt_folders(self, attempt: int, uid: int | None) -> tuple[Path, Path]:
        """Fresh (work, out) folders of one attempt, owned by the probe's uid."""
        work = fresh_dir(self.folder("work") / f"a{attempt}", uid)
        out = fresh_dir(self.folder("outs") / f"a{attempt}", uid)
        return work, out

    def write_job_file(self, name: str, data: bytes) -> Path:
        """A root-owned, world-readable file in the job folder (read-only inside)."""
        path = self.folder("job") / name
        remove(path)
        write_new(path, data, mode=0o644)
        return path

    def publish(self, name: str, data: bytes) -> Path:
        """Write a job file atomically: the probe polls for it and must never read half."""
        tmp = self.folder("job") / f".{name}.tmp"
        remove(tmp)
        write_new(tmp, data, mode=0o644)
        path = self.folder("job") / name
        os.replace(tmp, path)
        return path


class ProbeHost:
    """A slot's zygote: started on first use, restarted if it dies, asked for one run at a time."""

    def __init__(
        self,
        sandbox: Sandbox,
        slot: Slot,
        assignment: str,
        startup_timeout: float,
        threads: int,
        groups: SlotGroups | None = None,
        preload: tuple[str, ...] = (),
    ):
        """`preload`: modules the zygote imports before it forks (the release's imports)."""
        self.sandbox = sandbox
        self.slot = slot
        self.groups = groups
        self.usage = Usage()  # what the last attempt's control groups measured
        self.assignment = assignment
        self.startup_timeout = startup_timeout
        self.threads = threads
        self.preload = preload
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._log = slot.root / "zygote.log"
        self._child: int | None = None  # the running probe's pid (meaningful without bwrap)

    @property
    def probe_uid(self) -> int | None:
        """The uid probes run as, when they drop privileges."""
        return self.slot.uid if self.sandbox.drops_privileges else None

    def inside(self, host: Path) -> Path:
        return self.sandbox.inside(host)

    # -------------------------------------------------------------- zygote process

    def _config(self) -> dict:
        isolated = self.sandbox.isolated
        tmp = Path("/tmp") if isolated else self.slot.folder("tmp")
        inside = self.sandbox.inside
        return {
            "assignment": self.assignment,
            "preload": list(self.preload),
            "isolated": isolated,
            "drop": self.sandbox.drops_privileges,
            "uid": self.slot.uid,
            "threads": self.threads,
            "limits": asdict(self.sandbox.limits),
            "tmp_bytes": self.sandbox.limits.tmp_bytes,
            "keep": self.sandbox.keep_under_tmp(),
            "tmp": str(tmp),
            "job": str(inside(self.slot.folder("job"))),
            "out": str(inside(self.slot.folder("outs"))),
            "env": {**self.sandbox.env, **_tmp_env(tmp)},
            "groups": {
                key: str(SlotGroups.inside(key))
                for key in (self.groups.folders if self.groups else {})
            },
        }

    def _start(self) -> None:
        argv = [sys.executable, "-m", "grader.probe.zygote", json.dumps(self._config())]
        env = {**self.sandbox.env, "PYTHONPATH": self.sandbox.python_path}
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                self.sandbox.command(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
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
        if self.probe_uid is not None:
            reap(self.probe_uid)
        if self.groups is not None:
            self.groups.remove()

    # -------------------------------------------------------------- one probe run

    def spawn(self, attempt: int) -> None:
        """Start attempt `attempt` (its folders and job file are ready)."""
        self.usage = Usage()
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        if self.groups is not None:
            limits = self.sandbox.limits
            self.groups.start(attempt, limits.memory_bytes, limits.processes)
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps({"attempt": attempt}) + "\n").encode())
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
        if self.probe_uid is not None:
            reap(self.probe_uid)
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
        """After a run: whatever the probe left running goes, and with its control groups the
        memory it held (`usage` keeps what they measured)."""
        if self.probe_uid is not None:
            reap(self.probe_uid)
        if self.groups is not None:
            self.usage = self.groups.finish()


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
