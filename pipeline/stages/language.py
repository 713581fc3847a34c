"""Language stage: find a document's main language and take out fragments in other languages.

Two checks, cheap first:

* **Script check.** Letters are grouped into runs by Unicode script (``regex`` ``\\p{Han}``,
  ``\\p{Cyrillic}``, ...). Runs of a script outside the document's main script group, together with
  the neutral characters (spaces, digits, punctuation, CJK punctuation) between and around them,
  form a candidate fragment, flagged when it is long enough: ``min_cjk_chars`` Han/Kana/Hangul
  characters, or ``min_words`` words for alphabetic scripts. Japanese (Han + Kana) and Korean
  (Hangul + Han) are one group each. Latin inside a non-Latin text (names, brands, URLs) is only
  flagged when it looks like a sentence, and not like code, markup or a reference (programming
  punctuation, tags, shell paths; author initials with a year, "et al.", "subsp.", pages, a quoted
  title with its year: `_latin_content`); a short run inside a host sentence (a name, term or title)
  is part of it unless its words read as a language, and a run stops at the host sentence it ends
  or starts (`_own_sentences`). A short name in its own script glossed in brackets after a host
  word ("(hebrejsky יוסף גדליה קלוזנר; ...)") stays.
* **Main language.** Word profiles (``data/language/profiles.json``: the ~300 most frequent
  lowercase words of 70 languages, built from the second half of the lingua sentences) score ~250
  words spread over the text; langdetect (seeded) only decides when the profiles give no clear
  winner. CJK and other single-language scripts name the language directly. The main script is the
  one with most letters, a capitalised word (names, menus, headers) weighing half. A text whose
  sentences lean to a second language for 40 % of it is a two-language text: no same-script check.
  So is a text whose second script holds 30 % of the letters and the majority of 3+ sentences (a
  tweet and its translation): its letters are not foreign fragments.
* **Same-script check.** Only when the profiles named the main language clearly (a main language
  langdetect had to guess skips it). A sentence is a candidate when it holds two distinct words
  frequent in another language of its script, or spelt with letters the main language's alphabet
  lacks (``alphabets.yaml``: Ukrainian і ї є in Russian, ñ in Portuguese). Candidates, then their
  clauses (split at commas, brackets, quotes, dashes), of at least ``same_script_min_words`` words
  are scored against the profiles (capitalised words inside - names, titles - and "et al." do not
  count; a word with a letter outside a language's alphabet costs it). Two distinct telling words
  and a clear margin flag it; a small margin asks langdetect restricted to the two languages. A
  sentence goes whole only if none of its clauses leans to the main language; a line two thirds of
  whose letters are fragments of one language goes whole. Chinese hosts judge Japanese clause by
  clause (kana share, then langdetect); Japanese/Korean hosts judge Chinese sentences (no
  kana/hangul, langdetect).

Flagged fragments take the quotation marks around them when they are a quotation's whole content
(`_quoted_span`), then are removed (``action: remove``), listed in ``doc.meta["language_fragments"]``
(``tag``) or only counted (``keep``).

The loops over every character or token (script runs, the same-script word search, the sample's
tokens) and langdetect's trial loop are compiled, in ``language_kernels.py``; decisions stay here.
"""

from __future__ import annotations

import bisect
import codecs
import difflib
import hashlib
import io
import json
import marshal
import math
import os
import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from itertools import accumulate, compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import regex
import yaml
from pydantic import Field, field_validator

from pipeline.document import Document
from pipeline.offsets import note_cuts
from pipeline.stages import language_kernels
from pipeline.stages.base import (
    CACHE_DIR,
    Stage,
    StageOptions,
    cached_build,
    cached_table,
    save_cache_file,
    source_of,
    with_digest,
    without_digest,
)
from pipeline.stages.text_kernels import code_points, distinct_sorted, table_size

# Scripts we recognise by name; letters of any other script are "Other". Hiragana and Katakana
# (plus the prolonged sound mark, which is Common) are one "Kana" script.
_SCRIPT_CLASSES: dict[str, str] = {
    "Latin": r"\p{Latin}",
    "Cyrillic": r"\p{Cyrillic}",
    "Greek": r"\p{Greek}",
    "Arabic": r"\p{Arabic}",
    "Hebrew": r"\p{Hebrew}",
    "Han": r"\p{Han}",
    "Kana": r"\p{Hiragana}\p{Katakana}\u30fc",
    "Hangul": r"\p{Hangul}",
    "Devanagari": r"\p{Devanagari}",
    "Bengali": r"\p{Bengali}",
    "Gurmukhi": r"\p{Gurmukhi}",
    "Gujarati": r"\p{Gujarati}",
    "Tamil": r"\p{Tamil}",
    "Telugu": r"\p{Telugu}",
    "Kannada": r"\p{Kannada}",
    "Malayalam": r"\p{Malayalam}",
    "Sinhala": r"\p{Sinhala}",
    "Thai": r"\p{Thai}",
    "Lao": r"\p{Lao}",
    "Khmer": r"\p{Khmer}",
    "Myanmar": r"\p{Myanmar}",
    "Tibetan": r"\p{Tibetan}",
    "Georgian": r"\p{Georgian}",
    "Armenian": r"\p{Armenian}",
    "Ethiopic": r"\p{Ethiopic}",
}
_CJK = frozenset({"Han", "Kana", "Hangul"})
# Scripts written without spaces between words: word counts are estimated from letters.
_UNSPACED = frozenset({"Thai", "Lao", "Khmer", "Myanmar", "Tibetan"})
# Scripts that name their language (no langdetect call needed for a fragment).
_SCRIPT_LANGUAGE = {
    "Han": "zh",
    "Kana": "ja",
    "Hangul": "ko",
    "Greek": "el",
    "Hebrew": "he",
    "Thai": "th",
    "Georgian": "ka",
    "Armenian": "hy",
    "Bengali": "bn",
    "Gujarati": "gu",
    "Gurmukhi": "pa",
    "Tamil": "ta",
    "Telugu": "te",
    "Kannada": "kn",
    "Malayalam": "ml",
    "Sinhala": "si",
    "Lao": "lo",
    "Khmer": "km",
    "Myanmar": "my",
    "Tibetan": "bo",
    "Ethiopic": "am",
}
# Language recorded for a fragment whose words do not tell (label only).
_SCRIPT_DEFAULT = {"Latin": "en", "Cyrillic": "ru", "Arabic": "ar", "Devanagari": "hi"}
# langdetect codes -> the ISO 639-1 codes we record.
_LANG_ALIASES = {"zh-cn": "zh", "zh-tw": "zh", "nb": "no", "nn": "no"}
# our codes -> langdetect's, for its prior map
_LD_CODES = {"zh": "zh-cn"}
# punctuation stripped from whitespace-split tokens
_STRIP = "\"'“”„«»‘’‚‹›()[]{}<>.,;:!?¿¡…–—-/|*#+=&%$€@~^_`"

# The lookahead (a character outside Common/Inherited, or the Common prolonged sound mark) holds for
# the first character of every run: it skips spaces, digits and punctuation without trying the 26
# alternatives (~25 % faster; checked over every code point).
_RUN_RE = regex.compile(
    r"(?=[^\p{Common}\p{Inherited}]|\u30fc)(?:"
    + "|".join(f"(?P<{name}>[{cls}][{cls}\\p{{Inherited}}]*)" for name, cls in _SCRIPT_CLASSES.items())
    + r"|(?P<Other>(?![\p{Common}\p{Inherited}])\p{L}[\p{Inherited}]*))"
)
# Spans whose letters never count: URLs, e-mail addresses, code-like tokens. Three patterns, each
# searched only when the text can hold it: one alternation of the three is about 3x slower.
_URL_RE = regex.compile(r"""(?:https?://|ftp://|www\.)[^\s<>"'“”]+""")
_EMAIL_RE = regex.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CODE_TOKEN_RE = regex.compile(
    r"\b[A-Za-z0-9_]+(?:[_/\\=<>{}\[\]|#$]|::|->|\.(?=[a-z_]))[A-Za-z0-9_/\\=<>{}\[\]|#$.:>-]*"
)
# What every code-token match holds (its middle alternatives) and the characters any of its
# characters is one of: a code token lies in a run of `_CODE_CHARS` holding a trigger, so only
# those runs are searched (the regex tried its word boundary at every position: ~3x slower).
# Pure ASCII classes: the standard `re` means the same and is faster here.
_CODE_TRIGGER_RE = re.compile(r"[_/\\=<>{}\[\]|#$]|::|->|\.[a-z_]")
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/\\=<>{}[]|#$.:>-")
# `_CODE_CHARS`, `_CODE_TRIGGER_RE`'s one-character alternative and `_CODE_TOKEN_RE`'s [A-Za-z0-9_], by
# code point, for `language_kernels.code_tokens` (which tests the trigger's other alternatives itself)
_CODE_TABLE = np.zeros(128, dtype=np.uint8)
_CODE_TABLE[[ord(c) for c in _CODE_CHARS]] = language_kernels.CODE_CHAR
_CODE_TABLE[[ord(c) for c in "_/\\=<>{}[]|#$"]] |= language_kernels.CODE_TRIGGER
_CODE_TABLE[[ord(c) for c in _CODE_CHARS if c.isalnum() or c == "_"]] |= language_kernels.CODE_WORD
_SPACE_OR_NEWLINE_RE = re.compile("[ \n]")
_NON_LATIN_LETTER_RE = regex.compile(r"[\p{L}--\p{Latin}]", regex.V1)
_LETTER_RE = regex.compile(r"\p{L}")
_WORD_RE = regex.compile(r"[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*")
_LETTER_OR_DIGIT_RE = regex.compile(r"[\p{L}\p{N}]")
_WORD_LETTER_RE = regex.compile(r"[\p{L}\p{M}]")  # `_WORD_RE`'s letters
# Sentence boundaries: after . ! ? … (+ closing quotes, also German “ and Danish «) before a space or glued to a capital
# ("situation.”Putin", "stage.He"), after CJK 。！？, and at newlines. The leading lookahead holds
# the first character of every alternative, and the glued end's lookbehind comes after its first
# mark: the regex skips all other characters without trying the alternatives (~40 % faster).
_SENTENCE_END_RE = regex.compile(
    r"(?=[.!?…。！？\n])(?:"
    r"[.!?…]+[\"”’»“«)\]]*(?=\s)"
    r"|[.!?](?<=\p{Ll}{2}.)[.!?]*[\"”’»]*(?=[\"“„«]?\p{Lu})"
    r"|[。！？!?]+[」』”’）)]*"
    r"|\n)"
)
# One or two capitalised/code words closing a sentence right after a foreign run.
_TRAILING_NAMES_RE = regex.compile(
    r"((?:[ \t]+[\p{Lu}\d][\w+#-]*){1,2})(?=[.!?…]*(?:\s*$|\s+[\p{Lu}\p{Lo}\d\"“„«(\[]|\n))"
)
# A sentence end in any script (Armenian ։, Indic danda, Arabic ؟ and Urdu ۔, Ethiopic, Myanmar,
# Khmer, Tibetan, CJK) before a space or a letter of another script than Latin (Chinese sentences
# follow with no space), or a line break: the bounds of the host sentence around a Latin run.
_ANY_SENTENCE_END_RE = regex.compile(r"[.!?…։।॥؟۔።፧။។།]+[\"”’»“«)\]]*(?:\s|$|(?=[^\p{Latin}\P{L}]))|[。！？]|\n")
_SENTENCE_WINDOW = 300  # characters searched for the host sentence's bounds around a run
_EMBEDDED_WORDS = 4  # words of a Latin run inside a host sentence that may be a name, term or title
_ELISION = "'‘’"
_CJK_PUNCT = "。．，、！？；：…‥〜～・"
_STRAY_CJK_PUNCT = "。，、！？；："
_LIST_SEPARATORS = ",，、;；|/"
_STRAY_CJK_PUNCT_RE = regex.compile(f"[{_STRAY_CJK_PUNCT}]+")


def _has_stray_punct(text: str) -> bool:
    """Does the text hold a `_STRAY_CJK_PUNCT` character? (str search is much faster than the regex, and
    these written out ~5x faster than ``any()`` over a generator: a text of Latin-1 characters is answered
    at once for each)"""
    return "。" in text or "，" in text or "、" in text or "！" in text or "？" in text or "；" in text or "：" in text


_OPENERS = {
    "(": ")",
    "[": "]",
    "{": "}",
    "（": "）",
    "「": "」",
    "『": "』",
    "【": "】",
    "《": "》",
    "〈": "〉",
    "〔": "〕",
    "“": "”",
    "„": "“",
    "«": "»",
    "‘": "’",
    '"': '"',
    "'": "'",
}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_TERMINAL_PUNCT = ".!?…,;:"

_detect_lock = threading.Lock()


def _load_yaml(name: str) -> dict:
    path = resources.files("pipeline").joinpath("data", "language", name)
    # (libyaml's parser where PyYAML has it: ~0.09 ms instead of ~0.8 for alphabets.yaml; the same data)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a SafeLoader


@lru_cache(maxsize=1)
def _alphabets() -> dict[str, frozenset[str]]:
    """Lowercase letters of each listed language's alphabet (alphabets.yaml)."""
    return {str(lang): frozenset(str(letters)) for lang, letters in _load_yaml("alphabets.yaml").items()}


_FREQUENT = math.log(1 / 3000)  # a word this frequent in a language is a candidate sign of it
_SAMPLE_WORDS = 250  # words spread over a Latin text that name its main language (cheap to score)
_MAIN_LANGDETECT_CHARS = 1000  # langdetect's time grows with the text; 1000 characters decide a language
_OOV = math.log(0.5 / 20_000)  # about half the words of a text, spread over ~20k types, are unlisted
_BILINGUAL_CHARS = 20_000  # characters read to measure the shares of a two-language text
_BILINGUAL_SENTENCES = 3  # ... in at least this many sentences
_MAIN_MARGIN = 15.0  # log-likelihood margin at which the profiles name a main language alone


@dataclass(frozen=True, slots=True)
class _Profiles:
    """Word-frequency profiles (profiles.json, built from the second half of the lingua sentences)."""

    script: dict[str, str]  # language -> script
    words: dict[str, frozenset[str]]  # language -> its listed words
    oov: dict[str, float]  # language -> log probability of a word outside its list
    index: dict[str, tuple[tuple[str, float], ...]]  # word -> (language, logp - oov) for each list having it


@lru_cache(maxsize=1)
def _profiles() -> _Profiles:
    """profiles.json as `_Profiles` (`_saved_profiles`)."""
    return _saved_profiles().profiles


class _Saved(NamedTuple):
    """What `_saved_profiles` keeps: the profiles and the tables made from them for every script."""

    profiles: _Profiles
    indexes: dict[str, dict[str, tuple[tuple[str, float], ...]]]  # `_script_indexes`
    frequent: dict[str, dict[str, frozenset[str]]]  # script -> `_frequent_words`
    scores: dict[str, _ScoreTable]  # script -> `_score_table`


@lru_cache(maxsize=1)
def _saved_profiles() -> _Saved:
    """`_Profiles`, `_script_indexes` and each script's `_frequent_words` and `_score_table`, from the copy an
    earlier process saved beside the package (marshal: ~10 ms for all instead of ~0.05-0.07 s of parsing and
    building, and ~15 ms of regrouping the index by script and building a script's tables in every fresh
    process). The file name holds a hash of what it is made from (the JSON, _OOV, _FREQUENT, the builders'
    source, _PROFILES_CACHE_VERSION, the marshal format); the file holds the SHA-256 of its payload, and a copy
    that does not match it or does not read is rebuilt."""
    text = resources.files("pipeline").joinpath("data", "language", "profiles.json").read_bytes()
    builders = (_build_profiles, _build_script_indexes, _build_frequent_words, _build_score_table)
    sources = "".join(source_of(f.__code__) for f in builders)
    meta = repr((_OOV, _FREQUENT, _PROFILES_CACHE_VERSION, marshal.version, sources)).encode()
    key = hashlib.sha256(text + meta).hexdigest()[:16]

    def build() -> _Saved:
        prof = _build_profiles(json.loads(text))
        indexes = _build_script_indexes(prof)
        frequent = {script: _build_frequent_words(prof, index) for script, index in indexes.items()}
        scores = {script: _build_score_table(prof, index, script) for script, index in indexes.items()}
        return _Saved(prof, indexes, frequent, scores)

    def write(built: _Saved) -> bytes:
        prof = built.profiles
        scores = {
            script: (t.names, t.oov.tobytes(), t.row, t.ptr.tobytes(), t.langs.tobytes(), t.deltas.tobytes())
            for script, t in built.scores.items()
        }
        payload = marshal.dumps((prof.script, prof.words, prof.oov, prof.index, built.indexes, built.frequent, scores))
        return with_digest(payload)

    def read(data: bytes) -> _Saved | None:
        payload = without_digest(data)
        if payload is None:
            return None
        script, words, oov, index, indexes, frequent, saved_scores = marshal.loads(payload)
        scores = {}
        for name, (names, oovs, row, ptr, langs, deltas) in saved_scores.items():
            # copies: writable arrays (a read-only one would make numba compile its kernels again)
            arrays = [np.frombuffer(b, dtype=t).copy() for b, t in ((oovs, np.float64), (ptr, np.int64))]
            arrays += [np.frombuffer(b, dtype=t).copy() for b, t in ((langs, np.int64), (deltas, np.float64))]
            scores[name] = _ScoreTable(names, arrays[0], row, arrays[1], arrays[2], arrays[3])
        return _Saved(_Profiles(script, words, oov, index), indexes, frequent, scores)

    return cached_build(_CACHE_DIR / f"language_profiles-{key}.marshal", read, build, write)


_PROFILES_CACHE_VERSION = (
    3  # raise when what the saved copy holds changes (3: the script indexes and tables, a SHA-256)
)


def _build_profiles(data: dict) -> _Profiles:
    script, words, oov = {}, {}, {}
    index: dict[str, list[tuple[str, float]]] = {}
    for lang, prof in data.items():
        script[lang] = prof["script"]
        words[lang] = frozenset(prof["words"])
        # the same for every language: a per-language value (from its coverage) would favour
        # low-coverage languages on every name or number
        oov[lang] = _OOV
        for w, freq in prof["words"].items():
            index.setdefault(w, []).append((lang, math.log(freq) - oov[lang]))
    return _Profiles(script, words, oov, {w: tuple(v) for w, v in index.items()})


@lru_cache(maxsize=1)
def _factory():
    """A langdetect ``DetectorFactory`` holding its profiles (the languages in langdetect's order and
    each n-gram's probability per language, the same floats): read from the compact copy an earlier
    process saved beside the package (`_ProfileMap`, ~0.04 s), else loaded by langdetect itself (~0.4 s
    of JSON and Python loops in every process that needs langdetect) and saved for the next ones."""
    from langdetect import DetectorFactory

    key, path = _profile_cache_key()

    def build() -> _ProfileMap:
        reference = _reference_factory()
        return _ProfileMap.build(reference.word_lang_prob_map, reference.langlist)

    # (read by its path: the 7.3 MB file read into bytes first, then each array copied out of them, cost ~4 ms and
    # ~2k page faults more in every process that detects with langdetect)
    cached = cached_build(
        path, lambda saved: _ProfileMap.from_bytes(saved, key), build, lambda m: m.to_bytes(key), by_path=True
    )
    factory = DetectorFactory()
    factory.langlist = list(cached.langs)
    factory.word_lang_prob_map = cached
    return factory


def _reference_factory():
    """langdetect's own global factory (profiles read from its JSON files)."""
    from langdetect import detector_factory

    detector_factory.init_factory()
    return detector_factory._factory


def _profile_cache_key() -> tuple[str, Path]:
    """What langdetect's profiles are (its profile files in the order it reads them, with their sizes
    and times) and the cache file for them."""
    from langdetect import detector_factory

    folder = Path(detector_factory.PROFILES_DIRECTORY)
    files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in map(folder.joinpath, os.listdir(folder))]
    # the gram table saved with the map is made by this code (its hash and probing)
    k = language_kernels
    table_code = [source_of(f.__code__) for f in (k.gram_table, k._put_grams.py_func, k._slot.py_func)]
    table_code += [source_of(table_size.py_func.__code__), int(k._GOLDEN)]
    key = json.dumps([_PROFILE_CACHE_VERSION, str(folder), files, table_code])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return key, _CACHE_DIR / f"langdetect_profiles-{digest}.npz"


_PROFILE_CACHE_VERSION = 2  # (2: the gram table saved with the map)


