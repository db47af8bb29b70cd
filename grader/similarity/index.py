"""Which pairs of students share fingerprints, and how much, without comparing every pair.

The inverted index maps each fingerprint to the students who have it. As a sparse incidence
matrix M (students x distinct fingerprints, 1 where a student has one), each column is one
fingerprint's list of students, and M @ M.T adds, over every fingerprint, one to each pair of
students in its list: the number of fingerprints each pair shares. The work is the sum over
fingerprints of (students who have it) squared, done in compiled code, and only pairs that
share something appear; a pair that shares nothing is never looked at.

A pair's similarity is asymmetric, as MOSS reports it: the share of A's fingerprints that B
has too, and the share of B's that A has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class PairScores:
    """Every pair of students that shares at least one fingerprint (a < b), best first."""

    a: np.ndarray  # (p,) index of the first student
    b: np.ndarray  # (p,) index of the second
    shared: np.ndarray  # (p,) fingerprints the two have in common
    a_in_b: np.ndarray  # (p,) share of a's fingerprints that b has too, 0..1
    b_in_a: np.ndarray  # (p,) share of b's fingerprints that a has too

    def __len__(self) -> int:
        return len(self.a)

    @property
    def best(self) -> np.ndarray:
        """(p,) the larger of the two shares: how a pair is ranked and flagged."""
        return np.maximum(self.a_in_b, self.b_in_a)


def score_pairs(fingerprint_sets: list[np.ndarray]) -> PairScores:
    """Shared fingerprints and both similarities of every pair that shares any, from each
    student's distinct fingerprint hashes; sorted by `best`, then by shared count."""
    n = len(fingerprint_sets)
    sizes = np.array([len(s) for s in fingerprint_sets], dtype=np.int64)
    if n < 2 or sizes.sum() == 0:
        empty = np.empty(0, dtype=np.int64)
        return PairScores(empty, empty, empty, empty.astype(float), empty.astype(float))
    rows = np.repeat(np.arange(n), sizes)
    _, columns = np.unique(np.concatenate(fingerprint_sets), return_inverse=True)
    incidence = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, columns)), shape=(n, columns.max() + 1)
    )
    together = sparse.triu(incidence @ incidence.T, k=1).tocoo()
    a, b = together.row.astype(np.int64), together.col.astype(np.int64)
    shared = together.data.astype(np.int64)
    a_in_b = shared / sizes[a]
    b_in_a = shared / sizes[b]
    order = np.lexsort((-shared, -np.maximum(a_in_b, b_in_a)))
    return PairScores(a[order], b[order], shared[order], a_in_b[order], b_in_a[order])
