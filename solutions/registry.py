"""Every assignment of the course, as its package declares it (`solutions/<id>/__init__.py`).

Adding an assignment adds one name here; a test checks that every manifest has its record.
"""

from __future__ import annotations

from grader.manifest import UnknownAssignmentError
from solutions import cifar_cnn_svm, cnn_techniques, fnn_mnist, mlp_tuning, res_dense_nets
from solutions.assignment import Assignment

ASSIGNMENTS: tuple[Assignment, ...] = (
    cifar_cnn_svm.ASSIGNMENT,
    cnn_techniques.ASSIGNMENT,
    fnn_mnist.ASSIGNMENT,
    mlp_tuning.ASSIGNMENT,
    res_dense_nets.ASSIGNMENT,
)


def assignment(assignment_id: str) -> Assignment:
    """The record of `assignment_id`; an unknown id says which ones there are."""
    for found in ASSIGNMENTS:
        if found.id == assignment_id:
            return found
    known = ", ".join(a.id for a in ASSIGNMENTS)
    raise UnknownAssignmentError(f"unknown assignment {assignment_id!r} (known: {known})")


def selected(value: str) -> tuple[Assignment, ...]:
    """Every assignment for "all", else the one named."""
    return ASSIGNMENTS if value == "all" else (assignment(value),)
