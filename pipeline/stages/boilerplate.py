"""Boilerplate stage: drop web leftovers (comment forms, widgets, share/cookie/login lines, breadcrumbs,
navigation lists, ...) from text that was already extracted from HTML.

Works line by line with rules loaded from pattern packs, YAML data files in
``pipeline/data/boilerplate/<lang>.yaml`` (format documented in ``common.yaml``), plus a few structural
rules that look at the shape of the text:

* ``breadcrumb`` / ``breadcrumb-prefix``: "Home » World » Asia" lines, a trail glued to the first
  sentence ("Home » China and Russia ..." keeps the sentence), "HomeWorldSome Title" glued trails;
* ``widget-list``: after a strong end-of-article marker (comment form, widget heading) the short
  lines that follow (post titles, "Recent Comments" entries) until a line that looks like prose;
* ``navigation``: runs of many consecutive very short lines (menus);
* ``recurring``: lines found in many documents of the input (first pass, per site and corpus-wide);
* ``line-scorer``: a small tree ensemble (``line_scorer.json`` next to the packs, trained by
  ``benchmarks/train_line_scorer.py``) scores each kept line from text-only features of the line, its
  neighbours and its place relative to the article stretch (the densest run of body text), and removes
  unlikely content; a second pass (``"context"`` in the same file) rescores each line from those
  features plus the first pass's scores of its neighbours, word weights learnt from the training lines
  (a lexicon), how much of its vocabulary the rest of the page shares and score summaries of its
  segment and block (``block_features``); with the scorer off,
  ``outside-content`` removes short lines far from the stretch.

Compiled loops (every line's lookup key and word count in one pass per document, the per-line rule facts of a
document's new lines, per-line shape counts of the scorer's candidate lines, tree-ensemble inference) live in
``boilerplate_kernels.py``; they compute the same values as the Python definitions kept here (``normalise``,
``_key_words``, ``_line_info``, ``_line_shape``). The cleaning pass scores a document's candidate lines with
a few compiled calls (their shape counts and feature rows, then both models with the context features in
between: ``kernels.score_log_odds``); ``_line_log_odds`` is the same computation step by step. The pack patterns
and phrases of a document's lines are looked for with one hyperscan scan (``boilerplate_prefilter.py``,
optional dependency): it reports a superset of the lines each whole-line pattern matches, which ``re``
confirms.

Every removed line is recorded with ``doc.remove("boilerplate", rule, line, lines=1)`` and counted as
``line-filter-<rule>``. Blank lines are left alone (a later stage collapses them).
"""

from __future__ import annotations

import bisect
import difflib
import functools
import hashlib
import marshal
import math
import operator
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import unquote, urlsplit

import numpy as np
import orjson
import regex
import xxhash
import yaml
from pydantic import Field

from pipeline.document import Document, Removal
from pipeline.offsets import note_cuts, removed_lines_at
from pipeline.stages import boilerplate_kernels as kernels
from pipeline.stages import boilerplate_prefilter as prefilter

# The stdlib regex parser tells the first characters of the whole-line patterns (see _first_chars);
# it is `re._parser` from Python 3.11 on, `sre_parse` before.
try:
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse  # type: ignore[no-redef]
from pipeline.stages.base import (
    CACHE_DIR,
    OptionError,
    Stage,
    StageOptions,
    cached_build,
    cached_table,
    save_cache_file,
    yaml_error,
)
from pipeline.stages.text_kernels import code_points, distinct_sorted, table_size

PACK_PACKAGE = "pipeline"
PACK_DIR = ("data", "boilerplate")
COMMON_PACK = "common"

# Rules produced by the stage's own logic rather than by pattern packs.
STRUCTURAL_RULES = ("breadcrumb", "breadcrumb-prefix", "widget-list", "navigation")
RECURRING_RULE = "recurring"
CONTENT_RULE = "outside-content"
SCORER_RULE = "line-scorer"
# Weights of the line scorer (a small tree ensemble), next to the pattern packs.
SCORER_FILE = "line_scorer.json"
# Lines longer than this are not counted for recurrence (they are article text, or dedup's job).
RECURRING_MAX_CHARS = 2000
# Rules whose match starts a trailing widget block unless a pack says otherwise (`ends_article`).
DEFAULT_END_MARKERS = frozenset({"comment-form", "widget-heading"})
PACK_KEYS = frozenset({"lines", "patterns", "phrases", "ends_article"})
PACK_TOP_KEYS = frozenset({"language", "breadcrumb_roots", "rules", "definitions"})

# Distinct lines remembered with what the rules said about them (menus, share bars and footers recur
# across a site's pages); longer lines are rarely repeated and not kept.
LINE_CACHE_MAX_LINES = 100_000
LINE_CACHE_MAX_CHARS = 400
# _line_info of a line with nothing left after normalisation.
_NO_KEY: tuple[Any, ...] = (None, 0, None, None, False, False, 0, False)

# Whole-line regexes are tried only on lines up to this many characters (patterns are bounded), user
# ones too: the `patterns` and `pattern_files` option descriptions say so.
MAX_WHOLE_LINE_CHARS = 600
# A line with more words than this is prose whatever its punctuation.
PROSE_MIN_WORDS = 16
# Longest ingredient/spec line (in words) kept outside the article stretch.
QUANTITY_MAX_WORDS = 12
# A line of at least this many words that looks like prose means the article has started.
SEEN_PROSE_MIN_WORDS = 8
# A document with at least this many body lines recurring in other documents, and at least this share of
# its body lines, is a copy of content: its body lines are left to dedup (rule_verdicts).
RECURRING_COPY_LINES = 3
RECURRING_COPY_SHARE = 0.5
# Longest crumb (in words) inside a breadcrumb trail.
CRUMB_MAX_WORDS = 12
# Words allowed before the root of a trail ("Sie sind hier: Startseite", "date 2023-11-10 Home").
CRUMB_LEAD_MAX_WORDS = 4

# Surrounding characters removed when building a line's lookup key: spaces, punctuation (brackets
# excepted, so "(3)" and "(c)" survive), math symbols (| > → ...), format characters.
_EDGE = r"[\s\p{Po}\p{Pd}\p{Pi}\p{Pf}\p{Pc}\p{Sm}\p{Cf}\p{Sk}]+"
_EDGE_RE = regex.compile(rf"^{_EDGE}|{_EDGE}$")
_EDGE_CHAR_RE = regex.compile(_EDGE)
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
# Sentence end: ., !, ? after two letters, maybe closed by a bracket or quote ("word)." but not
# "23. Juni" or "U.S"), or CJK full stops.
_SENTENCE_END_RE = regex.compile(r"(?:(?<=\p{L}\p{L}[)\]\"'”’»]*)[.!?…]|[?!])[\"'”’»)\]]*(?=\s|$)|[。！？]")
# An ellipsis typed as dots ending a line after two letters ("변경합니다..", "and then..."): for a trail
# without a root, the end of a sentence as "…" is (menu paths in instructions end so: "60 > value > ...").
_DOTS_END_RE = regex.compile(r"(?<=\p{L}\p{L})\.{2,}\s*$")
# A body line ends like a sentence (or a quote, or a colon introducing a list).
_BODY_END_RE = regex.compile(r"[.!?…:;\"'”“»)\]。！？]\s*$")
_LIST_ITEM_RE = regex.compile(r"[•·▪◦‣∙*-]\s|\d{1,2}[.)]\s")
_DIGIT_RE = regex.compile(r"\d")
# A quantity with a unit opening a short line: an ingredient or spec line ("200 g Zucker", "1 TL Zimt",
# "2 cups flour", "1 Pck. Vanillin-Zucker"). Such lists are content even far from the prose of a recipe.
# The units (each a literal, matched case-insensitively), as _trie_regex(..., every=True) makes them one regex.
_QUANTITY_UNIT_WORDS = (
    "g kg mg ml cl dl l el tl msp prise prisen pck pkg päckchen stück dose dosen dose/n bund zehe zehen scheibe"
    " scheiben becher liter litre gramm tasse tassen tbsp tsp tablespoon tablespoons teaspoon teaspoons cup cups"
    " oz lb lbs pound pounds pinch clove cloves cda cdas cdita cditas taza tazas cuillère cuillères pincée gousse"
    " gousses sachet sachets łyżka łyżki łyżkę łyżeczka łyżeczki łyżeczkę szklanka szklanki szklankę"
)
QUANTITY_UNITS = tuple(_QUANTITY_UNIT_WORDS.split())


def _trie_regex(words: Iterable[str], every: bool = False) -> str:
    """A regex shaped as a trie of these literal strings (one branch per next character: re tries an
    alternation's branches one after the other, at every position it tests). It matches exactly the strings
    (``every``: where more of the pattern follows them), or else a search with it finds a match exactly when
    one of them occurs."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        if ends and not every:  # (a search may stop here: longer strings through this node contain this one)
            return ""
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        if len(alts) == 1 and not ends:
            return alts[0]
        return "(?:" + "|".join(alts) + ")" + ("?" if ends else "")

    return build(trie)


_QUANTITY_RE = re.compile(
    r"(?:[•·▪◦‣∙*-]\s*)?(?:\d+(?:[.,/]\d+)?(?:\s*[-–]\s*\d+)?|[½¼¾⅓⅔])\s*[½¼¾⅓⅔]?\s*"
    + _trie_regex(QUANTITY_UNITS, every=True)
    + r"\.?\s+\S",
    re.IGNORECASE,
)
# A URL whose host urlsplit(url).hostname gives unchanged (BoilerplateStage.site_of).
_PLAIN_HOST_RE = re.compile(r"https?://([a-z0-9.-]+)(?:[/?#]|\Z)")
# Breadcrumb separators: arrows and guillemets may be glued to words, ">" needs spaces (and no "<" in
# the line: code, markup), "/", "|" and "::" need spaces and only count after a root word ("Home / News").
_SEP_STRONG_RE = regex.compile(r"[»›→]|\s>\s")
_SEP_STRONG_CHARS = ("»", "›", "→", ">")  # every match of _SEP_STRONG_RE holds one
_SEP_RE = regex.compile(r"\s*[»›→]\s*|\s+(?:>|/|\||::)\s+")
# In a line quoting with guillemets (« ... »), » closes a quote and is no separator.
_SEP_QUOTED_RE = regex.compile(r"\s*[›→]\s*|\s+(?:>|/|\||::)\s+")
_SEP_NO_GT_RE = regex.compile(r"\s*[»›→]\s*|\s+(?:/|\||::)\s+")


# The ASCII characters of _EDGE, taken from the pattern itself: str.strip() with them is exact as long
# as the characters it stops at are ASCII (anything else goes through _EDGE_RE).
_ASCII_EDGE = "".join(c for c in map(chr, range(128)) if regex.fullmatch(_EDGE, c))
# Cheap supersets (stdlib engine, plain characters) tried before the exact `regex` patterns: a line
# without any of these characters cannot match the pattern they guard.
# (_sentence_hint / _separator_hint test the same with substring searches; a test compares them.)
_SENTENCE_HINT_RE = re.compile(r"[.!?…。！？]")  # _SENTENCE_END_RE needs one of them
_SEP_HINT_RE = re.compile(r"[»›→>/|]|::")  # every breadcrumb separator contains one of them
# Blocks holding every Han, kana and Hangul character (a test checks the BMP against _CJK_RE); typographic
# quotes and dashes (U+2000 block) are outside, so most Latin lines skip _CJK_RE.
_CJK_HINT_RE = re.compile(
    r"[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U00010000-\U0010ffff]"
)
# _BODY_END_RE on a line without trailing whitespace is a test of its last character.
_QUANTITY_HEADS = frozenset("0123456789½¼¾⅓⅔•·▪◦‣∙*-")
_QUANTITY_BULLETS = frozenset("•·▪◦‣∙*-")
_QUANTITY_FRACTIONS = frozenset("½¼¾⅓⅔")
_BODY_END_CHARS = frozenset(".!?…:;\"'”“»)]。！？")


def is_quantity_line(stripped: str, words: int) -> bool:
    """An ingredient or spec line: a short line opened by a quantity with a unit ("200 g Zucker")."""
    if words > QUANTITY_MAX_WORDS or stripped[0] not in _QUANTITY_HEADS:
        return False
    if stripped[0] in _QUANTITY_BULLETS:
        # After the bullet and \s* (str.lstrip strips the same characters) a number must follow.
        rest = stripped[1:].lstrip()
        if not rest or not (rest[0].isdecimal() or rest[0] in _QUANTITY_FRACTIONS):
            return False
    return _QUANTITY_RE.match(stripped) is not None


def normalise(line: str) -> str:
    """Lookup key of a line: lower-cased, inner whitespace folded, surrounding punctuation stripped."""
    key = " ".join(line.split()).lower()
    short = key.strip(_ASCII_EDGE)
    if short:
        head, tail = short[0], short[-1]
        if (head >= "\x80" and _is_edge(head)) or (tail >= "\x80" and _is_edge(tail)):
            return _strip_edges(short)
    return short


_TABLE_CACHE_DIR = CACHE_DIR  # (a name of its own: tests point it elsewhere)


def _cached_bmp_table(build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()``, a table of one value per BMP code point, read from the copy an earlier process saved
    beside the package (`base.cached_table`, as the language stage's tables): ~0.1 s of scans over 65,536
    characters per fresh process for the three tables."""
    name = f"boilerplate{build.__name__.removeprefix('_build')}"
    return cached_table(_TABLE_CACHE_DIR, name, build, kernels, size=0x10000)


@functools.cache
def _key_classes() -> np.ndarray:
    return _cached_bmp_table(_build_key_classes)


def _build_key_classes() -> np.ndarray:
    """Per BMP code point, the key bits of kernels._line_key: KEY_EDGE (normalise strips it from a key's ends: _EDGE)
    and KEY_CJK (_CJK_RE, counted as half a word). Both are character classes: one search for runs of
    them over all code points marks the same characters as a test per character."""
    table = np.zeros(0x10000, dtype=np.uint8)
    every = "".join(map(chr, range(0x10000)))
    for pattern, bit in (
        (_EDGE, kernels.KEY_EDGE),
        (_CJK_RE.pattern, kernels.KEY_CJK),
        # line_facts: the sentence-end pattern's letters and spaces, _DIGIT_RE (all `regex`)
        (r"\p{L}", kernels.KEY_LETTER),
        (r"\s", kernels.KEY_RSPACE),
        (r"\d", kernels.KEY_RDIGIT),
    ):
        for m in regex.finditer(f"(?:{pattern})+", every):
            table[m.start() : m.end()] |= bit
    # Non-ASCII digits of the stdlib engine's \d (a quantity line may open with one: _may_be_quantity).
    for m in re.finditer(r"\d+", every[0x80:]):
        table[0x80 + m.start() : 0x80 + m.end()] |= kernels.KEY_XDIGIT
    table[[ord(c) for c in kernels.SEP_CHARS]] |= kernels.KEY_SEP
    return table


@functools.lru_cache(maxsize=16)
def _crumb_classes(
    roots: frozenset[str], root_line_heads: frozenset[str], glued_heads: frozenset[str] | None
) -> np.ndarray:
    """Per BMP code point, line_facts' breadcrumb bits for a stage's roots: CRUMB_ROOT_HEAD (a key starting
    with it may be a root line: every non-ASCII character, the ASCII ones of root_line_heads), CRUMB_ROOT_LAST
    (the last character of a root, as the case-insensitive root pattern matches it; every character without
    roots) and CRUMB_GLUED_HEAD (a glued trail may start with it; every character when glued_heads is None).
    Saved beside the package for these roots and heads (`base.cached_table`: ~5 ms of every fresh process)."""
    inputs = [sorted(roots), sorted(root_line_heads), None if glued_heads is None else sorted(glued_heads)]

    def build() -> np.ndarray:
        table = np.zeros(0x10000, dtype=np.uint8)
        table[0x80:] |= kernels.CRUMB_ROOT_HEAD
        for ch in root_line_heads:
            table[ord(ch)] |= kernels.CRUMB_ROOT_HEAD
        lasts = sorted({r[-1] for r in roots if r})
        if lasts:
            every = "".join(map(chr, range(0x10000)))
            last_re = regex.compile("|".join(map(regex.escape, lasts)), regex.IGNORECASE)
            for m in last_re.finditer(every):
                table[m.start() : m.end()] |= kernels.CRUMB_ROOT_LAST
        else:
            table |= kernels.CRUMB_ROOT_LAST
        if glued_heads is None:
            table |= kernels.CRUMB_GLUED_HEAD
        else:
            for head in glued_heads:
                if len(head) == 1 and ord(head) < 0x10000:
                    table[ord(head)] |= kernels.CRUMB_GLUED_HEAD
        return table

    return cached_table(_TABLE_CACHE_DIR, "boilerplate_crumbs", build, kernels, size=0x10000, inputs=inputs)


def _stdlib_marker(source: str) -> Path:
    """The marker file that says this Python's ``re`` compiled the pattern ``source`` in an earlier process
    (named by a hash of the source and the Python version). Only a speed-up: a missing or unwritable
    marker means compiling at construction."""
    digest = hashlib.sha256(f"{sys.version}\x00{source}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return _TABLE_CACHE_DIR / f"boilerplate_stdlib-{digest}.ok"


@functools.lru_cache(maxsize=1024)
def _compiled_pattern(pattern: str) -> re.Pattern:
    """One whole-line pattern for the stdlib engine (the prefilter's reports are confirmed with it)."""
    return re.compile(pattern)


def _strip_edges(key: str) -> str:
    """_EDGE_RE.sub("", key): the maximal runs of edge characters at both ends removed, one cached
    character test at a time (bullet lines, "• Item", make the regex the common case)."""
    start, end = 0, len(key)
    while start < end and _is_edge(key[start]):
        start += 1
    while end > start and _is_edge(key[end - 1]):
        end -= 1
    return key[start:end]


@functools.cache
def _is_edge(ch: str) -> bool:
    return _EDGE_CHAR_RE.fullmatch(ch) is not None


def line_hash(key: str) -> int:
    """64-bit xxh3 of a line key: what the recurring-line tables hold (deterministic across runs)."""
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass"))


def word_count(key: str) -> int:
    """Words in a normalised line; CJK characters count as half a word each."""
    words = len(key.split())
    if not key.isascii() and _CJK_HINT_RE.search(key):
        cjk = len(_CJK_RE.findall(key))
        if cjk:
            words += cjk // 2
    return words


def _key_words(key: str) -> int:
    """word_count of a key made by normalise: its words are separated by single spaces and it has no
    other whitespace (lower-casing makes none), so counting spaces is counting words."""
    if not key:
        return 0
    words = key.count(" ") + 1
    if not key.isascii() and _CJK_HINT_RE.search(key):
        cjk = len(_CJK_RE.findall(key))
        if cjk:
            words += cjk // 2
    return words


def sentence_end(text: str) -> bool:
    return _sentence_hint(text) and _SENTENCE_END_RE.search(text) is not None


def _sentence_hint(text: str) -> bool:
    """_SENTENCE_HINT_RE.search(text) as substring tests (faster than a character-class search)."""
    return (
        "." in text
        or "!" in text
        or "?" in text
        or (not text.isascii() and ("…" in text or "。" in text or "！" in text or "？" in text))
    )


def _separator_hint(text: str) -> bool:
    """_SEP_HINT_RE.search(text) as substring tests."""
    return (
        "/" in text
        or "|" in text
        or ">" in text
        or "::" in text
        or (not text.isascii() and ("»" in text or "›" in text or "→" in text))
    )


def looks_like_prose(text: str, words: int) -> bool:
    return words >= PROSE_MIN_WORDS or sentence_end(text)


def _first_chars(items: Any) -> tuple[frozenset[str], bool] | None:
    """Characters a stdlib-parsed pattern can start with: (literal characters, may start with \\d);
    None when unknown (a class, `.`, case-insensitive group, ...). Used to try only the patterns that
    can match a line's first character; a pattern that is unknown here is always tried."""
    chars: set[str] = set()
    digit = False
    for op, av in items:
        nullable = False
        if op is sre_parse.LITERAL:
            chars.add(chr(av))
        elif op is sre_parse.IN:
            for iop, iav in av:
                if iop is sre_parse.LITERAL:
                    chars.add(chr(iav))
                elif iop is sre_parse.RANGE and iav[1] - iav[0] <= 256:
                    chars.update(map(chr, range(iav[0], iav[1] + 1)))
                elif iop is sre_parse.CATEGORY and iav is sre_parse.CATEGORY_DIGIT:
                    digit = True
                else:
                    return None
        elif op is sre_parse.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                return None
            first = _first_chars(sub)
            if first is None:
                return None
            chars |= first[0]
            digit |= first[1]
            nullable = _nullable(sub)
        elif op is sre_parse.BRANCH:
            for alt in av[1]:
                first = _first_chars(alt)
                if first is None:
                    return None
                chars |= first[0]
                digit |= first[1]
            nullable = any(_nullable(alt) for alt in av[1])
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            low, _high, sub = av
            first = _first_chars(sub)
            if first is None:
                return None
            chars |= first[0]
            digit |= first[1]
            nullable = low == 0 or _nullable(sub)
        else:
            return None
        if not nullable:
            return frozenset(chars), digit
    # Every item may match nothing: the first character still comes from one of them (keys are
    # never empty), so the union is right.
    return frozenset(chars), digit


def _nullable(items: Any) -> bool:
    """Whether a parsed (sub)pattern can match the empty string (conservative: True when unsure)."""
    for op, av in items:
        if op in (sre_parse.LITERAL, sre_parse.IN, sre_parse.ANY, sre_parse.NOT_LITERAL, sre_parse.CATEGORY):
            return False
        if op is sre_parse.SUBPATTERN:
            if not _nullable(av[3]):
                return False
        elif op is sre_parse.BRANCH:
            if not any(_nullable(alt) for alt in av[1]):
                return False
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT) and av[0] > 0 and not _nullable(av[2]):
            return False
    return True


# A stage unpickled in a worker (or copied for the runner's warm-up) rebuilds its tables in _build: the
# pure parts below are kept per process, so forked workers inherit them from the parent's first build.
@functools.lru_cache(maxsize=4096)
def _pattern_first(wrapped: str) -> tuple[frozenset[str], bool] | None:
    """_first_chars of one wrapped whole-line pattern (None: unknown, always try the pattern)."""
    try:
        return _first_chars(sre_parse.parse(wrapped))
    except Exception:  # noqa: BLE001 - private parser: when in doubt, always try the pattern
        return None


def _wrap_pattern(pattern: str) -> str:
    """A pack pattern as one branch of an alternation over lower-cased keys: only a pattern with capitals
    needs case-insensitive matching (a global IGNORECASE makes the whole alternation about 3x slower)."""
    return f"(?i:{pattern})" if pattern != pattern.lower() else f"(?:{pattern})"


def _may_start_with(wrapped: str, ch: str) -> bool:
    """Whether a line starting with ``ch`` could match the wrapped whole-line pattern."""
    first = _pattern_first(wrapped)
    return first is None or ch in first[0] or (first[1] and ch.isdecimal())


@functools.lru_cache(maxsize=16)
def _phrase_hint_re(phrases: tuple[str, ...]) -> re.Pattern:
    """The trie regex of the contains-phrases, compiled."""
    return re.compile(_trie_regex(phrases))


def available_languages() -> list[str]:
    """Language packs shipped with the package (without ``common``)."""
    root = resources.files(PACK_PACKAGE).joinpath(*PACK_DIR)
    names = sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))
    return [n for n in names if n != COMMON_PACK]


