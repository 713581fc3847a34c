"""The language stage's compiled loops against the Python/regex definitions they replace, on real
text: lingua sentences of many scripts, mixed with URLs and code tokens."""

from __future__ import annotations

import bisect
import hashlib
import json
import marshal
import math
import random
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from language_reference import best_two, cheap_main, runner_up

from pipeline.stages import language as lang
from pipeline.stages import language_kernels as kernels
from pipeline.stages.base import cached_build, source_of, table_bytes
from pipeline.stages.text_kernels import code_points, fnv1a

SENTENCES = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "lingua-sentences"
needs_sentences = pytest.mark.skipif(not SENTENCES.is_dir(), reason="lingua sentences not available")
CC = SENTENCES.parent / "cc-2019-30-dolma" / "docs.jsonl"
# scripts with combining marks (hi, ta, th), unnamed scripts in other ones' text, CJK, RTL
MIXED = ["en", "ru", "zh", "ja", "ko", "ar", "he", "hi", "ta", "th", "el", "ka", "hy", "vi", "ur", "mn"]


def mixed_text() -> str:
    lines = []
    for code in MIXED:
        lines.extend((SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:40])
    text = "\n".join(lines)
    # URLs, e-mail and code tokens whose runs are dropped; Common ー, lone surrogate, astral Han,
    # Mongolian and Cherokee (scripts the stage does not name: Other)
    return text + "\nsee https://пример.рф/статья and x_y=1 or a@b.org ーカー \ud800 𠀋𠀌 ǅ Ⅻ ᠮᠣᠩᠭᠣᠯ ᏣᎳᎩ"


def regex_runs(text: str) -> list[tuple[int, int, str]]:
    """The script runs as the stage defined them before the compiled scan (`_RUN_RE`)."""
    opaque = lang._opaque_spans(text)
    runs: list[list] = []
    j = 0
    for m in lang._RUN_RE.finditer(text):
        s = m.start()
        while j < len(opaque) and opaque[j][1] <= s:
            j += 1
        if j < len(opaque) and opaque[j][0] <= s < opaque[j][1]:
            continue
        script = m.lastgroup or "Other"
        if runs and runs[-1][2] == script and runs[-1][1] == s:
            runs[-1][1] = m.end()
        else:
            runs.append([s, m.end(), script])
    return [tuple(r) for r in runs]


@needs_sentences
def test_script_runs_match_the_regex_definition():
    text = mixed_text()
    runs = lang.LanguageStage._runs(text)
    assert [tuple(r) for r in runs] == regex_runs(text)
    assert {r.script for r in runs} >= {"Latin", "Cyrillic", "Han", "Kana", "Hangul", "Arabic", "Thai", "Other"}


@needs_sentences
def test_script_runs_of_texts_without_urls_match_the_regex_definition():
    """`_run_rows` of a text without URLs or e-mail addresses takes the code tokens' rows as they are (no
    sort and merge): the same runs as the regex definition, on lines of many scripts with code tokens."""
    code = " x_y=1 foo.bar() a->b::c __init__ ж_x 東京.jp"
    texts = [line + code for line in mixed_text().splitlines()[::7]]
    texts += [json.loads(line)["text"] for line in CC.open(encoding="utf-8")][:150] if CC.is_file() else []
    fast = 0
    for text in texts:
        assert [tuple(r) for r in lang._runs_of_rows(lang._run_rows(text))] == regex_runs(text)
        fast += not ("://" in text or "www." in text or "@" in text) and bool(lang._code_tokens(text))
    assert fast > 50