class _ProfileMap:
    """langdetect's ``word_lang_prob_map`` (n-gram -> probability per language), sparse: ~184k non-zero
    values of 87,598 x 55. ``in`` and ``[]`` are all the stage and langdetect's Detector ask of it
    (``[]`` gives the dense row, zeros where langdetect has 0.0)."""

    def __init__(self, grams: list[str], langs: list[str], starts: np.ndarray, lang_ids: np.ndarray, probs: np.ndarray):
        self.langs = langs
        self.grams = grams
        self.starts, self.lang_ids, self.probs = starts, lang_ids, probs

    @classmethod
    def _from_joined(
        cls, joined: str, langs: list[str], starts: np.ndarray, lang_ids: np.ndarray, probs: np.ndarray
    ) -> _ProfileMap:
        """The map of the n-grams ``joined`` holds between NUL characters (none holds one: `to_bytes`), whose
        list is made only when asked for (the stage's own path needs only `gram_table`)."""
        self = cls.__new__(cls)
        self.langs, self._joined = langs, joined
        self.starts, self.lang_ids, self.probs = starts, lang_ids, probs
        return self

    @cached_property
    def grams(self) -> list[str]:  # (only a map made by `_from_joined` gets here: __init__ sets it)
        return self._joined.split("\x00")

    @cached_property
    def row(self) -> dict[str, int]:
        """Each n-gram's row, made at first use: the stage's own path (`_compiled_ngram_ids`) goes by the
        n-grams' `language_kernels.gram_table` and never asks it (~12 ms of a fresh process's set-up)."""
        return dict(zip(self.grams, range(len(self.grams)), strict=True))

    def gram_table(self) -> tuple[np.ndarray, np.ndarray]:
        """`language_kernels.gram_table` of the n-grams: for a map read from its saved copy, the table saved with
        it (made by the same code: the copy's key holds that code, `_profile_cache_key`); building it took ~10 ms
        and splitting the saved n-grams into a list for it ~5 ms of every process that detects with langdetect."""
        saved = self.__dict__.get("_table")
        return saved if saved is not None else language_kernels.gram_table(self.grams)

    def __contains__(self, gram: object) -> bool:
        return gram in self.row

    def __getitem__(self, gram: str) -> np.ndarray:
        row = self.row[gram]
        begin, end = self.starts[row], self.starts[row + 1]
        out = np.zeros(len(self.langs))
        out[self.lang_ids[begin:end]] = self.probs[begin:end]
        return out

    def __len__(self) -> int:
        return len(self.starts) - 1

    @classmethod
    def build(cls, word_lang_prob_map: dict[str, list[float]], langs: list[str]) -> _ProfileMap:
        grams = list(word_lang_prob_map)
        dense = np.array([word_lang_prob_map[g] for g in grams], dtype=np.float64).reshape(len(grams), len(langs))
        rows, lang_ids = np.nonzero(dense)
        starts = np.zeros(len(grams) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(grams)), out=starts[1:])
        return cls(grams, list(langs), starts, lang_ids.astype(np.int16), dense[rows, lang_ids])

    def to_bytes(self, key: str) -> bytes | None:
        """The map as the cache file holds it (``key`` names the profiles it was built from)."""
        grams = "\x00".join(self.row)
        if grams.count("\x00") != len(self.row) - 1:
            return None  # an n-gram holding the separator: not saved (each process loads the profiles)
        table = self.gram_table()
        saved = io.BytesIO()
        np.savez(
            saved,
            key=np.array(key),
            grams=np.frombuffer(grams.encode("utf-8", "surrogatepass"), dtype=np.uint8),
            langs=np.array("\x00".join(self.langs)),
            starts=self.starts,
            lang_ids=self.lang_ids,
            probs=self.probs,
            table_keys=table[0],
            table_ids=table[1],
        )
        return saved.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | Path, key: str) -> _ProfileMap | None:
        """The map ``to_bytes`` gave (or the file holding it), None when it was saved for other profiles (a damaged
        copy raises: the zip format's CRC-32 of each array)."""
        with np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            joined = f["grams"].tobytes().decode("utf-8", "surrogatepass")
            langs = str(f["langs"]).split("\x00")
            loaded = cls._from_joined(joined, langs, f["starts"], f["lang_ids"], f["probs"])
            keys, ids = f["table_keys"], f["table_ids"]
            if keys.dtype != np.uint64 or ids.dtype != np.int64 or keys.shape != ids.shape or keys.ndim != 1:
                return None
            loaded._table = (keys, ids)
            return loaded


def _probabilities(detector, keep_random: bool = True) -> list:
    """``detector.get_probabilities()`` with its trial loop compiled (`language_kernels.
    langdetect_trials`): the same text cleaning, n-grams, random draws and arithmetic, so the same
    result. The draws come from a copy of the seeded generator's state, stepped by the kernels
    (`language_kernels.mt_next`: Python's own generator cost a state copy and restore per trial);
    the detector's generator is left as langdetect would leave it, unless `keep_random` is False
    (the stage's own detectors, whose generator nothing reads: setting its 625 words took ~15 µs)."""
    from langdetect.lang_detect_exception import ErrorCode, LangDetectException

    detector.text = _cleaned_text(detector.text)
    rows = _ngram_rows(detector.word_lang_prob_map, len(detector.langlist))
    ids = np.array(_ngram_ids(detector.text, rows), dtype=np.int64)
    if not len(ids):
        raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
    state = _seeded_state(detector.seed).copy()
    # every trial in one compiled call (a Python step per trial took ~10 µs of a ~100 µs call)
    langprob, cached, has_cached = language_kernels.langdetect_trials(
        ids, rows.matrix, np.array(detector._init_probability(), dtype=np.float64), detector.n_trial,
        detector.alpha, detector.ALPHA_WIDTH, detector.BASE_FREQ, state, detector.CONV_THRESHOLD,
        detector.ITERATION_LIMIT,
    )  # fmt: skip
    if keep_random:
        detector.random.setstate((3, tuple(state.tolist()), cached if has_cached else None))
    detector.langprob = langprob.tolist()
    return detector.get_probabilities()


@lru_cache(maxsize=256)
def _prior_map(among: tuple[str, ...]) -> list[float] | None:
    """``Detector.set_prior_map`` with each language of `among` langdetect knows at 1.0 (None when
    it knows fewer than two): the same list, built once per choice of languages (its loop over
    langdetect's 55 languages ran on every restricted call)."""
    factory = _factory()
    known = set(factory.get_lang_list())
    prior = {_LD_CODES.get(x, x): 1.0 for x in among if _LD_CODES.get(x, x) in known}
    if len(prior) < 2:
        return None
    detector = _fresh_detector(factory)  # (set_prior_map reads no random numbers: no generator seeded for it)
    detector.set_prior_map(prior)
    return detector.prior_map


_DETECTOR_TEMPLATE: list[tuple[object, dict]] = []  # (factory, a new detector's attributes)


def _fresh_detector(factory):
    """``factory.create()`` without seeding a new random generator from the OS for each detector
    (~40-70 µs a call, a tenth of a short langdetect call): the detectors share one, which
    `_probabilities` only leaves in the state langdetect would (its draws come from `_seeded_state`).
    The detector's other attributes are those a new one has."""
    from langdetect.detector import Detector

    if not _DETECTOR_TEMPLATE or _DETECTOR_TEMPLATE[0][0] is not factory:
        _DETECTOR_TEMPLATE[:] = [(factory, dict(vars(factory.create())))]
    template = _DETECTOR_TEMPLATE[0][1]
    detector = Detector.__new__(Detector)
    detector.__dict__.update(template)
    return detector


@lru_cache(maxsize=8)
def _seeded_state(seed: int) -> np.ndarray:
    """``random.Random(seed)``'s generator state (`language_kernels.mt_next`'s form)."""
    return np.array(random.Random(seed).getstate()[1], dtype=np.uint64)


# langdetect's `Detector.cleaning_text` counts, a step per character, its "Latin" characters ('A' to
# 'z') and its others (U+0300 and above: the block test it adds compares a block number with a name,
# so it is always true), and when the others are over twice as many drops the "Latin" ones.
_LD_LATIN_RE = re.compile("[A-z]")
# `Detector.append`'s loop keeps a space only after a character other than a space
_LD_SPACES_RE = re.compile("  +")


def _cleaned_text(text: str) -> str:
    """``Detector.cleaning_text``'s text, by counts of the code points instead of a Python step per
    character (or a list of every match of the two regexes: ~3x as long)."""
    if text.isascii():
        return text  # no character at U+0300 or above: nothing to drop
    cps = code_points(text)
    # 'A' <= ch <= 'z' (the unsigned difference wraps below 'A'), and ch >= U+0300
    if 2 * np.count_nonzero(cps - np.uint32(65) <= np.uint32(57)) < np.count_nonzero(cps >= np.uint32(0x300)):
        return _LD_LATIN_RE.sub("", text)
    return text


def _append(detector, text: str) -> None:
    """``detector.append(text)``: URLs and e-mail addresses blanked, Vietnamese marks normalised,
    the first ``max_text_length`` characters kept less each space after a space; by a regex
    instead of its step per character."""
    from langdetect.utils.ngram import NGram

    # each regex only where its match can be: a URL holds "://", an address "@", and a Vietnamese mark
    # (U+0300..U+0323) is beyond ASCII (three regex scans of a ~400-1000 character text took ~5 µs)
    if "://" in text:
        text = detector.URL_RE.sub(" ", text)
    if "@" in text:
        text = detector.MAIL_RE.sub(" ", text)
    if not text.isascii():
        text = NGram.normalize_vi(text)
    detector.text += _LD_SPACES_RE.sub(" ", text[: detector.max_text_length])


class _Normalized(dict):
    """langdetect's ``NGram.normalize`` of each character (always one character), for
    ``str.translate``: filled as characters are met."""

    def __missing__(self, code: int) -> str:
        from langdetect.utils.ngram import NGram

        self[code] = value = NGram.normalize(chr(code))
        return value


_NORMALIZED = _Normalized()


def _ngram_ids(text: str, rows: _NgramRows) -> list[int] | np.ndarray:
    """The rows of ``Detector._extract_ngrams()`` (the n-grams of the detector's text that its profiles
    know, in order), without langdetect's per-character method calls: the text normalised at once
    (`_NORMALIZED`), then the same buffer of the last 3 characters (reset after a space; none
    taken while two capitals in a row) and the same 1-, 2- and 3-grams; compiled for the stage's
    `_ProfileMap` (`language_kernels.ngram_grams`: the Python loop took ~40 % of a call)."""
    if rows.grams is not None:
        ids = _table_ngram_ids(text, rows)
        return ids if ids is not None else _compiled_ngram_ids(text.translate(_NORMALIZED), rows)
    index, known = rows.index, rows.probs
    out: list[int] = []
    grams, capital = " ", False
    for ch in text.translate(_NORMALIZED):
        last = grams[-1]
        if last == " ":
            grams, capital = " ", False
            if ch == " ":
                continue
        elif len(grams) >= 3:
            grams = grams[1:]
        grams += ch
        if ch.isupper():
            if last.isupper():
                capital = True
        else:
            capital = False
        if capital:
            continue
        # the 1-gram (not a space), then the 2- and 3-grams: the buffer holds 2 or 3 characters here
        for w in (ch, grams) if len(grams) == 2 else (ch, grams[1:], grams):
            if w != " ":
                row = index.get(w)
                if row:
                    out.append(row)
                elif w in known:
                    out.append(rows.add(w))
    return out


# `_NORMALIZED` by code point below U+10000 for `language_kernels.normalized_ngram_rows`, filled as code points
# are met (NOT_NORMALIZED: not yet, or normalised beyond the table)
_NORMALIZED_TABLE = np.full(0x10000, language_kernels.NOT_NORMALIZED, dtype=np.uint32)


def _table_ngram_ids(text: str, rows: _NgramRows) -> np.ndarray | None:
    """`_compiled_ngram_ids` of the text normalised, in one compiled pass over its code points that normalises
    them by `_NORMALIZED_TABLE` (str.translate, the upper-case test and the rows by numpy took ~15 µs a call);
    None for a text with a code point beyond the table (left to `_compiled_ngram_ids`)."""
    assert rows.grams is not None and rows.by_gram is not None
    cps = code_points(text)
    ok, grams, ids = language_kernels.normalized_ngram_rows(
        cps, _NORMALIZED_TABLE, _upper_table(), *rows.grams, rows.by_gram
    )
    if not ok:
        if not len(cps) or int(cps.max()) >= len(_NORMALIZED_TABLE):
            return None
        for c in distinct_sorted(cps[_NORMALIZED_TABLE[cps] == language_kernels.NOT_NORMALIZED]).tolist():
            normalized = ord(_NORMALIZED[c])
            if normalized >= len(_NORMALIZED_TABLE):
                return None  # (langdetect normalises no code point so: kept apart all the same)
            _NORMALIZED_TABLE[c] = normalized
        ok, grams, ids = language_kernels.normalized_ngram_rows(
            cps, _NORMALIZED_TABLE, _upper_table(), *rows.grams, rows.by_gram
        )
        assert ok
    if not ids.all():  # n-grams met for the first time: rows added in order of appearance, as there
        rows.add_grams(grams[ids == 0])
        ids = rows.by_gram[grams]
    return ids


def _compiled_ngram_ids(normalized: str, rows: _NgramRows) -> np.ndarray:
    """`_ngram_ids` of a normalised text by `language_kernels.ngram_grams`: the profile map's n-grams,
    then their rows (those met for the first time added in order of appearance, as there)."""
    assert rows.grams is not None and rows.by_gram is not None
    cps = code_points(normalized)
    upper = _upper_table()[np.minimum(cps, 0xFFFF)]
    for i in np.flatnonzero(cps > 0xFFFF).tolist():  # beyond the table (emoji, mostly): rare
        upper[i] = normalized[i].isupper()
    grams = language_kernels.ngram_grams(cps, upper, *rows.grams)
    ids = rows.by_gram[grams]
    if not ids.all():
        rows.add_grams(grams[ids == 0])
        ids = rows.by_gram[grams]
    return ids


@lru_cache(maxsize=1)
def _upper_table() -> np.ndarray:
    """`str.isupper` of every code point below U+10000: `_case_table`'s `CASE_UPPER` bit (that table is saved
    beside the package; building this one took ~3-5 ms of every process that detects with langdetect)."""
    assert language_kernels.WORD_TABLE_SIZE == 0x10000
    return (_case_table() & language_kernels.CASE_UPPER) != 0


class _NgramRows:
    """langdetect's n-gram probabilities (lists of floats) as rows of one matrix, added as n-grams are
    met: converting a text's n-grams to an array on every call took longer than its trials. For a
    `_ProfileMap`, also its n-grams' `language_kernels.gram_table` and each n-gram's row (0: none yet)."""

    def __init__(self, probs: _ProfileMap | dict[str, list[float]], n_langs: int) -> None:
        self.probs = probs  # held: the cache below is keyed by its id
        self.index: dict[str, int] = {"": 0}  # row 0 unused: a row id is never falsy (a dict map's rows)
        self.n_rows = 1
        self.matrix = np.zeros((1024, n_langs))
        self.grams: tuple[np.ndarray, np.ndarray] | None = None
        self.by_gram: np.ndarray | None = None
        if isinstance(probs, _ProfileMap):
            self.grams = probs.gram_table()
            self.by_gram = np.zeros(len(probs), dtype=np.int64)
            # a row for every n-gram at once (~38 MB of zeros the system gives as they are first written: only
            # the rows met take memory), so the matrix never grows: doubling it copied ~7 MB over a pass on
            # the 40 MB input's texts (~3 ms at its first texts in each process)
            self.matrix = np.zeros((len(probs) + 1, n_langs))

    def add(self, ngram: str) -> int:
        row = self.n_rows
        if row == self.matrix.shape[0]:
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
        probs = self.probs
        if isinstance(probs, _ProfileMap):  # its non-zero values straight into the (zero) row
            r = probs.row[ngram]
            begin, end = probs.starts[r], probs.starts[r + 1]
            self.matrix[row, probs.lang_ids[begin:end]] = probs.probs[begin:end]
            assert self.by_gram is not None
            self.by_gram[r] = row
        else:
            self.matrix[row] = probs[ngram]
            self.index[ngram] = row
        self.n_rows += 1
        return row

    def add_grams(self, grams: np.ndarray) -> None:
        """`add` of each n-gram of the `_ProfileMap` (by index) that has no row yet, in order, by one
        compiled pass (`language_kernels.add_gram_rows`): the rows they get and what the rows hold are
        those `add` gives (a call per n-gram cost ~4 µs, numpy's steps for all ~50 µs a text; most of a
        CC run's n-grams are met for the first time)."""
        probs, by_gram = self.probs, self.by_gram
        assert isinstance(probs, _ProfileMap) and by_gram is not None
        while self.matrix.shape[0] < self.n_rows + len(grams):  # room for all of them being new
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
        self.n_rows = language_kernels.add_gram_rows(
            grams, by_gram, self.matrix, self.n_rows, probs.starts, probs.lang_ids, probs.probs
        )

    def gram_rows(self) -> dict[str, int]:
        """Each n-gram that has a row, and its row."""
        if isinstance(self.probs, _ProfileMap):
            assert self.by_gram is not None
            return {self.probs.grams[g]: int(self.by_gram[g]) for g in np.flatnonzero(self.by_gram).tolist()}
        return {g: row for g, row in self.index.items() if row}


_NGRAM_ROWS: dict[int, _NgramRows] = {}


def _ngram_rows(word_lang_prob_map: _ProfileMap | dict[str, list[float]], n_langs: int) -> _NgramRows:
    """The `_NgramRows` of langdetect's (global) profile map."""
    rows = _NGRAM_ROWS.get(id(word_lang_prob_map))
    if rows is None:
        rows = _NGRAM_ROWS[id(word_lang_prob_map)] = _NgramRows(word_lang_prob_map, n_langs)
    return rows


def _norm_lang(code: str) -> str:
    return _LANG_ALIASES.get(code, code)


# English names of the languages the stage can name, to point a config that lists "english" to "en".
_LANGUAGE_NAMES = {
    "afrikaans": "af", "albanian": "sq", "amharic": "am", "arabic": "ar", "armenian": "hy", "azerbaijani": "az",
    "basque": "eu", "belarusian": "be", "bengali": "bn", "bosnian": "bs", "bulgarian": "bg", "burmese": "my",
    "catalan": "ca", "chinese": "zh", "croatian": "hr", "czech": "cs", "danish": "da", "dutch": "nl",
    "english": "en", "esperanto": "eo", "estonian": "et", "farsi": "fa", "finnish": "fi", "french": "fr",
    "georgian": "ka", "german": "de", "greek": "el", "gujarati": "gu", "hebrew": "he", "hindi": "hi",
    "hungarian": "hu", "icelandic": "is", "indonesian": "id", "irish": "ga", "italian": "it", "japanese": "ja",
    "kannada": "kn", "kazakh": "kk", "khmer": "km", "korean": "ko", "lao": "lo", "latin": "la", "latvian": "lv",
    "lithuanian": "lt", "macedonian": "mk", "malay": "ms", "malayalam": "ml", "maori": "mi", "marathi": "mr",
    "mongolian": "mn", "nepali": "ne", "norwegian": "no", "persian": "fa", "polish": "pl", "portuguese": "pt",
    "punjabi": "pa", "romanian": "ro", "russian": "ru", "serbian": "sr", "sinhala": "si", "slovak": "sk",
    "slovenian": "sl", "somali": "so", "spanish": "es", "swahili": "sw", "swedish": "sv", "tagalog": "tl",
    "tamil": "ta", "telugu": "te", "thai": "th", "tibetan": "bo", "turkish": "tr", "ukrainian": "uk",
    "urdu": "ur", "vietnamese": "vi", "welsh": "cy", "xhosa": "xh", "yoruba": "yo", "zulu": "zu",
}  # fmt: skip


@lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """The codes a document's main language can be (what ``languages`` may list): langdetect's, the
    word profiles', those named by their script, and ``und`` (no letters)."""
    import langdetect

    detector = os.listdir(os.path.join(os.path.dirname(langdetect.__file__), "profiles"))
    return frozenset(
        {_norm_lang(code) for code in detector}
        | set(_profiles().script)
        | set(_SCRIPT_LANGUAGE.values())
        | set(_SCRIPT_DEFAULT.values())
        | {"und"}
    )


class _Run(NamedTuple):
    """Letters of one script, text[start:end] (a tuple: a text has up to ~10^5 of them)."""

    start: int
    end: int
    script: str


