"""Assignment `mlp_tuning` (sheet 001): standardisation, augmentation, an MLP, a search."""

from solutions.assignment import Assignment
from solutions.mlp_tuning import notebook, reference, search, student

ASSIGNMENT = Assignment(
    id="mlp_tuning",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=reference.figures,
    search=search.search_command,
)