def word_set_keys(words: set[str] | frozenset[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`line_hits`' keys, masks, Bloom filter and language for a plain word set (no word listed)."""
    table, masks = kernels.listed_key_table(kernels.word_keys(sorted(words)), np.zeros((len(words), 1), dtype=bool))
    return table, masks, kernels.word_bloom(table), 0


def python_hits(low: str, words: set[str], odd: set[str], shortest: int) -> list[tuple[int, int, int, int, int]]:
    """What `line_hits` must return, by str.split per line."""
    out, ls = [], 0
    for line in low.split("\n"):
        le = ls + len(line)
        rows, pos = [], 0
        if le - ls >= shortest:
            for token in line.split():
                at = line.index(token, pos)
                pos = at + len(token)
                shift = next((i for i, c in enumerate(token) if c in odd), -1)
                if token in words:
                    rows.append((ls, le, ls + at, ls + pos, 0, token))
                elif shift >= 0:
                    rows.append((ls, le, ls + at, ls + pos, shift, token))
        if len({r[5] for r in rows}) >= 2:
            out.extend(r[:5] for r in rows)
        ls = le + 1
    return out


@needs_sentences
def test_line_hits_match_str_split():
    text = mixed_text() + "\nthe\u00a0de\u3000la\u2028and el y\u0085los\tder die das, de."
    low = text.lower()
    assert len(low) == len(text)
    words = {"de", "la", "el", "los", "die", "der", "и", "на", "не"}
    odd = {"ñ", "ç", "і", "ї"}
    table = np.zeros(0x500, dtype=bool)
    table[[ord(c) for c in odd]] = True
    for shortest in (1, 7):
        got = kernels.line_hits(code_points(low), *word_set_keys(words), table, shortest, kernels.SPACES).tolist()
        expected = python_hits(low, words, odd, shortest)
        assert [tuple(r) for r in got] == expected
        assert len(expected) > 20
    # line ends: the text's end, empty lines, a line of exactly `shortest` characters, one word twice
    for small in ("", "\n", "de la\n", "de la", "\n\nde la\n\n", "de de\nla la\nde la", "la de\n\u00f1o", "de\nla"):
        for shortest in (0, 1, 5, 6):
            got = kernels.line_hits(code_points(small), *word_set_keys(words), table, shortest, kernels.SPACES).tolist()
            assert [tuple(r) for r in got] == python_hits(small, words, odd, shortest), (small, shortest)
    # an odd letter in ASCII (no listed alphabet lacks one, but the table may mark one): found as the others
    ascii_odd = odd | {"q", "x"}
    table[[ord("q"), ord("x")]] = True
    for shortest in (1, 7):
        got = kernels.line_hits(code_points(low), *word_set_keys(words), table, shortest, kernels.SPACES).tolist()
        assert [tuple(r) for r in got] == python_hits(low, words, ascii_odd, shortest)
    assert python_hits(low, words, ascii_odd, 1) != python_hits(low, words, odd, 1)


def test_spaces_table_is_str_isspace():
    every = [chr(c) for c in range(0x110000)]
    assert [c for c in every if c.isspace()] == [chr(i) for i in kernels.SPACES.nonzero()[0]]


@needs_sentences
def test_compiled_langdetect_trials_give_langdetect_results():
    """Same probabilities and the same generator state after, for texts of many languages, seeds,
    trial counts and a two-language prior."""
    from langdetect.lang_detect_exception import LangDetectException

    reference, factory = lang._reference_factory(), lang._factory()

    def detector(text: str, i: int, factory=factory):
        d = factory.create()
        d.seed, d.n_trial = i % 3, 3 if i % 2 else 7
        if i % 3 == 0:
            d.set_prior_map({"en": 1.0, "de": 1.0})
        d.append(text[:400])
        return d

    texts = ["12345 !!", "x"]
    for path in sorted(SENTENCES.glob("*.txt"))[::5]:
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += [" ".join(lines[i : i + 3]) for i in range(0, 30, 3)] + lines[100:104]
    compared = 0
    for i, text in enumerate(texts):
        try:
            d = detector(text, i, reference)
            expected = [(p.lang, p.prob) for p in d.get_probabilities()], d.random.getstate()
        except LangDetectException:
            with pytest.raises(LangDetectException):
                lang._probabilities(detector(text, i))
            continue
        d = detector(text, i)
        assert ([(p.lang, p.prob) for p in lang._probabilities(d)], d.random.getstate()) == expected
        # the stage's own detectors leave their generator alone: the same probabilities
        d = detector(text, i)
        untouched = d.random.getstate()
        assert [(p.lang, p.prob) for p in lang._probabilities(d, keep_random=False)] == expected[0]
        assert d.random.getstate() == untouched
        compared += 1
    assert compared > 200


@needs_sentences
def test_spread_tokens_are_split_every_step():
    text = mixed_text().lower()
    tokens = text.split()
    for want in (1, 7, 250, 10**6):
        step = max(1, len(tokens) // want)
        rows = kernels.spread_tokens(code_points(text), want, kernels.SPACES).tolist()
        assert [text[s:e] for s, e in rows] == tokens[::step]
    assert kernels.spread_tokens(code_points(" \n\u3000"), 250, kernels.SPACES).shape == (0, 2)


def test_spread_tokens_at_the_texts_ends_and_around_every_space():
    # the branch-free scan: tokens touching the text's ends, one-character tokens and texts, runs of
    # spaces, every str.isspace character (U+3000 the last), U+3001 and astral characters (no spaces)
    spaces = "".join(chr(c) for c in range(0x3002) if chr(c).isspace())
    texts = ["", "a", " ", "a b", " a", "a ", "ab  cd\n", "\u3000x\u3001y\u3000", "\U0001f600 \U0001f600z", spaces]
    texts += [spaces.join("x" * k) + spaces[k % len(spaces)] * (k % 2) for k in range(1, 9)]
    rng = random.Random(0)
    texts += ["".join(rng.choice("ab \n\u3000\u3001\u2028\x1c") for _ in range(60)) for _ in range(40)]
    for text in texts:
        tokens = text.split()
        for want in (0, 1, 2, 3, 250):
            step = max(1, len(tokens) // want) if want else 1
            rows = kernels.spread_tokens(code_points(text), want, kernels.SPACES).tolist()
            assert [text[s:e] for s, e in rows] == tokens[::step], (text, want)


def test_lowercase_is_str_lower():
    # by the table wherever str.lower maps a character to one of its own: every code point (in pieces,
    # lone surrogates included), cased astral letters (Deseret, Adlam), İ (two characters) and Σ (ς or σ by
    # its neighbours) anywhere
    every = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    texts = [every[i : i + 0x8000] for i in range(0, 0x110000, 0x8000)]
    texts.append(texts[0].replace("\u0130", "").replace("\u03a3", ""))  # the first piece by the table too
    texts += ["ΟΔΥΣΣΕΥΣ Σ ΑΣ.", "İstanbul", "x\U00010400\U0001e900y", "", "Ab", "KELVIN \u212a"]
    for text in texts:
        low, low_cps, per_char = lang._lowercase(text, code_points(text))
        assert per_char == ("\u0130" not in text and "\u03a3" not in text)
        assert low == text.lower()
        assert low_cps.tolist() == code_points(text.lower()).tolist()
        assert not low_cps.flags.writeable  # the kernels' one signature, as `code_points` gives
    table = kernels.lower_table()
    assert (table == kernels.NO_LOWER).nonzero()[0].tolist() == [0x130, 0x3A3]
    assert all(chr(c).lower() == chr(c) for c in range(table.size, 0x110000))


def test_listed_key_table_holds_each_words_key_and_nothing_else():
    # Words of several scripts, a lone surrogate and an astral character: the table built from one
    # joined array holds exactly the keys of the words hashed one by one.
    words = sorted(set(mixed_text().lower().split()) | {"\ud800x", "𝔘nicode", "ǆ", "a"})
    table, masks, _, lang_ = word_set_keys(words)
    one_by_one = {int(fnv1a(code_points(w), 0, len(w))) for w in words}
    assert sorted(int(k) for k in table[table != 0]) == sorted(one_by_one)
    assert all(kernels._unlisted(table, masks, np.uint64(k), lang_) for k in one_by_one)
    assert not word_set_keys(set())[0].any()


def python_scores(words: list[str], script: str) -> tuple[dict[str, float], dict[str, int]]:
    """The stage's `_scores` as a dict loop, before `profile_scores` compiled it."""
    from collections import Counter

    prof, index = lang._profiles(), lang._script_index(script)
    delta: dict[str, float] = {}
    hits: dict[str, int] = {}
    for w, k in Counter(words).items():
        for code, d in index.get(w, ()):
            delta[code] = delta.get(code, 0.0) + k * d
            hits[code] = hits.get(code, 0) + k
    n = len(words)
    return {code: n * prof.oov[code] + d for code, d in delta.items()}, hits


@needs_sentences
def test_profile_scores_are_the_dict_loop_sums_bit_for_bit():
    stage = lang.LanguageStage()
    checked = 0
    for code, script in (("en", "Latin"), ("de", "Latin"), ("pl", "Latin"), ("ru", "Cyrillic"), ("ar", "Arabic")):
        lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:200]
        for k in range(0, 200, 10):
            words = [w.strip(lang._STRIP) for w in " ".join(lines[k : k + k // 10 + 1]).lower().split()]
            got, expected = stage._scores(words, script), python_scores(words, script)
            # same floats, and the same key order (ties go to the first language in it)
            assert list(got[0].items()) == list(expected[0].items())
            assert list(got[1].items()) == list(expected[1].items())
            checked += bool(expected[0])
    assert stage._scores([], "Latin") == ({}, {})
    assert checked > 90


def test_script_table_from_package_data_is_the_built_table():
    import json
    from importlib import resources

    path = resources.files("pipeline").joinpath("data", "language", lang._SCRIPT_TABLE_FILE)
    saved = json.loads(path.read_text(encoding="utf-8"))
    built = lang._build_script_table()
    if saved["key"] == lang._script_table_key():  # written with this regex: it must be that table
        assert np.array_equal(lang._read_script_table(Path(str(path)), saved["key"]), built)
    lang._script_table.cache_clear()
    loaded = lang._script_table()
    assert loaded.dtype == np.uint8
    assert np.array_equal(loaded, built)


def test_script_table_for_another_regex_is_built_once_and_cached(tmp_path, monkeypatch):
    # Another regex version than the shipped table's (users upgrade it): the table is built, saved
    # beside the package, and the next process reads that copy; an unwritable place still works.
    key = {**lang._script_table_key(), "regex": "0.0.0-test"}
    monkeypatch.setattr(lang, "_script_table_key", lambda: key)
    monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path / "cache")
    built = lang._build_script_table()
    lang._script_table.cache_clear()
    try:
        assert np.array_equal(lang._script_table(), built)
        cached = lang._script_table_cache(key)
        assert cached.exists()
        assert np.array_equal(lang._read_script_table(cached, key), built)
        assert lang._read_script_table(cached, {**key, "regex": "other"}) is None
        calls = []
        monkeypatch.setattr(lang, "_build_script_table", lambda: calls.append(1) or built)
        lang._script_table.cache_clear()
        assert np.array_equal(lang._script_table(), built) and not calls  # read from the cache
        (tmp_path / "file").write_text("")
        monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path / "file" / "cache")
        lang._script_table.cache_clear()
        assert np.array_equal(lang._script_table(), built) and calls == [1]
    finally:
        lang._script_table.cache_clear()


def _clear_profiles() -> None:
    for cached in (lang._saved_profiles, lang._profiles, lang._script_indexes, lang._frequent_words, lang._score_table):
        cached.cache_clear()


def test_word_profiles_come_from_a_saved_copy_only_when_it_reads(tmp_path, monkeypatch):
    """The word profiles, their by-script indexes and each script's score table and frequent words are saved
    once and read back equal to the ones built from profiles.json (same order, same floats, writable arrays);
    a copy whose SHA-256 does not match (damaged, truncated) is rebuilt, and an unwritable place only means
    building each time."""
    text = resources.files("pipeline").joinpath("data", "language", "profiles.json").read_text(encoding="utf-8")
    built = lang._build_profiles(json.loads(text))
    indexes = lang._build_script_indexes(built)
    monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path)

    def fresh() -> lang._Profiles:
        _clear_profiles()
        got = lang._script_indexes()
        assert got == indexes and list(got) == list(indexes) and list(got["Latin"]) == list(indexes["Latin"])
        for script, index in indexes.items():
            frequent = lang._build_frequent_words(built, index)
            assert lang._frequent_words(script) == frequent and list(lang._frequent_words(script)) == list(frequent)
            want, table = lang._build_score_table(built, index, script), lang._score_table(script)
            assert table.names == want.names and list(table.row.items()) == list(want.row.items())
            for a, b in zip(table[3:], want[3:], strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b) and a.flags.writeable
            assert table.oov.dtype == want.oov.dtype and np.array_equal(table.oov, want.oov)
        return lang._profiles()

    try:
        assert fresh() == built
        [saved] = tmp_path.glob("language_profiles-*.marshal")
        read = fresh()
        assert read == built and list(read.index) == list(built.index) and list(read.words) == list(built.words)
        good = saved.read_bytes()
        data = bytearray(good)
        data[-40] ^= 1  # one bit flipped in the payload: not trusted
        for damaged in (bytes(data), good[:1000], b"\x00not marshal", b""):
            saved.write_bytes(damaged)
            assert fresh() == built
            assert saved.read_bytes() == good  # rebuilt and saved again
        (tmp_path / "file").write_text("")
        monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path / "file" / "cache")
        assert fresh() == built
    finally:
        _clear_profiles()


def test_the_script_tables_are_read_with_the_profiles_not_built_in_each_process(tmp_path, monkeypatch):
    """A process that finds the saved copy does not regroup the profile index by script nor build a script's
    score table and frequent words (~17 ms of every fresh process): the copy holds them, and a good copy of
    other ones shows it is what is read (patching a builder would change the copy's name: its source is part
    of it)."""
    monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path)
    try:
        _clear_profiles()
        lang._script_indexes()
        [saved] = tmp_path.glob("language_profiles-*.marshal")
        script, words, oov, index, _, _, scores = marshal.loads(saved.read_bytes()[32:])
        other_index = {"Latin": {"zz": (("en", 1.0),)}}
        other_frequent = {"Latin": {"zz": frozenset({"en"})}}
        ptr, langs, deltas = np.array([0, 0, 1], dtype=np.int64), np.array([0]), np.array([1.0])
        other_scores = {
            "Latin": (("en",), np.array([-9.0]).tobytes(), {"zz": 1}, ptr.tobytes(), langs.tobytes(), deltas.tobytes())
        }
        payload = marshal.dumps((script, words, oov, index, other_index, other_frequent, other_scores))
        saved.write_bytes(hashlib.sha256(payload).digest() + payload)
        _clear_profiles()
        assert lang._script_index("Latin") == other_index["Latin"]
        assert lang._frequent_words("Latin") == other_frequent["Latin"]
        table = lang._score_table("Latin")
        assert table.names == ("en",) and table.row == {"zz": 1} and table.deltas.tolist() == [1.0]
        assert table.oov.tolist() == [-9.0] and table.ptr.tolist() == [0, 0, 1] and table.langs.flags.writeable
        assert "Cyrillic" not in lang._script_indexes()
        assert lang._frequent_words("Cyrillic") == {}  # a script the copy lacks: built (from nothing here)
        assert scores  # the real copy held every script's table
    finally:
        _clear_profiles()


_BMP_TABLES = {
    "alpha": (lang._alpha_table, kernels.alpha_table),
    "case": (lang._case_table, lang._build_case_table),
    "sentence": (lang._sentence_table, lang._build_sentence_table),
    "word_chars": (lang._word_char_table, lang._pattern_builder(lang._WORD_LETTER_RE)),
    "letters_or_digits": (lang._letter_or_digit_table, lang._pattern_builder(lang._LETTER_OR_DIGIT_RE)),
    "non_latin_letters": (lang._non_latin_letters, lang._pattern_builder(lang._NON_LATIN_LETTER_RE)),
    "letters": (lang._letter_table, lang._pattern_builder(lang._LETTER_RE)),
    "regex_word": (lang._word_table, lang._pattern_builder(lang._WORD_CHAR_RE)),
}


@pytest.mark.parametrize("name", list(_BMP_TABLES))
def test_code_point_tables_come_from_a_saved_copy_only_when_it_reads(name, tmp_path, monkeypatch):
    """Each table by code point is built once and saved (~22 ms of scans in every fresh process for the six),
    then read back equal and writable (a read-only array would make numba compile the kernels again); a
    copy whose bytes are not the ones saved (damaged, truncated) is rebuilt, and an unwritable place only
    means building each time."""
    table, build = _BMP_TABLES[name]
    built = build()
    monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path)

    def fresh() -> np.ndarray:
        table.cache_clear()
        got = table()
        assert got.dtype == built.dtype and np.array_equal(got, built) and got.flags.writeable
        return got

    try:
        fresh()
        [saved] = tmp_path.glob(f"language_{name}-*.npy")
        other = np.zeros_like(built)
        saved.write_bytes(table_bytes(other))  # a good copy of something else: shows the copy is read
        table.cache_clear()
        assert np.array_equal(table(), other)
        data = bytearray(table_bytes(built))
        data[-1] ^= 1  # one bit flipped in the table: not trusted
        for damaged in (bytes(data), bytes(data[:100]), b""):
            saved.write_bytes(damaged)
            fresh()
            assert saved.read_bytes() == table_bytes(built)  # rebuilt and saved again
        (tmp_path / "file").write_text("")
        monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path / "file" / "cache")
        fresh()
    finally:
        table.cache_clear()


def test_a_code_point_table_is_saved_under_a_new_name_when_its_definition_changes(tmp_path, monkeypatch):
    """The saved copy's name covers the builder's source and the patterns it matches: another definition
    never reads the old copy."""
    monkeypatch.setattr(lang, "_CACHE_DIR", tmp_path)
    lang._cached_bmp_table("t", lang._build_case_table)
    lang._cached_bmp_table("t", lang._build_sentence_table)  # another source
    lang._cached_bmp_table("t", lang._build_sentence_table, lang._LETTER_OR_DIGIT_RE)
    lang._cached_bmp_table("t", lang._build_sentence_table, lang._NON_LATIN_LETTER_RE)  # another pattern
    assert len(list(tmp_path.glob("language_t-*.npy"))) == 4
    # the one builder of the pattern tables: its source is the building itself, the pattern keys each table
    # apart, so the same pattern's table is read back and another pattern's is another copy
    lang._pattern_table("p", lang._LETTER_RE)
    lang._pattern_table("p", lang._LETTER_RE)
    lang._pattern_table("p", lang._LETTER_OR_DIGIT_RE)
    assert len(list(tmp_path.glob("language_p-*.npy"))) == 2
    source = source_of(lang._pattern_builder(lang._LETTER_RE).__code__)
    assert source.lstrip().startswith("def build_pattern_table") and source.rstrip().endswith("return table")
    assert "regex.finditer(" in source


