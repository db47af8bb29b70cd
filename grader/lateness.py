"""nbgrader's late penalty, as the course configures it.

nbgrader keeps an assignment's due date in its gradebook (`nbgrader db assignment add ID
--duedate=...`, or formgrader), a student's extension beside it, and the submission's time in
`submitted/<student>/<id>/timestamp.txt`; `nbgrader autograde` then asks the late-submission
plugin (`AssignLatePenalties.plugin_class`, by default `LateSubmissionPlugin`) for a penalty,
which `LateSubmissionPlugin.penalty_method` sets: "none" (the default) or "zero" (late work
scores 0). The grader reads that setting from the course's `nbgrader_config.py` and applies it
the same way; a plugin of the course's own could compute anything, so the grader refuses to
guess it rather than grade late work differently from nbgrader.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "nbgrader_config.py"
METHODS = ("none", "zero")
# How nbgrader's own plugin may be named in a config file.
NBGRADER_PLUGIN = (
    "LateSubmissionPlugin",
    "nbgrader.plugins.LateSubmissionPlugin",
    "nbgrader.plugins.latesubmission.LateSubmissionPlugin",
)


class LatePolicyError(ValueError):
    """The course configures a late penalty the grader cannot apply (one line)."""


@dataclass(frozen=True)
class LatePolicy:
    """nbgrader's `LateSubmissionPlugin.penalty_method`, and the file that set it."""

    method: str = "none"
    source: str = ""

    def penalty(self, score: float, seconds_late: float) -> float:
        """Points taken off a `score` handed in `seconds_late` after the due date; as nbgrader,
        never below 0 nor above the score."""
        if seconds_late > 0 and self.method == "zero":
            return max(0.0, score)
        return 0.0


NO_PENALTY = LatePolicy()  # nbgrader's default
# A report's note where the assignment has a due date but the submission no nbgrader timestamp.
UNDATED = (
    "no timestamp.txt beside the notebook: counted as on time, as nbgrader does, although the "
    "assignment has a due date (collect with `nbgrader collect`, or write the time it was "
    "handed in to submitted/<student>/<assignment>/timestamp.txt, to apply the late policy)"
)


def _plugin_name(value) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def late_policy(course: Path | None) -> LatePolicy:
    """The late policy of the course whose root is `course` (nbgrader's default without a
    course or a config file). LatePolicyError for a plugin or method the grader cannot apply."""
    path = course / CONFIG_FILE if course is not None else None
    if path is None or not path.is_file():
        return NO_PENALTY
    from traitlets.config.loader import PyFileConfigLoader

    # Loading runs the instructor's own file, as every nbgrader command does; whatever it sets
    # in the environment (this course's sets DLGRADE_DATA) stays out of this run's.
    environ = dict(os.environ)
    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    except Exception as err:  # noqa: BLE001 - any error in the file is the operator's to fix
        raise LatePolicyError(f"{path} could not be read: {type(err).__name__}: {err}") from None
    finally:
        with contextlib.suppress(Exception):
            os.environ.clear()
            os.environ.update(environ)
    plugin = config.get("AssignLatePenalties", {}).get("plugin_class")
    if plugin is not None and _plugin_name(plugin) not in NBGRADER_PLUGIN:
        raise LatePolicyError(
            f"{path} sets AssignLatePenalties.plugin_class = {_plugin_name(plugin)}: the grader "
            "applies only nbgrader's LateSubmissionPlugin, not a plugin of the course's own; "
            "grade late work with nbgrader autograde, or remove that setting"
        )
    method = config.get("LateSubmissionPlugin", {}).get("penalty_method", "none")
    if method not in METHODS:
        raise LatePolicyError(
            f"{path} sets LateSubmissionPlugin.penalty_method = {method!r}: nbgrader knows "
            f"only {' and '.join(map(repr, METHODS))}"
        )
    return LatePolicy(method, str(path))
