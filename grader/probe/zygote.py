"""A warm probe: import the heavy libraries once, then fork one child per probe run.

`import torch` and `import torchvision` cost about 6 s of CPU here, more than the checks of a
submission. The zygote runs inside its sandbox (one per concurrent grading job), imports them
before any student code exists, and for each request forks a child that becomes an ordinary
probe. Student code only ever runs in the children; the zygote never runs it.

Everything that matters is fixed when the zygote starts (its one command-line argument, a JSON
object from the trusted host: the uid, whether to drop to it, rlimits, threads, environment,
folders). A request is one line `{"attempt": N}` and nothing else, so a request can never ask
for more than the host configured. The zygote is not dumpable, so nothing of a lower uid can
open its `/proc` entries (its request pipe among them).

A child, in this order: new session; every inherited descriptor closed (the request pipe
included); into the attempt's control groups, which the host made for it (memory and processes
of the whole probe, see `grader.cgroups`); its own IPC namespace (System V shared memory and
message queues die with the probe) and mount namespace, with fresh size-capped tmpfs on /tmp
and /dev/shm and the control-group folders unmounted (when running as root in the sandbox);
rlimits; the capability bounding set emptied; groups, gid and uid dropped. Only then does it
open anything in the attempt's output folder, which the host created empty for it.

Protocol, one JSON object per line on stdout: {"ready": true} once imported; per request
{"pid": int} at once and {"exit": status} when the child ends (negative for a signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import sys
import traceback
from pathlib import Path

PRELOAD = (
    "torch",
    "torch._dynamo",  # grader.checks.common.torch_defaults: compiled code run eagerly
    "torchvision",
    "numpy",
    "matplotlib.pyplot",
    "IPython.core.interactiveshell",
)
OLD_TMP = "/.dlgrade-oldtmp"  # created by bubblewrap; where /tmp's mounts are kept for a moment

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_CAPBSET_DROP = 4, 24
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    32,
    4096,
    16384,
    1 << 18,
)
MNT_DETACH = 2


def _say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    encode = lambda v: v.encode() if v is not None else None  # noqa: E731
    _check(
        _LIBC.mount(encode(source), encode(target), encode(fstype), flags, encode(data or None)),
        f"mount {target}",
    )


def join_groups(groups: dict[str, str], attempt: int) -> None:
    """Move this process into the attempt's control groups (one folder per hierarchy, bound
    into the sandbox by the host), before it allocates anything of its own."""
    for folder in groups.values():
        with open(os.path.join(folder, f"a{attempt}", "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))


def private_namespaces(size: int, keep: list[str], groups: dict[str, str]) -> None:
    """An IPC namespace and a mount namespace of the child's own: empty tmpfs on /tmp and
    /dev/shm, the control-group folders gone.

    `keep` are read-only mounts under /tmp that must stay visible (a checkout under /tmp puts
    the venv and the grader package there): they are moved aside before the new tmpfs covers
    /tmp and bound back read-only on top of it. Nothing a previous probe wrote survives (shared
    memory segments and queues of this IPC namespace are destroyed with its last process), and
    root never has to walk or delete what a probe left behind.
    """
    _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for folder in groups.values():
        _check(_LIBC.umount2(folder.encode(), MNT_DETACH), f"umount {folder}")
    # POSIX shared memory and semaphores (DataLoader workers use them), charged to the group.
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    if keep:
        _mount("/tmp", OLD_TMP, None, MS_BIND | MS_REC)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for path in keep:
        relative = os.path.relpath(path, "/tmp")
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(os.path.join(OLD_TMP, relative), path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    if keep:
        _check(_LIBC.umount2(OLD_TMP.encode(), MNT_DETACH), "umount old /tmp")


def empty_folder(folder: Path) -> None:
    """Without bubblewrap (and so without root): empty the slot's own temporary folder
    (however deep an earlier probe nested folders in it)."""
    from grader.safe_fs import remove

    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        remove(entry)


def apply_limits(limits: dict) -> None:
    """The rlimits of `grader.sandbox.Limits` (as a dict) on this process and its children."""
    for name, value in (
        ("RLIMIT_AS", limits["address_space_bytes"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_FSIZE", limits["file_size_bytes"]),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges(uid: int) -> None:
    """Empty the capability bounding set, then become `uid` with no supplementary groups
    (bubblewrap's no_new_privs keeps set-uid programs from bringing anything back)."""
    for capability in range(64):
        if _LIBC.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from root: every capability goes with it
    if os.getuid() == 0 or os.geteuid() == 0:
        raise RuntimeError("still root after dropping privileges")


def _child(config: dict, attempt: int) -> None:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # stdin carries the next requests, stdout the answers to the host
        os.dup2(null, fd)
    os.closerange(3, 65536)
    # stderr stays the zygote's log until the probe's own log replaces it below, so that a
    # failure of the set-up can be read; no student code runs before that.
    if config["groups"]:
        join_groups(config["groups"], attempt)
    if config["isolated"] and config["drop"]:
        private_namespaces(config["tmp_bytes"], config["keep"], config["groups"])
    elif not config["isolated"]:
        empty_folder(Path(config["tmp"]))
    apply_limits(config["limits"])
    if config["drop"]:
        drop_privileges(config["uid"])
    # Unprivileged from here on. The host made the output folder empty, for this uid.
    out = Path(config["out"]) / f"a{attempt}"
    log = os.open(out / "probe.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(config["env"])
    for name in ("HOME", "MPLCONFIGDIR", "IPYTHONDIR", "XDG_CACHE_HOME", "TORCH_HOME"):
        if name in config["env"]:
            Path(config["env"][name]).mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(int(config["threads"]))
    from grader.probe.run import main

    job = Path(config["job"])
    code = main(job / f"job-{attempt}.json", out, job / f"challenge-{attempt}.json")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _attempt(line: str) -> int:
    """The attempt number of a request, the only thing a request may say."""
    request = json.loads(line)
    if not (isinstance(request, dict) and set(request) == {"attempt"}):
        raise ValueError(f"malformed request {line[:100]!r}")
    attempt = request["attempt"]
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 0 < attempt < 10**6:
        raise ValueError(f"malformed attempt {attempt!r}")
    return attempt


def serve(config: dict) -> None:
    _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    for module in PRELOAD:
        __import__(module)
    for module in config["preload"]:  # the release's imports: students load them all anyway
        with contextlib.suppress(Exception):
            __import__(module)
    import grader.checks.families  # noqa: F401 - with what it loads, warm for the children
    import grader.probe.run  # noqa: F401

    __import__(f"grader.checks.{config['assignment']}")
    _say(ready=True)
    for line in sys.stdin:
        try:
            attempt = _attempt(line)
        except ValueError as err:
            _say(refused=str(err))
            continue
        pid = os.fork()
        if pid == 0:
            try:
                _child(config, attempt)
            except BaseException:  # noqa: BLE001 - the set-up of the probe itself failed
                traceback.print_exc()
            finally:
                os._exit(70)
        _say(pid=pid)
        _, status = os.waitpid(pid, 0)
        _say(exit=os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    serve(json.loads(sys.argv[1]))
