"""Does provenance name the commit a generated file came from, and say apart whether the code
that made it had uncommitted changes?"""

from __future__ import annotations

import subprocess

from solutions import provenance


def _git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_is_a_dirty_checkout_a_flag_beside_the_clean_commit(tmp_path, monkeypatch):
    """A "+dirty" suffix made the commit field name no commit at all."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "model.py").write_text("width = 8\n")
    _git(tmp_path, "add", "model.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    assert provenance.git_commit() == (head, False)
    (tmp_path / "model.py").write_text("width = 16\n")
    assert provenance.git_commit() == (head, True)


def test_do_training_s_own_outputs_leave_the_checkout_clean(tmp_path, monkeypatch):
    """Training replaces tracked weights, expected answers and figures before provenance is
    written: those are its outputs, not code that differs from the commit."""
    _git(tmp_path, "init", "-q")
    outputs = [
        tmp_path / "solutions" / "weights" / "a" / "m.pt",
        tmp_path / "grader" / "expected" / "a.json",
        tmp_path / "reports" / "a" / "curves.png",
    ]
    for path in outputs:
        path.parent.mkdir(parents=True)
        path.write_text("old")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    for path in outputs:
        path.write_text("retrained")
    assert provenance.git_commit() == (head, False)