# libyaml's parser builds the same objects as the pure-Python one ~10x faster (~0.1 s of the stage's
# set-up for the 11 shipped packs); PyYAML without libyaml has no CSafeLoader.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_pack(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader (C or Python)


_PACK_CACHE_VERSION = 1  # raise when what _read_shipped_pack makes of a pack's text changes


@functools.cache
def _read_shipped_pack(name: str) -> dict[str, Any]:
    """A shipped pack, parsed once per process (callers must not modify it): from the copy an earlier process
    saved beside the package (marshal, ~0.4 ms for all the packs, against ~22 ms of YAML), its file name
    holding a hash of the pack's text; an unreadable copy, or none, is parsed and saved."""
    data = resources.files(PACK_PACKAGE).joinpath(*PACK_DIR, f"{name}.yaml").read_bytes()
    digest = hashlib.sha256(data + repr(_PACK_CACHE_VERSION).encode()).hexdigest()[:16]
    return cached_build(
        _TABLE_CACHE_DIR / f"boilerplate_pack-{name}-{digest}.marshal",
        _read_marshalled_pack,
        lambda: _check_pack(_parse_pack(_text_mode(data.decode("utf-8"))) or {}, f"{name}.yaml"),
        _marshalled_pack,
    )


def _text_mode(text: str) -> str:
    """``text`` as a file opened in text mode reads it (universal newlines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_marshalled_pack(data: bytes) -> dict[str, Any] | None:
    pack = marshal.loads(data)
    return pack if isinstance(pack, dict) else None


def _marshalled_pack(pack: dict[str, Any]) -> bytes | None:
    try:  # (YAML has values marshal cannot hold, e.g. dates: such a pack is parsed in every process)
        return marshal.dumps(pack)
    except ValueError:
        return None


def _check_pack(pack: Any, where: str) -> dict[str, Any]:
    if not isinstance(pack, dict):
        raise ValueError(f"boilerplate pack {where}: expected a mapping at the top level")
    for key in pack:  # a misspelt 'rules' loaded an empty pack without a word
        if key not in PACK_TOP_KEYS:
            close = difflib.get_close_matches(str(key), sorted(PACK_TOP_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {sorted(PACK_TOP_KEYS)})"
            raise ValueError(f"boilerplate pack {where}: unknown key {key!r}{hint}")
    rules = pack.get("rules") or {}
    if not isinstance(rules, dict):
        raise ValueError(f"boilerplate pack {where}: 'rules' must map rule names to entries")
    for rule, entry in rules.items():
        if not isinstance(rule, str):
            raise ValueError(f"boilerplate pack {where}: rules: rule names must be strings, got {_shown(rule)}")
        if not isinstance(entry, dict):
            raise ValueError(f"boilerplate pack {where}: rule {rule!r} must be a mapping")
        unknown = set(entry) - PACK_KEYS
        if unknown:
            first = sorted(map(str, unknown))[0]
            close = difflib.get_close_matches(first, sorted(PACK_KEYS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"boilerplate pack {where}: rule {rule!r} has unknown keys {sorted(unknown)} "
                f"({hint}allowed: {sorted(PACK_KEYS)})"
            )
        for key in ("lines", "patterns", "phrases"):
            _check_strings(entry.get(key), where, f"rules.{rule}.{key}")
        ends = entry.get("ends_article")
        if ends is not None and not isinstance(ends, bool):  # anything else was silently ignored
            got = _shown(ends)
            raise ValueError(f"boilerplate pack {where}: rules.{rule}.ends_article must be true or false, got {got}")
    roots = pack.get("breadcrumb_roots") or []
    if not isinstance(roots, list):
        raise ValueError(f"boilerplate pack {where}: 'breadcrumb_roots' must be a list")
    _check_strings(roots, where, "breadcrumb_roots")
    definitions = pack.get("definitions") or {}
    if not isinstance(definitions, dict) or not all(isinstance(v, str) for v in definitions.values()):
        raise ValueError(f"boilerplate pack {where}: 'definitions' must map names to regex strings")
    expanded = {
        rule: {**entry, "patterns": [_expand(str(p), definitions, f"{where} rule {rule!r}") for p in entry["patterns"]]}
        if entry.get("patterns")
        else entry
        for rule, entry in rules.items()
    }
    return {**pack, "rules": expanded}


def _check_strings(values: Any, where: str, path: str) -> None:
    """A pack's lines, patterns, phrases and roots are lists of strings (or left empty). str() of
    anything else would match something the author did not write: YAML reads ``- No`` as false and
    ``- 404`` as a number, and a lone string would be taken character by character."""
    if values is None:
        return
    if not isinstance(values, list):
        raise ValueError(f"boilerplate pack {where}: {path} must be a list of strings, got {_shown(values)}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"boilerplate pack {where}: {path}[{i}] must be a string (quote it), got {_shown(value)}")


def _shown(value: Any) -> str:
    """A wrong value in an error message: its type and a short repr."""
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"


# A pack's named sub-pattern in a pattern: {{name}}, defined under the pack's top-level `definitions`.
_DEFINITION_RE = re.compile(r"\{\{([\w-]+)\}\}")


def _expand(pattern: str, definitions: dict[str, str], where: str) -> str:
    """``pattern`` with each {{name}} replaced by the pack's definition of it, as a group (?:...)."""

    def definition(match: re.Match) -> str:
        name = match.group(1)
        if name not in definitions:
            close = difflib.get_close_matches(name, list(definitions), n=1)
            hint = f" (did you mean {{{{{close[0]}}}}}?)" if close else ""
            raise ValueError(f"boilerplate pack {where}: {{{{{name}}}}} is not in the pack's definitions{hint}")
        return f"(?:{definitions[name]})"

    return _DEFINITION_RE.sub(definition, pattern)


def _compile(pattern: str, where: str) -> regex.Pattern:
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as err:
        raise ValueError(f"boilerplate: bad regex {pattern!r} in {where}: {err}") from err


# Lines of prose (as normalise() gives them) that no whole-line pattern of boilerplate may match.
_PROSE_PROBES = (
    "the committee approved the new budget on tuesday after a debate that lasted more than six hours",
    "er sagte, dass die regierung die pläne im nächsten jahr umsetzen werde",
)


def _compile_user_pattern(pattern: str, where: str) -> regex.Pattern:
    """``_compile`` of a pattern from the config or a user's pack, refusing one that would empty documents:
    an empty pattern (a YAML list item left blank), or one matching an ordinary sentence (``.*``)."""
    if not pattern.strip():
        raise ValueError(f"boilerplate: empty pattern in {where}")
    compiled = _compile(pattern, where)
    for probe in _PROSE_PROBES:
        if compiled.fullmatch(probe):
            raise ValueError(
                f"boilerplate: pattern {pattern!r} in {where} matches an ordinary sentence ({probe!r}): it would"
                " remove the text of every document; a whole-line pattern must match only the boilerplate lines"
            )
    return compiled


def _phrase_table(phrases: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The phrases for kernels.phrase_lines: (per BMP code point c, where the phrases starting with c begin
    in the sorted list, up to c + 1's entry; their code points one after another; where each begins and
    ends). None without phrases, or when one starts with an astral character (then the trie decides)."""
    if not phrases or any(ord(p[0]) >= 0x10000 for p in phrases):
        return None
    ordered = sorted(phrases, key=lambda p: ord(p[0]))
    counts = np.bincount([ord(p[0]) for p in ordered], minlength=0x10000)
    starts = np.zeros(0x10001, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    points = code_points("".join(ordered)).astype(np.int64)
    bounds = np.zeros(len(ordered) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in ordered], out=bounds[1:])  # a str's length is its number of code points
    return starts, points, bounds


def _bounded(phrase: str) -> tuple[bool, bool]:
    """Whether a contains-phrase needs a word boundary before / after it (not for CJK edges)."""
    head, tail = phrase[0], phrase[-1]
    return (head.isalnum() and not _CJK_RE.match(head), tail.isalnum() and not _CJK_RE.match(tail))


def _find_phrase(key: str, phrase: str, head: bool, tail: bool) -> bool:
    start = key.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        if (not head or start == 0 or not key[start - 1].isalnum()) and (
            not tail or end == len(key) or not key[end].isalnum()
        ):
            return True
        start = key.find(phrase, start + 1)
    return False


class RuleVerdicts(NamedTuple):
    """What the rules decided about a document's lines (``BoilerplateStage.rule_verdicts``)."""

    verdict: list[str | None]  # per line: the rule removing it, or None (kept)
    prefixes: dict[int, str]  # line -> breadcrumb prefix cut from it
    new_text: dict[int, str]  # line -> what is left of it after the cut
    infos: Sequence[tuple[Any, ...] | None]  # per line: _line_info (None for blank lines), made when read
    stretch: tuple[int, int] | None  # the article stretch (first line, line after the last)
    markers: list[int]  # lines of comment/widget headings after the first prose
    # Lines every rule kept (not cut either), in order, when the article stretch was looked for: the
    # scorer's candidates are those navigation and the margin rule did not remove since.
    scored: list[int] | None = None
    # Per line: its row in the line cache's columns ``cols`` (kernels.LC_*), when the compiled loop ran.
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    # The document's code points (the lines joined by newlines) and where each line starts in them (one
    # more: their size + 1), when the compiled loop ran: _scorer_inputs gathers the candidates' from them.
    points: np.ndarray | None = None
    starts: np.ndarray | None = None


# Features of one line for the line scorer, in the order of the model's columns.
SCORER_FEATURES = (
    "log_chars",
    "log_words",
    "prose",
    "body",
    "ends_colon",
    "list_item",
    "digit_ratio",
    "upper_ratio",
    "symbol_ratio",
    "titlecase_ratio",
    "url_mail_copyright",
    "inside_stretch",
    "log_distance_outside",
    "log_from_stretch_start",
    "log_to_stretch_end",
    "position",
    "log_removed_before",
    "log_removed_after",
    "prev_body",
    "prev_log_words",
    "next_body",
    "next_log_words",
    "window_body_share",
    "after_marker",
    "nav_item",
    "kept_outside",
    "repeated_in_doc",
    "function_word_ratio",
    "length_vs_stretch",
)
# Function words of the main languages: prose has many, headings, teasers, bylines and menus few.
_FUNCTION_WORDS = frozenset(
    " ".join(
        (
            "the a an of to in and or is are was for on with that this it as by at from be have not you we",
            "der die das den dem des ein eine einen und oder ist sind war für auf mit dass nicht sich es",
            "im zu von bei wir sie er auch wie aus nach noch",
            "le la les un une des du de et ou est sont pour sur avec que qui dans pas il elle nous vous en au",
            "el los las y o es son para con que en del por se lo una",
            "i w z na się nie jest do że to jak od za po",
            "il lo gli e che di per non una sono",
            "o os as um uma e que para com não em do da dos",
            "het een en van de is dat niet met op voor zijn",
        )
    ).split()
)
_TITLECASE_RE = re.compile(r"\b[A-ZÀ-ÖØ-ÞĀ-Ž]")
_URL_MAIL_COPY_RE = re.compile(r"©|\(c\)|@|https?:|www\.|copyright", re.IGNORECASE)


def _listed_teaser(stripped: str) -> bool:
    """A list item ending in "?" or "!" (a headline teaser in a widget list)."""
    return stripped[-1] in "?!" and _LIST_ITEM_RE.match(stripped) is not None


def scorer_candidates(lines: list[str], v: RuleVerdicts) -> list[int]:
    """Lines the scorer judges: the non-blank ones the rules kept (a breadcrumb-cut line stays)."""
    if v.scored is not None:
        # The same lines, from those the rule loop kept (a comprehension: faster than map(verdict.__getitem__)
        # on Python 3.11, whose specialised list indexing beats a method-wrapper call per line).
        verdict = v.verdict
        return [i for i in v.scored if verdict[i] is None]
    return [
        i
        for i, info in enumerate(v.infos)
        if info is not None and info[0] is not None and v.verdict[i] is None and i not in v.prefixes
    ]


_ASCII_DIGITS = b"0123456789"
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))
# What str.isspace() says about ASCII characters (\x1c-\x1f are separators too).
_ASCII_SPACE = bytes(c for c in range(128) if chr(c).isspace())


def _char_counts(text: str) -> tuple[int, int, int, int, int]:
    """(digits, uppercase, letters, letters-or-digits, spaces) as str.isdigit/isupper/isalpha/isalnum/
    isspace count them: the ASCII characters with bytes.translate (C speed), the others per character,
    or with one table lookup when there are many of them (Cyrillic, Greek, CJK lines)."""
    digits, upper, letters, alnum, spaces = _ascii_counts(text.encode("ascii", "ignore"))
    if text.isascii():
        return digits, upper, letters, alnum, spaces
    rest = _ASCII_RUN_RE.sub("", text)
    if len(rest) >= _TABLE_MIN_CHARS:
        points = code_points(rest)
        if int(points.max()) < 0x10000:
            more = _bmp_char_classes()[points].sum(axis=0).tolist()
            return digits + more[0], upper + more[1], letters + more[2], alnum + more[3], spaces + more[4]
    return (
        digits + sum(map(str.isdigit, rest)),
        upper + sum(map(str.isupper, rest)),
        letters + sum(map(str.isalpha, rest)),
        alnum + sum(map(str.isalnum, rest)),
        spaces + sum(map(str.isspace, rest)),
    )


_ASCII_RUN_RE = re.compile("[\x00-\x7f]+")
# Non-ASCII characters from which a table lookup (fixed numpy cost) beats five per-character passes.
_TABLE_MIN_CHARS = 40


def _ascii_counts(raw: bytes) -> tuple[int, int, int, int, int]:
    size = len(raw)
    digits = size - len(raw.translate(None, _ASCII_DIGITS))
    upper = size - len(raw.translate(None, _ASCII_UPPER))
    letters = upper + size - len(raw.translate(None, _ASCII_LOWER))
    return digits, upper, letters, letters + digits, size - len(raw.translate(None, _ASCII_SPACE))


_CHAR_CLASS_BITS = (kernels.DIGIT, kernels.UPPER, kernels.ALPHA, kernels.ALNUM, kernels.SPACE)


@functools.cache
def _bmp_char_classes() -> np.ndarray:
    """Per code point of the Basic Multilingual Plane: str.isdigit/isupper/isalpha/isalnum/isspace as
    0/1 columns, so a non-ASCII line is counted with one table lookup (astral text is counted per
    character). Read off `_shape_classes`' bits."""
    bits = np.array(_CHAR_CLASS_BITS, dtype=np.uint8)
    return ((_shape_classes()[:, None] & bits) != 0).astype(np.int64)


@functools.lru_cache(maxsize=LINE_CACHE_MAX_LINES)
def _line_shape(stripped: str) -> tuple[float, ...]:
    """Features of a line that depend on its text alone: (log1p chars, ends with a colon, list item,
    digit / uppercase-of-letters / symbol ratios, title-case word ratio, URL/mail/copyright sign,
    function-word ratio, characters)."""
    chars = len(stripped)
    digits, upper, letters, alnum, spaces = _char_counts(stripped)
    lowered = stripped.lower()
    tokens = lowered.split()
    n_tokens = max(len(tokens), 1)
    return (
        math.log1p(chars),
        float(stripped.endswith(":")),
        float(_LIST_ITEM_RE.match(stripped) is not None),
        digits / chars,
        upper / (letters or 1),
        (chars - alnum - spaces) / chars,
        len(_TITLECASE_RE.findall(stripped)) / n_tokens,
        float(_url_mail_copyright(stripped, lowered)),
        sum(map(_FUNCTION_WORDS.__contains__, tokens)) / n_tokens,
        float(chars),
    )


def _object_array(values: list[Any]) -> np.ndarray:
    """``values`` as a 1-d object array (the same objects)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _hash_bits(hashes: np.ndarray, bits: int = 16) -> np.ndarray:
    """Per value of a hash's low ``bits`` bits: whether one of ``hashes`` (uint64) has them (kernels.key_hashes'
    quick test before its binary search)."""
    table = np.zeros(1 << bits, dtype=np.bool_)
    table[hashes & np.uint64((1 << bits) - 1)] = True
    return table


class _KeyView(Sequence[str]):
    """The keys of _new_line_infos, from their UTF-8 bytes (joined by newlines, ``ends[j]``: where key j
    ends), each decoded when asked for: decoding (or splitting) all of them cost more than the lookups that
    need them."""

    def __init__(self, data: bytes, ends: np.ndarray) -> None:
        self._data = data
        self._ends = ends
        self._ends_list: list[int] | None = None  # (as ints at the first key asked for: numpy scalars are slow)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, j: int) -> str:  # type: ignore[override]
        ends = self._ends_list
        if ends is None:
            ends = self._ends_list = self._ends.tolist()
        return self._data[ends[j - 1] + 1 if j else 0 : ends[j]].decode("utf-8")


@functools.cache
def _shape_classes() -> np.ndarray:
    return _cached_bmp_table(_build_shape_classes)


def _build_shape_classes() -> np.ndarray:
    """Per BMP code point, the kernel's class bits: str.isdigit/isupper/isalpha/isalnum/isspace, and
    whether the stdlib regex engine counts it as a word character (for \b)."""
    chars = [chr(c) for c in range(0x10000)]
    tests = (str.isdigit, str.isupper, str.isalpha, str.isalnum, str.isspace)
    columns = [np.array(list(map(test, chars)), dtype=np.uint8) for test in tests]
    classes = sum(column * bit for column, bit in zip(columns, _CHAR_CLASS_BITS, strict=True))
    for bit, pattern in (
        (kernels.WORD, re.compile(r"\w")),
        (kernels.RE_SPACE, regex.compile(r"\s")),
        (kernels.RE_DIGIT, regex.compile(r"\d")),
    ):
        found = np.array([pattern.match(chr(c)) is not None for c in range(0x10000)], dtype=np.uint8)
        classes = classes + found * bit
    return classes.astype(np.uint8)


@functools.cache
def _lower_table() -> np.ndarray:
    return _cached_bmp_table(_build_lower_table)


@functools.cache
def _recurring_classes() -> np.ndarray:
    """The first pass's table of the three (``kernels.recurring_classes``: ~1 ms to make)."""
    return kernels.recurring_classes(_shape_classes(), _lower_table(), _key_classes())


def _build_lower_table() -> np.ndarray:
    """Per BMP code point, the code point of its lower case (kernels.NO_LOWER when that is several
    characters: such lines are left to _line_shape)."""
    lowered = [chr(c).lower() for c in range(0x10000)]
    return np.array([ord(x) if len(x) == 1 else kernels.NO_LOWER for x in lowered], dtype=np.uint32)


@functools.cache
def _shape_flags() -> np.ndarray:
    return kernels.shape_flags(_lower_table())


@functools.cache
def _word_lower() -> np.ndarray:
    """kernels.candidate_words' table, per BMP code point: its lower case (_lower_table) when that is a word
    character (_shape_classes' WORD), -1 when not, kernels.WORD_LOWER_PYTHON for Σ and the characters whose
    lower case is several characters (int32; one lookup a character instead of two dependent ones)."""
    lower = _lower_table()
    python = (lower == kernels.NO_LOWER) | (lower >= 0x10000)
    python[kernels.CAPITAL_SIGMA] = True
    within = np.where(python, 0, lower)
    table = np.where((_shape_classes()[within] & kernels.WORD) != 0, within, -1).astype(np.int32)
    table[python] = kernels.WORD_LOWER_PYTHON
    return table


@functools.cache
def _function_word_keys() -> np.ndarray:
    """_FUNCTION_WORDS as the kernel's packed keys (a leading 1, then 10 bits per character) in an
    open-addressing table (a probe or two per token instead of a binary search)."""
    keys = []
    for word in _FUNCTION_WORDS:
        if len(word) > kernels.KEY_MAX_CHARS or max(map(ord, word)) >= kernels.KEY_MAX_POINT:
            raise ValueError(f"function word {word!r} cannot be packed into a kernel key")
        key = 1
        for ch in word:
            key = key * kernels.KEY_MAX_POINT + ord(ch)
        keys.append(key)
    size = table_size(len(keys))
    table = np.zeros(size, dtype=np.int64)
    for key in sorted(keys):
        s = int(kernels.key_slot(key, size - 1))
        while table[s]:
            s = (s + 1) & (size - 1)
        table[s] = key
    return table


def _url_mail_copyright(stripped: str, lowered: str) -> bool:
    """Whether _URL_MAIL_COPY_RE finds a match in the line (``lowered`` is ``stripped.lower()``), with
    substring tests on the lower-cased line. Exact unless the line has one of the characters that
    case-insensitive matching folds to an ASCII letter of the pattern (İ, ı → i, ſ → s; no other
    non-ASCII character matches those letters or lower-cases to them): then the pattern decides."""
    if not stripped.isascii() and ("İ" in stripped or "ı" in stripped or "ſ" in stripped):
        return _URL_MAIL_COPY_RE.search(stripped) is not None
    return (
        "@" in lowered
        or "©" in lowered
        or "(c)" in lowered
        or "http:" in lowered
        or "https:" in lowered
        or "www." in lowered
        or "copyright" in lowered
    )


def line_features(lines: list[str], v: RuleVerdicts, cand: list[int]) -> np.ndarray:
    """One row of SCORER_FEATURES per candidate line (text-only: shape of the line, its neighbours
    among the candidates, where it sits relative to the article stretch and to what the rules removed).

    The per-line facts are gathered here (rule facts from ``v.infos``, counts from the compiled shape
    pass), the rows come from one compiled loop (kernels.scorer_rows); every value is what a per-row
    Python loop gives (math.log1p / math.log, exact integer counts), to the last bit. A new feature
    needs its column filled in _scorer_inputs (scorer_rows fills kernels.ROW_FEATURES)."""
    return _scorer_inputs(lines, v, cand).x


def _cut_lines(
    name: str,
    lines: list[str],
    verdict: list[str | None],
    cuts: dict[int, str],
    rest: dict[int, str],
    removed: list[Removal],
) -> tuple[list[str], dict[str, int]]:
    """The kept lines (those with a cut prefix as ``rest`` of it) and the count per rule; each removal (whole
    lines, cut prefixes) appended to ``removed`` in line order."""
    out: list[str] = []
    append_removal = removed.append
    counts: dict[str, int] = {}
    at = 0  # where the line starts in the text (the removal's offsets)
    for i, line in enumerate(lines):
        rule = verdict[i]
        start, at = at, at + len(line) + 1
        if rule is not None:
            text = line.rstrip("\r")
            append_removal(Removal(name, rule, text, 1, None, start, start + len(text)))
            counts[rule] = counts.get(rule, 0) + 1
            continue
        if i in cuts:
            append_removal(Removal(name, "breadcrumb-prefix", cuts[i], 0, None, start, start + len(cuts[i])))
            counts["breadcrumb-prefix"] = counts.get("breadcrumb-prefix", 0) + 1
            line = rest[i]
        out.append(line)
    return out, counts


def _removed_lines_at(
    doc: Document, verdict: list[str | None], line_starts: np.ndarray, picked: list[int] | None = None
) -> tuple[list[int], list[int], list[int], list[int]]:
    """offsets.removed_lines_at for a text without carriage returns (each removed line's text is the line
    itself), from where each line starts (``line_starts``, one more: the text's length + 1): the same offsets
    and the same cuts noted, from a dozen numpy calls instead of Python-level passes over every line. Also
    returns the cuts (their starts, their ends). ``picked``: the removed lines' numbers, when the caller has them."""
    if picked is None:
        picked = list(compress(range(len(verdict)), verdict))
    if len(picked) <= _FEW_REMOVED_LINES and len(verdict) <= _FEW_LINES:
        return _few_removed_lines_at(doc, picked, bool(verdict[-1]), line_starts.tolist())
    removed = np.array(picked, dtype=np.int64)
    starts = line_starts[removed]
    cut_ends = line_starts[removed + 1]  # the next line's start
    ends = cut_ends - 1  # the line's end
    if verdict[-1]:
        cut_ends[-1] -= 1  # the last line has no newline after it
    # runs of removed lines as one cut each (as removed_lines_at)
    new_run = starts[1:] != cut_ends[:-1]
    run_starts = np.concatenate((starts[:1], starts[1:][new_run])).tolist()
    run_ends = np.concatenate((cut_ends[:-1][new_run], cut_ends[-1:])).tolist()
    note_cuts(doc, run_starts, run_ends)
    return starts.tolist(), ends.tolist(), run_starts, run_ends


