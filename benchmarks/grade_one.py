"""Time the grading of one reference submission: the grader's CLI next to `nbgrader autograde`.

    python benchmarks/grade_one.py [--assignment res_dense_nets] [--repeat 3]

Both are timed as whole commands (start-up included), on the same submission, one after the
other, so run it on an otherwise idle machine. The grader's time includes the sandbox and the
accuracy check on the full test split; nbgrader's includes executing the notebook in a kernel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.manifest import load_manifest
from solutions.submission import write_submission

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="res_dense_nets")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    manifest = load_manifest(args.assignment)
    with tempfile.TemporaryDirectory(prefix="bench-one-") as tmp:
        course = Path(tmp)
        submission = course / "submitted" / "alice" / manifest.id
        write_submission(manifest, submission)
        shutil.copy(REPO / "nbgrader_config.py", course)
        shutil.copytree(REPO / "source" / manifest.id, course / "source" / manifest.id)
        timed(["nbgrader", "generate_assignment", manifest.id, "--force"], course)  # set-up
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "grader",
                        "grade",
                        str(submission),
                        "--no-gradebook",
                        "--assignment",
                        manifest.id,
                        "--quiet",
                    ],
                    REPO,
                )
            )
            theirs.append(
                timed(["nbgrader", "autograde", manifest.id, "--create", "--force"], course)
            )
    print(f"one {manifest.id} submission, {os.cpu_count()} CPU cores, {args.repeat} runs each")
    print(f"{'command':<40} {'min s':>7} {'median s':>9} {'max s':>7}")
    for name, times in (("python -m grader grade", ours), ("nbgrader autograde", theirs)):
        print(f"{name:<40} {min(times):7.1f} {statistics.median(times):9.1f} {max(times):7.1f}")
    print(f"grader / nbgrader (median): {statistics.median(ours) / statistics.median(theirs):.2f}")


if __name__ == "__main__":
    main()
