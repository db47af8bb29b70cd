"""Time `python -m grader similarity` on generated classes of 50, 100 and 200 students.

    python benchmarks/similarity.py [--sizes 50 100 200] [--assignment res_dense_nets]

Each class is an nbgrader `submitted/` tree of notebooks (no weights: similarity reads the code
alone), generated from `tests/fixtures/`: a third copies of the reference or of a variant as
handed in (buggy or correct), each disguised at random (names, cell and function order,
comments, line wrapping: `tests/fixtures/disguise.py`); a third the same without disguise;
a third "independent": each solution cell taken from a correct variant or the reference,
chosen at random cell by cell (the fixtures hold only a few independently written versions of
each cell), then disguised. The whole command is timed (start-up, reading, fingerprinting, index,
regions, CSV, histogram and HTML report), once per size, as wall-clock seconds and as the CPU
seconds the command used (which a busy machine changes far less). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fixtures live in the tests package of the checkout

import nbformat  # noqa: E402

from grader.manifest import load_manifest  # noqa: E402
from tests.fixtures.disguise import COPIES, class_of, disguise, write_class  # noqa: E402

HOW = sorted(set().union(*COPIES.values()))


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _mixed(pool: list[nbformat.NotebookNode], rng: random.Random) -> nbformat.NotebookNode:
    """The reference's notebook with each solution cell taken from a random member of `pool`."""
    notebook = nbformat.from_dict(pool[0])
    versions: dict[str, list[str]] = {}
    for member in pool:
        for cell in member.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                versions.setdefault(_grade_id(cell), []).append(cell.source)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = rng.choice(versions[_grade_id(cell)])
    return notebook


def build(course: Path, assignment: str, size: int, seed: int = 0) -> None:
    """Write a class of `size` students (see the module's docstring) under course/submitted/."""
    rng = random.Random(seed)
    students = class_of(load_manifest(assignment))
    handed_in = [nb for name, nb in students.items() if name.startswith(("variant_", "ref"))]
    correct = [students["reference"]] + [
        students[f"variant_{n[4:]}"] for n in students if n.startswith("own_")
    ]
    notebooks = {}
    for index in range(size):
        kind = index % 3
        if kind == 2:
            base = _mixed(correct, rng)
        else:
            base = rng.choice(handed_in)
        if kind != 1:
            how = set(rng.sample(HOW, rng.randint(1, len(HOW))))
            base = disguise(base, how, seed=index)
        notebooks[f"student{index:04d}"] = base
    write_class(course, assignment, notebooks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--assignment", default="res_dense_nets")
    args = parser.parse_args()
    print(f"{'students':>8}  {'pairs':>7}  {'wall s':>7}  {'CPU s':>6}  first line of the output")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="dlgrade-similarity-") as tmp:
            course = Path(tmp)
            build(course, args.assignment, size)
            started = time.perf_counter()
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "grader",
                    "similarity",
                    str(course / "submitted"),
                    "--csv",
                    str(course / "pairs.csv"),
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
                check=True,
            )
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        first = result.stdout.splitlines()[0]
        print(f"{size:>8}  {size * (size - 1) // 2:>7}  {seconds:>7.1f}  {used:>6.1f}  {first}")


if __name__ == "__main__":
    main()
