"""Does the grader find the control groups a machine offers, and only make groups of its own?"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from grader.cgroups import PREFIX, SlotGroups, find_layout

V1_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CPU = "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
V1_OWN = "8:pids:/\n4:memory:/jobs/42\n0::/\n"


def test_is_there_no_layout_without_root():
    assert find_layout(V1_MOUNTS, V1_OWN, root_ok=False) is None


def test_are_v1_groups_made_under_the_grader_s_own_group(tmp_path, monkeypatch):
    """v1: one parent per hierarchy, the grader's own group in it (its limits still hold)."""
    memory = tmp_path / "memory" / "jobs" / "42"
    pids = tmp_path / "pids"
    memory.mkdir(parents=True)
    pids.mkdir()
    mounts = V1_MOUNTS.replace("/sys/fs/cgroup/memory", str(tmp_path / "memory")).replace(
        "/sys/fs/cgroup/pids", str(pids)
    )
    layout = find_layout(mounts, V1_OWN, root_ok=True)
    assert layout is not None and layout.version == 1 and not layout.cpu
    assert layout.parents == {"memory": memory, "pids": pids}
    # A `cpu,cpuacct` hierarchy, where mounted, gives each slot its share of the cores.
    cpu = tmp_path / "cpu,cpuacct"
    cpu.mkdir()
    with_cpu = mounts + V1_CPU.replace("/sys/fs/cgroup/cpu,cpuacct", str(cpu))
    layout = find_layout(with_cpu, V1_OWN + "2:cpu,cpuacct:/\n", root_ok=True)
    assert layout.cpu and layout.parents == {"memory": memory, "pids": pids, "cpu": cpu}
    assert "fair share of the cores" in layout.describe()


def test_is_a_v2_root_that_delegates_nothing_left_alone(tmp_path):
    """v2 is used only where the root already delegates memory and pids: enabling them would
    change a group the grader did not create."""
    (tmp_path / "cgroup.subtree_control").write_text("cpu io\n")
    mounts = f"30 23 0:27 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    assert find_layout(mounts, "0::/user.slice\n", root_ok=True) is None
    (tmp_path / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    layout = find_layout(mounts, "0::/user.slice\n", root_ok=True)
    assert layout is not None and layout.version == 2 and layout.parents == {"unified": tmp_path}
    assert layout.cpu
    (tmp_path / "cgroup.subtree_control").write_text("io memory pids\n")
    assert not find_layout(mounts, "0::/user.slice\n", root_ok=True).cpu


@pytest.mark.skipif(find_layout() is None, reason="this machine offers no control groups")
def test_does_an_attempt_group_hold_its_limits_and_go_with_its_processes():
    layout = find_layout()
    groups = SlotGroups(layout, 999_999)
    groups.create()
    try:
        name = groups.start(1, 256 * 1024**2, 16)
        for folder in groups.folders.values():
            assert folder.name.startswith(PREFIX) and (folder / name).is_dir()
        if layout.version == 1:
            memory = groups.folders["memory"] / name
            assert int((memory / "memory.limit_in_bytes").read_text()) == 256 * 1024**2
            assert (groups.folders["pids"] / name / "pids.max").read_text().strip() == "16"
        pid = os.fork()
        if pid == 0:  # a process of the attempt, as the zygote's child would be
            for folder in groups.folders.values():
                (folder / name / "cgroup.procs").write_text(str(os.getpid()))
            os.kill(os.getpid(), 19)  # SIGSTOP: it stays until the group is removed
            os._exit(0)
        deadline = time.monotonic() + 30
        while not all(
            str(pid) in (f / name / "cgroup.procs").read_text() for f in groups.folders.values()
        ):
            assert time.monotonic() < deadline, "the child never joined its groups"
            time.sleep(0.01)
        # Reaped as the zygote reaps its probes (a zombie keeps its group busy).
        status = []
        waiter = threading.Thread(target=lambda: status.append(os.waitpid(pid, 0)[1]))
        waiter.start()
        usage = groups.finish()
        waiter.join()
        assert usage.limit_bytes == 256 * 1024**2
        assert os.WIFSIGNALED(status[0])  # killed with its group
        assert not any((f / name).exists() for f in groups.folders.values())
    finally:
        groups.remove()
    assert not any(Path(f).exists() for f in groups.folders.values())


def _spinners(groups: SlotGroups, name: str, count: int) -> list[int]:
    """`count` busy processes in the attempt group `name` of `groups`."""
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                for folder in groups.folders.values():
                    (folder / name / "cgroup.procs").write_text(str(os.getpid()))
                while True:
                    pass
            finally:
                os._exit(0)
        pids.append(pid)
    return pids


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.skipif(
    find_layout() is None or not find_layout().cpu, reason="this machine offers no cpu groups"
)
def test_does_a_probe_of_many_processes_leave_its_neighbour_its_share_of_the_cores():
    """Two slots, one probe of 8 busy processes and one of a single one: the single process gets
    about what the 8 get together (without groups it would get an 8th of it). A ratio, so a
    busy machine slows both sides alike."""
    layout = find_layout()
    crowd, single = SlotGroups(layout, 999_997), SlotGroups(layout, 999_998)
    pids: list[int] = []
    try:
        for groups in (crowd, single):
            groups.create()
            groups.start(1, 256 * 1024**2, 64)
        cores = os.cpu_count() or 1
        pids = _spinners(crowd, "a1", 8 * cores) + _spinners(single, "a1", cores)
        time.sleep(3.0)
        used = [_cpu_seconds(pid) for pid in pids]
        many, one = sum(used[: 8 * cores]), sum(used[8 * cores :])
        assert one > 0.5 * many, (
            f"{cores} process(es) had {one:.2f} s, {8 * cores} had {many:.2f} s"
        )
    finally:
        for groups in (crowd, single):
            groups.remove()  # kills the spinners
        for pid in pids:
            os.waitpid(pid, 0)
