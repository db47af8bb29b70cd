"""Throughput on a whole class: the grader with --jobs 1 and 2, next to `nbgrader autograde`.

    python benchmarks/grade_class.py [--size 60] [--skip-nbgrader]

Builds an nbgrader course of `--size` res_dense_nets submissions: a third reference
submissions, a third buggy variants (tests/fixtures/variants.py), a third hostile ones
(tests/fixtures/hostile.py: hangs, crashes, exits, bombs, forged outputs, bad files...), then
grades the same `submitted/` tree three times from scratch and prints submissions per minute.
Every check, the sandbox and the 10,000-image accuracy check run each time. Run it on an
otherwise idle machine; it takes a while (nbgrader executes every notebook in a kernel).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fixtures live in the tests package of the checkout

from grader.manifest import load_manifest  # noqa: E402
from solutions.submission import write_submission  # noqa: E402
from tests.fixtures import hostile, variants  # noqa: E402

ID = "res_dense_nets"
# Hostile fixtures that nbgrader, which runs notebooks unsandboxed, can survive on this machine
# without harm to it; the rest (bombs, daemons, writes outside the submission, a 2 GiB file it
# would copy) stay out of the benchmark class, and are covered by the test suite instead.
SAFE_UNDER_NBGRADER = (
    "neutered_asserts", "silenced_tracebacks", "patched_tensor_eq", "patched_tensor_sum",
    "patched_module_eval", "patched_cuda", "patched_import", "redefined_grader_helpers",
    "sys_exit", "exit_builtin", "os_exit", "sigkill_self", "infinite_loop", "huge_output_line",
    "stderr_warnings", "opens_network", "mangled_grade_cells", "inflated_points",
    "grade_cell_as_markdown", "prefilled_outputs", "replayed_test_labels", "invalid_json",
    "non_utf8_markdown", "schema_invalid", "ten_thousand_cells", "malicious_pickle_weights",
)  # fmt: skip


def build_class(course: Path, size: int) -> list[str]:
    """Write `size` submissions under course/submitted/; return a kind per student."""
    manifest = load_manifest(ID)
    reference = course / "reference-template"
    write_submission(manifest, reference)
    buggy = [v.name for v in variants.variants_of(ID).values() if not v.correct]
    attacks = [n for n in SAFE_UNDER_NBGRADER if n in hostile.BUILDERS]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        targets = hostile.Targets.create(course / "targets", sock.getsockname()[1])
    kinds = []
    names = itertools.cycle(["reference", "buggy", "hostile"])
    buggy_iter, hostile_iter = itertools.cycle(buggy), itertools.cycle(attacks)
    for index in range(size):
        kind = next(names)
        student = f"s{index:03d}-{kind}"
        folder = course / "submitted" / student / ID
        if kind == "reference":
            shutil.copytree(reference, folder)
        elif kind == "buggy":
            variants.write_variant(next(buggy_iter), folder, ID)
        else:
            name = next(hostile_iter)
            built = hostile.build(name, course / "hostile", targets, reference)
            shutil.copytree(built, folder)
        kinds.append(kind)
    shutil.rmtree(reference)
    return kinds


def fresh(course: Path) -> None:
    """Forget every earlier grading of the course."""
    for path in ("autograded", "gradebook.db", "feedback"):
        target = course / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        course = Path(tmp)
        kinds = build_class(course, args.size)
        print(
            f"class of {args.size}: "
            + ", ".join(f"{kinds.count(k)} {k}" for k in ("reference", "buggy", "hostile"))
        )
        for jobs in (1, 2):
            fresh(course)
            seconds = timed(
                [sys.executable, "-m", "grader", "grade", str(course / "submitted"),
                 "--assignment", ID, "--jobs", str(jobs), "--quiet"],
                REPO,
            )  # fmt: skip
            rows.append((f"python -m grader grade --jobs {jobs}", seconds))
            print(f"{rows[-1][0]}: {seconds:.0f} s", flush=True)
        if not args.skip_nbgrader:
            fresh(course)
            shutil.copy(REPO / "nbgrader_config.py", course)
            shutil.copytree(REPO / "source" / ID, course / "source" / ID)
            timed(["nbgrader", "generate_assignment", ID, "--force"], course)  # set-up, untimed
            seconds = timed(["nbgrader", "autograde", ID, "--create", "--force"], course)
            rows.append(("nbgrader autograde", seconds))
    print(f"\n{args.size} submissions, {os.cpu_count()} CPU cores")
    print(f"{'command':<36} {'seconds':>8} {'submissions/min':>16}")
    for name, seconds in rows:
        print(f"{name:<36} {seconds:8.0f} {args.size / seconds * 60:16.1f}")
    if len(rows) == 3:
        best = min(rows[:2], key=lambda r: r[1])
        print(f"best grader run vs nbgrader: {rows[2][1] / best[1]:.1f}x the throughput")


if __name__ == "__main__":
    main()
