"""Does the trusted parent stay whole whatever a probe leaves behind or writes for it?

Fast, in-process questions about the three places where root handles what student code made:
removing a probe's folders (however deep), decoding its observations (however inflated), and
following its progress file (however long).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from grader.observations import ObservationError, decode, encode
from grader.safe_fs import over_disk_limit, remove
from grader.supervise import _Attempt
from tests.fixtures.hostile import make_deep


def _nest(top: Path, levels: int, name: str) -> Path:
    """`levels` folders called `name` under `top`, made through descriptors (deeper than any
    path may be long); returns `top`."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            if level % 500 == 0:
                os.mkfifo("fifo", dir_fd=fd)
                os.close(os.open("file", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    return top


def test_does_remove_take_a_tree_deeper_than_path_max_and_recursion(tmp_path):
    top = _nest(tmp_path / "deep", 3_000, "n" * 40)  # 120 kB of path, 3x the recursion limit
    remove(top)
    assert not top.exists()


def test_does_remove_follow_no_link_inside_the_tree(tmp_path):
    victim = tmp_path / "victim"
    (victim / "inner").mkdir(parents=True)
    (victim / "inner" / "file").write_text("kept")
    top = _nest(tmp_path / "deep", 5, "d")
    (top / "to-folder").symlink_to(victim)
    (top / "d" / "d" / "to-file").symlink_to(victim / "inner" / "file")
    # Names the removal itself uses for what it moves up: taken already.
    (top / ".dlgrade-removing-1").mkdir()
    (top / ".dlgrade-removing-1" / "x").write_text("x")
    (top / ".dlgrade-removing-2").write_text("y")
    (top / "d" / "locked").mkdir(mode=0o000)
    remove(top)
    assert not top.exists()
    assert (victim / "inner" / "file").read_text() == "kept"


def test_does_remove_take_single_files_links_and_fifos(tmp_path):
    target = tmp_path / "target"
    target.write_text("kept")
    link, fifo = tmp_path / "link", tmp_path / "fifo"
    link.symlink_to(target)
    os.mkfifo(fifo)
    for path in (link, fifo, tmp_path / "missing"):
        remove(path)
        assert not os.path.lexists(path)
    assert target.read_text() == "kept"


def test_do_observations_travel_unchanged():
    value = {
        "a_tensor": torch.arange(6.0).reshape(2, 3),
        "runs": [{"x_tensor": torch.ones(4, dtype=torch.int64)}, {"error": "no"}],
        "empty_tensor": torch.zeros(0),
        "flag": True,
    }
    got = decode(*encode(value))
    assert torch.equal(got["a_tensor"], value["a_tensor"])
    assert torch.equal(got["runs"][0]["x_tensor"], value["runs"][0]["x_tensor"])
    assert got["runs"][1] == {"error": "no"} and got["flag"] is True
    assert got["empty_tensor"].shape == (0,)


def _ref(nbytes: int, offset: int = 0, shape=None) -> dict:
    shape = [nbytes] if shape is None else shape
    return {"__tensor__": 0, "dtype": "uint8", "shape": shape, "offset": offset, "nbytes": nbytes}


@pytest.mark.parametrize(
    ("text", "blob", "why"),
    [
        # The same megabyte named 300 times: 300 MB in the parent from a 1 MB file.
        (json.dumps({"x_tensor": [_ref(2**20)] * 300}), bytes(2**20), "share bytes"),
        (json.dumps({"a_tensor": _ref(10), "b_tensor": _ref(10, 5)}), bytes(20), "share bytes"),
        ("[" * 100_000 + "]" * 100_000, b"", "not JSON"),  # deeper than json's own recursion
        (json.dumps({"x": eval("[" * 80 + "]" * 80)}), b"", "nested deeper"),
        (json.dumps({"x_tensor": _ref(0, shape=[0, 2**70])}), b"", "malformed shape"),
        (json.dumps({"x_tensor": _ref(0, shape=[0] * 100)}), b"", "malformed shape"),
        (json.dumps({"x_tensor": _ref(2**30)}), bytes(100), "does not match"),
    ],
    ids=["aliased", "overlapping", "json-recursion", "nested", "huge-dims", "many-dims", "short"],
)
def test_is_an_inflating_or_malformed_observation_refused(text, blob, why):
    with pytest.raises(ObservationError, match=why):
        decode(text, blob)


def test_does_a_flood_of_progress_lines_cost_the_parent_nothing():
    """Only the latest end of each known cell and observer is kept, however many lines come."""
    attempt = _Attempt(cells=3, observers=frozenset({"a", "b"}))
    for i in range(100_000):
        attempt.keep({"event": "cell_end", "index": i % 5, "status": "ok"})
        attempt.keep({"event": "observer_end", "name": "a" if i % 2 else f"x{i}"})
        attempt.keep({"event": "cell_end", "index": True})
    attempt.keep({"event": "started"})
    assert len(attempt.events) == 4  # cells 0-2 and observer a
    assert attempt.started and not attempt.finished
    attempt.keep({"event": "done"})
    attempt.challenged = True
    assert attempt.finished


def test_are_the_fixture_trees_really_that_deep(tmp_path):
    top = _nest(tmp_path / "deep", 1_100, "d")
    depth, fd = 0, os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            try:
                inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                break
            os.close(fd)
            fd, depth = inner, depth + 1
    finally:
        os.close(fd)
    assert depth == 1_100
    assert stat.S_ISDIR(os.lstat(top).st_mode)
    remove(top)


def test_does_the_disk_limit_count_what_files_hold_and_how_many_there_are(tmp_path):
    """A sparse 16 GiB file holds a few kB of disk; 2 MiB of bytes hold 2 MiB; entries count
    folders too, and the walk stops at the first limit passed."""
    (tmp_path / "sparse.pt").open("wb").truncate(16 * 1024**3)
    assert over_disk_limit([tmp_path], 1024**2, 100) == ""
    (tmp_path / "full.bin").write_bytes(os.urandom(2 * 1024**2))
    assert over_disk_limit([tmp_path], 1024**2, 100) == "it wrote more than 1 MB to disk"
    for i in range(60):
        (tmp_path / "many" / str(i)).mkdir(parents=True)
    assert over_disk_limit([tmp_path], 1024**3, 50) == "it made more than 50 files and folders"
    assert over_disk_limit([tmp_path / "gone"], 0, 0) == ""  # removed meanwhile: nothing held


def test_is_a_tree_deeper_than_a_path_can_name_measured(tmp_path):
    """200 folders of 40-character names (8 kB of path, past PATH_MAX): measured all the same,
    down to the 2 MiB file at its bottom (hostile deep_tree_left_behind nests 3,000)."""
    make_deep(tmp_path / "empty", 200, "n" * 40)
    assert over_disk_limit([tmp_path], 1024**2, 1000) == ""
    make_deep(tmp_path / "full", 200, "n" * 40, bottom=os.urandom(2 * 1024**2))
    assert over_disk_limit([tmp_path / "full"], 1024**2, 1000) == "it wrote more than 1 MB to disk"
    assert over_disk_limit([tmp_path], 1024**3, 100) == "it made more than 100 files and folders"