def test_pattern_tables_are_their_pattern_on_every_code_point():
    """`_pattern_table` (one builder for every one-character pattern's table) marks exactly the BMP code
    points the pattern matches, V1 set operations included."""
    for pattern in (lang._WORD_LETTER_RE, lang._LETTER_OR_DIGIT_RE, lang._NON_LATIN_LETTER_RE, lang._WORD_CHAR_RE):
        built = lang._pattern_builder(pattern)()
        assert built.dtype == np.bool_ and built.size == 0x10000
        assert built.tolist() == [bool(pattern.fullmatch(chr(c))) for c in range(0x10000)], pattern.pattern


def test_frequent_key_table_holds_the_foreign_set_of_every_language():
    """`_frequent_key_table` (one table per script): for every main language, the keys whose mask lacks
    its bit are exactly the keys of `_foreign_set(main)`, and `_foreign_keys`' Bloom filter is theirs."""
    stage = lang.LanguageStage()
    prof = lang._profiles()
    for main in sorted(prof.script):
        script = prof.script[main]
        if not lang._frequent_words(script):
            continue
        position = lang._score_positions(script)[main]
        table, masks, bloom, lang_ = lang._foreign_keys(script, position)
        assert lang_ == position and all(map(np.array_equal, (table, masks), lang._frequent_key_table(script)))
        bit = np.uint64(1) << np.uint64(position)
        unlisted = table[(table != 0) & ((masks & bit) == 0)]
        expected = kernels.word_keys(sorted(stage._foreign_set(main)))
        assert sorted(unlisted.tolist()) == sorted(set(expected.tolist())), main
        assert (bloom == kernels.word_bloom(word_set_keys(stage._foreign_set(main))[0])).all(), main
    # a key two words share is listed for a language only when it lists both
    keys = np.array([7, 7, 9], dtype=np.uint64)
    table, masks = kernels.listed_key_table(keys, np.array([[1, 1], [0, 1], [1, 0]], dtype=bool))
    assert {int(k): int(m) for k, m in zip(table, masks, strict=True) if k} == {7: 0b10, 9: 0b01}
    assert kernels.word_keys([]).size == 0


def test_foreign_set_is_the_frequent_words_not_only_main_and_not_listed_for_main():
    prof = lang._profiles()
    stage = lang.LanguageStage()
    for main in ("en", "de", "es", "pl", "ru", "uk", "ar"):
        frequent = lang._frequent_words(prof.script[main])
        expected = frozenset(w for w, langs in frequent.items() if langs != {main}) - prof.words[main]
        assert stage._foreign_set(main) == expected
        assert len(expected) > 100


@needs_sentences
def test_spread_sample_is_the_spread_tokens_joined():
    text = mixed_text().lower()
    for want in (1, 7, 250, 10**6):
        rows = kernels.spread_tokens(code_points(text), want, kernels.SPACES).tolist()
        sample = kernels.spread_sample(code_points(text), want, kernels.SPACES)
        assert sample.tobytes().decode("utf-32-le", "surrogatepass") == " ".join(text[s:e] for s, e in rows)
    assert kernels.spread_sample(code_points(" \n\u3000"), 250, kernels.SPACES).size == 0


def test_script_indexes_of_one_pass_are_the_per_script_definitions():
    prof = lang._profiles()
    for script in sorted(set(prof.script.values())):
        index = {}
        for w, entries in prof.index.items():
            mine = tuple(e for e in entries if prof.script[e[0]] == script)
            if mine:
                index[w] = mine
        assert list(lang._script_index(script).items()) == list(index.items())
        frequent: dict[str, set[str]] = {}
        for w, entries in prof.index.items():
            for code, d in entries:
                if len(w) >= 2 and prof.script[code] == script and d + prof.oov[code] >= lang._FREQUENT:
                    frequent.setdefault(w, set()).add(code)
        assert lang._frequent_words(script) == {w: frozenset(v) for w, v in frequent.items()}
    assert len(lang._frequent_words("Latin")) > 1000


def test_is_space_is_str_isspace_for_every_code_point_it_decides():
    got = [c for c in range(0x3001) if kernels._is_space(np.uint32(c), kernels.SPACES)]
    assert got == [c for c in range(0x3001) if chr(c).isspace()]
    assert not kernels._is_space(np.uint32(0x10FFFF), kernels.SPACES)


@needs_sentences
def test_weights_of_the_run_rows_are_the_per_run_sums():
    # capitalised and lowercase runs, CJK, unnamed scripts; one-run and empty texts
    # (compiled with the code points, except a run starting at an astral letter: Deseret 𐐀, 𝐀)
    texts = [mixed_text(), mixed_text().title(), "Ünïcode", "12 + 3", "東京 Tokyo とうきょう", "Ab 𐐀𐐨 ж 𝐀b ǅa"]
    for text in texts:
        rows = lang._run_rows(text)
        expected = lang.LanguageStage._weights(text, lang._runs_of_rows(rows))
        for cps in (None, code_points(text)):
            got = lang.LanguageStage._weights_of_rows(text, rows, cps)
            assert list(got.items()) == list(expected.items())
            assert all(type(v) is float for v in got.values())
    ok, _, _ = kernels.run_weights(lang._run_rows("ж 𐐀"), code_points("ж 𐐀"), lang._case_table(), lang._CJK_CLASSES)
    assert not ok  # the Deseret run's first letter is beyond the case table: Python decides
    assert len(lang.LanguageStage._weights_of_rows(mixed_text(), lang._run_rows(mixed_text()))) >= 8


def test_code_tokens_and_emails_searched_in_windows_are_the_regex_matches():
    """`_code_tokens` / `_emails` search only around their trigger characters; they must find what
    the regexes find over the whole text: on real text, edge cases and random strings of the
    characters that matter (word boundaries after marks, digits of other scripts and astral letters
    (𝐀: a word character the kernel's table lacks, so the regex searches that run), "@" in a row)."""
    import random

    cases = [
        "e.g. x_y=1, a->b, std::vector, ./run.sh --flag, C:\\path\\to, [x]|{y}, $HOME #tag",
        "mail a@b.org, x.y+z@sub.example.co.uk; bad@x, @@a@b.c, a@b@c.com, ж@ж.рф é\u0301a_b",
        "\u0301x_y ٣a_b ж.x 中a.b a.b.c... a_ _a __ :: -> .a .A a. a.",
    ]
    if SENTENCES.is_dir():
        cases.append(mixed_text())
    rng = random.Random(7)
    alphabet = [*"ab_Z9@.-+:/>=<#$[]{}|\\ \n\té\u0301ж中", "::", "->", "a@b.c", "\u00a0", "\u2028", "٣", "𝐀", "😀"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(20_000)]
    for text in cases:
        assert lang._code_tokens(text) == [m.span() for m in lang._CODE_TOKEN_RE.finditer(text)], text
        assert lang._emails(text) == [m.span() for m in lang._EMAIL_RE.finditer(text)], text
        # the compiled runs are the runs of code characters around `_CODE_TRIGGER_RE`'s matches
        runs = []
        for m in lang._CODE_TRIGGER_RE.finditer(text):
            if runs and m.start() < runs[-1][1]:
                continue
            start = m.start()
            while start and text[start - 1] in lang._CODE_CHARS:
                start -= 1
            end = m.start()
            while end < len(text) and text[end] in lang._CODE_CHARS:
                end += 1
            runs.append([start, end])
        assert kernels.code_runs(code_points(text), lang._CODE_TABLE).tolist() == runs, text


@needs_sentences
def test_script_fragments_from_the_runs_around_foreign_ones_are_those_from_all_runs():
    """`_Runs.around` leaves out the host runs `_script_fragments` cannot read, and the compiled clusters
    (`_script_fragments_of_rows`) are its clusters; `_Runs.outside` is the runs of other scripts before a
    limit."""
    stage = lang.LanguageStage()
    english = (SENTENCES / "en.txt").read_text(encoding="utf-8").splitlines()[:60]
    foreign = ["Москва столица России", "東京は日本の首都です", "Apple", "Ελληνικά κείμενα εδώ", "中文", "ж"]
    rng = np.random.default_rng(3)
    texts = [mixed_text()]
    for _ in range(20):
        words = " ".join(english).split(" ")
        for at in sorted(rng.choice(len(words), 40, replace=False), reverse=True):
            words.insert(int(at), str(rng.choice(foreign)))
        texts.append(" ".join(words))
    # bridges: a capitalised word after a foreign run (gap of 1..4 characters, a newline, a capital beyond
    # U+FFFF, after CJK and Thai runs, longer than 20 letters), and Latin clusters of 2, 3 and 4 words
    bridges = [
        f"Москва{gap}{word} столица России и города. "
        for gap in (" ", ", ", ",  ", " -- ", "\n", "")
        for word in ("Apple", "apple", "𝐀pple", "Abcdefghijklmnopqrstu", "A", "Apple Mac")
    ]
    bridges += ["東京 Apple 東京は日本の首都です。", "ภาษาไทย Apple ภาษาไทยเป็น", "Ελληνικά κείμενα Apple εδώ Ελληνικά"]
    bridges += ["Москва столица to be. Москва is a city of Russia. Он сказал: the big red house on the hill."]
    texts.append(" ".join(bridges))
    texts.extend(bridges)
    checked = 0
    for text in texts:
        runs = lang._Runs(lang._run_rows(text))
        every = lang._runs_of_rows(runs.rows)
        for hosts in ({"Latin"}, {"Han", "Kana"}, {"Cyrillic", "Latin"}, {"Han"}, {"Hangul", "Han"}, {"Cyrillic"}):
            hosts = frozenset(hosts)
            expected = stage._script_fragments(text, every, hosts)
            assert stage._script_fragments(text, runs.around(hosts), hosts) == expected
            # the clusters by the compiled pass over all the run rows (`script_clusters`)
            assert stage._script_fragments_of_rows(text, runs, hosts, code_points(text)) == expected
            checked += len(expected)
            for limit in (0, 1, 3000, len(text) + 1):
                assert runs.outside(hosts, limit) == [r for r in every if r.start < limit and r.script not in hosts]
        assert runs.all() == every
    assert checked > 100


@needs_sentences
def test_sample_rows_are_the_split_stripped_alphabetic_words_rows():
    """`token_rows` (via `_sample_rows`) against the list comprehension it replaces, on lingua text of
    Latin and Cyrillic languages with punctuation, digits, astral letters and emoji around words."""
    extra = " «Überall» (naïve) 'quoted' 𝐀𝐁𝐂 x𝐀 😀 a😀 ...!!! 12 ab12 l'été — ‹x› ǅemal ǅ \u00a0nbsp"
    checked = 0
    for code, script in (("en", "Latin"), ("de", "Latin"), ("fr", "Latin"), ("vi", "Latin"), ("ru", "Cyrillic")):
        lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:300]
        for k in range(0, len(lines), 30):
            low = (" ".join(lines[k : k + 30]) + extra).lower()
            row = lang._score_table(script).row
            expected = [row.get(v, 0) for w in low.split() if (v := w.strip(lang._STRIP)).isalpha()]
            assert lang._sample_rows(low, code_points(low), script).tolist() == expected
            checked += sum(1 for r in expected if r)
    assert checked > 2000


