"""dedup: drop repeated paragraphs (exact and MinHash near-duplicates) and duplicate documents.

The first occurrence in input order is kept and every removal names the document it duplicates.

How a document is hashed (all of it vectorized per document, no Python work per shingle):

* tokens: the text is split on whitespace once; each distinct raw token is normalized once (case,
  punctuation and symbols, digits: see the options) into zero or more words and cached with the
  64-bit ``xxh3_64`` hash of each word (``char`` shingles use the code points instead).
* a shingle's 32-bit hash is ``(sum_k token_hash[i+k] * C_k mod 2**64) >> 32`` over its n tokens
  (``ShingleHash``; C_k fixed odd constants). Signatures are datasketch's ``affine32`` scheme on
  those hashes: ``min_i(a_p * fmix32(h_i) + b_p mod 2**32)`` with datasketch's permutations for the
  seed, so they equal ``datasketch.MinHash(num_perm, seed, hashfunc=ShingleHash(...))`` (tested).
* one (num_perm x shingles) matrix per document; ``np.minimum.reduceat`` gives the signature of
  every paragraph and of the whole document at once.
* exact keys: a 64-bit polynomial hash of the unit's token hashes (equal token sequences, i.e.
  equal normalized text, give equal keys). Units shorter than ``digits_min_words`` are keyed with
  their digits as written: "Termin: 29.02.2020, 19 Uhr" and "Termin: 06.03.2020, 19 Uhr" differ.

Short units (fewer than ``short_words`` words as written) that an earlier document has are removed
only inside a copied run (consecutive units repeating the same earlier document, ``short_run_words``
words in all) or once common (``short_common_documents`` documents hold them: a count per such key,
saved with the index): a generic line one other document happens to share is content there.

Candidates come from LSH band buckets and are verified (exact shingle-set Jaccard by default)
before anything is removed. The index side runs one compiled pass per document
(``dedup_kernels.dedup_units``): exact-key look-ups, LSH candidates, verification and inserts, in
hash tables of numpy arrays; Python only records the removals.
"""

from __future__ import annotations

import hashlib
import io
import json
import marshal
import unicodedata
import weakref
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from importlib.metadata import version
from itertools import compress
from operator import attrgetter
from typing import IO, Any, Literal

import numpy as np
import orjson
import regex
from pydantic import Field, model_validator

from pipeline.document import Document, Removal
from pipeline.offsets import note_cuts
from pipeline.stages import dedup_kernels as kernels
from pipeline.stages.aot_kernels import numba  # (numba's njit, or the compiled kernels')
from pipeline.stages.base import CACHE_DIR, Stage, StageOptions, cached_build, read_table, table_bytes

# Saved with any index: signatures and keys are only comparable under the same scheme.
HASH_SCHEME = {
    # datasketch itself is not imported: it imports scipy.integrate (~0.5 s of every start-up) for
    # what MinHasher and lsh_params below compute themselves (equal results: tests).
    "datasketch": version("datasketch"),
    "scheme": "affine32",
    "token_hash": "xxh3_64(utf-8 normalized word) | fmix64(code point) for char shingles",
    # a saved index of an earlier version keyed a run of Chinese or Japanese characters as one word
    "words": "between whitespace (and punctuation when stripped); each Han, Hiragana or Katakana character a word",
    "shingle_hash": "(sum_k token_hash[k] * C_k mod 2**64) >> 32, C_k = ShingleHash.multipliers(n)",
    "exact_key": "fmix64(sum_i token_hash[i] * B**i + len * K mod 2**64), digits as written below digits_min_words"
    " words without digits",
}

# Documents per saved state row: a large input file's index entries are saved in several rows, so
# committing it never holds a second copy of all of them (building and storing a row copies it about
# three times: with 10,000 documents a row added ~350 MB to the peak of a 300 MB run).
STATE_CHUNK_DOCUMENTS = 2_000

_PUNCT_SYMBOLS = regex.compile(r"[\p{P}\p{S}\p{Cc}]+")
_DIGITS = regex.compile(r"\d")
# Chinese, Japanese, Thai, Lao, Khmer and Myanmar are written without spaces between words: each of their
# characters is a word of its own (as whitespace-separated words are). Toward written words a run of Han or
# kana counts half its characters (a Chinese word is 1-2 characters: "北京时间昨天晚上" is eight words and four
# written words), a run of the others a quarter (their words are spelt in 3-5 letters and marks).
# (Their digits are digits: "๒๕๖๖" is one word, as "2023" is.)
_SOLO = regex.compile(r"(?V1)[[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]--\d]")
_SOLO_HALF = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
_SENTENCE_END = tuple('.!?:;"”’»)。！？')
_M64 = (1 << 64) - 1
_POLY_BASE = 0x9E3779B97F4A7C15  # odd: invertible mod 2**64
_POLY_LEN = 0xC2B2AE3D27D4EB4F
_RULES = {kernels.RULE_EXACT: "exact-paragraph", kernels.RULE_NEAR: "near-duplicate-paragraph"}
_CHUNK = 2048  # shingles per matrix block (num_perm x 2048 uint32 = 1 MB: stays in cache)


class DedupOptions(StageOptions):
    scope: Literal["corpus", "document"] = Field(
        "corpus", description="Find repeats across the whole run ('corpus') or only inside each document."
    )
    unit: Literal["auto", "paragraph", "line"] = Field(
        "auto",
        description="Unit of dedup: blank-line paragraphs, lines, or 'auto' (lines, except blocks of "
        "hard-wrapped lines that form one paragraph).",
    )
    min_words: int = Field(
        3,
        ge=1,
        description="Units with fewer words are never removed: one- and two-word lines ('Yes.', 'Thanks!', "
        "headings, list items) recur in unrelated documents as real content, and removing them saves "
        "little; from this size on units are deduplicated exactly. Words as written: separated by whitespace or "
        "a comma or clause mark, with a letter or digit in them ('10:32 BST' is two). Units matched as "
        "near-duplicates (minhash_min_words) are never this short: a long URL or formula is one or two words.",
    )
    short_words: int = Field(
        6,
        ge=1,
        description="Units with fewer words (as min_words counts them) are short, unless long enough to be matched "
        "as near-duplicates (minhash_min_words: a formula, a URL, a sentence written without spaces). A short unit "
        "an earlier document has is removed only as part of a copied run (short_run_words) or when it is common "
        "(short_common_documents), so that a generic line one other document happens to share ('200 g Zucker' in a "
        "second recipe, 'RUN pip install -r requirements.txt' in a second Dockerfile) is kept; repeats inside one "
        "document are removed at any length. 1: short units are removed as any other.",
    )
    short_common_documents: int = Field(
        5,
        ge=2,
        description="A short unit is common, and removed wherever it stands, from the this-many-th document holding "
        "it on (in input order; rejected documents do not count): boilerplate-like lines ('Skip to content', 'Zum "
        "Inhalt springen') recur in many documents, a generic line of content in a few. (The boilerplate stage, "
        "before dedup, removes lines found in recurring_min_documents documents of the whole input.)",
    )
    short_run_words: int = Field(
        10,
        ge=1,
        description="A run is a stretch of consecutive units (of at least min_words words) all repeating the "
        "same earlier document; with at least this many words in all it is a copied block, and its short "
        "units are removed with it.",
    )
    minhash_min_words: int = Field(
        10,
        ge=1,
        description="Units with at least this many words without digits (and at least ngram tokens) are "
        "also matched as near-duplicates; shorter ones only exactly.",
    )
    lowercase: bool = Field(True, description="Ignore case when comparing units (str.casefold).")
    strip_punctuation: bool = Field(
        True, description="Ignore punctuation, symbols and control characters when comparing units."
    )
    normalize_digits: bool = Field(
        True, description="Treat all digits as equal (0) when comparing units (of at least digits_min_words words)."
    )
    digits_min_words: int = Field(
        10,
        ge=1,
        description="Units with fewer words without digits keep their digits when compared exactly: in a "
        "short line (a date, price, score, table row) the numbers are the content, so lines that differ only "
        "in them are all kept.",
    )
    shingle: Literal["word", "char"] = Field("word", description="MinHash shingles: word or character n-grams.")
    ngram: int = Field(5, ge=1, le=64, description="Shingle size (words or characters).")
    num_perm: int = Field(128, ge=16, le=1024, description="Number of MinHash permutations.")
    threshold: float = Field(
        0.75, gt=0, le=1, description="Remove a unit whose Jaccard similarity to a kept one is at least this."
    )
    bands: int | None = Field(
        None,
        ge=1,
        description="LSH bands (null: num_perm // rows when rows is set, else derived with rows for a "
        "similarity 0.15 below the threshold).",
    )
    rows: int | None = Field(
        None,
        ge=1,
        description="LSH rows per band (null: num_perm // bands when bands is set, else derived with bands).",
    )
    verify: Literal["exact", "estimate"] = Field(
        "exact",
        description="Check LSH candidates by the exact Jaccard of their shingle sets (kept units store "
        "their 32-bit shingle hashes: fewer bytes than a signature for a typical paragraph) or by the "
        "signatures' estimate (std ~0.04 at 128 permutations). Documents are always estimated.",
    )
    seed: int = Field(1, description="MinHash permutation seed (datasketch's default is 1).")
    documents: bool = Field(
        True, description="Also reject whole documents that duplicate an earlier one (exactly or near)."
    )
    document_threshold: float = Field(
        0.8, gt=0, le=1, description="Estimated Jaccard similarity at which a document counts as a near-duplicate."
    )
    max_duplicate_fraction: float = Field(
        0.8, gt=0, le=1, description="Reject a document when at least this share of its text is duplicate."
    )

    @model_validator(mode="after")
    def _bands_fit(self) -> DedupOptions:
        for name in ("bands", "rows"):
            value = getattr(self, name)
            if value is not None and value > self.num_perm:
                raise ValueError(f"{name} ({value}) exceeds num_perm ({self.num_perm})")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        return self


# ---------------------------------------------------------------- hashing primitives


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer, as datasketch applies it before the affine permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))  # a new array: the steps below work in place
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    return h ^ (h >> 33)


def _word_hash(word: str) -> int:
    """A normalized word's 64-bit hash: fmix64(sum_j ord(word[j]) * B**j + len * K mod 2**64);
    ``DedupStage._tokens`` computes the same for every word of a document with numpy."""
    acc, power = 0, 1
    for ch in word:
        acc = (acc + ord(ch) * power) & _M64
        power = (power * _POLY_BASE) & _M64
    return _fmix64_int((acc + len(word) * _POLY_LEN) & _M64)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


# No code point from here on changes under str.casefold (tested): the fold table stops here.
_FOLD_LIMIT = 0x20000


@lru_cache(maxsize=1)
def _fold_tables() -> tuple[np.ndarray, np.ndarray]:
    """``casefold_points``'s tables: per code point below _FOLD_LIMIT what it folds to, and the rows of
    the folds to several code points."""
    points, folds, several_points, several = _fold_changes()
    table = np.arange(_FOLD_LIMIT, dtype=np.uint32)
    table[points] = folds
    table[several_points] = kernels.FOLD_SEVERAL | np.arange(several_points.size, dtype=np.uint32)
    return table, several


def _fold_changes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The code points below _FOLD_LIMIT that str.casefold changes: those folding to one code point and
    what to, those folding to several and those as rows of three (0 pads). Read from the copy an earlier
    process saved beside the package (scanning takes ~20 ms), named by Python's Unicode version."""
    path = _CLASS_CACHE_DIR / f"dedup_casefold-{unicodedata.unidata_version}.npz"
    return cached_build(path, _read_arrays, _scan_fold_changes, _arrays_bytes)


def _scan_fold_changes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    every = np.arange(_FOLD_LIMIT, dtype=np.uint32)
    apart = "\U0010ffff"  # (not below _FOLD_LIMIT, folds to itself): each code point's casefold in one call
    folds = apart.join(every.tobytes().decode("utf-32-le", "surrogatepass")).casefold().split(apart)
    lengths = np.fromiter(map(len, folds), dtype=np.int64, count=len(folds))
    single = _codepoints("".join(compress(folds, lengths == 1)))
    changed = np.zeros(_FOLD_LIMIT, dtype=bool)
    changed[lengths == 1] = single != every[lengths == 1]
    points = np.flatnonzero(changed).astype(np.uint32)
    several_points = np.flatnonzero(lengths != 1).astype(np.uint32)
    several = np.zeros((several_points.size, 3), dtype=np.uint32)
    for row, at in enumerate(several_points.tolist()):
        several[row, : len(folds[at])] = _codepoints(folds[at])
    return points, single[changed[lengths == 1]], several_points, several


