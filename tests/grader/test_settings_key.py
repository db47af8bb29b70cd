"""Does a course's settings key give every student and every run the same probe settings,
while staying a secret of the grading machine?"""

from __future__ import annotations

import random
import stat

import pytest

from grader.checks.assemble import build_checkset
from grader.manifest import assignment_ids, load_manifest
from grader.settings_key import SettingsKeyError, key_path, load_key, settings_seed

IDS = assignment_ids()
A, B = IDS[:2]  # any two assignments: a key knows ids, not what they are


def test_is_a_key_written_once_private_and_then_reused(tmp_path):
    first = settings_seed(tmp_path, A)
    assert first.path == tmp_path / ".dlgrade" / "settings.key"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert settings_seed(tmp_path, A) == first
    assert [p.name for p in first.path.parent.iterdir()] == ["settings.key"]  # no temp files


def test_do_assignments_and_courses_get_settings_of_their_own(tmp_path):
    a = settings_seed(tmp_path / "a", A)
    assert settings_seed(tmp_path / "a", B).seed != a.seed
    assert settings_seed(tmp_path / "b", A).seed != a.seed
    assert a.digest != format(a.seed, "x") and str(a.seed) not in a.digest


def test_are_loose_folders_keyed_in_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert key_path(None) == tmp_path / "state" / "dlgrade" / "settings.key"
    assert settings_seed(None, A).path.is_file()


def test_is_a_file_that_is_not_a_key_refused_with_the_fix(tmp_path):
    path = key_path(tmp_path)
    path.parent.mkdir()
    path.write_text("hello\n")
    with pytest.raises(SettingsKeyError, match="delete it"):
        load_key(path)


def test_is_a_planted_link_not_followed(tmp_path):
    path = key_path(tmp_path)
    path.parent.mkdir()
    (tmp_path / "elsewhere").write_text("a" * 64)
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        load_key(path)


@pytest.mark.parametrize("assignment", IDS)
def test_does_one_seed_draw_the_same_settings_every_time(tmp_path, assignment):
    manifest = load_manifest(assignment)
    checkset = build_checkset(manifest)
    seed = settings_seed(tmp_path, assignment).seed
    draws = [checkset.draw(random.Random(seed), manifest) for _ in range(2)]
    assert draws[0] == draws[1]
    other = settings_seed(tmp_path / "other", assignment).seed
    assert checkset.draw(random.Random(other), manifest) != draws[0]