# Up to this many removed lines of a text of up to _FEW_LINES lines, _removed_lines_at's offsets in plain Python
# (a short page: its dozen numpy calls cost more than a loop over the few lines).
_FEW_REMOVED_LINES = 24
_FEW_LINES = 256


def _few_removed_lines_at(
    doc: Document, removed: list[int], last_removed: bool, line_starts: list[int]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """_removed_lines_at for a few removed lines (``removed``: their numbers, in order; ``last_removed``: whether
    the text's last line is one): the same offsets and cuts, a Python step per removed line."""
    if not removed:
        return [], [], [], []
    at = [line_starts[i] for i in removed]
    cut_ends = [line_starts[i + 1] for i in removed]  # the next line's start
    ends = [e - 1 for e in cut_ends]  # the line's end
    if last_removed:
        cut_ends[-1] -= 1  # the last line has no newline after it
    # runs of removed lines as one cut each (as removed_lines_at)
    run_starts = [at[0]]
    run_ends = []
    for k in range(1, len(at)):
        if at[k] != cut_ends[k - 1]:
            run_ends.append(cut_ends[k - 1])
            run_starts.append(at[k])
    run_ends.append(cut_ends[-1])
    note_cuts(doc, run_starts, run_ends)
    return at, ends, run_starts, run_ends


def _rule_scan_input(
    data: bytes, ends: np.ndarray, chars: np.ndarray, words: np.ndarray, max_words: int
) -> tuple[bytes, np.ndarray]:
    """The keys ``data`` (joined by newlines; ``ends[j]``: where key j ends; ``chars``, ``words``: its characters
    and words) as the prefilter scans them: the keys no pack rule can take emptied, their newlines kept (the ends
    shifted): longer than MAX_WHOLE_LINE_CHARS characters (no whole-line pattern is tried on them) and with no
    word or more than ``max_words`` (no phrase counts on them); ~18 % of the trafilatura pages' key bytes. Every
    other key is the same line of the same bytes, so its reports are the same (no expression or phrase holds a
    newline); an emptied key can only get reports _pattern_rules drops (an expression matching the empty line)."""
    emptied = np.flatnonzero((chars > MAX_WHOLE_LINE_CHARS) & ((words == 0) | (words > max_words)))
    if not emptied.size:
        return data, ends
    stops = ends[emptied]
    starts = np.where(emptied > 0, ends[np.maximum(emptied - 1, 0)] + 1, 0)
    parts = []
    at = 0
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        parts.append(data[at:start])
        at = stop
    parts.append(data[at:])
    cut = np.zeros(ends.size, dtype=np.int64)
    cut[emptied] = stops - starts
    return b"".join(parts), ends - np.cumsum(cut)


def _without_cuts(text: str, starts: list[int], ends: list[int]) -> str:
    """``text`` without the spans ``text[starts[i]:ends[i]]`` (in order, not overlapping): the kept lines
    joined as _write_out joins them, when the spans are removed lines with their newlines (a slice per run
    of kept lines instead of a string per line)."""
    return "".join([text[a:b] for a, b in zip([0, *ends], [*starts, len(text)], strict=True)])


class ScorerInputs(NamedTuple):
    """What the line scorer's passes share about a document's candidate lines (_scorer_inputs)."""

    x: np.ndarray  # line_features
    points: np.ndarray  # code points of the candidate lines stripped (str.strip), joined by newlines
    removed: np.ndarray  # per line + 1: lines removed by the rules before it (prefix sum)
    facts: np.ndarray  # (candidates, kernels.FACT_COLUMNS): what scorer_rows read
    rows: np.ndarray  # the candidates' line numbers (int64)
    # True: no candidate line holds a character outside the BMP (the shape pass flags every line with one).
    bmp: bool = False


def _scorer_inputs(lines: list[str], v: RuleVerdicts, cand: list[int]) -> ScorerInputs:
    """line_features and what it is computed from. The candidate lines' code points are gathered and
    stripped once (candidate_words reads the same code points: stripping takes no word character away)."""
    n = len(lines)
    m = len(cand)
    x = np.empty((m, len(SCORER_FEATURES)), dtype=np.float64)
    # The candidates' code points: gathered by the kernel from the document's, or from their text joined.
    if v.points is not None and v.starts is not None:
        points, starts = v.points, v.starts
    else:
        points, starts = code_points("\n".join(map(lines.__getitem__, cand))), _NO_KEYS
    # The removed lines (a rule name is a non-empty string: compress picks them, one C-level pass).
    removed_lines = np.zeros(n, dtype=np.uint8)
    removed_lines[list(compress(range(n), v.verdict))] = 1
    facts = np.empty((m, kernels.FACT_COLUMNS), dtype=np.int64)
    rows = np.asarray(cand, dtype=np.int64)
    if not m:
        removed = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(removed_lines, out=removed[1:])
        return ScorerInputs(x, _NO_POINTS, removed, facts, rows)
    start, end = v.stretch if v.stretch is not None else (0, 0)
    if v.rows is not None and v.cols is not None:
        # The candidates' rows of the line cache's columns, gathered at once.
        kernels.gather_facts(v.cols, v.rows, rows, _LINE_FACT_COLUMNS, _FACT_COLUMNS, facts)
    else:
        facts[:, kernels.COL_ROW] = rows
        # One C-level transposition of the candidates' _line_info tuples into columns.
        _key, words, _rule, _crumb, prose, nav, body_chars, keep = zip(*map(v.infos.__getitem__, cand), strict=True)  # type: ignore[misc]
        # (Through array/fromiter: numpy converts a tuple assigned to a column element by element, slower.)
        facts[:, kernels.COL_WORDS] = array("q", words)
        facts[:, kernels.COL_PROSE] = np.fromiter(prose, dtype=np.bool_, count=m)
        facts[:, kernels.COL_NAV] = np.fromiter(nav, dtype=np.bool_, count=m)
        facts[:, kernels.COL_BODY_CHARS] = array("q", body_chars)
        facts[:, kernels.COL_KEEP] = np.fromiter(keep, dtype=np.bool_, count=m)
    # The removed-lines prefix sum, the shape counts (kernels.score_line_shapes) and scorer_rows in one call.
    removed, fallback, points = kernels.scorer_inputs(
        points,
        starts,
        _shape_classes(),
        _lower_table(),
        _function_word_keys(),
        _shape_flags(),
        removed_lines,
        facts,
        bisect.bisect_left(cand, start),
        bisect.bisect_left(cand, end),
        v.markers[0] if v.markers else n,
        _LOG1P_TABLE,
        _ROW_COLUMNS,
        x,
    )
    # Lines the shape pass cannot count exactly (astral characters, İ/ı/ſ): their shape from Python.
    for j in fallback.tolist():
        x[j, _SHAPE_COLUMNS] = _line_shape(lines[cand[j]].strip())[: len(_SHAPE_COLUMNS)]
    return ScorerInputs(x, points, removed, facts, rows, bmp=not fallback.size)


# The facts _scorer_inputs takes from the line cache's columns, and those columns.
_FACT_COLUMNS = np.array(
    [kernels.COL_WORDS, kernels.COL_PROSE, kernels.COL_NAV, kernels.COL_BODY_CHARS, kernels.COL_KEEP], dtype=np.int64
)
_LINE_FACT_COLUMNS = np.array(
    [kernels.LC_WORDS, kernels.LC_PROSE, kernels.LC_NAV, kernels.LC_BODY, kernels.LC_KEEP], dtype=np.int64
)

# Where scorer_rows' features go among SCORER_FEATURES.
_ROW_COLUMNS = np.array([SCORER_FEATURES.index(name) for name in kernels.ROW_FEATURES], dtype=np.int64)
# scorer_rows' first columns are _line_shape's values, in its order (not its last: the character count).
_SHAPE_COLUMNS = _ROW_COLUMNS[: kernels.SHAPE_FEATURES].tolist()
_ENDS_COLON = SCORER_FEATURES.index("ends_colon")
_LIST_ITEM = SCORER_FEATURES.index("list_item")


# A byline between a headline and its date ("By Maria Lopez", "von Marta Orosz", "par ..."): such a line
# is not taken for the headline itself either.
_BYLINE_RE = regex.compile(r"(?i)(?:by|von|par|por|door|przez|di|от|(?:author|autor|auteur|autore|автор)\b:?)\s")
# A headline is a few words, not a sentence or a label: no full stop, colon, comma or semicolon at the
# end, no separators of breadcrumbs and page titles ("|", "»", ">", "/"), not starting in lower case.
HEADLINE_MIN_WORDS = 3
BYLINE_MAX_WORDS = 6
HEADLINE_MAX_WORDS = 20
_HEADLINE_BAD_END = ".:;,"
_HEADLINE_SEPARATORS = ("|", "»", " > ", " / ")
# A telephone number ("Reach Us +441904929220", "Call 0800 123 456"): a contact line, not a title.
_PHONE_RE = re.compile(r"\+\d{6,}|\d(?:[ /-]?\d){8,}")


def _starts_lowercase(text: str) -> bool:
    """Whether the first letter of ``text`` is a lower-case one ("weiterlesen 12 Minuten": a link, not a
    headline; scripts without case never are)."""
    for ch in text:
        if ch.isalpha():
            return ch.islower()
    return False


def _nonblank_lines(infos: list[tuple[Any, ...] | None], limit: int = -1) -> list[int]:
    """The lines with words, in order (the first ``limit`` of them when limit >= 0)."""
    if isinstance(infos, _RowInfos):
        found = infos.with_words()
        return found[:limit] if limit >= 0 else list(found)
    found = []
    for i, info in enumerate(infos):
        if info is not None and info[0] is not None:
            found.append(i)
            if len(found) == limit:
                break
    return found


def _opens_prose(verdict: list[str | None], infos: list[tuple[Any, ...] | None], i: int) -> bool:
    """Whether line ``i`` is kept and reads as prose (the first paragraph of a text)."""
    if isinstance(infos, _RowInfos):
        words, prose = infos.words_prose()
        return verdict[i] is None and prose[i] != 0 and words[i] >= SEEN_PROSE_MIN_WORDS
    info = infos[i]
    return verdict[i] is None and info is not None and info[4] and info[1] >= SEEN_PROSE_MIN_WORDS


def _kept_headlines(lines: list[str], verdict: list[str | None], infos: list[tuple[Any, ...] | None]) -> list[int]:
    """Lines the scorer removed that head the text below them, a few words (_headline_like) with a kept
    paragraph of prose right below:

    * the page's first line ("Terms of Sale" / "1. Scope. These terms apply to ..."): the title;
    * the line right above the date line of an article (a short byline may stand in between), with
      the article's first paragraph right below the date ("Storm floods northern districts" /
      "March 4, 2024" / "The storm brought ..."): the date dates the text that follows, so the line
      above it heads that text, not the page."""
    found: list[int] = []
    top = _nonblank_lines(infos, 2)
    if (
        len(top) == 2
        and verdict[top[0]] == SCORER_RULE
        and _opens_prose(verdict, infos, top[1])
        and _headline_like(lines[top[0]].strip(), infos[top[0]][1])  # type: ignore[index]
    ):
        found.append(top[0])
    if "date-line" not in verdict:  # (C-level: most pages have no date line)
        return found
    # The date lines found in C, then their neighbours with words (not a Python pass over every line).
    for date in compress(range(len(verdict)), map(operator.eq, verdict, repeat("date-line"))):
        above = _nonblank_neighbour(infos, date, -1)
        below = _nonblank_neighbour(infos, date, 1)
        if above is None or below is None or not _opens_prose(verdict, infos, below):
            continue
        i = above
        if (
            verdict[above] in (None, SCORER_RULE)
            and infos[above][1] <= BYLINE_MAX_WORDS  # type: ignore[index]
            and _BYLINE_RE.match(lines[above].strip())
        ):
            # (the byline itself stays as the scorer judged it; without a line above it, it is not one)
            i = _nonblank_neighbour(infos, above, -1)  # type: ignore[assignment]
            if i is None:
                i = above
        if verdict[i] == SCORER_RULE and i not in found and _headline_like(lines[i].strip(), infos[i][1]):  # type: ignore[index]
            found.append(i)
    return found


def _headline_like(stripped: str, words: int) -> bool:
    """A few words, not a sentence, label, list item, byline or breadcrumb (see HEADLINE_MIN_WORDS)."""
    return (
        HEADLINE_MIN_WORDS <= words <= HEADLINE_MAX_WORDS
        and stripped[-1] not in _HEADLINE_BAD_END
        and not any(sep in stripped for sep in _HEADLINE_SEPARATORS)
        and _LIST_ITEM_RE.match(stripped) is None
        and _BYLINE_RE.match(stripped) is None
        and not _starts_lowercase(stripped)
        and _PHONE_RE.search(stripped) is None
    )


# A corpus-wide recurring line kept inside prose is a sentence of at least this many words.
RECURRING_SENTENCE_MIN_WORDS = 6


def _recurring_sentences_in_prose(
    lines: list[str], verdict: list[str | None], infos: list[tuple[Any, ...] | None], site_recurring: frozenset[int]
) -> list[int]:
    """Lines removed as recurring that are a sentence of the text, not template: a full sentence
    (RECURRING_SENTENCE_MIN_WORDS words or more, ending like one) found across the corpus but not in its
    own site's template, with a kept paragraph of prose right above and right below it. Stock sentences
    recur across sites inside articles ("The company did not respond to a request for comment.",
    "Preheat the oven to 180 degrees."); a cookie banner or comment form sits at the edge of the text."""
    found: list[int] = []
    if RECURRING_RULE not in verdict:
        return found
    nonblank = _nonblank_lines(infos)
    for k in range(1, len(nonblank) - 1):
        i = nonblank[k]
        if verdict[i] != RECURRING_RULE:
            continue
        info = infos[i]
        if info is None or info[0] in site_recurring or info[1] < RECURRING_SENTENCE_MIN_WORDS:
            continue
        if (
            _opens_prose(verdict, infos, nonblank[k - 1])
            and _opens_prose(verdict, infos, nonblank[k + 1])
            and sentence_end(lines[i].strip())
        ):
            found.append(i)
    return found


def _nonblank_neighbour(infos: list[tuple[Any, ...] | None], i: int, step: int) -> int | None:
    """The nearest line with words before (step -1) or after (step 1) line ``i``, or None."""
    if isinstance(infos, _RowInfos):
        with_words = infos.with_words()
        k = bisect.bisect_left(with_words, i) - 1 if step < 0 else bisect.bisect_right(with_words, i)
        return with_words[k] if 0 <= k < len(with_words) else None
    j = i + step
    while 0 <= j < len(infos):
        info = infos[j]
        if info is not None and info[0] is not None:
            return j
        j += step
    return None


def _sentences_between_prose(
    lines: list[str], verdict: list[str | None], infos: list[tuple[Any, ...] | None], removed: list[int]
) -> list[int]:
    """Lines the line scorer removed (``removed``, in order) that are a sentence of the text: prose of at
    least SEEN_PROSE_MIN_WORDS words ending like a sentence, with a kept paragraph of prose right above
    and right below it (_opens_prose). Chrome does not sit inside a text's paragraphs: a share bar, a
    newsletter prompt or a teaser between two kept paragraphs is a line of its own that does not read
    as a sentence, or the pack rules take it (they ran before the scorer and are not undone here). Not
    kept: list items (a teaser list's entries read as sentences too), a question (a teaser headline), a
    line ending in a colon (it announces what follows) or with tabs (a table row)."""
    found: list[int] = []
    if isinstance(infos, _RowInfos):
        # Only the removed lines of prose with enough words (~1 in 10) go on: picked from the columns at once.
        removed = infos.prose_among(removed, SEEN_PROSE_MIN_WORDS)
        return _sentences_between_prose_rows(lines, verdict, infos, removed) if removed else found
    for i in removed:
        info = infos[i]
        if verdict[i] != SCORER_RULE or info is None or not info[4] or info[1] < SEEN_PROSE_MIN_WORDS:
            continue
        above = _nonblank_neighbour(infos, i, -1)
        below = _nonblank_neighbour(infos, i, 1)
        if above is None or below is None:
            continue
        stripped = lines[i].strip()
        if (
            _opens_prose(verdict, infos, above)
            and _opens_prose(verdict, infos, below)
            and stripped[-1] not in "?:"
            and "\t" not in stripped
            and _LIST_ITEM_RE.match(stripped) is None
            and sentence_end(stripped)
        ):
            found.append(i)
    return found


def _sentences_between_prose_rows(
    lines: list[str], verdict: list[str | None], infos: _RowInfos, removed: list[int]
) -> list[int]:
    """_sentences_between_prose's loop over the line cache's columns (``removed``: the removed lines of prose
    with enough words, in order): the neighbours found and tested one after the other, the line above first
    (most candidates stop there), with the columns' lists and bisect at hand rather than a helper per step."""
    found: list[int] = []
    words, prose = infos.words_prose()
    with_words = infos.with_words()
    count = len(with_words)
    least = SEEN_PROSE_MIN_WORDS
    for i in removed:
        if verdict[i] != SCORER_RULE or not prose[i] or words[i] < least:
            continue
        k = bisect.bisect_left(with_words, i) - 1  # (as _nonblank_neighbour, then _opens_prose)
        if k < 0:
            continue
        above = with_words[k]
        if verdict[above] is not None or prose[above] == 0 or words[above] < least:
            continue
        k = bisect.bisect_right(with_words, i)
        if k >= count:
            continue
        below = with_words[k]
        if verdict[below] is not None or prose[below] == 0 or words[below] < least:
            continue
        stripped = lines[i].strip()
        if (
            stripped[-1] not in "?:"
            and "\t" not in stripped
            and _LIST_ITEM_RE.match(stripped) is None
            and sentence_end(stripped)
        ):
            found.append(i)
    return found


# The page's title in its URL: the last path segments (a wiki title may hold slashes), without a file
# extension and trailing id numbers ("/2019/05/some-title-here-123.html"); words of letters and digits.
_URL_WORD_RE = re.compile(r"[^\W_]+")
_URL_EXTENSION_RE = re.compile(r"\.(?:s?html?|php\d?|aspx?|jsp|cfm)$", re.IGNORECASE)
# The path of the usual URL (http(s), a lower-case host of letters, digits, dots and hyphens, a port, no tab or line
# break): what urlsplit(url).path gives (up to the first "?" or "#"), without urlsplit's ~10 µs a page.
_PLAIN_URL_PATH_RE = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]+)?(?=[/?#]|\Z)([^?#]*)")
TITLE_URL_SEGMENTS = 3
TITLE_SLUG_MIN_WORDS = 4
TITLE_SLUG_MORE_WORDS = 8
# Rules whose removal of the line the URL names as the page's title is undone: the line scorer, and the
# pack rule for tag/category lines ("Category:Rappahannock County, Virginia" on that category's page).
TITLE_RESCUED_RULES = frozenset({SCORER_RULE, "tags"})


def url_title_words(url: object, most: int = TITLE_URL_SEGMENTS) -> list[tuple[str, ...]]:
    """Word sequences the page's title would have, from its URL: the last path segment, the last two,
    the last three (lower-cased words, a trailing file extension and trailing numbers dropped); ``most``:
    from the last ``most`` segments at most (1: the first sequence only, when it is the last segment's)."""
    if not isinstance(url, str) or not url:
        return []
    plain = _PLAIN_URL_PATH_RE.match(url)
    if plain is not None and "\t" not in url and "\r" not in url and "\n" not in url:
        path = unquote(plain.group(1))
    else:
        try:
            path = unquote(urlsplit(url).path)
        except ValueError:
            return []
    segments = [part for part in path.split("/") if part]
    found: list[tuple[str, ...]] = []
    for n in range(1, min(most, len(segments)) + 1):
        tail = _URL_EXTENSION_RE.sub("", "/".join(segments[-n:]))
        words = _URL_WORD_RE.findall(tail.lower())
        while words and words[-1].isdigit():
            words.pop()
        if words and (n == 1 or len(words) >= 3) and tuple(words) not in found:
            found.append(tuple(words))
    return found


def _picked(lines: list[str], which: list[int]) -> list[str]:
    """``[lines[i] for i in which]``, gathered in C."""
    if len(which) < 2:
        return [lines[i] for i in which]
    return list(operator.itemgetter(*which)(lines))


def _holding(texts: list[str], needle: str) -> list[int]:
    """Positions of the texts (lines) whose lower case holds ``needle`` (a lower-case word), in order: substring
    searches in the texts joined and lower-cased (which keeps every line break and adds none)."""
    return _lines_holding("\n".join(texts), needle)


def _lines_holding(joined: str, needle: str) -> list[int]:
    """_holding of the lines of ``joined`` (the lines joined by newlines, when the caller has them so: a
    document's text)."""
    text: str | bytes
    if needle.isascii() and needle.isalnum() and _ASCII_LOWERED not in joined and _KELVIN not in joined:
        # An ASCII needle of letters and digits: only ASCII characters and those two lower-case to ASCII, so
        # the text with every other character as "?" (one byte each: the line breaks where they were),
        # lowered as bytes, holds it in the same lines; ~2.5x faster than str.lower of a text that is not all
        # ASCII (most pages).
        text, key, newline = joined.encode("ascii", "replace").lower(), needle.encode("ascii"), b"\n"
    else:
        text, key, newline = joined.lower(), needle, "\n"  # type: ignore[assignment]
    found: list[int] = []
    breaks = at = 0  # line breaks in text[:at]
    start = text.find(key)  # type: ignore[arg-type]
    while start != -1:
        breaks += text.count(newline, at, start)  # type: ignore[arg-type]
        at = start
        found.append(breaks)
        start = text.find(newline, start)  # type: ignore[arg-type]  # (the next line)
        start = -1 if start == -1 else text.find(key, start)  # type: ignore[arg-type]
    return found


# The characters besides A-Z whose lower case holds an ASCII character (İ -> "i̇", the Kelvin sign -> "k").
_ASCII_LOWERED = "\u0130"
_KELVIN = "\u212a"


def _url_title_line(
    lines: list[str],
    verdict: list[str | None],
    infos: list[tuple[Any, ...] | None],
    url: object,
    text: str | None = None,
) -> int | None:
    """The line the page's URL names as its title ("Current State of Psychiatry in Saudi Arabia" on
    .../current-state-of-psychiatry-in-saudi-arabia/, "Bordères-Louron" on /wiki/Bord%C3%A8res-Louron),
    when a rule in TITLE_RESCUED_RULES removed it and no line with the same words was kept: the first such
    line that is not a list item (a menu entry linking to the page itself). A title of one word needs four
    characters or more; a slug of four words or more may be the title's first words ("Assista ao novo e
    ousado videoclipe da Miley Cyrus" on .../assista-ao-novo-e-ousado-videoclipe-da.html). ``text``: the lines
    joined by newlines, when the caller has it (the document's text it split)."""
    rescued = list(compress(range(len(verdict)), map(TITLE_RESCUED_RULES.__contains__, verdict)))
    if not rescued:
        return None
    # The last segment's words first: they give the slug and the needle, and most pages stop at the needle
    # (no rescued line holds it); the longer sequences only when a line's words are compared (kind_of).
    first = url_title_words(url, 1)
    titles = first or url_title_words(url)
    if not titles:
        return None
    every: list[list[tuple[str, ...]]] = [] if first else [titles]
    # A slug cut short (blog platforms keep its first words): a line of up to TITLE_SLUG_MORE_WORDS more
    # words that starts with a last segment of TITLE_SLUG_MIN_WORDS words or more.
    slug = titles[0] if len(titles[0]) >= TITLE_SLUG_MIN_WORDS else None

    def kind_of(i: int) -> int | None:
        """0: line i has the words of a title, 1: it starts with the slug's words, None: neither."""
        info = infos[i]
        if info is None or info[0] is None:
            return None
        stripped = lines[i].strip()
        words = tuple(_URL_WORD_RE.findall(stripped.lower()))
        if len(words) == 1 and len(stripped) < 4:
            return None
        if not every:
            every.append(url_title_words(url))
        if words in every[0]:
            return 0
        if (
            slug is not None
            and len(slug) < len(words) <= len(slug) + TITLE_SLUG_MORE_WORDS
            and words[: len(slug)] == slug
        ):
            return 1
        return None

    # Every line that can match holds every word of the last segment (each title ends with them, the slug
    # is them), so the lines holding the longest one are the only ones looked at. The removed lines first
    # (few): only when one of them could be the title, the kept lines (substring searches in the text).
    needle = max(titles[0], key=len)
    found: list[int | None] = [None, None]  # per kind: the first line a rescued rule removed
    for k in _holding(_picked(lines, rescued), needle):
        i = rescued[k]
        if _LIST_ITEM_RE.match(lines[i].strip()) is None:
            kind = kind_of(i)
            if kind is not None and found[kind] is None:
                found[kind] = i
                if None not in found:
                    break  # (the first line of each kind is all that counts)
    if found == [None, None]:
        return None
    kept_slug = False  # whether a line starting with the slug's words was kept
    for i in _lines_holding("\n".join(lines) if text is None else text, needle):
        if verdict[i] is None:
            kind = kind_of(i)
            if kind == 0:
                return None  # a line with the title's words was kept: nothing to rescue
            if kind == 1:
                kept_slug = True
    return found[0] if found[0] is not None or kept_slug else found[1]


# A numbered list: items numbered 1., 2., 3. ... (or "1)"), at most NUMBERED_LIST_MAX_GAP other lines (an
# item's second line, a sub-item) between two items, at least NUMBERED_LIST_MIN_ITEMS items.
_NUMBERED_ITEM_RE = re.compile(r"(\d{1,3})[.)]\s+\S")
# The same at the start of a line of a document's text after its first (from the line break before it;
# whitespace before the number and after it within the line).
_NUMBERED_LINE_RE = re.compile(r"\n[^\S\n]*(\d{1,3})[.)][^\S\n]+[^\s]")
NUMBERED_LIST_MIN_ITEMS = 5
NUMBERED_LIST_MAX_GAP = 2


def _numbered_list_items(
    lines: list[str], verdict: list[str | None], infos: list[tuple[Any, ...] | None], removed: list[int]
) -> list[int]:
    """Items of a numbered list that the line scorer removed (``removed``: the lines it removed, in order)
    while it kept most of the list's items (more than half). Someone numbered the items one after the
    other: they are one list, all content or all chrome, and the scorer's line-by-line verdicts on
    look-alike items (references, steps, ranked names) are noise around the list's verdict. Items another
    rule removed are counted as removed and stay so; a list the scorer mostly removed (a numbered
    breadcrumb or menu) is left as it is."""
    found: list[int] = []
    if isinstance(infos, _RowInfos):
        # The numbered lines from the line cache's column (line_facts tested each new line once): no regex
        # over the document's text. (Only a line the scorer removed can be kept again: most have none.)
        marks = infos.numbered()
        if not removed or not marks[removed].any():
            return found
        numbered = [(i, _NUMBERED_ITEM_RE.match(lines[i].lstrip())) for i in np.flatnonzero(marks).tolist()]
        return _numbered_items_kept(verdict, infos, numbered)  # type: ignore[arg-type]
    if _NUMBERED_LINE_RE.search("\n" + "\n".join(_picked(lines, removed))) is None:
        return found
    # The numbered lines in order: the first line, then those found in the document's text (the lines joined).
    text = "\n".join(lines)
    first = _NUMBERED_ITEM_RE.match(lines[0].lstrip())
    numbered = [(0, first)] if first is not None else []
    breaks = at = 0  # line breaks in text[:at]
    for match in _NUMBERED_LINE_RE.finditer(text):
        breaks += text.count("\n", at, match.start())
        at = match.start()  # (the line break before the numbered line: it is line breaks + 1)
        numbered.append((breaks + 1, match))
    return _numbered_items_kept(verdict, infos, numbered)


def _numbered_items_kept(
    verdict: list[str | None], infos: Sequence[tuple[Any, ...] | None], numbered: list[tuple[int, re.Match]]
) -> list[int]:
    """_numbered_list_items from the document's numbered lines, in order, with their match of the number."""
    found: list[int] = []
    items: list[int] = []
    number = 0

    def close() -> None:
        if len(items) >= NUMBERED_LIST_MIN_ITEMS:
            kept = sum(1 for i in items if verdict[i] is None)
            if 2 * kept > len(items):
                found.extend(i for i in items if verdict[i] == SCORER_RULE)

    for line, match in numbered:
        value = int(match.group(1))
        if items and _words_between(infos, items[-1], line, NUMBERED_LIST_MAX_GAP) > NUMBERED_LIST_MAX_GAP:
            close()
            items = []
        if items and value != number + 1:
            close()
            items = []
        items.append(line)
        number = value
    close()
    return found


def _words_between(infos: list[tuple[Any, ...] | None], first: int, last: int, most: int) -> int:
    """How many lines with words lie strictly between lines ``first`` and ``last``, counted up to ``most`` + 1."""
    if isinstance(infos, _RowInfos):
        with_words = infos.with_words()
        between = bisect.bisect_left(with_words, last) - bisect.bisect_right(with_words, first)
        return max(0, min(between, most + 1))
    count = 0
    for j in range(first + 1, last):
        info = infos[j]
        if info is not None and info[0] is not None:
            count += 1
            if count > most:
                break
    return count


# math.log1p of small counts, looked up (the same values as calling it).
_LOG1P_TABLE = np.array([math.log1p(k) for k in range(4096)], dtype=np.float64)


def log1p_counts(counts: np.ndarray) -> np.ndarray:
    """math.log1p of non-negative integer counts, as the compiled scorer takes them. (numpy's log1p is
    its own SIMD code on some CPUs: on an AMD EPYC it differed from the C library's in the last bit for
    some counts, and a tree split at such a value scored a line differently by path.)"""
    ints = np.asarray(counts).astype(np.int64)
    out = _LOG1P_TABLE[np.minimum(ints, _LOG1P_TABLE.size - 1)]
    big = ints >= _LOG1P_TABLE.size
    if big.any():
        out[big] = [math.log1p(int(k)) for k in ints[big]]
    return out


def _announced_list_items(lines: list[str], verdict: list[str | None], cand: list[int]) -> set[int]:
    """List items right after a kept line ending with a colon (nothing removed in between), and the
    items right after those. Only a line ending with a colon starts a list, so the text of the other
    lines is looked at only when such a line precedes them."""
    items: set[int] = set()
    for k, i in enumerate(cand):
        line = lines[i]
        # (":" in line first: an operator, cheaper than two method calls on every line.)
        if ":" not in line or not line.rstrip().endswith(":") or i in items:
            continue  # (an item's own list goes on from the line that announced it)
        previous = i
        for at in range(k + 1, len(cand)):
            j = cand[at]
            # A line removed by a rule in between ends the list (blank lines in between are None too).
            if verdict[previous + 1 : j].count(None) != j - previous - 1 or not _LIST_ITEM_RE.match(lines[j].strip()):
                break
            items.add(j)
            previous = j
    return items


# Second pass of the line scorer (stacking): the first model's log-odds of the line, of its neighbours
# among the candidate lines, summaries over windows, and where the document's confident content lines
# are. Appended to SCORER_FEATURES as the columns of the context model (``"context"`` in the model).
CONTEXT_FEATURES = (
    "score",
    "prev1_score",
    "prev2_score",
    "prev3_score",
    "next1_score",
    "next2_score",
    "next3_score",
    "near_mean",
    "near_min",
    "near_max",
    "wide_mean",
    "log_confident_before",
    "log_confident_after",
    "log_to_confident_before",
    "log_to_confident_after",
    "doc_median_score",
    "score_vs_doc_median",
    "doc_rank",
    "stretch_mean_score",
)
# Log-odds standing for "no line there" (before the first / after the last candidate): far below any
# real score (the first model's sums stay within about +-15).
CONTEXT_PAD = -30.0
# A line is confident content when the first model gives it at least this log-odds (p = 0.9).
CONTEXT_CONFIDENT = math.log(9.0)
# Half-widths of the near (+-3) and wide (+-10) windows of neighbours.
CONTEXT_NEAR = 3
CONTEXT_WIDE = 10


def context_features(
    lines: list[str], v: RuleVerdicts, cand: list[int], base: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """One row of CONTEXT_FEATURES per candidate line, from ``base`` (the first model's log-odds of
    each candidate, in order). Why: a teaser, byline or licence paragraph can look like content on its
    own, but sits among lines the first model doubts, or after the last confident content line.
    ``rows``: ``cand`` as an int64 array, when the caller has it."""
    m = len(cand)
    x = np.empty((m, len(CONTEXT_FEATURES)), dtype=np.float64)
    if not m:
        return x
    s = np.ascontiguousarray(base, dtype=np.float64)
    kernels.context_rows(s, CONTEXT_NEAR, CONTEXT_WIDE, CONTEXT_CONFIDENT, CONTEXT_PAD, _LOG1P_TABLE, x)
    start, end = v.stretch if v.stretch is not None else (0, 0)
    if rows is None:
        rows = np.asarray(cand, dtype=np.int64)
    inside = (rows >= start) & (rows < end)
    x[:, 18] = float(s[inside].mean()) if inside.any() else CONTEXT_PAD
    return x


# Deepest trees whose leaves are found from all node tests at once (a table of 2**15 leaves at depth 4).
MAX_TESTED_DEPTH = 4


# Candidates process_ahead scores together at most (_scored_group; a document with more is scored alone): the
# group's two feature arrays take ~800 bytes a candidate.
SCORED_GROUP_ROWS = 8192
# Rows TreeEnsemble.log_odds scores at a time (its (rows, trees) array of leaf values: ~13 MB at 200 trees).
LOG_ODDS_ROWS = 8192


class TreeEnsemble:
    """Gradient-boosted trees of one fixed depth, stored as arrays (trained by
    ``benchmarks/train_line_scorer.py``): ``feature``/``threshold`` per inner node in breadth-first
    order (children of node j are 2j+1 and 2j+2), ``leaf`` values per tree, summed with ``base`` into
    the log-odds that a line is content."""

    def __init__(self, model: dict[str, Any]) -> None:
        if list(model["features"]) != self.expected_features():
            raise ValueError(f"line scorer: the {type(self).__name__} model's features are not the ones it expects")
        self.depth = int(model["depth"])
        self.base = float(model["base"])
        self.feature = np.asarray(model["feature"], dtype=np.intp)
        self.threshold = np.asarray(model["threshold"], dtype=np.float64)
        self.leaf = np.asarray(model["leaf"], dtype=np.float64)

    # The two tables below come from compiled kernels: made at first use, so that a stage built only to check
    # a config, or by a run with nothing new, loads no compiled code (numba's first load: ~70 ms a process).
    @functools.cached_property
    def _tests(self) -> np.ndarray | None:
        """Leaf per bit pattern of a tree's node tests (2**(2**depth - 1) entries): up to depth 4; deeper
        trees are walked node by node (None)."""
        return kernels.leaf_of_tests(self.depth) if self.depth <= MAX_TESTED_DEPTH else None

    @functools.cached_property
    def _binned(self) -> np.ndarray | None:
        """kernels.score_log_odds' form of the trees (depth 3 at most: each tree's leaf value per bit pattern,
        128 values; 32,768 at depth 4 would not stay in cache); None: scored step by step."""
        small = self._tests is not None and self._tests.size <= 128
        if not small:
            return None
        return kernels.binned_trees(self.feature, self.threshold, self.leaf[:, self._tests], self.base)

    @staticmethod
    def expected_features() -> list[str]:
        return list(SCORER_FEATURES)

    def log_odds(self, x: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        """Log-odds of each row of ``x``, or of the rows of the column blocks ``x`` (side by side, as
        np.hstack would join them). Taken LOG_ODDS_ROWS rows at a time, so that a document of 500k short
        lines does not hold a (rows, trees) array of 0.8 GB: each row's sum is the same either way."""
        parts = x if isinstance(x, tuple) else (x,)
        rows = len(parts[0])
        if rows <= LOG_ODDS_ROWS:
            return self._log_odds(parts[0] if len(parts) == 1 else np.hstack(parts))
        out = np.empty(rows, dtype=np.float64)
        for a in range(0, rows, LOG_ODDS_ROWS):
            b = min(a + LOG_ODDS_ROWS, rows)
            out[a:b] = self._log_odds(parts[0][a:b] if len(parts) == 1 else np.hstack([p[a:b] for p in parts]))
        return out

    def _log_odds(self, x: np.ndarray) -> np.ndarray:
        # The leaf value of every (row, tree) from the compiled tests, summed per row as one (rows,
        # trees) float64 array (numpy's summation order: the sums do not depend on how leaves were found).
        values = np.empty((len(x), len(self.feature)), dtype=np.float64)
        if self._tests is None:
            kernels.tree_leaf_values(
                np.ascontiguousarray(x, dtype=np.float64), self.feature, self.threshold, self.leaf, self.depth, values
            )
        else:
            xt = np.ascontiguousarray(np.asarray(x, dtype=np.float64).T)
            kernels.tree_leaf_values_by_tests(xt, self.feature, self.threshold, self.leaf, self._tests, values)
        return self.base + values.sum(axis=1)


class ContextEnsemble(TreeEnsemble):
    """The line scorer's second pass: the same kind of trees on SCORER_FEATURES + CONTEXT_FEATURES +
    LEXICAL_FEATURES + DOCUMENT_FEATURES + BLOCK_FEATURES, with the word lexicon (``"lexicon"``: word -> log-odds)."""

    def __init__(self, model: dict[str, Any]) -> None:
        super().__init__(model)
        self.lexicon: dict[str, float] = dict(model.get("lexicon") or {})
        self.compiled = CompiledLexicon(self.lexicon)

    @staticmethod
    def expected_features() -> list[str]:
        return [*SCORER_FEATURES, *CONTEXT_FEATURES, *LEXICAL_FEATURES, *DOCUMENT_FEATURES, *BLOCK_FEATURES]


# Word evidence for the context model: the mean, lowest and highest lexicon weight of the line's words
# (log-odds that a line with the word is content, learnt from the training lines), and the share of its
# words the lexicon knows. Why: a disclaimer, newsletter box or cookie note looks like prose by shape but
# is made of telltale words ("registrieren", "newsletter", "haftung", "cookies").
LEXICAL_FEATURES = (
    "lex_mean",
    "lex_min",
    "lex_max",
    "lex_known_share",
    "prev_lex_mean",
    "next_lex_mean",
    "near_lex_mean",
)
_WORD_RE = re.compile(r"\w+")


@functools.lru_cache(maxsize=LINE_CACHE_MAX_LINES)
def line_words(stripped: str) -> tuple[str, ...]:
    """The distinct lower-cased words of a line (letters/digits runs), for the lexicon."""
    return tuple(dict.fromkeys(_WORD_RE.findall(stripped.lower())))


# The context model judges a document only when its lexicon knows at least this share of the words of
# the candidate lines; otherwise the first model's scores decide. Why: the lexicon is learnt from the
# training pages (mostly German and English); in a language it hardly covers (Japanese, Korean, Czech,
# ...) every line looks like one without known words, which in training were mostly names and chrome.
CONTEXT_MIN_KNOWN_SHARE = 0.4


class CandidateWords(NamedTuple):
    """The words of a document's candidate lines (line_words), flattened for numpy."""

    word_id: np.ndarray  # per word, line after line: its id in the document (equal words, equal ids)
    length: np.ndarray  # per word: number of characters
    weight: np.ndarray  # per word: lexicon weight (NaN for unknown words)
    line: np.ndarray  # per word: index of its line among the candidates
    starts: np.ndarray  # per candidate line: index of its first word
    counts: np.ndarray  # per candidate line: number of words


def candidate_words(lines: list[str], cand: list[int], lexicon: dict[str, float]) -> CandidateWords:
    """The distinct words of every candidate line, flattened, with their lexicon weights (one Python
    step per line, cached). The reference for (and fallback of) CompiledLexicon.candidate_words."""
    per_line = [line_words(lines[i].strip()) for i in cand]
    counts = np.fromiter(map(len, per_line), dtype=np.int64, count=len(per_line))
    words = list(chain.from_iterable(per_line))
    first: dict[str, int] = {}
    word_id = np.fromiter(map(first.setdefault, words, range(len(words))), dtype=np.int64, count=len(words))
    return CandidateWords(
        word_id,
        np.fromiter(map(len, words), dtype=np.int64, count=len(words)),
        lexicon_weights(words, lexicon),
        np.repeat(np.arange(len(cand)), counts),
        _starts(counts),
        counts,
    )


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts)[:-1])) if len(counts) else counts


def lexicon_weights(words: list[str], lexicon: dict[str, float]) -> np.ndarray:
    """The lexicon weight of every word (NaN for unknown words)."""
    return np.fromiter(map(lexicon.get, words, repeat(np.nan)), dtype=np.float64, count=len(words))


class CompiledLexicon:
    """The lexicon as arrays for kernels.candidate_words: one compiled pass over a document's candidate
    lines finds their words and weights, the same as candidate_words (which it falls back to for
    documents the kernel cannot lower-case character by character)."""

    def __init__(self, lexicon: dict[str, float]) -> None:
        self.lexicon = lexicon
        words = list(lexicon)
        points = code_points("".join(words))
        # uint16 when every character is in the BMP (the usual case): fewer cache lines per lookup.
        self.points = points.astype(np.uint16) if points.size and int(points.max()) < 0x10000 else points
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        # Word k: starts[k]:starts[k + 1] (int32, as lexicon_table's slots: fewer cache lines per lookup).
        self.starts = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
        self.weight = np.fromiter(lexicon.values(), dtype=np.float64, count=len(words))

    @functools.cached_property
    def slots(self) -> np.ndarray:
        """The words' hash table (kernels.lexicon_table), made at first use as TreeEnsemble's tables."""
        return kernels.lexicon_table(self.points, self.starts)

    @functools.cached_property
    def slot_hashes(self) -> np.ndarray:
        """The hash of the word in each slot (kernels.lexicon_slot_hashes; 0: empty)."""
        return kernels.lexicon_slot_hashes(self.slots, self.points, self.starts)

    def candidate_words(self, lines: list[str], cand: list[int], points: np.ndarray | None = None) -> CandidateWords:
        """``points``: the code points of the candidate lines joined by newlines, when the caller has them."""
        if points is None:
            points = code_points("\n".join([lines[i] for i in cand]))
        astral, astral_lower = _astral_table(points)
        if astral is not None:
            ok, word_id, line, length, weight, counts = kernels.candidate_words(
                points, len(cand), _word_lower(), astral, astral_lower,
                self.slots, self.slot_hashes, self.points, self.starts, self.weight,
            )  # fmt: skip
            if ok:
                return CandidateWords(word_id, length, weight, line, _starts(counts), counts)
        return candidate_words(lines, cand, self.lexicon)


_NO_ASTRAL = np.empty(0, dtype=np.int64)
_NO_POINTS = np.empty(0, dtype=np.uint32)
_NEWLINE_POINT = np.array([ord("\n")], dtype=np.uint32)


def _astral_table(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """The characters outside the BMP in ``points`` (sorted) with their lower case, -1 when that is not
    a \\w character (as _WORD_RE sees it); (None, None) when one lowers to several characters."""
    if not points.size or int(points.max()) < 0x10000:
        return _NO_ASTRAL, _NO_ASTRAL  # the usual case: nothing to look up
    astral = distinct_sorted(points[points >= 0x10000]).astype(np.int64)
    lowered = [chr(c).lower() for c in astral.tolist()]
    if any(len(x) != 1 for x in lowered):
        return None, None
    low = [ord(x) if _WORD_RE.match(x) else -1 for x in lowered]
    return astral, np.array(low, dtype=np.int64)


def lexicon_coverage(weight: np.ndarray) -> float:
    """Share of the words of the candidate lines (counted once per line) that the lexicon knows."""
    return float(np.count_nonzero(~np.isnan(weight)) / len(weight)) if len(weight) else 0.0


def lexical_features(cw: CandidateWords) -> np.ndarray:
    """One row of LEXICAL_FEATURES per candidate line from the words' lexicon weights (0 for lines
    without a known word), in one compiled loop (kernels.lexical_rows)."""
    x = np.zeros((len(cw.counts), len(LEXICAL_FEATURES)), dtype=np.float64)
    kernels.lexical_rows(np.ascontiguousarray(cw.weight), np.ascontiguousarray(cw.counts), CONTEXT_NEAR, x)
    return x


# How much of a line's vocabulary the rest of the document shares: the share of its longer words
# (4+ characters) found in another candidate line, and in another body line of the article stretch.
# Why: paragraphs of one article repeat its words; teasers of other articles, bylines, licence and
# newsletter boxes mostly do not.
DOCUMENT_FEATURES = ("doc_word_overlap", "stretch_word_overlap")
# Words shorter than this (function words, numbers) say little about the topic.
OVERLAP_MIN_CHARS = 4


def document_features(
    cw: CandidateWords, v: RuleVerdicts, cand: list[int], in_body: np.ndarray | None = None
) -> np.ndarray:
    """One row of DOCUMENT_FEATURES per candidate line (-1 for a line without a longer word).
    ``in_body``: per candidate, whether it is a body line inside the stretch, when the caller has it."""
    m = len(cand)
    x = np.full((m, len(DOCUMENT_FEATURES)), -1.0, dtype=np.float64)
    if not len(cw.line):
        return x
    if in_body is None:
        start, end = v.stretch if v.stretch is not None else (0, 0)
        in_body = np.array([start <= i < end and v.infos[i][6] > 0 for i in cand], dtype=bool)  # type: ignore[index]
    kernels.word_overlap(cw.word_id, cw.line, cw.length, in_body, OVERLAP_MIN_CHARS, x)
    return x


# Blocks and segments of candidate lines, summarised with the first model's scores. A *segment* is a
# run of candidate lines with no line removed by a rule in between (a menu, share bar or widget heading
# splits the page into segments); a *block* is a run of consecutive non-blank candidate lines. Why:
# the lines of one block or segment tend to share a label (a teaser list, an author box, a footer), and
# "every line after this one is doubtful" marks the tail of the article (newsletter, licence, bios).
BLOCK_FEATURES = (
    "seg_log_lines",
    "seg_mean_score",
    "seg_min_score",
    "seg_max_score",
    "seg_confident_share",
    "seg_log_offset",
    "blk_log_lines",
    "blk_mean_score",
    "head_mean_score",
    "tail_mean_score",
)


def block_features(
    v: RuleVerdicts,
    cand: list[int],
    base: np.ndarray,
    removed: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """One row of BLOCK_FEATURES per candidate line from ``base`` (the first model's log-odds), in one
    compiled loop over the document (kernels.block_rows); sizes and offsets as log1p. ``removed``: per
    line, whether a rule removed it; ``rows``: ``cand`` as an int64 array; when the caller has them."""
    m = len(cand)
    x = np.empty((m, len(BLOCK_FEATURES)), dtype=np.float64)
    if not m:
        return x
    if removed is None:
        removed = np.fromiter([rule is not None for rule in v.verdict], dtype=np.bool_, count=len(v.verdict))
    if rows is None:
        rows = np.asarray(cand, dtype=np.int64)
    kernels.block_rows(np.ascontiguousarray(base, dtype=np.float64), rows, removed, CONTEXT_CONFIDENT, x)
    x[:, _BLOCK_COUNT_COLUMNS] = log1p_counts(x[:, _BLOCK_COUNT_COLUMNS])
    return x


# Columns of BLOCK_FEATURES the kernel fills with counts (segment size, offset in it, block size).
_BLOCK_COUNT_COLUMNS = [0, 5, 6]


@functools.cache
def _fused_context_layout() -> bool:
    """Whether the context model's columns are laid out as kernels.score_log_odds builds them: the first
    model's features, then CONTEXT_, LEXICAL_, DOCUMENT_ and BLOCK_FEATURES of the widths it knows (a
    model or feature set changed otherwise is scored step by step)."""
    widths = (kernels.CONTEXT_WIDTH, kernels.LEXICAL_WIDTH, kernels.DOCUMENT_WIDTH, kernels.BLOCK_WIDTH)
    blocks = (CONTEXT_FEATURES, LEXICAL_FEATURES, DOCUMENT_FEATURES, BLOCK_FEATURES)
    return tuple(map(len, blocks)) == widths and ContextEnsemble.expected_features() == [
        *SCORER_FEATURES,
        *chain.from_iterable(blocks),
    ]


@functools.cache
def _empty_lexicon() -> CompiledLexicon:
    """kernels.score_log_odds' lexicon arguments for a stage without a context model (never read)."""
    return CompiledLexicon({})


def _context_args(
    inputs: ScorerInputs, astral: tuple[np.ndarray, np.ndarray], lexicon: CompiledLexicon
) -> tuple[Any, ...]:
    """The arguments kernels.score_log_odds and kernels.context_features both take for the context features, in
    their order: the candidates' code points, the word table, the astral tables, the lexicon and the constants."""
    return (
        inputs.points, _word_lower(), *astral,
        lexicon.slots, lexicon.slot_hashes, lexicon.points, lexicon.starts, lexicon.weight,
        CONTEXT_NEAR, CONTEXT_WIDE, CONTEXT_CONFIDENT, CONTEXT_PAD, CONTEXT_MIN_KNOWN_SHARE, OVERLAP_MIN_CHARS,
        _LOG1P_TABLE,
    )  # fmt: skip


@functools.cache
def _shipped_model() -> dict[str, Any]:
    """The shipped scorer file, parsed once per process for both passes (orjson: ~4x faster than json
    on its 400 kB, the same values; callers must not modify it)."""
    return orjson.loads(resources.files(PACK_PACKAGE).joinpath(*PACK_DIR, SCORER_FILE).read_bytes())


@functools.cache
def _shipped_scorer() -> TreeEnsemble:
    return TreeEnsemble(_shipped_model())


@functools.cache
def _shipped_context() -> ContextEnsemble | None:
    """The shipped second pass (``"context"`` in the scorer's file), if the model has one."""
    context = _shipped_model().get("context")
    return ContextEnsemble(context) if context else None


def _site_salt(site: str) -> int:
    """A site's 64-bit salt, XORed into its line hashes to count them apart: xxh3 of its name with a seed
    of its own (unseeded, a line holding just the site's name, "example.com", would hash to the salt
    itself, and such lines of all sites would share the key 0)."""
    return xxhash.xxh3_64_intdigest(site.encode("utf-8", "surrogatepass"), seed=_SITE_SALT_SEED)


_SITE_SALT_SEED = 0x5174E5A17


def _inserted(values: np.ndarray, places: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``values`` with ``new`` placed at the increasing positions ``places`` of the result (np.insert's
    result for sorted insertion points, each shifted by the new values before it)."""
    out = np.empty(values.size + new.size, dtype=values.dtype)
    old = np.ones(out.size, dtype=np.bool_)
    old[places] = False
    out[old] = values
    out[places] = new
    return out


class _DocumentCounts:
    """In how many documents each line hash occurs, per group (a site; one group for the whole corpus):
    sorted numpy arrays of the distinct keys (hash XOR the group's salt, _site_salt), their group and
    count (16 bytes a key), merged with the keys added since whenever those reach the arrays' size
    (a sort each time: O(n log n) in all). The caller adds each document's distinct hashes once."""

    MERGE_AT = 1 << 20  # pending keys that start a merge at the least

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self.groups = np.empty(0, dtype=np.uint32)
        self.totals = np.empty(0, dtype=np.int32)
        self._pending: list[tuple[np.ndarray, int, int, np.ndarray | None]] = []  # (hashes, group, salt, mask)
        self._pending_size = 0
        self.documents = array("l")  # the group of each document added (8 bytes each)

    def add(self, hashes: np.ndarray, group: int = 0, salt: int = 0, mask: np.ndarray | None = None) -> None:
        """One document's distinct hashes (those where ``mask`` holds, if given), XORed with ``salt``: kept as
        given until the merge, which salts and masks them all at once (a few numpy calls per merge instead of
        one or two per document)."""
        self.documents.append(group)
        if not hashes.size:
            return
        self._pending.append((hashes, group, salt, mask))
        self._pending_size += hashes.size
        if self._pending_size >= max(self.MERGE_AT, self.keys.size):
            self._merge()

    def _merge(self) -> None:
        """Fold the pending keys into the sorted arrays: the pending ones sorted and counted alone, then
        added to the counts of keys already there (in place) and inserted where new (one new array per
        column: the peak is about twice the arrays, not the ~3.5 times of sorting everything again)."""
        if not self._pending:
            return
        pending, self._pending, self._pending_size = self._pending, [], 0
        sizes = np.array([hashes.size for hashes, _, _, _ in pending], dtype=np.int64)
        keys = np.concatenate([hashes for hashes, _, _, _ in pending])
        keys ^= np.repeat(np.array([salt for _, _, salt, _ in pending], dtype=np.uint64), sizes)
        groups = np.repeat(np.array([group for _, group, _, _ in pending], dtype=np.uint32), sizes)
        if any(mask is not None for _, _, _, mask in pending):
            kept = np.concatenate([np.ones(h.size, np.bool_) if m is None else m for h, _, _, m in pending])
            keys, groups = keys[kept], groups[kept]
        one_group = len({group for _, group, _, _ in pending}) == 1
        del pending
        if not keys.size:  # every pending key masked out (documents of short lines only)
            return
        if one_group:  # (the corpus-wide counts): no group to carry along, so a plain sort (~8x faster)
            keys.sort()
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            groups = groups[: starts.size]  # (all the same)
        else:
            # Each key keeps the group of its first occurrence: the smallest position among its copies. An
            # unstable argsort and that minimum per run of equal keys give what a stable argsort gave, in
            # a third of the time (0.041 -> 0.013 s for 530k keys: numpy's SIMD sort is not stable).
            order = np.argsort(keys)
            keys = keys[order]
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            groups = groups[np.minimum.reduceat(order, starts)]
            del order
        totals = np.diff(np.append(starts, keys.size)).astype(np.int32)
        keys = keys[starts]
        if not self.keys.size:  # the first merge (the only one below MERGE_AT keys): nothing to add to
            self.keys, self.groups, self.totals = keys, groups, totals
            return
        at = np.searchsorted(self.keys, keys)
        known = at < self.keys.size
        known[known] = self.keys[at[known]] == keys[known]
        np.add.at(self.totals, at[known], totals[known])
        new = ~known
        # np.insert at the (sorted) positions of the new keys, without the sort np.insert does of them
        places = at[new] + np.arange(int(new.sum()))
        self.keys = _inserted(self.keys, places, keys[new])
        self.groups = _inserted(self.groups, places, groups[new])
        self.totals = _inserted(self.totals, places, totals[new])

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keys, groups, documents) of every distinct key added."""
        self._merge()
        return self.keys, self.groups, self.totals


_NONE_AS_ZERO: dict[Any, int] = {None: 0}
_NO_HASHES: frozenset[int] = frozenset()
_NO_KEYS = np.empty(0, dtype=np.int64)


def _empty_line_columns(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Line cache columns (kernels.LC_*) and key hashes for ``rows`` rows, row 0 a blank line."""
    return np.zeros((rows, kernels.LINE_COLUMNS), dtype=np.int32), np.zeros(rows, dtype=np.int64)


_CRUMB_KINDS = {kernels.CRUMB_WHOLE: "breadcrumb", kernels.CRUMB_PREFIX: "breadcrumb-prefix"}
_UINT64 = (1 << 64) - 1


def _row_info(cols: np.ndarray, hashes: np.ndarray, names: list[str | None], r: int) -> tuple[Any, ...] | None:
    """The _line_info tuple of row ``r`` of the line cache's columns (None for a blank line)."""
    row = cols[r].tolist()
    state = row[kernels.LC_STATE]
    if state == kernels.LC_BLANK:
        return None
    if state == kernels.LC_NO_KEY:
        return _NO_KEY
    words = row[kernels.LC_WORDS]
    rule = row[kernels.LC_RULE]
    if rule:
        return 0, words, names[rule], None, False, False, -1, False
    kind = row[kernels.LC_CRUMB]
    return (
        int(hashes[r]) & _UINT64,
        words,
        None,
        (_CRUMB_KINDS[kind], row[kernels.LC_CUT]) if kind else None,
        bool(row[kernels.LC_PROSE]),
        bool(row[kernels.LC_NAV]),
        row[kernels.LC_BODY],
        bool(row[kernels.LC_KEEP]),
    )


class _RowInfos(Sequence):  # type: ignore[type-arg]
    """A document's _line_info tuples (None for blank lines), made from its rows of the line cache's columns
    only when asked for: the rescue helpers read a few lines' (no table of tuples is kept for every row)."""

    __slots__ = ("_cols", "_hashes", "_names", "_rows", "_with_words", "_words_prose")

    def prose_among(self, lines: list[int], min_words: int) -> list[int]:
        """Those of ``lines`` (in order) with the prose mark and at least ``min_words`` words."""
        if not lines:
            return []
        at = np.asarray(lines, dtype=np.int64)
        got = self._cols[self._rows[at]]
        return at[(got[:, kernels.LC_PROSE] != 0) & (got[:, kernels.LC_WORDS] >= min_words)].tolist()

    def numbered(self) -> np.ndarray:
        """Per line, whether it opens as a numbered list item (_NUMBERED_ITEM_RE on the stripped line; 0 for
        a blank line)."""
        return self._cols[self._rows, kernels.LC_NUMBERED]

    def __init__(self, rows: np.ndarray, cols: np.ndarray, hashes: np.ndarray, names: list[str | None]) -> None:
        self._rows, self._cols, self._hashes, self._names = rows, cols, hashes, names
        self._with_words: list[int] | None = None
        self._words_prose: tuple[list[int], list[int]] | None = None

    def __len__(self) -> int:
        return int(self._rows.size)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return _row_info(self._cols, self._hashes, self._names, int(self._rows[i]))

    def __iter__(self) -> Any:
        return (_row_info(self._cols, self._hashes, self._names, r) for r in self._rows.tolist())

    def with_words(self) -> list[int]:
        """The lines whose key hash is not None (a key left after normalisation), in order; found once."""
        if self._with_words is None:
            states = self._cols[self._rows, kernels.LC_STATE]
            self._with_words = np.flatnonzero(states == kernels.LC_KEY).tolist()
        return self._with_words

    def words_prose(self) -> tuple[list[int], list[int]]:
        """Each line's words and prose mark (the tuples' [1] and [4]; 0 for a blank line), gathered once:
        _opens_prose reads them for many lines."""
        if self._words_prose is None:
            self._words_prose = (
                self._cols[self._rows, kernels.LC_WORDS].tolist(),
                self._cols[self._rows, kernels.LC_PROSE].tolist(),
            )
        return self._words_prose


class _LineIndex:
    """The line cache's index, stripped line -> row of the columns, as arrays that kernels.line_index reads
    and fills (no dict of strings: one compiled pass per document finds every line's row and the new lines,
    where the dict needed str.strip of every line and several C-level passes of hashing). A row is confirmed
    by the line's code points (kept in ``pool``, uint16); lines longer than LINE_CACHE_MAX_CHARS or with an
    astral character are not cached. Holds only numpy arrays: nothing for the garbage collector to walk."""

    __slots__ = ("pool", "row_len", "row_start", "slots", "used")

    def __init__(self) -> None:
        self.slots = np.zeros(0, dtype=np.int64)  # hash tag | row per slot, 0: free (made at first use: clear())
        self.row_len = np.zeros(0, dtype=np.int64)
        self.row_start = np.zeros(0, dtype=np.int64)
        self.pool = np.zeros(0, dtype=np.uint16)
        self.used = 0  # pool code points in use

    def fits(self, rows: int, lines: int) -> bool:
        """Whether a document of ``lines`` lines can go in with ``rows`` rows in use (slots at most half full)."""
        return rows + lines <= self.slots.size // 2

    def clear(self, lines: int = 0) -> None:
        """Empty the index, with slots for LINE_CACHE_MAX_LINES rows and a document of ``lines`` lines."""
        size = table_size(max(LINE_CACHE_MAX_LINES, lines + 1))
        if self.slots.size == size:
            self.slots.fill(0)
        else:
            self.slots = np.zeros(size, dtype=np.int64)
        self.used = 0

    def reserve(self, rows: int, points: int) -> None:
        """Room for rows up to ``rows`` and ``points`` more pool code points (arrays doubled when short)."""
        if rows > self.row_len.size:
            size = max(rows, 2 * self.row_len.size, 1024)
            for name in ("row_len", "row_start"):
                old = getattr(self, name)
                grown = np.zeros(size, dtype=old.dtype)
                grown[: old.size] = old
                setattr(self, name, grown)
        if self.used + points > self.pool.size:
            grown = np.zeros(max(self.used + points, 2 * self.pool.size, 1 << 16), dtype=np.uint16)
            grown[: self.used] = self.pool[: self.used]
            self.pool = grown

    def texts(self) -> list[str]:
        """The cached stripped lines, by row (tests)."""
        rows = np.sort(self.slots[self.slots != 0] & kernels.LI_ROW)
        return [
            "".join(map(chr, self.pool[start : start + length].tolist()))
            for start, length in zip(self.row_start[rows].tolist(), self.row_len[rows].tolist(), strict=True)
        ]

    def __len__(self) -> int:
        return int(np.count_nonzero(self.slots))


class _NewTexts(Sequence[str]):
    """A document's new stripped lines (kernels.line_index's order), each stripped when read: most of them
    only go through the kernels, from their code points."""

    __slots__ = ("_first", "_lines")

    def __init__(self, lines: list[str], first: list[int]) -> None:
        self._lines, self._first = lines, first

    def __len__(self) -> int:
        return len(self._first)

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [self[i] for i in range(len(self))[j]]
        return self._lines[self._first[j]].strip()

    def pick(self, which: Iterable[int]) -> list[str]:
        """The new lines ``which``, stripped."""
        lines, first = self._lines, self._first
        return [lines[first[j]].strip() for j in which]


_POINTS_FIELD = RuleVerdicts._fields.index("points")


class _Ahead(NamedTuple):
    """What process_ahead did for a document, waiting for its process() call."""

    doc: Document
    text: str  # the text it saw (process() takes this only for the same text object)
    lines: list[str]
    verdicts: RuleVerdicts
    counters: list[str]  # rule_verdicts' counters, counted by process()
    scored: tuple[list[int], np.ndarray, ScorerInputs] | None = None  # candidates, _scored's odds and inputs


class BoilerplateStage(Stage):
    """Remove boilerplate lines (comment forms, widgets, share/cookie/login lines, breadcrumbs, menus)."""

    name: ClassVar[str] = "boilerplate"

    class Options(StageOptions):
        languages: list[str] | None = Field(
            None,
            description="Pattern packs to load (e.g. [en, de]); null loads every shipped pack. "
            "Language-neutral rules (common.yaml) are always loaded.",
        )
        patterns: dict[str, list[str]] = Field(
            default_factory=dict,
            description="Extra whole-line regexes per rule name (new names allowed), matched "
            "case-insensitively against the trimmed line with surrounding punctuation removed; lines longer "
            f"than {MAX_WHOLE_LINE_CHARS} characters are not tried (a limit for speed, as for the shipped packs). "
            "An empty pattern, or one matching an ordinary sentence (.*), is refused.",
        )
        disable_rules: list[str] = Field(
            default_factory=list,
            description="Rule names to switch off, e.g. [date-line, navigation].",
        )
        pattern_files: list[str] = Field(
            default_factory=list,
            description="Extra YAML pattern packs in the shipped format (rules: {name: {lines, patterns, phrases}};"
            " optional definitions: {name: regex}, written {{name}} in patterns); a relative path is found from the"
            " current directory, else from the config file's folder. Their patterns, like"
            f" 'patterns', are not tried on lines longer than {MAX_WHOLE_LINE_CHARS} characters.",
        )
        max_phrase_line_words: int = Field(
            12,
            ge=1,
            description="A 'contains' phrase (e.g. 'uses cookies') only removes lines of at most this "
            "many words, so a real sentence mentioning it is kept.",
        )
        nav_min_run: int = Field(
            5,
            ge=2,
            description="Remove a run of at least this many consecutive navigation-like lines "
            "(very short, no digits, no sentence punctuation) as 'navigation'.",
        )
        nav_max_words: int = Field(
            3,
            ge=1,
            description="Most words a line may have to count as a navigation item.",
        )
        remove_trailing_blocks: bool = Field(
            True,
            description="After a comment form or widget heading, also remove the short non-prose lines "
            "that follow (lists of post titles, recent comments) as 'widget-list'.",
        )
        trailing_max_words: int = Field(
            15,
            ge=1,
            description="Most words a line may have to be removed as part of a trailing widget block.",
        )
        recurring_min_documents: int = Field(
            5,
            ge=2,
            description="A line found in at least this many documents of the whole input (counted in a first "
            "pass) is template boilerplate ('recurring'): cookie banners of CMP plugins, comment forms.",
        )
        recurring_min_words: int = Field(
            2,
            ge=1,
            description="Corpus-wide recurrence only counts lines of at least this many words: single words "
            "recur across sites as real headings ('Fazit', 'Mission'); per-site counting has no such floor.",
        )
        recurring_site_min_documents: int = Field(
            3,
            ge=2,
            description="Per site (host of the record's `url`, else the input file): a line in at least this "
            "many of the site's documents, and in at least recurring_site_min_share of them, is 'recurring'.",
        )
        recurring_site_min_share: float = Field(
            0.5,
            gt=0,
            le=1,
            description="Share of a site's documents a line must appear in to be 'recurring' for that site.",
        )
        content_min_words: int = Field(
            8,
            ge=1,
            description="Main-content localisation: a line ending like a sentence with at least this many words "
            "(or any line of 16+ words) is body text; the densest stretch of body text is the article.",
        )
        content_line_penalty: int = Field(
            8,
            ge=0,
            description="Characters of body text a short non-body line costs when finding the article stretch "
            "(higher: a tighter article, more chrome removed around it).",
        )
        content_margin: int = Field(
            2,
            ge=0,
            description="Non-blank lines kept right before and after the article stretch (title, byline, "
            "last list item); short lines further away are removed as 'outside-content' (only with the "
            "line scorer off: it judges those lines itself).",
        )
        content_removed_penalty: int = Field(
            20,
            ge=0,
            description="Characters of body text a line removed by another rule (menu, widget, share line) "
            "costs when finding the article stretch: a block of chrome separates the article from the footer.",
        )
        content_marker_penalty: int = Field(
            200,
            ge=0,
            description="Characters of body text a comment or widget heading after the article's first prose "
            "costs when finding the article stretch (what follows it is rarely the same article).",
        )
        content_keep_words: int = Field(
            8,
            ge=1,
            description="Body-like lines outside the article stretch are kept when they have at least this "
            "many words (a second text block is more likely content than chrome).",
        )

        line_scorer_threshold: float = Field(
            0.065,
            ge=0,
            lt=1,
            description="Line scorer (a small tree ensemble on text-only features of a line and its "
            "neighbours, trained on HTML-extractor labels, with a second pass on the neighbours' scores, "
            "word weights and shared vocabulary): a line the rules kept inside a document with "
            "an article stretch is removed as 'line-scorer' when its content probability is below this; "
            "the scorer then also judges the lines around the stretch instead of the content_margin rule "
            "('outside-content'). 0 switches the scorer off (the margin rule applies again).",
        )

        def with_paths_from(self, folder: Path) -> StageOptions:
            # a pack kept beside the config is found from any working directory, as a stage module there is
            files = [
                str(folder / p) if not Path(p).is_absolute() and not Path(p).exists() and (folder / p).exists() else p
                for p in self.pattern_files
            ]
            return self if files == self.pattern_files else self.model_copy(update={"pattern_files": files})

        def file_digests(self) -> dict[str, Any]:
            # An edited pack changes what is removed: without its content in the config hash, an incremental
            # run cleaned new files with the new pack and kept the old files' outputs of the old one. The
            # packs are hashed by content, not path: the same pack named from another folder is no change.
            if not self.pattern_files:
                return {}  # the hash of a config without pattern files stays what it was
            digests = []
            for path in self.pattern_files:
                try:
                    digests.append("sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16])
                except OSError:
                    digests.append(path)  # the stage reports it when it loads the packs
            return {"pattern_files": digests}

    needs_prepare: ClassVar[bool] = True

    def __init__(self, options: StageOptions | None = None, scorer_model: dict[str, Any] | None = None) -> None:
        """``scorer_model``: line scorer weights to use instead of the shipped ones (training, tests)."""
        super().__init__(options)
        self._scorer_model = scorer_model
        # Learnt by prepare(): line_hash of the keys of lines recurring corpus-wide, and per site.
        self.recurring: frozenset[int] = frozenset()
        self.recurring_by_site: dict[str, frozenset[int]] = {}
        self._build()

    # -- set-up -------------------------------------------------------------------------------

    def _load_packs(self) -> list[tuple[str, dict[str, Any]]]:
        opts = self.options
        shipped = available_languages()
        # codes in any case, as the language stage takes them: [EN, De] loads en and de
        languages = shipped if opts.languages is None else [lang.lower() for lang in opts.languages]
        for lang in languages:
            if lang not in shipped:
                close = difflib.get_close_matches(lang, shipped, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"boilerplate: no pattern pack for language {lang!r}{hint}; have {shipped}")
        packs = [(f"{COMMON_PACK}.yaml", _read_shipped_pack(COMMON_PACK))]
        packs += [(f"{lang}.yaml", _read_shipped_pack(lang)) for lang in languages]
        for path in opts.pattern_files:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as err:  # missing, a folder, unreadable
                raise ValueError(f"boilerplate: cannot read pattern file {path}: {err.strerror or err}") from None
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"boilerplate pack {path}: not valid UTF-8 ({err.reason} at byte {err.start})"
                ) from None
            from pipeline.config import _UniqueKeyLoader  # (the config module is not imported at start)

            try:
                pack = _parse_pack(text)
                # a rule or key given twice is an error (PyYAML keeps the last one without a word)
                yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
            except yaml.YAMLError as err:  # not a ValueError: the config loader would show a traceback
                raise ValueError(f"boilerplate pack {path}: {yaml_error(err)}") from None
            packs.append((path, _check_pack(pack or {}, path)))
        return packs

    def _known_rules(self, packs: list[tuple[str, dict[str, Any]]]) -> set[str]:
        known = set(STRUCTURAL_RULES) | {RECURRING_RULE, CONTENT_RULE, SCORER_RULE} | set(self.options.patterns)
        for name in [COMMON_PACK, *available_languages()]:
            known |= set(_read_shipped_pack(name).get("rules") or {})
        for _, pack in packs:
            known |= set(pack.get("rules") or {})
        return known

    def _build(self) -> None:
        opts = self.options
        packs = self._load_packs()
        known = self._known_rules(packs)
        for i, rule in enumerate(opts.disable_rules):
            if rule not in known:
                close = difflib.get_close_matches(rule, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise OptionError(f"disable_rules[{i}]", f"unknown rule {rule!r}{hint}")
        disabled = set(opts.disable_rules)
        both = sorted(disabled & set(opts.patterns))
        if both:  # the patterns were skipped without a word: a user replacing a shipped rule's patterns wrote this
            raise OptionError(
                f"patterns.{both[0]}",
                f"would never apply: {both[0]!r} is in disable_rules too (to replace the shipped rule, keep it "
                f"disabled and give your patterns another name, e.g. my-{both[0]})",
            )
        self._disabled = frozenset(disabled)

        exact: dict[str, str] = {}
        # User patterns come first so that they win over pack patterns matching the same line.
        whole: dict[str, list[str]] = {}
        for rule, user_patterns in opts.patterns.items():
            if rule in disabled:
                continue
            for pattern in user_patterns:
                _compile_user_pattern(pattern, f"patterns.{rule}")
                whole.setdefault(rule, []).append(pattern)
        phrases: list[tuple[str, str, bool, bool]] = []
        end_markers = set(DEFAULT_END_MARKERS)
        roots: set[str] = set()
        # Shipped patterns are checked by the tests, not compiled one by one here (~0.09 s of set-up):
        # the combined alternation compiles them; only if that fails are they checked one by one.
        user_files = set(opts.pattern_files)
        self._unchecked: list[tuple[str, str]] = []
        for where, pack in packs:
            roots |= {normalise(str(r)) for r in pack.get("breadcrumb_roots") or []}
            for rule, entry in (pack.get("rules") or {}).items():
                if entry.get("ends_article") is True:
                    end_markers.add(rule)
                elif entry.get("ends_article") is False:
                    end_markers.discard(rule)
                if rule in disabled:
                    continue
                for line in entry.get("lines") or []:
                    key = normalise(str(line))
                    if key:
                        exact.setdefault(key, rule)
                for pattern in entry.get("patterns") or []:
                    if where in user_files:
                        _compile_user_pattern(str(pattern), f"{where} rule {rule}")
                    else:
                        self._unchecked.append((str(pattern), f"{where} rule {rule}"))
                    whole.setdefault(rule, []).append(str(pattern))
                for phrase in entry.get("phrases") or []:
                    key = normalise(str(phrase))
                    if key:
                        phrases.append((key, rule, *_bounded(key)))

        self._exact = exact
        # The same as UTF-8 bytes: line_infos looks up the compiled pass's output without decoding it.
        self._exact_utf8 = {key.encode("utf-8", "surrogatepass"): rule for key, rule in exact.items()}
        # And their line_hash, sorted: kernels.key_hashes, which computes every new line's key hash anyway, looks
        # each up (a binary search); only the hits are looked up by their bytes (_exact_rules).
        hashes = list(map(xxhash.xxh3_64_intdigest, self._exact_utf8))
        self._exact_hashes = distinct_sorted(np.array(hashes, dtype=np.uint64))
        self._exact_bits = _hash_bits(self._exact_hashes)
        self._end_markers = frozenset(end_markers)
        self._group_rule: dict[str, str] = {}
        self._whole_rules = whole
        self._combine(whole, "w")
        self._init_buckets()
        # Plain substring search (C speed) confirms a phrase; the trie regex first tells in one pass
        # whether any phrase occurs at all (most lines contain none).
        self._phrases = tuple(phrases)
        self.__dict__.pop("_phrase_hint", None)  # (compiled at first use: _phrase_hint)
        self._phrase_table = _phrase_table([p for p, *_ in phrases])
        # Per distinct stripped line: what the rules say about it (a pure function of the line), as its row of
        # the columns below (row 0: a blank line; _line_count rows in use), found by the index (_LineIndex:
        # arrays only, nothing the garbage collector walks; a dict holding info tuples was tracked again each
        # time new ones went in, and the next collections walked all of its ~100k entries).
        self._line_cache = _LineIndex()
        self._line_count = 1
        # The rows as columns (kernels.LC_*, and the key hashes) for the compiled rule loop (_RowInfos makes a
        # row's _line_info tuple when asked for); replaced, never changed in place but for rows past the last
        # in use, so that a document's verdicts keep reading the rows they were found with after the cache
        # is emptied.
        self._line_cols, self._line_hashes = _empty_line_columns(1)
        self._line_recurring = self.recurring
        # Rule names by code (kernels.RULE_*, then the packs' rules as rows meet them), and the codes.
        self._rule_names: list[str | None] = [None, RECURRING_RULE, "breadcrumb", "widget-list", "navigation"]
        self._rule_names.append(CONTENT_RULE)
        self._rule_codes: dict[str | None, int] = {name: code for code, name in enumerate(self._rule_names)}
        self._marker_codes = np.array([rule in self._end_markers for rule in self._rule_names], dtype=np.bool_)
        self._name_array = _object_array(self._rule_names)
        # The recurring hash sets as sorted int64 arrays (the loop's binary search), by the set they are of.
        self._sorted_recurring: dict[str | None, tuple[frozenset[int], np.ndarray]] = {}
        # The rule loop's switches as int64 arrays, by their values (a handful of combinations a run).
        self._switch_arrays: dict[tuple[int, ...], np.ndarray] = {}
        # The counter of each rule's removed lines ("line-filter-" + rule), by rule.
        self._filter_counters: dict[str | None, str] = {}
        # process_ahead's work per document (by id), taken by process(); never pickled.
        self._ahead: dict[int, _Ahead] = {}
        self._crumbs_any = "breadcrumb" not in disabled or "breadcrumb-prefix" not in disabled
        self._scorer: TreeEnsemble | None = None
        if SCORER_RULE not in disabled and opts.line_scorer_threshold > 0:
            self._scorer = TreeEnsemble(self._scorer_model) if self._scorer_model else _shipped_scorer()
        self._context: ContextEnsemble | None = None
        if self._scorer is not None:
            if self._scorer_model:
                context = self._scorer_model.get("context")
                self._context = ContextEnsemble(context) if context else None
            else:
                self._context = _shipped_context()

        # Longest first; ties by the text, so that the patterns are the same strings in every process (set order
        # is not: re_cache could not keep them). Equal-length roots cannot both match at one place but as case
        # variants of one span, so the order of the ties changes no match.
        ordered = sorted(roots, key=lambda r: (-len(r), r))
        root_alt = "|".join(regex.escape(r) for r in ordered if r)
        self._roots = frozenset(roots)
        # "home", "1. startseite": a line that is only the root of a trail.
        self._root_line_re = regex.compile(rf"(?:\d+\.\s*)?(?:{root_alt})", regex.IGNORECASE)
        # First crumb: up to a few lead words ("you are here:", "date 2023-11-10") then a root word.
        self._crumb_root_re = regex.compile(
            rf"(?:[^\s]+\s+){{0,{CRUMB_LEAD_MAX_WORDS}}}?(?<![\w])(?:{root_alt})", regex.IGNORECASE
        )
        # Trail glued by HTML extraction: "HomeWorldPutin in Beijing ..." (root + uppercase letter).
        glued = "|".join(regex.escape(r[:1].upper() + r[1:]) for r in ordered)
        self._glued_re = regex.compile(rf"(?:{glued})(?=\p{{Lu}}\p{{Ll}})")
        # Quick exits for _breadcrumb: a root line is short (case-insensitive matching folds a
        # character to at most three) unless it starts with a number; a glued trail starts with
        # the capitalised first letter of a root (an empty root would match anywhere: no exit).
        self._root_max_chars = 3 * max((len(r) for r in roots), default=0)
        self._glued_heads = None if "" in roots else frozenset(r[:1].upper() for r in roots)
        # The glued alternation is case-sensitive literals: a match starts with one of them.
        self._glued_roots = tuple(r[:1].upper() + r[1:] for r in roots)
        # ASCII characters a root line can start with (a digit, or a root's first character as the
        # case-insensitive pattern matches it); keys starting with any other ASCII character are no root line.
        # (Only when every first character folds to one character: "ß" could match "ss".)
        heads_re = regex.compile("|".join([r"\d", *(regex.escape(r[:1]) for r in ordered if r)]), regex.IGNORECASE)
        simple = all(len(r[:1].casefold()) == 1 for r in roots)
        self._root_line_heads = frozenset(c for c in map(chr, range(128)) if not simple or heads_re.match(c))
        self._crumb_classes = _crumb_classes(self._roots, self._root_line_heads, self._glued_heads)
        # Lengths of the roots (1 at index n for a root of n characters), for line_facts' root-line gate.
        self._root_lengths = np.zeros(max((len(r) for r in roots), default=0) + 1, dtype=np.uint8)
        self._root_lengths[[len(r) for r in roots if r]] = 1
        # The hyperscan database of the whole-line patterns and phrases, built at first use (_prefilter).
        self._prefilter_db: prefilter.Prefilter | None | bool = False

    @functools.cached_property
    def _phrase_hint(self) -> re.Pattern | None:
        """The trie regex telling in one pass whether any contains-phrase occurs in a key, compiled at first use
        (~3 ms a process): with the prefilter, which finds the phrases itself, most processes never use it."""
        return _phrase_hint_re(tuple(p for p, *_ in self._phrases)) if self._phrases else None

    def _combine(self, rules: dict[str, list[str]], prefix: str) -> None:
        """One alternation with a named group per rule (matched with fullmatch, so anchored): its source in
        ``_whole_source`` (None without patterns), compiled by the stdlib engine when it can (it runs this
        alternation faster; `regex` is kept for \\p{...} and friends). An alternation this Python's ``re``
        compiled before (_stdlib_marker) is compiled only at its first use (_whole_re): with the
        prefilter most processes never use it, and compiling ~440 patterns takes ~0.16 s of start-up."""
        parts = []
        for i, (rule, patterns) in enumerate(rules.items()):
            group = f"{prefix}{i}"
            self._group_rule[group] = rule
            alts = "|".join(map(_wrap_pattern, patterns))
            parts.append(f"(?P<{group}>{alts})")
        self._whole_source = "|".join(parts) if parts else None
        self._whole_stdlib = True
        self._whole_compiled: re.Pattern | regex.Pattern | None = None
        if self._whole_source is None:
            return
        marker = _stdlib_marker(self._whole_source)
        if marker.exists():
            return
        try:
            self._whole_compiled = re.compile(self._whole_source)
        except re.error:
            for pattern, where in self._unchecked:  # the same error as for a user pattern
                _compile(pattern, where)
            self._whole_stdlib = False
            self._whole_compiled = regex.compile(self._whole_source, regex.IGNORECASE)
            return
        save_cache_file(marker, b"")

    @property
    def _whole_re(self) -> re.Pattern | regex.Pattern | None:
        """The compiled alternation of the whole-line patterns (_combine), compiled at first use."""
        if self._whole_compiled is None and self._whole_source is not None:
            self._whole_compiled = re.compile(self._whole_source)
        return self._whole_compiled

    def _init_buckets(self) -> None:
        """Prepare per-first-character sub-alternations of the whole-line patterns.

        A line is tried only against the patterns that can start with its first character, in the
        original order and with the same group names, so the first matching rule is the same one.
        Only for the stdlib engine (its parser tells the first characters)."""
        self._bucket_by_char: dict[str, Any] = {}
        self._bucket_by_members: dict[tuple[int, ...], Any] = {}
        # (rule index, wrapped pattern) of each whole-line pattern, in the alternation's order
        self._whole_patterns: list[tuple[int, str]] | None = None
        # Off once the prefilter holds the whole-line patterns (_prefilter): only a few lines per document
        # are then matched here, and compiling ~20 buckets (~0.4 s a process) costs more than they save.
        self._buckets_on = True
        if self._whole_source is None or not self._whole_stdlib:
            return
        # Their first characters are parsed only when a bucket is built (_whole_for): work (~0.01 s a
        # process) that the prefilter, holding the patterns, does not need.
        self._whole_patterns = [
            (i, _wrap_pattern(pattern)) for i, patterns in enumerate(self._whole_rules.values()) for pattern in patterns
        ]

    def _whole_for(self, ch: str) -> Any:
        """The compiled alternation of the whole-line patterns that can match a line starting with ch."""
        found = self._bucket_by_char.get(ch)
        if found is not None:
            return found
        members = tuple(j for j, (_i, wrapped) in enumerate(self._whole_patterns or ()) if _may_start_with(wrapped, ch))
        compiled = self._bucket_by_members.get(members)
        if compiled is None:
            groups: dict[int, list[str]] = {}
            for j in members:
                i, wrapped = self._whole_patterns[j]  # type: ignore[index]
                groups.setdefault(i, []).append(wrapped)
            parts = [f"(?P<w{i}>{'|'.join(alts)})" for i, alts in groups.items()]
            compiled = re.compile("|".join(parts)) if parts else False
            self._bucket_by_members[members] = compiled
        self._bucket_by_char[ch] = compiled
        return compiled

    # Compiled `regex` patterns are rebuilt in the worker rather than pickled; what prepare() learnt
    # travels with the options.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "stats": self.stats,
            "recurring": self.recurring,
            "recurring_by_site": self.recurring_by_site,
            "scorer_model": self._scorer_model,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options = state["options"]
        self.stats = state["stats"]
        self.recurring = state.get("recurring", frozenset())
        self.recurring_by_site = state.get("recurring_by_site", {})
        self._scorer_model = state.get("scorer_model")
        self._build()

    def rule_groups(self) -> dict[str, list[str]]:
        """Rule names by part of the stage (for ablations: pass a group to ``disable_rules``)."""
        own = set(STRUCTURAL_RULES) | {RECURRING_RULE, CONTENT_RULE, SCORER_RULE}
        packs = sorted(self._known_rules(self._load_packs()) - own)
        return {
            "packs": packs,
            "structure": list(STRUCTURAL_RULES),
            "recurring": [RECURRING_RULE],
            "content": [CONTENT_RULE],
            "scorer": [SCORER_RULE],
        }

    # -- first pass -----------------------------------------------------------------------------

    @staticmethod
    def site_of(doc: Document) -> str:
        """Host of the record's ``url`` (without "www."), else the input file."""
        url = (doc.record or {}).get("url")
        if isinstance(url, str) and url:
            # The usual URL (http(s), a lower-case host of letters, digits, dots and hyphens, no tab or line
            # break for urlsplit to drop) without urlsplit's ~5 µs: its hostname is that host as written.
            plain = _PLAIN_HOST_RE.match(url)
            if plain is not None and "\t" not in url and "\r" not in url and "\n" not in url:
                return plain.group(1).removeprefix("www.")
            host = urlsplit(url).hostname
            if host:
                return host.removeprefix("www.")
        return doc.source

    def prepare(self, docs: Iterable[Document]) -> None:
        """First pass in one process: the same as merging every document's ``prepare_part``."""
        self.prepare_merge(self.prepare_part(doc) for doc in docs)

    def prepare_part(self, doc: Document) -> tuple[str, np.ndarray, np.ndarray] | None:
        """What the first pass needs from one document (runs in worker processes): its site, the xxh3
        hashes of its distinct line keys, and which of them are long enough to count corpus-wide.
        Only numbers cross processes; None when the recurring rule is off."""
        if RECURRING_RULE in self._disabled:
            return None
        text = doc.text
        min_words = self.options.recurring_min_words
        # The distinct line keys' hashes (line_hash's, of their UTF-8), in order, and whether they count: one
        # compiled pass, unless a line needs Python (below).
        points = code_points(text)
        count, hashes, counted = kernels.recurring_hashes(
            points, _recurring_classes(), _lower_table(), RECURRING_MAX_CHARS, min_words
        )
        if count >= 0:
            return self.site_of(doc), hashes, counted
        # Every line's key and whether it counts, the keys Python normalises put in.
        out = np.empty(3 * points.size + 1, dtype=np.uint8)
        marks = np.empty(text.count("\n") + 1, dtype=np.uint8)
        size = kernels.recurring_keys(
            points, _shape_classes(), _lower_table(), _key_classes(), RECURRING_MAX_CHARS, min_words, out, marks
        )
        keys = out[:size].tobytes().split(b"\n")
        flags = marks.tolist()
        fallback = np.flatnonzero(marks == kernels.RECURRING_FALLBACK).tolist()
        lines = text.split("\n") if fallback else []
        for j in fallback:  # astral characters, Σ, ...: normalise() itself
            key = normalise(lines[j])
            keys[j] = key.encode("utf-8", "surrogatepass")
            flags[j] = (
                kernels.RECURRING_SKIP
                if not key
                else kernels.RECURRING_COUNTED
                if _key_words(key) >= min_words
                else kernels.RECURRING_SITE
            )
        # Distinct keys (first occurrence order) with their marks; the merge only counts them.
        found = dict(zip(compress(keys, flags), compress(flags, flags), strict=True))
        hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, found), dtype=np.uint64, count=len(found))
        counted = np.frombuffer(bytes(found.values()), dtype=np.uint8) == kernels.RECURRING_COUNTED
        return self.site_of(doc), hashes, counted

    def pack_parts(self, parts: list[object]) -> bytes | None:
        """One input file's prepare_part results as bytes: a JSON header (the file's sites, its document
        count), then per document its site's index and where its hashes end, then the hashes and flags
        of all its documents (~9 bytes a distinct line of a document; raw arrays, so that unpacking is
        a few views, not a parse). None when the recurring rule is off (the parts are None)."""
        if any(part is None for part in parts):
            return None
        typed: list[tuple[str, np.ndarray, np.ndarray]] = parts  # type: ignore[assignment]
        sites = list(dict.fromkeys(site for site, _, _ in typed))
        index = {site: i for i, site in enumerate(sites)}
        header = orjson.dumps({"sites": sites, "documents": len(typed)})
        header += b" " * (-(4 + len(header)) % 8)  # the arrays start 8-byte aligned
        arrays = [
            np.array([index[site] for site, _, _ in typed], dtype=np.int64),
            np.cumsum([hashes.size for _, hashes, _ in typed], dtype=np.int64),
            *(hashes.astype(np.uint64, copy=False) for _, hashes, _ in typed),
            *(counted.astype(np.bool_, copy=False) for _, _, counted in typed),
        ]
        return b"".join([len(header).to_bytes(4, "little"), header, *(a.tobytes() for a in arrays)])

    def part_bytes(self, part: object) -> int:
        if part is None:
            return 16
        _, hashes, counted = part  # type: ignore[misc]
        return hashes.nbytes + counted.nbytes + 250  # the arrays, and the objects around them

    def unpack_parts(self, payload: bytes) -> list[object]:
        size = int.from_bytes(payload[:4], "little")
        header = orjson.loads(payload[4 : 4 + size])
        n, at = header["documents"], 4 + size
        site = np.frombuffer(payload, dtype=np.int64, count=n, offset=at).tolist()
        ends = np.frombuffer(payload, dtype=np.int64, count=n, offset=at + 8 * n)
        total = int(ends[-1]) if n else 0
        at += 16 * n
        hashes = np.frombuffer(payload, dtype=np.uint64, count=total, offset=at)
        counted = np.frombuffer(payload, dtype=np.bool_, count=total, offset=at + 8 * total)
        sites, bounds = header["sites"], ends.tolist()
        starts = [0, *bounds[:-1]][:n]
        return [
            (sites[i], hashes[start:end], counted[start:end])
            for i, start, end in zip(site, starts, bounds, strict=True)
        ]

    def prepare_merge(self, parts: Iterable[tuple[str, np.ndarray, np.ndarray] | None]) -> None:
        """Count each distinct line once per document, per site and corpus-wide (main process, parts
        in input order), and keep the hashes of the recurring ones.

        Hashes are 64-bit xxh3 of the key (deterministic, so every run and process learns the same
        lines). The counts are sorted numpy arrays (_DocumentCounts: 16 bytes per distinct line and site,
        and per distinct line, where Counters took ~75 bytes an entry)."""
        opts = self.options
        self._line_cache.clear()  # its entries do not depend on what is learnt here, but stay lean
        self._line_count = 1
        self._line_cols, self._line_hashes = _empty_line_columns(1)
        corpus = _DocumentCounts()
        by_site = _DocumentCounts()
        site_ids: dict[str, int] = {}
        salts: list[int] = []
        # A document whose lines are exactly another's (a copy, the same keys in the same order) is counted
        # once: five copies of an article made every line of it "recurring", and all five were emptied.
        seen: set[int] = set()
        for part in parts:
            if part is None:
                continue
            site, hashes, counted = part
            if hashes.size:
                fingerprint = xxhash.xxh3_64_intdigest(hashes.data)
                if fingerprint in seen:
                    continue
                seen.add(fingerprint)
            site_id = site_ids.get(site)
            if site_id is None:
                site_id = site_ids[site] = len(site_ids)
                salts.append(_site_salt(site))
            by_site.add(hashes, site_id, salts[site_id])
            corpus.add(hashes, mask=counted)
        corpus_keys, _, corpus_counts = corpus.counts()
        self.recurring = frozenset(corpus_keys[corpus_counts >= opts.recurring_min_documents].tolist())
        keys, sites, counts = by_site.counts()
        docs = np.bincount(np.asarray(by_site.documents, dtype=np.int64), minlength=len(site_ids))
        need = np.maximum(opts.recurring_site_min_documents, opts.recurring_site_min_share * docs)
        need[docs < opts.recurring_site_min_documents] = np.inf  # too few documents to tell
        found = counts >= need[sites]
        hashes = keys[found] ^ np.array(salts, dtype=np.uint64)[sites[found]]
        names = list(site_ids)
        recurring: dict[int, list[int]] = {}
        for site_id, line in zip(sites[found].tolist(), hashes.tolist(), strict=True):
            recurring.setdefault(site_id, []).append(line)
        # (sites in the order they were first met)
        self.recurring_by_site = {names[i]: frozenset(recurring[i]) for i in sorted(recurring)}

    # -- per line -------------------------------------------------------------------------------

    def classify(self, line: str) -> str | None:
        """Rule name of a pattern-pack rule matching this (single) line, or None."""
        key = normalise(line)
        if not key:
            return None
        return self._classify_key(key, _key_words(key))

    def _classify_key(self, key: str, words: int, phrase_hit: bool | None = None, whole: bool = True) -> str | None:
        """The pack rule removing a line by its key; ``phrase_hit``: whether a phrase occurs in the key, when
        the caller knows (phrase_hits), else the phrase trie tells; ``whole`` False: the caller knows that no
        whole-line pattern matches (the prefilter reported none)."""
        rule = self._exact.get(key)
        if rule is not None:
            return rule
        if whole and self._whole_source is not None and len(key) <= MAX_WHOLE_LINE_CHARS:
            db = self._prefilter_db
            # With the prefilter holding the whole-line patterns, a key is tried with the patterns it reports
            # only, as in _pattern_rules: the lines the compiled pass leaves to Python (emoji, Σ) do not
            # compile the whole alternation (~0.16 s of a process).
            if not self._buckets_on and isinstance(db, prefilter.Prefilter):
                data = key.encode("utf-8", "surrogatepass")
                _lines, ids = db.scan(data, np.array([len(data)], dtype=np.int64))
                reported = [ident for ident in ids.tolist() if ident < db.patterns]
                whole = None
                rule = self._first_pattern_rule(key, reported) if reported else None
                if rule is not None:
                    return rule
            elif self._whole_patterns is None or not self._buckets_on:
                whole = self._whole_re
            else:
                whole = self._bucket_by_char.get(key[0])
                if whole is None:
                    whole = self._whole_for(key[0])
            m = whole.fullmatch(key) if whole else None
            if m is not None:
                return self._group_rule[m.lastgroup]
        if (
            words <= self.options.max_phrase_line_words
            and self._phrases  # (then there is a _phrase_hint)
            and (self._phrase_hint.search(key) is not None if phrase_hit is None else phrase_hit)
        ):
            for phrase, rule, head, tail in self._phrases:
                if phrase in key and _find_phrase(key, phrase, head, tail):
                    return rule
        return None

    def phrase_hits(self, keys: list[str], words: list[int]) -> list[bool] | None:
        """Per key, whether one of the contains-phrases occurs in it (what the phrase trie's search says),
        from one compiled pass over the document's keys; only for keys of at most max_phrase_line_words
        words (the only ones the phrases are looked for in; False for the others). None without phrases."""
        if self._phrase_table is None:
            return None
        hits = np.zeros(len(keys), dtype=np.bool_)
        kernels.phrase_lines(
            code_points("\n".join(keys)),
            np.asarray(words, dtype=np.int64),
            self.options.max_phrase_line_words,
            *self._phrase_table,
            hits,
        )
        return hits.tolist()

    def _breadcrumb(self, stripped: str, key: str, words: int) -> tuple[str, int] | None:
        """('breadcrumb', 0) for a whole-line trail, ('breadcrumb-prefix', n) to cut n leading chars."""
        if key in self._roots or (
            (len(key) <= self._root_max_chars or _DIGIT_RE.match(key))
            and (key[0] >= "\x80" or key[0] in self._root_line_heads)
            and self._root_line_re.fullmatch(key)
        ):
            return "breadcrumb", 0
        if (
            (self._glued_heads is None or (stripped[0] in self._glued_heads and stripped.startswith(self._glued_roots)))
            and self._glued_re.match(stripped)
            and not _SENTENCE_END_RE.search(stripped)
        ):
            return "breadcrumb", 0
        if not _separator_hint(stripped):
            return None
        if "<" in stripped:
            sep_re = _SEP_NO_GT_RE
        elif "«" in stripped:
            sep_re = _SEP_QUOTED_RE
        else:
            sep_re = _SEP_RE
        head = sep_re.search(stripped)  # the first of the separators
        if head is None:
            return None
        first = normalise(stripped[: head.start()])
        rooted = bool(first) and self._crumb_root_re.fullmatch(first) is not None
        # Without a root, two strong separators are needed; each holds one of » › → > (most lines with a
        # separator have at most one of them: no need to find all their separators).
        if not rooted and sum(map(stripped.count, _SEP_STRONG_CHARS)) < 2:
            return None
        seps = list(sep_re.finditer(stripped))
        if not rooted and len([s for s in seps if _SEP_STRONG_RE.search(s.group())]) < 2:
            return None
        if not rooted and (_SENTENCE_END_RE.search(stripped) or _DOTS_END_RE.search(stripped)):
            return None
        # Walk the crumbs; the first prose-like segment is content glued to the trail.
        bounds = [0, *(s.end() for s in seps)]
        ends = [*(s.start() for s in seps), len(stripped)]
        for i in range(1, len(bounds)):
            segment = stripped[bounds[i] : ends[i]]
            seg_key = normalise(segment)
            seg_words = _key_words(seg_key)
            if i == len(bounds) - 1 and rooted and looks_like_prose(stripped[bounds[i] :], seg_words):
                return "breadcrumb-prefix", bounds[i]
            if seg_words > CRUMB_MAX_WORDS or (seg_key and looks_like_prose(segment, seg_words)):
                if rooted and i >= 1 and looks_like_prose(stripped[bounds[i] :], words):
                    return "breadcrumb-prefix", bounds[i]
                return None
        return "breadcrumb", 0

    def _line_info(
        self, stripped: str, key: str | None = None, words: int = -1, phrase_hit: bool | None = None
    ) -> tuple[Any, ...]:
        """What the rules say about one non-blank stripped line, independent of its document:
        (key hash, words, pack rule, breadcrumb, prose, navigation item, body characters or -1, kept
        outside the article). Key hash: line_hash of the key (looked up in the recurring tables), 0 for a
        line a pack rule removes, None when nothing is left after normalisation. ``key``, ``words``:
        normalise(stripped) and its _key_words when the caller has them already;
        ``phrase_hit``: whether a phrase occurs in the key, when known (phrase_hits)."""
        if key is None:
            key = normalise(stripped)
        if not key:
            return _NO_KEY
        if words < 0:
            words = _key_words(key)
        rule = self._classify_key(key, words, phrase_hit)
        if rule is not None:
            return 0, words, rule, None, False, False, -1, False
        opts = self.options
        crumb = self._breadcrumb(stripped, key, words) if self._crumbs_any else None
        nav_max = opts.nav_max_words
        ends = sentence_end(stripped) if words < PROSE_MIN_WORDS or words <= nav_max else False
        prose = words >= PROSE_MIN_WORDS or ends
        nav = (
            0 < words <= nav_max
            and not ends
            and ":" not in stripped
            and not stripped.endswith((",", ";"))
            and _DIGIT_RE.search(key) is None
        )
        is_body = words >= PROSE_MIN_WORDS or (words >= opts.content_min_words and stripped[-1] in _BODY_END_CHARS)
        keep = is_body and words >= opts.content_keep_words
        if not keep:
            keep = is_quantity_line(stripped, words)
        return (
            line_hash(key),
            words,
            None,
            crumb,
            prose,
            nav,
            len(stripped) if is_body else -1,
            keep,
        )

    def line_infos(self, lines: list[str]) -> list[tuple[Any, ...] | None]:
        """_line_info of every line of a document (None for blank lines): from the cache of lines seen
        before, the others (each distinct one once) by _new_line_infos; made from the cache's columns."""
        rows, cols, hashes, _, _ = self._line_rows(lines)
        return list(_RowInfos(rows, cols, hashes, self._rule_names))

    def _line_rows(
        self, lines: list[str], text: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each line's row in the line cache (int64) with the columns and key hashes those rows are in
        (kernels.LC_*; the cache may be emptied after this, the arrays stay as they are), and the lines'
        code points (joined by newlines) with where each line starts in them (one more: size + 1): the rows from
        kernels.line_index, the new lines' rows made by _new_line_infos from the code points it gathers.
        ``text``: the lines joined by newlines, when the caller has it (the document's text it split)."""
        points = code_points("\n".join(lines) if text is None else text)
        rows, starts = self._index_lines(points, lines)
        return rows, self._line_cols, self._line_hashes, points, starts

    def _batch_line_rows(
        self, texts: list[str], lines_of: list[list[str]]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """_line_rows of several documents (their texts and lines: ``text.split("\n")``), from one
        kernels.line_index call and one _new_line_infos over their code points joined by newlines (a runner
        batch: ~10 kernel calls and a dozen small arrays a document less, ~10 us each page). The same rows'
        contents: a line's row depends on the line alone, and a line seen earlier in the batch is found in the
        index as it would be in the cache (the rows' numbers may differ where one call a document would have
        emptied the cache in the middle). Each document's points are a view of the batch's, its starts its own."""
        parts: list[np.ndarray] = []
        for text in texts:
            parts.append(code_points(text))
            parts.append(_NEWLINE_POINT)
        points = np.concatenate(parts[:-1]) if len(parts) > 2 else parts[0]
        # Read-only as code_points' own: the kernels keep their one compiled signature (a writable array is
        # another type to numba: another compile or cache load in every process).
        points.flags.writeable = False
        rows, starts = self._index_lines(points, list(chain.from_iterable(lines_of)))
        cols, hashes = self._line_cols, self._line_hashes
        out = []
        at = off = 0
        for text, lines in zip(texts, lines_of, strict=True):
            n, size = len(lines), len(text)
            out.append((rows[at : at + n], cols, hashes, points[off : off + size], starts[at : at + n + 1] - off))
            at += n
            off += size + 1
        return out

    def _index_lines(self, points: np.ndarray, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """_line_rows' rows and line starts of ``lines`` (``points``: their code points joined by newlines);
        the new lines' rows made (the line cache's columns may be new arrays after this)."""
        n = len(lines)
        index = self._line_cache
        count = self._line_count
        if self._line_recurring is not self.recurring or count - 1 > LINE_CACHE_MAX_LINES or not index.fits(count, n):
            # Emptied when full (it is only a speed-up: at most the limit and one document's lines), and when
            # the recurring set changed (the rows' recurring column is of the set they were made with); new
            # columns: those handed out stay as they are.
            self._clear_line_cache(n)
            count = 1
        index.reserve(count + n, points.size)
        # (The int64 arrays as slices of one: an np.empty costs ~3 slices.)
        ints = np.empty(5 * n + 4, dtype=np.int64)
        rows, starts, first = ints[:n], ints[n : 2 * n + 1], ints[2 * n + 1 : 3 * n + 1]
        lengths, begins, state = ints[3 * n + 1 : 4 * n + 1], ints[4 * n + 1 : 5 * n + 1], ints[5 * n + 1 :]
        state[0], state[1], state[2] = count, index.used, 0
        m = kernels.line_index(
            points, LINE_CACHE_MAX_CHARS, index.slots, index.row_start, index.row_len, index.pool,
            state, rows, starts, first, lengths, begins,
        )  # fmt: skip
        index.used = int(state[kernels.LI_POOL])
        if m:
            self._line_count = count + m
            try:
                self._new_line_infos(
                    points,
                    begins[:m],
                    lengths[:m],
                    int(state[kernels.LI_WRITTEN]),
                    _NewTexts(lines, first[:m].tolist()),
                    self._new_line_columns(count, m),
                )
            except BaseException:
                self._clear_line_cache(n)  # (the index already holds the new lines, their rows unfinished)
                raise
        return rows, starts

    def _clear_line_cache(self, lines: int = 0) -> None:
        """Empty the line cache (room for a document of ``lines`` lines), with new columns."""
        self._line_cache.clear(lines)
        self._line_count = 1
        self._line_cols, self._line_hashes = _empty_line_columns(max(len(self._line_cols), 1))
        self._line_recurring = self.recurring

    def _new_line_columns(self, base: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The line cache's columns and key hashes of rows base to base + m (zero), growing the arrays
        (into new ones: those handed out stay as they are) when full."""
        cols, hashes = self._line_cols, self._line_hashes
        if base + m > len(cols):
            cols, hashes = _empty_line_columns(max(2 * len(cols), base + m, 1024))
            cols[:base] = self._line_cols[:base]
            hashes[:base] = self._line_hashes[:base]
            self._line_cols, self._line_hashes = cols, hashes
        return cols[base : base + m], hashes[base : base + m]

    def _rule_code(self, name: str) -> int:
        """The code of a rule name in the line cache's columns (given at first sight)."""
        code = self._rule_codes.get(name)
        if code is None:
            code = self._rule_codes[name] = len(self._rule_names)
            self._rule_names.append(name)
            self._marker_codes = np.array([rule in self._end_markers for rule in self._rule_names], dtype=np.bool_)
            self._name_array = _object_array(self._rule_names)
        return code

    def _set_line_row(self, cols: np.ndarray, hashes: np.ndarray, j: int, text: str, info: tuple[Any, ...]) -> None:
        """Row j of the line cache's columns from a line's _line_info tuple (the few lines line_rows leaves)."""
        key_hash, words, rule, crumb, prose, nav, body, keep = info
        cols[j] = 0
        hashes[j] = 0
        cols[j, kernels.LC_NUMBERED] = _NUMBERED_ITEM_RE.match(text) is not None
        if key_hash is None:
            cols[j, kernels.LC_STATE] = kernels.LC_NO_KEY
            return
        hashes[j] = np.uint64(key_hash).view(np.int64)
        row = cols[j]
        row[kernels.LC_STATE] = kernels.LC_KEY
        row[kernels.LC_WORDS] = words
        if rule is not None:
            row[kernels.LC_RULE] = self._rule_code(rule)
            row[kernels.LC_MARKER] = rule in self._end_markers and _LIST_ITEM_RE.match(text) is None
        if crumb is not None:
            row[kernels.LC_CRUMB] = kernels.CRUMB_WHOLE if crumb[0] == "breadcrumb" else kernels.CRUMB_PREFIX
            row[kernels.LC_CUT] = crumb[1]
        row[kernels.LC_PROSE] = prose
        row[kernels.LC_NAV] = nav
        row[kernels.LC_BODY] = body
        row[kernels.LC_KEEP] = keep
        row[kernels.LC_TEASER] = prose and _listed_teaser(text)
        row[kernels.LC_RECURRING] = key_hash in self.recurring

    def _new_line_infos(
        self,
        points: np.ndarray,
        begins: np.ndarray,
        lengths: np.ndarray,
        joined: int,
        texts: Sequence[str],
        into: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """_line_info of each of these stripped non-blank lines (``points[begins[j] : begins[j] + lengths[j]]``:
        where kernels.line_index found them, read there; ``joined``: their code points and a newline between
        two), as the line cache rows ``into`` (columns and key hashes, zero; _row_info makes the same tuples
        from them): keys, words and the facts that only need the text (sentence end, navigation item, body,
        kept outside the article, whether a breadcrumb or quantity test can say yes) from one compiled pass
        (kernels.line_facts); pack rules from the exact-line table plus one hyperscan scan
        (boilerplate_prefilter) that tells the few lines to try with the whole-line patterns and which contain
        a phrase; Python only for the lines those passes flag, and for the lines the kernel leaves out (astral
        characters, Σ, İ: _line_info itself)."""
        m = len(texts)
        out = np.empty(3 * joined + 1, dtype=np.uint8)
        # The int64 and boolean arrays of the kernels below as slices of one array each (an np.empty costs ~3
        # slices; a page of new lines makes a dozen).
        ints = np.empty((5 + kernels.INFO_MARKS) * m + kernels.INFO_MARKS + 1, dtype=np.int64)
        ends, words_a, body_a, hits = ints[:m], ints[m : 2 * m], ints[2 * m : 3 * m], ints[3 * m : 4 * m]
        chars_a = ints[4 * m : 5 * m]
        marks, bounds = ints[5 * m : (5 + kernels.INFO_MARKS) * m], ints[(5 + kernels.INFO_MARKS) * m :]
        bools = np.empty(3 * m, dtype=np.bool_)
        prose, nav, keep_a = bools[:m], bools[m : 2 * m], bools[2 * m :]
        flags_a = np.empty(m, dtype=np.uint8)
        opts = self.options
        size = kernels.line_facts(
            points,
            begins,
            lengths,
            _shape_classes(),
            _lower_table(),
            _key_classes(),
            self._crumb_classes,
            self._root_lengths,
            opts.nav_max_words,
            opts.content_min_words,
            opts.content_keep_words,
            out,
            ends,
            words_a,
            flags_a,
            body_a,
            chars_a,
        )
        data = out[:size].tobytes()
        # line_hash of every key (the bytes of `data` are the keys' UTF-8, no surrogates: F_FALLBACK) straight
        # into the rows' hash column, and the exact-line rules of the few keys whose hash is an exact key's.
        cols, hash_col = into
        found = kernels.key_hashes(
            out[:size], ends, self._exact_hashes, self._exact_bits, hash_col.view(np.uint64), hits
        )
        rules = self._exact_rules(data, ends, hits[:found].tolist(), m)
        db = self._prefilter()
        # With the whole-line patterns in the prefilter only the few lines a rule may hit need their key
        # (decoded one by one); else every key goes through _classify_key.
        keys: Sequence[str] = _KeyView(data, ends) if db is not None and db.whole else data.decode("utf-8").split("\n")
        words = words_a.tolist()
        # The flagged lines of each kind and the boolean columns, from one call (not ~15 numpy calls).
        kernels.info_marks(flags_a, words_a, marks, bounds, prose, nav, keep_a)
        at = bounds.tolist()
        flagged = marks[: at[-1]].tolist()
        a, b, c, d, e, f = at  # the INFO_MARKS kinds' bounds in `flagged`
        # (The lines with no key, flagged[d:e], are line_rows' LC_NO_KEY rows: no words.)
        glued, crumb, quantity, fallback = flagged[a:b], flagged[b:c], flagged[c:d], flagged[e:f]
        scanned = _rule_scan_input(data, ends, chars_a, words_a, opts.max_phrase_line_words)
        self._pattern_rules(data, ends, keys, words, rules, scanned)
        crumbs = self._crumbs(texts, keys, words, rules, crumb, glued)
        if quantity:
            # (The lines stripped at once and one assignment: ~10k lines a pass, a Python-level read and a
            # numpy item each before.)
            quantity_texts = texts.pick(quantity) if isinstance(texts, _NewTexts) else [texts[j] for j in quantity]
            keep_a[quantity] = list(map(is_quantity_line, quantity_texts, [words[j] for j in quantity]))
        # The rows (kernels.LC_*) from one kernel call, but for the fallback lines and breadcrumbs.
        rule_codes = np.zeros(m, dtype=np.int32)  # (code 0: no rule, most lines)
        for j in compress(range(m), rules):
            rule_codes[j] = self._rule_code(rules[j])  # type: ignore[arg-type]
        kernels.line_rows(
            points, begins, lengths, _shape_classes(),
            flags_a, words_a, body_a, keep_a,
            rule_codes, self._marker_codes,
            self._sorted_hashes(None, self.recurring), cols, hash_col,
        )  # fmt: skip
        for j in compress(range(m), crumbs):
            kind, cut = crumbs[j]  # type: ignore[misc]
            cols[j, kernels.LC_CRUMB] = kernels.CRUMB_WHOLE if kind == "breadcrumb" else kernels.CRUMB_PREFIX
            cols[j, kernels.LC_CUT] = cut
        for j in fallback:
            self._set_line_row(cols, hash_col, j, texts[j], self._line_info(texts[j]))

    def _exact_rules(self, data: bytes, ends: np.ndarray, hits: list[int], m: int) -> list[str | None]:
        """The exact-line rule of each of the ``m`` keys (``data``: their UTF-8 joined by newlines, ``ends``:
        where each ends), None for most: only the ``hits`` (keys whose hash is an exact key's) can have one,
        each confirmed by its bytes (a different key with the same hash: the bytes decide)."""
        rules: list[str | None] = [None] * m
        exact = self._exact_utf8
        for j in hits:
            rules[j] = exact.get(data[int(ends[j - 1]) + 1 if j else 0 : int(ends[j])])
        return rules

    def _crumbs(
        self,
        texts: list[str],
        keys: Sequence[str],
        words: list[int],
        rules: list[str | None],
        crumb: list[int],
        glued: list[int],
    ) -> list[tuple[str, int] | None]:
        """_breadcrumb of the lines no pack rule removes, for the lines line_facts flags: ``crumb`` (a
        separator or a possible root line) and ``glued`` (only the glued-trail test can say yes); None for
        the others."""
        crumbs: list[tuple[str, int] | None] = [None] * len(texts)
        if not self._crumbs_any or not (crumb or glued):
            return crumbs
        # Most F_GLUED lines (~20k of the trafilatura pages' 120k) do not open with a root, which
        # startswith tells without a Python-level loop.
        glued_texts = texts.pick(glued) if isinstance(texts, _NewTexts) else list(map(texts.__getitem__, glued))
        opens = map(operator.methodcaller("startswith", self._glued_roots), glued_texts)
        for j in sorted(chain(crumb, compress(glued, opens))):
            if rules[j] is None:
                crumbs[j] = self._breadcrumb(texts[j], keys[j], words[j])
        return crumbs

    def _pattern_rules(
        self,
        data: bytes,
        ends: np.ndarray,
        keys: Sequence[str],
        counts: list[int],
        rules: list[str | None],
        scanned: tuple[bytes, np.ndarray] | None = None,
    ) -> None:
        """Fill in ``rules`` (the exact-line rules so far) what _classify_key says for the other keys: with the
        prefilter, only the keys it reports are tried, each with the whole-line patterns it reported in their
        order (the alternation's first match), then the phrases. Without the prefilter: _classify_key on every
        key, with the phrase kernel's hits. ``counts``: the keys' words; ``scanned``: what the prefilter scans
        instead of ``data`` and ``ends`` (_rule_scan_input)."""
        db = self._prefilter()
        if db is None:
            hits = self.phrase_hits(keys, counts)
            for j, key in enumerate(keys):
                if rules[j] is None and key:
                    rules[j] = self._classify_key(key, counts[j], hits[j] if hits is not None else None)
            return
        lines, ids = db.scan(*(scanned or (data, ends)))
        if not lines.size and db.whole:
            return  # nothing reported, nothing to try (many documents of new lines: a few µs each)
        # A handful of reports per document: plain Python beats a dozen small numpy calls here.
        phrased = set()
        reported: dict[int, list[int]] = {}
        patterns, max_words = db.patterns, self.options.max_phrase_line_words
        for line, ident in zip(lines.tolist(), ids.tolist(), strict=True):
            if ident < patterns:
                reported.setdefault(line, []).append(ident)
            elif 0 < counts[line] <= max_words:
                phrased.add(line)
        odd = set() if db.whole else set(range(len(keys)))
        for j in sorted(phrased | reported.keys() | odd):
            if rules[j] is not None:
                continue
            key = keys[j]
            if not key:
                continue
            if j in odd:
                rules[j] = self._classify_key(key, counts[j], j in phrased)
                continue
            rule = self._first_pattern_rule(key, reported[j]) if j in reported else None
            if rule is None and j in phrased:
                rule = self._classify_key(key, counts[j], True, whole=False)
            rules[j] = rule

    def _first_pattern_rule(self, key: str, candidates: list[int]) -> str | None:
        """The rule of the first whole-line pattern (in the alternation's order) among ``candidates`` that
        fullmatches ``key``: what the alternation's fullmatch picks when no other pattern can match."""
        if len(key) > MAX_WHOLE_LINE_CHARS:
            return None
        patterns = self._whole_patterns
        for ident in sorted(candidates):
            rule_index, wrapped = patterns[ident]  # type: ignore[index]
            if _compiled_pattern(wrapped).fullmatch(key):
                return self._group_rule[f"w{rule_index}"]
        return None

    def _prefilter(self) -> prefilter.Prefilter | None:
        """The stage's hyperscan database (built at first use; None without hyperscan)."""
        if self._prefilter_db is False:
            whole = (
                [wrapped for _i, wrapped in self._whole_patterns]
                if self._whole_patterns is not None
                else None  # patterns for the `regex` engine: not translated, re decides every line
            )
            if self._whole_source is None:
                whole = []
            self._prefilter_db = db = prefilter.build(whole, [p for p, *_ in self._phrases])
            self._buckets_on = db is None or not db.whole
        return self._prefilter_db  # type: ignore[return-value]

    # -- per document ---------------------------------------------------------------------------

    def process_ahead(self, docs: list[Document]) -> None:
        """Do the first part of process() for these documents (a runner batch, about to be processed one by
        one) phase by phase: every document's rule verdicts (its lines' facts: line_facts, the hyperscan
        scan), then every document's line-scorer kernels (_scored). Each phase's tables (the scan's ~2.3 MB
        database, the lexicon, the trees) then stay in the CPU caches from one document to the next rather
        than each evicting the others'. The results wait for each document's process() call, which takes
        them if the document and its text are still the ones seen here (else it does the work itself);
        counters are counted there, in the same order. A document that fails here is left to process(),
        whose error the runner reports."""
        ahead: dict[int, _Ahead] = {}
        todo = [(doc, doc.text) for doc in docs if doc.text]
        lines_of = [text.split("\n") for _doc, text in todo]
        # Every document's line rows at once (_batch_line_rows); on an error each document's own, as process().
        try:
            line_rows: list[Any] = self._batch_line_rows([text for _doc, text in todo], lines_of)
        except Exception:  # noqa: BLE001 - process() does it again and reports the error
            line_rows = [None] * len(todo)
        for (doc, text), lines, found in zip(todo, lines_of, line_rows, strict=True):
            try:
                verdicts, counters = self._rule_verdicts_counted(doc, lines, text=text, line_rows=found)
            except Exception:  # noqa: BLE001 - process() does it again and reports the error
                continue
            ahead[id(doc)] = _Ahead(doc, text, lines, verdicts, counters)
        # The documents _compiled_log_odds can score, scored in groups (_scored_group: each model's trees in one
        # call for the group) of up to SCORED_GROUP_ROWS candidates.
        group: list[tuple[int, list[int], tuple[list[str], RuleVerdicts, ScorerInputs, tuple[np.ndarray, np.ndarray]]]]
        group = []
        rows = 0
        for key, got in list(ahead.items()):
            doc, text, lines, v, counters, _ = got
            # (The document's code points are read for the scorer's inputs only, here: not kept for the batch;
            # where its lines start is, by _write_out. The tuples built, not _replace'd: a third of the time.)
            kept = RuleVerdicts(*v[:_POINTS_FIELD], None, *v[_POINTS_FIELD + 1 :])
            ahead[key] = _Ahead(doc, text, lines, kept, counters)
            if v.stretch is None or self._scorer is None:
                continue
            try:
                cand = scorer_candidates(lines, v)
                if not cand:
                    continue
                inputs = _scorer_inputs(lines, v, cand)
                astral = self._compiled_astral(inputs)
                if astral is None:
                    ahead[key] = _Ahead(doc, text, lines, kept, counters, (cand, *self._scored(lines, v, cand, inputs)))
                    continue
            except Exception:  # noqa: BLE001 - as above
                del ahead[key]
                continue
            if group and rows + len(cand) > SCORED_GROUP_ROWS:
                self._score_ahead(ahead, group)
                group, rows = [], 0
            group.append((key, cand, (lines, v, inputs, astral)))
            rows += len(cand)
        if group:
            self._score_ahead(ahead, group)
        self._ahead = ahead

    def _score_ahead(
        self,
        ahead: dict[int, _Ahead],
        group: list[tuple[int, list[int], tuple[list[str], RuleVerdicts, ScorerInputs, tuple[np.ndarray, np.ndarray]]]],
    ) -> None:
        """process_ahead's scores of a group of documents (_scored_group; the step-by-step path for those the
        kernel leaves to Python), into their _Ahead entries; on an error the group's documents are left to
        process()."""
        try:
            scores = self._scored_group([job for _key, _cand, job in group])
        except Exception:  # noqa: BLE001 - process() does it again and reports the error
            for key, _cand, _job in group:
                del ahead[key]
            return
        for (key, cand, (lines, v, inputs, _astral)), odds in zip(group, scores, strict=True):
            got = ahead[key]
            try:
                scored = (odds, inputs) if odds is not None else self._scored_step_by_step(lines, v, cand, inputs)
            except Exception:  # noqa: BLE001 - as above
                del ahead[key]
                continue
            ahead[key] = _Ahead(got.doc, got.text, got.lines, got.verdicts, got.counters, (cand, *scored))

    def process(self, doc: Document) -> None:
        text = doc.text
        if not text:
            return
        got = self._ahead.pop(id(doc), None) if self._ahead else None
        scored = None
        if got is not None and got.doc is doc and got.text is text:
            lines, verdicts, scored = got.lines, got.verdicts, got.scored
            for name in got.counters:
                self.stat_update(name)
        else:
            lines = text.split("\n")
            verdicts = self.rule_verdicts(doc, lines)
        verdict = verdicts.verdict
        if verdicts.stretch is not None and self._scorer is not None:
            self._mark_scored_lines(lines, verdicts, scored)
        if verdict.count(None) != len(verdict):
            title = _url_title_line(lines, verdict, verdicts.infos, (doc.record or {}).get("url"), text)
            if title is not None:
                verdict[title] = None
                self.stat_update("url-title-kept")
        self._write_out(doc, lines, verdict, verdicts.prefixes, verdicts.new_text, verdicts.starts)

    def rule_verdicts(self, doc: Document, lines: list[str], scorer: bool | None = None) -> RuleVerdicts:
        """What the rules say about every line of a document (before the line scorer). ``scorer``:
        whether the line scorer judges the lines around the article stretch, so that the margin rule
        ('outside-content') stays off (default: whether the scorer is on; training sets True).

        A document most of whose body text recurs in other documents is a copy of content (an article
        syndicated to several sites, reposted on the same one), not a page of template lines: the
        recurring rule would take its body from every copy, the first included, so its body lines are
        left to dedup, which keeps the first copy (``RECURRING_COPY_SHARE``, ``RECURRING_COPY_LINES``).
        A sentence that recurs across the corpus but not in the site's template, standing between two
        kept paragraphs of prose, is kept (_recurring_sentences_in_prose)."""
        verdicts, counters = self._rule_verdicts_counted(doc, lines, scorer)
        for name in counters:
            self.stat_update(name)
        return verdicts

    def _rule_verdicts_counted(
        self,
        doc: Document,
        lines: list[str],
        scorer: bool | None = None,
        text: str | None = None,
        line_rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[RuleVerdicts, list[str]]:
        """rule_verdicts, and the counters it counts (in order) instead of counting them (``text``: the
        lines joined by newlines, when the caller has it; ``line_rows``: _line_rows', when the caller has them)."""
        counters: list[str] = []
        verdicts, recurring_body, body = self._rule_verdicts(doc, lines, scorer, False, text, line_rows)
        if recurring_body >= RECURRING_COPY_LINES and recurring_body >= RECURRING_COPY_SHARE * body:
            counters.append("recurring-copy-kept")
            verdicts, _, _ = self._rule_verdicts(doc, lines, scorer, True, text, line_rows)
        elif recurring_body and self.recurring:
            site = self.recurring_by_site.get(self.site_of(doc), frozenset())
            for i in _recurring_sentences_in_prose(lines, verdicts.verdict, verdicts.infos, site):
                verdicts.verdict[i] = None
                counters.append("recurring-sentence-kept")
        return verdicts, counters

    def _rule_verdicts(
        self,
        doc: Document,
        lines: list[str],
        scorer: bool | None,
        copy: bool,
        text: str | None = None,
        line_rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[RuleVerdicts, int, int]:
        """rule_verdicts, and the body lines the recurring rule removed and all the body lines it saw;
        ``copy``: body lines are not removed as recurring. The loop, navigation and the article stretch
        run compiled (kernels.rule_loop) over the line cache's columns; tests/boilerplate_reference.py has
        the same in Python, step by step (the definition the loop is tested against)."""
        opts = self.options
        disabled = self._disabled
        n = len(lines)
        if scorer is None:
            scorer = self._scorer is not None
        recurring_on = RECURRING_RULE not in disabled
        site = self.site_of(doc) if recurring_on else None
        # An extractor (the extract stage) already kept only the main content: looking for the
        # article again inside its output can only lose content.
        content_on = CONTENT_RULE not in disabled and not doc.meta.get("extracted")
        rows, cols, hashes, points, starts = self._line_rows(lines, text) if line_rows is None else line_rows
        values = (
            recurring_on,
            copy,
            "breadcrumb" not in disabled,
            "breadcrumb-prefix" not in disabled,
            opts.remove_trailing_blocks and "widget-list" not in disabled,
            opts.trailing_max_words,
            content_on,
            "navigation" not in disabled,
            not scorer,
            opts.content_removed_penalty,
            opts.content_marker_penalty,
            SEEN_PROSE_MIN_WORDS,
            opts.nav_min_run,
            opts.content_line_penalty,
            opts.content_margin,
        )
        # (Looked up: the same few tuples every document, and an array made from 15 values costs ~1 µs.)
        switches = self._switch_arrays.get(values)  # type: ignore[arg-type]
        if switches is None:
            switches = self._switch_arrays[values] = np.array(values, dtype=np.int64)  # type: ignore[index]
        codes = np.empty(n, dtype=np.int32)
        ints = np.empty(3 * n + kernels.RL_COUNTS, dtype=np.int64)
        at, counts = ints[: 3 * n], ints[3 * n :]  # the cut lines', markers' and scored lines' numbers; counts
        kernels.rule_loop(
            cols,
            hashes,
            rows,
            self._sorted_hashes(site, self.recurring_by_site.get(site, _NO_HASHES)) if site is not None else _NO_KEYS,
            switches,
            codes,
            at[:n],
            at[n : 2 * n],
            at[2 * n :],
            counts,
        )
        got = counts.tolist()
        names = self._rule_names
        # (An object array's take and tolist: a third of the time of a Python lookup per line.)
        verdict: list[str | None] = self._name_array.take(codes).tolist()
        prefixes: dict[int, str] = {}
        new_text: dict[int, str] = {}
        for i in at[: got[kernels.RL_PREFIXES]].tolist():
            line = lines[i]
            cut = len(line) - len(line.lstrip()) + int(cols[rows[i], kernels.LC_CUT])
            prefixes[i] = line[:cut]
            new_text[i] = line[cut:]
        markers = at[n : n + got[kernels.RL_MARKERS]].tolist()
        scored = at[2 * n : 2 * n + got[kernels.RL_SCORED]].tolist() if content_on else None
        stretch = (got[kernels.RL_START], got[kernels.RL_END]) if got[kernels.RL_STRETCH] else None
        infos = _RowInfos(rows, cols, hashes, names)
        verdicts = RuleVerdicts(
            verdict, prefixes, new_text, infos, stretch, markers, scored, rows, cols, points, starts
        )
        return verdicts, got[kernels.RL_RECURRING_BODY], got[kernels.RL_BODY_LINES]

    def _sorted_hashes(self, site: str | None, hashes: frozenset[int]) -> np.ndarray:
        """A recurring hash set (``site`` None: the corpus-wide one) as a sorted int64 array, made once a set."""
        if not hashes:
            return _NO_KEYS  # (most sites: not kept, one entry per site would pile up)
        got = self._sorted_recurring.get(site)
        if got is not None and got[0] is hashes:
            return got[1]
        keys = np.fromiter(hashes, dtype=np.uint64, count=len(hashes)).view(np.int64)
        keys.sort()
        self._sorted_recurring[site] = (hashes, keys)
        return keys

    def _write_out(
        self,
        doc: Document,
        lines: list[str],
        verdict: list[str | None],
        prefixes: dict[int, str],
        new_text: dict[int, str],
        line_starts: np.ndarray | None = None,
    ) -> None:
        """Record every removal and counter, and set the document's text to the kept lines (``line_starts``:
        where each line starts in the text, one more: its length + 1, when the caller has them)."""
        if not new_text and not any(verdict):
            return
        n = len(lines)
        name = self.name
        text: str | None = None
        if prefixes:
            out, counts = _cut_lines(self.name, lines, verdict, prefixes, new_text, doc.removed)
        else:
            # No line cut: C-level passes over the verdicts (a rule name is a non-empty string), in line order.
            rules: Sequence[str | None]
            if line_starts is not None and "\r" not in doc.text:
                # (No carriage return: a removed line's text is the line; its offsets from where the lines
                # start; the kept text is the text but the cuts, a slice per run of kept lines.) The removed
                # lines' texts and rules gathered by their numbers: one pass over the verdicts, not three.
                picked = list(compress(range(n), verdict))
                if len(picked) > 1:
                    get = operator.itemgetter(*picked)
                    texts, rules = get(lines), get(verdict)
                else:
                    texts, rules = [lines[picked[0]]], [verdict[picked[0]]]
                starts, ends, cut_starts, cut_ends = _removed_lines_at(doc, verdict, line_starts, picked)
                text = _without_cuts(doc.text, cut_starts, cut_ends)
            else:
                out = list(compress(lines, map(operator.not_, verdict)))
                texts = list(map(str.rstrip, compress(lines, verdict), repeat("\r")))
                starts, ends = removed_lines_at(doc, lines, verdict, texts)
                rules = list(compress(verdict, verdict))
            doc.removed.extend(map(Removal, repeat(name), rules, texts, repeat(1), repeat(None), starts, ends))
            counts = Counter(rules)
        if text is None:
            # Kept lines are joined by newlines; every kept line had one after it except the last line.
            text = "\n".join(out)
            if out and verdict[n - 1] is not None:
                text += "\n"
        doc.text = text
        names = self._filter_counters
        for rule, count in counts.items():
            name = names.get(rule)
            if name is None:
                name = names[rule] = f"line-filter-{rule}"  # (made once a rule, not once a document)
            self.stat_update(name, count)

    def _mark_scored_lines(
        self, lines: list[str], v: RuleVerdicts, scored: tuple[list[int], np.ndarray, ScorerInputs] | None = None
    ) -> None:
        """Line scorer: remove the kept lines whose content probability is below line_scorer_threshold,
        except the items of a list announced by a line ending with a colon ("You will need:") and
        ingredient/spec lines ("½ TL Salz"), which the margin rule never removed either, and a
        headline: the page's first line or the line above the article's date line, right above kept prose
        (_kept_headlines, counter ``headline-kept``). The items of a numbered list most of whose items it
        kept are all kept (_numbered_list_items, counter ``numbered-item-kept``), and so is a sentence
        between two kept paragraphs of prose (_sentences_between_prose, counter ``sentence-kept``).
        ``scored``: the candidates and what _scored gives for them, when process_ahead found them."""
        cand = scorer_candidates(lines, v) if scored is None else scored[0]
        if not cand or self._scorer is None:
            return
        # p < threshold  <=>  log-odds < logit(threshold)
        low = float(np.log(self.options.line_scorer_threshold / (1 - self.options.line_scorer_threshold)))
        verdict = v.verdict
        odds, inputs = self._scored(lines, v, cand) if scored is None else scored[1:]
        # Below the threshold and not an item of an announced list (_announced_list_items from the features'
        # colon and list-item columns: exact for every line). A quantity line is always kept outside the
        # article (_line_info): only the lines with the keep mark (from `split` on) are tested.
        below, split = kernels.scorer_removals(
            odds, low, inputs.x, _ENDS_COLON, _LIST_ITEM, inputs.rows, inputs.removed, inputs.facts, kernels.COL_KEEP
        )
        below = below.tolist()
        removed = below[:split]
        for i in removed:
            verdict[i] = SCORER_RULE
        marked = below[split:]
        if marked:
            # (Their words from the columns at once, not a _line_info tuple per line.)
            words = None if v.cols is None or v.rows is None else v.cols[v.rows[marked], kernels.LC_WORDS].tolist()
            marked = [
                i
                for k, i in enumerate(marked)
                if not is_quantity_line(lines[i].strip(), v.infos[i][1] if words is None else words[k])  # type: ignore[index]
            ]
        for i in marked:
            verdict[i] = SCORER_RULE
        # The lines it removed, in line order (the kernel lists each part in line order; the candidates were
        # kept lines, so these are all the lines with the scorer's verdict).
        if marked:
            removed = sorted(removed + marked)
        for i in _numbered_list_items(lines, verdict, v.infos, removed):
            verdict[i] = None
            self.stat_update("numbered-item-kept")
        for i in _sentences_between_prose(lines, verdict, v.infos, removed):
            verdict[i] = None
            self.stat_update("sentence-kept")
        for i in _kept_headlines(lines, verdict, v.infos):
            verdict[i] = None
            self.stat_update("headline-kept")

    def _line_log_odds(self, lines: list[str], v: RuleVerdicts, cand: list[int]) -> np.ndarray:
        """Log-odds that each candidate line is content: the first model on the line's own features,
        then, when the model has one and its lexicon covers the document's language, the context model
        on those features plus the first model's scores of the line and its neighbours (context_features),
        word evidence (lexical_features), shared vocabulary (document_features) and its segment's and
        block's scores (block_features). The definition, step by step; the cleaning pass computes the
        same bits in one compiled call (_scored)."""
        return self._log_odds_of(lines, v, cand, _scorer_inputs(lines, v, cand))

    def _scored(
        self, lines: list[str], v: RuleVerdicts, cand: list[int], inputs: ScorerInputs | None = None
    ) -> tuple[np.ndarray, ScorerInputs]:
        """_line_log_odds, and the inputs of the first model (the candidates' features and facts): from
        kernels.score_log_odds, or step by step for the documents and models it does not cover. ``inputs``:
        _scorer_inputs', when the caller has them."""
        if inputs is None:
            inputs = _scorer_inputs(lines, v, cand)
        odds = self._compiled_log_odds(v, inputs)
        if odds is None:
            return self._scored_step_by_step(lines, v, cand, inputs)
        return odds, inputs

    def _scored_step_by_step(
        self, lines: list[str], v: RuleVerdicts, cand: list[int], inputs: ScorerInputs
    ) -> tuple[np.ndarray, ScorerInputs]:
        # The step-by-step path reads the candidates' code points (4 bytes a character) only for their
        # words: found first, the points are let go before the context features are built.
        words = None if self._context is None else self._context.compiled.candidate_words(lines, cand, inputs.points)
        inputs = inputs._replace(points=_NO_POINTS)
        return self._log_odds_of(lines, v, cand, inputs, words), inputs

    def _compiled_log_odds(self, v: RuleVerdicts, inputs: ScorerInputs) -> np.ndarray | None:
        """kernels.score_log_odds of a document's candidates, or None when it cannot give _log_odds_of's
        values: trees kernels.binned_trees cannot take (deeper than 3), a context model whose features are
        not laid out as the kernel builds them, words with astral characters lower-casing to several
        characters or that the kernel leaves to Python, SCORED_MAX_ROWS candidates or more."""
        astral = self._compiled_astral(inputs)
        if astral is None:
            return None
        scorer, context = self._scorer, self._context
        assert scorer is not None
        second = context if context is not None else scorer  # (arrays of the right types when there is none)
        lexicon = context.compiled if context is not None else _empty_lexicon()
        start, end = v.stretch if v.stretch is not None else (0, 0)
        odds = np.empty(len(inputs.rows), dtype=np.float64)
        status = kernels.score_log_odds(
            inputs.x, inputs.rows, np.ascontiguousarray(inputs.facts[:, kernels.COL_BODY_CHARS]), inputs.removed,
            start, end,
            scorer._binned, context is not None, second._binned,
            *_context_args(inputs, astral, lexicon), odds,
        )  # fmt: skip
        return None if status == kernels.SCORED_WORDS_IN_PYTHON else odds

    def _compiled_astral(self, inputs: ScorerInputs) -> tuple[np.ndarray, np.ndarray] | None:
        """The astral tables kernels.score_log_odds reads for these inputs, or None when _compiled_log_odds
        would answer None before calling it (the models, the candidates' count, their characters)."""
        scorer, context = self._scorer, self._context
        if scorer is None or scorer._binned is None:
            return None
        if context is not None and (context._binned is None or not _fused_context_layout()):
            return None
        if context is not None and len(inputs.rows) >= kernels.SCORED_MAX_ROWS:
            return None  # what the kernel would answer, after the first model (and a copy of x)
        astral, astral_lower = (
            _astral_table(inputs.points) if context is not None and not inputs.bmp else (_NO_ASTRAL, _NO_ASTRAL)
        )
        if astral is None or astral_lower is None:
            return None
        return astral, astral_lower

    def _scored_group(
        self, group: list[tuple[list[str], RuleVerdicts, ScorerInputs, tuple[np.ndarray, np.ndarray]]]
    ) -> list[np.ndarray | None]:
        """_compiled_log_odds of several documents (each: its lines, verdicts, scorer inputs and
        _compiled_astral's tables), the same bits, with each model's trees run once over all their
        candidates (kernels._tree_log_odds: ~7 µs of fixed work a call, most of a small document's trees;
        a row's log-odds do not depend on the other rows) and kernels.context_features per document."""
        scorer, context = self._scorer, self._context
        assert scorer is not None
        sizes = [len(inputs.rows) for _lines, _v, inputs, _astral in group]
        total = sum(sizes)
        # The candidates' features stacked (row copies), then one transposition: ~35 % less time than a
        # transposed copy of each document's into its columns.
        xt = np.ascontiguousarray(np.concatenate([inputs.x for _lines, _v, inputs, _astral in group]).T)
        first = kernels._tree_log_odds(xt, scorer._binned)
        if context is None:
            return list(np.split(first, np.cumsum(sizes)[:-1]))
        lexicon = context.compiled
        xt2 = np.empty((len(ContextEnsemble.expected_features()), total), dtype=np.float64)
        statuses = []
        at = at2 = 0
        for (_lines, v, inputs, astral), m in zip(group, sizes, strict=True):
            start, end = v.stretch if v.stretch is not None else (0, 0)
            status = kernels.context_features(
                xt, first, at, m, inputs.rows, np.ascontiguousarray(inputs.facts[:, kernels.COL_BODY_CHARS]),
                inputs.removed, start, end,
                *_context_args(inputs, astral, lexicon), xt2, at2,
            )  # fmt: skip
            statuses.append(status)
            at += m
            at2 += m if status == kernels.SCORED_CONTEXT else 0
        second = kernels._tree_log_odds(xt2 if at2 == total else np.ascontiguousarray(xt2[:, :at2]), context._binned)
        out: list[np.ndarray | None] = []
        at = at2 = 0
        for status, m in zip(statuses, sizes, strict=True):
            if status == kernels.SCORED_CONTEXT:
                out.append(second[at2 : at2 + m])
                at2 += m
            else:
                out.append(None if status == kernels.SCORED_WORDS_IN_PYTHON else first[at : at + m])
            at += m
        return out

    def _log_odds_of(
        self,
        lines: list[str],
        v: RuleVerdicts,
        cand: list[int],
        inputs: ScorerInputs,
        words: CandidateWords | None = None,
    ) -> np.ndarray:
        """_line_log_odds from the first model's inputs, step by step (``words``: the candidates' words,
        when the caller has them)."""
        x = inputs.x
        odds = self._scorer.log_odds(x)  # type: ignore[union-attr]
        if self._context is None:
            return odds
        if words is None:
            words = self._context.compiled.candidate_words(lines, cand, inputs.points)
        if lexicon_coverage(words.weight) < CONTEXT_MIN_KNOWN_SHARE:
            return odds
        rows = inputs.rows
        context = context_features(lines, v, cand, odds, rows)
        lexical = lexical_features(words)
        start, end = v.stretch if v.stretch is not None else (0, 0)
        in_body = (rows >= start) & (rows < end) & (inputs.facts[:, kernels.COL_BODY_CHARS] > 0)
        document = document_features(words, v, cand, in_body)
        blocks = block_features(v, cand, odds, np.diff(inputs.removed).astype(np.bool_), rows)
        return self._context.log_odds((x, context, lexical, document, blocks))