def _read_arrays(data: bytes) -> tuple[np.ndarray, ...]:
    """The arrays ``_arrays_bytes`` saved, in their order (a table saved beside the package)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as saved:
        return tuple(saved[f"a{i}"] for i in range(len(saved.files)))


def _arrays_bytes(arrays: tuple[np.ndarray, ...]) -> bytes:
    data = io.BytesIO()
    np.savez(data, **{f"a{i}": a for i, a in enumerate(arrays)})
    return data.getvalue()


def _casefold_codepoints(cp: np.ndarray) -> np.ndarray:
    """``_codepoints(text.casefold())`` from ``_codepoints(text)``."""
    return kernels.casefold_points(cp, *_fold_tables())


def _every_code_point() -> str:
    """Every code point but the surrogates, as one string (from an array: joining 1.1M chr() took 0.14 s)."""
    points = np.arange(0x110000, dtype=np.uint32)
    return np.concatenate((points[:0xD800], points[0xE000:])).tobytes().decode("utf-32-le")


@lru_cache(maxsize=4)
def _char_tables(strip_punctuation: bool, normalize_digits: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per code point: does it separate words (whitespace as str.split sees it, and punctuation,
    symbols and control characters when stripped), and what it maps to (digits -> '0')."""
    punct, digits, _, _ = _class_points()
    is_sep = np.zeros(0x110000, dtype=bool)
    is_sep[[c for c in range(0x3100) if chr(c).isspace()]] = True
    if strip_punctuation:
        is_sep[punct] = True
    mapping = None
    if normalize_digits:
        mapping = np.arange(0x110000, dtype=np.uint32)
        mapping[digits] = ord("0")
    return is_sep, mapping


_CLASS_CACHE_DIR = CACHE_DIR  # (a name of its own: tests point it elsewhere)


def _class_points() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The code points _PUNCT_SYMBOLS, _DIGITS, _SOLO and _SOLO_HALF match, read from the copy an earlier process saved
    beside the package (``__pycache__``): the regex scans over every code point take ~0.1 s of a fresh process.
    The file name holds a hash of what they depend on (the patterns, ``regex``'s version: its Unicode
    tables); an unreadable copy is rebuilt."""
    patterns = [_PUNCT_SYMBOLS.pattern, _DIGITS.pattern, _SOLO.pattern, _SOLO_HALF.pattern, regex.__version__]
    key = json.dumps(patterns)
    path = _CLASS_CACHE_DIR / f"dedup_classes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    return cached_build(path, _read_arrays, _scan_class_points, _arrays_bytes)


def _scan_class_points() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    every = _every_code_point()
    return (
        _codepoints("".join(_PUNCT_SYMBOLS.findall(every))),
        _codepoints("".join(_DIGITS.findall(every))),
        _codepoints("".join(_SOLO.findall(every))),
        _codepoints("".join(_SOLO_HALF.findall(every))),
    )


@lru_cache(maxsize=1)
def _solo_table() -> np.ndarray:
    """Per code point: 0, or it is a word by itself (``_SOLO``) and a run of such characters counts one
    written word in this many (2 for Han and kana, 4 for Thai, Lao, Khmer and Myanmar)."""
    _, _, solo, half = _class_points()
    table = np.zeros(0x110000, dtype=np.uint8)
    table[solo] = 4
    table[half] = 2
    return table


# Punctuation that separates written words even without a space after it: commas and clause marks,
# and their CJK and full-width forms (Chinese and Japanese are written without spaces). Colons,
# periods, apostrophes, hyphens and slashes join ("10:32", "3.7", "don't", "e-mail", "km/h").
_CLAUSE_MARKS = ",;!?\u3001\u3002\uff0c\uff1b\uff01\uff1f\uff1a"


@lru_cache(maxsize=1)
def _written_breaks() -> np.ndarray:
    """Per code point below U+10000: does it end a written word (whitespace or a clause mark)."""
    breaks = np.zeros(0x10000, dtype=bool)
    breaks[:0x3100] = _space_table()
    breaks[[ord(c) for c in _CLAUSE_MARKS]] = True
    return breaks


@lru_cache(maxsize=1)
def _space_table() -> np.ndarray:
    """Per code point below U+3100 (the last whitespace is U+3000): is it whitespace (str.isspace)."""
    return np.array([chr(c).isspace() for c in range(0x3100)], dtype=bool)


def _char_hashes(codepoints: np.ndarray) -> np.ndarray:
    return _fmix64(codepoints.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))


# ---------------------------------------------------------------- compiled kernels (numba)
# The same arithmetic as the numpy definitions above, in one pass over the data: the matrix and
# polynomial steps were bound by memory traffic and numpy's per-call cost on small documents.
# Compiled once per machine (cache=True keeps the machine code beside this file).

_U32_MAX = np.uint32(0xFFFFFFFF)
_NO_MAPPING = np.zeros(1, dtype=np.uint32)
_NO_TOKENS = np.empty(0, dtype=np.uint64)
_NO_OFFSETS = np.empty(0, dtype=np.int64)
_NO_FOLD = np.empty(0, dtype=np.uint32)  # (_nb_words: no case folding)
_NO_SEVERAL = np.zeros((0, 3), dtype=np.uint32)
_NB_POLY_BASE = np.uint64(_POLY_BASE)
_NB_POLY_LEN = np.uint64(_POLY_LEN)
_NB_FIRST_SOLO = np.uint32(0x0E00)  # no _SOLO character comes before Thai (tested)
# Below ß no code point folds to several or to a _SOLO character (tested): _nb_words counts nothing there.
_NB_FIRST_CHANGING = np.uint32(0xDF)


@numba.njit(cache=True, nogil=True)
def _nb_fmix32(h: np.uint32) -> np.uint32:
    h ^= h >> np.uint32(16)
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h ^= h >> np.uint32(13)
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return h ^ (h >> np.uint32(16))


_nb_fmix64 = kernels.fmix64  # MurmurHash3 fmix64, compiled (one definition for both modules)


@numba.njit(cache=True, nogil=True)
def _nb_fold_min(mixed: np.ndarray, a: np.ndarray, b: np.ndarray, start: int, end: int, out: np.ndarray) -> None:
    # out[p] = min(out[p], min_i (a[p] * mixed[i] + b[p] mod 2**32)): the permutation loop is
    # innermost so that it compiles to SIMD lanes (no branch, 32-bit wrap-around). Four hashes a pass
    # over the permutations: a quarter of the loads and stores of ``out`` (0.042 -> 0.022 s on the 40 MB
    # input's 3.7M shingles; a minimum in any order is the same).
    i = start
    while i + 4 <= end:
        m0, m1, m2, m3 = mixed[i], mixed[i + 1], mixed[i + 2], mixed[i + 3]
        for p in range(a.size):
            ap, bp = a[p], b[p]
            x = min(np.uint32(ap * m0 + bp), np.uint32(ap * m1 + bp))
            y = min(np.uint32(ap * m2 + bp), np.uint32(ap * m3 + bp))
            out[p] = min(out[p], min(x, y))
        i += 4
    for j in range(i, end):
        m = mixed[j]
        for p in range(a.size):
            out[p] = min(out[p], np.uint32(a[p] * m + b[p]))


@numba.njit(cache=True, nogil=True)
def _nb_minhash(
    hashes: np.ndarray, a: np.ndarray, b: np.ndarray, starts: np.ndarray, ends: np.ndarray, whole: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of the disjoint, increasing ranges [starts[u], ends[u]) of ``hashes`` and, if
    ``whole``, of all of them (each hash permuted once: the document takes its units' minima)."""
    mixed = np.empty(hashes.size, np.uint32)
    for i in range(hashes.size):
        mixed[i] = _nb_fmix32(hashes[i])
    sigs = np.full((starts.size, a.size), _U32_MAX, np.uint32)
    doc = np.full(a.size, _U32_MAX, np.uint32)
    done = 0
    for u in range(starts.size):
        _nb_fold_min(mixed, a, b, starts[u], ends[u], sigs[u])
        if whole:
            _nb_fold_min(mixed, a, b, done, starts[u], doc)
            for p in range(a.size):
                doc[p] = min(doc[p], sigs[u, p])
            done = ends[u]
    if whole:
        _nb_fold_min(mixed, a, b, done, hashes.size, doc)
    return sigs, doc


@numba.njit(cache=True, nogil=True)
def _nb_signatures(
    tokens: np.ndarray,
    mult: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    sh_start: np.ndarray,
    sh_end: np.ndarray,
    documents: bool,
    exact_sets: bool,
    unit_lsh: tuple,
    doc_lsh: tuple,
) -> tuple:
    """A document's shingle hashes (``ShingleHash.vectorized``) and from them: whether it has a signature of
    its own (``documents`` and shingles), the signatures of the shingle ranges [sh_start, sh_end) and of the
    document (``MinHasher.ranges_min``), with ``exact_sets`` the ranges' sorted sets (``unit_sets``; else an
    empty array and zero bounds), and the band keys of the ranges and the document (``NearIndex.band_key_array``;
    ``*_lsh``: bands, rows, row multipliers, salts). One call a document instead of five and the Python
    between them."""
    shingles = kernels.shingle_hashes(tokens, mult)
    whole = documents and shingles.size > 0
    sigs, doc_sig = _nb_minhash(shingles, a, b, sh_start, sh_end, whole)
    if exact_sets and sh_start.size:
        values, cuts = kernels.unit_sets(shingles, sh_start, sh_end)
    else:
        values, cuts = np.empty(0, np.uint32), np.zeros(sh_start.size + 1, np.int64)
    band = kernels.band_keys(sigs, unit_lsh[0], unit_lsh[1], unit_lsh[2], unit_lsh[3])
    doc_band = kernels.band_keys(doc_sig.reshape(1, doc_sig.size), doc_lsh[0], doc_lsh[1], doc_lsh[2], doc_lsh[3])[0]
    return whole, sigs, doc_sig, values, cuts, band, doc_band


@numba.njit(cache=True, nogil=True)
def _nb_word_sketch(
    points: np.ndarray, unit_args: tuple, word_args: tuple, limits: np.ndarray, sig_args: tuple
) -> tuple:
    """``DedupStage._sketch``'s arrays with word shingles, from the text's code points: its units and line
    starts (``line_unit_ranges``), words (``_nb_words``), unit plan (``unit_plan``) and signatures
    (``_nb_signatures``). One call a document: the four calls, the arrays between them and their Python made
    prepare_document's cost a (two-line) document 17.5 us, now 14 us. ``unit_args``: is_space, sentence marks,
    per_line, auto; ``word_args``: is_sep, mapping, mapped, breaks, solo, fold, several, lut; ``sig_args``: mult,
    a, b, documents, exact_sets, unit_lsh, doc_lsh."""
    is_space, marks, per_line, auto = unit_args
    is_sep, mapping, mapped, breaks, solo, fold, several, lut = word_args
    mult, a, b, documents, exact_sets, unit_lsh, doc_lsh = sig_args
    u_start, u_end, line_chars = kernels.line_unit_ranges(points, is_space, marks, per_line, auto)
    _, _, tokens, line_words, raw, written = _nb_words(
        points, is_sep, mapping, mapped, breaks, solo, True, fold, several, lut
    )
    n_words, keys, whole_key, near, sh_start, sh_end, cands = kernels.unit_plan(
        tokens,
        raw,
        line_words,
        written,
        np.empty(0, np.int64),
        u_start,
        u_end,
        line_chars,
        limits,
        _NB_POLY_BASE,
        _NB_POLY_LEN,
    )
    whole, sigs, doc_sig, values, cuts, band, doc_band = _nb_signatures(
        tokens, mult, a, b, sh_start, sh_end, documents and line_words[-1] >= limits[1], exact_sets, unit_lsh, doc_lsh
    )
    return (
        u_start,
        u_end,
        line_chars,
        n_words,
        keys,
        whole_key,
        near,
        cands,
        whole,
        sigs,
        doc_sig,
        values,
        cuts,
        band,
        doc_band,
    )


