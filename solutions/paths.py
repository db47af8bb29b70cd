"""Where things live in the course repository (the project is used from a checkout)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS_DIR = REPO_ROOT / "assignments"
SOURCE_DIR = REPO_ROOT / "source"
RELEASE_DIR = REPO_ROOT / "release"
EXPECTED_DIR = REPO_ROOT / "grader" / "expected"
REPORTS_DIR = REPO_ROOT / "reports"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
