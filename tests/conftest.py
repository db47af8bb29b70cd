"""Fixtures shared by the whole suite: the reference submission and the real grader CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solutions.manifest import load_manifest
from solutions.submission import write_submission

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    module: str, *args: str, timeout: float = 900, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` the way an operator would; output captured as text."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def grade(
    *paths: Path, extra: tuple[str, ...] = (), assignment: str = "res_dense_nets", tmp: Path
) -> list[dict]:
    """Grade `paths` with the real CLI; return the JSON reports (always a list)."""
    out = tmp / f"reports-{os.getpid()}-{len(list(tmp.glob('reports-*')))}.json"
    result = run_cli(
        "grader",
        "grade",
        *map(str, paths),
        "--assignment",
        assignment,
        "--json",
        str(out),
        "--quiet",
        *extra,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    return data if isinstance(data, list) else [data]


def points(report: dict) -> dict[str, tuple[float, float, str]]:
    """check name -> (points, max points, message)."""
    return {c["name"]: (c["points"], c["max_points"], c["message"]) for c in report["checks"]}


@pytest.fixture(scope="session")
def manifest():
    return load_manifest("res_dense_nets")


@pytest.fixture(scope="session")
def reference_submission(tmp_path_factory, manifest) -> Path:
    """The reference submission of res_dense_nets, as `python -m solutions submission` writes it."""
    folder = tmp_path_factory.mktemp("reference") / "res_dense_nets"
    write_submission(manifest, folder)
    return folder


@pytest.fixture(scope="session")
def reference_report(tmp_path_factory, reference_submission) -> dict:
    """The reference submission graded once by the CLI, shared by the tests that read it."""
    return grade(reference_submission, tmp=tmp_path_factory.mktemp("reference-report"))[0]
