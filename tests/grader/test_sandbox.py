"""Does the sandbox hide what students must not see, and stop what they must not do?"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.probe_host import ProbeHost, Slot
from grader.sandbox import Limits, Mount, Sandbox, bubblewrap_works
from grader.supervise import TimeLimits, run_probe
from tests.conftest import REPO

UID = 990_090  # a sandbox uid of these tests alone

pytestmark = pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not usable here")


def run_inside(tmp_path: Path, code: str, limits: Limits | None = None) -> str:
    """Run `code` as the single cell of a probe, the way grading runs a notebook; return what it
    printed (stdout and stderr)."""
    slot = Slot(tmp_path / "slot", UID)
    slot.clear()
    sandbox = Sandbox(
        mounts=(
            Mount(slot.folder("work"), Path("/submission"), writable=True),
            Mount(slot.folder("outs"), Path("/out"), writable=True),
            Mount(slot.folder("job"), Path("/job")),
        ),
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
        cwd=Path("/submission"),
        uid=UID,
        limits=limits or Limits(),
    )
    sandbox.prepare(slot.folder("work"))
    sandbox.prepare(slot.folder("outs"))
    host = ProbeHost(sandbox, slot, "res_dense_nets", startup_timeout=120)
    job = {
        "assignment": "res_dense_nets",
        "cells": [code],
        "skip": {},
        "observers": [],
        "workdir": "/submission",
    }
    try:
        run_probe(host, job, TimeLimits(cell=60), threads=1)
    finally:
        host.close()
    return (slot.folder("outs") / "probe.log").read_text()


def test_does_student_code_run_unprivileged_without_a_way_back(tmp_path):
    log = run_inside(
        tmp_path,
        "import os\n"
        "print('ids', os.getuid(), os.getgid(), os.getgroups())\n"
        "print(open('/proc/self/status').read())",
    )
    assert f"ids {UID} {UID} []" in log
    status = dict(line.split(":\t", 1) for line in log.splitlines() if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1"  # set-uid programs cannot give root back
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0


def test_are_answers_reference_code_and_course_files_invisible(tmp_path):
    secrets = [
        REPO / "grader" / "expected" / "res_dense_nets.json",
        REPO / "solutions" / "res_dense_nets" / "student.py",
        REPO / "source" / "res_dense_nets" / "res_dense_nets.ipynb",
        REPO / "assignments" / "res_dense_nets.toml",
        REPO / "solutions" / "weights" / "res_dense_nets" / "resmlp.pt",
    ]
    code = "import os\n" + "".join(f"print('SEEN', os.path.exists({str(p)!r}))\n" for p in secrets)
    code += (
        "try:\n    import solutions.manifest\n    print('IMPORTED')\n"
        "except ImportError:\n    print('no solutions')\n"
        "try:\n    open('/etc/shadow').read()\nexcept PermissionError:\n    print('no shadow')\n"
    )
    log = run_inside(tmp_path, code)
    assert log.count("SEEN False") == len(secrets) and "SEEN True" not in log, log
    assert "no solutions" in log and "no shadow" in log, log


def test_is_only_the_scratch_folder_writable(tmp_path):
    code = (
        "open('/submission/ok.txt', 'w').write('fine')\n"
        f"for p in ['{REPO}/pwned', '/usr/pwned', '/etc/pwned', '/root/pwned', '/data/pwned']:\n"
        "    try:\n"
        "        open(p, 'w')\n"
        "        print('WROTE', p)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    log = run_inside(tmp_path, code)
    assert "WROTE" not in log, log
    assert (tmp_path / "slot" / "work" / "ok.txt").read_text() == "fine"
    assert not (REPO / "pwned").exists()


def test_is_there_no_network(tmp_path):
    code = (
        "import socket\n"
        "for host in [('1.1.1.1', 80), ('127.0.0.1', 22)]:\n"
        "    try:\n"
        "        socket.create_connection(host, timeout=3); print('CONNECTED', host)\n"
        "    except OSError as err:\n"
        "        print('refused', type(err).__name__)\n"
    )
    log = run_inside(tmp_path, code)
    assert "CONNECTED" not in log and log.count("refused") == 2, log


def test_are_memory_and_process_counts_capped(tmp_path):
    memory = run_inside(tmp_path, "b = bytearray(8 * 1024**3)")
    assert "MemoryError" in memory
    forks = run_inside(
        tmp_path,
        "import os\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n        n += 1\n"
        "except OSError:\n    print('capped at', n)\n",
        Limits(processes=32),
    )
    assert "capped at" in forks, forks


def test_does_the_sandbox_say_what_it_is():
    sandbox = Sandbox(mounts=(), env={}, cwd=Path("/"))
    assert sandbox.kind.startswith("bubblewrap")
    assert os.geteuid() != 0 or "unprivileged uid" in sandbox.kind
