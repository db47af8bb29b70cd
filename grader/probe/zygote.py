"""A warm probe: import the heavy libraries once, then fork one child per probe run.

`import torch` and `import torchvision` cost about 6 s of CPU here, more than the checks of a
submission. The zygote runs inside its sandbox (one per concurrent grading job), imports them
before any student code exists, and for each request forks a child that becomes an ordinary
probe: it drops to the sandbox's unprivileged uid (when the zygote runs as root), sets the
rlimits, gets a fresh /tmp and runs `grader.probe.run.main`. Student code only ever runs in the
children, which are gone (killed by uid) before the next request; the zygote never runs it.

Protocol, one JSON object per line: the zygote prints {"ready": true} once imported; each line
on stdin (see `grader.probe_host.ProbeHost.spawn`: job, log, uid, drop, threads, tmp, keep,
limits, env) starts a child, and the zygote answers {"pid": int} at once and {"exit": status}
when the child ends (status as `subprocess` reports it: negative for a signal).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

PRELOAD = ("torch", "torchvision", "numpy", "matplotlib.pyplot", "IPython.core.interactiveshell")


def _say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _own_entries(folder: Path, keep: frozenset[Path]) -> Iterator[Path]:
    """The entries of `folder` that probes made: everything but the mounts in `keep` (a checkout
    under /tmp is bound inside the sandbox's /tmp, read-only) and the folders leading to them."""
    for entry in folder.iterdir():
        if entry in keep:
            continue
        if any(entry in mount.parents for mount in keep):
            yield from _own_entries(entry, keep)
        else:
            yield entry


def _fresh_tmp(tmp: Path, keep: frozenset[Path]) -> None:
    """Empty the probes' temporary folder (the sandbox's private /tmp, or the slot's own folder
    without bubblewrap) so that nothing of one probe reaches the next."""
    tmp.mkdir(parents=True, exist_ok=True)
    for entry in list(_own_entries(tmp, keep)):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def apply_limits(limits: dict) -> None:
    """The rlimits of `grader.sandbox.Limits` (as a dict) on this process and its children."""
    for name, value in (
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_FSIZE", limits["file_size_bytes"]),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def _drop_capability_bounding_set() -> None:
    """Remove every capability from the bounding set (no_new_privs already forbids regaining
    any through exec; this is the second lock)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in range(64):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows


def _keep(request: dict) -> frozenset[Path]:
    return frozenset(Path(p) for p in request["keep"])


def _child(request: dict) -> None:
    """Become the probe: new session, own output, rlimits, unprivileged uid, then run."""
    os.setsid()
    # The zygote's pipes must stay out of reach: stdin carries the next requests.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    for name in ("HOME", "MPLCONFIGDIR", "IPYTHONDIR", "XDG_CACHE_HOME", "TORCH_HOME"):
        if name in request["env"]:
            Path(request["env"][name]).mkdir(parents=True, exist_ok=True)
    apply_limits(request["limits"])
    if request["drop"]:
        uid, tmp = request["uid"], Path(request["tmp"])
        for entry in _own_entries(tmp, _keep(request)):  # the folders made just above
            for path in (entry, *(entry.rglob("*") if entry.is_dir() else ())):
                os.chown(path, uid, uid, follow_symlinks=False)
        _drop_capability_bounding_set()
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root: every capability goes with it
    import torch

    torch.set_num_threads(int(request["threads"]))
    from grader.probe.run import main

    code = main(Path(request["job"]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    for module in PRELOAD:
        __import__(module)
    import grader.probe.run  # noqa: F401 - with the check modules it loads, warm for children

    assignment = sys.argv[1] if len(sys.argv) > 1 else None
    if assignment:
        __import__(f"grader.checks.{assignment}")
    _say(ready=True)
    for line in sys.stdin:
        request = json.loads(line)
        _fresh_tmp(Path(request["tmp"]), _keep(request))
        pid = os.fork()
        if pid == 0:
            try:
                _child(request)
            except BaseException:  # noqa: BLE001 - the set-up of the probe itself failed
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(70)
        _say(pid=pid)
        _, status = os.waitpid(pid, 0)
        _say(exit=os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    serve()
