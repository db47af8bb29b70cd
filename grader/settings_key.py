"""The secret behind a course's probe settings.

The probes are asked about settings (widths, channel counts, batch sizes, seeds) that a student
must not know in advance, or a notebook could carry answers for exactly those. Drawing them
afresh for every run kept them secret but made grades depend on the draw: a DenseBlock that sums
instead of concatenating passes the setting with one layer, so its points moved between 41 and
42 of 50 from one `--force` regrade to the next, and two students with that same mistake could
get different totals. So the settings come from a key instead: the same for every student and
every run of one course (a regrade gives the same grades, a mistake costs everyone the same),
unpredictable without the key, which stays on the grading machine (mode 0600, never mounted in
the sandbox). Results still answer a nonce drawn per run, so files written in advance count for
nothing.

The key lives in `<course>/.dlgrade/settings.key` (git-ignored course data), or, for folders
graded outside a course, in `$XDG_STATE_HOME/dlgrade/settings.key` (`~/.local/state`). Delete it
to draw new settings: the next run regrades everyone, since the run fingerprint covers it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_NAME = "settings.key"
KEY_BYTES = 32


class SettingsKeyError(RuntimeError):
    """The key file exists but is not a key this grader wrote."""


@dataclass(frozen=True)
class SettingsSeed:
    seed: int  # seeds the random.Random the check set draws its settings from
    digest: str  # identifies the seed in the run fingerprint without revealing it
    path: Path  # the key file it came from


def key_path(course: Path | None) -> Path:
    """Where the settings key of `course` (or of loose folders, when None) is kept."""
    if course is not None:
        return course / ".dlgrade" / KEY_NAME
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "dlgrade" / KEY_NAME


def load_key(path: Path) -> bytes:
    """The key in `path`, written first (atomically, mode 0600) when there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
        try:
            os.link(tmp, path)  # fails if another run wrote one meanwhile: theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as f:
        text = f.read(4 * KEY_BYTES).strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SettingsKeyError(
            f"{path} is not a settings key ({2 * KEY_BYTES} hex digits): delete it for a new one"
        )
    return key


def settings_seed(course: Path | None, assignment: str) -> SettingsSeed:
    """The seed of `assignment`'s probe settings in `course` (a course without a key gets one)."""
    path = key_path(course)
    mac = hmac.new(load_key(path), f"probe settings\0{assignment}".encode(), "sha256").digest()
    digest = hashlib.sha256(b"fingerprint\0" + mac).hexdigest()
    return SettingsSeed(int.from_bytes(mac[:16], "big"), digest, path)
