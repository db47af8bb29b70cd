"""What each assignment costs in hand-written lines, as a markdown table (README, "Layout").

    python benchmarks/assignment_cost.py

Counted per assignment id (assignments/<id>.toml): its manifest, its own checks
(grader/checks/<id>.py or the package grader/checks/<id>/), its solutions package
(solutions/<id>/*.py: reference code, notebook builder, training), its variants
(tests/fixtures/variants/<id>.py) and its own tests (files under tests/ named after it, fixtures
left out). Lines are `wc -l` lines: docstrings, comments and blank lines included. Generated
files (release, expected answers, weights) are not hand-written and not counted.

The last column is not part of the total: the lines of the cells of the source notebook
(source/<id>/<id>.ipynb, generated from solutions/<id>), i.e. how much of the solutions
package is what the notebook holds (instructions, specifications, solution and test code).
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("manifest", "own checks", "solutions/<id>", "variants", "own tests")


def lines(paths: list[Path]) -> int:
    """`wc -l` over the files."""
    return sum(len(p.read_text().splitlines()) for p in paths)


def notebook_lines(assignment: str) -> int:
    """Lines of every cell of the assignment's source notebook."""
    notebook = json.loads((REPO / "source" / assignment / f"{assignment}.ipynb").read_text())
    return sum(len("".join(cell["source"]).splitlines()) for cell in notebook["cells"])


def cost(assignment: str) -> dict[str, int]:
    """Hand-written lines of one assignment, by column of COLUMNS."""
    checks = REPO / "grader" / "checks"
    own = sorted((checks / assignment).glob("*.py")) or [
        p for p in [checks / f"{assignment}.py"] if p.exists()
    ]
    tests = [
        p
        for p in sorted((REPO / "tests").rglob(f"*{assignment}*.py"))
        if "fixtures" not in p.relative_to(REPO / "tests").parts
    ]
    return dict(
        zip(
            COLUMNS,
            (
                lines([REPO / "assignments" / f"{assignment}.toml"]),
                lines(own),
                lines(sorted((REPO / "solutions" / assignment).glob("*.py"))),
                lines([REPO / "tests" / "fixtures" / "variants" / f"{assignment}.py"]),
                lines(tests),
            ),
            strict=True,
        )
    )


def main() -> None:
    print("| assignment | " + " | ".join(COLUMNS) + " | total | the notebook's cells |")
    print("| --- " * (len(COLUMNS) + 3) + "|")
    for manifest in sorted((REPO / "assignments").glob("*.toml")):
        row = cost(manifest.stem)
        figures = " | ".join(f"{n:,}" for n in row.values())
        total, cells = sum(row.values()), notebook_lines(manifest.stem)
        print(f"| {manifest.stem} | {figures} | {total:,} | {cells:,} |")


if __name__ == "__main__":
    main()
