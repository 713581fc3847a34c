"""A fresh process's set-up (session 20, s20-start): first-use tables that are made only when asked for."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.stages import language as lang


def test_the_langdetect_profile_map_makes_its_ngram_dict_only_when_asked() -> None:
    # the stage's own path goes by the n-grams' gram_table: a dict of ~88k n-grams made in every process
    # (~12 ms) was never read; langdetect's questions (`in`, `[]`, len) still get langdetect's answers
    factory = lang._factory()
    profile_map = factory.word_lang_prob_map
    saved = lang._ProfileMap.from_bytes(profile_map.to_bytes("key"), "key")
    assert saved is not None and "row" not in vars(saved)
    gram = saved.grams[1234]
    assert gram in saved and "no such n-gram" not in saved and len(saved) == len(saved.grams)
    assert saved[gram].tobytes() == profile_map[gram].tobytes()
    assert saved.row[gram] == 1234 and np.count_nonzero(saved[gram]) > 0


def test_the_upper_case_table_is_str_isupper_and_comes_from_the_saved_case_table(monkeypatch) -> None:
    # it was built from str.isupper in every process (~3-5 ms); now it is the saved case table's bit
    lang._upper_table.cache_clear()
    asked = []
    case_table = lang._case_table
    monkeypatch.setattr(lang, "_case_table", lambda: asked.append(1) or case_table())
    try:
        table = lang._upper_table()
    finally:
        lang._upper_table.cache_clear()
    want = np.fromiter(map(str.isupper, map(chr, range(0x10000))), dtype=np.bool_, count=0x10000)
    assert asked == [1] and table.dtype == np.bool_ and np.array_equal(table, want)


def test_boilerplates_breadcrumb_table_is_saved_per_roots_read_back_and_rebuilt_when_damaged(
    tmp_path, monkeypatch
) -> None:
    # built in every process (~5 ms: a case-insensitive scan of the BMP); now saved beside the package under a
    # name that holds the roots and heads it was built for
    from pipeline.stages import boilerplate

    monkeypatch.setattr(boilerplate, "_TABLE_CACHE_DIR", tmp_path)
    args = (frozenset({"Home", "Startseite", "Accueil"}), frozenset("HSA"), frozenset({">", "»"}))
    boilerplate._crumb_classes.cache_clear()
    built = boilerplate._crumb_classes(*args)
    [saved] = tmp_path.glob("boilerplate_crumbs-*.npy")
    boilerplate._crumb_classes.cache_clear()
    real_regex = boilerplate.regex
    monkeypatch.setattr(boilerplate, "regex", None)  # (building again would fail)
    read = boilerplate._crumb_classes(*args)
    assert read.dtype == np.uint8 and np.array_equal(read, built) and read.flags.writeable
    monkeypatch.setattr(boilerplate, "regex", real_regex)
    other = boilerplate._crumb_classes(frozenset({"Inicio"}), frozenset("I"), None)
    assert len(list(tmp_path.glob("boilerplate_crumbs-*.npy"))) == 2 and not np.array_equal(other, built)
    last = boilerplate.kernels.CRUMB_ROOT_LAST
    assert other[ord("o")] & last and not built[ord("o")] & last and built[ord("e")] & last
    data = bytearray(saved.read_bytes())
    data[-1] ^= 0xFF  # a flipped bit in the table: found by the digest, built and saved again
    saved.write_bytes(bytes(data))
    boilerplate._crumb_classes.cache_clear()
    assert np.array_equal(boilerplate._crumb_classes(*args), built)
    assert saved.read_bytes() != bytes(data)
    boilerplate._crumb_classes.cache_clear()


def test_the_langdetect_profile_map_is_saved_with_its_gram_table_made_by_the_code_its_key_names(
    tmp_path, monkeypatch
) -> None:
    # the gram table (~10 ms) and the n-gram list it was made from (~5 ms) were made in every process that
    # detects with langdetect; the saved copy holds the table, under a key that holds the code making it
    from pipeline.stages import language_kernels

    key, _ = lang._profile_cache_key()
    built = lang._ProfileMap.build(*_langdetect_map())
    data = built.to_bytes(key)
    assert data is not None
    loaded = lang._ProfileMap.from_bytes(data, key)
    assert loaded is not None
    keys, ids = loaded.gram_table()
    assert "grams" not in vars(loaded) and "row" not in vars(loaded)  # (neither list nor dict made)
    want_keys, want_ids = language_kernels.gram_table(built.grams)
    assert np.array_equal(keys, want_keys) and np.array_equal(ids, want_ids)
    assert keys.flags.writeable and ids.flags.writeable  # (the kernels' compiled signature)
    assert loaded.grams == built.grams and len(loaded) == len(built.grams)
    monkeypatch.setattr(language_kernels, "_GOLDEN", language_kernels._GOLDEN + np.uint64(2))
    assert lang._profile_cache_key()[0] != key  # another hash: another table, another file


def _langdetect_map() -> tuple[dict, list]:
    reference = lang._reference_factory()
    return reference.word_lang_prob_map, reference.langlist


def test_a_saved_profile_map_without_its_gram_table_or_with_a_wrong_one_is_built_again(tmp_path) -> None:
    # a copy in the earlier form (no table) or with a table of another type under the same key is not used
    import io

    from pipeline.stages.base import cached_build

    key, _ = lang._profile_cache_key()
    built = lang._ProfileMap.build(*_langdetect_map())
    good = np.load(io.BytesIO(built.to_bytes(key)))
    forms = {
        "no table": {k: good[k] for k in good.files if not k.startswith("table_")},
        "wrong type": {**{k: good[k] for k in good.files}, "table_keys": good["table_keys"].astype(np.int64)},
    }
    for name, arrays in forms.items():
        saved = io.BytesIO()
        np.savez(saved, **arrays)
        path, builds = tmp_path / f"{name}.npz", []
        path.write_bytes(saved.getvalue())
        got = cached_build(
            path,
            lambda d: lang._ProfileMap.from_bytes(d, key),
            lambda builds=builds: builds.append(1) or built,
            lambda m: m.to_bytes(key),
        )
        assert got is built and builds == [1], name
        assert lang._ProfileMap.from_bytes(path.read_bytes(), key) is not None  # (saved again, whole)


def test_distinct_sorted_is_np_unique_for_values_without_nan() -> None:
    # np.unique imports numpy.ma (~4 ms of a fresh process) to ask whether its argument is masked
    from pipeline.stages.text_kernels import distinct_sorted

    rng = np.random.default_rng(26)
    cases = [
        rng.integers(0, 50, 1000, dtype=np.int64),
        rng.integers(0, 2**64 - 1, 300, dtype=np.uint64, endpoint=True),
        rng.integers(0, 0x20000, 500).astype(np.uint32),
        np.round(rng.normal(size=400), 1),  # floats (a tree ensemble's thresholds), -0.0 and 0.0 among them
        np.array([-0.0, 0.0, 1.5, -0.0]),
        rng.integers(0, 5, (7, 9)),  # flattened, as np.unique does
        np.array([7], dtype=np.int16),
        np.array([], dtype=np.uint64),
    ]
    for values in cases:
        got, want = distinct_sorted(values), np.unique(values)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_dedups_random_draws_are_saved_beside_the_package_read_back_and_drawn_again_when_damaged(
    tmp_path, monkeypatch
) -> None:
    # numpy.random (~4-7 ms to import) is imported only when the draws are not saved yet
    from pipeline.stages import dedup

    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path)
    stage = dedup.DedupStage(dedup.DedupOptions(num_perm=64, seed=7))
    a, b = dedup.affine32_permutations(64, 7)
    assert np.array_equal(stage.hasher.a_flat, a) and np.array_equal(stage.hasher.b_flat, b)
    assert stage.hasher.a.dtype == stage.hasher.b.dtype == np.uint32
    for index in (stage.units, stage.docs):
        row_mult, band_salt = dedup.band_hashing(index.rows, index.bands)
        assert index._row_mult.tobytes() == row_mult.tobytes() and index._band_salt.tobytes() == band_salt.tobytes()
    saved = sorted(tmp_path.glob("dedup_*.npy"))
    assert saved[0].name.startswith("dedup_affine32-") and {p.name.split("-")[0] for p in saved[1:]} == {"dedup_bands"}
    monkeypatch.setattr(np, "random", None)  # (drawing again would fail)
    again = dedup.DedupStage(dedup.DedupOptions(num_perm=64, seed=7))
    assert again.hasher.a_flat.tobytes() == a.tobytes() and again.docs._band_salt.tobytes() == band_salt.tobytes()
    assert again.hasher.a.flags.writeable and again.units._row_mult.flags.writeable
    data = bytearray(saved[0].read_bytes())
    data[-1] ^= 0xFF  # a flipped bit: found by the digest, drawn and saved again
    saved[0].write_bytes(bytes(data))
    with pytest.raises(AttributeError):  # (drawn again: no numpy.random above)
        dedup.DedupStage(dedup.DedupOptions(num_perm=64, seed=7))
    monkeypatch.undo()
    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path)
    assert np.array_equal(dedup.DedupStage(dedup.DedupOptions(num_perm=64, seed=7)).hasher.a_flat, a)
    assert saved[0].read_bytes() != bytes(data)
    with pytest.raises(ValueError, match=r"Seed must be between 0 and 2\*\*32 - 1"):  # as numpy said it before
        dedup.DedupStage(dedup.DedupOptions(seed=-1))


def test_the_saved_profile_map_is_read_by_its_path_and_a_damaged_copy_is_built_again(tmp_path) -> None:
    # read by the path (no copy of the whole 7.3 MB file in bytes first); each array's CRC-32 still finds a flip
    from pipeline.stages.base import cached_build

    key, _ = lang._profile_cache_key()
    built = lang._ProfileMap.build(*_langdetect_map())
    path = tmp_path / "map.npz"
    path.write_bytes(built.to_bytes(key))
    read = lang._ProfileMap.from_bytes(path, key)
    assert read is not None and read.grams == built.grams and read.probs.flags.writeable
    assert all(np.array_equal(a, b) for a, b in zip(read.gram_table(), built.gram_table(), strict=True))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    builds: list[int] = []
    got = cached_build(
        path,
        lambda saved: lang._ProfileMap.from_bytes(saved, key),
        lambda: builds.append(1) or built,
        lambda m: m.to_bytes(key),
        by_path=True,
    )
    assert got is built and builds == [1] and lang._ProfileMap.from_bytes(path, key) is not None  # (saved again)