@needs_sentences
def test_spread_rows_are_the_sample_rows_of_the_joined_sample():
    """`spread_rows` (via `_spread_rows`) reads the Latin sample's words in place: the rows of the joined
    `spread_sample`, also for astral letters (decided in Python at their offsets in the text)."""
    extra = " «Überall» (naïve) 'quoted' 𝐀𝐁𝐂 x𝐀 😀 a😀 ...!!! 12 ab12 l'été — ‹x› ǅemal ǅ \u00a0nbsp"
    checked = astral = 0
    for code in ("en", "de", "fr", "vi", "pl"):
        lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:600]
        for k in range(0, len(lines), 100):
            low = (extra + " ".join(lines[k : k + 100]) + extra * 3).lower()
            cps = code_points(low)
            for want in (1, 7, 250, 10**6):
                sample = kernels.spread_sample(cps, want, kernels.SPACES)
                joined = sample.tobytes().decode("utf-32-le", "surrogatepass")
                expected = lang._sample_rows(joined, sample, "Latin").tolist()
                rows, spans = kernels.spread_rows(
                    cps, want, kernels.SPACES, lang._STRIP_TABLE, lang._alpha_table(), *lang._word_rows("Latin")
                )
                astral += int((rows < 0).sum())
                if want == lang._SAMPLE_WORDS:
                    assert lang._spread_rows(low, cps, "Latin").tolist() == expected
                    assert str(lang._SpreadSample(cps)) == joined
                checked += sum(1 for r in expected if r)
    assert checked > 2000 and astral > 10


@needs_sentences
def test_profile_choice_counts_the_distinct_hits_of_the_words_both_ways():
    """`profile_choice`'s last two values (what `_bilingual` reads) are `_distinct_hits` of the sample's words,
    the runner-up against the best and the best against the runner-up, on texts in one language and in two."""
    stage = lang.LanguageStage()
    table = lang._score_table("Latin")
    texts = {}
    for code in ("en", "de", "es", "it", "nl", "pl"):
        texts[code] = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:40]
    pairs = [(code, code) for code in texts] + [("en", "de"), ("es", "it"), ("nl", "en"), ("pl", "de")]
    checked = 0
    for a, b in pairs:
        sentences = texts[a][:20] + texts[b][20:] if a != b else texts[a]
        low = " ".join(sentences).lower()
        words = [v for w in low.split() if (v := w.strip(lang._STRIP)).isalpha()]
        rows = lang._sample_rows(low, code_points(low), "Latin")
        j, _, _, _, runner, only_runner, only_best = kernels.profile_choice(
            rows, table.ptr, table.langs, table.deltas, table.oov, lang._name_ranks("Latin")
        )
        best, second = table.names[j], table.names[runner]
        assert (only_runner, only_best) == (
            stage._distinct_hits(set(words), second, best),
            stage._distinct_hits(set(words), best, second),
        )
        checked += only_runner > 0 and only_best > 0
    assert checked >= 6


