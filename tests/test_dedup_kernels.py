"""dedup's compiled index pieces: the two-tier key table with deletions, and the per-document kernels
against their numpy definitions."""

from __future__ import annotations

import numpy as np

from pipeline.stages import dedup_kernels as kernels
from pipeline.stages.dedup import _POLY_BASE, _POLY_LEN, DedupStage, KeyTable, ShingleHash, _fmix64


def test_key_table_with_collisions_and_deletions_behaves_like_a_first_wins_dict() -> None:
    # Keys that share their low bits collide in the small table: deletions must keep the probe chains.
    rng = np.random.default_rng(3)
    table = KeyTable(compact_at=40)
    reference: dict[int, int] = {}
    for step in range(300):
        keys = (rng.integers(0, 64, size=25, dtype=np.uint64) << np.uint64(40)) | rng.integers(0, 8, 25, np.uint64)
        added = table.insert(keys, step)
        new = [k for k in dict.fromkeys(keys.tolist()) if k not in reference]
        assert sorted(keys[added].tolist()) == sorted(new)
        if step % 5 == 0:  # a rolled-back document
            table.delete(keys[added])
        else:
            reference.update(dict.fromkeys(new, step))
        probe = np.array(list(reference) + [12345], dtype=np.uint64)
        assert table.get_many(probe) == [reference.get(k) for k in probe.tolist()]
        table.compact()
    assert len(table) == len(reference) and table.runs > 0


def _poly_numpy(tokens: np.ndarray, start: int, end: int) -> int:
    acc, power = 0, 1
    for t in tokens[start:end].tolist():
        acc = (acc + t * power) % 2**64
        power = power * _POLY_BASE % 2**64
    return int(_fmix64(np.array([(acc + (end - start) * _POLY_LEN) % 2**64], dtype=np.uint64))[0])


def test_document_kernels_equal_their_definitions() -> None:
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 2**64, size=200, dtype=np.uint64)
    starts, ends = np.array([0, 7, 50, 199]), np.array([7, 30, 50, 200])
    keys, whole = kernels.poly_keys(tokens, starts, ends, np.uint64(_POLY_BASE), np.uint64(_POLY_LEN))
    assert keys.tolist() == [_poly_numpy(tokens, s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert int(whole) == _poly_numpy(tokens, 0, 200)
    sh = ShingleHash("word", 5)
    mult = np.array(sh.mult, dtype=np.uint64)
    want = sum(tokens[k : k + 196] * mult[k] for k in range(5)) >> np.uint64(32)
    assert np.array_equal(sh.vectorized(tokens), want.astype(np.uint32))
    shingles = rng.integers(0, 50, size=300, dtype=np.uint32)
    values, cuts = kernels.unit_sets(shingles, np.array([0, 100, 120]), np.array([100, 100, 300]))
    assert [values[cuts[i] : cuts[i + 1]].tolist() for i in range(3)] == [
        np.unique(shingles[0:100]).tolist(),
        [],
        np.unique(shingles[120:300]).tolist(),
    ]
    index = DedupStage().units
    sigs = rng.integers(0, 2**32, size=(4, 128), dtype=np.uint32)
    x = sigs[:, : index.bands * index.rows].reshape(4, index.bands, index.rows).astype(np.uint64)
    assert np.array_equal(index.band_key_array(sigs), _fmix64((x * index._row_mult).sum(axis=2) + index._band_salt))