@numba.njit(cache=True, nogil=True)
def _nb_words(
    cp: np.ndarray,
    is_sep: np.ndarray,
    mapping: np.ndarray,
    mapped: bool,
    breaks: np.ndarray,
    solo: np.ndarray,
    split_solo: bool,
    fold: np.ndarray,
    several: np.ndarray,
    lut: np.ndarray,
) -> tuple:
    """Words of a code point array: start, end, polynomial hash (``_word_hash`` of the mapped code
    points) of each, the word offset of each line (len = newlines + 2), if ``mapped`` the same hash
    of each word's code points as written (else an empty array), and the count of written words
    before each line (as ``line_words``): the pieces between whitespace or clause punctuation that
    hold at least one word ("10:32 BST" is two written words, three words; "—" none), a run of
    ``solo`` characters counting one in ``solo[c]`` (``_solo_table``), rounded up. ``breaks``: whether a
    code point below its size ends a written word (``_written_breaks``). With ``split_solo`` each ``solo``
    character is a word of its own. A non-empty ``fold`` (``_fold_tables``, with ``several``) casefolds
    the code points first (``casefold_points``): starts and ends are positions in the folded text. A text
    with no code point that folds to several is folded as it is read, not copied: 0.144 -> 0.125 s over the
    40 MB input's texts, where 1,434 of 4,312 documents (44 % of the characters) have one, nearly always ß.
    (Folding those as they are read too, holding back the rest of a fold for the next steps, was no faster.)
    ``lut``: ``_nb_word_lut`` of these tables (the code points below its size in one load each), or ``_NO_LUT``."""
    solos, changes_size = _nb_count_solo(cp, solo, split_solo, fold)
    if changes_size:
        folded = kernels.casefold_points(cp, fold, several)
        solos = _nb_count_solo(folded, solo, split_solo, _NO_FOLD)[0]
        # (``lut`` folds the code points below its size again: a fold of one is itself there, tested)
        return _nb_word_loop(folded, is_sep, mapping, mapped, breaks, solo, split_solo, _NO_FOLD, solos, lut)
    return _nb_word_loop(cp, is_sep, mapping, mapped, breaks, solo, split_solo, fold, solos, lut)


@numba.njit(cache=True, nogil=True)
def _nb_count_solo(cp: np.ndarray, solo: np.ndarray, split_solo: bool, fold: np.ndarray) -> tuple:
    """The ``solo`` characters of the (folded by ``fold``, if not empty) code points when ``split_solo``
    (else 0), and whether a code point folds to several."""
    solos = 0
    if not split_solo and fold.size == 0:
        return solos, False
    for i in range(cp.size):
        c = cp[i]
        if c < _NB_FIRST_CHANGING:  # (most text: nothing to count)
            continue
        if c < fold.size:
            f = fold[c]
            if f & kernels.FOLD_SEVERAL:
                return solos, True
            c = f
        if split_solo and c >= _NB_FIRST_SOLO and solo[c] != 0:
            solos += 1
    return solos, False


# A code point's entry in ``_nb_word_lut``: what it maps to (folded, then digits mapped; bits 0-20), what it
# folds to (bits 21-41) and its flags.
_LUT_BITS = np.uint64(21)
_LUT_VALUE = np.uint64((1 << 21) - 1)
_LUT_SEP = np.uint64(1 << 42)  # separates words (``is_sep``)
_LUT_BREAK = np.uint64(1 << 43)  # ends a written word (``breaks``)
_LUT_SLOW = np.uint64(1 << 44)  # folds to several or is solo: looked up in the tables themselves
_LUT_SIZE = 0x3100  # (Latin to Cyrillic, Arabic, Indic, general punctuation, CJK marks)
_NO_LUT = np.empty(0, dtype=np.uint64)


@numba.njit(cache=True, nogil=True)
def _nb_word_lut(
    is_sep: np.ndarray, mapping: np.ndarray, mapped: bool, breaks: np.ndarray, solo: np.ndarray, fold: np.ndarray
) -> np.ndarray:
    """``_nb_word_loop``'s table of the code points below _LUT_SIZE for these tables (``_nb_words``' arguments):
    one load a code point instead of three or four dependent ones (fold, separator, break, mapping): the loop
    over the 40 MB input's texts 0.075-0.085 -> 0.070-0.073 s. Made once a stage, not a document."""
    out = np.empty(_LUT_SIZE, np.uint64)
    for c in range(_LUT_SIZE):
        f = np.uint32(c)
        slow = False
        if c < fold.size:
            if fold[c] & kernels.FOLD_SEVERAL:
                slow = True
            else:
                f = fold[c]
        slow = slow or solo[f] != 0
        m = mapping[f] if mapped else f
        e = np.uint64(m) | (np.uint64(f) << _LUT_BITS)
        if is_sep[f]:
            e |= _LUT_SEP
        if f < breaks.size and breaks[f]:
            e |= _LUT_BREAK
        if slow:
            e |= _LUT_SLOW
        out[c] = e
    return out


@numba.njit(cache=True, nogil=True)
def _nb_word_loop(
    cp: np.ndarray,
    is_sep: np.ndarray,
    mapping: np.ndarray,
    mapped: bool,
    breaks: np.ndarray,
    solo: np.ndarray,
    split_solo: bool,
    fold: np.ndarray,
    solos: int,
    lut: np.ndarray,
) -> tuple:
    """``_nb_words`` given the count of ``solo`` characters, folding each code point by ``fold`` (one to
    one) if it is not empty; a code point below ``lut.size`` whose entry is not slow read from ``lut``."""
    n = cp.size
    folding = fold.size > 0
    # Other words: each takes a character, and two of them are apart by a separator or a solo character,
    # so there are at most (n + 1) // 2; a solo character is a word by itself. (Arrays grown inside the
    # loop below made it several times slower.)
    cap = (n + 1) // 2 + solos + 1
    w_start = np.empty(cap, np.int64)
    w_end = np.empty(cap, np.int64)
    hashes = np.empty(cap, np.uint64)
    raw = np.empty(cap if mapped else 0, np.uint64)
    acc_raw = np.uint64(0)
    line_words = np.empty(n + 2, np.int64)
    line_words[0] = 0
    line_written = np.empty(n + 2, np.int64)
    line_written[0] = 0
    written = 0
    counted = False  # the current whitespace-separated token has been counted as a written word
    run = 0  # solo characters in a row
    words = 0
    lines = 1
    inside = False
    acc = np.uint64(0)
    power = np.uint64(1)
    start = 0
    for i in range(n + 1):
        c = cp[i] if i < n else np.uint32(32)
        e = lut[c] if c < lut.size else _LUT_SLOW
        if not e & _LUT_SLOW:  # (most code points) folded, mapped, separator and break in one load
            c = np.uint32((e >> _LUT_BITS) & _LUT_VALUE)
            m = np.uint32(e & _LUT_VALUE)
            sep = (e & _LUT_SEP) != 0
            brk = (e & _LUT_BREAK) != 0
            single = False
        else:
            if folding and c < fold.size:
                c = fold[c]
            m = mapping[c] if mapped else c
            sep = is_sep[c]
            brk = c < breaks.size and breaks[c]
            single = c >= _NB_FIRST_SOLO and not sep and solo[c] != 0
        if sep or (single and split_solo):
            if inside:
                w_start[words] = start
                w_end[words] = i
                hashes[words] = _nb_fmix64(acc + np.uint64(i - start) * _NB_POLY_LEN)
                if mapped:
                    raw[words] = _nb_fmix64(acc_raw + np.uint64(i - start) * _NB_POLY_LEN)
                words += 1
                inside = False
            if not single:
                run = 0
                if counted and brk:
                    counted = False
                if c == 10 and i < n:
                    line_words[lines] = words
                    line_written[lines] = written
                    lines += 1
                continue
        if single:
            if run % solo[c] == 0:
                written += 1
            run += 1
            counted = False
        else:
            run = 0
            if not counted:
                written += 1
                counted = True
        if not inside:
            inside = True
            start = i
            acc = np.uint64(0)
            acc_raw = np.uint64(0)
            power = np.uint64(1)
        if mapped:
            acc_raw += np.uint64(c) * power
        acc += np.uint64(m) * power
        power *= _NB_POLY_BASE
        if single and split_solo:
            inside = False
            w_start[words] = i
            w_end[words] = i + 1
            hashes[words] = _nb_fmix64(acc + _NB_POLY_LEN)
            if mapped:
                raw[words] = _nb_fmix64(acc_raw + _NB_POLY_LEN)
            words += 1
    line_words[lines] = words
    line_written[lines] = written
    return (
        w_start[:words],
        w_end[:words],
        hashes[:words],
        line_words[: lines + 1],
        raw[: words if mapped else 0],
        line_written[: lines + 1],
    )


class ShingleHash:
    """The hash function of a shingle (its normalized words joined by spaces, or its characters).

    Picklable and usable as datasketch's ``hashfunc``: ``MinHash(hashfunc=ShingleHash("word", 5))``
    over shingle strings gives the signatures this stage computes with numpy.
    """

    def __init__(self, shingle: str, ngram: int) -> None:
        self.shingle = shingle
        self.ngram = ngram
        self.mult = self.multipliers(ngram)
        self._mult = np.array(self.mult, dtype=np.uint64)

    @staticmethod
    def multipliers(n: int) -> list[int]:
        """n odd 64-bit constants (splitmix64 sequence): the weight of each position in a shingle."""
        out, state = [], 0
        for _ in range(n):
            state = (state + 0x9E3779B97F4A7C15) & _M64
            out.append(_fmix64_int(state) | 1)
        return out

    def token_hashes(self, shingle: str | bytes) -> list[int]:
        if isinstance(shingle, bytes):
            shingle = shingle.decode("utf-8")
        if self.shingle == "char":
            return [int(h) for h in _char_hashes(np.array([ord(c) for c in shingle], dtype=np.uint64))]
        return [_word_hash(w) for w in shingle.split(" ")]

    def __call__(self, shingle: str | bytes) -> int:
        total = sum(h * m for h, m in zip(self.token_hashes(shingle), self.mult, strict=False)) & _M64
        return total >> 32

    def vectorized(self, tokens: np.ndarray) -> np.ndarray:
        """uint32 hashes of every n-gram of a uint64 token-hash stream (len(tokens) - n + 1 of them)."""
        return kernels.shingle_hashes(tokens, self._mult)


class MinHasher:
    """Vectorized datasketch ``affine32`` MinHash over 32-bit shingle hashes."""

    def __init__(self, num_perm: int, seed: int) -> None:
        self.num_perm = num_perm
        self.seed = seed
        drawn = _saved_draws("affine32", affine32_permutations, num_perm, seed)
        a, b = drawn[:num_perm], drawn[num_perm:]
        self.a = a[:, None]
        self.b = b[:, None]
        self.a_flat = np.ascontiguousarray(self.a[:, 0])
        self.b_flat = np.ascontiguousarray(self.b[:, 0])
        self._buf = np.empty((num_perm, _CHUNK), dtype=np.uint32)

    def ranges_min(
        self, hashes: np.ndarray, starts: np.ndarray, ends: np.ndarray, whole: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Signatures of the disjoint increasing ranges ``hashes[starts[i]:ends[i]]`` and, if
        ``whole``, of all the hashes (compiled kernel)."""
        sigs, doc = _nb_minhash(
            hashes.astype(np.uint32, copy=False),
            self.a_flat,
            self.b_flat,
            starts.astype(np.int64, copy=False),
            ends.astype(np.int64, copy=False),
            whole,
        )
        return sigs, doc if whole else None

    def segment_min(self, hashes: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Signatures of the segments ``hashes[bounds[i]:bounds[i+1]]`` (bounds sorted, unique,
        starting at 0, the last segment running to the end): a (len(bounds), num_perm) array."""
        bounds = np.asarray(bounds, dtype=np.int64)
        return self.ranges_min(hashes, bounds, np.append(bounds[1:], hashes.size), False)[0]

    def segment_min_numpy(self, hashes: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """``segment_min`` with numpy only (the reference the kernel is tested against)."""
        mixed = _fmix32(hashes)
        size = mixed.size
        parts: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        for c0 in range(0, size, _CHUNK):
            c1 = min(size, c0 + _CHUNK)
            inner = bounds[np.searchsorted(bounds, c0, "right") : np.searchsorted(bounds, c1, "left")]
            local = np.concatenate(([c0], inner)) - c0
            block = self._buf[:, : c1 - c0]
            np.multiply(self.a, mixed[c0:c1], out=block)
            np.add(block, self.b, out=block)
            parts.append(np.minimum.reduceat(block, local, axis=1))
            starts.append(local + c0)
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0].T)
        # Segments cut by block edges: combine their pieces.
        all_starts = np.concatenate(starts)
        seg = np.searchsorted(bounds, all_starts, "right") - 1
        first = np.flatnonzero(np.diff(seg, prepend=-1))
        return np.ascontiguousarray(np.minimum.reduceat(np.concatenate(parts, axis=1), first, axis=1).T)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        if hashes.size == 0:
            return np.full(self.num_perm, np.uint32(0xFFFFFFFF), dtype=np.uint32)
        return self.segment_min(hashes, np.zeros(1, dtype=np.int64))[0]


def affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``datasketch.MinHash(num_perm, seed, scheme="affine32").permutations``: odd multipliers and
    offsets, drawn as datasketch draws them."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def band_hashing(rows: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """`NearIndex`'s odd multiplier per row of a band and salt per band (fixed draws: every run keys bands alike)."""
    rng = np.random.default_rng(0x5EED)
    row_mult = rng.integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    band_salt = rng.integers(0, 2**63, size=bands, dtype=np.uint64)
    return row_mult, band_salt


