"""Read a class's notebooks as the grader reads them, and make each student's document.

Submissions are found by `grader.batch.find_submissions` and read by `grader.staging.stage`
(notebook only): no link is followed, every file's size is checked before it is read, and a
notebook that is a link, too large, not JSON or not a notebook is refused with the reason, as
in grading. Nothing is executed. One student's problem never stops the class: whatever fails
while reading or fingerprinting them leaves that student out, with a note saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm import tqdm

from grader.batch import Submission
from grader.manifest import Manifest
from grader.notebook_io import NotebookError, parse_notebook
from grader.similarity.documents import Document, Release, build_document
from grader.similarity.fingerprints import TokenHasher
from grader.staging import stage
from solutions.paths import RELEASE_DIR


@dataclass
class ClassCode:
    """The documents of the students compared, and what was said about the others."""

    documents: list[Document] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (student, why left out)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (student, note), compared


def release_of(manifest: Manifest, hasher: TokenHasher) -> Release:
    """The handed-out code of `manifest`'s assignment (`release/<id>/<notebook>`)."""
    return Release.from_notebook(RELEASE_DIR / manifest.id / manifest.notebook, hasher)


def read_class(
    submissions: list[Submission], manifest: Manifest, release: Release, hasher: TokenHasher
) -> ClassCode:
    """Every submission's document, or the reason it was left out."""
    found = ClassCode()
    # A bar on a terminal only (disable=None): the command's output stays plain in a pipe.
    for submission in tqdm(submissions, desc=f"reading {manifest.id}", unit="sub", disable=None):
        student = submission.student
        try:
            staged = stage(submission.path, manifest, notebook_only=True)
            notebook = parse_notebook(staged.notebook_name, staged.notebook)
            document = build_document(
                student, notebook.code_cells, notebook.numbers, release, hasher
            )
        except NotebookError as err:
            found.refused.append((student, str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - one student's files must not stop the class
            found.refused.append((student, f"could not be read: {type(err).__name__}: {err}"))
            continue
        notes = [submission.layout_note, *staged.notes, *notebook.warnings]
        found.notes += [(student, note) for note in notes if note]
        found.documents.append(document)
    return found
