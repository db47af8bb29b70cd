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


def run_inside(
    tmp_path: Path, *codes: str, limits: Limits | None = None, mounts: tuple[Mount, ...] = ()
) -> str:
    """Run each of `codes` as the single cell of a probe, one after another on one warm sandbox,
    the way grading runs consecutive notebooks; return what they printed (stdout and stderr)."""
    slot = Slot(tmp_path / "slot", UID)
    slot.clear()
    sandbox = Sandbox(
        mounts=(
            Mount(slot.folder("work"), Path("/submission"), writable=True),
            Mount(slot.folder("outs"), Path("/out"), writable=True),
            Mount(slot.folder("job"), Path("/job")),
            *mounts,
        ),
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
        cwd=Path("/submission"),
        uid=UID,
        limits=limits or Limits(),
    )
    sandbox.prepare(slot.folder("work"))
    sandbox.prepare(slot.folder("outs"))
    host = ProbeHost(sandbox, slot, "res_dense_nets", startup_timeout=120)
    logs = []
    try:
        for code in codes:
            job = {
                "assignment": "res_dense_nets",
                "cells": [code],
                "skip": {},
                "observers": [],
                "workdir": "/submission",
            }
            run_probe(host, job, TimeLimits(cell=60), threads=1)
            logs.append((slot.folder("outs") / "probe.log").read_text())
    finally:
        host.close()
    return "\n".join(logs)


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
        limits=Limits(processes=32),
    )
    assert "capped at" in forks, forks


def test_does_each_probe_get_an_empty_tmp_that_spares_folders_mounted_under_it(tmp_path):
    # A checkout under /tmp (a CI clone, say) has its virtual environment and grader package
    # bound inside the sandbox's /tmp: emptying /tmp between probes must leave them alone.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "module.py").write_text("VALUE = 42\n")
    mounted = Path("/tmp/a-checkout/lib")
    first = (
        "import os, sys\n"
        "open('/tmp/left-behind', 'w').write('x')\n"
        f"sys.path.insert(0, {str(mounted)!r}); import module; print('FIRST', module.VALUE)\n"
    )
    second = (
        "import os, sys\n"
        "print('LEFT', 'left-behind' in os.listdir('/tmp'), os.listdir('/tmp/a-checkout'))\n"
        f"sys.path.insert(0, {str(mounted)!r}); import module; print('SECOND', module.VALUE)\n"
    )
    log = run_inside(tmp_path, first, second, mounts=(Mount(checkout, mounted),))
    assert "FIRST 42" in log and "SECOND 42" in log, log
    assert "LEFT False ['lib']" in log, log
    assert (checkout / "module.py").exists()


def test_does_the_sandbox_say_what_it_is():
    sandbox = Sandbox(mounts=(), env={}, cwd=Path("/"))
    assert sandbox.kind.startswith("bubblewrap")
    assert os.geteuid() != 0 or "unprivileged uid" in sandbox.kind