def _saved_draws(name: str, draw: Callable[..., tuple[np.ndarray, np.ndarray]], *args: int) -> np.ndarray:
    """``draw(*args)``'s two arrays one after the other, read from the copy an earlier process saved beside the
    package: a run needs a few hundred fixed numbers from numpy.random, whose import took ~4-7 ms of every start.
    The file name holds a hash of the drawing code, ``args`` and numpy's version (its streams may change between
    versions); a damaged or unreadable copy is drawn again, and what cannot be drawn raises as drawing does."""
    code = marshal.dumps(draw.__code__)
    key = hashlib.sha256(code + repr((args, np.__version__)).encode()).hexdigest()[:16]
    return cached_build(
        _CLASS_CACHE_DIR / f"dedup_{name}-{key}.npy",
        read_table,
        lambda: np.concatenate(draw(*args)),
        table_bytes,
    )


# Two candidate (bands, rows) whose errors differ by less than this are left to datasketch: its
# numerical integration (scipy's quad, to ~1e-8) could order them otherwise.
_LSH_NEAR_TIE = 1e-7


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's ``_optimal_param(threshold, num_perm, 0.5, 0.5)``: the (bands, rows) with
    bands * rows <= num_perm that minimise the mean of the false positive probability (integrated
    over similarities below the threshold) and the false negative one (above it). The integrands
    are polynomials of degree bands * rows <= num_perm, so Gauss-Legendre with num_perm / 2 + 1
    nodes integrates them exactly, for all candidates at once."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], np.float64)
    bands, rows = pairs[:, :1], pairs[:, 1:]
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def integral(lo: float, hi: float, below: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        miss = (1 - s[None, :] ** rows) ** bands  # no band matches at similarity s
        return (hi - lo) / 2 * ((1 - miss) if below else miss) @ weights

    error = 0.5 * integral(0.0, threshold, True) + 0.5 * integral(threshold, 1.0, False)
    best = int(np.argmin(error))  # the first of equal minima, as datasketch's loop (bands, then rows)
    if np.count_nonzero(error < error[best] + _LSH_NEAR_TIE) > 1:
        from datasketch.lsh import _optimal_param

        return _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(pairs[best, 0]), int(pairs[best, 1])


@lru_cache(maxsize=64)
def saved_lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """``lsh_params``, read from the copy an earlier process saved beside the package (``__pycache__``): its
    integration costs ~6 ms a threshold, at every start. The file name holds a hash of its code, arguments and
    datasketch's version (it decides near ties); an unreadable copy is computed again."""
    code = marshal.dumps(lsh_params.__wrapped__.__code__)  # type: ignore[attr-defined]
    what = repr((threshold, num_perm, _LSH_NEAR_TIE, HASH_SCHEME["datasketch"])).encode()
    key = hashlib.sha256(code + what).hexdigest()[:16]
    return cached_build(
        _CLASS_CACHE_DIR / f"dedup_lsh-{key}.json",
        _read_lsh_params,
        lambda: lsh_params(threshold, num_perm),
        lambda pair: orjson.dumps([int(pair[0]), int(pair[1])]),
    )


def _read_lsh_params(data: bytes) -> tuple[int, int] | None:
    bands, rows = orjson.loads(data)
    return (bands, rows) if type(bands) is int and type(rows) is int else None


# ---------------------------------------------------------------- storage


_REMAPPED = 32 << 20  # bytes


class _Grow:
    """A numpy array that grows (index storage without a Python object per entry): in place by a
    quarter, else (something refers to the array) into a copy twice as large."""

    def __init__(self, dtype: Any, width: int = 0) -> None:
        self.width = width
        self.data = np.empty((64, width) if width else 64, dtype=dtype)
        self.size = 0

    def reserve(self, n: int) -> None:
        """Room for ``n`` more rows in ``data`` (for compiled code that writes there directly)."""
        end = self.size + n
        if end <= len(self.data):
            return
        data = self.__dict__.pop("data")  # then the only reference: it may be enlarged in place
        try:
            # realloc remaps a large array's pages, so this copies nothing: a copy held the old and
            # the new array at once (the shingle sets: ~1.1 GB each at 1 GB of input)
            # (by a quarter once realloc remaps; below glibc's largest mmap threshold, 32 MB, it may copy
            # the array each time: doubled there, ~50 copies of the shingle sets fell to ~10 on 40 MB)
            step = len(data) // 4 if data.nbytes >= _REMAPPED else len(data)
            data.resize((max(end, len(data) + step), *data.shape[1:]), refcheck=True)
        except ValueError:
            grown = np.empty((max(end, 2 * len(data)), *data.shape[1:]), dtype=data.dtype)
            grown[: self.size] = data[: self.size]
            data = grown
        self.data = data

    def append(self, values: np.ndarray) -> None:
        n = len(values) if values.ndim > (1 if self.width else 0) else 1
        self.reserve(n)
        self.data[self.size : self.size + n] = values
        self.size += n

    def view(self) -> np.ndarray:
        return self.data[: self.size]

    @property
    def nbytes(self) -> int:
        return self.size * self.data.itemsize * max(1, self.width)


_NO_VALUE = int(kernels.NO_VALUE)


def _check_room(value: int) -> None:
    if value >= _NO_VALUE:  # values are stored as uint32, the largest marks empty slots
        raise OverflowError("dedup index: more than 2**32 - 1 entries")


def _enlarged(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with ``size`` elements (the new ones zero). Given the only reference to it, it is
    enlarged in place: for a large array realloc remaps its pages rather than copying them, so the
    old and the new array never coexist. Else (a view or another reference exists) a copy."""
    try:
        array.resize(size, refcheck=True)  # refuses if anything else refers to the array
    except ValueError:
        return np.concatenate([array, np.zeros(size - array.size, dtype=array.dtype)])
    return array


def _empty_slots(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(size, dtype=np.uint64), np.full(size, kernels.NO_VALUE, dtype=np.uint32)


# A saved row of the index: PAYLOAD_MAGIC, the JSON header's length (4 bytes), the header (with the arrays'
# names, dtypes and shapes), then the arrays' bytes, each 8-byte aligned: loading is a few views, not a
# parse. (np.savez took ~0.5 ms a row to write, a cost per input file, and its zip and CRC checks ~0.1 s
# of loading a 200 MB archive's index.) Rows that earlier versions saved as .npz are still read.
PAYLOAD_MAGIC = b"CCd1"
_NPZ_MAGIC = b"PK"


def pack_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """``header`` (JSON) and ``arrays`` as one payload (``unpack_arrays`` reads it)."""
    layout = [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()]
    head = orjson.dumps({**header, "arrays": layout})
    head += b" " * (-(len(PAYLOAD_MAGIC) + 4 + len(head)) % 8)
    chunks = [PAYLOAD_MAGIC, len(head).to_bytes(4, "little"), head]
    for array in arrays.values():
        raw = np.ascontiguousarray(array).tobytes()
        chunks += (raw, b"\0" * (-len(raw) % 8))
    return b"".join(chunks)


def unpack_arrays(payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays (read-only views of ``payload``) of a ``pack_arrays`` payload, or of an
    .npz row of an earlier version (its header is the array "header")."""
    if payload[:2] == _NPZ_MAGIC:
        with np.load(io.BytesIO(payload), allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
        return json.loads(arrays.pop("header").tobytes().decode("utf-8")), arrays
    fh = io.BytesIO(payload)
    header = _payload_header(fh, fh.read(len(PAYLOAD_MAGIC)))
    at = fh.tell()
    arrays = {}
    for name, dtype, shape in header.pop("arrays"):
        kind = np.dtype(dtype)
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(payload, dtype=kind, count=count, offset=at).reshape(shape)
        at += count * kind.itemsize
        at += -at % 8
    return header, arrays


def array_shapes(payload: bytes | IO[bytes], names: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """The shapes of arrays in a payload (bytes, or a file positioned at its start), from its header alone."""
    fh = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    magic = fh.read(len(PAYLOAD_MAGIC))
    if magic[:2] == _NPZ_MAGIC:  # (an earlier version's row: read whole, as then)
        return _npz_shapes(io.BytesIO(magic + fh.read()), names)
    layout = {name: tuple(shape) for name, _, shape in _payload_header(fh, magic)["arrays"]}
    return {name: layout[name] for name in names}


def _payload_header(fh: IO[bytes], magic: bytes) -> dict[str, Any]:
    """The JSON header of a ``pack_arrays`` payload whose first bytes (``magic``) were read from ``fh``;
    ``fh`` is left at the first array."""
    if magic != PAYLOAD_MAGIC:
        raise ValueError("not a dedup state row (unknown format)")
    return orjson.loads(fh.read(int.from_bytes(fh.read(4), "little")))


def _npz_shapes(fh: IO[bytes], names: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """The shapes of arrays in an .npz payload (rows of earlier versions), read from their headers alone."""
    shapes: dict[str, tuple[int, ...]] = {}
    with zipfile.ZipFile(fh) as archive:
        for name in names:
            with archive.open(f"{name}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shapes[name] = read(fh)[0]
    return shapes


class KeyTable:
    """uint64 key -> uint32 value where the first value set for a key wins (values grow with time).

    A dict of Python ints costs ~100 bytes a key. Here the keys live in one open-addressing hash table
    of numpy arrays (12 bytes a slot, at most 70% full: ~17-34 bytes a key) searched by compiled loops,
    many keys at once. It grows in place and deletes any key (a rolled-back document's); ``tables()``
    hands its two arrays to the compiled dedup pass. (Earlier versions could move keys into a second,
    large table every so many keys: that hashed each key a second time, after the look-up had left its
    cache lines, and every look-up probed both tables.)"""

    MAX_LOAD = 0.7

    def __init__(self) -> None:
        self.slot_keys, self.slot_values = _empty_slots(1 << 10)
        self.count = 0  # keys in the table
        self.limit = self.MAX_LOAD * self.slot_keys.size  # keys it holds before it grows

    def __len__(self) -> int:
        return self.count

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        return self.slot_keys, self.slot_values

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Values for ``keys`` (uint64, any shape), -1 where there is none."""
        flat = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        return kernels.ht_find(self.slot_keys, self.slot_values, flat).reshape(np.shape(keys))

    def get_many(self, keys: np.ndarray) -> list[int | None]:
        return [v if v >= 0 else None for v in self.lookup(keys).tolist()]

    def get(self, key: int) -> int | None:
        return self.get_many(np.array([key], dtype=np.uint64))[0]

    def __contains__(self, key: int) -> bool:
        return self.get(key) is not None

    def reserve(self, n: int) -> None:
        """Room for ``n`` more keys: the table is doubled until they fit. A large table's arrays are
        enlarged in place and rehashed there (a second table beside the first, and copies of its entries,
        made growing the table the peak of a run's memory); a small one's go into new arrays."""
        if self.count + n <= self.limit:  # (the usual case: a call per table and document)
            return
        old = self.slot_keys.size
        size = old
        while self.count + n > self.MAX_LOAD * size:
            size *= 2
        self.limit = self.MAX_LOAD * size
        if size * self.slot_keys.itemsize < _REMAPPED:
            # Below glibc's largest mmap threshold realloc may copy the arrays (it moved them at every
            # growth on 40 MB of input): new arrays filled from the old ones skip that copy and the
            # zeroing (growth 0.025 -> 0.016 s CPU there), for at most 8 MB more held at once (both
            # old arrays beside the new ones, not one at a time).
            keys, values = self.slot_keys, self.slot_values
            self.slot_keys, self.slot_values = _empty_slots(size)
            kernels.ht_rehash_into(keys, values, self.slot_keys, self.slot_values)
            return
        self.slot_keys = _enlarged(self.__dict__.pop("slot_keys"), size)
        self.slot_values = _enlarged(self.__dict__.pop("slot_values"), size)
        self.slot_values[old:] = kernels.NO_VALUE
        kernels.ht_grow_in_place(self.slot_keys, self.slot_values, old)

    def _values(self, keys: np.ndarray, values: np.ndarray | int) -> np.ndarray:
        """``values`` as an int64 array beside ``keys`` (one value for all the keys if it is a number),
        checked to fit."""
        if np.ndim(values) == 0:
            _check_room(int(values))
            return np.full(keys.size, values, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64)
        if keys.size:
            _check_room(int(values.max()))
        return values

    def insert(self, keys: np.ndarray, values: np.ndarray | int) -> np.ndarray:
        """Add the keys that are absent, in order (a repeated key keeps its first value); True where
        a key was added."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        values = self._values(keys, values)
        self.reserve(keys.size)
        added = kernels.ht_insert_mask(self.slot_keys, self.slot_values, keys, values)
        self.count += int(added.sum())
        return added

    def load(self, keys: np.ndarray, values: np.ndarray) -> None:
        """``insert`` without telling which keys were added: for an index loaded from the state."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        values = self._values(keys, values)
        self.reserve(keys.size)
        self.count += kernels.ht_insert(self.slot_keys, self.slot_values, keys, values)

    def insert_value(self, keys: np.ndarray, value: int) -> np.ndarray:
        """``insert`` with one value for all the (uint64) keys; returns the keys added."""
        _check_room(value)
        self.reserve(keys.size)
        added = kernels.ht_insert_value(self.slot_keys, self.slot_values, keys, value)
        self.count += added.size
        return added

    def setdefault(self, key: int, value: int) -> int:
        self.insert(np.array([key], dtype=np.uint64), value)
        return self.get(key)  # type: ignore[return-value]

    def update(self, items: dict[int, int]) -> None:
        """Add keys the caller found absent (a key already present keeps its first value)."""
        self.insert(np.fromiter(items.keys(), np.uint64, len(items)), np.fromiter(items.values(), np.int64, len(items)))

    def increment(self, keys: np.ndarray) -> None:
        """Add one to each key's value (an absent key gets 1): the table counts."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        self.reserve(keys.size)
        self.count += kernels.ht_increment(self.slot_keys, self.slot_values, keys)

    def decrement(self, keys: np.ndarray) -> None:
        """Take one from each key's value (a rolled-back document's counts); a key at 0 is deleted."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        self.delete(kernels.ht_decrement(self.slot_keys, self.slot_values, keys))

    def delete(self, keys: np.ndarray) -> None:
        """Forget keys (a rolled-back document's); each must be present."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        removed = kernels.ht_delete(self.slot_keys, self.slot_values, keys)
        self.count -= removed
        if removed != keys.size:
            raise KeyError("only keys present can be deleted")

    def __delitem__(self, key: int) -> None:
        self.delete(np.array([key], dtype=np.uint64))

    @property
    def nbytes(self) -> int:
        return self.slot_keys.nbytes + self.slot_values.nbytes


class NearIndex:
    """LSH band buckets over signatures; entries keep their owner (a document ordinal) and either
    their signature (estimated verification) or their sorted shingle hashes (exact)."""

    def __init__(self, bands: int, rows: int, num_perm: int, exact: bool) -> None:
        self.bands, self.rows, self.exact = bands, rows, exact
        self.buckets = KeyTable()  # band key -> first entry (undo deletes the keys of a rolled-back entry)
        self.entry_owners = _Grow(np.int64)  # entry -> document ordinal
        self.signatures = _Grow(np.uint32, num_perm) if not exact else None
        self.sets = _Grow(np.uint32) if exact else None  # concatenated sorted shingle hashes
        self.set_ends = _Grow(np.int64)  # entry -> end of its set in ``sets`` (exact only)
        drawn = _saved_draws("bands", band_hashing, rows, bands)
        self._row_mult, self._band_salt = drawn[:rows], drawn[rows:]

    def __len__(self) -> int:
        return self.entry_owners.size

    @property
    def owners(self) -> np.ndarray:
        """Entry -> document ordinal."""
        return self.entry_owners.view()

    def band_keys(self, sigs: np.ndarray) -> list[list[int]]:
        """One 64-bit key per band for each signature row (a key collision only adds a candidate)."""
        return self.band_key_array(sigs).tolist()

    def band_key_array(self, sigs: np.ndarray) -> np.ndarray:
        return kernels.band_keys(np.ascontiguousarray(sigs), self.bands, self.rows, self._row_mult, self._band_salt)

    def _set(self, entry: int) -> np.ndarray:
        assert self.sets is not None
        ends = self.set_ends.data
        return self.sets.data[ends[entry - 1] if entry else 0 : ends[entry]]

    def query(
        self, keys: list[int], sig: np.ndarray, shingles: np.ndarray | None, threshold: float
    ) -> tuple[int, float] | None:
        """The earliest entry at least ``threshold`` similar, with its similarity."""
        if not self.exact or shingles is None:  # the signatures' estimate: one compiled call
            assert self.signatures is not None
            entry, sim = kernels.estimate_query(
                self.buckets.tables(), np.asarray(keys, dtype=np.uint64), self.signatures.data, sig, threshold
            )
            return (int(entry), float(sim)) if entry >= 0 else None
        found = self.buckets.lookup(np.array(keys, dtype=np.uint64))
        cands: list[int] = np.unique(found[found >= 0]).tolist()  # earliest first: deterministic
        if not cands:
            return None
        for entry in cands:
            other = self._set(entry)
            inter = np.intersect1d(shingles, other, assume_unique=True).size
            sim = inter / (shingles.size + other.size - inter)
            if sim >= threshold:
                return entry, sim
        return None

    def reserve(self, entries: int, values: int) -> None:
        """Room for ``entries`` more entries holding ``values`` shingle hashes in all."""
        _check_room(len(self) + entries)
        self.entry_owners.reserve(entries)
        if self.sets is not None:
            self.set_ends.reserve(entries)
            self.sets.reserve(values)
        if self.signatures is not None:
            self.signatures.reserve(entries)

    def add_many(
        self,
        keys: np.ndarray,
        owners: np.ndarray,
        data: np.ndarray,
        set_sizes: np.ndarray | None = None,
        loaded: bool = False,
    ) -> np.ndarray | None:
        """Index entries in order: their band keys (rows of ``keys``), owners and either their
        signatures (rows of ``data``) or their concatenated shingle sets (``data``, ``set_sizes``).
        Returns the bucket keys they created; ``loaded`` (entries loaded from the state, never undone):
        None (``KeyTable.load``)."""
        first = len(self)
        self.reserve(len(keys), 0)
        self.entry_owners.append(np.asarray(owners, dtype=np.int64))
        if self.exact:
            assert self.sets is not None and set_sizes is not None
            self.set_ends.append(self.sets.size + np.cumsum(set_sizes, dtype=np.int64))
            self.sets.append(data)
        else:
            assert self.signatures is not None
            self.signatures.append(data)
        flat = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        if len(keys) == 1 and not loaded:
            return self.buckets.insert_value(flat, first)
        entries = np.repeat(np.arange(first, len(self), dtype=np.int64), keys.shape[1])
        if loaded:
            self.buckets.load(flat, entries)
            return None
        return flat[self.buckets.insert(flat, entries)]

    def add(self, keys: list[int] | np.ndarray, sig: np.ndarray, shingles: np.ndarray | None, owner: int) -> list[int]:
        """Index an entry; returns the bucket keys it created."""
        if self.exact:
            assert shingles is not None
            row = np.array([keys], dtype=np.uint64)
            return self.add_many(row, np.array([owner]), shingles, np.array([shingles.size])).tolist()
        return self.add_signature(np.asarray(keys, dtype=np.uint64), sig, owner).tolist()

    def add_signature(self, keys: np.ndarray, sig: np.ndarray, owner: int) -> np.ndarray:
        """Index an entry by its signature (not ``exact``), written in place; returns the bucket keys (uint64)
        it created. (A call per kept document: its checks inline.)"""
        owners, signatures, buckets = self.entry_owners, self.signatures, self.buckets
        assert signatures is not None
        entry = owners.size
        if entry >= len(owners.data) or entry >= len(signatures.data):
            self.reserve(1, 0)
        owners.data[entry] = owner
        owners.size += 1
        signatures.data[entry] = sig
        signatures.size += 1
        _check_room(entry)
        if buckets.count + keys.size > buckets.limit:
            buckets.reserve(keys.size)
        added = kernels.ht_insert_value(buckets.slot_keys, buckets.slot_values, keys, entry)
        buckets.count += added.size
        return added

    def undo(self, added: np.ndarray | list[int], entries: int) -> None:
        """Forget the entries from ``entries`` on and the bucket keys they created."""
        self.buckets.delete(np.asarray(added, dtype=np.uint64))
        self.entry_owners.size = entries
        if self.sets is not None:
            self.set_ends.size = entries
            self.sets.size = int(self.set_ends.data[entries - 1]) if entries else 0
        if self.signatures is not None:
            self.signatures.size = entries

    def nbytes(self) -> int:
        """Bytes of the entries' arrays (owners, signatures or shingle sets) and of the buckets."""
        arrays = self.entry_owners.nbytes + self.set_ends.nbytes + self.buckets.nbytes
        return arrays + sum(a.nbytes for a in (self.signatures, self.sets) if a is not None)


# ---------------------------------------------------------------- units


def unit_ranges(lines: list[str], unit: str, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Line ranges [start, end) of the dedup units of a document, as two int arrays (``lengths``:
    the lines' lengths, if the caller has them)."""
    n = len(lines)
    if lengths is None:
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    blank = (lengths == 0) | np.fromiter(map(str.isspace, lines), dtype=bool, count=n)

    def wrapped(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return np.array([_hard_wrapped(lines[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)], bool)

    return _unit_ranges(lengths, blank, unit, wrapped)


def _unit_ranges(
    lengths: np.ndarray, blank: np.ndarray, unit: str, wrapped: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``unit_ranges`` from the lines' lengths and blank flags; ``wrapped(starts, ends)`` tells which blocks of
    lines (s..e-1) are hard-wrapped (``_hard_wrapped``; only asked for blocks that may be, so callers need not
    split the whole text)."""
    n = lengths.size
    starts, ends, cand_starts, cand_ends = kernels.line_units(lengths, blank, unit != "paragraph")
    if unit != "auto" or not cand_starts.size:
        return starts, ends
    # auto: a block is one unit when it looks hard-wrapped (see _hard_wrapped), else one per line.
    # The kernel made the cheap test: every line but the last is 30-120 characters wide.
    found = wrapped(cand_starts, cand_ends)
    if not found.any():
        return starts, ends
    keep = np.ones(n, dtype=bool)
    ends = np.arange(1, n + 1)
    for s, e in zip(cand_starts[found].tolist(), cand_ends[found].tolist(), strict=True):
        keep[s + 1 : e] = False
        ends[s] = e
    starts = starts[keep[starts]]
    return starts, ends[starts]


def split_units(lines: list[str], unit: str) -> list[tuple[int, int]]:
    starts, ends = unit_ranges(lines, unit)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _hard_wrapped(block: list[str]) -> bool:
    """A block of lines broken at a fixed width (one paragraph), not one paragraph per line: its
    lines (but the last) are 30-120 characters wide (checked by the caller) and most of them end
    mid-sentence."""
    body = block[:-1]
    unfinished = sum(1 for line in body if not line.rstrip().endswith(_SENTENCE_END))
    return unfinished >= 0.6 * len(body)


_SENTENCE_END_POINTS = np.array([ord(c) for c in _SENTENCE_END], dtype=np.uint32)


# ---------------------------------------------------------------- a sketch on its way back from a worker


class Sketch(dict):  # type: ignore[type-arg]
    """A document's sketch as ``prepare_document`` leaves it for ``process``: a worker computes it and
    sends it back to the main process. The sketches a process made since it last sent any are pickled
    together (``_SketchPack``): each of the ~15 fields of all of them as one array in one buffer, so the
    main process unpickles a batch in a few array views plus a slice per document and field, not ~15
    arrays per document (40 MB of web text: unpickling 0.16 -> ~0.03 s of the main process's CPU). The
    arrays come back writable (numba's kernels are typed for that) and aligned; an entry is an array,
    a tuple of arrays or another value. A sketch made elsewhere (unpickled, or built by hand) is
    pickled as a pack of its own."""

    def __reduce__(self) -> tuple[Any, ...]:
        pack, at = self.__dict__.get("_pack", (None, 0))
        if pack is None:
            pack, at = _SketchPack(), 0
            pack.members.append(weakref.ref(self))
        return _sketch_from_pack, (pack, at)


class _SketchPack:
    """The sketches one process made since it last pickled any (at most ``_PACK_DOCUMENTS``): pickling
    one of them pickles the pack once (pickle keeps it in its memo) and seals it; the next sketch starts
    a new pack. Members are held by weak references (a sketch refers to its pack, not the reverse), so
    a pack never keeps a processed document's sketch alive; one gone by the time the pack is pickled
    is left out."""

    __slots__ = ("members", "sealed")

    def __init__(self) -> None:
        self.members: list[weakref.ref[Sketch]] = []
        self.sealed = False

    def __reduce__(self) -> tuple[Any, ...]:
        self.sealed = True
        return _unpack_sketches, _pack_sketches([ref() for ref in self.members])


_PACK_DOCUMENTS = 256  # (a runner's batch is at most 64: a pack is one batch's, sealed as it is sent)
_open_pack: _SketchPack | None = None  # this process's pack that new sketches join


def _packed(sketch: dict[str, Any]) -> Sketch:
    """``sketch`` as a ``Sketch`` in this process's open pack."""
    global _open_pack
    pack = _open_pack
    if pack is None or pack.sealed or len(pack.members) >= _PACK_DOCUMENTS:
        pack = _open_pack = _SketchPack()
    packed = Sketch(sketch)
    packed.__dict__["_pack"] = (pack, len(pack.members))
    pack.members.append(weakref.ref(packed))
    return packed


def _fields(sketch: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    # each entry's key and, for a tuple, its length (-1: not a tuple)
    return tuple((key, len(value) if type(value) is tuple else -1) for key, value in sketch.items())


def _pack_sketches(sketches: list[Sketch | None]) -> tuple[Any, ...]:
    """The arguments of ``_unpack_sketches``: the sketches' fields (those alike in all of them), each
    column of values one array in ``buffer`` (8-byte aligned) where they are arrays of one dtype and
    row shape, else a list of the values; a sketch gone (None) or unlike the first is kept whole.
    (The columns are laid out first and copied into the buffer once, their arrays found by C loops: joining
    each column's bytes, then the columns, then copying them into a bytearray, with Python per value, took
    0.044 s of a worker's CPU over the 40 MB input, now 0.030 s.)"""
    live = [s for s in sketches if s is not None]
    fields = _fields(live[0]) if live else ()
    alike = [s is not None and _fields(s) == fields for s in sketches]
    rows = [s for s, same in zip(sketches, alike, strict=True) if same]
    others = [None if same else s and dict(s) for s, same in zip(sketches, alike, strict=True)]
    columns: list[tuple[Any, ...]] = []
    copies: list[tuple[int, Any, tuple[int, ...], int, list[np.ndarray]]] = []
    size = 0
    ndarray = np.ndarray
    for position, (key, many) in enumerate(fields):
        values = [s[key] for s in rows]
        for column in zip(*values, strict=True) if many >= 0 else (values,):
            # (set, map and list comprehensions: C loops over the column's values)
            kinds = set(map(type, column))
            if ndarray not in kinds:  # no arrays: the values as they are
                columns.append((position, None, None, 0, None, list(column)))
                continue
            arrays = list(column) if len(kinds) == 1 else [v for v in column if type(v) is ndarray]
            dtypes, ndims = set(map(_DTYPE, arrays)), set(map(_NDIM, arrays))
            shapes = {()} if ndims == {1} else {a.shape[1:] for a in arrays}
            if len(dtypes) != 1 or len(shapes) != 1 or 0 in ndims or next(iter(dtypes)).hasobject:
                columns.append((position, None, None, 0, None, list(column)))  # unlike arrays: as they are
                continue
            dtype, shape = dtypes.pop(), shapes.pop()
            if len(kinds) == 1:
                counts, objects = list(map(len, column)), None
            else:  # arrays and other values (None): those in their place
                counts = [len(v) if type(v) is ndarray else -1 for v in column]
                objects = [None if type(v) is ndarray else v for v in column]
            n = sum(map(len, arrays))  # (the rows of the arrays)
            columns.append((position, dtype.str, shape, size, counts, objects))
            copies.append((size, dtype, shape, n, arrays))
            size += n * dtype.itemsize * (int(np.prod(shape)) if shape else 1)
            size += -size % 8  # the next column 8-byte aligned
    buffer = bytearray(size)
    for at, dtype, shape, n, arrays in copies:
        if n:
            out = np.frombuffer(buffer, dtype, n * (int(np.prod(shape)) if shape else 1), at).reshape(n, *shape)
            np.concatenate(arrays, out=out) if len(arrays) > 1 else np.copyto(out, arrays[0])
    return fields, columns, alike, others, buffer


_DTYPE = attrgetter("dtype")
_NDIM = attrgetter("ndim")


def _unpack_sketches(
    fields: tuple[tuple[str, int], ...],
    columns: list[tuple[Any, ...]],
    alike: list[bool],
    others: list[dict[str, Any] | None],
    buffer: bytearray,
) -> list[Sketch | None]:
    """The pack's sketches back (``_pack_sketches``' arguments), each array a view of ``buffer``."""
    values: list[list[Any]] = []  # per column, per sketch alike
    for _, dtype, shape, at, counts, objects in columns:
        if dtype is None:
            values.append(objects)
            continue
        rows = sum(n for n in counts if n > 0)
        width = int(np.prod(shape)) if shape else 1
        data = (
            np.frombuffer(buffer, dtype, rows * width, at).reshape(rows, *shape)
            if rows * width
            else np.empty((rows, *shape), dtype)
        )
        column, start = [], 0
        for i, n in enumerate(counts):
            if n < 0:
                column.append(objects[i])
            else:
                column.append(data[start : start + n])
                start += n
        values.append(column)
    by_field: dict[int, list[list[Any]]] = {}
    for (position, *_), column in zip(columns, values, strict=True):
        by_field.setdefault(position, []).append(column)
    n = sum(alike)
    entries = [
        by_field[position][0] if many < 0 else list(zip(*by_field.get(position, ()), strict=True)) or [()] * n
        for position, (_, many) in enumerate(fields)
    ]
    keys = [key for key, _ in fields]
    made = zip(*entries, strict=True) if entries else iter([()] * n)
    return [
        Sketch(zip(keys, next(made), strict=True)) if same else None if other is None else Sketch(other)
        for same, other in zip(alike, others, strict=True)
    ]


def _sketch_from_pack(sketches: list[Sketch | None], at: int) -> Sketch:
    sketch = sketches[at]
    assert sketch is not None  # (a member is pickled only while it is alive)
    return sketch


# ---------------------------------------------------------------- the stage


# What a byte of input adds to the index (``DedupStage.expect_input``): below what web text gave, per byte of the
# input files (40 MB of CC pages / the CC sample / trafilatura's test pages): exact keys 0.0031 / 0.0042 / 0.0028,
# near units 0.0018 / 0.0022 / 0.0017 (their shingle set values 0.070 / 0.098 / 0.066, ~18 band keys each),
# documents with a signature 0.00010 / 0.00019 / 0.00008. The tables' sizes are powers of two: sized for these,
# they held those three inputs' index or needed one growth more.
_EXPECTED_PER_BYTE = {"keys": 0.0024, "near": 0.0015, "set_values": 0.06, "documents": 0.00009}
# Bytes of input the index is sized for at most; beyond, it grows as it fills. (At this size the band keys' table
# has 8M slots, 96 MB, what 128 MB of web text fills anyway: an input of repeats has that much unused.)
_EXPECT_AT_MOST = 128 << 20


class DedupStage(Stage):
    """Remove repeated paragraphs (exact and MinHash near-duplicates) and duplicate documents."""

    name = "dedup"
    Options = DedupOptions
    cross_document = True

    def __init__(self, options: DedupOptions | None = None) -> None:
        super().__init__(options)
        o = self.options
        self.hasher = MinHasher(o.num_perm, o.seed)
        self.shingle_hash = ShingleHash(o.shingle, o.ngram)
        if o.bands is not None or o.rows is not None:  # one of them set: the other uses every permutation
            self.bands = o.bands if o.bands is not None else o.num_perm // o.rows  # type: ignore[operator]
            self.rows = o.rows if o.rows is not None else o.num_perm // o.bands
        else:
            # Band for a lower similarity than the removal threshold so that true pairs near the
            # threshold still become candidates; the verification step keeps precision.
            self.bands, self.rows = saved_lsh_params(round(max(0.05, o.threshold - 0.15), 4), o.num_perm)
        self.doc_bands, self.doc_rows = saved_lsh_params(round(max(0.05, o.document_threshold - 0.15), 4), o.num_perm)
        self._pow = np.ones(1, dtype=np.uint64)  # B**i and B**-i mod 2**64 for exact keys
        self._ipow = np.ones(1, dtype=np.uint64)
        self._no_sigs = np.empty((0, o.num_perm), np.uint32)  # for the kernel when sets are verified
        self._limits = np.array([o.min_words, o.minhash_min_words, o.digits_min_words, o.ngram], np.int64)
        self._sketch_args: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]] | None = None
        self.doc_ids: list[str] = []  # owner ordinal -> document id
        # owner ordinal -> (input file, line): ids are often shared by documents of several files
        self.doc_where: list[tuple[str, int]] = []
        self.cluster_sizes: Counter[tuple[str, int]] = Counter()
        self._learnt: dict[str, list[dict[str, Any]]] = {}  # input file -> what its documents added
        self._reset()

    def __getstate__(self) -> dict[str, Any]:
        # The sketch's tables (~7 MB, the module's: built again where they are needed) do not travel with a
        # pickled stage (Ray's driver sends its stage and index to its tasks).
        return {**self.__dict__, "_sketch_args": None}

    def _reset(self) -> None:
        self.exact = KeyTable()  # unit key -> owner ordinal
        # short unit key -> documents after the first (its owner) that held it: boilerplate-like lines
        self.short_counts = KeyTable()
        self.units = NearIndex(self.bands, self.rows, self.options.num_perm, self.options.verify == "exact")
        self.doc_exact: dict[int, int] = {}
        self.docs = NearIndex(self.doc_bands, self.doc_rows, self.options.num_perm, exact=False)

    def index_bytes(self) -> dict[str, int]:
        """Array bytes of the index (the dicts of keys come on top: ~100 bytes per key)."""
        return {
            "unit_entries": len(self.units),
            "unit_arrays": self.units.nbytes(),
            "unit_band_keys": len(self.units.buckets),
            "exact_keys": len(self.exact),
            "short_unit_counts": len(self.short_counts),
            "document_entries": len(self.docs),
            "document_arrays": self.docs.nbytes(),
        }

    # ------------------------------------------------------------ normalization and tokens

    def normalize(self, text: str, keep: str = "") -> str:
        """The text units are compared by (also what the token cache applies to each raw token)."""
        o = self.options
        if o.lowercase:
            text = text.casefold()
        if o.strip_punctuation:
            text = _PUNCT_SYMBOLS.sub(" ", text)
        if o.normalize_digits:
            text = _DIGITS.sub("0", text)
        if o.shingle == "word":
            text = _SOLO.sub(r" \g<0> ", text)
        if keep:
            return keep.join(" ".join(part.split()) for part in text.split(keep))
        return " ".join(text.split())

    def shingles(self, key: str) -> list[str]:
        """The shingle strings of a normalized unit (what datasketch is given in the tests)."""
        n = self.options.ngram
        if self.options.shingle == "char":
            return [key[i : i + n] for i in range(len(key) - n + 1)]
        words = key.split(" ")
        return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]

    def _tokens(
        self, text: str, points: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
        """Token hashes of a document, the word offset of each line (len = lines + 1), for char
        shingles the token offset of each word, (with ``normalize_digits``) the token hashes with
        the digits as written, and the written-word offset of each line (``_nb_words``). All on the
        code point array: no Python per word. ``points``: the text's code points, if the caller has them."""
        o = self.options
        is_sep, mapping = _char_tables(o.strip_punctuation, o.normalize_digits)
        cp = _codepoints(text) if points is None else points
        # word shingles fold case as they split words; char shingles need the folded code points themselves
        fold, several = _fold_tables() if o.lowercase and o.shingle == "word" else (_NO_FOLD, _NO_SEVERAL)
        if o.lowercase and o.shingle != "word":
            cp = _casefold_codepoints(cp)
        table = mapping if mapping is not None else _NO_MAPPING
        w_start, w_end, words, line_words, raw, written = _nb_words(
            cp,
            is_sep,
            table,
            mapping is not None,
            _written_breaks(),
            _solo_table(),
            o.shingle == "word",
            fold,
            several,
            _NO_LUT,  # (char shingles: a call a document, made rarely; the table is the word sketch's)
        )
        if o.shingle == "word":
            return words, line_words, None, raw if mapping is not None else None, written
        # char shingles: the words joined by single spaces
        lengths = w_end - w_start + 1
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        padded = np.concatenate((cp, [32]))
        chars = padded[np.repeat(w_start - offsets[:-1], lengths) + np.arange(offsets[-1])]
        chars[offsets[1:] - 1] = 32
        chars = chars[:-1]
        if mapping is None:
            return _char_hashes(chars), line_words, offsets, None, written
        return _char_hashes(mapping[chars]), line_words, offsets, _char_hashes(chars), written

    def normalized(self, text: str) -> str:
        """The normalized words of a text joined by spaces, as the vectorized path sees them
        (equals ``normalize``; tested)."""
        o = self.options
        is_sep, mapping = _char_tables(o.strip_punctuation, o.normalize_digits)
        cp = _codepoints(text.casefold() if o.lowercase else text)
        cp = np.where(is_sep[cp], np.uint32(32), cp if mapping is None else mapping[cp]).astype(np.uint32)
        words = cp.tobytes().decode("utf-32-le", "surrogatepass")
        if o.shingle == "word":
            words = _SOLO.sub(r" \g<0> ", words)
        return " ".join(words.split())

    # ------------------------------------------------------------ sketches of one document

    def sketch(self, text: str) -> dict[str, Any]:
        """Everything dedup computes for one document's text: lines, units and their keys,
        the signatures of the units that are matched as near-duplicates, the document's signature."""
        return self._sketch(text, views=True)

    def _word_sketch_args(self) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        """``_nb_word_sketch``'s tables and options (unit, word and signature arguments), made once."""
        if self._sketch_args is None:
            o = self.options
            is_sep, mapping = _char_tables(o.strip_punctuation, o.normalize_digits)
            fold, several = _fold_tables() if o.lowercase else (_NO_FOLD, _NO_SEVERAL)
            units, docs, hasher = self.units, self.docs, self.hasher
            words = (is_sep, _NO_MAPPING if mapping is None else mapping, mapping is not None)
            words += (_written_breaks(), _solo_table(), fold)
            self._sketch_args = (
                (_space_table(), _SENTENCE_END_POINTS, o.unit != "paragraph", o.unit == "auto"),
                words + (several, _nb_word_lut(*words)),
                (self.shingle_hash._mult, hasher.a_flat, hasher.b_flat, o.documents, o.verify == "exact")
                + ((units.bands, units.rows, units._row_mult, units._band_salt),)
                + ((docs.bands, docs.rows, docs._row_mult, docs._band_salt),),
            )
        return self._sketch_args

    def _sketch(self, text: str, views: bool) -> dict[str, Any]:
        # views=False leaves out the lines and the per-unit set views, which process does not use
        o = self.options
        # The lines as text.split("\n") gives them, from the code points (no list of strings).
        points = _codepoints(text)
        if o.shingle == "word":  # (char shingles: the words' characters as tokens, below)
            unit_args, word_args, sig_args = self._word_sketch_args()
            return self._sketch_dict(
                text, views, *_nb_word_sketch(points, unit_args, word_args, self._limits, sig_args)
            )
        u_start, u_end, line_chars = kernels.line_unit_ranges(
            points, _space_table(), _SENTENCE_END_POINTS, o.unit != "paragraph", o.unit == "auto"
        )
        tokens, line_words, char_offsets, raw_tokens, line_written = self._tokens(text, points)
        # short units: the digits as written are part of their key
        n_words, keys, whole_key, near, sh_start, sh_end, cands = kernels.unit_plan(
            tokens,
            raw_tokens if raw_tokens is not None else _NO_TOKENS,
            line_words,
            line_written,
            char_offsets if char_offsets is not None else _NO_OFFSETS,
            u_start,
            u_end,
            line_chars,
            self._limits,
            _NB_POLY_BASE,
            _NB_POLY_LEN,
        )
        units, docs, hasher = self.units, self.docs, self.hasher
        # units are disjoint and in order: their shingle ranges too
        whole, sigs, doc_sig, values, cuts, band, doc_band = _nb_signatures(
            tokens,
            self.shingle_hash._mult,
            hasher.a_flat,
            hasher.b_flat,
            sh_start,
            sh_end,
            o.documents and line_words[-1] >= o.minhash_min_words,
            o.verify == "exact",
            (units.bands, units.rows, units._row_mult, units._band_salt),
            (docs.bands, docs.rows, docs._row_mult, docs._band_salt),
        )
        plan = (u_start, u_end, line_chars, n_words, keys, whole_key, near, cands)
        return self._sketch_dict(text, views, *plan, whole, sigs, doc_sig, values, cuts, band, doc_band)

    def _sketch_dict(
        self,
        text: str,
        views: bool,
        u_start: np.ndarray,
        u_end: np.ndarray,
        line_chars: np.ndarray,
        n_words: np.ndarray,
        keys: np.ndarray,
        whole_key: int,
        near: np.ndarray,
        cands: tuple[Any, ...],
        whole: bool,
        sigs: np.ndarray,
        doc_sig: np.ndarray,
        values: np.ndarray,
        cuts: np.ndarray,
        band: np.ndarray,
        doc_band: np.ndarray,
    ) -> dict[str, Any]:
        sets: list[np.ndarray] | None = None
        if self.options.verify == "exact" and near.size and views:
            sets = [values[cuts[i] : cuts[i + 1]] for i in range(near.size)]
        return {
            "lines": text.split("\n") if views else None,
            "units": (u_start, u_end),
            "words": n_words,  # written words per unit (what min_words counts)
            "keys": keys,
            "doc_key": int(whole_key),
            "near": near,
            "signatures": sigs,
            "sets": sets,  # per near unit (views of set_values)
            "set_values": values,  # the sets concatenated, ``set_cuts`` their bounds
            "set_cuts": cuts,
            "band_keys": band,
            "doc_signature": doc_sig if whole else None,
            "doc_band_keys": doc_band if whole else None,
            "line_chars": line_chars,  # where each line starts in the text (and where the text ends, + 1)
            # what process decides on: the units with at least min_words words (their positions,
            # rows in the near arrays or -1, characters, words), and the characters of all units
            "candidates": cands,
        }

    # ------------------------------------------------------------ the stage

    def expect_input(self, size: int) -> None:
        """Size the index for ``size`` more bytes of input (up to ``_EXPECT_AT_MOST``), by what a byte of web
        text adds to it (``_EXPECTED_PER_BYTE``, a little below what three corpora gave): filled from 1,024
        slots, its hash tables were doubled and rehashed ~28 times over the 40 MB input, its shingle sets
        copied as they grew; ``process`` over that input's texts 0.19-0.21 -> 0.16-0.17 s CPU. An input
        with fewer units leaves room unused (the values' arrays are written, the keys' only as they fill);
        one with more grows the tables from there."""
        if self.options.scope != "corpus":  # (an index a document: it starts again each time)
            return
        size = min(size, _EXPECT_AT_MOST)
        near, docs = int(size * _EXPECTED_PER_BYTE["near"]), int(size * _EXPECTED_PER_BYTE["documents"])
        self.exact.reserve(int(size * _EXPECTED_PER_BYTE["keys"]))
        self.units.reserve(near, int(size * _EXPECTED_PER_BYTE["set_values"]) if self.units.exact else 0)
        self.units.buckets.reserve(near * self.units.bands)
        if self.options.documents:
            self.docs.reserve(docs, 0)
            self.docs.buckets.reserve(docs * self.docs.bands)

    def prepare_document(self, doc: Document) -> None:
        # Signatures depend on the text alone: computed in the workers, in parallel. The lines are
        # dropped (process cuts units out by character offsets) so the text does not travel back twice.
        sketch = self._sketch(doc.text, views=False)
        if self.units.exact:  # candidates are verified on shingle sets: signatures need not travel back
            sketch["signatures"] = None
        doc.scratch[self.name] = (doc.text, _packed(sketch))

    def process(self, doc: Document) -> None:
        o = self.options
        if o.scope == "document":
            self._reset()
        cached = doc.scratch.pop(self.name, None)
        fresh = cached is None or cached[0] != doc.text
        sk = self._sketch(doc.text, views=False) if fresh else cached[1]
        ordinal = len(self.doc_ids)
        doc_keys = None
        if o.documents:
            original = self.doc_exact.get(sk["doc_key"])
            if original is not None:
                self.stat_update("doc-exact-duplicate")
                orig_id = self.doc_ids[original]
                doc.reject(self.name, f"exact duplicate of document {orig_id}", **self._named(original))
                return
            if sk["doc_signature"] is not None:
                doc_keys = sk["doc_band_keys"]
                hit = self.docs.query(doc_keys, sk["doc_signature"], None, o.document_threshold)
                if hit is not None:
                    self.stat_update("doc-near-duplicate")
                    owner = int(self.docs.owners[hit[0]])
                    doc.reject(
                        self.name,
                        f"near-duplicate of document {self.doc_ids[owner]} (Jaccard {hit[1]:.2f})",
                        **self._named(owner),
                        jaccard=round(hit[1], 4),
                    )
                    return
        self.doc_ids.append(doc.id)
        self.doc_where.append((doc.source, doc.line_no))
        if not self._dedup_units(doc, sk, ordinal):
            self.doc_ids.pop()
            self.doc_where.pop()
            return
        if o.documents:
            self.doc_exact[sk["doc_key"]] = ordinal
            if doc_keys is not None:
                self.docs.add_signature(doc_keys, sk["doc_signature"], ordinal)
        if o.scope == "corpus":
            self._learn(doc, sk, doc_keys)

    # ------------------------------------------------------------ state kept between runs

    def _params(self) -> dict[str, Any]:
        """What saved keys and signatures depend on: a saved index is only used under the same."""
        o = self.options
        return {
            **HASH_SCHEME,
            **o.model_dump(
                include={
                    "lowercase",
                    "strip_punctuation",
                    "normalize_digits",
                    "digits_min_words",
                    "shingle",
                    "ngram",
                    "num_perm",
                    "seed",
                }
            ),
            "verify": o.verify,
            "documents": o.documents,
            "bands": [self.bands, self.rows, self.doc_bands, self.doc_rows],
        }

    def _named(self, ordinal: int) -> dict[str, Any]:
        """The fields naming the document at ``ordinal`` in a record: its id, input file and line (a
        JSONL line or Parquet row; none for a .txt file, or a document saved by a version that did not
        keep lines)."""
        source, line = self.doc_where[ordinal]
        named: dict[str, Any] = {"duplicate_of": self.doc_ids[ordinal], "duplicate_source": source}
        if line:
            named["duplicate_line"] = line
        return named

    def _learn(self, doc: Document, sk: dict[str, Any], doc_keys: np.ndarray | None) -> None:
        """Keep what this kept document added to the index, per input file, for ``pop_state``."""
        new_keys, (added_near, unit_keys, sizes), span, counted = sk["added"]
        rows = self._learnt.setdefault(doc.source, [])
        exact = self.units.exact
        # The kernel appended the kept sets, in order, at the end of the index's set values, which
        # only grow: where they are (``span``) is enough (copies doubled the biggest part of the index
        # for a large input file, kept until the file is committed). The rest: small numpy arrays.
        rows.append(
            {
                "id": doc.id,
                "line": doc.line_no,
                "keys": new_keys,
                "short_keys": counted,
                "unit_keys": unit_keys,
                "unit_sets": span,  # in the index's set values, or a copy (see ``take_learnt``)
                "set_sizes": sizes,
                "unit_sigs": None if exact else sk["signatures"][added_near],
                "doc_key": sk["doc_key"] if self.options.documents else None,
                "doc_keys": np.array(doc_keys, dtype=np.uint64) if doc_keys is not None else None,
                # (a copy: a view would hold the whole buffer the sketch came in until the file is saved)
                "doc_sig": sk["doc_signature"].copy() if doc_keys is not None else None,
            }
        )

    def _kept_sets(self, sets: tuple[int, int] | np.ndarray) -> np.ndarray:
        if isinstance(sets, np.ndarray):
            return sets
        start, end = sets
        return self.units.sets.data[start:end] if self.units.sets is not None else np.empty(0, np.uint32)

    def take_learnt(self, source: str) -> list[dict[str, Any]]:
        """What the kept documents of ``source`` added (``pop_state``'s rows before they are saved),
        with copies of their sets: for another stage instance to save (Ray's driver)."""
        rows = self._learnt.pop(source, [])
        for row in rows:
            row["unit_sets"] = self._kept_sets(row["unit_sets"]).copy()
        return rows

    def pop_state(self, source: str) -> Iterator[bytes]:
        """The index entries the kept documents of ``source`` added, as payloads of at most
        ``STATE_CHUNK_DOCUMENTS`` documents each (``pack_arrays``: arrays and a JSON header with the hash scheme,
        datasketch version and hashing options). Taken from the stage now; each payload is built only
        when the caller asks for it, and the documents it holds are let go, so saving a large file's
        state does not need a second copy of all of it at once."""
        docs = self._learnt.pop(source, None) or []
        return self._payloads(docs)

    def ready_state(self, source: str) -> Iterator[bytes]:
        """``pop_state``'s first payloads for ``source`` while its documents are still coming: those of its
        full chunks of ``STATE_CHUNK_DOCUMENTS`` documents so far (a kept document's entries never change
        after ``_learn``), built as the caller asks for them; ``pop_state`` gives the rest, cut where it would
        have cut them."""
        docs = self._learnt.get(source)
        full = len(docs) // STATE_CHUNK_DOCUMENTS * STATE_CHUNK_DOCUMENTS if docs else 0
        if not full:
            return iter(())
        ready = docs[:full]
        del docs[:full]
        return self._payloads(ready)

    def _payloads(self, docs: list[dict[str, Any] | None]) -> Iterator[bytes]:
        for start in range(0, len(docs), STATE_CHUNK_DOCUMENTS):
            chunk = docs[start : start + STATE_CHUNK_DOCUMENTS]
            docs[start : start + len(chunk)] = [None] * len(chunk)  # let go of what this payload holds
            yield self._payload([d for d in chunk if d is not None])

    def _payload(self, docs: list[dict[str, Any]]) -> bytes:
        o = self.options
        header = {
            "params": self._params(),
            "ids": [d["id"] for d in docs],
            "lines": [d.get("line", 0) for d in docs],
            "keys": [len(d["keys"]) for d in docs],
            "short_keys": [len(d["short_keys"]) for d in docs],
            "units": [len(d["unit_keys"]) for d in docs],
            "doc_keys": [d["doc_keys"] is not None for d in docs],
            "doc_key": [d["doc_key"] for d in docs],
        }
        arrays = {
            "keys": np.concatenate([d["keys"] for d in docs]),
            "short_keys": np.concatenate([d["short_keys"] for d in docs]),
            "unit_keys": np.concatenate([d["unit_keys"] for d in docs]).reshape(-1, self.bands),
            "set_sizes": np.concatenate([d["set_sizes"] for d in docs]),
            "sets": np.concatenate([self._kept_sets(d["unit_sets"]) for d in docs]),
            "unit_sigs": np.concatenate([d["unit_sigs"] for d in docs if d["unit_sigs"] is not None])
            if o.verify == "estimate"
            else np.empty((0, o.num_perm), np.uint32),
            "doc_keys": np.array([d["doc_keys"] for d in docs if d["doc_keys"] is not None], dtype=np.uint64).reshape(
                -1, self.doc_bands
            ),
            "doc_sigs": np.array([d["doc_sig"] for d in docs if d["doc_sig"] is not None], dtype=np.uint32).reshape(
                -1, o.num_perm
            ),
        }
        return pack_arrays(header, arrays)

    def load_state(self, rows: Iterable[tuple[str, bytes]]) -> None:
        """Rebuild the index from the payloads earlier runs saved (oldest first). Rows that can be read twice
        (the state's, a list) are counted first (``_reserve_for``)."""
        if not isinstance(rows, Iterator):
            self._reserve_for(rows)
        for source, payload in rows:
            header, data = unpack_arrays(payload)
            if header["params"] != self._params():
                from pipeline.config import ConfigError  # (a stage module does not import the config's at start)

                saved, now = header["params"], self._params()
                changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
                raise ConfigError(
                    f"the dedup index saved for {source} was made with other hashing ({', '.join(changed)}: another"
                    " version of cleancorpus or datasketch, or other dedup options); run again with --rebuild to"
                    " reprocess everything"
                )
            keys, unit_keys, sets, sizes = data["keys"], data["unit_keys"], data["sets"], data["set_sizes"]
            unit_sigs, doc_keys, doc_sigs = data["unit_sigs"], data["doc_keys"], data["doc_sigs"]
            ids = header["ids"]
            ordinals = len(self.doc_ids) + np.arange(len(ids), dtype=np.int64)
            self.doc_ids.extend(ids)
            self.doc_where.extend((source, line) for line in header.get("lines") or [0] * len(ids))
            # Loaded keys are never deleted again (first wins, as in one run).
            self.exact.load(keys, np.repeat(ordinals, header["keys"]))
            if "short_keys" in data:  # (rows of versions before short_common_documents hold no counts)
                self.short_counts.increment(data["short_keys"])
            unit_owners = np.repeat(ordinals, header["units"])
            if self.units.exact:
                self.units.add_many(unit_keys, unit_owners, sets, sizes, loaded=True)
            else:
                self.units.add_many(unit_keys, unit_owners, unit_sigs, loaded=True)
            for ordinal, doc_key in zip(ordinals.tolist(), header["doc_key"], strict=True):
                if doc_key is not None:
                    self.doc_exact.setdefault(doc_key, ordinal)
            self.docs.add_many(doc_keys, ordinals[np.array(header["doc_keys"], dtype=bool)], doc_sigs, loaded=True)

    def _reserve_for(self, rows: Iterable[tuple[str, bytes]]) -> None:
        """Size the index's tables for the saved rows, from their arrays' headers (nothing else is read):
        filled as they are loaded, the large hash tables doubled and rehashed ~10 times (a 200 MB archive's
        index, 7.3M keys: loaded in 1.1-1.5 s CPU, 0.9 s with this pass and the tables sized first). The
        state's rows are read as files (``StageRows.blobs``): only the headers come from the database."""
        keys = units = values = docs = 0
        blobs = rows.blobs() if hasattr(rows, "blobs") else (payload for _, payload in rows)
        for payload in blobs:
            shapes = array_shapes(payload, ("keys", "unit_keys", "sets", "doc_keys"))
            keys += shapes["keys"][0]
            units += shapes["unit_keys"][0]
            values += shapes["sets"][0]
            docs += shapes["doc_keys"][0]
        self.exact.reserve(keys)
        self.units.reserve(units, values if self.units.exact else 0)
        self.units.buckets.reserve(units * self.units.bands)
        self.docs.reserve(docs, 0)
        self.docs.buckets.reserve(docs * self.docs.bands)

    def _dedup_units(self, doc: Document, sk: dict[str, Any], ordinal: int) -> bool:
        """Remove the document's repeated units; False if it was rejected as mostly duplicate."""
        o = self.options
        units, exact = self.units, self.exact
        lsh_entries = len(units)
        _check_room(ordinal)
        # Candidates (units with enough words) and the row of those matched as near-duplicates.
        elig, near_pos, cand_chars, cand_words, all_chars = sk["candidates"]
        candidates = elig.size
        band = sk["band_keys"]
        values = sk["set_values"]
        # room for what the kernel may add (the tables' checks inline: four calls a document)
        short_counts, buckets = self.short_counts, units.buckets
        if exact.count + candidates > exact.limit:
            exact.reserve(candidates)
        if short_counts.count + candidates > short_counts.limit:
            short_counts.reserve(candidates)
        rows, sets, entries = band.shape[0], units.sets, units.entry_owners
        if (  # (``units.reserve``'s checks inline: it returns at once for most documents)
            entries.size + rows > len(entries.data)
            or entries.size + rows >= _NO_VALUE
            or (
                sets is not None
                and (sets.size + values.size > len(sets.data) or entries.size + rows > len(units.set_ends.data))
            )
            or (units.signatures is not None and entries.size + rows > len(units.signatures.data))
        ):
            units.reserve(rows, values.size)
        if buckets.count + band.size > buckets.limit:
            buckets.reserve(band.size)
        values_before = units.sets.size if units.sets is not None else 0
        # Only text of other documents makes this one a duplicate: repeats of its own units are removed
        # but counted neither way (a page repeating one paragraph is no copy of itself; the document
        # signatures, of shingle sets, ignore repeats too). The kernel sums the characters.
        (
            ints,
            words64,
            sim,
            (n_gone, n_new, n_lsh, n_counted, n_rows),
            n_entries,
            n_values,
            gone_chars,
            removed_chars,
            copied,
            new_counts,  # short keys new to their table
        ) = kernels.dedup_units(
            sk["keys"],
            elig,
            near_pos,
            exact.tables(),
            band,
            units.buckets.tables(),
            units.entry_owners.data,
            lsh_entries,
            units.exact,
            units.sets.data if units.sets is not None else values,
            units.set_ends.data,
            units.sets.size if units.sets is not None else 0,
            values,
            sk["set_cuts"],
            units.signatures.data if units.signatures is not None else self._no_sigs,
            sk["signatures"] if units.signatures is not None else self._no_sigs,
            o.threshold,
            ordinal,
            cand_chars,
            cand_words,
            o.short_words,
            o.short_run_words,
            self.short_counts.tables(),
            o.short_common_documents,
        )
        # (the kernel's arrays cut: see dedup_units)
        at = n_new + n_lsh + n_counted
        new_keys, added_lsh, counted = words64[:n_new], words64[n_new : n_new + n_lsh], words64[n_new + n_lsh : at]
        rows_at = 3 * n_gone + n_rows
        # rows in the near arrays, their band keys, their set sizes
        added_near = (ints[3 * n_gone : rows_at], words64[at + n_gone :].reshape(n_rows, band.shape[1]), ints[rows_at:])
        # The kernel wrote the new keys and entries into the index arrays: take them in.
        exact.count += new_keys.size
        self.short_counts.count += new_counts
        units.buckets.count += n_lsh
        units.entry_owners.size = n_entries
        if units.sets is not None:
            units.set_ends.size, units.sets.size = n_entries, n_values
        if units.signatures is not None:
            units.signatures.size = n_entries
        own_chars = all_chars - gone_chars + removed_chars
        rejected = bool(copied) and removed_chars >= o.max_duplicate_fraction * own_chars
        if n_gone:
            gone, owner, rule = ints[:n_gone], ints[n_gone : 2 * n_gone], ints[2 * n_gone : 3 * n_gone]
            self._record_removals(doc, sk, elig[gone], owner, rule, words64[at : at + n_gone], sim, rejected)
        if rejected:
            exact.delete(new_keys)
            self.short_counts.decrement(counted)
            units.undo(added_lsh, lsh_entries)
            self.stat_update("doc-mostly-duplicate")
            share = removed_chars / max(1, own_chars)
            by_owner: Counter[int] = Counter()
            for who, chars in zip(owner.tolist(), cand_chars[gone].tolist(), strict=True):
                if who != ordinal:
                    by_owner[who] += chars
            main = by_owner.most_common(1)[0][0]
            doc.reject(
                self.name,
                f"mostly duplicate content ({share:.0%} of its text repeats earlier text, "
                f"most of it from {self.doc_ids[main]})",
                **self._named(main),
            )
            return False
        sk["added"] = (new_keys, added_near, (values_before, n_values), counted)
        return True

    def _record_removals(
        self,
        doc: Document,
        sk: dict[str, Any],
        removed: np.ndarray,
        owner: np.ndarray,
        rule: np.ndarray,
        cluster: np.ndarray,
        sim: np.ndarray,
        rejected: bool,
    ) -> None:
        """Record each removed unit (text, rule, the document it repeats), count rules and
        clusters, and drop the units from the text unless the document is rejected anyway."""
        u_start, u_end = sk["units"]
        starts, ends = u_start[removed], u_end[removed]
        line_chars = sk["line_chars"]
        # where each removed unit's text starts and ends (without its last newline)
        firsts, lasts = line_chars[starts].tolist(), (line_chars[ends] - 1).tolist()
        owners = owner.tolist()
        names = [_RULES[r] for r in rule.tolist()]
        ordinal = len(self.doc_ids) - 1
        for name, count in Counter(names).items():
            self.stat_update(name, count)
        if rejected:  # a rolled-back original is no cluster
            self.cluster_sizes.update(
                (name, group)
                for name, group, who in zip(names, cluster.tolist(), owners, strict=True)
                if who != ordinal
            )
        else:
            self.cluster_sizes.update(zip(names, cluster.tolist(), strict=True))
        # Cut the units out of the text by character offsets (no split of the whole text), keeping
        # the runs of lines between them joined as the lines were.
        text, stage = doc.text, self.name
        named: dict[int, dict[str, Any]] = {}  # per owner
        kept: list[str] = []  # the runs of lines between the units
        cut_starts: list[int] = []  # each unit with its newline (offsets.note_cuts)
        cut_ends: list[int] = []
        line = at = 0  # the first line and character after the last unit
        append = doc.removed.append  # (doc.remove's record, made here: ~8k removals on 40 MB of web text)
        for start, end, first, last, who, name, similarity in zip(
            starts.tolist(), ends.tolist(), firsts, lasts, owners, names, sim.tolist(), strict=True
        ):
            extra = named.get(who)
            if extra is None:
                extra = named[who] = self._named(who)
            append(
                Removal(
                    stage, name, text[first:last], end - start, {**extra, "jaccard": round(similarity, 4)}, first, last
                )
            )
            if start > line:
                kept.append(text[at : first - 1])
            line, at = end, last + 1
            cut_starts.append(first)
            cut_ends.append(min(last + 1, len(text)))
        if not rejected:
            if line_chars.size - 1 > line:
                kept.append(text[at:])
            elif cut_starts:  # the units end the text: the newline before them goes, not one after
                block = len(cut_starts) - 1
                while block and cut_starts[block] == cut_ends[block - 1]:
                    block -= 1
                if cut_starts[block]:
                    cut_starts[block] -= 1
            doc.text = "\n".join(kept)
            note_cuts(doc, cut_starts, cut_ends)

    def close(self) -> None:
        """Cluster counts for the report: how many kept units had 1, 2, ... removed copies."""
        sizes = Counter(self.cluster_sizes.values())
        for copies, clusters in sorted(sizes.items()):
            self.stat_update(f"clusters-with-{copies}-copies", clusters)
        self.stat_update("clusters", len(self.cluster_sizes))
        self.stat_update("cluster-max-copies", max(sizes, default=0))
        self.cluster_sizes.clear()
