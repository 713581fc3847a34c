"""dedup's compiled index pieces: the key table with deletions, and the per-document kernels
against their numpy definitions."""

from __future__ import annotations

import tracemalloc
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from pipeline.stages import dedup
from pipeline.stages import dedup_kernels as kernels
from pipeline.stages.dedup import (
    _FOLD_LIMIT,
    _POLY_BASE,
    _POLY_LEN,
    DedupStage,
    KeyTable,
    ShingleHash,
    _casefold_codepoints,
    _codepoints,
    _every_code_point,
    _fmix64,
    _Grow,
    _space_table,
)


def test_key_table_with_collisions_and_deletions_behaves_like_a_first_wins_dict() -> None:
    # Keys that share their low bits collide in the small table: deletions must keep the probe chains.
    rng = np.random.default_rng(3)
    table = KeyTable()
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
    assert len(table) == len(reference)


def test_keys_loaded_answer_as_inserted_ones() -> None:
    # An index loaded from the state (``load``: no mask of the keys added): the same first-wins answers,
    # colliding keys and repeats included, growing the table as it goes; a document's key inserted after
    # them can be deleted again.
    rng = np.random.default_rng(7)
    loaded, inserted = KeyTable(), KeyTable()
    for step in range(60):
        keys = (rng.integers(0, 64, size=30, dtype=np.uint64) << np.uint64(40)) | rng.integers(0, 8, 30, np.uint64)
        values = np.arange(step * 30, step * 30 + 30, dtype=np.int64)
        loaded.load(keys, values)
        inserted.insert(keys, values)
    assert len(loaded) == len(inserted) > 100
    probe = np.concatenate([inserted.slot_keys, np.array([12345], dtype=np.uint64)])
    assert loaded.get_many(probe) == inserted.get_many(probe)
    assert loaded.insert(np.array([99], dtype=np.uint64), 5).tolist() == [True]  # a document's key
    del loaded[99]
    assert 99 not in loaded and len(loaded) == len(inserted)
    with pytest.raises(KeyError):
        del loaded[99]


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


