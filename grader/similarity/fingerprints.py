"""Winnowing: the fingerprints of a token sequence, as MOSS takes them.

Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting"
(SIGMOD 2003). Every run of `k` consecutive tokens (a k-gram) is hashed; in every window of `w`
consecutive k-gram hashes the smallest is kept (the rightmost one on ties, each position once).
Two documents that share a run of at least `k + w - 1` tokens then share a fingerprint (the
guarantee); runs shorter than `k` tokens (noise: `x = 0`) never count.

The hashes are deterministic (a token's hash is a digest of its text, a k-gram's a polynomial
over its tokens' hashes, modulo 2**64), so a class compared twice gives the same figures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

NOISE_TOKENS = 12  # k: a match shorter than this many tokens is noise
GUARANTEE_TOKENS = 20  # k + w - 1: a match this long is always found
_BASE = np.uint64(0x100000001B3)  # odd multiplier of the k-gram polynomial (FNV's prime)


class TokenHasher:
    """64-bit hashes of token texts, remembered for one run (token texts repeat a lot)."""

    def __init__(self):
        self._known: dict[str, int] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        known = self._known
        out = np.empty(len(texts), dtype=np.uint64)
        for i, text in enumerate(texts):
            value = known.get(text)
            if value is None:
                digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
                value = known[text] = int.from_bytes(digest, "little")
            out[i] = value
        return out


def kgram_hashes(token_hashes: np.ndarray, k: int) -> np.ndarray:
    """Hash of every k-gram: (n,) token hashes -> (n - k + 1,) (empty when n < k)."""
    n = len(token_hashes) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for j in range(k):
            out = out * _BASE + token_hashes[j : j + n]
    return out


def winnow(hashes: np.ndarray, w: int) -> np.ndarray:
    """Positions of the fingerprints among `hashes` (robust winnowing, ascending): in every
    window of `w` hashes the smallest, the rightmost on ties; a document shorter than one
    window keeps its smallest hash."""
    if len(hashes) == 0:
        return np.empty(0, dtype=np.int64)
    if len(hashes) <= w:
        return np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))])
    windows = sliding_window_view(hashes, w)  # (n - w + 1, w), a view
    rightmost = w - 1 - np.argmin(windows[:, ::-1], axis=1)  # argmin takes the first: reversed
    return np.unique(np.arange(len(windows)) + rightmost)


def _members(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """(n,) bool: which `values` are in `sorted_set` (a sorted array)."""
    if not len(sorted_set) or not len(values):
        return np.zeros(len(values), dtype=bool)
    nearest = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[nearest] == values


def fingerprint(
    token_hashes: np.ndarray,
    boilerplate: np.ndarray | None = None,
    k: int = NOISE_TOKENS,
    w: int = GUARANTEE_TOKENS - NOISE_TOKENS + 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fingerprints of one token sequence, leaving out every k-gram that `boilerplate` (a
    sorted array of k-gram hashes) holds: (hashes, start positions, handed out), the last a
    (n,) bool array marking the tokens inside some boilerplate k-gram."""
    grams = kgram_hashes(token_hashes, k)
    in_boilerplate = _members(grams, boilerplate if boilerplate is not None else grams[:0])
    handed_out = np.zeros(len(token_hashes), dtype=bool)
    for j in range(min(k, len(token_hashes))):  # a k-gram covers its k tokens
        handed_out[j : j + len(grams)] |= in_boilerplate
    positions = winnow(grams, w)
    positions = positions[~in_boilerplate[positions]]
    return grams[positions], positions, handed_out
