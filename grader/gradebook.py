"""Write grader results where nbgrader's tools look for them.

For each student: the grade of every grade cell in nbgrader's gradebook (SQLite or any database
URL nbgrader accepts, PostgreSQL included), and an autograded notebook in
`autograded/<student>/<id>/` whose grade cells carry the grader's messages, so that formgrader
and `nbgrader generate_feedback` work as after `nbgrader autograde`. Writing twice gives the same
rows: grades are updated in place, never added again. Only final reports are written as grades;
the late penalty goes where nbgrader's AssignLatePenalties puts it (the submitted notebook's
`late_submission_penalty`), and the grade cells' maximum scores follow the manifest.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import warnings
from pathlib import Path

import nbformat
import nbgrader
from nbgrader.api import Base, Gradebook, MissingEntry
from nbgrader.preprocessors import (
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
    SaveCells,
)

from grader.lateness import NO_PENALTY, LatePolicy
from grader.manifest import Manifest
from grader.notebook_io import normalise
from grader.report import Report
from grader.safe_fs import read_capped
from grader.sanitise import NotebookSanitiser
from solutions.paths import RELEASE_DIR, SOURCE_DIR


def sqlite_url(course_root: Path) -> str:
    return f"sqlite:///{course_root.resolve() / 'gradebook.db'}"


@functools.cache
def _alembic_head() -> str:
    """The revision nbgrader's migrations end at, which a new gradebook is stamped with."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def create_if_new(url: str) -> None:
    """A gradebook with no tables yet gets them as nbgrader's `Gradebook` makes them: its tables
    and the migrations' head in `alembic_version`. nbgrader reads that head by running the
    `alembic heads` command, 3.6 s here; it is read in this process instead."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url, future=True)
    try:
        with engine.begin() as connection:
            if inspect(connection).get_table_names():
                return
            Base.metadata.create_all(connection)
            connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
            connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                {"head": _alembic_head()},
            )
    finally:
        engine.dispose()


def ensure_assignment(url: str, manifest: Manifest) -> None:
    """Record the assignment's cells in the gradebook as `nbgrader generate_assignment` does,
    and keep each grade cell's maximum score equal to the manifest's points for that cell."""
    notebook = Path(manifest.notebook).stem
    create_if_new(url)
    with Gradebook(url) as gb:
        gb.update_or_create_assignment(manifest.id)
        try:
            gb.find_notebook(notebook, manifest.id)
            for cell, checks in manifest.cells().items():
                points = round(sum(c.points for c in checks), 4)
                if gb.find_grade_cell(cell, notebook, manifest.id).max_score != points:
                    gb.update_or_create_grade_cell(cell, notebook, manifest.id, max_score=points)
            return
        except MissingEntry:  # a new notebook, or a grade cell it did not have
            pass
    # nbgrader's own pipeline adds them (and refuses, as nbgrader does, to change the cells of
    # a notebook that has submissions).
    nb = nbformat.read(SOURCE_DIR / manifest.id / manifest.notebook, as_version=4)
    resources = {"nbgrader": {"assignment": manifest.id, "notebook": notebook, "db_url": url}}
    # The part of generate_assignment's pipeline that fills the database, with its defaults.
    for step in (LockCells(), ClearSolutions(), ClearOutput(), ComputeChecksums(), SaveCells()):
        nb, resources = step.preprocess(nb, resources)


def submitted_at(folder: Path):
    """nbgrader's `timestamp.txt` of a submission folder (a naive UTC datetime, or None when
    there is none or it is not a time), read as untrusted data: a regular
    file (not a link: it could name a root-only file), at most a few hundred bytes (a 16 GiB
    sparse file there would otherwise be read whole into the grader's memory)."""
    from nbgrader.utils import parse_utc

    try:
        text = read_capped(folder / "timestamp.txt", MAX_TIMESTAMP_BYTES)
        return parse_utc(text.decode("utf-8", "replace").strip())
    except Exception:  # noqa: BLE001 - a missing or odd timestamp is no reason to lose a grade
        return None


MAX_TIMESTAMP_BYTES = 256


def cell_scores(manifest: Manifest, report: Report) -> dict[str, float]:
    """Points per grade cell: the sum of the points of the checks the manifest puts there."""
    earned = {c.name: c.points for c in report.checks}
    return {
        cell: round(sum(earned.get(c.name, 0.0) for c in checks), 4)
        for cell, checks in manifest.cells().items()
    }


def record_grades(
    url: str,
    manifest: Manifest,
    report: Report,
    submission: Path,
    late: LatePolicy = NO_PENALTY,
    student: str | None = None,
) -> tuple[float | None, float, bool]:
    """Create or update the student's submission and set the grade of every grade cell and the
    late penalty. Returns (seconds late or None when no due date is known, penalty, whether the
    assignment has a due date but the submission no `timestamp.txt`).

    `student` is nbgrader's id, the folder name in `submitted/` (by default the report's, which
    is that name made inert for show: the same unless the name holds control characters)."""
    notebook = Path(manifest.notebook).stem
    student = student or report.student
    with Gradebook(url) as gb, warnings.catch_warnings():
        # nbgrader's own autoflush warnings (SQLAlchemy), harmless, as under `nbgrader autograde`.
        warnings.simplefilter("ignore")
        gb.update_or_create_student(student)
        timestamp = submitted_at(submission)
        if timestamp:
            entry = gb.update_or_create_submission(manifest.id, student, timestamp=timestamp)
        else:
            entry = gb.update_or_create_submission(manifest.id, student)
        for cell, score in cell_scores(manifest, report).items():
            grade = gb.find_grade(cell, notebook, manifest.id, student)
            grade.auto_score = score
            # As nbgrader's SaveAutoGrades: a manual grade already given keeps it under review.
            grade.needs_manual_grade = grade.manual_score is not None
        # As nbgrader's AssignLatePenalties: the penalty is kept beside the grades; without a
        # timestamp the submission counts as on time, as there.
        seconds = entry.total_seconds_late if entry.duedate and entry.timestamp else None
        undated = entry.duedate is not None and entry.timestamp is None
        penalty = late.penalty(report.raw_score, seconds or 0.0)
        entered = gb.find_submission_notebook(notebook, manifest.id, student)
        entered.late_submission_penalty = penalty or None
        gb.db.commit()
    return seconds, penalty, undated


def withdraw_grades(url: str, manifest: Manifest, student: str) -> None:
    """A report that is not final: the student's earlier automatic grades, if any, no longer
    stand. They are cleared and marked for manual grading (formgrader lists them); a student
    without a submission in the gradebook gets none."""
    notebook = Path(manifest.notebook).stem
    with Gradebook(url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            entry = gb.find_submission_notebook(notebook, manifest.id, student)
        except MissingEntry:
            return
        for grade in entry.grades:
            grade.auto_score = None
            grade.needs_manual_grade = True
        entry.late_submission_penalty = None
        gb.db.commit()


def _results_outputs(manifest: Manifest, report: Report, cell: str) -> list:
    checks = {c.name: c for c in report.checks}
    lines = []
    for spec in manifest.cells()[cell]:
        result = checks.get(spec.name)
        if result:
            lines.append(
                f"{result.status:>5}  {result.points:g}/{result.max_points:g}  "
                f"{result.name}: {result.message}\n"
            )
    score = cell_scores(manifest, report)[cell]
    return [
        nbformat.v4.new_output("stream", name="stdout", text="".join(lines)),
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": f"{score:g}"}, execution_count=None
        ),
    ]


def _student_notebook(raw: bytes | None) -> nbformat.NotebookNode | None:
    """The submitted notebook as nbformat reads it, cells with odd metadata or sources
    made plain (Colab or an editor may leave strings, lists or numbers where dicts belong).

    Nothing the student wrote stays live HTML (`grader.sanitise`): markdown is kept as sanitised
    HTML, a raw cell becomes a markdown cell showing its text, and code cells lose their outputs
    (HTML, SVG and scripts among them) and attachments; cells are made afresh, keeping only the
    source and the metadata."""
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None
    cells, sanitise = [], NotebookSanitiser()
    for cell in data["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        source = source if isinstance(source, str) else ""
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        meta = {k: v for k, v in meta.items() if k != "nbgrader" or isinstance(v, dict)}
        if cell["cell_type"] == "code":
            node = nbformat.v4.new_code_cell(source)
        else:
            node = nbformat.v4.new_markdown_cell(sanitise(cell["cell_type"], source))
        node.metadata = nbformat.from_dict(meta)
        cells.append(node)
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def autograded_notebook(
    manifest: Manifest, report: Report, submitted: bytes | None
) -> nbformat.NotebookNode:
    """The student's notebook with the release's grade cells in it, each showing its results.

    Grade cells are matched by nbgrader id or by content (Colab may drop metadata); the first
    match is restored from the release and the student's other copies lose their grade metadata;
    grade cells the student deleted are added back at the end.
    """
    release = nbformat.read(RELEASE_DIR / manifest.id / manifest.notebook, as_version=4)
    grade_cells = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in release.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    nb = _student_notebook(submitted)
    if nb is None:  # unreadable: show the release with the results
        nb = copy.deepcopy(release)
    by_source = {normalise(c.source): gid for gid, c in grade_cells.items()}
    placed: set[str] = set()
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id") if meta.get("grade") else None
        gid = gid if isinstance(gid, str) and gid in grade_cells else None
        gid = gid or by_source.get(normalise(cell.get("source", "")))
        if gid and gid not in placed and cell.get("cell_type") == "code":
            cells.append(_filled(grade_cells[gid], manifest, report, gid))
            placed.add(gid)
            continue
        cell.get("metadata", {}).pop("nbgrader", None)
        cells.append(cell)
    missing = [gid for gid in grade_cells if gid not in placed]
    if missing:
        cells.append(nbformat.v4.new_markdown_cell("## Autograder results for cells missing above"))
        cells += [_filled(grade_cells[gid], manifest, report, gid) for gid in missing]
    nb.cells = cells
    for cell in nb.cells:
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nb.metadata.setdefault("kernelspec", release.metadata.get("kernelspec", {}))
    return nb


def _filled(template, manifest: Manifest, report: Report, gid: str):
    cell = copy.deepcopy(template)
    cell.outputs = _results_outputs(manifest, report, gid)
    return cell


def write_autograded(
    folder: Path, manifest: Manifest, report: Report, submitted: bytes | None
) -> Path:
    """Write the autograded notebook into `autograded/<student>/<id>/`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / manifest.notebook
    nb = autograded_notebook(manifest, report, submitted)
    tmp = path.with_suffix(".ipynb.tmp")
    tmp.write_text(json.dumps(nb, indent=1))
    os.replace(tmp, path)
    return path