def test_unit_sets_are_each_ranges_sorted_unique_values() -> None:
    # full 32-bit values (every byte of the radix sort matters), repeats, empty and one-value ranges, many ranges
    rng = np.random.default_rng(19)
    pool = rng.integers(0, 2**32, size=400, dtype=np.uint32)
    shingles = np.concatenate([pool, [0, 2**32 - 1, 0, 255, 256, 65535, 65536]]).astype(np.uint32)
    shingles = shingles[rng.integers(0, shingles.size, size=5000)]
    bounds = np.sort(rng.choice(np.arange(1, 5000), size=300, replace=False))
    starts = np.concatenate(([0], bounds, [4990, 4995]))
    ends = np.concatenate((bounds, [4990, 4990, 4996]))  # (an empty range, then a single value)
    values, cuts = kernels.unit_sets(shingles, starts, ends)
    got = [values[cuts[i] : cuts[i + 1]].tolist() for i in range(starts.size)]
    assert got == [np.unique(shingles[s:e]).tolist() for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert values.dtype == np.uint32 and cuts.tolist() == np.cumsum([0] + [len(g) for g in got]).tolist()


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
    # a document of fewer words than that: its whole key too
    _, short = kernels.unit_keys(tokens, raw, starts, ends, words, 61, base, length)
    assert int(short) == _poly_numpy(raw, 0, 60)


def test_line_layout_splits_as_str_split() -> None:
    # (one pass, its arrays made for a line per code point: texts of only newlines, none, one line)
    for text in ("one\n\n \t\u3000\nzwei drei\r\n\u00a0x\n\n", "", "\n", "\n\n\n", "x", " ", "a\nb", "\n x \n"):
        lengths, blank, starts = kernels.line_layout(_codepoints(text), _space_table())
        lines = text.split("\n")
        assert lengths.tolist() == [len(line) for line in lines]
        assert blank.tolist() == [not line or line.isspace() for line in lines]
        assert [text[starts[i] : starts[i + 1] - 1] for i in range(len(lines))] == lines
        assert starts.size == len(lines) + 1 and starts[-1] == len(text) + 1


def _grown_by_putting_back(slot_keys: np.ndarray, slot_values: np.ndarray, old: int) -> tuple[np.ndarray, np.ndarray]:
    """The rehash as it was first written: each entry of the old part, from just after an empty slot,
    taken out and put back with ``ht_put`` (on copies)."""
    keys, values = slot_keys.copy(), slot_values.copy()
    empty = int(np.flatnonzero(values[:old] == kernels.NO_VALUE)[0])
    for step in range(1, old + 1):
        j = (empty + step) % old
        if values[j] != kernels.NO_VALUE:
            value = values[j]
            values[j] = kernels.NO_VALUE
            kernels.ht_put(keys, values, keys[j], value)
    return keys, values


def test_a_table_grown_in_place_finds_every_key() -> None:
    # Probe chains that wrap past the last slot, and keys whose home stays or moves up: every key must
    # keep its value after the arrays are enlarged and rehashed in place.
    rng = np.random.default_rng(11)
    for size in (16, 64, 1024):
        for _ in range(20):
            keys = rng.integers(0, 2**63, size=int(size * 0.7), dtype=np.uint64) << np.uint64(1)
            crowd = keys.size // 2  # homes at the last slots: their chains wrap to the start
            keys[:crowd] = (keys[:crowd] & ~np.uint64(size - 1)) | np.uint64(size - 1 - rng.integers(0, 3))
            keys = np.unique(keys)
            slot_keys = np.zeros(size, np.uint64)
            slot_values = np.full(size, kernels.NO_VALUE, np.uint32)
            kernels.ht_insert(slot_keys, slot_values, keys, np.arange(keys.size))
            for grown in (2 * size, 8 * size):
                old = slot_keys.size
                slot_keys = np.concatenate([slot_keys, np.zeros(grown - old, np.uint64)])
                slot_values = np.concatenate([slot_values, np.full(grown - old, kernels.NO_VALUE, np.uint32)])
                want_keys, want_values = _grown_by_putting_back(slot_keys, slot_values, old)
                kernels.ht_grow_in_place(slot_keys, slot_values, old)
                # the slots every entry taken out and put back (ht_put) gives: entries at their new home stay
                assert np.array_equal(slot_values, want_values)
                assert np.array_equal(
                    slot_keys[slot_values != kernels.NO_VALUE], want_keys[want_values != kernels.NO_VALUE]
                )
                found = [kernels.ht_get(slot_keys, slot_values, k) for k in keys]
                assert found == list(range(keys.size))
                assert (slot_values != kernels.NO_VALUE).sum() == keys.size
                assert kernels.ht_get(slot_keys, slot_values, np.uint64(1)) == -1  # odd: never inserted


def test_key_table_grows_without_a_second_table() -> None:
    # Growing used to build a new table beside the old one (plus copies of the old entries): the
    # peak of a large run. In place, the memory allocated while growing is the grown table alone.
    table = KeyTable()
    table.insert(np.arange(1, 700_001, dtype=np.uint64), 1)  # 2**20 slots
    tracemalloc.start()
    try:
        table.insert(np.arange(700_001, 760_001, dtype=np.uint64), 2)  # past 70% full: 2**21 slots
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grown = table.slot_keys.nbytes + table.slot_values.nbytes
    assert table.slot_keys.size == 1 << 21 and peak < 1.1 * grown
    assert table.get_many(np.array([1, 700_000, 760_000, 760_001], np.uint64)) == [1, 1, 2, None]


@pytest.mark.parametrize("remapped", [0, 1 << 40])
def test_key_table_grown_into_new_arrays_or_in_place_keeps_every_value(
    monkeypatch: pytest.MonkeyPatch, remapped: int
) -> None:
    # Tables below 32 MB grow into new arrays (realloc would copy them anyway), larger ones in place:
    # either way every key keeps its first value, deleted keys stay gone and the table stays usable.
    monkeypatch.setattr(dedup, "_REMAPPED", remapped)
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 2**63, size=20_000, dtype=np.uint64))
    keys[: keys.size // 4] |= np.uint64(1023)  # crowded homes: chains that wrap past the last slot
    keys = np.unique(keys)
    rng.shuffle(keys)
    table = KeyTable()
    for part in np.array_split(keys, 40):  # grown 5 times on the way
        table.insert(part, np.arange(part.size) + len(table))
    table.delete(keys[::7])
    table.insert(keys[:5], 10**6)  # keys present keep their values, deleted ones come back
    assert table.slot_keys.size == 1 << 15 and len(table) == keys.size - keys[::7].size + 1
    want = np.arange(keys.size)
    want[::7] = -1
    want[0] = 10**6
    assert np.array_equal(table.lookup(keys), want)


def test_index_arrays_grow_without_a_copy() -> None:
    # The concatenated shingle sets are the largest array of the index: growing it must not hold
    # the old and a new array at once.
    tracemalloc.start()  # before the array exists: its memory is traced too
    try:
        values = _Grow(np.uint32)
        values.append(np.arange(4_000_000, dtype=np.uint32))
        tracemalloc.reset_peak()
        values.append(np.arange(values.data.size - values.size + 1, dtype=np.uint32))  # one past the end
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.2 * values.data.nbytes  # a copy would allocate the grown array and keep the old one
    assert np.array_equal(values.view()[:4_000_000], np.arange(4_000_000, dtype=np.uint32))
    rows = _Grow(np.uint32, 4)
    for i in range(1000):
        rows.append(np.full((1, 4), i, np.uint32))
    assert np.array_equal(rows.view()[:, 0], np.arange(1000)) and rows.view().shape == (1000, 4)


def test_kernels_start_without_importing_scipy_linalg() -> None:
    """numba's BLAS probe would import all of scipy.linalg at the first kernel call of every process
    (text_kernels hides it); each stage's kernels still compile and run, and scipy.linalg still
    imports afterwards."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.stages import boilerplate, dedup_kernels\n"
        "boilerplate._shape_flags()\n"
        "import numpy as np\n"
        "keys, values = np.zeros(8, np.uint64), np.full(8, dedup_kernels.NO_VALUE, np.uint32)\n"
        "assert dedup_kernels.ht_put(keys, values, np.uint64(5), np.uint32(7))\n"
        "assert dedup_kernels.ht_get(keys, values, np.uint64(5)) == 7\n"
        "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg imported'\n"
        "import scipy.linalg\n"
        "print(float(scipy.linalg.det([[2.0, 0.0], [0.0, 3.0]])))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6.0"


def test_casefold_on_code_points_is_str_casefold() -> None:
    # Every code point (the folds to two and three: ß, İ, ΐ), lone surrogates, and a text of them.
    every = _every_code_point() + "\ud800x\udfff"
    assert np.array_equal(_casefold_codepoints(_codepoints(every)), _codepoints(every.casefold()))
    text = "Straße İstanbul ΰ ﬃ ǰ ŉ Größe\nAΣ ΣΑΣ 𐐀 𞤀 ＡＢ"
    assert _casefold_codepoints(_codepoints(text)).tobytes().decode("utf-32-le") == text.casefold()
    assert all(chr(c).casefold() == chr(c) for c in range(_FOLD_LIMIT, 0x110000))  # (the table stops there)


def test_words_fold_case_as_they_read_as_the_folded_copy_would() -> None:
    # _nb_words folds each code point as it reads it, and copies the folded text first only for a text with
    # a code point that folds to several (ß -> ss): both as _nb_words given the folded code points.
    from pipeline.stages import dedup

    fold, several = dedup._fold_tables()
    is_sep, mapping = dedup._char_tables(True, True)
    tables = (dedup._written_breaks(), dedup._solo_table())
    table, points = fold.astype(np.int64), np.arange(_FOLD_LIMIT)
    assert not (table[: dedup._NB_FIRST_CHANGING] & kernels.FOLD_SEVERAL).any()  # (the kernel skips them)
    assert not tables[1][table[: dedup._NB_FIRST_CHANGING]].any() and (points[table != points] >= 0x41).all()
    texts = [
        _every_code_point(),
        "Straße İstanbul ΰ ﬃ ǰ ŉ Größe\nAΣ ΣΑΣ 𐐀 𞤀 ＡＢ 北京ﬀ时间 ภาษา\n\n",  # folds to several
        "Ünïcödé ÀÉÎ 12:30 北京时间昨天晚上 ΣΑΣ ＡＢ Ωmega ǅ\n 东京a\n\nabc 東京, 大阪 ภาษาไทย",  # to one each
        "",
    ]
    for text in texts:
        cp = _codepoints(text)
        for split_solo in (True, False):
            for mapped, table in ((True, mapping), (False, dedup._NO_MAPPING)):
                want = dedup._nb_words(
                    _casefold_codepoints(cp),
                    is_sep,
                    table,
                    mapped,
                    *tables,
                    split_solo,
                    dedup._NO_FOLD,
                    dedup._NO_SEVERAL,
                    dedup._NO_LUT,
                )
                # and read through the table of the code points below _LUT_SIZE (the folded copy's too)
                lut = dedup._nb_word_lut(is_sep, table, mapped, *tables, fold)
                for given in (dedup._NO_LUT, lut):
                    got = dedup._nb_words(cp, is_sep, table, mapped, *tables, split_solo, fold, several, given)
                    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), (text[:20], split_solo)
    lut = dedup._nb_word_lut(is_sep, mapping, True, *tables, fold)
    assert dedup._nb_words(_codepoints("AB Cd"), is_sep, mapping, True, *tables, True, fold, several, lut)[2].size == 2
    # (a fold of a code point the table covers is itself: the folded copy may be read through it)
    below = table[: dedup._LUT_SIZE]
    single = below[(below & int(kernels.FOLD_SEVERAL)) == 0]
    assert (fold[single] == single).all()


def test_casefold_tables_are_saved_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.stages import dedup

    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path)
    scanned = dedup._fold_changes()
    assert [p.name for p in tmp_path.iterdir()] == [f"dedup_casefold-{unicodedata.unidata_version}.npz"]
    assert all(np.array_equal(a, b) for a, b in zip(dedup._fold_changes(), scanned, strict=True))  # read back
    monkeypatch.setattr(dedup, "_scan_fold_changes", None)  # (read, not scanned again)
    assert all(np.array_equal(a, b) for a, b in zip(dedup._fold_changes(), scanned, strict=True))
    several = "".join(map(chr, scanned[2].tolist()))
    assert len(several.casefold()) > len(several) and all(len(c.casefold()) > 1 for c in several)
