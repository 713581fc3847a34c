"""dedup's compiled index pieces: the two-tier key table with deletions, and the per-document kernels
against their numpy definitions."""

from __future__ import annotations

import numpy as np

from pipeline.stages import dedup_kernels as kernels
from pipeline.stages.dedup import (
    _POLY_BASE,
    _POLY_LEN,
    DedupStage,
    KeyTable,
    ShingleHash,
    _codepoints,
    _fmix64,
    _space_table,
)


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
    no_raw, words = np.empty(0, np.uint64), ends - starts
    keys, whole = kernels.unit_keys(tokens, no_raw, starts, ends, words, 0, np.uint64(_POLY_BASE), np.uint64(_POLY_LEN))
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


def test_unit_keys_take_the_raw_tokens_below_the_word_count() -> None:
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, 2**64, size=60, dtype=np.uint64)
    raw = rng.integers(0, 2**64, size=60, dtype=np.uint64)
    starts, ends, words = np.array([0, 10, 40]), np.array([10, 40, 60]), np.array([10, 30, 20])
    base, length = np.uint64(_POLY_BASE), np.uint64(_POLY_LEN)
    keys, whole = kernels.unit_keys(tokens, raw, starts, ends, words, 25, base, length)
    assert keys.tolist() == [_poly_numpy(raw, 0, 10), _poly_numpy(tokens, 10, 40), _poly_numpy(raw, 40, 60)]
    assert int(whole) == _poly_numpy(tokens, 0, 60)
    none, _ = kernels.unit_keys(tokens, np.empty(0, np.uint64), starts, ends, words, 25, base, length)
    assert none.tolist() == [_poly_numpy(tokens, s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def test_line_layout_splits_as_str_split() -> None:
    text = "one\n\n \t\u3000\nzwei drei\r\n\u00a0x\n\n"
    lengths, blank, starts = kernels.line_layout(_codepoints(text), _space_table())
    lines = text.split("\n")
    assert lengths.tolist() == [len(line) for line in lines]
    assert blank.tolist() == [not line or line.isspace() for line in lines]
    assert [text[starts[i] : starts[i + 1] - 1] for i in range(len(lines))] == lines
