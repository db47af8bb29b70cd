"""One student's code as a fingerprinted document, with the release's code left out.

The code handed out in the release is not the student's: a cell equal to a release cell (a
provided cell, a visible test) is not compared at all, and every k-gram of the release's code
(its provided cells and the template lines of its solution cells: signatures, docstrings,
`if GRADING:` blocks) is boilerplate, removed from every student's fingerprints. An untouched
release notebook therefore has no fingerprint left, and scores 0 against everyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.notebook_io import normalise
from grader.similarity.fingerprints import NOISE_TOKENS, TokenHasher, fingerprint, kgram_hashes
from grader.similarity.tokens import CellTokens, Names, cell_tokens, identifiers, names_of


@dataclass(frozen=True)
class Document:
    """A student's compared cells and their fingerprints (one row per fingerprint)."""

    student: str
    cells: tuple[str, ...]  # source of each compared cell, as handed in
    cell_numbers: tuple[int, ...]  # each cell's position in the notebook, counting from 1
    tokens: tuple[CellTokens, ...]
    handed_out: tuple[np.ndarray, ...]  # per cell, (tokens,) bool: inside a release k-gram
    hashes: np.ndarray  # (m,) uint64 fingerprint hashes, boilerplate left out
    cell: np.ndarray  # (m,) int64: which cell each fingerprint is in
    start: np.ndarray  # (m,) int64: its first token in that cell

    def unique_hashes(self) -> np.ndarray:
        return np.unique(self.hashes)


class Release:
    """The release notebook's code, and its k-grams as boilerplate for a student's names."""

    def __init__(self, sources: list[str], hasher: TokenHasher, k: int = NOISE_TOKENS):
        self.sources = [s for s in sources if s.strip()]
        self.normalised = {normalise(s) for s in self.sources}
        self.names = names_of(self.sources)
        # A student who binds a name the release uses without binding it (a library name, a
        # keyword argument), or imports a name it uses as something else, changes how the
        # release's code reads for them; nothing else does.
        self._written = set().union(*map(identifiers, self.sources))
        self._free = self._written - self.names.bound - set(self.names.aliases)
        self._hasher, self._k = hasher, k
        self._boilerplate: dict[tuple, np.ndarray] = {}

    @classmethod
    def from_notebook(cls, path: Path, hasher: TokenHasher) -> Release:
        """The code cells of the release notebook (the course's own file, trusted)."""
        data = json.loads(path.read_text())
        sources = []
        for cell in data["cells"]:
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                sources.append("".join(source) if isinstance(source, list) else source)
        return cls(sources, hasher)

    def boilerplate(self, names: Names) -> np.ndarray:
        """Every k-gram hash of the release's code, tokenized with `names` (sorted)."""
        key = (
            frozenset(names.bound & self._free),
            frozenset(
                (alias, module)
                for alias, module in names.aliases.items()
                if alias in self._written and self.names.aliases.get(alias) != module
            ),
        )
        if key not in self._boilerplate:
            grams = [
                kgram_hashes(self._hasher(cell_tokens(s, names).texts), self._k)
                for s in self.sources
            ]
            self._boilerplate[key] = np.unique(np.concatenate([*grams, np.empty(0, np.uint64)]))
        return self._boilerplate[key]


def build_document(
    student: str, code_cells: list[str], numbers: list[int], release: Release, hasher: TokenHasher
) -> Document:
    """The student's own cells (not empty, not equal to a release cell), tokenized with the
    names they and the release bind, fingerprinted with the release's code left out."""
    kept = [
        (number, source)
        for number, source in zip(numbers, code_cells, strict=True)
        if source.strip() and normalise(source) not in release.normalised
    ]
    sources = [source for _, source in kept]
    names = release.names | names_of(sources)
    boilerplate = release.boilerplate(names)
    tokens, handed_out, hashes, cells, starts = [], [], [], [], []
    for index, source in enumerate(sources):
        cell = cell_tokens(source, names)
        found, positions, template = fingerprint(hasher(cell.texts), boilerplate)
        tokens.append(cell)
        handed_out.append(template)
        hashes.append(found)
        cells.append(np.full(len(found), index, dtype=np.int64))
        starts.append(positions.astype(np.int64))
    empty = [np.empty(0, np.uint64)], [np.empty(0, np.int64)]
    return Document(
        student,
        tuple(sources),
        tuple(number for number, _ in kept),
        tuple(tokens),
        tuple(handed_out),
        np.concatenate(hashes + empty[0]),
        np.concatenate(cells + empty[1]),
        np.concatenate(starts + empty[1]),
    )
