"""What each assignment costs in hand-written lines, as a markdown table (README, "Layout").

    python benchmarks/assignment_cost.py

Counted per assignment id (assignments/<id>.toml): its manifest, its own checks
(grader/checks/<id>.py or the package grader/checks/<id>/), its solutions package
(solutions/<id>/*.py: reference code, notebook builder, training), its variants
(tests/fixtures/variants/<id>.py) and its own tests (files under tests/ named after it, fixtures
left out). Lines are `wc -l` lines: docstrings, comments and blank lines included. Generated
files (release, expected answers, weights) are not hand-written and not counted.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("manifest", "own checks", "solutions/<id>", "variants", "own tests")


def lines(paths: list[Path]) -> int:
    """`wc -l` over the files."""
    return sum(len(p.read_text().splitlines()) for p in paths)


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
    print("| assignment | " + " | ".join(COLUMNS) + " | total |")
    print("| --- " * (len(COLUMNS) + 2) + "|")
    for manifest in sorted((REPO / "assignments").glob("*.toml")):
        row = cost(manifest.stem)
        figures = " | ".join(f"{n:,}" for n in row.values())
        print(f"| {manifest.stem} | {figures} | {sum(row.values()):,} |")


if __name__ == "__main__":
    main()
