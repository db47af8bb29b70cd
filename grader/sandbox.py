"""Run an untrusted command with the least this machine allows it to see and do.

With bubblewrap: new pid/ipc/uts/net namespaces (no network), a file system that holds only the
system directories, the Python runtime, the grader package (its expected answers masked), the
data (test labels withheld), the read-only inputs and the slot's scratch folders. Every other
copy of the data on the machine (Debian's dataset packages under /usr/share/datasets, the
unpacked cache, the operator's data roots) is masked. Inside it, the zygote
(`grader.probe.zygote`) forks each probe, which gets a private /tmp, drops to an unprivileged uid
(bubblewrap run as root keeps root otherwise) and sets rlimits on memory, processes, file size
and open files. The supervisor adds wall-clock limits and kills whatever the probe's uid runs.

Without bubblewrap (an instructor's Mac, say) only the rlimits and the time limit apply, and
`Sandbox.kind` says so, which the report repeats.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grader

GiB = 1024**3
MiB = 1024**2
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one probe.

    `memory_bytes` and `processes` hold for the whole probe where the machine has control
    groups (`grader.cgroups`: resident memory of all its processes, their System V and POSIX
    shared memory and its tmpfs pages, no swap; processes and threads). Every process is also
    held to `address_space_bytes` and the probe's uid to `processes` (rlimits), which is all
    there is on a machine without control groups.
    """

    # The whole probe: the pages it shares with the zygote that forked it (torch's libraries,
    # imported once) are not charged to it, only what its own processes touch.
    memory_bytes: int = 6 * GiB
    # Address space of one process: `import torch` (2.14, CUDA build) alone maps 3.3 GB and
    # torchvision, optuna and matplotlib bring it to 3.6 GB, so 4 GiB left a notebook about
    # 0.5 GB for its data (mlp_tuning's per-pixel statistics over 55,000 images, written with
    # squared deviations, ran out). 6 GiB leaves it about 2.5 GB; an 8 GiB allocation still
    # fails.
    address_space_bytes: int = 6 * GiB
    processes: int = 64
    file_size_bytes: int = 256 * MiB
    open_files: int = 256
    tmp_bytes: int = 1 * GiB
    # The probe's writable folders on the grading machine's disk (its working folder and its
    # output), held by the supervisor, which measures them every second (grader.supervise):
    # 256 MiB files, one after another, would otherwise fill the disk. The references write
    # a few MB of weights.
    disk_bytes: int = 2 * GiB
    disk_entries: int = 100_000


@dataclass(frozen=True)
class Mount:
    host: Path
    inside: Path
    writable: bool = False