def test_langdetect_profiles_saved_compactly_are_langdetects_own(tmp_path):
    """The profile map the stage reads from its cache file holds langdetect's languages in its order and
    every n-gram's probabilities to the last bit; a file saved for other profiles (another key) or a
    damaged one is not used."""
    reference = lang._reference_factory()
    built = lang._ProfileMap.build(reference.word_lang_prob_map, reference.langlist)
    data = built.to_bytes("key-1")
    assert data is not None
    loaded = lang._ProfileMap.from_bytes(data, "key-1")
    assert loaded is not None and loaded.langs == reference.langlist
    assert len(loaded) == len(reference.word_lang_prob_map) > 80_000
    for gram, probs in reference.word_lang_prob_map.items():
        assert gram in loaded
        assert loaded[gram].tobytes() == np.array(probs, dtype=np.float64).tobytes(), gram
    assert "no such n-gram" not in loaded
    assert lang._ProfileMap.from_bytes(data, "key-2") is None
    # A damaged copy is not used: the map is built again (a truncated zip lacks its directory).
    path, builds = tmp_path / "profiles.npz", []
    for damaged in (data[: len(data) // 2], b"not a cache"):
        path.write_bytes(damaged)
        got = cached_build(
            path,
            lambda d: lang._ProfileMap.from_bytes(d, "key-1"),
            lambda: builds.append(1) or built,
            lambda m: m.to_bytes("key-1"),
        )
        assert got is built
    assert len(builds) == 2 and path.read_bytes() == data  # and saved again
    assert lang._factory().langlist == reference.langlist


@needs_sentences
def test_ngram_ids_are_langdetects_extracted_ngrams():
    """`_ngram_ids` against ``Detector._extract_ngrams`` on lingua text of every language (capitals,
    CJK, Vietnamese marks, Arabic, digits and punctuation between words, characters beyond U+FFFF); the
    normalisation by a table of the code points met (`_table_ngram_ids`) is str.translate's."""
    reference, factory = lang._reference_factory(), lang._factory()
    checked = by_table = 0
    lang._NORMALIZED_TABLE[:] = kernels.NOT_NORMALIZED  # (code points met for the first time, too)
    for path in sorted(SENTENCES.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()[:6]
        extra = ["ÉCOLE de l'ÉTÉ, ABC-def  x  Y z 1999 ǅemal", "𝔘𝔫𝔦 😀 abc Дом " + lines[0]]
        for text in [*lines, " ".join(lines).upper(), *extra]:
            detector = factory.create()
            detector.append(text)
            detector.cleaning_text()
            rows = lang._ngram_rows(detector.word_lang_prob_map, len(detector.langlist))
            ids = lang._ngram_ids(detector.text, rows)
            by_translate = lang._compiled_ngram_ids(detector.text.translate(lang._NORMALIZED), rows)
            assert np.array_equal(ids, by_translate), text
            by_table += lang._table_ngram_ids(detector.text, rows) is not None
            names = {row: gram for gram, row in rows.gram_rows().items()}
            got = [names[row] for row in ids]
            expected = reference.create()
            expected.append(text)
            expected.cleaning_text()
            assert got == expected._extract_ngrams(), text
            # each n-gram's row holds langdetect's probabilities (rows are added as n-grams are met)
            for row in set(ids.tolist() if isinstance(ids, np.ndarray) else ids):
                assert rows.matrix[row].tolist() == reference.word_lang_prob_map[names[row]], names[row]
            checked += len(got)
    assert checked > 100_000 and by_table > 500


@needs_sentences
def test_text_cleaning_is_langdetects():
    """`_append` and `_cleaned_text` give the text of ``Detector.append`` and ``cleaning_text`` on
    lingua text of every language (alone, and with English words around it: Latin dropped or kept),
    URLs, e-mail addresses, Vietnamese marks, runs of spaces, characters beyond U+FFFF and random
    strings."""
    import random

    factory = lang._reference_factory()
    texts = ["", " ", "  a  b ", "x" * 50, "Tiếng Việt có dấu: a\u0301 e\u0300  ", "𝔘𝔫𝔦 😀 [\\]^_` ЖЖЖ a"]
    for path in sorted(SENTENCES.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()[:4]
        texts += lines + [f"see https://x.org/a?b=1  and  {lines[0]} mail me@x.org  ok " + lines[1]]
    rng = random.Random(0)
    alphabet = " Az[`é\u0300\u02ff\u1e00ЖあQ\ud800\U0001f600.@/:"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(60))) for _ in range(3000)]
    for text in texts:
        for cap in (400, 10):
            expected = factory.create()
            expected.max_text_length = cap if cap == 10 else expected.max_text_length
            expected.append(text)
            got = factory.create()
            got.max_text_length = expected.max_text_length
            lang._append(got, text)
            assert got.text == expected.text, text
            expected.cleaning_text()
            assert lang._cleaned_text(got.text) == expected.text, text


@needs_sentences
def test_word_pieces_are_where_the_word_regex_finds_its_words():
    """`_word_pieces` places `_WORD_RE.findall`'s words where `finditer` finds them (apostrophes,
    combining marks, digits and punctuation between words, a span cutting a word)."""
    text = mixed_text() + " l'été d’Artagnan a\u0301b x1y ''x'' rock'n'roll"
    for s in range(0, len(text) - 200, 97):
        e = s + 150
        words = lang._WORD_RE.findall(text, s, e)
        assert lang._word_pieces(text, s, words) == [
            (m.start(), m.end(), m.group()) for m in lang._WORD_RE.finditer(text, s, e)
        ]


def per_run_cjk_same_script(stage, text, runs, main_langs, main_scripts, taken):
    """`_cjk_same_script` as it was, adding up each sentence's `_Run`s (the reference)."""
    import bisect

    host_scripts = lang._host_scripts(main_scripts)
    starts = [r.start for r in runs]
    found = []
    for s, e in stage._sentences(text):
        if any(s < te and ts < e for ts, te in taken):
            continue
        i, j = bisect.bisect_left(starts, s), bisect.bisect_left(starts, e)
        letters: dict[str, int] = {}
        for r in runs[i:j]:
            letters[r.script] = letters.get(r.script, 0) + r.end - r.start
        total = sum(letters.values())
        if not total or sum(v for k, v in letters.items() if k in host_scripts) < 0.8 * total:
            continue
        cjk_chars = sum(v for k, v in letters.items() if k in lang._CJK)
        kana, hangul = letters.get("Kana", 0), letters.get("Hangul", 0)
        if main_scripts == frozenset({"Han"}):
            if kana >= 2 and cjk_chars >= stage.options.min_cjk_chars:
                found.extend(stage._japanese_clauses(text, s, e, runs[i:j], main_langs))
            continue
        candidate = (kana == 0 and cjk_chars >= 20) if "Kana" in main_scripts else (hangul == 0 and cjk_chars >= 16)
        if candidate:
            probs = stage._detect(text[s:e])
            if probs and probs[0][0] not in main_langs and probs[0][1] >= 0.99:
                found.append((s, e, probs[0][0]))
    return found


@needs_sentences
def test_cjk_same_script_from_run_rows_is_the_per_run_sums():
    """`_cjk_same_script` counts each sentence's letters from cumulative sums over the run rows;
    the same fragments as adding up its `_Run`s, for Chinese, Japanese and Korean hosts with
    sentences of the others, Latin and Cyrillic inserted."""
    stage = lang.LanguageStage()
    lines = {
        c: (SENTENCES / f"{c}.txt").read_text(encoding="utf-8").splitlines()[:80] for c in ("zh", "ja", "ko", "ru")
    }
    rng = np.random.default_rng(5)
    checked = 0
    for host, main_langs, main_scripts in (
        ("zh", ["zh"], frozenset({"Han"})),
        ("ja", ["ja"], frozenset({"Han", "Kana"})),
        ("ko", ["ko"], frozenset({"Hangul", "Han"})),
    ):
        for _ in range(6):
            sentences = list(rng.choice(lines[host], 12))
            for code in ("zh", "ja", "ko", "ru"):
                sentences.insert(int(rng.integers(len(sentences))), str(rng.choice(lines[code])))
            text = "".join(sentences) + " see https://example.org/x_y and Apple Inc."
            runs = lang._Runs(lang._run_rows(text))
            taken = [(5, 9)]
            expected = per_run_cjk_same_script(stage, text, runs.all(), main_langs, main_scripts, taken)
            assert stage._cjk_same_script(text, runs, main_langs, main_scripts, taken) == expected
            checked += len(expected)
    assert checked >= 10


def test_a_fresh_process_runs_kernels_without_importing_cffi_or_scipy_linalg():
    """numba's CFFI typing and its BLAS probe would import cffi's C parser and scipy.linalg at the first
    kernel call (~0.35 s of start-up together); text_kernels hides them while numba loads those modules,
    and both still import normally afterwards."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.document import Document\n"
        "from pipeline.stages.boilerplate import BoilerplateStage\n"
        "from pipeline.stages.language import LanguageStage\n"
        "doc = Document('d', 'Home » News\\nThe council met on Monday to discuss the budget for next year.\\n', 'f')\n"
        "BoilerplateStage().process(doc)\n"
        "LanguageStage().process(doc)\n"
        "print(sorted(m for m in ('cffi', 'pycparser', 'scipy.linalg') if m in sys.modules))\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('cffi'):\n"
        "    import cffi\n"
        "    print(cffi.FFI().sizeof('int'))\n"
        "else:\n"
        "    print('cffi not installed')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # (where cffi is installed, e.g. beside cryptography, it still works after the kernels ran)
    assert out.split("\n")[:2] in (["[]", "4"], ["[]", "cffi not installed"])


def test_non_latin_letter_scan_is_the_regex_on_every_code_point():
    """`_has_non_latin_letter` (a table of the BMP, the regex beyond it) says what
    `_NON_LATIN_LETTER_RE` says, and a character's lowercase says what the character says."""
    letter = lang._NON_LATIN_LETTER_RE.match
    assert lang._non_latin_letters().tolist() == [bool(letter(chr(c))) for c in range(0x10000)]
    for c in map(chr, range(0x110000)):
        assert bool(letter(c)) == any(map(letter, c.lower())), hex(ord(c))
    for text, expected in [("é", False), ("é x µ", True), ("é 😀", False), ("é 𝐀", True), ("é 𐐀", True), ("Ωé", True)]:
        assert lang._has_non_latin_letter(text, code_points(text)) == expected, text


def test_letter_counts_are_the_letter_regex_matches():
    """`_letter_count` (a table of the BMP, the regex for a stretch with a code point beyond it) counts what
    `_LETTER_RE.findall` finds, on every BMP code point and on stretches of mixed text."""
    letter = lang._LETTER_RE.match
    assert lang._letter_table().tolist() == [bool(letter(chr(c))) for c in range(0x10000)]
    text = "Ça va? 東京 — x1 ǅ Ⅻ 𝐀b 😀 \ud800 ᠮᠣ 12.5 Ωμέγα\n" + (mixed_text() if SENTENCES.is_dir() else "")
    cps = code_points(text)
    rng = random.Random(5)
    spans = [(0, len(text)), (0, 0), (3, 3), *((a, a + rng.randrange(0, 80)) for a in range(0, len(text), 37))]
    for s, e in spans:
        assert lang._letter_count(text, s, e, cps) == len(lang._LETTER_RE.findall(text, s, e)), (s, e)
        assert lang._letter_count(text, s, e) == len(lang._LETTER_RE.findall(text, s, e))


@needs_sentences
def test_lowering_pass_finds_the_non_latin_scans_start():
    """`_lowercase_marked`'s first marked code point is `first_marked`'s over the lowercase (none, at
    the start, the end, beyond the table, after a capital that lowers into the table), and
    `_has_non_latin_letter` from it says what it says from the start; str.lower's texts give None."""
    table = lang._non_latin_letters()
    texts = ["", "plain ascii", "Ωmega", "café Ω", "x µ", "é 😀 x", "é 😀 Ж", "ÀÉÎ", "end ж", "İstanbul ж", "ΣΑΣ"]
    for path in sorted(SENTENCES.glob("*.txt"))[::7]:
        texts += path.read_text(encoding="utf-8").splitlines()[:3]
    for text in texts:
        cps = code_points(text)
        low, low_cps, per_char, first = lang._lowercase_marked(text, cps)
        plain, plain_cps, plain_per_char = lang._lowercase(text, cps)
        assert (low, low_cps.tolist(), per_char) == (plain, plain_cps.tolist(), plain_per_char)
        assert low == text.lower()
        if not per_char:
            assert first is None
            continue
        assert first == kernels.first_marked(low_cps, table, 0), text
        assert lang._has_non_latin_letter(low, low_cps, first) == lang._has_non_latin_letter(low, low_cps), text


def reference_telling(stage, words, code, other, odd):
    """`LanguageStage._telling` as it was: a test per word."""
    prof = stage.profiles
    mine, theirs = prof.words.get(code, frozenset()), prof.words.get(other, frozenset())
    bad_theirs = odd.get(other, frozenset()) if code in lang._alphabets() else frozenset()
    bad_mine = odd.get(code, frozenset())
    return sum(
        1
        for w in words
        if (w in mine and w not in theirs) or (w in bad_theirs and w not in bad_mine and w not in theirs)
    )


def reference_judge(stage, words, main_langs, script):
    """`LanguageStage._judge` as it was: the score dicts, then the odd-letter costs and the best
    other language in Python."""
    import math

    prof = stage.profiles
    main = main_langs[0]
    if main not in prof.script:
        return None
    if 2 * sum(map(prof.words[main].__contains__, words)) >= len(words):
        return None
    scores, _ = stage._scores(words, script)
    n = len(words)
    odd = lang._odd_letter_words(frozenset(words), script)
    for code in odd:
        if code not in scores and (code == main or code in prof.script):
            scores[code] = n * prof.oov[code]
    for code, bad in odd.items():
        if code in scores:
            listed = prof.words.get(code, frozenset())
            scores[code] -= lang._ODD_LETTER * sum(1 for w in words if w in bad and w not in listed)
    own = scores.get(main, n * prof.oov[main])
    best, best_score = None, -math.inf
    for code in sorted(scores):
        if code not in main_langs and scores[code] > best_score:
            best, best_score = code, scores[code]
    if best is None:
        return None
    distinct = set(words)
    for_best = reference_telling(stage, distinct, best, main, odd)
    if for_best < 2 or for_best <= reference_telling(stage, distinct, main, best, odd):
        return None
    margin = best_score - own
    return None if margin < stage.options.langdetect_margin else (best, margin)


@needs_sentences
def test_judge_is_the_dict_version():
    """`_judge` (compiled scores, odd-letter costs and best language) gives the languages and the
    very margins of the dict version, for clauses and sentences of Latin and Cyrillic languages
    judged against several main languages (two main languages too); `_telling` (set operations)
    counts the words the per-word test counts."""
    stage = lang.LanguageStage()
    judged = telling = 0
    for script, codes in (
        ("Latin", ["en", "de", "fr", "es", "pt", "pl", "cs", "ro", "tr", "vi"]),
        ("Cyrillic", ["ru", "uk", "bg", "sr"]),
    ):
        for code in codes:
            lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:60]
            for line in lines:
                words = lang._evidence(lang._WORD_RE.findall(line))
                for part in (words, words[: len(words) // 2], words[len(words) // 2 :]):
                    if not part:
                        continue
                    odd = lang._odd_letter_words(frozenset(part), script)
                    for a in codes:
                        for b in (codes[0], code):
                            want = reference_telling(stage, set(part), a, b, odd)
                            assert stage._telling(set(part), a, b, odd) == want, (part, a, b)
                            telling += want > 0
                    for main_langs in ([codes[0]], [codes[1]], [codes[2], codes[0]], [code]):
                        got = stage._judge(part, main_langs, script)
                        assert got == reference_judge(stage, part, main_langs, script), (part, main_langs)
                        judged += got is not None
    assert judged > 100
    assert telling > 1000


@needs_sentences
def test_judge_ranges_and_host_clause_are_the_evidence_pieces_judged():
    """`judge_ranges` (via `_WordJudge`, what the stage judges candidate sentences and clauses with) gives
    `_decide`'s judging of the runs' `_evidence_pieces` (their count, then `_judge`: the languages and the
    very margins), for sentences, their halves and other runs of words of Latin and Cyrillic languages
    against several main languages (two main languages too), with odd-spelt words (Cyrillic і, ї, є; Latin
    accents; letters no alphabet has), repeated words, capitalised words inside and "et al"; and `host_clause`
    (does a clause of a sentence found foreign tell the main language?) gives `_host_clause`'s answer (the
    odd-letter rows from `odd_letter_rows`)."""
    import random

    rng = random.Random(0)
    stage = lang.LanguageStage()
    hosts = 0
    extra = [
        "Les résultats de la étude sont dans le livre de Dupont et et al. et ils sont très bons pour nous",
        "der die das der die das und und und oder aber wenn dann sagte Die Katze Über über straße",
        "þetta er íslenska og það er gott að vera hér á landi með þér og ykkur öllum",
        "São Paulo é uma cidade muito grande e a população não é pequena, disse João et al",
        "їжак і їжачиха єдині в лісі, де живуть і інші звірі та птахи у своїх норах",
    ]
    compared = foreign = spelt = 0
    for script, codes in (
        ("Latin", ["en", "de", "fr", "es", "pt", "pl", "cs", "ro", "vi", "is"]),
        ("Cyrillic", ["ru", "uk", "bg", "sr"]),
    ):
        lines = [x for code in codes for x in (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:30]]
        text = "\n".join(lines + extra)
        low = text.lower()
        assert len(low) == len(text)
        cps, low_cps = code_points(text), code_points(low)
        spans, pos = [], 0
        for line in text.split("\n"):
            spans.append((pos, pos + len(line)))
            pos += len(line) + 1
        table = lang._score_table(script)
        for main_langs in ([codes[0]], [codes[1]], [codes[2], codes[0]], [codes[-1]]):
            main = main_langs[0]
            counts, words = kernels.sentence_words(
                cps, low_cps, np.array(spans, dtype=np.int64), lang._word_char_table(), kernels.SPACES,
                *lang._word_rows(script), table.ptr, table.langs, len(table.names), lang._score_positions(script)[main],
                lang._letter_classes(script), lang._odd_table(main, script), main in lang._script_alphabets(script)[1],
                lang._case_table(),
            )  # fmt: skip
            counts = list(map(tuple, counts.tolist()))
            judged = [k for k, c in enumerate(counts) if c[0] > 0]
            judge = lang._WordJudge(low, low_cps, words, counts, judged, main_langs, script, stage.options)
            runs = []
            for k in judged:
                first, n = counts[k][6], counts[k][0]
                runs += [(first, first + n), (first, first + n // 2), (first + n // 2, first + n)]
                a = rng.randrange(n)
                runs.append((first + a, first + rng.randrange(a, n) + 1))
            for (lo, hi), got in zip(runs, judge.run(runs), strict=True):
                pieces = lang._evidence_pieces(judge.pieces(lo, hi - lo))
                want = None
                if len(pieces) >= max(2, stage.options.same_script_min_words - 1):
                    want = stage._judge([p[2] for p in pieces], main_langs, script, [p[4] for p in pieces])
                assert got == want, (script, main_langs, [p[2] for p in pieces])
                compared += 1
                foreign += got is not None
                spelt += got is not None and not "".join(p[2] for p in pieces).isascii()
            # `host_clause` against `_host_clause`: the sentence's clauses as runs of its words
            for k in judged:
                s, e = spans[k]
                first, n = counts[k][6], counts[k][0]
                pieces = judge.pieces(first, n)
                clauses = lang._clauses(text, s, e)
                starts, ends = [p[0] for p in pieces], [p[1] for p in pieces]
                clause_runs = [(bisect.bisect_left(starts, cs), bisect.bisect_right(ends, ce)) for cs, ce in clauses]
                clause_runs = [(first + a, first + b) for a, b in clause_runs if a < b]
                for other in {*codes[:4], codes[-1]} - {main}:
                    want = stage._host_clause(pieces, clauses, main, other)
                    assert judge.host_clause(clause_runs, main, other) == want, (text[s:e], main, other)
                    hosts += want
    assert compared > 2000 and foreign > 300 and spelt > 100 and hosts > 200


def test_best_two_and_runner_up_are_the_sorted_ones():
    """`best_two` and `runner_up` (tests/language_reference.py) against the sort and max with keys they
    replace, on random scores with ties (one language, all tied, -inf)."""
    import math
    import random

    rng = random.Random(0)
    for _ in range(20000):
        names = rng.sample(["en", "de", "fr", "es", "it", "nl", "sv", "da"], rng.randrange(1, 8))
        scores = {k: rng.choice([-3.5, -1.0, -1.0, 0.0, 2.25, -math.inf, rng.uniform(-9, 9)]) for k in names}
        ranked = sorted(scores, key=lambda k: (-scores[k], k))
        assert best_two(scores) == (ranked[0], scores[ranked[1]] if len(ranked) > 1 else -math.inf)
        main = rng.choice([*names, "pt"])
        expected = max((k for k in scores if k != main), key=lambda k: (scores[k], k), default=None)
        assert runner_up(scores, main) == expected


def test_profile_choice_is_cheap_main_and_runner_up_of_the_scores():
    """`profile_choice` (with `_cheap_choice`) against `cheap_main`, `best_two` and `runner_up` of
    `_row_scores`: on random rows of a few words (ties: languages listing the same words alike), none
    listed, and the spread samples of CC pages, in Latin and Cyrillic."""
    stage = lang.LanguageStage()
    rng = np.random.default_rng(9)
    cases = []
    for script in ("Latin", "Cyrillic"):
        table = lang._score_table(script)
        few = rng.choice(np.arange(1, len(table.row) + 1), 12, replace=False)
        for _ in range(3000):
            pool = few if rng.random() < 0.5 else np.arange(len(table.row) + 1)
            cases.append((script, rng.choice(pool, rng.integers(0, 40)).astype(np.int64)))
        cases.append((script, np.zeros(5, dtype=np.int64)))
    if CC.exists():
        with CC.open(encoding="utf-8") as f:
            for _, line in zip(range(150), f, strict=False):
                low = json.loads(line)["text"].lower()
                cases.append(("Latin", lang._spread_rows(low, code_points(low), "Latin")))
    # a small table whose languages list words alike (equal scores: the tie rules decide)
    names = ("sv", "da", "en", "nl", "de", "fi")
    entries = [rng.choice(6, rng.integers(1, 7), replace=False) for _ in range(20)]
    ptr = np.zeros(len(entries) + 2, dtype=np.int64)
    ptr[2:] = np.cumsum([len(e) for e in entries])
    small = lang._ScoreTable(
        names, np.full(6, -9.5), {}, ptr, np.concatenate(entries).astype(np.int64),
        rng.choice([1.0, 2.5], int(ptr[-1])),
    )  # fmt: skip
    small_ranks = np.array([sorted(names).index(x) for x in names], dtype=np.int64)
    cases += [(small, rng.integers(0, 21, rng.integers(0, 12)).astype(np.int64)) for _ in range(3000)]
    ties = both = 0
    for script, rows in cases:
        table = script if isinstance(script, lang._ScoreTable) else lang._score_table(script)
        ranks = small_ranks if table is small else lang._name_ranks(script)
        scores, hits = lang._row_scores(rows, table)
        j, top, second, best_hits, runner, only_runner, only_best = kernels.profile_choice(
            rows, table.ptr, table.langs, table.deltas, table.oov, ranks
        )
        choice = stage._cheap_choice(len(rows), j, top, second, best_hits, table.names)
        assert choice == cheap_main(len(rows), scores, hits)
        if not scores:
            assert j == -1 and runner == -1
            continue
        best, expected_second = best_two(scores)
        assert (table.names[j], top, second, best_hits) == (best, scores[best], expected_second, hits[best])
        assert (table.names[runner] if runner >= 0 else None) == runner_up(scores, best)
        ties += list(scores.values()).count(scores[best]) > 1
        # the distinct rows one of the two lists and the other does not (none without a runner-up)
        listing = {r: set(table.langs[table.ptr[r] : table.ptr[r + 1]].tolist()) for r in set(rows.tolist()) - {0}}
        expected = [sum(1 for x in listing.values() if a in x and b not in x) for a, b in ((runner, j), (j, runner))]
        assert [only_runner, only_best] == (expected if runner >= 0 else [0, 0])
        both += runner >= 0 and min(expected) > 0
    assert ties > 50 and both > 50


def test_word_bloom_holds_every_key_of_a_foreign_word_set():
    """No false negatives (`line_hits` skips the set when the filter says no), and few false positives."""
    stage = lang.LanguageStage()
    keys, _, bloom, _ = word_set_keys(stage._foreign_set("en"))
    assert all(kernels._maybe(bloom, key) for key in keys[keys != 0])
    others = [np.uint64(fnv1a(code_points(w), 0, len(w))) for w in (f"zq{i}x" for i in range(20000))]
    assert sum(map(lambda k: kernels._maybe(bloom, k), others)) < 0.1 * len(others)


# characters that start, close or surround the sentence ends, spaces of both kinds, cases, an astral capital
SENTENCE_CHARS = list('aAbBéÉσΣz.!?…"”’»“«)]„。！？」』）( \t\n\x1c\u00a0\u3000') + ["\U0001d400"]


@needs_sentences
def test_compiled_sentences_are_the_regex_ones():
    """`_sentences` (kernel) against `_SENTENCE_END_RE` on lingua text of many scripts, CC pages and
    random strings of the characters its alternatives, lookbehind and lookaheads read."""
    import random

    stage = lang.LanguageStage()
    texts = [mixed_text()]
    texts += [json.loads(line)["text"] for line in CC.open(encoding="utf-8")][:200] if CC.is_file() else []
    for text in texts:
        for pos, end in ((0, len(text)), (3, len(text) - 5), (len(text) // 3, len(text) // 2)):
            assert stage._sentences(text, pos, end) == lang._sentences_by_regex(text, pos, end)
    rng = random.Random(5)
    for _ in range(30000):
        text = "".join(rng.choice(SENTENCE_CHARS) for _ in range(rng.randint(0, 12)))
        pos = rng.randint(0, len(text))
        end = rng.randint(pos, len(text))
        assert stage._sentences(text, pos, end) == lang._sentences_by_regex(text, pos, end), (text, pos, end)


@needs_sentences
def test_hit_sentences_place_each_hit_in_its_regex_sentence():
    """`hit_sentences` against each hit line split by the regex and the hit found by bisection;
    lines with an astral character are left to Python (-2)."""
    import bisect

    text = mixed_text().replace("\n", ". Der die das.\n", 40) + "\nthe 𝐀 die der. De la."
    low = text.lower()
    keys = word_set_keys({"die", "der", "das", "de", "la", "the", "и", "на"})
    rows = kernels.line_hits(code_points(low), *keys, np.zeros(0, bool), 1, kernels.SPACES)
    spans, which = kernels.hit_sentences(code_points(text), rows, lang._sentence_table(), kernels.SPACES)
    placed = 0
    for (ls, le, ts, _, _), k in zip(rows.tolist(), which.tolist(), strict=True):
        line = lang._sentences_by_regex(text, ls, le)
        if any(ord(c) >= 0x10000 for c in text[max(0, ls - 2) : le]):
            assert k == -2
            continue
        expected = bisect.bisect_right(line, (ts, le)) - 1
        assert (tuple(spans[k]) if k >= 0 else None) == (line[expected] if expected >= 0 else None)
        placed += k >= 0
    assert placed > 50 and (which == -2).any()


def test_compiled_generator_is_pythons_random():
    """`mt_next` and `gauss` from `_seeded_state` give what random.Random(seed) gives: its 32-bit
    outputs (past a refill of the 624 words) and gauss(0, 1) with its cached second value."""
    import random

    for seed in (0, 1, 7, 2**40):
        state = lang._seeded_state(seed).copy()
        reference = random.Random(seed)
        assert kernels.mt_outputs(state, 1500).tolist() == [reference.getrandbits(32) for _ in range(1500)]
        cached, has_cached = 0.0, False
        for _ in range(5):
            z, cached, has_cached = kernels.gauss(state, cached, has_cached)
            assert z == reference.gauss(0.0, 1.0)
            assert kernels.mt_outputs(state, 3).tolist() == [reference.getrandbits(32) for _ in range(3)]
        assert (3, tuple(state.tolist()), cached if has_cached else None) == reference.getstate()
        # the compiled cos, sin, log and sqrt are the C library's, as Python's: bit for bit over many draws
        drawn = []
        for _ in range(3000):
            z, cached, has_cached = kernels.gauss(state, cached, has_cached)
            drawn.append(z)
        assert drawn == [reference.gauss(0.0, 1.0) for _ in range(3000)]


def test_fresh_detectors_are_new_detectors_but_for_a_shared_generator():
    factory = lang._factory()
    made = factory.create()
    first = lang._fresh_detector(factory)
    first.text, first.prior_map = "changed", [1.0]
    second = lang._fresh_detector(factory)
    assert second is not first and second.random is first.random
    assert {k: v for k, v in vars(second).items() if k != "random"} == {
        k: v for k, v in vars(made).items() if k != "random"
    }


@needs_sentences
def test_odd_langs_by_shared_letters_are_the_alphabet_definition():
    """`_odd_langs` decides by the letters not every alphabet has (cached per letter set): the same
    languages as testing every alphabet with all the word's letters."""
    checked = 0
    for script, codes in (("Latin", ("de", "fr", "pl", "vi", "tr", "is", "ro")), ("Cyrillic", ("ru", "uk", "sr"))):
        known, alphabets = lang._script_alphabets(script)
        for code in codes:
            text = " ".join((SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:200]).lower()
            for word in set(text.split()) | {"þarkýcý", "naïve", "x"}:
                letters = known.intersection(word)
                if not letters:
                    expected: tuple[str, ...] = ()
                elif any(c.isalpha() and c not in known for c in word):
                    expected = tuple(alphabets)
                else:
                    expected = tuple(code for code, a in alphabets.items() if not letters <= a)
                assert lang._odd_langs(word, script) == expected, word
                checked += bool(expected)
    assert checked > 1000


@needs_sentences
def test_odd_letter_rows_are_the_odd_rows_of_the_words():
    """`odd_letter_rows` (the odd-letter rows `_WordJudge` gives `judge_ranges`) against `_odd_row` for every
    distinct word of lingua sentences of Latin and Cyrillic languages (accents, і ї є, listed and unlisted
    words), the script's listed words spelt beyond ASCII, words with a letter no alphabet has (þ, mojibake,
    Greek in a Latin word) and none of the script's; and False for a word with a code point beyond the
    letter table (Python decides)."""
    checked = odd = listed = 0
    latin = ("de", "fr", "pl", "vi", "tr", "is", "ro", "pt", "es")
    for script, codes in (("Latin", latin), ("Cyrillic", ("ru", "uk", "sr", "bg"))):
        table = lang._score_table(script)
        tables = (*lang._odd_letter_tables(script), lang._alpha_table(), table.ptr, table.langs)
        lines = [x for c in codes for x in (SENTENCES / f"{c}.txt").read_text(encoding="utf-8").splitlines()[:150]]
        extra = ["þarkýcý", "naïve", "straße", "αβγé", "éx", "x", "ёж", "їжак", "123", "ωmega"]
        # and the script's listed words spelt beyond ASCII (some listed by a language lacking a letter: row 1)
        spelt = [w for w in lang._script_index(script) if not w.isascii() and w.isalpha()]
        words = sorted({w for w in " ".join(lines).lower().split() if w.isalpha()} | set(extra) | set(spelt))
        low = " ".join(words)
        starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]]).tolist()
        rows = np.array([(a, a + len(w), 1, table.row.get(w, 0)) for a, w in zip(starts, words, strict=True)])
        got, ok = kernels.odd_letter_rows(code_points(low), rows, np.arange(len(words)), *tables)
        assert ok
        for w, row in zip(words, got, strict=True):
            want = lang._odd_row.__wrapped__(w, script)
            assert row.tolist() == want.tolist(), (script, w)
            checked += 1
            odd += bool(want.any())
            listed += bool((want == 1).any())
        astral = "a\U0001d4b6b"
        _, ok = kernels.odd_letter_rows(code_points(astral), np.array([(0, 3, 1, 0)]), np.zeros(1, np.int64), *tables)
        assert not ok
    assert checked > 5000 and odd > 1000 and listed > 15


@needs_sentences
def test_most_listed_is_the_most_words_one_language_lists_and_main_lacks():
    """`most_listed` (the bound `_judge` stops at before scoring) against the sets of each language's
    list: distinct words listed for a language and not for the main language, the most of any."""
    prof = lang._profiles()
    table = lang._score_table("Latin")
    position = lang._score_positions("Latin")
    seen = 0
    for code in ("en", "de", "fr", "es", "it", "nl", "pl", "pt"):
        lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:60]
        for k in range(0, 60, 3):
            words = [w.lower() for w in lang._WORD_RE.findall(" ".join(lines[k : k + 3]))]
            rows = np.array([table.row.get(w, 0) for w in words], dtype=np.int64)
            for main in ("en", "de", "fr"):
                expected = max(
                    len({w for w in words if w in prof.words[other] and w not in prof.words[main]})
                    for other in table.names
                )
                got = kernels.most_listed(rows, table.ptr, table.langs, len(table.names), position[main])
                assert got == expected, (code, main, k)
                seen += expected >= 2
    assert seen > 50


@needs_sentences
def test_may_tell_false_means_no_sentence_or_clause_is_judged_foreign():
    """`_may_tell` skips a candidate sentence: then `_judge` finds neither it nor any clause of it
    foreign (clauses may start with a word the sentence's evidence leaves out as capitalised)."""
    stage = lang.LanguageStage()
    skipped = kept = 0
    for code in ("en", "de", "fr", "es", "nl", "pl", "pt", "sv"):
        lines = (SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:80]
        for k in range(0, 80, 2):
            text = lines[k] + ", " + lines[k + 1][:1].upper() + lines[k + 1][1:]
            words = lang._WORD_RE.findall(text)
            for main in ("en", "de"):
                if stage._may_tell(words, main, "Latin"):
                    kept += 1
                    continue
                skipped += 1
                assert stage._judge(lang._evidence(words), [main], "Latin") is None
                for cs, ce in lang._clauses(text, 0, len(text)):
                    clause = lang._WORD_RE.findall(text, cs, ce)
                    if clause:
                        assert stage._judge(lang._evidence(clause), [main], "Latin") is None
    assert skipped > 50 and kept > 50


def test_clause_split_is_the_regex_one():
    """`_CLAUSE_SPLIT_RE` (the standard `re`, regex's \\s spelt out, a lookahead) finds what the `regex`
    pattern it replaces finds, in any stretch (pos, endpos): on lingua and CC text and on random strings
    of the characters it reads, every kind of space among them (U+001C-U+001F are str.isspace, not \\s)."""
    import regex

    before = regex.compile(r"[,;:()\[\]{}“”„\"«»‹›「」]|\s[–—-]\s|\s'|'(?=\s|$)")
    spaces = "".join(c for c in map(chr, range(0x3001)) if c.isspace() or regex.match(r"\s", c))
    rng = random.Random(11)
    texts = ["".join(rng.choice("ab'’-–—,;:()[]{}“”„\"«»‹›「」.\n" + spaces) for _ in range(80)) for _ in range(400)]
    texts += (SENTENCES / "fr.txt").read_text(encoding="utf-8").splitlines()[:200] if SENTENCES.is_dir() else []
    for text in texts:
        for s, e in ((0, len(text)), (3, len(text) - 2), (len(text) // 2, len(text))):
            got = [m.span() for m in lang._CLAUSE_SPLIT_RE.finditer(text, s, e)]
            assert got == [m.span() for m in before.finditer(text, s, e)], (text, s, e)


def test_compiled_clauses_are_the_regex_ones():
    """`_clause_lists` (`language_kernels.clause_spans`) gives `_clauses` of every span: its table is the
    regex's characters, and on random strings of the characters it reads (every kind of space, the
    dashes, the apostrophes, astral characters) and on lingua text, for spans anywhere in the text."""
    split = lang._CLAUSE_SPLIT_RE
    table = kernels.CLAUSE_TABLE
    for c in map(chr, range(0x10000)):
        bits = table[ord(c)] if ord(c) < table.size else 0
        assert bool(bits & kernels.CLAUSE_MARK) == (c != "'" and split.fullmatch(c) is not None), hex(ord(c))
        assert bool(bits & kernels.CLAUSE_SPACE) == (split.fullmatch(c + "'") is not None), hex(ord(c))
        assert bool(bits & kernels.CLAUSE_DASH) == (split.fullmatch(" " + c + " ") is not None), hex(ord(c))
    spaces = "".join(c for c in map(chr, range(0x3001)) if c.isspace() or split.fullmatch(c + "'"))
    rng = random.Random(5)
    chars = "ab'’-–—,;:()[]{}“”„\"«»‹›「」.\n😀" + spaces
    texts = ["", "'", "a'", " '", " - ", "a - b", "x, y", "a ' b", "'a'"]
    texts += ["".join(rng.choice(chars) for _ in range(rng.randrange(1, 60))) for _ in range(600)]
    if SENTENCES.is_dir():
        texts += (SENTENCES / "fr.txt").read_text(encoding="utf-8").splitlines()[:200]
    for text in texts:
        n = len(text)
        spans = [(0, n), (min(3, n), max(min(3, n), n - 2)), (n // 2, n), (n, n)]
        spans += [tuple(sorted((rng.randrange(n + 1), rng.randrange(n + 1)))) for _ in range(4)]
        got = lang._clause_lists(code_points(text), spans)
        assert got == [lang._clauses(text, a, b) for a, b in spans], (text, spans)
    assert any(lang._clauses(t, 0, len(t)) for t in texts)


def sentence_words_by_python(text: str, s: int, e: int, script: str, main: str) -> tuple[int, ...]:
    """What `sentence_words` replaces: `_WORD_RE.findall`, `_code_like`'s counts and `_may_tell`'s bound
    (the most listed words, plus main's odd-spelt words)."""
    table = lang._score_table(script)
    words = lang._WORD_RE.findall(text, s, e)
    low = [w.lower() for w in words]
    rows = np.array([table.row.get(w, 0) for w in low], dtype=np.int64)
    listed = kernels.most_listed(rows, table.ptr, table.langs, len(table.names), lang._score_positions(script)[main])
    main_words = lang._profiles().words[main]
    odd = {w for w in low if not w.isascii() and main in lang._odd_langs(w, script) and w not in main_words}
    nonspace = len("".join(text[s:e].split()))
    return len(words), sum(map(len, words)), nonspace, listed, listed + len(odd), int("".join(set(low)).isascii())


@needs_sentences
def test_pair_scores_are_the_sentences_scores():
    """`_pair_scores` (`_bilingual`'s two scores per sentence) against `_scores` of each sentence's
    words, on lingua text of several languages and CC pages, for pairs of the script's languages (ones
    the words touch, and ones they do not: -inf); a word with an astral letter leaves it to Python."""
    lines = []
    for code in ("en", "de", "fr", "es", "pl", "vi", "nl", "it"):
        lines.extend((SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:40])
    texts = ["\n".join(lines), "(« Oui, » dit-il) -- l'été: ÉCOLE… x\u3000y\u00a0z « ok »!", "", "   "]
    if CC.exists():
        with CC.open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for _, line in zip(range(60), f, strict=False)]
    stage = lang.LanguageStage()
    names = lang._score_table("Latin").names
    checked = 0
    for text in texts:
        low, low_cps, per_char = lang._lowercase(text, code_points(text))
        if not per_char:
            continue
        spans = stage._sentences(text, 0, len(text)) + [(0, len(text)), (0, 0)]
        for mine, theirs in (("en", "de"), ("fr", "es"), ("pl", "vi"), ("de", "nl"), ("it", "xh")):
            got = lang._pair_scores(low_cps, spans, "Latin", mine, theirs)
            if got is None:
                continue
            for (s, e), pair in zip(spans, got, strict=True):
                words = [v for w in text[s:e].lower().split() if (v := w.strip(lang._STRIP)).isalpha()]
                scores, _ = stage._scores(words, "Latin")
                assert pair == [scores.get(mine, -math.inf), scores.get(theirs, -math.inf)], text[s:e]
                checked += 1
    assert checked > 2000
    assert "xh" in names and "it" in names
    assert lang._pair_scores(code_points("the cat 𝐀𝐁𝐂 sat"), [(0, 15)], "Latin", "en", "de") is None


@needs_sentences
def test_sentence_words_are_the_word_regex_counts_and_bound():
    """`sentence_words` per sentence against the regex, `str.split` and the lowercased words' rows,
    and its words against `_WORD_RE.finditer` and `_evidence`'s case tests; a sentence with a capital
    sigma or an astral letter is left to Python (-1s)."""
    lines = []
    for code in ("en", "de", "fr", "pl", "vi", "ru", "uk", "el"):
        lines.extend((SENTENCES / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:30])
    edge = [
        "L'homme d’affaires a dit: rock’n’roll' et l'' eau ’s x' y.",  # apostrophes joining or not
        "Ca\u0301fe\u0301 na\u00efve Ⅻ ǅungla \u212aelvin ẞtraße\u00a0und\x1cdas\u2003ist gut.",  # marks, case, spaces
        "la Ǆungla, el ǅungla y ǆungla, ⅻ ﬀ iPhone eBay McDonald ÉCOLE ſtraße ﬁnal ᾈδης.",  # titlecase, no case
        "ΟΔΟΣ.Α και ΟΔΟΣ ΑΘΗΝΑΣ, σας παρακαλώ ΣΑΣ.",  # capital sigma: lowercased by context
        "Math 𝐀𝐁𝐂 letters and 𠀋 here, then words.",  # astral letters
        "x_y=1; f(a, b) -> c[0] {}",
        "as Smith et al. found, and et al, and al et al",  # "et al." left out
        "",
    ]
    text = "\n".join(lines + edge)
    low = text.lower()
    assert len(low) == len(text)
    spans = lang._sentences_by_regex(text, 0, len(text))
    spans += [(0, 0), (5, 40), (len(text) - 30, len(text))]  # any span: none, mid-word ends
    cps, low_cps = code_points(text), code_points(low)
    left = 0
    dropped = 0  # capitalised words inside that `_evidence` leaves out
    odd_words = 0  # sentences whose bound counts odd-spelt words (main: with an alphabet or, vi, el, none)
    for script, mains in (("Latin", ("en", "de", "pl", "vi")), ("Cyrillic", ("ru", "uk", "be")), ("Greek", ("el",))):
        table = lang._score_table(script)
        for main in mains:
            got = kernels.sentence_words(
                cps, low_cps, np.array(spans, dtype=np.int64), lang._word_char_table(), kernels.SPACES,
                *lang._word_rows(script), table.ptr, table.langs, len(table.names), lang._score_positions(script)[main],
                lang._letter_classes(script), lang._odd_table(main, script), main in lang._script_alphabets(script)[1],
                lang._case_table(),
            )  # fmt: skip
            got, words = got[0].tolist(), got[1].tolist()
            for (s, e), row in zip(spans, got, strict=True):
                segment = text[s:e]
                if "Σ" in segment or any(ord(c) >= 0x10000 for c in segment):
                    assert row == [-1] * 7, segment
                    left += 1
                    continue
                assert tuple(row[:6]) == sentence_words_by_python(text, s, e, script, main), (script, main, segment)
                odd_words += row[4] > row[3]
                found = [m.group() for m in lang._WORD_RE.finditer(text, s, e)]
                assert words[row[6] : row[6] + row[0]] == [
                    [m.start(), m.end(), int(w.islower() or not w[:1].isupper()), table.row.get(w.lower(), 0)]
                    for m, w in zip(lang._WORD_RE.finditer(text, s, e), found, strict=True)
                ]
                pieces = [(a, b, low[a:b], kept, r) for a, b, kept, r in words[row[6] : row[6] + row[0]]]
                for k in range(len(found)):  # any run of words, as a clause's: its first word kept
                    assert lang._evidence_of(pieces[k:]) == lang._evidence(found[k:])
                    assert [p[2] for p in lang._evidence_pieces(pieces[k:])] == lang._evidence(found[k:])
                dropped += sum(1 for *_, kept in pieces if not kept)
    assert left >= 4 and odd_words >= 20 and dropped >= 100


@pytest.mark.skipif(not CC.is_file(), reason="CC documents not available")
def test_same_script_search_with_sentence_words_is_the_python_one(monkeypatch: pytest.MonkeyPatch):
    """The stage with `sentence_words` and with every sentence left to Python (-1s, the code before
    the kernel) on CC pages: the same texts, meta and counters (same-script-candidates included)."""
    from pipeline.document import Document

    texts = [json.loads(line)["text"] for line in CC.open(encoding="utf-8")][:300]

    def run() -> list:
        stage = lang.LanguageStage()
        out = []
        for i, text in enumerate(texts):
            doc = Document(id=str(i), text=text, source="cc")
            stage.process(doc)
            out.append((doc.text, sorted(doc.meta.items())))
        return [out, sorted(stage.take_stats().items())]

    compiled = run()

    def by_python(self, text, cps, low, low_cps, spans, main, script) -> tuple:
        return [(-1,) * 7] * len(spans), np.zeros((0, 3), dtype=np.int64)

    monkeypatch.setattr(lang.LanguageStage, "_sentence_counts", by_python)
    assert run() == compiled
    assert dict(compiled[1]).get("same-script-candidates", 0) > 20


@needs_sentences
def test_sentence_hits_keep_what_the_python_loop_keeps():
    """`sentence_hits` (via `_hits_by_sentence`) against `_hits_in_python`, the loop it replaces: on lingua
    text of Latin languages with capitalised words inside and at the start of sentences and clauses,
    odd-spelt words, and CC pages; once with the main language's real foreign-word keys and once with
    the keys of every token of the text (then most key hits are not foreign words: "collisions" the
    text must turn down), for several main languages; the kernels one by one and in one call."""
    stage = lang.LanguageStage()
    extra = (
        "\nDie Katze und der Hund. Und Der Hund, Die Katze (Der Mann) sagte: Die Frau — Das Haus. "
        "«Der» „Die“ (die) die; Die der. ÉCOLE et Été, l'été ǅemal die DER Der1 1Der der, die ñandú "
        "Über über ÜBER Straße straße. A B Die der die der.\n"
        "Die Katze 😀 und der Hund, die Frau und das Haus, der Mann und die Katze 𝐀.\n"
    )
    texts = ["\n".join((SENTENCES / f"{c}.txt").read_text(encoding="utf-8").splitlines()[:150]) + extra for c in
             ("en", "de", "fr", "es", "pl", "vi")]  # fmt: skip
    texts += [json.loads(line)["text"] for line in CC.open(encoding="utf-8")][:120] if CC.is_file() else []
    compared = kept = collisions = astral = 0
    for text in texts:
        low = text.lower()
        if len(low) != len(text):
            continue
        low_cps, cps = code_points(low), code_points(text)
        for main in ("en", "de", "fr", "pl"):
            odd = lang._odd_table(main, "Latin")
            every = word_set_keys(set(low.split()))
            for keys in (lang._foreign_keys("Latin", lang._score_positions("Latin")[main]), every):
                rows = kernels.line_hits(low_cps, *keys, odd, stage._shortest_line(), kernels.SPACES)
                if not len(rows):
                    continue
                found, which = kernels.hit_sentences(cps, rows, lang._sentence_table(), kernels.SPACES)
                expected = stage._hits_in_python(text, low, rows, found, which, main, "Latin")
                got, _ = stage._hits_by_sentence(text, low, low_cps, main, "Latin", lang._Taken([]))
                if keys is every:  # `_hits_by_sentence` uses the real keys: compare the kernel itself
                    ok, rows_kept, two = kernels.sentence_hits(
                        cps, low_cps, rows, which, len(found), lang._case_table(), lang._alpha_table(),
                        lang._letter_or_digit_table(), lang._CLAUSE_MARK_TABLE, kernels.SPACES,
                        *lang._word_rows("Latin"), lang._frequent_rows("Latin"), lang._score_table("Latin").ptr,
                        lang._score_table("Latin").langs, lang._score_positions("Latin")[main], odd, found,
                    )  # fmt: skip
                    if not ok:  # a hit line holding an astral code point: Python decides
                        assert (which == -2).any()
                        continue
                    # every kept hit, by sentence, in order; the sentences with two distinct words
                    where = [(at, low[ts:te]) for at, ts, te in rows_kept.tolist()]
                    assert where == [hit for hits in expected.values() for hit in hits]
                    by_kernel = {(s, e): where[first:end] for s, e, first, end in two.tolist()}
                    assert by_kernel == {k: v for k, v in expected.items() if len({w for _, w in v}) >= 2}
                    collisions += len(rows) - len(rows_kept)
                else:
                    assert got == lang._two_words(expected, lang._Taken([]))
                    # the three kernels in one call (`hits_by_sentence`, given the text's code points)
                    fused, _ = stage._hits_by_sentence(text, low, low_cps, main, "Latin", lang._Taken([]), cps)
                    assert fused == got
                    astral += bool((which == -2).any())  # (the fused call's Python path too)
                compared += 1
                kept += sum(map(len, expected.values()))
    assert compared > 100 and kept > 1000 and collisions > 1000 and astral > 0


@needs_sentences
def test_two_distinct_hits_of_a_clause_are_the_set_count():
    """`_two_distinct` (a clause's hits by bisection) is ``len({w for h, w in where if cs <= h < ce}) >= 2`` on
    the hits `_hits_by_sentence` gives (their positions ascending) for random clauses of their sentences."""
    stage = lang.LanguageStage()
    rng = random.Random(11)
    checked = true = 0
    for code, main in (("de", "en"), ("en", "de"), ("fr", "es"), ("pl", "en")):
        guest, host = ((SENTENCES / f"{c}.txt").read_text(encoding="utf-8").splitlines()[:200] for c in (code, main))
        mixed = [f"{a} {b}" for a, b in zip(guest, host, strict=True)]
        text = "\n".join(mixed)
        low = text.lower()
        low_cps, cps = code_points(low), code_points(text)
        sentences, _ = stage._hits_by_sentence(text, low, low_cps, main, "Latin", lang._NOTHING_TAKEN, cps)
        for s, e, where in sentences:
            at = [h for h, _ in where]
            assert at == sorted(at)
            for _ in range(10):
                cs = rng.randrange(s, e + 1)
                ce = rng.randrange(cs, e + 1)
                expected = len({w for h, w in where if cs <= h < ce}) >= 2
                assert lang._two_distinct(where, at, cs, ce) == expected
                checked += 1
                true += expected
    assert checked > 1000 and 100 < true < checked


def test_urls_are_the_url_regex_matches():
    """`_urls` (the regex tried only where "://" or "www." puts one of its literal starts) gives the spans
    of `_URL_RE.finditer` on CC pages and on text built around its traps: a scheme at the text's start,
    "https" whose "http" is not a start, "www." inside a URL (no second match), no character after the
    literal, quotes and spaces that end a URL, "://" with no scheme."""
    texts = [json.loads(line)["text"] for line in CC.open(encoding="utf-8")][:200] if CC.is_file() else []
    texts += [
        "http://a.b x",
        "see https://www.example.com/x?y=1, and www.test.org.",
        '://x http:// www. ftp://f "https://q" <http://r>',
        "xhttps://a“b” wwww.c hhttp://d",
        "ahttp://ftp://www.e",
    ]
    found = 0
    for text in texts:
        expected = [m.span() for m in lang._URL_RE.finditer(text)]
        assert lang._urls(text) == expected, text[:200]
        found += len(expected)
    assert found >= 10
