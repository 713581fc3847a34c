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
