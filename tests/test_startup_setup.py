"""A fresh process's set-up (session 20, s20-start): first-use tables that are made only when asked for."""

from __future__ import annotations

import numpy as np

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
