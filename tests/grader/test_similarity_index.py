"""Winnowing and the fingerprint index (grader/similarity/fingerprints.py, index.py), against
the definitions they implement, on random token sequences."""

from __future__ import annotations

import itertools

import numpy as np

from grader.similarity.fingerprints import (
    GUARANTEE_TOKENS,
    NOISE_TOKENS,
    TokenHasher,
    fingerprint,
    kgram_hashes,
    winnow,
)
from grader.similarity.index import score_pairs


def robust_winnowing(hashes: list[int], w: int) -> list[int]:
    """The paper's definition, window by window: the rightmost minimum, each position once."""
    if len(hashes) <= w:
        low = min(hashes)
        return [max(i for i, h in enumerate(hashes) if h == low)]
    chosen = []
    for start in range(len(hashes) - w + 1):
        window = hashes[start : start + w]
        low = min(window)
        position = start + max(i for i, h in enumerate(window) if h == low)
        if not chosen or chosen[-1] != position:
            chosen.append(position)
    return chosen


def test_does_winnowing_pick_what_the_definition_picks():
    rng = np.random.default_rng(0)
    for n in (1, 3, 8, 9, 50, 400):
        for w in (1, 4, 9):
            # Few distinct values, so that ties (where the rightmost rule matters) are common.
            hashes = rng.integers(0, 6, size=n).astype(np.uint64)
            assert winnow(hashes, w).tolist() == robust_winnowing(hashes.tolist(), w)


def test_does_every_shared_run_of_the_guarantee_length_share_a_fingerprint():
    rng = np.random.default_rng(1)
    hasher = TokenHasher()
    vocabulary = [f"t{i}" for i in range(30)]
    for trial in range(200):
        run = list(rng.choice(vocabulary, size=GUARANTEE_TOKENS))
        a = list(rng.choice(vocabulary, size=rng.integers(0, 40))) + run
        b = run + list(rng.choice(vocabulary, size=rng.integers(0, 40)))
        shared = np.intersect1d(fingerprint(hasher(a))[0], fingerprint(hasher(b))[0])
        assert len(shared), f"trial {trial}: a shared run of {GUARANTEE_TOKENS} tokens was missed"


def test_is_a_run_shorter_than_the_noise_length_never_a_fingerprint():
    hasher = TokenHasher()
    short = [f"s{i}" for i in range(NOISE_TOKENS - 1)]
    a = [f"a{i}" for i in range(30)] + short
    b = short + [f"b{i}" for i in range(30)]
    assert not len(np.intersect1d(fingerprint(hasher(a))[0], fingerprint(hasher(b))[0]))


def test_are_boilerplate_k_grams_left_out():
    hasher = TokenHasher()
    tokens = hasher([f"t{i}" for i in range(60)])
    everything, _, nothing = fingerprint(tokens)
    boilerplate = np.sort(kgram_hashes(tokens[:30], NOISE_TOKENS))
    kept, positions, handed_out = fingerprint(tokens, boilerplate)
    assert 0 < len(kept) < len(everything)
    assert not np.isin(kept, boilerplate).any()
    assert (positions > 30 - NOISE_TOKENS).all()
    assert handed_out[:30].all() and not handed_out[30:].any() and not nothing.any()


def test_are_token_hashes_the_same_in_every_run():
    # A fresh hasher (a new run) gives the same values: a class compared twice scores the same.
    assert TokenHasher()(["nn", "V", ";"]).tolist() == TokenHasher()(["nn", "V", ";"]).tolist()


def test_does_the_index_count_what_comparing_every_pair_counts():
    rng = np.random.default_rng(2)
    # 40 students drawing fingerprints from a small pool, so that many pairs share some; two
    # with none at all.
    sets = [np.unique(rng.integers(0, 300, size=rng.integers(5, 60))) for _ in range(38)]
    sets += [np.empty(0, dtype=np.int64), np.array([10_000, 10_001])]
    scores = score_pairs(sets)
    found = {
        (int(a), int(b)): (int(s), float(ab), float(ba))
        for a, b, s, ab, ba in zip(
            scores.a, scores.b, scores.shared, scores.a_in_b, scores.b_in_a, strict=True
        )
    }
    expected = {}
    for i, j in itertools.combinations(range(len(sets)), 2):
        shared = len(np.intersect1d(sets[i], sets[j]))
        if shared:
            expected[(i, j)] = (shared, shared / len(sets[i]), shared / len(sets[j]))
    assert found.keys() == expected.keys()
    for pair, (shared, ab, ba) in expected.items():
        assert found[pair][0] == shared
        assert np.isclose(found[pair][1], ab) and np.isclose(found[pair][2], ba)
    best = scores.best
    assert (best[:-1] >= best[1:]).all()  # ranked, most similar first