class _Taken:
    """Spans already found (script fragments): does a span overlap one of them? Looked up in the spans
    sorted by start with the furthest end so far, where a scan of every span for every sentence grew with
    the square of a long mixed-language text (16M characters with a Russian phrase on each line: 122 s in
    this stage)."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self.starts = [start for start, _ in ordered]
        self.ends = list(accumulate((end for _, end in ordered), max))

    def overlaps(self, start: int, end: int) -> bool:
        """Whether some span (s, e) has s < end and start < e."""
        i = bisect.bisect_left(self.starts, end)  # the spans starting before ``end``
        return i > 0 and self.ends[i - 1] > start


_NOTHING_TAKEN = _Taken(())  # (read only: shared)


class _Runs:
    """A text's script runs: the rows of `_run_rows`, and `_Run` tuples made only for the runs a step
    reads. A Latin page with a few foreign words has a run per word (up to ~10^4), of which the
    script check reads the foreign ones and the two after each."""

    __slots__ = ("_all", "rows")

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self._all: list[_Run] | None = None

    def all(self) -> list[_Run]:
        if self._all is None:
            self._all = _runs_of_rows(self.rows)
        return self._all

    def outside(self, hosts: frozenset[str], limit: int) -> list[_Run]:
        """The runs outside `hosts` that start before `limit`."""
        rows = self.rows[: np.searchsorted(self.rows[:, 0], limit)]
        return _runs_of_rows(rows[~_in_scripts(rows, hosts)])

    def around(self, hosts: frozenset[str]) -> list[_Run]:
        """The runs outside `hosts` and the two runs after each: all that `_script_fragments` reads
        (a host run after the second one finds no open cluster, so changes nothing)."""
        foreign = ~_in_scripts(self.rows, hosts)
        keep = foreign.copy()
        keep[1:] |= foreign[:-1]
        keep[2:] |= foreign[:-2]
        return _runs_of_rows(self.rows[keep])


def _in_scripts(rows: np.ndarray, scripts: frozenset[str]) -> np.ndarray:
    """Which run rows are of one of `scripts` (a table by class: np.isin sorted the rows' classes)."""
    return _class_mask(scripts)[rows[:, 2]]


@lru_cache(maxsize=256)
def _class_mask(scripts: frozenset[str]) -> np.ndarray:
    """By `script_runs` class: is it one of `scripts`?"""
    mask = np.zeros(len(_RUN_SCRIPTS), dtype=np.bool_)
    mask[_run_classes(scripts)] = True
    return mask


def _run_classes(scripts: frozenset[str]) -> list[int]:
    """The `script_runs` classes of `scripts` (names the runs do not use have none)."""
    return [_RUN_CLASS[x] for x in scripts if x in _RUN_CLASS]


@dataclass(slots=True)
class _Fragment:
    start: int
    end: int
    kind: str  # "script" or "langdetect"
    label: str  # script (lowercase) or language code
    language: str


class LanguageStage(Stage):
    """Detect the main language; remove, tag or count fragments in other languages/scripts."""

    name = "language"

    class Options(StageOptions):
        action: Literal["remove", "tag", "keep"] = Field(
            "remove",
            description="What to do with a foreign fragment: remove it, tag it in "
            "meta.language_fragments (written with output.metadata_field; start/end: its place in the output "
            "text; text: the fragment), or keep it and only count it.",
        )
        languages: list[str] = Field(
            [],
            description="Keep only documents whose main language (ISO 639-1) is listed; empty keeps all.",
        )

        @field_validator("languages")
        @classmethod
        def _known_codes(cls, codes: list[str]) -> list[str]:
            """A code the stage never gives would reject every document: refuse it, with a suggestion."""
            known = known_languages() if codes else frozenset()
            for code in codes:
                if _norm_lang(code.lower()) in known:
                    continue
                base = _norm_lang(re.split(r"[-_]", code.lower())[0])  # en-US, pt_BR: the language is en, pt
                guess = (
                    _LANGUAGE_NAMES.get(code.lower())
                    or (base if base in known else None)
                    or next(iter(difflib.get_close_matches(code.lower(), sorted(known), n=1, cutoff=0.5)), None)
                )
                hint = f" (did you mean '{guess}'?)" if guess else ""
                raise ValueError(f"unknown language code {code!r}: ISO 639-1 codes such as en, de, zh{hint}")
            return codes

        main_languages_max: int = Field(
            1,
            ge=1,
            le=3,
            description="How many main languages a document may have (2 keeps both halves of a "
            "bilingual text instead of stripping one as foreign).",
        )
        second_language_min_share: float = Field(
            0.3,
            gt=0.0,
            le=0.5,
            description="Share of the text a further language/script needs to count as a main "
            "language (used when main_languages_max > 1).",
        )
        bilingual_share: float = Field(
            0.4,
            ge=0.0,
            le=0.5,
            description="Share of the text that a second same-script language needs (in 3+ sentences) for "
            "the text to count as written in two languages, whose same-script 'fragments' are then kept "
            "(a German article quoting English at length); 0 turns this off.",
        )
        bilingual_script_share: float = Field(
            0.3,
            ge=0.0,
            le=0.5,
            description="Share of the letters that a second script needs (and the majority in 3+ sentences) "
            "for the text to count as written in two languages in two scripts (English and Japanese lines "
            "of a tweet and its translation), whose letters in it are then kept; 0 turns this off.",
        )
        sample_chars: int = Field(
            3000, ge=200, description="Characters of the text sampled to detect the main language."
        )
        min_cjk_chars: int = Field(
            4, ge=1, description="Han/Kana/Hangul characters a run needs to be a foreign fragment."
        )
        min_words: int = Field(
            3, ge=1, description="Words (2+ letters) a run of an alphabetic script needs to be a foreign fragment."
        )
        same_script: bool = Field(
            True,
            description="Also look for foreign sentences and clauses in the main script (word profiles, "
            "langdetect when they are unsure).",
        )
        same_script_min_words: int = Field(
            4,
            ge=2,
            description="Words a same-script sentence or clause needs before it can be judged foreign "
            "(shorter ones - UI strings like 'Read more', loanwords, short quotes - are kept).",
        )
        same_script_margin: float = Field(
            12.0,
            gt=0.0,
            description="Log-likelihood margin (word profiles) at which a same-script fragment is foreign "
            "without asking langdetect.",
        )
        langdetect_margin: float = Field(
            4.0,
            ge=0.0,
            description="Smaller margin at which langdetect (restricted to the two languages) decides.",
        )
        langdetect_min_prob: float = Field(
            0.9,
            ge=0.0,
            le=1.0,
            description="langdetect probability needed to call a same-script fragment foreign.",
        )
        langdetect_max_chars: int = Field(
            400, ge=50, description="Characters of a fragment or sample passed to langdetect (speed)."
        )
        langdetect_trials: int = Field(
            3, ge=1, le=7, description="langdetect trials per call (its default is 7; fewer is faster)."
        )
        seed: int = Field(0, description="Seed for langdetect, so results are reproducible.")

    options: Options

    def __init__(self, options: Options | None = None) -> None:
        super().__init__(options)
        self._foreign_words: dict[str, frozenset[str]] = {}
        self._hit_table_args: dict[tuple[str, str], tuple[tuple, tuple, tuple]] = {}  # `_hit_tables`
        self.allowed = [_norm_lang(x.lower()) for x in self.options.languages]

    # ------------------------------------------------------------------ langdetect
    def _detect(self, text: str, among: tuple[str, ...] = (), cap: int = 0) -> list[tuple[str, float]]:
        """langdetect probabilities (seeded, deterministic), at most ``langdetect_max_chars`` of the
        text; ``among`` restricts it to those languages (a two-way choice is reliable on short text
        and converges fast). [] when it finds no features or knows none of ``among``."""
        from langdetect import DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        with _detect_lock:
            factory = _factory()
            DetectorFactory.seed = self.options.seed
            detector = _fresh_detector(factory)
            detector.seed = self.options.seed
            detector.n_trial = self.options.langdetect_trials
            if among:
                prior = _prior_map(among)
                if prior is None:
                    return []
                detector.prior_map = list(prior)
            _append(detector, text[: cap or self.options.langdetect_max_chars])
            self.stat_update("langdetect-calls")
            try:
                # the detector is dropped after this call, and `_fresh_detector`'s share one generator
                # that `_probabilities` never reads (its draws start from `_seeded_state`)
                probs = _probabilities(detector, keep_random=False)
            except LangDetectException:
                return []
        merged: dict[str, float] = {}
        for p in probs:
            code = _norm_lang(p.lang)
            merged[code] = merged.get(code, 0.0) + p.prob
        return sorted(merged.items(), key=lambda kv: -kv[1])

    def load(self) -> None:
        # (the word profiles and their tables: ~75k tuples and frozensets that the first batch's collection walked,
        # ~4 ms of a CC run at 1 worker; langdetect's map is a few arrays, and not every run needs it)
        _saved_profiles()
        _alphabets()

    @property
    def profiles(self) -> _Profiles:
        return _profiles()  # module-level cache: not pickled with the stage

    # ------------------------------------------------------------------ word profiles
    def _scores(self, words: list[str], script: str) -> tuple[dict[str, float], dict[str, int]]:
        """Log-likelihood of the words under each profile of `script` that lists at least one of them
        (relative to all words being unlisted), and how many words each lists."""
        table = _score_table(script)
        get = table.row.get
        rows = np.array([get(w, 0) for w in words], dtype=np.int64)  # faster than fromiter(map(...))
        return _row_scores(rows, table)

    @staticmethod
    def _cheap_choice(
        n_words: int, best: int, top: float, second: float, best_hits: int, names: tuple[str, ...]
    ) -> tuple[str | None, str | None]:
        """The main language from `language_kernels.profile_choice`'s best language (index into `names`, -1:
        none), its score, the second score and its hits (the reference: `cheap_main` in
        tests/language_reference.py)."""
        if best < 0:
            return None, None
        name = names[best]
        if best_hits >= 8 and best_hits >= 0.1 * n_words and top - second >= _MAIN_MARGIN:
            return name, name
        return None, name if best_hits >= 3 else None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _runs(text: str) -> list[_Run]:
        """Script runs (what `_RUN_RE` finds, runs starting in a URL or code token dropped, adjacent
        runs of one script merged), by a compiled scan over a code point -> script table."""
        return _runs_of_rows(_run_rows(text))

    @staticmethod
    def _weights(text: str, runs: list[_Run]) -> dict[str, float]:
        counts: dict[str, float] = {}
        for r in runs:
            # a Han/Kana/Hangul character carries about as much as two alphabetic letters; a
            # capitalised word (names, menus, HTTP headers around Urdu text) half as much as a
            # lowercase one: sentences, not labels, say what script a text is written in
            weight = 2.0 if r.script in _CJK else 0.5 if text[r.start].isupper() else 1.0
            counts[r.script] = counts.get(r.script, 0.0) + (r.end - r.start) * weight
        return counts

    @staticmethod
    def _weights_of_rows(text: str, rows: np.ndarray, cps: np.ndarray | None = None) -> dict[str, float]:
        """`_weights` of all a text's runs from `_run_rows`, without a Python step per run: each term
        is a whole number times 2, 1 or 0.5, so the sums are exact in any order; the keys are in
        order of first appearance, as there. Compiled when the text's code points `cps` are given
        (`language_kernels.run_weights`: numpy's steps and a str.isupper per run took ~50 µs a page)."""
        if not len(rows):
            return {}
        if cps is not None:
            ok, sums, order = language_kernels.run_weights(rows, cps, _case_table(), _CJK_CLASSES)
            if ok:
                return {_RUN_SCRIPTS[c]: s for c, s in zip(order.tolist(), sums[order].tolist(), strict=True)}
        starts = rows[:, 0].tolist()
        firsts = itemgetter(*starts)(text) if len(starts) > 1 else (text[starts[0]],)
        upper = np.fromiter(map(str.isupper, firsts), dtype=np.bool_, count=len(starts))
        classes = rows[:, 2]
        weight = np.where(_CJK_CLASSES[classes], 2.0, np.where(upper, 0.5, 1.0))
        sums = np.bincount(classes, weights=(rows[:, 1] - rows[:, 0]) * weight, minlength=len(_RUN_SCRIPTS))
        _, first = np.unique(classes, return_index=True)
        return {_RUN_SCRIPTS[c]: float(sums[c]) for c in classes[np.sort(first)].tolist()}

    @staticmethod
    def _group(script: str, counts: dict[str, float]) -> frozenset[str]:
        if script in ("Han", "Kana"):
            han, kana = counts.get("Han", 0.0), counts.get("Kana", 0.0)
            if script == "Kana" or kana >= 0.25 * (han + kana):
                return frozenset({"Han", "Kana"})
            return frozenset({"Han"})
        if script == "Hangul":
            return frozenset({"Hangul", "Han"})
        return frozenset({script})

    def _main_scripts(self, counts: dict[str, float]) -> tuple[str, frozenset[str]]:
        if not counts:
            return "und", frozenset()
        total = sum(counts.values())
        ranked = sorted(counts, key=lambda s: -counts[s])
        primary = ranked[0]
        main = set(self._group(primary, counts))
        groups = 1
        for script in ranked[1:]:
            if groups >= self.options.main_languages_max:
                break
            if script in main:
                continue
            if counts[script] / total >= self.options.second_language_min_share:
                main |= self._group(script, counts)
                groups += 1
        return primary, frozenset(main)

    def _bilingual(
        self,
        text: str,
        runner_up: str | None,
        main: str,
        script: str,
        distinct: tuple[int, int],
        low_cps: np.ndarray | None = None,
    ) -> bool:
        """Is the text in two languages: do `_BILINGUAL_SENTENCES` or more of its sentences lean to the
        profiles' runner-up, holding `bilingual_share` of the text? Measured only when the runner-up
        holds `second_language_min_share` of the sample's words telling the two apart (counter
        `main-language-bilingual`). One foreign sentence in a short text is a fragment, not this.
        `runner_up`: the profiles' best language after `main` (`runner_up` of the sample's scores, as
        tests/language_reference.py defines it); `distinct`: `_distinct_hits` of the sample's words both
        ways, runner_up against main and main against runner_up (`language_kernels.profile_choice`'s);
        `low_cps`: the code points of the text lowercased character by character, if known."""
        if runner_up is None or not self.options.bilingual_share:
            return False
        share = self.options.second_language_min_share
        theirs, mine = distinct
        if theirs < 3 or theirs < share * (theirs + mine):
            return False
        chars, sentences = {main: 0, runner_up: 0}, 0
        spans = self._sentences(text, 0, min(len(text), _BILINGUAL_CHARS))
        # the two languages' scores of every sentence in one compiled pass over the lowercase text when
        # each of its characters was lowered on its own (so a sentence's lowercase is its slice of it):
        # a word list and `_scores` per sentence took ~10 µs each
        pairs = _pair_scores(low_cps, spans, script, main, runner_up) if low_cps is not None else None
        for k, (s, e) in enumerate(spans):
            if pairs is not None:
                mine_score, theirs_score = pairs[k]
            else:
                sentence = [v for w in text[s:e].lower().split() if (v := w.strip(_STRIP)).isalpha()]
                sentence_scores, _ = self._scores(sentence, script)
                mine_score = sentence_scores.get(main, -math.inf)
                theirs_score = sentence_scores.get(runner_up, -math.inf)
            if mine_score != theirs_score:
                chars[main if mine_score > theirs_score else runner_up] += e - s
                sentences += theirs_score > mine_score
        needed = self.options.bilingual_share * (chars[main] + chars[runner_up])
        if sentences < _BILINGUAL_SENTENCES or chars[runner_up] < needed:
            return False
        self.stat_update("main-language-bilingual")
        return True

    def _second_script(
        self, text: str, runs: _Runs, counts: dict[str, float], main_scripts: frozenset[str]
    ) -> frozenset[str]:
        """The script group of a text written in two languages in two scripts: the largest other
        group holds `bilingual_script_share` of the letters (as weighed by `_weights`) and the
        majority of `_BILINGUAL_SENTENCES` or more sentences. One inserted foreign passage is a
        fragment, not this: its sentences are few (counter `main-script-bilingual`)."""
        share = self.options.bilingual_script_share
        others = [s for s in counts if s not in main_scripts]
        if not share or not others:
            return frozenset()
        group = self._group(max(others, key=lambda s: (counts[s], s)), counts) - main_scripts
        if sum(counts.get(s, 0.0) for s in group) < share * sum(counts.values()):
            return frozenset()
        every = runs.all()
        starts = [r.start for r in every]
        sentences = 0
        for s, e in self._sentences(text):
            weights = self._weights(text, every[bisect.bisect_left(starts, s) : bisect.bisect_left(starts, e)])
            sentences += 2 * sum(weights.get(x, 0.0) for x in group) > sum(weights.values())
            if sentences >= _BILINGUAL_SENTENCES:
                self.stat_update("main-script-bilingual")
                return group
        return frozenset()

    def _distinct_hits(self, words: set[str], lang: str, other: str) -> int:
        """Words on `lang`'s profile list that are not on `other`'s."""
        prof = self.profiles
        mine, theirs = prof.words.get(lang, frozenset()), prof.words.get(other, frozenset())
        return sum(1 for w in words if w in mine and w not in theirs)

    def _main_languages(
        self,
        text: str,
        low: str,
        low_cps: np.ndarray,
        runs: _Runs | None,
        primary_script: str,
        main_scripts: frozenset[str],
        group: frozenset[str],
        per_char: bool = False,
    ) -> tuple[list[str], bool]:
        """The main language(s), and whether they are sure enough to judge same-script fragments
        against (a main language langdetect had to guess is not). `per_char`: `low` is the text
        lowercased character by character (`_lowercase`)."""
        if "Kana" in group:
            langs = ["ja"]
        elif "Hangul" in group:
            langs = ["ko"]
        elif group == frozenset({"Han"}):
            langs = ["zh"]
        elif primary_script in _SCRIPT_LANGUAGE:
            langs = [_SCRIPT_LANGUAGE[primary_script]]
        else:
            langs = []
        limit = self.options.sample_chars
        if runs is None:  # Latin letters only
            if self.options.main_languages_max == 1:
                # words spread over the whole text: a page may open with navigation in English
                # the sample's words as rows, read in place (`_spread_rows`); the sample itself is
                # joined only when langdetect has to read it
                rows = _spread_rows(low, low_cps, "Latin")
                lang, sure = self._sample_language(
                    _SpreadSample(low_cps), "Latin", text, rows=rows, low_cps=low_cps if per_char else None
                )
                return [lang], sure
            runs = _Runs(_run_rows(text))
        # the sample keeps only the main script's letters, so foreign fragments do not sway it
        pieces, pos = [], 0
        for r in runs.outside(main_scripts | group, limit):
            pieces.append(text[pos : r.start])
            pieces.append(" ")
            pos = r.end
        pieces.append(text[pos:limit] if pos < limit else "")
        sample = "".join(pieces)
        if langs and self.options.main_languages_max == 1:
            return langs, True
        if self.options.main_languages_max == 1:
            lang, sure = self._sample_language(sample, primary_script, sample)
            return [lang], sure
        probs = self._detect(sample)
        if not probs:
            return langs or ["und"], False
        sure = True
        if not langs:
            # the first main language as with one main language: word profiles first, langdetect when they
            # cannot tell, and not sure on a text in two languages (then same-script "fragments" stay).
            # langdetect alone lacks profiled languages (it calls Esperanto Spanish) and leans all-or-nothing
            # on a mixed text: the real main language, or a bilingual text's other half, went as fragments.
            lang, sure = self._sample_language(sample, primary_script, sample)
            langs = [lang if lang != "und" else probs[0][0]]
        if self.options.main_languages_max > 1:
            share = self.options.second_language_min_share
            words = {w.lower() for w in _WORD_RE.findall(sample)}
            for lang, p in probs:
                if len(langs) >= self.options.main_languages_max:
                    break
                if lang in langs:
                    continue
                # a second language with a fair share of the distinctive words (langdetect's
                # probabilities on a mixed text tend to all-or-nothing)
                distinct = self._distinct_hits(words, lang, langs[0])
                main_distinct = self._distinct_hits(words, langs[0], lang)
                by_words = distinct >= 3 and distinct >= share * (distinct + main_distinct)
                # langdetect's runner-up alone is no second language where the profiles know the first:
                # on a monolingual text it names a neighbour (Esperanto: es; Basque: id; Armenian: et)
                if by_words or (p >= share and langs[0] not in self.profiles.words):
                    langs.append(lang)
            # a second script group (e.g. Latin + Cyrillic halves): name its language too
            for script in sorted(main_scripts - group):
                if len(langs) >= self.options.main_languages_max:
                    break
                if script in _SCRIPT_LANGUAGE:
                    lang = _SCRIPT_LANGUAGE[script]
                else:
                    own = " ".join(text[r.start : r.end] for r in runs.all() if r.script == script)
                    found = self._detect(own[:limit])
                    lang = found[0][0] if found else "und"
                if lang not in langs:
                    langs.append(lang)
        return langs, sure

    def _fragment_language(self, fragment: str, script: str) -> str:
        """Language of a fragment in a script that names none (Cyrillic, Arabic, Latin, ...)."""
        words = [w.lower() for w in _WORD_RE.findall(fragment)]
        scores, hits = self._scores(words, script)
        if scores:
            best = max(scores, key=lambda k: scores[k])
            rest = max((v for k, v in scores.items() if k != best), default=-math.inf)
            if hits[best] >= 2 and scores[best] - rest >= 4:
                return best
        # too few listed words ("«No pasarán», gritaban.": only "no"): langdetect between the
        # profiles' four best, a word with a letter outside a language's alphabet costing it (á:
        # not English); one call per such fragment, a few per page at most
        if scores:
            for lang, bad in _odd_letter_words(frozenset(words), script).items():
                if lang in scores:
                    scores[lang] -= _ODD_LETTER * sum(1 for w in words if w in bad)
            among = tuple(sorted(scores, key=lambda k: (-scores[k], k))[:4])
            probs = self._detect(fragment, among)
            if probs and probs[0][1] >= self.options.langdetect_min_prob:
                return probs[0][0]
        # metadata only: the script's most common language
        return _SCRIPT_DEFAULT.get(script, "und")

    def _sample_language(
        self,
        sample: str | _SpreadSample,
        script: str,
        text: str,
        rows: np.ndarray | None = None,
        low_cps: np.ndarray | None = None,
    ) -> tuple[str, bool]:
        """The main language and whether the word profiles named it clearly; langdetect only when
        they cannot tell. `rows`: the sample's words as `_sample_rows` if known (the Latin sample,
        cut from the lowercased text, is then a `_SpreadSample`, joined only for langdetect);
        `low_cps`: `text` lowercased character by character, if known (`_bilingual`)."""
        # the words ([v for w in sample.lower().split() if (v := w.strip(_STRIP)).isalpha()]) as
        # their rows of the script's profile index, found by a compiled pass
        if rows is None:
            assert isinstance(sample, str)
            low = sample.lower()
            rows = _sample_rows(low, code_points(low), script)
        # `cheap_main` and `runner_up` (tests/language_reference.py) of `_row_scores(rows, table)` from one
        # compiled pass: the score dicts (~5 µs a document) are made only when langdetect has to decide
        table = _score_table(script)
        j, top, second, best_hits, runner, only_runner, only_best = language_kernels.profile_choice(
            rows, table.ptr, table.langs, table.deltas, table.oov, _name_ranks(script)
        )
        lang, guess = self._cheap_choice(len(rows), j, top, second, best_hits, table.names)
        runner_up = table.names[runner] if runner >= 0 else None
        # (`lang` is the best's name: the kernel's distinct hits are of runner_up against it)
        if lang is not None and self._bilingual(text, runner_up, lang, script, (only_runner, only_best), low_cps):
            # two languages with a fair share each (a German article quoting English at length,
            # a page whose menus are in another language than its text): not "one language with
            # foreign fragments", so the same-script check leaves both (as when unsure)
            return lang, False
        if lang is not None:
            self.stat_update("main-language-by-profile")
            return lang, True
        self.stat_update("main-language-by-langdetect")
        probs = self._detect(str(sample), cap=_MAIN_LANGDETECT_CHARS)
        found = probs[0][0] if probs else "und"
        # langdetect lacks some profiled languages (xh, zu, ...) and says a neighbour (sw): keep the
        # profiles' guess when they rate langdetect's answer far lower
        if guess is not None and found != guess:
            scores, _ = _row_scores(rows, table)
            if scores.get(found, -math.inf) < scores[guess] - _MAIN_MARGIN:
                return guess, False
        return found, False

    # ------------------------------------------------------------------ script check
    def _word_count(self, text: str, runs: list[_Run]) -> int:
        n = 0
        for r in runs:
            length = r.end - r.start
            if r.script in _UNSPACED:
                n += max(1, length // 4)
            elif length >= 2:
                n += 1
        return n

    def _sentence_like(self, text: str, runs: list[_Run]) -> bool:
        words = [text[r.start : r.end] for r in runs if r.end - r.start >= 2]
        if len(words) < self.options.min_words:
            return False
        lower = sum(1 for w in words if w.islower())
        return lower >= 0.5 * len(words)

    def _flag_cluster(self, text: str, cluster: list[_Run], main_scripts: frozenset[str]) -> bool:
        scripts = {r.script for r in cluster}
        if scripts & _CJK:
            cjk = sum(r.end - r.start for r in cluster if r.script in _CJK)
            return cjk >= self.options.min_cjk_chars
        if scripts == {"Latin"} and "Latin" not in main_scripts:
            if not self._sentence_like(text, cluster):
                return False
            kept = _latin_content(text, cluster[0].start, cluster[-1].end)
            if kept:
                self.stat_update(f"fragment-kept-{kept}")
                return False
            return True
        words = self._word_count(text, cluster)
        if words <= _GLOSS_WORDS and _bracket_gloss(text, cluster[0].start, cluster[-1].end):
            self.stat_update("fragment-kept-name")
            return False
        return words >= self.options.min_words

    @staticmethod
    def _extend(text: str, s: int, e: int, cjk: bool) -> tuple[int, int]:
        """Grow [s, e) over the punctuation that belongs to the fragment."""
        n = len(text)

        def unmatched_open(seg: str, closer: str) -> bool:
            opener = _CLOSERS[closer]
            if opener == closer:
                return seg.count(opener) % 2 == 1
            return seg.count(opener) > seg.count(closer)

        changed = True
        while changed:
            changed = False
            # leading digits glued to a CJK run ("1969年")
            if cjk:
                k = s
                while k > 0 and (text[k - 1].isdigit() or (text[k - 1] in ",." and k > 1 and text[k - 2].isdigit())):
                    k -= 1
                if k < s and (k == 0 or not _LETTER_OR_DIGIT_RE.match(text[k - 1])):
                    s, changed = k, True
            # trailing punctuation attached to the fragment (no spaces)
            while e < n:
                c = text[e]
                if (
                    (cjk and c in _CJK_PUNCT)
                    or c in _TERMINAL_PUNCT
                    or (c in _CLOSERS and unmatched_open(text[s:e], c))
                ):
                    e += 1
                    changed = True
                else:
                    break
            # a matching opener/closer pair around the fragment
            if s > 0 and e < n and text[s - 1] in _OPENERS and _OPENERS[text[s - 1]] == text[e]:
                s, e = s - 1, e + 1
                changed = True
        return s, e

    def _script_fragments(
        self, text: str, runs: list[_Run], main_scripts: frozenset[str]
    ) -> list[tuple[int, int, str]]:
        return self._cluster_fragments(text, self._script_clusters(text, runs, main_scripts), main_scripts)

    def _script_fragments_of_rows(
        self, text: str, runs: _Runs, hosts: frozenset[str], cps: np.ndarray
    ) -> list[tuple[int, int, str]]:
        """`_script_fragments` of all the text's runs (`cps`: its code points), its clusters found by a compiled
        pass over the run rows (`language_kernels.script_clusters`): the Python loop over the runs around the
        foreign ones, a `_Run` each, took ~0.04 s of the 40 MB input's 396 non-Latin texts."""
        ok, members, bounds = language_kernels.script_clusters(
            runs.rows, cps, _class_mask(hosts), _CJK_CLASSES, _NO_BRIDGE_CLASSES, _case_table(),
            _RUN_CLASS["Latin"], self.options.min_words,
        )  # fmt: skip
        if not ok:
            return self._script_fragments(text, runs.around(hosts), hosts)
        every = _runs_of_rows(runs.rows[members])
        starts = bounds.tolist()
        clusters = [every[a:b] for a, b in zip(starts, starts[1:], strict=False)]
        return self._cluster_fragments(text, clusters, hosts, dropped=True)

    def _script_clusters(self, text: str, runs: list[_Run], main_scripts: frozenset[str]) -> list[list[_Run]]:
        """Runs of other scripts than `main_scripts` grouped into clusters, in order (from the runs around
        them, `_Runs.around`, or all of them)."""
        clusters: list[list[_Run]] = []
        current: list[_Run] = []
        pending_bridge: _Run | None = None
        for r in runs:
            foreign = r.script not in main_scripts
            if foreign:
                if current:
                    gap = text[current[-1].end : r.start]
                    same_group = (r.script in _CJK) == (current[-1].script in _CJK)
                    if "\n" in gap or not same_group:
                        clusters.append(current)
                        current = []
                current.append(r)
                pending_bridge = None
            elif current and pending_bridge is None and self._bridgeable(text, current, r):
                pending_bridge = r  # one capitalised name inside a foreign sentence ("Apple")
            else:
                if current:
                    clusters.append(current)
                current, pending_bridge = [], None
        if current:
            clusters.append(current)
        return clusters

    def _cluster_fragments(
        self, text: str, clusters: list[list[_Run]], main_scripts: frozenset[str], dropped: bool = False
    ) -> list[tuple[int, int, str]]:
        """The foreign fragments of `_script_clusters`' clusters; `dropped`: those too short to be
        sentence-like were left out already (`language_kernels.script_clusters`)."""
        found: list[tuple[int, int, str]] = []
        min_words = self.options.min_words
        for cluster in clusters:
            if cluster[0].script == "Latin" and "Latin" not in main_scripts:
                if (
                    not dropped
                    and sum(1 for r in cluster if r.end - r.start >= 2) < min_words
                    and all(r.script == "Latin" for r in cluster)
                ):
                    # too few words to be sentence-like (`_flag_cluster`), and so is any part of
                    # it that `_own_sentences` would keep: most Latin names and terms stop here
                    continue
                cluster = self._own_sentences(text, cluster)
            if not cluster or not self._flag_cluster(text, cluster, main_scripts):
                continue
            scripts = [r.script for r in cluster]
            if "Hangul" in scripts:
                label = "Hangul"
            elif "Kana" in scripts:
                label = "Kana"
            else:
                weights: dict[str, int] = {}
                for r in cluster:
                    weights[r.script] = weights.get(r.script, 0) + r.end - r.start
                label = max(weights, key=lambda k: weights[k])
            cjk = bool(set(scripts) & _CJK)
            end = cluster[-1].end
            if not cjk and (m := _TRAILING_NAMES_RE.match(text, end)):
                end = m.end(1)  # "... для Mac OSX." - names ending a foreign sentence
            s, e = self._extend(text, cluster[0].start, end, cjk)
            found.append((s, e, label))
        return found

    def _own_sentences(self, text: str, cluster: list[_Run]) -> list[_Run]:
        """The runs of a Latin cluster in a text of another script that are not part of a host
        sentence. A cluster split at sentence ends (not inside a quotation) into pieces: a first
        piece that host letters precede in its sentence ("783 km." before a quotation, "(The
        Dodger)."), or a last one that host letters follow in its sentence (a signature before the
        host's reply), belongs to that host sentence unless its words read as a language
        (`_reads_foreign`). A short cluster inside one host sentence is a name, term or title of it
        ("το αμερικανικό private equity Capital Group.", "Camponotus punctulatus imberbis — ...")
        unless its words read as a language; a longer one is judged as before (a foreign clause)."""
        pieces: list[list[_Run]] = [[cluster[0]]]
        start = cluster[0].start
        while start > 0 and (text[start - 1] in _QUOTE_PAIRS or text[start - 1] in _QUOTE_SPACE):
            start -= 1  # a quotation opened just before the cluster ("“May I help u? Where ...”")
        for prev, r in zip(cluster, cluster[1:], strict=False):
            end = _ANY_SENTENCE_END_RE.search(text, prev.end, r.start)
            if end and _open_mark(text, start, end.end()) is None:
                pieces.append([])
            pieces[-1].append(r)
        before = _host_before(text, cluster[0].start)
        after = _host_after(text, cluster[-1].end)
        if len(pieces) == 1:
            short = sum(1 for r in cluster if r.end - r.start >= 2) <= _EMBEDDED_WORDS
            return [] if (before or after) and short and not self._reads_foreign(text, cluster) else cluster
        first, last = 0, len(pieces)
        if before and not self._reads_foreign(text, pieces[0]):
            first = 1
        if after and not self._reads_foreign(text, pieces[-1]):
            last -= 1
        return [r for piece in pieces[first:last] for r in piece]

    def _reads_foreign(self, text: str, runs: list[_Run]) -> bool:
        """Do Latin runs inside a host sentence read as a language rather than names, terms or a
        title: two distinct words frequent in one language, and two in five of its words
        (capitalised words inside, names, do not count), and not a title: as many capitalised words
        as lowercase ones, all frequent ("Album of the Year", "Up from the Ashes")?"""
        # not the ending of an ordinal number ("20th"), nor a letter standing for a word ("rock 'n' roll")
        words = [
            m.group()
            for m in _WORD_RE.finditer(text, runs[0].start, runs[-1].end)
            if not (m.start() > 0 and text[m.start() - 1].isdigit())
            and not (m.end() - m.start() == 1 and text[m.start() - 1 : m.start()] in _ELISION)
        ]
        if not words:
            return False
        evidence = sorted(set(_evidence(words)))
        _, hits = self._scores(evidence, "Latin")
        if not hits:
            return False
        lang = max(sorted(hits), key=hits.__getitem__)
        # a few short words of a romanised name or signature ("da", "at") are frequent somewhere
        if hits[lang] < 2 or 5 * hits[lang] < 2 * len(evidence):
            return False
        listed = self.profiles.words[lang]
        lower = [w for w in words[1:] if w.islower()]
        title = 2 * sum(1 for w in words if w[:1].isupper()) >= len(words) and all(w in listed for w in lower)
        return not title

    @staticmethod
    def _bridgeable(text: str, current: list[_Run], r: _Run) -> bool:
        last = current[-1]
        if last.script in _CJK or last.script in _UNSPACED:
            return False
        word = text[r.start : r.end]
        return (
            r.end - r.start <= 20
            and word[:1].isupper()
            and "\n" not in text[last.end : r.start]
            and len(text[last.end : r.start]) <= 3
        )

    def _stray_punct(self, text: str, runs: list[_Run], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Lone CJK punctuation (e.g. "Technology.。The") in a text with no CJK letters near it."""
        found = []
        starts = [r.start for r in runs]
        spans = _Taken(taken)
        for m in _STRAY_CJK_PUNCT_RE.finditer(text):
            if spans.overlaps(m.start(), m.start() + 1):
                continue
            i = bisect.bisect_left(starts, m.start())
            before = runs[i - 1] if i > 0 else None
            after = runs[i] if i < len(runs) else None
            if any(x is not None and x.script in _CJK for x in (before, after)):
                continue
            found.append((m.start(), m.end()))
        return found

    # ------------------------------------------------------------------ same-script check
    def _sentences(self, text: str, pos: int = 0, endpos: int | None = None) -> list[tuple[int, int]]:
        """The sentences of text[pos:endpos] (split after each `_SENTENCE_END_RE` match, spaces
        stripped), by a compiled scan (`language_kernels.sentence_spans`: the regex took ~8 µs a
        line); a stretch holding a code point beyond its table goes to the regex."""
        endpos = len(text) if endpos is None else endpos
        if endpos <= pos:
            return []
        base = max(0, pos - 2)  # the glued end's lookbehind reads two letters before a mark
        done, found = language_kernels.sentence_spans(
            code_points(text[base:endpos]), pos - base, _sentence_table(), language_kernels.SPACES
        )
        if not done:
            return _sentences_by_regex(text, pos, endpos)
        if base:
            found += base
        return list(zip(found[:, 0].tolist(), found[:, 1].tolist(), strict=True))

    def _cjk_same_script(
        self,
        text: str,
        runs: _Runs,
        main_langs: list[str],
        main_scripts: frozenset[str],
        taken: list[tuple[int, int]],
    ) -> list[tuple[int, int, str]]:
        """CJK host: a Japanese sentence in Chinese text (kana), a Chinese one in Japanese/Korean
        text (no kana/hangul); langdetect confirms."""
        host_scripts = _host_scripts(main_scripts)
        sentences = self._sentences(text)
        # each sentence's letters by script, from cumulative sums over the run rows (whole numbers:
        # the same as adding up its runs; no `_Run` per run of a page of CJK text)
        rows = runs.rows
        per_class = np.zeros((len(rows) + 1, len(_RUN_SCRIPTS)), dtype=np.int64)
        per_class[np.arange(1, len(rows) + 1), rows[:, 2]] = rows[:, 1] - rows[:, 0]
        np.cumsum(per_class, axis=0, out=per_class)
        bounds = np.array(sentences, dtype=np.int64).reshape(-1, 2)
        first = np.searchsorted(rows[:, 0], bounds[:, 0])
        last = np.searchsorted(rows[:, 0], bounds[:, 1])
        letters = per_class[last] - per_class[first]
        totals = letters.sum(axis=1).tolist()
        hosts = letters[:, _run_classes(host_scripts)].sum(axis=1).tolist()
        cjks = letters[:, _CJK_CLASSES].sum(axis=1).tolist()
        kanas = letters[:, _RUN_CLASS["Kana"]].tolist()
        hanguls = letters[:, _RUN_CLASS["Hangul"]].tolist()
        found = []
        opt = self.options
        spans = _Taken(taken)
        for k, (s, e) in enumerate(sentences):
            if spans.overlaps(s, e):
                continue
            total = totals[k]
            if not total or hosts[k] < 0.8 * total:
                continue
            cjk_chars, kana, hangul = cjks[k], kanas[k], hanguls[k]
            if main_scripts & _CJK == frozenset({"Han"}):  # (a Chinese + English text has Latin too)
                if kana >= 2 and cjk_chars >= opt.min_cjk_chars:
                    own = _runs_of_rows(rows[first[k] : last[k]])
                    found.extend(self._japanese_clauses(text, s, e, own, main_langs))
                continue
            # a Chinese sentence in Japanese (no kana) or Korean (no hangul) text, not a heading
            candidate = (kana == 0 and cjk_chars >= 20) if "Kana" in main_scripts else (hangul == 0 and cjk_chars >= 16)
            if not candidate:
                continue
            self.stat_update("same-script-candidates")
            probs = self._detect(text[s:e])
            if probs and probs[0][0] not in main_langs and probs[0][1] >= 0.99:
                found.append((s, e, probs[0][0]))
        return found

    def _japanese_clauses(
        self, text: str, s: int, e: int, runs: list[_Run], main_langs: list[str]
    ) -> list[tuple[int, int, str]]:
        """Japanese clauses of a sentence in Chinese text: clauses (split at CJK commas, brackets,
        quotes) with kana, confirmed by langdetect between Chinese and Japanese. Judging clauses,
        not the sentence, keeps the Chinese words around a Japanese quote."""
        bounds = [(m.start(), m.end()) for m in _CJK_CLAUSE_SPLIT_RE.finditer(text, s, e)]
        clauses, start = [], s
        for a, b in bounds:
            clauses.append((start, a))
            start = b
        clauses.append((start, e))
        flagged: list[tuple[int, int]] = []
        chinese = 0  # clauses that are Chinese evidence: long enough, no kana
        for cs, ce in clauses:
            cjk = kana = 0
            for r in runs:
                if r.end <= cs or r.start >= ce:
                    continue
                n = min(r.end, ce) - max(r.start, cs)
                if r.script in _CJK:
                    cjk += n
                    kana += n if r.script == "Kana" else 0
            chinese += kana == 0 and cjk >= self.options.min_cjk_chars
            # kana are a fair share of a Japanese clause; a name or one particle in Chinese is not
            if kana < 2 or cjk < self.options.min_cjk_chars or kana < 0.15 * cjk:
                continue
            self.stat_update("same-script-candidates")
            probs = self._detect(text[cs:ce], (*main_langs, "ja"))
            if probs and probs[0][0] == "ja" and probs[0][1] >= self.options.langdetect_min_prob:
                flagged.append((cs, ce))
        if not flagged:
            return []
        if not chinese:
            return [(s, e, "ja")]  # no Chinese clause: the whole sentence is Japanese
        out: list[tuple[int, int, str]] = []
        for cs, ce in flagged:
            while cs < ce and text[cs].isspace():
                cs += 1
            while ce > cs and text[ce - 1].isspace():
                ce -= 1
            cs, ce = self._extend(text, cs, ce, cjk=False)
            if out and not _LETTER_OR_DIGIT_RE.search(text, out[-1][1], cs):
                cs = out.pop()[0]  # adjacent Japanese clauses: one fragment
            out.append((cs, ce, "ja"))
        return out

    def _foreign_set(self, main: str) -> frozenset[str]:
        """Words that are evidence against `main`: frequent (>= 1 in 1000 words) in another language
        of its script and not listed for `main`. A document with none of them skips the check."""
        cached = self._foreign_words.get(main)
        if cached is None:
            prof = self.profiles
            # a word frequent in `main` alone is listed for `main`: taking away main's list is enough
            cached = _frequent_set(prof.script[main]) - prof.words[main]
            self._foreign_words[main] = cached
        return cached

    def _judge(
        self, words: list[str], main_langs: list[str], script: str, known: list[int] | None = None
    ) -> tuple[str, float] | None:
        """The foreign language of a fragment's words and the margin by which its profile beats the
        main language's, or None when the fragment is not (clearly) foreign. `known`: the words' rows
        of `_score_table(script)` when the caller has them."""
        prof = self.profiles
        main = main_langs[0]
        if main not in prof.script:
            return None
        main_words = prof.words[main]
        # host text: half its words or more are on the main language's list (no scoring needed)
        if 2 * sum(map(main_words.__contains__, words)) >= len(words):
            return None
        table = _score_table(script)
        if known is None:
            get = table.row.get
            known = [get(w, 0) for w in words]
        rows = np.array(known, dtype=np.int64)
        # letters outside a language's alphabet (Ukrainian і ї є in Russian, ñ in Portuguese, ã in
        # Spanish): such a word is very unlikely in that language unless its list has it. Each such
        # language (all of `script`: an alphabet is asked of the script's languages only) is scored,
        # less _ODD_LETTER per word of the text spelt so and not on its list.
        # Each spelt-so word's row of `_odd_row` (which languages lack a letter of it, and which of
        # those do not list it) is cached: the costs are the rows' counts, weighted by how often each
        # word occurs, and -1 for a language no word is odd for (a Latin text's words are mostly ASCII,
        # which every listed Latin alphabet spells: none to look up).
        distinct = set(words)
        # all ASCII (most fragments): one test in C instead of one per word
        spelt = [] if "".join(distinct).isascii() else [w for w in distinct if not w.isascii()]
        odd = {main: frozenset(w for w in spelt if main in _odd_langs(w, script))} if spelt else {}
        # most fragments end below at "two telling words" for the best language: no language has two
        # listed words main lacks, with main's odd-spelt words added (what `_telling` can count at
        # most), then no scoring is needed (the same None)
        position = _score_positions(script).get(main)
        if position is not None:
            listed = language_kernels.most_listed(rows, table.ptr, table.langs, len(table.names), position)
            if listed + (len(odd[main] - main_words) if spelt else 0) < 2:
                return None
        # (the odd-letter rows and counts only for a fragment scored: built after the bound)
        if spelt:
            odd_rows = np.array([_odd_row(w, script) for w in spelt])
            counts = np.array([words.count(w) for w in spelt], dtype=np.int64)
        else:
            odd_rows, counts = _no_odd_rows(script), _NO_COUNTS
        # the scores, the odd-letter costs (from the rows and counts) and the best other language in
        # name order: compiled (`language_kernels.best_foreign`; the score dicts and their loops took
        # ~25 µs a fragment, numpy's costs from the rows ~8 µs)
        j, best_score, own = language_kernels.best_foreign(
            rows, table.ptr, table.langs, table.deltas, table.oov, odd_rows, counts, _ODD_LETTER,
            *_name_order(script, tuple(main_langs)),
        )  # fmt: skip
        if j < 0:
            return None
        best = table.names[j]
        # `_odd_letter_words` of the words, for the two languages `_telling` asks about
        if spelt:
            odd[best] = frozenset(w for w in spelt if best in _odd_langs(w, script))
        # distinct words that tell the two apart (listed for one and not the other, or spelt with a
        # letter the other lacks): two at least, and more than the main language has - one shared
        # loanword, name or a repeated "na, na" is no evidence
        for_best = self._telling(distinct, best, main, odd)
        if for_best < 2 or for_best <= self._telling(distinct, main, best, odd):
            return None
        margin = best_score - own
        if margin < self.options.langdetect_margin:
            return None
        return best, margin

    def _may_tell(self, words: list[str], main: str, script: str) -> bool:
        """Can `_judge` find the sentence of these words, or a clause of it, foreign? Not when no
        language has two of the words listed that `main` lacks, with main's odd-spelt words added:
        `_judge`'s bound before scoring, taken over all the words lowercased (each clause's evidence,
        capitalised first words included, is among them), so the sentence's clauses, evidence and
        judgings are skipped (about half the candidates)."""
        position = _score_positions(script).get(main)
        if position is None:
            return True
        low = [w.lower() for w in words]
        table = _score_table(script)
        rows = np.fromiter(map(table.row.get, low, repeat(0)), dtype=np.int64, count=len(low))
        listed = language_kernels.most_listed(rows, table.ptr, table.langs, len(table.names), position)
        if listed >= 2:
            return True
        distinct = set(low)
        if "".join(distinct).isascii():
            return False  # `_judge` looks only at non-ASCII words for odd letters
        main_words = self.profiles.words[main]
        odd = {w for w in distinct if not w.isascii() and main in _odd_langs(w, script) and w not in main_words}
        return listed + len(odd) >= 2

    def _telling(self, words: set[str], lang: str, other: str, odd: dict[str, frozenset[str]]) -> int:
        """Words that are evidence for `lang` against `other`."""
        prof = self.profiles
        mine, theirs = prof.words.get(lang, frozenset()), prof.words.get(other, frozenset())
        # letters are evidence only for a language whose alphabet is listed and has them
        bad_theirs = odd.get(other, frozenset()) if lang in _alphabets() else frozenset()
        bad_mine = odd.get(lang, frozenset())
        # the words w with (w in mine and w not in theirs) or (w in bad_theirs and w not in bad_mine
        # and w not in theirs), by set operations in C
        found = (words & mine) - theirs
        if bad_theirs:
            found |= (words & bad_theirs) - bad_mine - theirs
        return len(found)

    def _hits_by_sentence(
        self,
        text: str,
        lowered: str,
        low_cps: np.ndarray,
        main: str,
        script: str,
        taken: _Taken,
        text_cps: np.ndarray | None = None,
    ) -> tuple[list[tuple[int, int, list[tuple[int, str]]]], np.ndarray | None]:
        """The sentences holding two distinct of the document's foreign-frequent words (`_foreign_set`)
        and odd-letter tokens (`_odd_letters`), in order, outside the `taken` spans, with where each of
        its hits is and its word; tokens are str.split tokens, whole words between whitespace. Only
        lines holding two distinct ones are split into sentences: a sentence needs two to be judged,
        and most lines have none or one. Also the text's code points when they were needed (None
        otherwise; `text_cps` if given)."""
        if len(lowered) != len(text):  # lowercasing moved offsets (rare letters such as "İ")
            foreign, odd_re = self._foreign_set(main), _odd_letter_re(main, script)
            hits = self._hits_by_sentence_by_line(text, foreign.intersection(lowered.split()), odd_re)
            return _two_words(hits, taken), None
        # the per-line, per-token search is compiled: the kernel returns the hits of lines with two
        # distinct candidate words (a 64-bit key per word; a listed word is confirmed by its text)
        line_args, hit_args, fused_args = self._hit_tables(main, script)
        if text_cps is not None:  # the three kernels below in one call (`hits_by_sentence`)
            cps = text_cps
            status, kept, two = language_kernels.hits_by_sentence(low_cps, cps, *fused_args)
            if status == 0:
                return [], None
            if status < 0:  # `kept`: line_hits' rows; `two`: the sentences, then each row's one
                rows, found, which = kept, two[: len(two) - len(kept)], two[len(two) - len(kept) :, 0]
                return _two_words(self._hits_in_python(text, lowered, rows, found, which, main, script), taken), cps
        else:
            rows = language_kernels.line_hits(low_cps, *line_args)
            if not len(rows):
                return [], None
            # the sentences of those lines and each hit's one, compiled too (`_sentences` of each line
            # took ~8 µs of regex and Python a line); then which hits count, by sentence (a Python step per
            # hit took about as long as the search): `_hits_in_python` for a line the kernels leave
            cps = code_points(text)
            found, which = language_kernels.hit_sentences(cps, rows, _sentence_table(), language_kernels.SPACES)
            ok, kept, two = language_kernels.sentence_hits(cps, low_cps, rows, which, len(found), *hit_args, found)
            if not ok:
                return _two_words(self._hits_in_python(text, lowered, rows, found, which, main, script), taken), cps
        out = []
        if len(two):
            hits = kept.tolist()
            for s, e, first, end in two.tolist():
                if not taken.overlaps(s, e):
                    out.append((s, e, [(at, lowered[ts:te]) for at, ts, te in hits[first:end]]))
        return out, cps

    def _hit_tables(self, main: str, script: str) -> tuple[tuple, tuple, tuple]:
        """The tables `line_hits` and `sentence_hits` read for main language `main` (after the text), and
        `hits_by_sentence` (after the text's two arrays), kept by main language: a dozen cached look-ups per
        document otherwise."""
        found = self._hit_table_args.get((main, script))
        if found is None:
            odd, table, position = _odd_table(main, script), _score_table(script), _score_positions(script)[main]
            line_args = (*_foreign_keys(script, position), odd, self._shortest_line(), language_kernels.SPACES)
            hit_args = (
                _case_table(), _alpha_table(), _letter_or_digit_table(), _CLAUSE_MARK_TABLE, language_kernels.SPACES,
                *_word_rows(script), _frequent_rows(script), table.ptr, table.langs, position, odd,
            )  # fmt: skip
            fused_args = (*line_args, _sentence_table(), *hit_args[:4], *hit_args[5:-1])
            found = self._hit_table_args[(main, script)] = (line_args, hit_args, fused_args)
        return found

    def _hits_in_python(
        self,
        text: str,
        lowered: str,
        rows: np.ndarray,
        found: np.ndarray,
        which: np.ndarray,
        main: str,
        script: str,
    ) -> dict[tuple[int, int], list[tuple[int, str]]]:
        """`language_kernels.sentence_hits`' choice of hits by sentence, in Python: for a text with a
        hit line the sentence kernel leaves (-2 in `which`: a code point from U+10000)."""
        # `_foreign_set(main)` and `_odd_letter_re` as the script's frequent words less main's list and
        # a set of letters: nothing built per main language for them (~38 languages on CC)
        frequent, main_words, odd_letters = _frequent_set(script), self.profiles.words[main], _odd_letters(main, script)
        spans = list(zip(found[:, 0].tolist(), found[:, 1].tolist(), strict=True))
        out: dict[tuple[int, int], list[tuple[int, str]]] = {}
        line, line_spans = -1, spans
        for (ls, le, ts, te, shift), k in zip(rows.tolist(), which.tolist(), strict=True):
            w = lowered[ts:te]
            if shift == 0 and (w not in frequent or w in main_words) and odd_letters.isdisjoint(w):
                continue  # a key collision, not a listed word
            if k == -2:
                if ls != line:
                    line, line_spans = ls, self._sentences(text, ls, le)
                k = bisect.bisect_right(line_spans, (ts, le)) - 1
                sentence = line_spans[k] if k >= 0 else None
            else:
                sentence = spans[k] if k >= 0 else None
            # a token with no uppercase letter (most) is not capitalised: skip the full test
            if sentence and (text[ts:te].islower() or not _capitalised_inside(text, sentence[0], ts, te - ts)):
                out.setdefault(sentence, []).append((ts + shift, w))
        return out

    def _shortest_line(self) -> int:
        return 2 * self.options.same_script_min_words - 1  # "a b c d": shorter lines hold no candidate

    def _hits_by_sentence_by_line(
        self, text: str, hit_words: frozenset[str], odd_re: regex.Pattern[str] | None
    ) -> dict[tuple[int, int], list[tuple[int, str]]]:
        """`_hits_by_sentence` for a text whose lowercase has other offsets: line by line in Python."""
        out: dict[tuple[int, int], list[tuple[int, str]]] = {}
        ls = 0
        for line in text.split("\n"):
            le = ls + len(line)
            if le - ls < self._shortest_line():
                ls = le + 1
                continue
            low = line.lower()
            tokens = low.split()
            words = set(hit_words.intersection(tokens))
            if odd_re is not None and odd_re.search(low):
                words.update(t for t in tokens if odd_re.search(t))
            if len(words) >= 2:
                spans = self._sentences(text, ls, le)
                for w in words:
                    # an odd-letter token is placed at its letter, not at a bracket or quote before it
                    shift = 0 if w in hit_words or odd_re is None else odd_re.search(w).start()  # type: ignore[union-attr]
                    for h in _token_starts(text[ls:le], low, w):
                        k = bisect.bisect_right(spans, (ls + h, le)) - 1
                        if k >= 0 and not _capitalised_inside(text, spans[k][0], ls + h, len(w)):
                            out.setdefault(spans[k], []).append((ls + h + shift, w))
            ls = le + 1
        return out

    def _alpha_same_script(
        self,
        text: str,
        low: str,
        low_cps: np.ndarray,
        main_langs: list[str],
        script: str,
        taken: list[tuple[int, int]],
        text_cps: np.ndarray | None = None,
    ) -> list[tuple[int, int, str]]:
        """Foreign sentences and clauses in the main script, located by word profiles (`text_cps`: the
        text's code points if known)."""
        main = main_langs[0]
        opt = self.options
        # judging needs two distinct words telling another language: most host sentences with one
        # frequent foreign word ("die" in English, "in" in German) stop there
        spans = _Taken(taken) if taken else _NOTHING_TAKEN  # (most documents: no script fragment)
        sentences, cps = self._hits_by_sentence(text, low, low_cps, main, script, spans, text_cps)
        found: list[tuple[int, int, str]] = []
        if not sentences:
            return found
        # each sentence's word count, letters, non-space characters and `_may_tell` bound in one
        # compiled pass (`_sentence_counts`): the words' text is read only for a sentence that may
        # be judged (the regex, lowering and look-ups per candidate took ~20 µs)
        counts, word_rows = self._sentence_counts(
            text, cps, low, low_cps, [(s, e) for s, e, _ in sentences], main, script
        )
        # the clauses of the sentences the loop below judges (the kernel's, past its three tests), in one
        # compiled pass (`_clauses`' regex per sentence took ~5 µs each); the others' as they come
        clauses_of: list[list[tuple[int, int]] | None] = [None] * len(sentences)
        # the sentences the loop below reads: those the kernel leaves, and its candidates (enough words,
        # `_code_like`'s letters) that may be judged (`_may_tell`'s bound); its candidates counted at once
        todo, judged, candidates = [], [], 0
        for k, (n_words, letters, nonspace, _, bound, _, _) in enumerate(counts):
            if n_words < 0:
                todo.append(k)
            elif n_words >= opt.same_script_min_words and letters >= 0.7 * nonspace:
                candidates += 1
                if bound >= 2:
                    todo.append(k)
                    judged.append(k)
        if candidates:
            self.stat_update("same-script-candidates", candidates)
        if judged and cps is not None:
            for k, spans in zip(judged, _clause_lists(cps, [sentences[k][:2] for k in judged]), strict=True):
                clauses_of[k] = spans
        # `_decide`'s judging (up to langdetect) of those sentences in one compiled pass, and of their
        # clauses one pass per sentence (`_WordJudge`: `_evidence_pieces` and `_judge` per candidate took
        # ~20 µs of Python each); the words' pieces are made only for a sentence found foreign
        judge = None
        if judged:
            judge = _WordJudge(low, low_cps, word_rows, counts, judged, main_langs, script, opt)
        verdicts = judge.run(judge.sentences) if judge else []
        verdict_of = dict(zip(judged, verdicts, strict=True))
        for k in todo:
            s, e, where = sentences[k]
            n_words, _, _, _, _, _, first = counts[k]
            if n_words < 0:  # the kernel leaves it (astral letters, a capital sigma): as before
                sentence_words = _WORD_RE.findall(text, s, e)
                if len(sentence_words) < opt.same_script_min_words:
                    continue
                if _code_like(text, s, e, sentence_words):
                    continue  # shell commands, LaTeX, markup: their words tell no language
                self.stat_update("same-script-candidates")
                if not self._may_tell(sentence_words, main, script):
                    continue  # neither the sentence nor a clause of it can be judged foreign
                pieces = [
                    (a, b, w.lower(), w.islower() or not w[:1].isupper(), -1)
                    for a, b, w in _word_pieces(text, s, sentence_words)
                ]
                clauses = clauses_of[k]
                if clauses is None:
                    clauses = _clauses(text, s, e)
                verdict = self._decide(_evidence_pieces(pieces), main_langs, script, text[s:e])
                if verdict is not None and not self._host_clause(pieces, clauses, main, verdict):
                    end = e if text[e - 1] in _TERMINAL_PUNCT or text[e - 1] in _CLOSERS else pieces[-1][1]
                    found.append((s, end, verdict))
                    continue
                # clauses: split the sentence at commas, brackets, quotes and dashes
                for cs, ce in clauses:
                    if len({w for h, w in where if cs <= h < ce}) < 2:
                        continue
                    words = [p for p in pieces if cs <= p[0] and p[1] <= ce]
                    if len(words) < opt.same_script_min_words:
                        continue
                    fs, fe = words[0][0], words[-1][1]
                    verdict = self._decide(_evidence_pieces(words), main_langs, script, text[fs:fe])
                    if verdict is not None:
                        found.append((*_clause_span(text, fs, fe), verdict))
                continue
            assert judge is not None
            clauses = clauses_of[k]
            if clauses is None:
                clauses = _clauses(text, s, e)
            verdict = self._confirm(verdict_of[k], main_langs, text[s:e])
            # a clause's words are a run of the sentence's: those from its start to its end (the words'
            # starts and ends where the kernel found them)
            bounds = None
            if verdict is not None:
                bounds = word_rows[first : first + n_words, :2].T.tolist()
                spans = [(bisect.bisect_left(bounds[0], cs), bisect.bisect_right(bounds[1], ce)) for cs, ce in clauses]
                if not judge.host_clause([(first + lo, first + hi) for lo, hi in spans if lo < hi], main, verdict):
                    end = e if text[e - 1] in _TERMINAL_PUNCT or text[e - 1] in _CLOSERS else bounds[1][-1]
                    found.append((s, end, verdict))
                    continue
            # clauses: split the sentence at commas, brackets, quotes and dashes
            runs = []
            at = [h for h, _ in where]  # (the hits' positions, ascending)
            for cs, ce in clauses:
                if not _two_distinct(where, at, cs, ce):
                    continue
                if bounds is None:
                    bounds = word_rows[first : first + n_words, :2].T.tolist()
                lo, hi = bisect.bisect_left(bounds[0], cs), bisect.bisect_right(bounds[1], ce)
                if hi - lo < opt.same_script_min_words:
                    continue
                runs.append((first + lo, first + hi))
            if not runs:
                continue
            for (lo, hi), judged_run in zip(runs, judge.run(runs), strict=True):
                fs, fe = int(word_rows[lo, 0]), int(word_rows[hi - 1, 1])
                verdict = self._confirm(judged_run, main_langs, text[fs:fe])
                if verdict is not None:
                    found.append((*_clause_span(text, fs, fe), verdict))
        return found

    def _sentence_counts(
        self,
        text: str,
        cps: np.ndarray | None,
        low: str,
        low_cps: np.ndarray,
        spans: list[tuple[int, int]],
        main: str,
        script: str,
    ) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """`language_kernels.sentence_words` of the sentences (`cps`: the text's code points): words,
        letters, non-space characters, `most_listed` of the lowercased words for `main`, that plus
        main's odd-spelt words (`_may_tell`'s bound), all ASCII and the first of its rows of words
        (start, end, kept by `_evidence` inside a clause), or -1s where Python decides (every
        sentence when lowercasing moved offsets or `main` has no profile)."""
        position = _score_positions(script).get(main)
        if position is None or cps is None or len(low) != len(text):
            return [(-1,) * 7] * len(spans), _NO_WORDS
        table = _score_table(script)
        counts, words = language_kernels.sentence_words(
            cps, low_cps, np.array(spans, dtype=np.int64), _word_char_table(), language_kernels.SPACES,
            *_word_rows(script), table.ptr, table.langs, len(table.names), position,
            _letter_classes(script), _odd_table(main, script), main in _script_alphabets(script)[1],
            _case_table(),
        )  # fmt: skip
        return list(map(tuple, counts.tolist())), words

    def _host_clause(
        self, pieces: list[tuple[int, int, str, bool]], clauses: list[tuple[int, int]], main: str, lang: str
    ) -> bool:
        """Does a clause of a sentence judged `lang` lean to the main language (a foreign clause
        inside a host sentence: only the clause is foreign)? `pieces` as `_evidence_of` takes them."""
        for cs, ce in clauses:
            words = set(_evidence_of([p for p in pieces if cs <= p[0] and p[1] <= ce]))
            if not words:
                continue
            odd = _odd_letter_words(frozenset(words), self.profiles.script[main])
            for_main = self._telling(words, main, lang, odd)
            if for_main >= 1 and for_main > self._telling(words, lang, main, odd):
                return True
        return False

    def _decide(self, pieces: list[_Piece], main_langs: list[str], script: str, fragment: str) -> str | None:
        """The foreign language of a sentence or clause whose evidence is `pieces` (`_evidence_pieces`),
        or None."""
        if len(pieces) < max(2, self.options.same_script_min_words - 1):
            return None  # mostly capitalised names or titles: no evidence either way
        words = [p[2] for p in pieces]
        # the words' profile rows as `sentence_words` found them (-1: not known, looked up in `_judge`)
        rows = [p[4] for p in pieces]
        return self._confirm(self._judge(words, main_langs, script, None if -1 in rows else rows), main_langs, fragment)

    def _confirm(self, judged: tuple[str, float] | None, main_langs: list[str], fragment: str) -> str | None:
        """`_decide`'s verdict from `_judge`'s: the language when its margin is large enough, else what
        langdetect says between the main language(s) and it."""
        if judged is None:
            return None
        lang, margin = judged
        if margin >= self.options.same_script_margin:
            self.stat_update("same-script-by-profile")
            return lang
        # unsure: langdetect, restricted to the main language(s) and the profile's choice
        probs = self._detect(fragment, (*main_langs, lang))
        if probs and probs[0][0] == lang and probs[0][1] >= self.options.langdetect_min_prob:
            self.stat_update("same-script-by-langdetect")
            return lang
        return None

    # ------------------------------------------------------------------ main
    def process(self, doc: Document) -> None:
        text = doc.text
        runs: _Runs | None
        # the lowercase text and its code points serve the script test, the main-language sample and
        # the same-script check (lowercase letters are of the script of their capitals); the text's
        # own code points the script runs and the same-script check
        cps = code_points(text)
        low, low_cps, per_char, first = _lowercase_marked(text, cps)
        if low.isascii() or not _has_non_latin_letter(low, low_cps, first):
            # fast path (most documents): no letter outside Latin, so no script runs to find
            runs, counts = None, {}
            primary_script = "Latin" if _LETTER_RE.search(text) else "und"
            main_scripts = frozenset({primary_script}) if primary_script != "und" else frozenset()
        else:
            rows = _run_rows(text, cps)
            runs = _Runs(rows)
            counts = self._weights_of_rows(text, rows, cps)
            primary_script, main_scripts = self._main_scripts(counts)
        doc.meta["script"] = primary_script
        if primary_script == "und":
            doc.meta["language"] = "und"
            self.stat_update("main-language-und")
            if self.allowed:
                self.stat_update("doc-rejected-language")
                doc.reject("language", f"main language und not in {self.allowed}")
            return
        group = self._group(primary_script, counts)
        main_langs, sure = self._main_languages(text, low, low_cps, runs, primary_script, main_scripts, group, per_char)
        lang = main_langs[0]
        doc.meta["language"] = lang
        if len(main_langs) > 1:
            doc.meta["main_languages"] = main_langs
        self.stat_update(f"main-language-{lang}")
        self.stat_update(f"main-script-{primary_script.lower()}")
        if self.allowed and not any(x in self.allowed for x in main_langs):
            self.stat_update("doc-rejected-language")
            doc.reject("language", f"main language {lang} not in {self.allowed}")
            return

        fragments: list[_Fragment] = []
        if runs is not None:
            hosts = _host_scripts(main_scripts) | self._second_script(text, runs, counts, main_scripts)
            for s, e, script in self._script_fragments_of_rows(text, runs, hosts, cps):
                flang = _SCRIPT_LANGUAGE.get(script) or self._fragment_language(text[s:e], script)
                fragments.append(_Fragment(s, e, "script", script.lower(), flang))
        if not (main_scripts & _CJK):
            taken = [(f.start, f.end) for f in fragments]
            if not _has_stray_punct(text):
                stray = []
            elif runs is None:
                stray = [(m.start(), m.end()) for m in _STRAY_CJK_PUNCT_RE.finditer(text)]
            else:
                stray = self._stray_punct(text, runs.all(), taken)
            for s, e in stray:
                fragments.append(_Fragment(s, e, "script", "stray-punct", "und"))
        if self.options.same_script and lang != "und":
            taken = [(f.start, f.end) for f in fragments]
            if main_scripts & _CJK:
                assert runs is not None
                found = self._cjk_same_script(text, runs, main_langs, main_scripts, taken)
            elif not sure:
                # a wrong main language makes every host sentence look foreign: precision first
                self.stat_update("same-script-skipped-unsure")
                found = []
            elif self.profiles.script.get(lang) == primary_script:
                found = _foreign_lines(
                    text, self._alpha_same_script(text, low, low_cps, main_langs, primary_script, taken, cps), cps
                )
            else:
                self.stat_update(f"same-script-skipped-{lang}")
                found = []
            for s, e, flang in found:
                fragments.append(_Fragment(s, e, "same-script", flang, flang))
        if not fragments:
            return
        for f in fragments:
            # a quotation removed whole takes its marks: no "„.“" or lone "«" left in the host text
            f.start, f.end = _quoted_span(text, f.start, f.end)
        fragments.sort(key=lambda f: f.start)
        for f in fragments:
            self.stat_update(f"fragment-{f.kind}-{f.label}")
            self.stat_update("fragment-chars", f.end - f.start)

        if self.options.action == "tag":
            listed = []
            for f in fragments:
                entry = {"start": f.start, "end": f.end, "text": text[f.start : f.end], "language": f.language}
                if f.kind == "script":
                    entry["script"] = f.label
                else:
                    entry["detector"] = "words"
                listed.append(entry)
            doc.meta["language_fragments"] = listed
        elif self.options.action == "remove":
            doc.text = self._remove(doc, text, fragments)

    def _remove(self, doc: Document, text: str, fragments: list[_Fragment]) -> str:
        """Cut the fragments out of the text, recording each removal."""
        pieces: list[str] = []
        cuts: tuple[list[int], list[int], list[int]] = ([], [], [])  # what was cut: offsets.note_cuts
        pos = 0
        n = len(text)
        # Each fragment's line is searched for only as far as it matters (`_whole_line`: searching the whole
        # line from each fragment took the square of a long line's length, a 5M-character line of words in
        # four scripts ~30 s; every newline's position from the code points took ~20 µs a page).
        for f in fragments:
            s, e = f.start, f.end
            if s < pos:
                continue
            if e - s > 1 and text[e - 1] in _LIST_SEPARATORS and s > 0 and text[s - 1].isalnum():
                # begun inside a list item ("おそ松[さん, ドコモ,] 天下一品"): the item's separator stays, else
                # the two items beside it were glued ("おそ松天下一品")
                e -= 1
            fragment = text[s:e]
            replacement = ""
            lines = 0
            whole = _whole_line(text, s, e, pos)
            if whole is not None:
                line_start, line_end = whole
                # the fragment is the whole line: drop the line and its newline, and record the line, as
                # the marks and punctuation beside the fragment ("• ", ". . . ") go with it
                fragment = text[line_start:line_end]
                span = (line_start, line_end)  # its line break goes with it, as with any removed line
                s = line_start
                if line_end < n:
                    e = line_end + 1
                elif s > pos and s > 0:
                    s, e = s - 1, n
                else:
                    e = n
                lines = fragment.count("\n") + 1
            else:
                before = text[s - 1] if s > 0 else "\n"
                after = text[e] if e < n else "\n"
                if before in " \t" and after in " \t":
                    e += 1
                elif before in " \t" and after == "\n" and s - 1 >= pos:
                    s -= 1
                elif before == "\n" and after in " \t":
                    e += 1
                elif after in " \t" and _is_cjk(before):
                    e += 1  # "。 许多" -> "。许多": CJK text has no spaces between sentences
                elif before in " \t" and _is_cjk(after) and s - 1 >= pos and (s < 2 or not text[s - 2].isascii()):
                    s -= 1  # (not after Latin text or punctuation: "Smith, [ほっしゃん, カジノ]法案" -> "Smith, 法案")
                elif _joins_words(before, after):
                    replacement = " "
                # The space taken beside the fragment is part of the recorded span (an audit that cuts every
                # span from the input gets the output); a space put between two words is named.
                span = (s, e)
                fragment = text[s:e]
            pieces.append(text[pos:s])
            pieces.append(replacement)
            cuts[0].append(s)
            cuts[1].append(e)
            cuts[2].append(len(replacement))
            pos = e
            rule = f"fragment-{f.label}"
            if replacement:
                doc.remove("language", rule, fragment, lines, *span, language=f.language, replaced_by=replacement)
            else:
                doc.remove("language", rule, fragment, lines, *span, language=f.language)
        pieces.append(text[pos:])
        note_cuts(doc, *cuts)
        return "".join(pieces)


# Latin in a non-Latin text that is content, not a foreign-language fragment (`_latin_content`).
# Code and markup marks, one per ten words or more: a closing tag or a tag with an attribute, an
# attribute, operators, preprocessor lines, Fortran's dotted operators, shell paths, braces, a
# statement end glued to the next statement. (A long sentence with one of them - "C++", "99->",
# "~/.rhosts" - is prose about code.)
_CODE_MARK_RE = re.compile(
    r"</[A-Za-z][\w:-]*\s*>|<[A-Za-z][\w:-]*\s+[\w:-]+=|/>|[\w-]=[\"']"
    r"|(?<=[\w)])::(?=\w)|->|(?<=[a-z\])])\+\+|\+\+(?=[\w(*])|&&|\|\||[=!<>+*/-]="
    r"|\.(?:gt|lt|ge|le|eq|ne|and|or|not)\."
    r"|(?<!\w)#(?:define|include|ifn?def|endif|pragma)\b"
    r"|(?<![\w~])~/|(?<![\w/])/(?:usr|etc|bin|sbin|var|opt|tmp|dev|home|lib)/"
    r"|[{}]|(?<=[\w)\]]);(?=[A-Za-z_*])"
)
# ... or programming punctuation of two kinds or more, for a quarter of the words: "=", a statement's
# ";", a pointer or an index glued to a name ("*dst", "x[i]"), "<" ">" "|" glued to a name, a name
# glued to its parenthesis ("printf("). Spaced "*", "[", ">", "|", ";" are bullets, notes,
# breadcrumbs, menus and lists in prose; "*word*" is emphasis.
_CODE_PUNCT_RE = re.compile(
    r"=|(?<=[A-Za-z_)\]]);|\\|\*(?=[\w(*])|(?<=\w)\*|(?<=[\w\]])\[|(?<=\w)[<>|]|[<>|](?=\w)"
    r"|#(?=[A-Za-z])|[A-Za-z0-9_]\("
)
_EMPHASIS_RE = re.compile(r"(?<![\w*])\*\w[^*\n]*?\w\*(?![\w*])")
_BRACKET_RE = re.compile(r"[()\[\]{};=<>*]")
# HTML entities ("&rsquo;", "&#8217;") left in prose: their ";" is not code
_ENTITY_RE = re.compile(r"&#?\w+;")
# a comment marker glued to the first word of a line ("!compute", "//todo", "#set")
_COMMENT_START_RE = re.compile(r"[ \t\xa0]*(?:!|//|#|/\*|--|%|;)(?=[A-Za-z])")
# References and taxonomic names: "et al.", editors, rank abbreviations, a journal's year;volume(issue),
# pages, volumes, a quoted title followed by its year (one is enough), or author initials ("Caracuta
# V.", "N. L. Meyer", "D.S.Hardy": a group each) before a year closing a phrase ("2016.", "(2015)", ", 1905")
_CITATION_MARK_RE = regex.compile(
    r"\bet al\b|\(eds?\.?\)|\beds?\.(?=[\s,;]|$)|\b(?:subsp|ssp|var|spp|cv)\.(?=\s)"
    r"|(?<!\d)(?:1[5-9]|20)\d\d ?; ?\d+ ?(?:\(\d+\))?[:.]"
    # pages and volumes ("p. 297", "pp. xxv-xxx", "vol. 4", "volume 4"), a quoted title with its year
    r"|(?<![\w.])pp?\. ?(?:\d|[ivxlc]+\b)|\b(?:[Vv]ol\.|[Vv]olume) ?\d|[“”\"»«] ?\((?:1[5-9]|20)\d\d\)"
)
_INITIALS_RE = regex.compile(r"(?<![\w.])\p{Lu}\.(?:[ -]?\p{Lu}\.)*(?=[\s,;&)]|\p{Lu}|$)")
_YEAR_RE = regex.compile(r"(?<![\d-])(?:1[5-9]\d\d|20\d\d)[a-z]?(?=[.,;:)-]|$)")


def _whole_line(text: str, s: int, e: int, pos: int) -> tuple[int, int] | None:
    """The line (start, end: its newline or the text's end) holding text[s:e] when no letter or digit of
    it lies outside text[s:e] and it starts at or after `pos` (where the last cut ended), else None.
    Searched only as far as that needs, so `_remove`'s searches stay linear in the text: the start back
    to pos - 1 at most, the end only for a line whose start qualifies."""
    k = text.rfind("\n", max(pos - 1, 0), s)
    start = k + 1 if k >= 0 else (0 if pos == 0 else -1)
    if start < pos or _LETTER_OR_DIGIT_RE.search(text, start, s):
        return None
    k = text.find("\n", e)
    end = len(text) if k < 0 else k
    return None if _LETTER_OR_DIGIT_RE.search(text, e, end) else (start, end)


def _latin_content(text: str, s: int, e: int) -> str | None:
    """Is a run of Latin in a text of another script content rather than a fragment of a foreign
    language: "code" (source code, markup, shell, identifiers), "citation" (references, authors,
    taxonomic names) or None? Read on the run with the punctuation glued to its ends ("<span",
    "x[i];"), and for a comment or a line inside a code block on the lines around it. Only runs
    already found sentence-like are asked (a few per page)."""
    while s > 0 and not text[s - 1].isspace() and not text[s - 1].isalpha():
        s -= 1
    n = len(text)
    while e < n and not text[e].isspace() and not text[e].isalpha():
        e += 1
    segment = text[s:e]
    if "&" in segment:
        segment = _ENTITY_RE.sub(" ", segment)
    if _code_like_latin(segment):
        return "code"
    if _CITATION_MARK_RE.search(segment):
        return "citation"
    initials = [m.start() for m in _INITIALS_RE.finditer(segment)]
    if len(initials) >= 2 and _YEAR_RE.search(segment, initials[1]):
        return "citation"
    # a line of its own between lines of code: a comment ("!compute ...") or a statement ("void f (void)")
    line_start = text.rfind("\n", 0, s) + 1
    line_end = text.find("\n", e)
    line_end = n if line_end == -1 else line_end
    if text[line_start:s].strip() or text[e:line_end].strip():
        return None
    before, after = _code_line(text, line_start - 1, -1), _code_line(text, line_end + 1, 1)
    if _COMMENT_START_RE.match(text, line_start) and (before or after):
        return "code"
    if before and after and _BRACKET_RE.search(segment):
        return "code"
    return None


def _code_like_latin(segment: str) -> bool:
    """Code or markup marks for a tenth of the words, or programming punctuation of two kinds for a
    quarter of them (`_CODE_MARK_RE`, `_CODE_PUNCT_RE`)."""
    words = len(_WORD_RE.findall(segment))
    marks = len(_CODE_MARK_RE.findall(segment))
    if marks and 10 * marks >= words:
        return True
    if "*" in segment:
        segment = _EMPHASIS_RE.sub(" ", segment)
    punct = _CODE_PUNCT_RE.findall(segment)
    return len(punct) >= 2 and 4 * len(punct) >= words and len({p[-1] for p in punct}) >= 2


def _code_line(text: str, at: int, step: int) -> bool:
    """Is the first non-blank line from `at` (a line break's position; step -1: the lines before, 1:
    after) a line of code (a code mark, or programming punctuation for a quarter of its words)?"""
    n = len(text)
    for _ in range(3):  # code blocks are often spaced out by blank lines
        if at < 0 or at >= n:
            return False
        if step < 0:
            start = text.rfind("\n", 0, at) + 1
            line, at = text[start:at], start - 1
        else:
            end = text.find("\n", at)
            end = n if end == -1 else end
            line, at = text[at:end], end + 1
        if not line.strip():
            continue
        return _code_like_latin(line)
    return False


# A name in its own script, given in brackets after a word of the host text (the language's name):
# "Josef Gedalja Klausner (hebrejsky יוסף גדליה קלוזנר; žil ...)", "Moskau (russisch: Москва)".
_GLOSS_BEFORE_RE = regex.compile(r"[(\[][ \t]*\p{L}[\p{L}.]*[ \t]*:?[ \t]*$")
_GLOSS_AFTER_RE = regex.compile(r"[ \t]*[)\];,]")
_GLOSS_WORDS = 4  # words of such a name at most


def _bracket_gloss(text: str, s: int, e: int) -> bool:
    """Is text[s:e] a short name glossed in brackets: "(<host word>[:] <name>" closed by ")", ";"
    or ","? (A foreign clause in brackets starts right after the bracket.)"""
    return bool(_GLOSS_BEFORE_RE.search(text, max(0, s - 40), s) and _GLOSS_AFTER_RE.match(text, e))


_FOREIGN_LINE_SHARE = 2 / 3  # share of a line's letters in fragments of one language that makes it foreign


def _foreign_lines(
    text: str, found: list[tuple[int, int, str]], cps: np.ndarray | None = None
) -> list[tuple[int, int, str]]:
    """Same-script fragments, a line mostly made of fragments of one language taken whole: a quoted
    passage (Caesar's Latin in an Italian article) keeps no clauses whose words the two languages
    share ("«, quarum unam incolunt Belgae, ..."), nor the quotation marks around them (`cps`: the
    text's code points, if known)."""
    if len(found) < 2:
        return found
    by_line: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for s, e, lang in found:
        start = text.rfind("\n", 0, s) + 1
        end = text.find("\n", e)
        by_line.setdefault((start, len(text) if end < 0 else end), []).append((s, e, lang))
    out: list[tuple[int, int, str]] = []
    for (start, end), spans in by_line.items():
        langs = {lang for _, _, lang in spans}
        if len(spans) >= 2 and len(langs) == 1:
            letters = _letter_count(text, start, end, cps)
            covered = sum(_letter_count(text, s, e, cps) for s, e, _ in spans)
            if covered >= _FOREIGN_LINE_SHARE * letters:
                out.append((start, end, spans[0][2]))
                continue
        out.extend(spans)
    return out


def _letter_count(text: str, s: int, e: int, cps: np.ndarray | None = None) -> int:
    """``len(_LETTER_RE.findall(text, s, e))``, by `_letter_table` when the text's code points `cps` are
    known and none of text[s:e] lies beyond it (the regex's list of a line's letters took ~60 µs a line)."""
    if cps is not None and e > s:
        part = cps[s:e]
        table = _letter_table()
        if part.max() < table.size:
            return int(np.count_nonzero(table[part]))
    return len(_LETTER_RE.findall(text, s, e))


@lru_cache(maxsize=1)
def _letter_table() -> np.ndarray:
    """`_LETTER_RE` (\\p{L}) of every code point below U+10000, matched by `regex` itself."""
    return _pattern_table("letters", _LETTER_RE)


def _host_before(text: str, at: int) -> bool:
    """A letter before `at` in its sentence (the runs of a cluster start at its first foreign letter:
    such a letter is of the host text)."""
    lo = max(0, at - _SENTENCE_WINDOW)
    start = lo
    for m in _ANY_SENTENCE_END_RE.finditer(text, lo, at):
        start = m.end()
    return _LETTER_RE.search(text, start, at) is not None


def _host_after(text: str, at: int) -> bool:
    """A letter after `at` in its sentence."""
    hi = min(len(text), at + _SENTENCE_WINDOW)
    m = _ANY_SENTENCE_END_RE.search(text, at, hi)
    return _LETTER_RE.search(text, at, m.start() if m else hi) is not None


def _host_scripts(main_scripts: frozenset[str]) -> frozenset[str]:
    """Scripts the script check leaves alone: a Chinese text's kana go to the same-script check
    (a Japanese sentence mixes kana with Han, so it is judged as a whole sentence)."""
    if main_scripts & _CJK == frozenset({"Han"}):
        return main_scripts | {"Kana"}
    return main_scripts


def _opaque_spans(text: str, cps: np.ndarray | None = None, found: np.ndarray | None = None) -> list[tuple[int, int]]:
    """URLs, e-mail addresses and code-like tokens, merged into disjoint sorted spans (`cps`: the text's
    code points if known; `found`: their `language_kernels.code_tokens` if known)."""
    spans = _code_tokens(text, cps, found)
    if "://" in text or "www." in text:
        spans.extend(_urls(text))
    if "@" in text:
        spans.extend(_emails(text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _code_tokens(text: str, cps: np.ndarray | None = None, found: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The spans of `_CODE_TOKEN_RE.finditer(text)`, by a compiled scan of the code points (`cps` if
    known; `language_kernels.code_tokens`): a match lies in a run of `_CODE_CHARS` that holds a
    `_CODE_TRIGGER_RE` match and ends at the run's end. A run after an astral character (the kernel's
    word-boundary table stops at U+FFFF) is searched by the regex, from the run's start (its
    neighbours are not `_CODE_CHARS`: no match crosses them, and the search sees the character before
    it). The regexes and a Python step per trigger took ~0.03 s of the 40 MB input's 396 non-Latin texts.
    `found`: the kernel's rows, if known."""
    spans: list[tuple[int, int]] = []
    if found is None:
        found = language_kernels.code_tokens(code_points(text) if cps is None else cps, _CODE_TABLE, _word_table())
    for start, end, by_regex in found.tolist():
        if by_regex:
            spans.extend(t.span() for t in _CODE_TOKEN_RE.finditer(text, start, end))
        else:
            spans.append((start, end))
    return spans


@lru_cache(maxsize=1)
def _word_table() -> np.ndarray:
    """`regex`'s \\w (`_CODE_TOKEN_RE`'s word boundary) of every code point below U+10000, matched by
    `regex` itself (~1 ms to build), for `language_kernels.code_tokens`."""
    return _pattern_table("regex_word", _WORD_CHAR_RE)


_WORD_CHAR_RE = regex.compile(r"\w")


def _urls(text: str) -> list[tuple[int, int]]:
    """The spans of `_URL_RE.finditer(text)`, its match tried only where one of its alternatives' literal
    starts (``http://``, ``https://``, ``ftp://``, ``www.``: found by str.find, in C), in order, each
    from the end of the last match: the regex scanning every position of the page took ~2 % of the
    stage on CC."""
    starts = []
    at = text.find("://")
    while at != -1:
        for back, scheme in ((4, "http"), (5, "https"), (3, "ftp")):
            if at >= back and text.startswith(scheme, at - back):
                starts.append(at - back)
        at = text.find("://", at + 1)
    at = text.find("www.")
    while at != -1:
        starts.append(at)
        at = text.find("www.", at + 1)
    spans: list[tuple[int, int]] = []
    end = 0
    for start in sorted(starts):
        if start >= end and (m := _URL_RE.match(text, start)):
            spans.append(m.span())
            end = m.end()
    return spans


def _emails(text: str) -> list[tuple[int, int]]:
    """The spans of `_EMAIL_RE.finditer(text)`, searched only between the spaces or newlines around
    each "@" (neither is in any of its classes, so no match crosses them): its lookbehind, tried at
    every position, made it slow on long pages."""
    spans: list[tuple[int, int]] = []
    end = 0
    at = text.find("@")
    while at != -1:
        start = max(text.rfind(" ", end, at), text.rfind("\n", end, at), end - 1) + 1
        space = _SPACE_OR_NEWLINE_RE.search(text, at)
        end = space.start() if space else len(text)
        spans.extend(m.span() for m in _EMAIL_RE.finditer(text, start, end))
        at = text.find("@", end)
    return spans


# `language_kernels.script_runs` class -> script name
_RUN_SCRIPTS = np.array(["", *_SCRIPT_CLASSES, "Other"], dtype=object)
_RUN_CLASS = {name: k for k, name in enumerate(_RUN_SCRIPTS) if name}
_CJK_CLASSES = np.array([name in _CJK for name in _RUN_SCRIPTS], dtype=np.bool_)
# classes whose run takes no bridge word after it (`LanguageStage._bridgeable`)
_NO_BRIDGE_CLASSES = np.array([name in _CJK or name in _UNSPACED for name in _RUN_SCRIPTS], dtype=np.bool_)


def _run_rows(text: str, cps: np.ndarray | None = None) -> np.ndarray:
    """`language_kernels.script_runs` of the text (`cps`: its code points if known): rows (start, end, class)."""
    cps = code_points(text) if cps is None else cps
    found = language_kernels.code_tokens(cps, _CODE_TABLE, _word_table())
    if "://" in text or "www." in text or "@" in text or found[:, 2].any():
        opaque = np.array(_opaque_spans(text, cps, found), dtype=np.int64).reshape(-1, 2)
    else:
        # the kernel's code tokens are `_opaque_spans` already: one a run of `_CODE_CHARS`, the runs apart
        # (a Python tuple per token, a sort and a merge took ~20 µs a non-Latin page)
        opaque = found[:, :2].copy()
    return language_kernels.script_runs(cps, _script_table(), opaque)


def _lowercase(text: str, cps: np.ndarray) -> tuple[str, np.ndarray, bool]:
    """``text.lower()`` and its code points, from the text's (`cps`) by a table (`language_kernels.lowered_marked`)
    and one decode: str.lower and encoding its result took ~2x as long (0.07 of ~1 s of the stage on the
    40 MB texts). A text with an İ or Σ (whose lowercase is two characters, or depends on the next) is
    lowered by str.lower itself. Also whether each character was lowered on its own (by the table: then
    ``text[s:e].lower()`` is ``low[s:e]`` for any s, e)."""
    return _lowercase_marked(text, cps)[:3]


def _lowercase_marked(text: str, cps: np.ndarray) -> tuple[str, np.ndarray, bool, int | None]:
    """`_lowercase`, and where `_has_non_latin_letter` starts its search of the lowercase: the first code
    point `_non_latin_letters` marks or beyond it, -1 for none, found in the lowering pass
    (`language_kernels.lowered_marked`); None when str.lower lowered the text."""
    low_cps, ok, first = language_kernels.lowered_marked(cps, _lower_table(), _non_latin_letters())
    if not ok:
        low = text.lower()
        return low, code_points(low), False, None
    # read-only as `code_points` gives them: a writable array is another numba type, for which every
    # kernel reading it would be compiled and loaded again
    low_cps.flags.writeable = False
    # (the codec reads the array's buffer: `tobytes` copied it first, ~30 % of the decode)
    return _UTF32_LE_DECODE(low_cps, "surrogatepass", True)[0], low_cps, True, first


_UTF32_LE_DECODE = codecs.utf_32_le_decode


def _pair_scores(
    low_cps: np.ndarray, spans: list[tuple[int, int]], script: str, mine: str, theirs: str
) -> list[list[float]] | None:
    """For each span of a text lowercased character by character (`low_cps`): ``_scores`` of its words
    (``[v for w in low[s:e].split() if (v := w.strip(_STRIP)).isalpha()]``) for `mine` and `theirs`,
    -inf where missing (`language_kernels.pair_scores`); None when a word has a letter beyond the
    kernel's tables."""
    table, position = _score_table(script), _score_positions(script)
    ok, pairs = language_kernels.pair_scores(
        low_cps, np.array(spans, dtype=np.int64).reshape(-1, 2), language_kernels.SPACES, _STRIP_TABLE,
        _alpha_table(), *_word_rows(script), table.ptr, table.langs, table.deltas, table.oov,
        position[mine], position[theirs],
    )  # fmt: skip
    return pairs.tolist() if ok else None


@lru_cache(maxsize=1)
def _lower_table() -> np.ndarray:
    """`language_kernels.lower_table` (saved beside the package: ~0.3 s to build)."""
    return _cached_bmp_table("lower", language_kernels.lower_table)


def _runs_of_rows(rows: np.ndarray) -> list[_Run]:
    fields = zip(rows[:, 0].tolist(), rows[:, 1].tolist(), _RUN_SCRIPTS[rows[:, 2]].tolist(), strict=True)
    # tuple.__new__ straight from C: a third of the time of calling _Run(...) per run
    return list(map(tuple.__new__, repeat(_Run), fields))


@lru_cache(maxsize=1)
def _script_table() -> np.ndarray:
    """Every code point's class for `language_kernels.script_runs` (`_build_script_table`), read from
    the package data when that was written from the same classes with this version of ``regex`` (its
    Unicode tables), else from a copy built by an earlier process with this ``regex`` (kept beside the
    package in ``__pycache__``, like numba's cache): ~1 ms instead of ~0.35 s of regex scans in every
    fresh process. An unwritable place only means building the table in each process."""
    key = _script_table_key()
    shipped = Path(str(resources.files("pipeline").joinpath("data", "language", _SCRIPT_TABLE_FILE)))
    cached = _script_table_cache(key)
    for path in (shipped, cached):
        table = _read_script_table(path, key)
        if table is not None:
            return table
    table = _build_script_table()
    save_cache_file(cached, _script_table_bytes(table, key))
    return table


_SCRIPT_TABLE_FILE = "script_table.json"
_CACHE_DIR = CACHE_DIR  # the script table's and langdetect profiles' (tests point it elsewhere)


def _cached_bmp_table(name: str, build: Callable[[], np.ndarray], *patterns: regex.Pattern) -> np.ndarray:
    """``build()``, a table by code point (below U+10000), read from the copy an earlier process saved in
    ``_CACHE_DIR`` (`base.cached_table`): the six such tables took ~22 ms of every fresh process."""
    return cached_table(_CACHE_DIR, f"language_{name}", build, language_kernels, *patterns)


def _pattern_table(name: str, pattern: regex.Pattern) -> np.ndarray:
    """Whether `pattern` (one character) matches each code point below U+10000, saved as `name`: the
    saved copy is keyed by `_pattern_builder`'s builder (its source) and the pattern."""
    return _cached_bmp_table(name, _pattern_builder(pattern), pattern)


def _pattern_builder(pattern: regex.Pattern) -> Callable[[], np.ndarray]:
    """The builder of `pattern`'s table: one for every such table (`base.cached_table` keys a copy by the
    source of the function it calls, so the building is written out in the function returned)."""

    def build_pattern_table() -> np.ndarray:
        # matched by `regex` itself, a run of such characters at a time (one scan of the plane)
        every = np.arange(0x10000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
        table = np.zeros(0x10000, dtype=np.bool_)
        for m in regex.finditer(f"(?:{pattern.pattern})+", every, flags=pattern.flags):
            table[m.start() : m.end()] = True
        return table

    return build_pattern_table


def _script_table_key() -> dict:
    """What the table depends on: the `regex` version and the classes."""
    return {
        "regex": regex.__version__,
        "classes": _SCRIPT_CLASSES,
        "other": language_kernels.OTHER,
        "inherited": language_kernels.INHERITED,
    }


def _script_table_cache(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return _CACHE_DIR / f"script_table-{digest}.json"


def _read_script_table(path: Path, key: dict) -> np.ndarray | None:
    """The table saved at ``path`` if it was built for ``key``, else None."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    starts, values = np.array(saved["runs"], dtype=np.int64).reshape(-1, 2).T
    return np.repeat(values.astype(np.uint8), np.diff(np.append(starts, 0x110000)))


def _script_table_bytes(table: np.ndarray, key: dict) -> bytes:
    """The table saved as runs of one class (start, class), ~1,400 of them, with the key it was built for."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(table.astype(np.int16))) + 1])
    runs = [[int(x), int(table[x])] for x in starts]
    return (json.dumps({"key": key, "runs": runs}) + "\n").encode("utf-8")


def save_script_table() -> None:
    """Write `_build_script_table` to the package data: rerun after upgrading ``regex`` or changing
    `_SCRIPT_CLASSES` (until then each environment builds the table once and caches it)."""
    path = Path(str(resources.files("pipeline").joinpath("data", "language", _SCRIPT_TABLE_FILE)))
    key = _script_table_key()
    path.write_bytes(_script_table_bytes(_build_script_table(), key))


def _build_script_table() -> np.ndarray:
    """Every code point's class for `language_kernels.script_runs`: the first of `_SCRIPT_CLASSES`
    that has it, else OTHER for a letter outside Common/Inherited, INHERITED for a combining mark,
    0 for the rest, from the same classes as `_RUN_RE`."""
    every = "".join(map(chr, range(0x110000)))
    table = np.zeros(0x110000, dtype=np.uint8)

    def mark(pattern: str, value: int) -> None:
        for m in regex.finditer(pattern, every):
            part = table[m.start() : m.end()]
            part[part == 0] = value

    for k, cls in enumerate(_SCRIPT_CLASSES.values(), start=1):
        mark(f"[{cls}]+", k)
    neutral = np.zeros(0x110000, dtype=np.bool_)
    for m in regex.finditer(r"[\p{Common}\p{Inherited}]+", every):
        neutral[m.start() : m.end()] = True
    neutral[0x30FC] = False  # the prolonged sound mark starts a Kana run (`_RUN_RE`'s lookahead)
    # a run starts only outside Common/Inherited: a script class must not hold such characters
    assert not (neutral & (table > 0)).any()
    mark(r"\p{Inherited}+", language_kernels.INHERITED)
    mark(r"(?:(?![\p{Common}\p{Inherited}])\p{L})+", language_kernels.OTHER)
    return table


def _has_non_latin_letter(text: str, cps: np.ndarray, first: int | None = None) -> bool:
    """A letter of a script other than Latin in the text (`cps`: its code points; no: the fast path
    of most documents). The text may be lowercased: a character is such a letter exactly when its
    lowercase has one (checked over every code point). A compiled scan over a table of the Basic
    Multilingual Plane's such letters (a regex scan of every character took ~30 µs a page); a code
    point beyond it is asked of `_NON_LATIN_LETTER_RE` (emoji, mostly: few a page). `first`: the
    scan's first find if known (`_lowercase_marked`)."""
    table = _non_latin_letters()
    i = language_kernels.first_marked(cps, table, 0) if first is None else first
    while i >= 0:
        if cps[i] < table.size or _NON_LATIN_LETTER_RE.match(text[i]):
            return True
        i = language_kernels.first_marked(cps, table, i + 1)
    return False


@lru_cache(maxsize=1)
def _non_latin_letters() -> np.ndarray:
    """`_NON_LATIN_LETTER_RE` of every code point below U+10000 (~1 ms to build)."""
    return _pattern_table("non_latin_letters", _NON_LATIN_LETTER_RE)


def _sentences_by_regex(text: str, pos: int, endpos: int) -> list[tuple[int, int]]:
    """`LanguageStage._sentences` by `_SENTENCE_END_RE` itself."""
    spans = []
    start = pos
    for m in _SENTENCE_END_RE.finditer(text, pos, endpos):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, endpos))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


_NO_WORDS = np.zeros((0, 3), dtype=np.int64)


@lru_cache(maxsize=1)
def _case_table() -> np.ndarray:
    """`language_kernels.CASE_LOWER`, `CASE_BLOCKS` and `CASE_UPPER` (str.islower, str.istitle and
    str.isupper of the character) by code point below U+10000, for `_evidence`'s tests in
    `sentence_words` (str.islower of a word: no character istitle, one islower). ~10 ms to build."""
    return _cached_bmp_table("case", _build_case_table)


def _build_case_table() -> np.ndarray:
    k = language_kernels
    chars = [chr(c) for c in range(k.WORD_TABLE_SIZE)]
    lower = np.fromiter(map(str.islower, chars), dtype=np.bool_, count=len(chars))
    blocks = np.fromiter(map(str.istitle, chars), dtype=np.bool_, count=len(chars))
    upper = np.fromiter(map(str.isupper, chars), dtype=np.bool_, count=len(chars))
    return (lower * k.CASE_LOWER + blocks * k.CASE_BLOCKS + upper * k.CASE_UPPER).astype(np.uint8)


@lru_cache(maxsize=32)
def _letter_classes(script: str) -> np.ndarray:
    """`language_kernels.IS_ALPHA` (str.isalpha) and `IN_ALPHABETS` (a letter of a listed alphabet of
    `script`) by code point below U+10000, for `sentence_words`' odd-spelt words."""
    k = language_kernels
    table = _alpha_table()[: k.WORD_TABLE_SIZE].astype(np.uint8) * np.uint8(k.IS_ALPHA)
    for c in _script_alphabets(script)[0]:
        if len(c) == 1 and ord(c) < k.WORD_TABLE_SIZE:
            table[ord(c)] |= k.IN_ALPHABETS
    return table


@lru_cache(maxsize=1)
def _word_char_table() -> np.ndarray:
    """`[\\p{L}\\p{M}]` (`_WORD_RE`'s letters) of every code point below U+10000, matched by `regex`
    itself (~1 ms to build), for `language_kernels.sentence_words`."""
    return _pattern_table("word_chars", _WORD_LETTER_RE)


@lru_cache(maxsize=1)
def _letter_or_digit_table() -> np.ndarray:
    """`_LETTER_OR_DIGIT_RE` of every code point below U+10000, matched by `regex` itself, for
    `language_kernels.sentence_hits`' `_capitalised_inside`."""
    return _pattern_table("letters_or_digits", _LETTER_OR_DIGIT_RE)


@lru_cache(maxsize=32)
def _frequent_rows(script: str) -> np.ndarray:
    """By row of `_score_table(script)` (row 0: unlisted): is the word one of `_frequent_words(script)`."""
    frequent = _frequent_set(script)
    flags = np.zeros(len(_score_table(script).row) + 1, dtype=np.bool_)
    flags[[r for w, r in _score_table(script).row.items() if w in frequent]] = True
    return flags


@lru_cache(maxsize=1)
def _sentence_table() -> np.ndarray:
    """`language_kernels.sentence_spans`' classes of every code point below U+10000, from the
    character classes of `_SENTENCE_END_RE` matched by `regex` itself (~6 ms to build)."""
    return _cached_bmp_table("sentence", _build_sentence_table)


def _build_sentence_table() -> np.ndarray:
    k = language_kernels
    every = np.arange(k.SENTENCE_TABLE_SIZE, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(k.SENTENCE_TABLE_SIZE, dtype=np.uint16)
    classes = {
        k.END_MARK: r"[.!?…]",
        k.END_CLOSER: r"[\"”’»“«)\]]",
        k.END_SPACE: r"\s",
        k.LOWER: r"\p{Ll}",
        k.UPPER: r"\p{Lu}",
        k.GLUED_MARK: r"[.!?]",
        k.GLUED_CLOSER: r"[\"”’»]",
        k.GLUED_OPENER: r"[\"“„«]",
        k.CJK_MARK: r"[。！？!?]",
        k.CJK_CLOSER: r"[」』”’）)]",
        k.NEWLINE: r"\n",
    }
    for bit, cls in classes.items():
        for m in regex.finditer(cls + "+", every):
            table[m.start() : m.end()] |= bit
    return table


def _is_cjk(c: str) -> bool:
    """A Han/Kana/Hangul letter or CJK punctuation."""
    if c in _CJK_PUNCT or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uff65":
        return True
    m = _RUN_RE.match(c)
    return bool(m and m.lastgroup in _CJK)


def _joins_words(before: str, after: str) -> bool:
    """Would gluing these two characters make one word out of two (alphabetic scripts only)?"""

    def alnum(c: str) -> bool:
        if not _LETTER_OR_DIGIT_RE.match(c):
            return False
        m = _RUN_RE.match(c)
        return not (m and m.lastgroup in _CJK)

    return alnum(before) and alnum(after)


@lru_cache(maxsize=4096)
def _token_pattern(word: str) -> regex.Pattern[str]:
    """A whitespace-delimited token, any case (what `text.lower().split()` found)."""
    return regex.compile(rf"(?<!\S){regex.escape(word)}(?!\S)", regex.IGNORECASE)


# Clause boundaries inside a CJK sentence: CJK and ASCII commas, brackets and quotes.
_CJK_CLAUSE_SPLIT_RE = regex.compile(r"[，、；：,;:（）()「」『』《》【】〈〉“”\"]+")
# Clause boundaries inside a sentence: , ; : brackets, quotes, and dashes between spaces. In the
# standard `re` with regex's \s spelt out (`_REGEX_SPACE`: Unicode White_Space; re's \s is str.isspace,
# which adds U+001C-U+001F) behind a lookahead of every alternative's first character, which skips the
# other characters without trying the alternatives: ~40 % faster than `regex` (0.029 -> 0.017 s on the
# 40 MB texts' 4,625 candidate sentences).
_REGEX_SPACE = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_CLAUSE_SPLIT_RE = re.compile(
    r"(?=[,;:()\[\]{}“”„\"«»‹›「」'\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])"
    r"(?:[,;:()\[\]{}“”„\"«»‹›「」]"
    rf"|{_REGEX_SPACE}[–—-]{_REGEX_SPACE}|{_REGEX_SPACE}'|'(?={_REGEX_SPACE}|$))"
)


def _clauses(text: str, s: int, e: int) -> list[tuple[int, int]]:
    spans, start = [], s
    for m in _CLAUSE_SPLIT_RE.finditer(text, s, e):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < e:
        spans.append((start, e))
    return spans if len(spans) > 1 else []


def _clause_lists(cps: np.ndarray, spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """`_clauses` of each span of a text (`cps`: its code points), by `language_kernels.clause_spans`."""
    found, first = language_kernels.clause_spans(
        cps, np.array(spans, dtype=np.int64).reshape(-1, 2), language_kernels.CLAUSE_TABLE
    )
    pairs = list(map(tuple, found.tolist()))
    bounds = first.tolist()
    return [pairs[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _clause_span(text: str, s: int, e: int) -> tuple[int, int]:
    """A clause with what goes with it: the brackets/quotes around it, or the comma or dash before
    it when punctuation follows ("hat, as the minister said, neue" -> remove ", as ... said")."""
    if s > 0 and e < len(text) and text[s - 1] in _OPENERS and _OPENERS[text[s - 1]] == text[e]:
        return s - 1, e + 1
    before = text[max(0, s - 4) : s]
    closed = e < len(text) and (text[e] in ",;:.!?)" or text[e : e + 2] in (" –", " —", " -"))
    if closed and (m := _DELIM_BEFORE_RE.search(before)):
        return s - len(before) + m.start(), e
    return s, e


_DELIM_BEFORE_RE = regex.compile(r"(?:[,;:]|\s[–—-])\s*$")

# Quotation marks and brackets that enclose a quotation, with the marks that close each ("„" closes
# with "“" in German and "”" in Polish; "»" opens a Danish or German quotation). The apostrophes
# ' and ’ are left out: they are mostly inside words ("C'est").
_QUOTE_PAIRS = {
    "„": "“”",
    "“": "”",
    "«": "»",
    "»": "«",
    "‹": "›",
    "‚": "‘’",
    "‘": "’",
    '"': '"',
    "「": "」",
    "『": "』",
    "(": ")",
    "[": "]",
    "（": "）",
}
# every mark of `_QUOTE_PAIRS` (openers and closers): `_open_mark` and `_closing_mark` act only at these, so
# they step from one to the next (a Python step per character of a fragment took ~7 µs a fragment)
_QUOTE_MARK_RE = re.compile("[" + re.escape("".join(sorted({c for k, v in _QUOTE_PAIRS.items() for c in k + v}))) + "]")
_QUOTE_SPACE = " \t\xa0\u202f"
_QUOTE_FINAL = ".!?…"


def _quoted_span(text: str, s: int, e: int) -> tuple[int, int]:
    """A fragment [s, e) with the quotation marks that belong to it: when it is the whole content of
    a quotation (only spaces and the quotation's final punctuation between it and the marks), the
    marks and that punctuation; when it holds the closing mark of an opening mark just before it
    ("„Wir schaffen das“, sagte sie."), that opening mark; when it holds an opening mark closed just
    after it, that closing mark. So no half of a pair is left in the host text."""
    n = len(text)
    while True:
        i = s
        while i > 0 and text[i - 1] in _QUOTE_SPACE:
            i -= 1
        j = e
        while j < n and (text[j] in _QUOTE_SPACE or text[j] in _QUOTE_FINAL):
            j += 1
        opener = text[i - 1] if i > 0 else ""
        closers = _QUOTE_PAIRS.get(opener, "")
        if closers and j < n and text[j] in closers:
            s, e = i - 1, j + 1
            continue
        if closers and _closing_mark(text, s, e, opener, closers) is not None:
            s = i - 1
            continue
        k = _open_mark(text, s, e)
        if k is not None and j < n and text[j] in _QUOTE_PAIRS[text[k]]:
            e = j + 1
            continue
        return s, e


def _closing_mark(text: str, s: int, e: int, opener: str, closers: str) -> int | None:
    """Where in [s, e) a quotation opened by `opener` before `s` closes (nested pairs skipped)."""
    depth = 0
    for m in _QUOTE_MARK_RE.finditer(text, s, e):
        k, c = m.start(), m.group()
        if c in closers and (depth == 0 or opener == c):
            if depth == 0:
                return k
            depth -= 1
        elif c == opener:
            depth += 1
    return None


def _open_mark(text: str, s: int, e: int) -> int | None:
    """The last opening mark in [s, e) that is not closed in it (a quote or bracket at the start of a
    word), or None."""
    open_at: list[int] = []
    for m in _QUOTE_MARK_RE.finditer(text, s, e):
        k, c = m.start(), m.group()
        if open_at and c in _QUOTE_PAIRS[text[open_at[-1]]]:
            open_at.pop()
        elif c in _QUOTE_PAIRS and (k + 1 < e and not text[k + 1].isspace()) and (k == s or not text[k - 1].isalnum()):
            open_at.append(k)
    return open_at[-1] if open_at else None


def _word_pieces(text: str, start: int, words: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, word) of `_WORD_RE.findall(text, start, ...)`'s words: each is the first
    occurrence of its text from the end of the one before, since no letter or mark (which every
    match starts with) lies between two matches."""
    out, pos = [], start
    find = text.find
    for w in words:
        at = find(w, pos)
        pos = at + len(w)
        out.append((at, pos, w))
    return out


def _evidence(words: list[str]) -> list[str]:
    """Lowercased words that can tell a language: lowercase ones and the first word; capitalised
    words inside (names, titles such as "The Merchants Exchange") are left out, and so is "et al."
    (Latin, in references of any language)."""
    return _without_et_al([w.lower() for i, w in enumerate(words) if i == 0 or w.islower() or not w[:1].isupper()])


# a word of a candidate sentence: start, end, lowercase, kept by `_evidence` inside a clause, and its
# row of `_score_table` (-1: not known)
_Piece = tuple[int, int, str, bool, int]
_WORD, _KEPT = itemgetter(2), itemgetter(3)  # a piece's lowercase word, and whether it is kept


class _WordJudge:
    """`LanguageStage._decide`'s judging, up to langdetect, of runs of a text's candidate words as
    `language_kernels.sentence_words` found them (`words`: a row (start, end, kept inside a clause, profile
    row) each, offsets into the lowercase text `low`, code points `low_cps`), by `language_kernels.judge_ranges`:
    the same verdicts as `_evidence_pieces` and `_judge` of the runs' pieces. The odd-letter rows of the words
    spelt beyond ASCII (`_odd_row`) in the `judged` sentences (indices into `counts`) are found once."""

    def __init__(
        self,
        low: str,
        low_cps: np.ndarray,
        words: np.ndarray,
        counts: list[tuple[int, ...]],
        judged: list[int],
        main_langs: list[str],
        script: str,
        options: LanguageStage.Options,
    ) -> None:
        self.low, self.low_cps, self.words, self.script = low, low_cps, words, script
        self.table = _score_table(script)
        self.order = _name_order(script, tuple(main_langs))
        self.min_pieces = max(2, options.same_script_min_words - 1)
        self.min_margin = float(options.langdetect_margin)
        # the judged sentences' words (first, end)
        ranges = np.array([(counts[k][6], counts[k][6] + counts[k][0]) for k in judged], dtype=np.int64)
        self.sentences = ranges.reshape(-1, 2)
        # each distinct word spelt beyond ASCII once, and its `_odd_row` from the kernel's tables (a Python
        # `_odd_row` per word, cached per process, cost ~4 µs at each word's first meeting: ~5,600 of them in
        # a pass over the 40 MB input's texts)
        table = self.table
        local, firsts, odd_rows, ok = language_kernels.odd_spelt_words(
            low_cps, words, self.sentences, *_odd_letter_tables(script), _alpha_table(), table.ptr, table.langs
        )
        if len(firsts):
            if not ok:  # a code point beyond the letter table (none in the three corpora)
                odd_rows = np.array([_odd_row(low[a:b], script) for a, b in words[firsts, :2].tolist()])
            self.odd_index, self.odd_rows = local, odd_rows
        else:
            self.odd_index, self.odd_rows = local, _no_odd_rows(script)

    def run(self, ranges: list[tuple[int, int]] | np.ndarray) -> list[tuple[str, float] | None]:
        """`_judge`'s verdict on the evidence of each run of words (first, end) of `words`."""
        table = self.table
        if not isinstance(ranges, np.ndarray):
            ranges = np.array(ranges, dtype=np.int64).reshape(-1, 2)
        status, best, margins = language_kernels.judge_ranges(
            self.low_cps, self.words, ranges, self.odd_index,
            self.odd_rows, table.ptr, table.langs, table.deltas, table.oov, _ODD_LETTER, *self.order,
            _alphabet_flags(self.script), self.min_pieces, self.min_margin,
        )  # fmt: skip
        names = table.names
        return [
            (names[j], m) if ok else None
            for ok, j, m in zip(status.tolist(), best.tolist(), margins.tolist(), strict=True)
        ]

    def host_clause(self, ranges: list[tuple[int, int]], main: str, lang: str) -> bool:
        """`LanguageStage._host_clause` of a sentence judged `lang` whose clauses' words are the runs (first,
        end) of `words` (`language_kernels.host_clause`)."""
        if not ranges:
            return False
        position = _score_positions(self.script)
        return language_kernels.host_clause(
            self.low_cps, self.words, np.array(ranges, dtype=np.int64), self.odd_index, self.odd_rows,
            self.table.ptr, self.table.langs, position[main], position[lang], _alphabet_flags(self.script),
        )  # fmt: skip

    def pieces(self, first: int, n_words: int) -> list[_Piece]:
        """The pieces (start, end, lowercase, kept inside a clause, profile row) of words first:first + n_words."""
        low = self.low
        return [(a, b, low[a:b], kept, row) for a, b, kept, row in self.words[first : first + n_words].tolist()]


@lru_cache(maxsize=32)
def _alphabet_flags(script: str) -> np.ndarray:
    """By language of `_score_table(script)`: whether its alphabet is listed (`_alphabets`)."""
    return np.array([lang in _alphabets() for lang in _score_table(script).names], dtype=np.bool_)


def _evidence_pieces(pieces: list[_Piece]) -> list[_Piece]:
    """The pieces of the words `_evidence_of` gives."""
    # the filter and the "al" test in C (a Python step per word took ~2 % of the stage)
    kept = list(compress(pieces, map(_KEPT, pieces)))
    if pieces and not pieces[0][3]:
        kept.insert(0, pieces[0])
    if "al" in map(_WORD, kept):
        for i in range(len(kept) - 2, -1, -1):
            if [p[2] for p in kept[i : i + 2]] == ["et", "al"]:  # a slice: "et et al" shortened the list
                del kept[i : i + 2]
    return kept


def _evidence_of(pieces: list[tuple[int, int, str, bool]] | list[_Piece]) -> list[str]:
    """`_evidence` of words given as (start, end, lowercase, kept inside a clause: ``w.islower() or
    not w[:1].isupper()``), as `sentence_words` gives them."""
    return _without_et_al([p[2] for i, p in enumerate(pieces) if i == 0 or p[3]])


def _without_et_al(words: list[str]) -> list[str]:
    if "al" in words:
        for i in range(len(words) - 2, -1, -1):
            # a slice, not words[i + 1]: after "et et al" lost its "et al", i + 1 is past the end
            if words[i : i + 2] == ["et", "al"]:
                del words[i : i + 2]
    return words


def _two_distinct(where: list[tuple[int, str]], at: list[int], cs: int, ce: int) -> bool:
    """``len({w for h, w in where if cs <= h < ce}) >= 2`` for hits `where` in order of their positions `at`:
    the clause's hits found by bisection, not by a scan of all the sentence's hits for each clause."""
    a, b = bisect.bisect_left(at, cs), bisect.bisect_left(at, ce)
    if b - a < 2:
        return False
    first = where[a][1]
    return any(where[i][1] != first for i in range(a + 1, b))


def _two_words(
    hits: dict[tuple[int, int], list[tuple[int, str]]], taken: _Taken
) -> list[tuple[int, int, list[tuple[int, str]]]]:
    """The sentences of `hits` (sentence -> its hits' positions and words) with two distinct words,
    in order, outside the `taken` spans."""
    return [
        (s, e, where)
        for (s, e), where in sorted(hits.items())
        if len({w for _, w in where}) >= 2 and not taken.overlaps(s, e)
    ]


def _capitalised_inside(text: str, sentence_start: int, at: int, length: int) -> bool:
    """Is the token at `at` capitalised and neither the first word of the sentence nor of a clause?
    Such words (names, titles, German nouns) are no evidence of a language (`_evidence`), so they
    make no candidate."""
    k = next((i for i in range(at, at + length) if text[i].isalpha()), at + length)
    if k == at + length or not text[k].isupper() or not _LETTER_OR_DIGIT_RE.search(text, sentence_start, at):
        return False
    before = text[sentence_start:k].rstrip()
    return not before or before[-1] not in _CLAUSE_MARKS


# what may end the text before a clause's first word (clause delimiters of `_clauses`, sentence ends)
_CLAUSE_MARKS = ",;:()[]{}“”„\"«»‹›「」'‘’–—-.!?…"
_CLAUSE_MARK_TABLE = np.zeros(max(map(ord, _CLAUSE_MARKS)) + 1, dtype=np.bool_)
_CLAUSE_MARK_TABLE[list(map(ord, _CLAUSE_MARKS))] = True


def _code_like(text: str, s: int, e: int, words: list[str]) -> bool:
    """Under 70% of the non-space characters are letters of words (code, formulas, markup)."""
    letters = sum(map(len, words))
    # non-space characters: what str.split() leaves (it splits at str.isspace), counted in C
    return letters < 0.7 * len("".join(text[s:e].split()))


@lru_cache(maxsize=128)
def _odd_letters(main: str, script: str) -> frozenset[str]:
    """Lowercase letters of `script` that `main`'s alphabet lacks (a token holding one: a candidate
    foreign word); none when `main` has no listed alphabet."""
    known, alphabets = _script_alphabets(script)
    return known - alphabets[main] if main in alphabets else frozenset()


@lru_cache(maxsize=128)
def _odd_letter_re(main: str, script: str) -> regex.Pattern[str] | None:
    """`_odd_letters` as a character class, or None when there are none."""
    odd = _odd_letters(main, script)
    return regex.compile("[" + "".join(regex.escape(c) for c in sorted(odd)) + "]") if odd else None


@lru_cache(maxsize=128)
def _odd_table(main: str, script: str) -> np.ndarray:
    """`_odd_letters` as a table by code point, for `language_kernels.line_hits`."""
    letters = [ord(c) for c in _odd_letters(main, script)]
    table = np.zeros(max(letters, default=-1) + 1, dtype=np.bool_)
    table[letters] = True
    return table


_ODD_LETTER = 6.0  # log-probability penalty of a word spelt with a letter outside the alphabet


@lru_cache(maxsize=32)
def _script_alphabets(script: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """Letters of `script` some listed alphabet has, and each listed alphabet of `script`."""
    prof = _profiles()
    alphabets = {lang: a for lang, a in _alphabets().items() if prof.script.get(lang) == script}
    known = frozenset().union(*alphabets.values()) if alphabets else frozenset()
    return known, alphabets


def _odd_letter_words(words: frozenset[str], script: str) -> dict[str, frozenset[str]]:
    """For each language with a listed alphabet: the words spelt with a letter it lacks (only
    letters some alphabet of the script has count: others are names, symbols or typos)."""
    out: dict[str, set[str]] = {}
    if "".join(words).isascii():  # every listed Latin alphabet has a-z (most sentences: one test in C)
        return {}
    for w in words:
        if not w.isascii():
            for lang in _odd_langs(w, script):
                out.setdefault(lang, set()).add(w)
    return {lang: frozenset(ws) for lang, ws in out.items()}


@lru_cache(maxsize=65536)
def _odd_langs(word: str, script: str) -> tuple[str, ...]:
    """Languages (with a listed alphabet of `script`) that lack a letter of `word`. A letter no listed
    alphabet has (Icelandic þ, mojibake such as Turkish "þarkýcý") is lacked by all of them: the
    word then tells none of them apart, instead of counting for the one that has its other letters."""
    known, alphabets = _script_alphabets(script)
    letters = known.intersection(word)
    if not letters:
        return ()
    if any(c.isalpha() and c not in known for c in word):
        return tuple(alphabets)
    # letters every alphabet has change nothing: the rest (mostly one or two, as "é") decide, and
    # many words share them
    return _lacking(letters - _common_letters(script), script)


@lru_cache(maxsize=4096)
def _lacking(letters: frozenset[str], script: str) -> tuple[str, ...]:
    """The languages (with a listed alphabet of `script`) whose alphabet lacks one of `letters`."""
    _, alphabets = _script_alphabets(script)
    return tuple(lang for lang, alphabet in alphabets.items() if not letters <= alphabet) if letters else ()


@lru_cache(maxsize=32)
def _common_letters(script: str) -> frozenset[str]:
    """The letters every listed alphabet of `script` has."""
    _, alphabets = _script_alphabets(script)
    return frozenset.intersection(*alphabets.values()) if alphabets else frozenset()


@lru_cache(maxsize=32)
def _no_odd_rows(script: str) -> np.ndarray:
    """`language_kernels.best_foreign`'s odd-letter rows when no word is spelt with an odd letter:
    none (it only reads them; a read-only array would be another signature to compile)."""
    return np.zeros((0, len(_score_table(script).names)), dtype=np.int8)


_NO_COUNTS = np.zeros(0, dtype=np.int64)  # the words' counts that go with `_no_odd_rows`


@lru_cache(maxsize=32)
def _odd_letter_tables(script: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`language_kernels.odd_letter_rows`' tables for `script`: each letter some listed alphabet of `script`
    has, by code point, as its row (-1: none) of a matrix telling by language of `_score_table(script)`
    whether its listed alphabet lacks the letter (`_lacking`), and which languages have a listed alphabet."""
    known, alphabets = _script_alphabets(script)
    position = _score_positions(script)
    letters = sorted(known)
    index = np.full(max(map(ord, letters), default=-1) + 1, -1, dtype=np.int64)
    lacking = np.zeros((len(letters), len(position)), dtype=np.bool_)
    for i, c in enumerate(letters):
        index[ord(c)] = i
        for lang, alphabet in alphabets.items():
            lacking[i, position[lang]] = c not in alphabet
    return index, lacking, _alphabet_flags(script)


@lru_cache(maxsize=65536)
def _odd_row(word: str, script: str) -> np.ndarray:
    """For each language of `_score_table(script)`: 0 if it has every letter of `word` (`_odd_langs`),
    1 if it lacks one and lists the word, 2 if it lacks one and does not list it."""
    prof = _profiles()
    position = _score_positions(script)
    row = np.zeros(len(position), dtype=np.int8)
    for lang in _odd_langs(word, script):
        row[position[lang]] = 1 if word in prof.words.get(lang, frozenset()) else 2
    return row


def _script_index(script: str) -> dict[str, tuple[tuple[str, float], ...]]:
    """The profile index restricted to the languages of `script`."""
    return _script_indexes().get(script, {})


@lru_cache(maxsize=1)
def _script_indexes() -> dict[str, dict[str, tuple[tuple[str, float], ...]]]:
    """`_script_index` of every script (`_build_script_indexes`, saved with the profiles: `_saved_profiles`)."""
    return _saved_profiles().indexes


def _build_script_indexes(prof: _Profiles) -> dict[str, dict[str, tuple[tuple[str, float], ...]]]:
    """`_script_index` of every script, in one pass over the index (a pass per script cost ~10-40 ms
    each at the first document of each script)."""
    out: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for w, entries in prof.index.items():
        for e in entries:
            out.setdefault(prof.script[e[0]], {}).setdefault(w, []).append(e)
    return {script: {w: tuple(v) for w, v in index.items()} for script, index in out.items()}


class _ScoreTable(NamedTuple):
    """`_script_index(script)` as arrays for `language_kernels.profile_scores`: the entries of the
    word at row r (1..) are ptr[r]:ptr[r + 1] of langs (index into names) and deltas."""

    names: tuple[str, ...]  # the script's languages
    oov: np.ndarray  # by language: log probability of an unlisted word
    row: dict[str, int]  # word -> row
    ptr: np.ndarray
    langs: np.ndarray
    deltas: np.ndarray


@lru_cache(maxsize=32)
def _score_table(script: str) -> _ScoreTable:
    saved = _saved_profiles().scores.get(script)  # every script with a language: saved with the profiles
    return saved if saved is not None else _build_score_table(_profiles(), _script_index(script), script)


def _build_score_table(prof: _Profiles, index: dict[str, tuple[tuple[str, float], ...]], script: str) -> _ScoreTable:
    names = tuple(lang for lang in prof.script if prof.script[lang] == script)
    position = {lang: j for j, lang in enumerate(names)}
    row = {w: r for r, w in enumerate(index, start=1)}
    ptr = np.zeros(len(index) + 2, dtype=np.int64)  # row 0 (unlisted words): no entries
    langs: list[int] = []
    deltas: list[float] = []
    for r, entries in enumerate(index.values(), start=1):
        langs.extend(position[lang] for lang, _ in entries)
        deltas.extend(d for _, d in entries)
        ptr[r + 1] = len(langs)
    oov = np.array([prof.oov[lang] for lang in names], dtype=np.float64)
    return _ScoreTable(names, oov, row, ptr, np.array(langs, dtype=np.int64), np.array(deltas, dtype=np.float64))


@lru_cache(maxsize=32)
def _score_positions(script: str) -> dict[str, int]:
    """Each language's index in `_score_table(script)`."""
    return {lang: j for j, lang in enumerate(_score_table(script).names)}


@lru_cache(maxsize=32)
def _name_ranks(script: str) -> np.ndarray:
    """Each language of `_score_table(script)`'s place in name order, for `language_kernels.profile_choice`."""
    names = _score_table(script).names
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return ranks


@lru_cache(maxsize=256)
def _name_order(script: str, main_langs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """For `language_kernels.best_foreign`: the languages of `_score_table(script)` in name order,
    which of them are main languages, and the index of the first main language."""
    names = _score_table(script).names
    by_name = np.array(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
    excluded = np.array([lang in main_langs for lang in names], dtype=np.bool_)
    return by_name, excluded, names.index(main_langs[0])


def _row_scores(rows: np.ndarray, table: _ScoreTable) -> tuple[dict[str, float], dict[str, int]]:
    """`LanguageStage._scores` of words given as their rows of `table` (0: unlisted)."""
    # each distinct word once (a text repeats its frequent words), only this script's lists:
    # compiled (`language_kernels.profile_scores`)
    order, scores, hits = language_kernels.profile_scores(rows, table.ptr, table.langs, table.deltas, table.oov)
    names = list(map(table.names.__getitem__, order.tolist()))
    return dict(zip(names, scores.tolist(), strict=True)), dict(zip(names, hits.tolist(), strict=True))


# `_STRIP` as a table by code point, for `language_kernels.token_rows`
_STRIP_TABLE = np.zeros(max(map(ord, _STRIP)) + 1, dtype=np.bool_)
_STRIP_TABLE[list(map(ord, _STRIP))] = True


@lru_cache(maxsize=1)
def _alpha_table() -> np.ndarray:
    return _cached_bmp_table("alpha", language_kernels.alpha_table)


@lru_cache(maxsize=32)
def _word_rows(script: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`language_kernels.word_rows_table` of the words of `_score_table(script)`, in row order."""
    return language_kernels.word_rows_table(list(_score_table(script).row))


def _sample_rows(low: str, cps: np.ndarray, script: str) -> np.ndarray:
    """``[row.get(v, 0) for w in low.split() if (v := w.strip(_STRIP)).isalpha()]`` with `row` the
    rows of `_score_table(script)`; `cps` are `low`'s code points."""
    rows, python = language_kernels.token_rows(
        cps, language_kernels.SPACES, _STRIP_TABLE, _alpha_table(), *_word_rows(script)
    )
    return _python_rows(low, rows, python, script)


def _python_rows(low: str, rows: np.ndarray, python: np.ndarray, script: str) -> np.ndarray:
    """The kernel's rows with its -1 rows decided here: tokens with a letter beyond the kernel's table,
    kept when str.isalpha says so (`python`: their index in `rows` and offsets in `low`)."""
    if not len(python):
        return rows
    get = _score_table(script).row.get
    kept = rows.tolist()
    for i, s, e in reversed(python.tolist()):  # from the end: deleting leaves the earlier indices
        if low[s:e].isalpha():
            kept[i] = get(low[s:e], 0)
        else:
            del kept[i]
    return np.array(kept, dtype=np.int64)


def _spread_rows(low: str, cps: np.ndarray, script: str) -> np.ndarray:
    """`_sample_rows` of the `language_kernels.spread_sample` of a lowercased text (`low`, its code
    points `cps`), without joining the sample (`language_kernels.spread_rows`)."""
    rows, python = language_kernels.spread_rows(
        cps, _SAMPLE_WORDS, language_kernels.SPACES, _STRIP_TABLE, _alpha_table(), *_word_rows(script)
    )
    return _python_rows(low, rows, python, script)


class _SpreadSample:
    """The Latin main-language sample (`language_kernels.spread_sample` of a lowercased text's code
    points), joined when read as a string: only langdetect reads it (~1 document in 10)."""

    __slots__ = ("cps",)

    def __init__(self, cps: np.ndarray) -> None:
        self.cps = cps

    def __str__(self) -> str:
        spread = language_kernels.spread_sample(self.cps, _SAMPLE_WORDS, language_kernels.SPACES)
        return _UTF32_LE_DECODE(spread, "surrogatepass", True)[0]


@lru_cache(maxsize=32)
def _frequent_words(script: str) -> dict[str, frozenset[str]]:
    """Words of 2+ letters at least 1 in 1000 in some language of `script` -> those languages."""
    saved = _saved_profiles().frequent.get(script)  # every script with a language: saved with the profiles
    return saved if saved is not None else _build_frequent_words(_profiles(), _script_index(script))


def _build_frequent_words(
    prof: _Profiles, index: dict[str, tuple[tuple[str, float], ...]]
) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for w, entries in index.items():  # the script's entries, in index order
        if len(w) < 2:
            continue
        for lang, d in entries:
            if d + prof.oov[lang] >= _FREQUENT:
                out.setdefault(w, set()).add(lang)
    return {w: frozenset(v) for w, v in out.items()}


@lru_cache(maxsize=32)
def _frequent_keys(script: str) -> tuple[np.ndarray, np.ndarray]:
    """The `language_kernels.word_keys` of `_frequent_words(script)` and, by language of
    `_score_table(script)` (a column each, `_score_positions`), which of those words its list has
    (a word is on a language's list when the profile index has an entry of the language for it)."""
    words = list(_frequent_words(script))
    table = _score_table(script)
    # each word's entries of the table (the index's entries of the script's languages, by position), all at
    # once: a Python step per entry took ~0.5 ms for Cyrillic, ~1 ms a CC run over the scripts it meets
    rows = np.fromiter(map(table.row.__getitem__, words), dtype=np.int64, count=len(words))
    counts = table.ptr[rows + 1] - table.ptr[rows]
    firsts = np.repeat(table.ptr[rows] - (np.cumsum(counts) - counts), counts)
    listed = np.zeros((len(words), len(table.names)), dtype=np.bool_)
    listed[np.repeat(np.arange(len(words)), counts), table.langs[firsts + np.arange(counts.sum())]] = True
    return language_kernels.word_keys(words), listed


@lru_cache(maxsize=32)
def _frequent_key_table(script: str) -> tuple[np.ndarray, np.ndarray]:
    """`language_kernels.listed_key_table` of `_frequent_keys(script)`: for `line_hits`, the
    foreign-frequent words of every main language of `script` (`_foreign_set`) are the keys whose mask
    lacks its bit. One table per script (a table per main language cost ~0.25 ms each at first use,
    ~40 of them on CC, and 256 KB each to keep)."""
    frequent, listed = _frequent_keys(script)
    return language_kernels.listed_key_table(frequent, listed)


@lru_cache(maxsize=128)
def _foreign_keys(script: str, main: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`line_hits`' keys, masks, Bloom filter and main language (its index in `_score_table(script)`): the
    script's `_frequent_key_table` and a filter of main's foreign-frequent keys only (16 KB: a filter of
    all the script's keys let main's own frequent words, most of a text's tokens, through to the table)."""
    table, masks = _frequent_key_table(script)
    return table, masks, language_kernels.foreign_bloom(table, masks, main), main


@lru_cache(maxsize=32)
def _frequent_set(script: str) -> frozenset[str]:
    """The words of `_frequent_words(script)`."""
    return frozenset(_frequent_words(script))


def _token_starts(text: str, low: str, word: str) -> list[int]:
    """Where `word` occurs as a whitespace-delimited token (what `text.lower().split()` found)."""
    if len(low) != len(text):  # lowercasing changed offsets (rare letters such as "İ")
        return [m.start() for m in _token_pattern(word).finditer(text)]
    out, n, k = [], len(low), len(word)
    i = low.find(word)
    while i != -1:
        if (i == 0 or low[i - 1].isspace()) and (i + k == n or low[i + k].isspace()):
            out.append(i)
        i = low.find(word, i + k)
    return out