@dataclass(frozen=True)
class Sandbox:
    """How to run one probe: what it sees, as whom, within which limits."""

    mounts: tuple[Mount, ...]
    env: Mapping[str, str]
    cwd: Path
    uid: int = 65534
    limits: Limits = field(default_factory=Limits)
    # How the whole probe is held ("cgroup v1", "cgroup v2"), or "" when limits are per process.
    whole_probe: str = ""
    # Symbolic links made inside the sandbox: (path inside, what it points to).
    links: tuple[tuple[Path, str], ...] = ()

    @property
    def isolated(self) -> bool:
        """Whether bubblewrap gives the probe its own file system, network and processes."""
        return bubblewrap_works()

    @staticmethod
    def root_drops_privileges() -> bool:
        """Whether probes on this machine run as their own uid (bubblewrap, run as root)."""
        return bubblewrap_works() and os.geteuid() == 0

    @property
    def drops_privileges(self) -> bool:
        """Whether probes run as `uid` (bubblewrap, started as root)."""
        return self.isolated and os.geteuid() == 0

    @property
    def kind(self) -> str:
        memory = f"{self.limits.memory_bytes / GiB:g} GiB"
        if self.whole_probe:
            limits = (
                f"whole-probe limits ({self.whole_probe}): {memory} of memory, "
                f"{self.limits.processes} processes, {self._disk()}"
            )
        else:
            space = f"{self.limits.address_space_bytes / GiB:g} GiB"
            limits = (
                f"per-process limits only (no control groups): {space} of address space, "
                f"{self.limits.processes} processes per uid, {self._disk()}"
            )
        if self.isolated:
            return f"bubblewrap: no network, private file system, unprivileged uid; {limits}"
        return (
            f"rlimits only (bubblewrap not available): {limits}, file size and time are "
            "limited, but the file system, the network and the user are NOT isolated"
        )

    def _disk(self) -> str:
        return (
            f"{self.limits.disk_bytes / GiB:g} GiB and {self.limits.disk_entries:,} files of disk"
        )

    def command(self, argv: Sequence[str]) -> list[str]:
        """The full command line that runs `argv` inside this sandbox.

        When started as root, `argv` stays root inside: the zygote (our own code) needs it to
        give each probe it forks the sandbox's uid; the probe drops root itself before any
        student code runs. bubblewrap sets no_new_privs, so no set-uid program can bring it back.
        """
        if not self.isolated:
            return list(argv)
        cmd = [
            "bwrap",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-net",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            # A private, writable, size-capped /tmp (HOME, caches): tmpfs lives in RAM.
            "--size",
            str(self.limits.tmp_bytes),
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
        ]
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                cmd += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                cmd += ["--ro-bind", path, path]
        mounts = self._runtime_mounts() + list(self.mounts)
        # bubblewrap creates missing parents of a mount point with mode 0700, which the
        # unprivileged uid could not cross: create them traversable first.
        inside = [m.inside for m in mounts] + [path for path, _ in self.links]
        parents = sorted({str(p) for path in inside for p in path.parents if str(p) != "/"})
        for parent in parents:
            if parent not in SYSTEM_DIRS and parent != "/tmp":
                cmd += ["--perms", "0755", "--dir", parent]
        for mount in mounts:
            cmd += ["--bind" if mount.writable else "--ro-bind", str(mount.host), str(mount.inside)]
        for path, target in self.links:
            cmd += ["--symlink", target, str(path)]
        bound = [Path(d) for d in SYSTEM_DIRS] + [m.host for m in mounts]
        for hidden in [*_hidden_package_dirs(), *masked_data_dirs(bound)]:
            cmd += ["--tmpfs", str(hidden)]  # stays empty inside, whatever else is bound
        # Where a probe keeps the mounts under /tmp while it puts a fresh tmpfs there.
        cmd += ["--dir", "/.dlgrade-oldtmp"]
        cmd += ["--chdir", str(self.cwd), "--"]
        return cmd + list(argv)

    def _runtime_mounts(self) -> list[Mount]:
        """The interpreter, the virtual environment and the grader package, read-only.

        Each is bound where it really is and, when it is reached through a symbolic link (a
        checkout whose `.venv` links to a shared environment), at the linked path too: the
        probe is started as `sys.executable`, the path with the link in it.
        """
        given = {
            Path(sys.base_prefix),
            Path(sys.prefix),
            Path(sys.executable).parent.parent,
            Path(sys.executable).resolve().parent.parent,
            Path(grader.__file__).parent,
        }
        pairs = set()
        for path in given:
            path = Path(os.path.abspath(path))
            real = path.resolve()
            pairs |= {(real, real), (real, path)}
        pairs = {
            (host, inside)
            for host, inside in pairs
            if not any(str(inside) == d or str(inside).startswith(d + "/") for d in SYSTEM_DIRS)
        }
        # Bind outer folders only: an inner bind would be hidden again by its parent's bind.
        insides = {inside for _, inside in pairs}
        kept = [(h, i) for h, i in pairs if not any(q != i and q in i.parents for q in insides)]
        return [Mount(host, inside) for host, inside in sorted(kept, key=lambda m: m[1])]

    def mount_points(self) -> list[Path]:
        """Where folders are bound inside the sandbox (none without bubblewrap)."""
        if not self.isolated:
            return []
        return [mount.inside for mount in self._runtime_mounts() + list(self.mounts)]

    def inside(self, host: Path) -> Path:
        """Where a host path appears inside the sandbox (the same path without bubblewrap)."""
        if not self.isolated:
            return host
        for mount in self.mounts:
            if host == mount.host or mount.host in host.parents:
                return mount.inside / host.relative_to(mount.host)
        raise ValueError(f"{host} is not visible inside the sandbox")

    def keep_under_tmp(self) -> list[str]:
        """Mount points under /tmp (a checkout there) that a probe's fresh /tmp must keep."""
        tmp = Path("/tmp")
        return [str(p) for p in self.mount_points() if tmp in p.parents]

    @property
    def python_path(self) -> str:
        """Where `import grader` finds the same package as the parent, inside the sandbox."""
        return str(Path(grader.__file__).resolve().parent.parent)


def masked_data_dirs(bound: list[Path]) -> list[Path]:
    """Every folder that holds a data set (test labels included) and lies inside something the
    sandbox binds: Debian's dataset packages, the unpacked cache, the operator's data roots."""
    from solutions.data import DATASETS, resolve_root
    from solutions.data.roots import DATA_ENV, cache_dir

    candidates = {Path("/usr/share/datasets"), cache_dir(), Path.cwd() / "data"}
    if os.environ.get(DATA_ENV):
        candidates.add(Path(os.environ[DATA_ENV]))
    for name in DATASETS:
        try:
            candidates.add(resolve_root(name, online=False).root)
        except Exception:  # noqa: BLE001 - a data set that is not here has nothing to mask
            pass
    found = []
    for path in candidates:
        path = path.resolve() if path.exists() else path
        if path.is_dir() and any(path == b or b in path.parents for b in bound):
            found.append(path)
    return sorted(found)


def _hidden_package_dirs() -> list[Path]:
    """The expected answers, and the reference package wherever it is installed."""
    hidden = [Path(grader.__file__).resolve().parent / "expected"]
    try:
        import solutions

        hidden.append(Path(solutions.__file__).resolve().parent)
    except ImportError:
        pass
    return hidden


@functools.cache
def bubblewrap_works() -> bool:
    """Whether bubblewrap is installed and can create the namespaces we ask for, here."""
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
