"""Throughput on a whole class of every assignment: the grader with --jobs 2 next to nbgrader.

    python benchmarks/grade_class.py [--size 60] [--assignment ID ...] [--skip-nbgrader]

For each assignment (all of them by default) builds an nbgrader course of `--size`
submissions: the reference submission, its buggy and correct variants
(tests/fixtures/variants/<id>.py), the release handed in untouched and, for res_dense_nets, the
hostile submissions nbgrader too can survive (tests/fixtures/hostile.py), in turn; then grades
the `submitted/` tree from scratch with `python -m grader grade --jobs 2` (every check, the
sandbox, the accuracy pass on the test split) and with `nbgrader autograde`, and prints one row
per assignment, in submissions per minute. An assignment whose data set is not on the machine
is graded on generated stand-ins (`python -m solutions data --fixtures`), and its row says so.
Run it on an otherwise idle machine: nbgrader executes every notebook in a kernel.
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

from grader.manifest import assignment_ids, load_manifest  # noqa: E402
from solutions.data import DATA_ENV, DataNotFoundError, resolve_root  # noqa: E402
from solutions.paths import RELEASE_DIR  # noqa: E402
from solutions.submission import write_submission  # noqa: E402
from tests.conftest import write_fixture  # noqa: E402
from tests.fixtures import hostile, variants  # noqa: E402

# Hostile fixtures that nbgrader, which runs notebooks unsandboxed, can survive on this machine
# without harm to it; the rest (bombs, daemons, writes outside the submission, a 2 GiB file it
# would copy) stay out of the benchmark class, and are covered by the test suite instead.
SAFE_UNDER_NBGRADER = (
    "neutered_asserts",
    "silenced_tracebacks",
    "patched_tensor_eq",
    "patched_tensor_sum",
    "patched_module_eval",
    "patched_cuda",
    "patched_import",
    "redefined_grader_helpers",
    "sys_exit",
    "exit_builtin",
    "os_exit",
    "sigkill_self",
    "infinite_loop",
    "huge_output_line",
    "stderr_warnings",
    "opens_network",
    "mangled_grade_cells",
    "inflated_points",
    "grade_cell_as_markdown",
    "prefilled_outputs",
    "replayed_test_labels",
    "invalid_json",
    "non_utf8_markdown",
    "schema_invalid",
    "ten_thousand_cells",
    "malicious_pickle_weights",
)


def build_class(course: Path, assignment: str, size: int) -> dict[str, int]:
    """Write `size` submissions under course/submitted/; how many of each kind."""
    manifest = load_manifest(assignment)
    reference = course / "reference-template"
    write_submission(manifest, reference)
    makers = [("reference", lambda folder: shutil.copytree(reference, folder))]
    for name in variants.variants_of(assignment):
        makers.append(("variant", lambda f, n=name: variants.write_variant(n, f, assignment)))
    release = RELEASE_DIR / assignment / manifest.notebook

    def untouched(folder: Path) -> None:
        folder.mkdir(parents=True)
        shutil.copy(release, folder / manifest.notebook)

    makers.append(("untouched", untouched))
    if assignment == hostile.ASSIGNMENT:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            targets = hostile.Targets.create(course / "targets", sock.getsockname()[1])
        for name in SAFE_UNDER_NBGRADER:

            def attack(folder: Path, n=name) -> None:
                shutil.copytree(hostile.build(n, course / "hostile", targets, reference), folder)

            makers.append(("hostile", attack))
    kinds: dict[str, int] = {}
    for index, (kind, make) in zip(range(size), itertools.cycle(makers), strict=False):
        make(course / "submitted" / f"s{index:03d}-{kind}" / assignment)
        kinds[kind] = kinds.get(kind, 0) + 1
    shutil.rmtree(reference)
    return kinds


def data_env(assignment: str, root: Path) -> tuple[dict[str, str], str]:
    """The environment to grade with, and "real" or "stand-ins"."""
    dataset = load_manifest(assignment).dataset
    try:
        resolve_root(dataset, online=False)
        return {}, "real"
    except DataNotFoundError:
        write_fixture(root, dataset)
        return {DATA_ENV: str(root)}, "stand-ins"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
    return time.perf_counter() - started


def grade_row(assignment: str, size: int, skip_nbgrader: bool) -> tuple:
    with tempfile.TemporaryDirectory(prefix=f"bench-{assignment}-") as tmp:
        course = Path(tmp)
        env, data = data_env(assignment, course / "data")
        kinds = build_class(course, assignment, size)
        command = [sys.executable, "-m", "grader", "grade", str(course / "submitted")]
        command += ["--assignment", assignment, "--jobs", "2", "--quiet", "--no-gradebook"]
        grader_s = timed(command, REPO, env)
        nbgrader_s = None
        if not skip_nbgrader:
            shutil.copy(REPO / "nbgrader_config.py", course)
            shutil.copytree(REPO / "source" / assignment, course / "source" / assignment)
            timed(["nbgrader", "generate_assignment", assignment, "--force"], course, env)
            nbgrader_s = timed(
                ["nbgrader", "autograde", assignment, "--create", "--force"], course, env
            )
    return assignment, data, kinds, grader_s, nbgrader_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--assignment", nargs="+", default=assignment_ids())
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    rows = []
    for assignment in args.assignment:
        rows.append(grade_row(assignment, args.size, args.skip_nbgrader))
        print(f"{assignment}: {rows[-1][3]:.0f} s", file=sys.stderr, flush=True)
    print(
        f"\nclasses of {args.size} submissions, {os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'assignment':<16} {'data':<10} {'grader --jobs 2':>22} {'nbgrader autograde':>22}")
    for assignment, data, kinds, grader_s, nbgrader_s in rows:
        grader = f"{grader_s:5.0f} s {args.size / grader_s * 60:6.1f}/min"
        other = f"{nbgrader_s:5.0f} s {args.size / nbgrader_s * 60:6.1f}/min" if nbgrader_s else "-"
        print(f"{assignment:<16} {data:<10} {grader:>22} {other:>22}")
        print(f"{'':<16} {', '.join(f'{n} {k}' for k, n in kinds.items())}")


if __name__ == "__main__":
    main()
