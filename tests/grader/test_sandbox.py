"""Does the sandbox hide what students must not see, and stop what they must not do?"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox import Limits, Mount, Sandbox, bubblewrap_works
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not usable here")


def run_inside(tmp_path: Path, code: str, limits: Limits | None = None):
    scratch = tmp_path / "scratch"
    sandbox = Sandbox(
        mounts=(Mount(scratch, Path("/submission"), writable=True),),
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        cwd=Path("/submission"),
        limits=limits or Limits(),
    )
    sandbox.prepare(scratch)
    return subprocess.run(
        sandbox.command([sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(sandbox.env),
        preexec_fn=sandbox.preexec(),
    )


def test_does_student_code_run_as_an_unprivileged_user(tmp_path):
    result = run_inside(tmp_path, "import os; print(os.getuid(), os.getgid())")
    assert result.stdout.split() == ["65534", "65534"], result.stderr


def test_are_answers_reference_code_and_course_files_invisible(tmp_path):
    secrets = [
        REPO / "grader" / "expected" / "res_dense_nets.json",
        REPO / "solutions" / "res_dense_nets" / "student.py",
        REPO / "source" / "res_dense_nets" / "res_dense_nets.ipynb",
        REPO / "assignments" / "res_dense_nets.toml",
        Path("/etc/shadow"),
    ]
    code = "import os\n" + "".join(f"print(os.path.exists({str(p)!r}))\n" for p in secrets)
    code += (
        "try:\n    import solutions.manifest\n    print('IMPORTED')\n"
        "except ImportError:\n    print('False')\n"
    )
    result = run_inside(tmp_path, code)
    lines = result.stdout.split()
    assert lines[:4] == ["False"] * 4, result.stderr
    assert lines[-1] == "False"
    shadow = run_inside(tmp_path, "open('/etc/shadow').read()")
    assert "PermissionError" in shadow.stderr


def test_is_only_the_scratch_folder_writable(tmp_path):
    code = (
        "import os\n"
        "open('/submission/ok.txt', 'w').write('fine')\n"
        f"for p in ['{REPO}/pwned', '/usr/pwned', '/etc/pwned', '/root/pwned']:\n"
        "    try:\n"
        "        open(p, 'w')\n"
        "        print('WROTE', p)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = run_inside(tmp_path, code)
    assert "WROTE" not in result.stdout, result.stdout
    assert (tmp_path / "scratch" / "ok.txt").read_text() == "fine"
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
    result = run_inside(tmp_path, code)
    assert "CONNECTED" not in result.stdout and result.stdout.count("refused") == 2, result.stderr


def test_are_memory_and_process_counts_capped(tmp_path):
    memory = run_inside(tmp_path, "b = bytearray(8 * 1024**3)")
    assert "MemoryError" in memory.stderr
    forks = run_inside(
        tmp_path,
        "import os\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n        n += 1\n"
        "except OSError:\n    print('capped at', n)\n",
        Limits(processes=32),
    )
    assert "capped at" in forks.stdout, forks.stderr


def test_does_the_sandbox_say_what_it_is():
    assert Sandbox(mounts=(), env={}, cwd=Path("/")).kind.startswith("bubblewrap")
    assert os.geteuid() != 0 or "unprivileged uid" in Sandbox(mounts=(), env={}, cwd=Path("/")).kind
