"""The matching regions of one pair: which stretch of A's code matches which stretch of B's.

Only the pairs that the table and the report show get here (this costs far more than a count).
Every fingerprint the two share is a pair of positions (a cell of A and a token in it, a cell of
B and a token in it); positions that follow each other in both, a few tokens apart at most, are
one region: a run of copied code, however it was renamed or re-wrapped. Reordered cells or
functions give separate regions, each still found. A region covers its fingerprints' k-grams,
from its first token to the end of its last k-gram, and the source lines those tokens are on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from grader.similarity.documents import Document
from grader.similarity.fingerprints import GUARANTEE_TOKENS, NOISE_TOKENS

MAX_GAP = GUARANTEE_TOKENS + NOISE_TOKENS  # tokens between fingerprints of one region, at most
MAX_OCCURRENCES = 8  # of one fingerprint in one document, paired up (repeated code)


@dataclass(frozen=True)
class Span:
    """Lines `first`..`last` (1-based, inclusive) of compared cell `cell` of a document."""

    cell: int
    first: int
    last: int


@dataclass(frozen=True)
class Region:
    """One run of matching code: where it is in A and where in B."""

    a: Span
    b: Span
    fingerprints: int


@dataclass(frozen=True)
class PairDetail:
    regions: tuple[Region, ...]
    lines_a: int  # distinct lines of A inside some region
    lines_b: int


def _occurrences(doc: Document, shared: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """hash -> [(cell, token), ...] for the shared hashes of `doc`."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    mask = np.isin(doc.hashes, shared)
    for value, cell, start in zip(
        doc.hashes[mask].tolist(), doc.cell[mask].tolist(), doc.start[mask].tolist(), strict=True
    ):
        if len(found[value]) < MAX_OCCURRENCES:
            found[value].append((cell, start))
    return found


def _span(doc: Document, cell: int, first: int, last: int, k: int) -> Span:
    """The lines of tokens `first`..`last + k - 1`, less the release's code at either end (a
    k-gram that reaches into a template line does not make that line a match)."""
    tokens, handed_out = doc.tokens[cell], doc.handed_out[cell]
    end = min(last + k, len(tokens.texts))
    own = np.flatnonzero(~handed_out[first:end])
    if len(own):
        first, end = first + own[0], first + own[-1] + 1
    return Span(cell, tokens.lines[first], tokens.end_lines[end - 1])


def _lines(spans: list[Span]) -> int:
    return len({(s.cell, line) for s in spans for line in range(s.first, s.last + 1)})


def compare(a: Document, b: Document, k: int = NOISE_TOKENS) -> PairDetail:
    """The regions of A and B that match, in A's order, and how many lines each side has in
    them."""
    shared = np.intersect1d(a.hashes, b.hashes)
    in_a, in_b = _occurrences(a, shared), _occurrences(b, shared)
    matches = sorted(
        (pa, pb) for value, places in in_a.items() for pa in places for pb in in_b[value]
    )  # ((cell A, token A), (cell B, token B)), in A's order
    runs: list[list[tuple[tuple[int, int], tuple[int, int]]]] = []
    open_runs: dict[tuple[int, int], list[int]] = defaultdict(list)  # (cell A, cell B) -> runs
    for (cell_a, ta), (cell_b, tb) in matches:
        best, best_skew = None, None
        live = [i for i in open_runs[(cell_a, cell_b)] if ta - runs[i][-1][0][1] <= MAX_GAP]
        open_runs[(cell_a, cell_b)] = live  # a run this far behind can never grow again
        for index in live:
            (_, la), (_, lb) = runs[index][-1]
            da, db = ta - la, tb - lb
            if 0 < da and 0 < db <= MAX_GAP and (best is None or abs(da - db) < best_skew):
                best, best_skew = index, abs(da - db)
        if best is None:
            open_runs[(cell_a, cell_b)].append(len(runs))
            runs.append([((cell_a, ta), (cell_b, tb))])
        else:
            runs[best].append(((cell_a, ta), (cell_b, tb)))
    regions = [
        Region(_span(a, *_ends(run, 0), k), _span(b, *_ends(run, 1), k), len(run))
        for run in _one_to_one(runs, k)
    ]
    return PairDetail(
        tuple(regions), _lines([r.a for r in regions]), _lines([r.b for r in regions])
    )


def _ends(run, side: int) -> tuple[int, int, int]:
    """(cell, first token, last fingerprint's token) of a run on side 0 (A) or 1 (B)."""
    return run[0][side][0], run[0][side][1], run[-1][side][1]


def _one_to_one(runs: list, k: int) -> list:
    """The runs that pair each stretch of code with one stretch only, longest first (greedy
    tiling): code that recurs (every `__init__` starts alike) would otherwise pair each copy
    with every other. Returned in A's order."""
    taken: list[set[tuple[int, int]]] = [set(), set()]  # (cell, token) already paired, per side
    kept = []
    for run in sorted(runs, key=lambda r: (-len(r), r[0])):
        covered = []
        for side in (0, 1):
            cell, first, last = _ends(run, side)
            covered.append({(cell, t) for t in range(first, last + k)})
        if covered[0] & taken[0] or covered[1] & taken[1]:
            continue
        taken[0] |= covered[0]
        taken[1] |= covered[1]
        kept.append(run)
    return sorted(kept, key=lambda r: r[0])
