"""Does the sandbox hide what students must not see, and stop what they must not do?

Every test runs student-like code through the real probe path (zygote, fork, privilege drop,
supervisor) on a warm sandbox, as grading does.
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from grader.grade import GradingRun, open_host
from grader.inputs import prepare_inputs
from grader.probe import colab
from grader.probe_host import ProbeHost, Slot
from grader.safe_fs import tail
from grader.sandbox import Limits, MiB, Mount, Sandbox, bubblewrap_works
from grader.settings_key import settings_seed
from grader.supervise import TimeLimits, run_probe
from grader.uids import FIRST_UID, UidLease, orphaned, pids_of
from solutions.data import load_split, resolve_root
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not usable here")


@pytest.fixture(scope="module")
def uid():
    """A probe uid leased to these tests alone (a grading run may be going on beside them)."""
    lease = UidLease.take(1)
    yield lease.uids[0]
    lease.release()


def _job(manifest, code: str, observers=()) -> dict:
    return {
        "manifest": manifest.model_dump(mode="json"),
        "cells": [code],
        "cell_numbers": [1],
        "skip": {},
        "observers": list(observers),
        "weights_dir": "/job",
        "test_images": None,
        "weights_problems": {},
        "matplotlib_cache": "",
    }


def _logs(slot: Slot) -> str:
    folders = sorted(p for p in slot.folder("outs").iterdir() if p.name.startswith("a"))
    return "\n".join(tail(f / "probe.log", 10**6) for f in folders)


def run_on(host: ProbeHost, manifest, *codes: str, cell: float = 120.0, observers=()) -> str:
    """Run each of `codes` as the single cell of a probe, one after another on one warm
    sandbox, the way grading runs consecutive notebooks; return what they printed."""
    logs = []
    for code in codes:
        host.slot.clear()
        run_probe(host, _job(manifest, code, observers), {}, TimeLimits(cell=cell, observer=cell))
        logs.append(_logs(host.slot))
    return "\n".join(logs)


def run_inside(
    tmp_path: Path,
    uid: int,
    manifest,
    *codes: str,
    limits: Limits | None = None,
    mounts: tuple[Mount, ...] = (),
    links: tuple[tuple[Path, str], ...] = (),
) -> str:
    host = _host(tmp_path, uid, limits or Limits(), mounts, links)
    try:
        return run_on(host, manifest, *codes)
    finally:
        host.close()


def _host(
    tmp_path: Path,
    uid: int,
    limits: Limits,
    mounts: tuple[Mount, ...] = (),
    links: tuple[tuple[Path, str], ...] = (),
) -> ProbeHost:
    """A warm sandbox of one job slot, laid out as grading lays it out."""
    slot = Slot(tmp_path / "slot", uid)
    slot.create()
    sandbox = Sandbox(
        mounts=(
            Mount(slot.folder("work"), Path("/submission"), writable=True),
            Mount(slot.folder("outs"), Path("/out"), writable=True),
            Mount(slot.folder("job"), Path("/job")),
            *mounts,
        ),
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
        cwd=Path("/submission"),
        uid=uid,
        limits=limits,
        links=links,
    )
    return ProbeHost(sandbox, slot, "res_dense_nets", startup_timeout=120, threads=1)


def test_does_student_code_run_unprivileged_without_a_way_back(tmp_path, uid, manifest):
    log = run_inside(
        tmp_path,
        uid,
        manifest,
        "import os\n"
        "print('ids', os.getuid(), os.getgid(), os.getgroups())\n"
        "print(open('/proc/self/status').read())",
    )
    assert f"ids {uid} {uid} []" in log
    status = dict(line.split(":\t", 1) for line in log.splitlines() if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1"  # set-uid programs cannot give root back
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0


def test_can_a_probe_reach_the_zygote_s_request_pipe_or_any_root_process(tmp_path, uid, manifest):
    # The review's escape wrote a request of its own into the zygote's stdin. Every
    # descriptor of every process in the sandbox is tried, for writing and for reading.
    attack = (
        "import os\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        fds = os.listdir(f'/proc/{pid}/fd')\n"
        "    except OSError:\n"
        "        continue\n"
        "    for fd in fds:\n"
        "        path = f'/proc/{pid}/fd/{fd}'\n"
        "        for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):\n"
        "            try:\n"
        "                os.close(os.open(path, flags))\n"
        "                owner = os.stat(f'/proc/{pid}').st_uid\n"
        "                print('OPENED', pid, fd, owner, flags)\n"
        "            except OSError:\n"
        "                pass\n"
        "print('ids after', os.getuid())\n"
    )
    log = run_inside(tmp_path, uid, manifest, attack, "import os; print('next', os.getuid())")
    opened = [line for line in log.splitlines() if line.startswith("OPENED")]
    # Its own descriptors it may open; nothing of root's (the zygote, bubblewrap).
    assert all(int(line.split()[3]) == uid for line in opened), opened
    assert f"next {uid}" in log


def test_are_answers_reference_code_and_course_files_invisible(tmp_path, uid, manifest):
    secrets = [
        REPO / "grader" / "expected" / "res_dense_nets.json",
        REPO / "solutions" / "res_dense_nets" / "student.py",
        REPO / "source" / "res_dense_nets" / "res_dense_nets.ipynb",
        REPO / "assignments" / "res_dense_nets.toml",
        REPO / "solutions" / "weights" / "res_dense_nets" / "resmlp.pt",
        Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
        settings_seed(None, "res_dense_nets").path,  # the key behind the probe settings
    ]
    code = "import os\n" + "".join(f"print('SEEN', os.path.exists({str(p)!r}))\n" for p in secrets)
    code += (
        "try:\n    import solutions.res_dense_nets.student\n    print('IMPORTED')\n"
        "except ImportError:\n    print('no solutions')\n"
        "try:\n    open('/etc/shadow').read()\nexcept PermissionError:\n    print('no shadow')\n"
    )
    log = run_inside(tmp_path, uid, manifest, code)
    assert log.count("SEEN False") == len(secrets) and "SEEN True" not in log, log
    assert "no solutions" in log and "no shadow" in log, log


def _scan_cell(needles: list[bytes]) -> str:
    """Cell code that searches every regular file it can read (gzip files inflated too) for
    the needles, which travel reversed so that the cell's own source never holds them.

    Compiled libraries (ELF) are counted but not read: they are three quarters of the bytes a
    probe sees (torch's CUDA libraries, ~5 GB) and no course file is ever copied into one."""
    reversed_hex = [n[::-1].hex() for n in needles]
    return (
        "import gzip, os\n"
        f"needles = [bytes.fromhex(h)[::-1] for h in {reversed_hex!r}]\n"
        "found, files = [], 0\n"
        "for root, dirs, names in os.walk('/'):\n"
        "    if root == '/':\n"
        "        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]\n"
        "    for name in names:\n"
        "        path = os.path.join(root, name)\n"
        "        try:\n"
        "            if not os.path.isfile(path) or os.path.islink(path):\n"
        "                continue\n"
        "            handle = open(path, 'rb')\n"
        "        except OSError:\n"
        "            continue\n"
        "        files += 1\n"
        "        with handle:\n"
        "            head, tail = handle.read(4), b''\n"
        "            handle.seek(0)\n"
        "            if head == b'\\x7fELF':\n"
        "                continue\n"
        "            if head[:2] == b'\\x1f\\x8b' and os.path.getsize(path) < 100 * 2**20:\n"
        "                try:\n"
        "                    chunks = [gzip.decompress(handle.read())]\n"
        "                except Exception:\n"
        "                    handle.seek(0)\n"
        "                    chunks = iter(lambda: handle.read(8 * 2**20), b'')\n"
        "            else:\n"
        "                chunks = iter(lambda: handle.read(8 * 2**20), b'')\n"
        "            for chunk in chunks:\n"
        "                data, tail = tail + chunk, chunk[-128:]\n"
        "                for i, needle in enumerate(needles):\n"
        "                    if needle in data:\n"
        "                        found.append((i, path))\n"
        "print('SCANNED', files, 'FOUND', found)\n"
    )


def test_does_the_whole_sandbox_hold_no_copy_of_the_test_labels_or_expected_answers(
    tmp_path, uid, manifest
):
    """The review found the Debian test labels under /usr: search everything a probe sees."""
    _, labels = load_split(manifest.dataset, False, root=resolve_root(manifest.dataset).root)
    raw = bytes(labels.to(dtype=torch.uint8).tolist())
    expected = (REPO / "grader" / "expected" / "res_dense_nets.json").read_bytes()
    # The last needle is a control: a piece of torch's own source, which every probe can read.
    control = Path(torch.__file__).read_bytes()[1000:1064]
    needles = [raw[1000:1064], raw[7000:7064], expected[200:264], control]
    inputs = prepare_inputs(manifest, tmp_path / "input")
    run = GradingRun.prepare(manifest, inputs)
    host = open_host(run, uid)
    try:
        log = run_on(host, manifest, _scan_cell(needles), cell=900)
    finally:
        host.close()
    line = next(line for line in log.splitlines() if line.startswith("SCANNED"))
    assert int(line.split()[1]) > 1000, line  # the scan really read the file system
    found = ast.literal_eval(line.split("FOUND ", 1)[1])
    assert found and {needle for needle, _ in found} == {3}, line  # the control alone


def test_is_only_the_scratch_folder_writable(tmp_path, uid, manifest):
    code = (
        "import os\n"
        "open('ok.txt', 'w').write('fine'); print('CWD', os.getcwd())\n"
        f"for p in ['{REPO}/pwned', '/usr/pwned', '/etc/pwned', '/root/pwned', '/data/pwned',\n"
        "          '/job/pwned', '/out/pwned', '/submission/pwned', '/grader-input/pwned']:\n"
        "    try:\n"
        "        open(p, 'w')\n"
        "        print('WROTE', p)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    log = run_inside(tmp_path, uid, manifest, code)
    assert "WROTE" not in log, log
    assert "CWD /submission/a1" in log
    assert not (REPO / "pwned").exists()


def test_does_colab_drive_hold_the_submission_and_nothing_of_an_earlier_probe(
    tmp_path, uid, manifest
):
    """/content/drive as grading makes it: a notebook makes its Drive folder and saves there
    (off Colab that failed the cell that did it), MyDrive is the probe's working folder, and
    the next probe of the slot finds nothing the earlier one wrote to Drive."""
    first = (
        "import os\n"
        "os.makedirs('/content/drive/MyDrive/dl', exist_ok=True)\n"
        "open('/content/drive/My Drive/dl/w.pt', 'w').write('x')\n"
        "print('SAVED', os.path.exists('dl/w.pt'))\n"
    )
    second = "import os\nprint('LEFT', os.path.exists('/content/drive/MyDrive/dl'))\n"
    drive = ((Path(colab.DRIVE), colab.DRIVE_STAND_IN),)
    log = run_inside(tmp_path, uid, manifest, first, second, links=drive)
    assert "SAVED True" in log and "LEFT False" in log, log


def test_does_the_host_follow_nothing_a_probe_plants(tmp_path, uid, manifest):
    """Links and FIFOs planted where the host reads or cleans: the targets stay as they were,
    and a forged observation (written before the challenge existed) is refused."""
    victim = tmp_path / "victim"
    victim.write_text("root only\n")
    victim.chmod(0o600)
    tree = tmp_path / "tree"
    (tree / "inner").mkdir(parents=True)
    (tree / "inner" / "file").write_text("x")
    plant = (
        "import json, os, time\n"
        f"victim, tree = {str(victim)!r}, {str(tree)!r}\n"
        "out = '/out/a1'\n"
        "os.makedirs(out + '/obs', exist_ok=True)\n"
        "for name in ('answers.json', 'answers.bin'):\n"
        "    os.symlink(victim, f'{out}/obs/{name}')\n"
        "os.mkfifo(out + '/obs/fifo.bin')\n"
        "os.symlink(tree, out + '/tree-link')\n"
        "os.symlink(victim, 'weights-link.pt')\n"
        "os.symlink(tree, '/submission/a1/tree-link')\n"
        "with open(out + '/progress.jsonl', 'a') as f:\n"
        "    for event in ('cells_done', 'observer_start', 'observer_end', 'done'):\n"
        "        f.write(json.dumps({'event': event, 'name': 'answers'}) + '\\n')\n"
        "os._exit(0)\n"
    )
    slot = Slot(tmp_path / "slot", uid)
    slot.create()
    sandbox = Sandbox(
        mounts=(
            Mount(slot.folder("work"), Path("/submission"), writable=True),
            Mount(slot.folder("outs"), Path("/out"), writable=True),
            Mount(slot.folder("job"), Path("/job")),
        ),
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
        cwd=Path("/submission"),
        uid=uid,
    )
    host = ProbeHost(sandbox, slot, "res_dense_nets", startup_timeout=120, threads=1)
    try:
        job = _job(manifest, plant, observers=["answers"])
        result = run_probe(host, job, {"answers": {}}, TimeLimits(cell=60))
        slot.clear()
    finally:
        host.close()
    assert "__error__" in result.observations["answers"]  # the forged result was refused
    info = victim.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    assert victim.read_text() == "root only\n"
    assert (tree / "inner" / "file").read_text() == "x"
    assert {p.stat().st_uid for p in [tree, *tree.rglob("*")]} == {0}


def test_is_there_no_network(tmp_path, uid, manifest):
    code = (
        "import socket\n"
        "for host in [('1.1.1.1', 80), ('127.0.0.1', 22)]:\n"
        "    try:\n"
        "        socket.create_connection(host, timeout=3); print('CONNECTED', host)\n"
        "    except OSError as err:\n"
        "        print('refused', type(err).__name__)\n"
    )
    log = run_inside(tmp_path, uid, manifest, code)
    assert "CONNECTED" not in log and log.count("refused") == 2, log


def test_are_memory_and_process_counts_capped(tmp_path, uid, manifest):
    memory = run_inside(tmp_path, uid, manifest, "b = bytearray(8 * 1024**3)")
    assert "MemoryError" in memory
    forks = run_inside(
        tmp_path,
        uid,
        manifest,
        "import os\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n        n += 1\n"
        "except OSError:\n    print('capped at', n)\n",
        limits=Limits(processes=32),
    )
    assert "capped at" in forks, forks
    assert not pids_of(uid)  # every process of the uid reaped


@pytest.mark.parametrize(
    ("fill", "reason"),
    [
        ("open(f'fill{i}', 'wb').write(b'x' * 2**22)", "it wrote more than 64 MB to disk"),
        (
            "os.makedirs(f'many/{i}/a/b', exist_ok=True)",
            "it made more than 2,000 files and folders",
        ),
    ],
)
def test_does_a_cell_that_fills_the_machine_s_disk_stop_at_the_probe_s_limit(
    tmp_path, uid, manifest, fill, reason
):
    """The probe's working and output folders are on the grading machine's disk: a cell
    writing one file after another (each under the file size limit) is stopped once they hold
    more than the probe's disk limit, blamed, and run again as its definitions alone."""
    code = (
        f"import os, time\nfor i in range(1000):\n    {fill}\n    time.sleep(0.01)\nprint('DONE')\n"
    )
    host = _host(tmp_path, uid, Limits(disk_bytes=64 * MiB, disk_entries=2_000))
    try:
        result = run_probe(host, _job(manifest, code), {}, TimeLimits(cell=60))
    finally:
        host.close()
    assert f"cell 1 (`import os, time`) stopped the probe ({reason})" in " ".join(result.notes)
    assert "graded with its definitions alone" in " ".join(result.notes)


def test_does_each_probe_get_an_empty_tmp_that_keeps_folders_mounted_under_it(
    tmp_path, uid, manifest
):
    # A checkout under /tmp (a CI clone, say) has its virtual environment and grader package
    # bound inside the sandbox's /tmp: each probe's fresh /tmp must still show them.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "module.py").write_text("VALUE = 42\n")
    (checkout / "module.py").chmod(0o666)  # writable by anyone: only the mount protects it
    mounted = Path("/tmp/a-checkout/lib")
    first = (
        "import os, sys\n"
        "open('/tmp/left-behind', 'w').write('x')\n"
        f"sys.path.insert(0, {str(mounted)!r}); import module; print('FIRST', module.VALUE)\n"
        f"open({str(mounted / 'module.py')!r}, 'a')\n"
    )
    second = (
        "import os, sys\n"
        "print('LEFT', 'left-behind' in os.listdir('/tmp'), os.listdir('/tmp/a-checkout'))\n"
        f"sys.path.insert(0, {str(mounted)!r}); import module; print('SECOND', module.VALUE)\n"
    )
    log = run_inside(tmp_path, uid, manifest, first, second, mounts=(Mount(checkout, mounted),))
    assert "FIRST 42" in log and "SECOND 42" in log, log
    assert "LEFT False ['lib']" in log, log
    assert "Read-only file system" in log  # the kept mount stays read-only
    assert (checkout / "module.py").read_text() == "VALUE = 42\n"


def test_do_two_runs_on_one_machine_get_disjoint_uids():
    first = UidLease.take(2)
    second = UidLease.take(2)
    try:
        assert not set(first.uids) & set(second.uids)
        assert all(u >= FIRST_UID for u in first.uids + second.uids)
    finally:
        held = list(first.uids)
        first.release()
        second.release()
    again = UidLease.take(1)
    try:
        assert again.uids[0] in held or again.uids[0] >= FIRST_UID
    finally:
        again.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="probes get their own uids only under root")
def test_is_a_probe_uid_s_process_orphaned_only_once_no_run_holds_the_uid():
    # The real lock folder: a uid leased there is nobody else's (helpers' runs may be going on).
    lease = UidLease.take(1)
    uid = lease.uids[0]
    left = subprocess.Popen(["sleep", "60"], user=uid, group=uid)
    try:
        assert uid not in orphaned()  # its run still holds the uid
        lease.release()
        assert orphaned().get(uid) == [left.pid]
    finally:
        left.kill()
        left.wait()
    assert uid not in orphaned()


def test_does_the_sandbox_say_what_it_is():
    sandbox = Sandbox(mounts=(), env={}, cwd=Path("/"))
    assert sandbox.kind.startswith("bubblewrap")
    assert os.geteuid() != 0 or "unprivileged uid" in sandbox.kind
    assert "per-process limits only (no control groups): 6 GiB of address space" in sandbox.kind
    held = Sandbox(mounts=(), env={}, cwd=Path("/"), whole_probe="cgroup v2")
    assert "whole-probe limits (cgroup v2): 6 GiB of memory, 64 processes" in held.kind
