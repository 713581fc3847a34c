"""Compiled (numba) loops of the boilerplate stage: per-line lookup keys and word counts of a whole
document, per-line character counts of its candidate lines, each in one call instead of several Python
calls per line.

The stage's options, rules and features stay in ``boilerplate.py``; these only count. Input is the
code-point array of the lines joined by newlines (lines themselves hold no newline).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipeline.stages.aot_kernels import numba  # (numba's njit, or the compiled kernels')
from pipeline.stages.text_kernels import FNV_OFFSET, FNV_PRIME, distinct_sorted, same_run, table_size
from pipeline.stages.xxh3_kernel import xxh3_64

# Bits of the per-code-point class table (Basic Multilingual Plane; astral lines are left to the caller).
DIGIT, UPPER, ALPHA, ALNUM, SPACE, WORD = 1, 2, 4, 8, 16, 32
# \s and \d of the `regex` module (the list-item pattern's engine), which differ from the str methods.
RE_SPACE, RE_DIGIT = 64, 128
# Columns of line_shape_counts' output.
(
    C_DIGITS,
    C_UPPER,
    C_LETTERS,
    C_ALNUM,
    C_SPACES,
    C_TITLE,
    C_TOKENS,
    C_FUNCTION,
    C_URL,
    C_COLON,
    C_FALLBACK,
    C_LIST,
) = range(12)
COLUMNS = 12
# Function words are matched as packed keys: a leading 1, then 10 bits per character.
KEY_MAX_CHARS = 6
KEY_MAX_POINT = 0x400
NEWLINE = 10
# In the lower-case table: a character whose lower case is several characters.
NO_LOWER = 0xFFFFFFFF
# recurring_keys' marks per line.
RECURRING_SKIP = 0
RECURRING_COUNTED = 1
RECURRING_SITE = 2
RECURRING_FALLBACK = 3
# Bits of the key classes' per-code-point table (_line_key): stripped from a key's ends; a CJK character (half a word).
KEY_EDGE, KEY_CJK = 1, 2


@numba.njit(cache=True, nogil=True)
def _is_title(c: np.uint32) -> bool:
    # The character class of the title-case pattern: [A-ZÀ-ÖØ-ÞĀ-Ž].
    return (65 <= c <= 90) or (0xC0 <= c <= 0xD6) or (0xD8 <= c <= 0xDE) or (0x100 <= c <= 0x17D)


@numba.njit(cache=True, nogil=True)
def _lower_at(points: np.ndarray, p: int, lower: np.ndarray, c: int) -> bool:
    # Whether the lower-cased character at p is c (a newline or an astral character never is).
    return p < points.size and points[p] < 0x10000 and lower[points[p]] == c


@numba.njit(cache=True, nogil=True)
def _url_sign_at(points: np.ndarray, p: int, lower: np.ndarray) -> bool:
    # "@", "©", "(c)", "http:", "https:", "www.", "copyright" starting at p, lower-cased.
    c = lower[points[p]]
    if c == 64 or c == 0xA9:
        return True
    if c == 40:  # (c)
        return _lower_at(points, p + 1, lower, 99) and _lower_at(points, p + 2, lower, 41)
    if c == 104:  # http: / https:
        if not (
            _lower_at(points, p + 1, lower, 116)
            and _lower_at(points, p + 2, lower, 116)
            and _lower_at(points, p + 3, lower, 112)
        ):
            return False
        if _lower_at(points, p + 4, lower, 58):
            return True
        return _lower_at(points, p + 4, lower, 115) and _lower_at(points, p + 5, lower, 58)
    if c == 119:  # www.
        return (
            _lower_at(points, p + 1, lower, 119)
            and _lower_at(points, p + 2, lower, 119)
            and _lower_at(points, p + 3, lower, 46)
        )
    if c == 99:  # copyright
        word = (111, 112, 121, 114, 105, 103, 104, 116)
        for k in range(8):  # noqa: SIM110 - numba compiles no generator inside all()
            if not _lower_at(points, p + 1 + k, lower, word[k]):
                return False
        return True
    return False


@numba.njit(cache=True, nogil=True)
def _has(points: np.ndarray, p: int, end: int, classes: np.ndarray, bit: int) -> bool:
    return p < end and points[p] < 0x10000 and (classes[points[p]] & bit) != 0


@numba.njit(cache=True, nogil=True)
def _list_item(points: np.ndarray, begin: int, end: int, classes: np.ndarray) -> bool:
    # The list-item pattern matched at the start of points[begin:end] (BMP lines only).
    c = points[begin]
    if c == 0x2022 or c == 0xB7 or c == 0x25AA or c == 0x25E6 or c == 0x2023 or c == 0x2219 or c == 42 or c == 45:
        return _has(points, begin + 1, end, classes, RE_SPACE)
    if not _has(points, begin, end, classes, RE_DIGIT):
        return False
    # \d{1,2} is greedy: a second digit must be followed by [.)], otherwise one digit is.
    p = begin + 2 if _has(points, begin + 1, end, classes, RE_DIGIT) else begin + 1
    return p < end and (points[p] == 46 or points[p] == 41) and _has(points, p + 1, end, classes, RE_SPACE)


# Multiplier of the function-word table's hash (multiplicative hashing: bits 32.. of key * KEY_HASH).
KEY_HASH = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def key_slot(key: np.int64, mask: np.uint64) -> np.uint64:
    # First slot of a packed key in a table of mask + 1 slots (a power of two).
    return ((np.uint64(key) * KEY_HASH) >> np.uint64(32)) & np.uint64(mask)


@numba.njit(cache=True, nogil=True)
def _in_key_table(table: np.ndarray, key: np.int64) -> bool:
    # Whether the packed key is in the open-addressing table (0: empty slot; keys start with a 1 bit).
    mask = np.uint64(table.size - 1)
    s = key_slot(key, mask)
    while table[s] != 0:
        if table[s] == key:
            return True
        s = (s + np.uint64(1)) & mask
    return False


# Bits of shape_flags: a character line_shape_counts cannot count (İ/ı/ſ, or lower-casing to several
# characters), a title-case word start, a possible start of a URL/mail/copyright sign (lower-cased @ © ( h w c).
SHAPE_FALLBACK, SHAPE_TITLE, SHAPE_URL = 1, 2, 4


@numba.njit(cache=True, nogil=True)
def shape_flags(lower: np.ndarray) -> np.ndarray:
    """line_shape_counts' per-BMP-code-point flags, from the lower-case table."""
    flags = np.zeros(0x10000, dtype=np.uint8)
    for c in range(0x10000):
        low = lower[c]
        if c == 0x130 or c == 0x131 or c == 0x17F or low == NO_LOWER:
            flags[c] |= SHAPE_FALLBACK
        if _is_title(np.uint32(c)):
            flags[c] |= SHAPE_TITLE
        if low == 64 or low == 0xA9 or low == 40 or low == 104 or low == 119 or low == 99:
            flags[c] |= SHAPE_URL
    return flags


@numba.njit(cache=True, nogil=True)
def line_shape_counts(
    points: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    function_keys: np.ndarray,
    out: np.ndarray,
    flags: np.ndarray,
) -> None:
    """Per line (row of ``out``): digits, uppercase, letters, letters-or-digits and spaces (as the str
    methods count them), title-case word starts (``\\b[A-ZÀ-ÖØ-ÞĀ-Ž]``), whitespace tokens and function
    words of the lower-cased line, URL/mail/copyright sign, ends with a colon, a fallback flag for
    lines these counts cannot cover (astral characters, characters lower-casing to several, İ/ı/ſ which
    case-insensitive matching folds), and whether the line opens like a list item
    (``[•·▪◦‣∙*-]\\s|\\d{1,2}[.)]\\s`` with the `regex` module's classes).

    ``points``: the lines joined by newlines; ``classes``: bits per BMP code point; ``lower``: per BMP
    code point, its lower-case character (lower-casing never makes or removes whitespace); function
    words are compared as packed keys, looked up in ``function_keys``, an open-addressing table of them
    (power-of-two size, at most half full, 0 for an empty slot, first slot key_slot). ``flags``: per
    BMP code point, shape_flags (one lookup instead of several comparisons per character)."""
    line = 0
    begin = np.int64(0)
    last = 0
    prev_word = False
    digits = upper = letters = alnum = spaces = title = fallback = 0
    in_token = False
    key = np.int64(1)
    size = tokens = function = url = 0
    n = points.size
    for p in range(n + 1):
        c = points[p] if p < n else NEWLINE
        if c == NEWLINE or (c < 0x10000 and (classes[c] & SPACE) != 0):
            if in_token and size <= KEY_MAX_CHARS and _in_key_table(function_keys, key):
                function += 1
            in_token = False
        if c == NEWLINE:
            out[line, C_DIGITS] = digits
            out[line, C_UPPER] = upper
            out[line, C_LETTERS] = letters
            out[line, C_ALNUM] = alnum
            out[line, C_SPACES] = spaces
            out[line, C_TITLE] = title
            out[line, C_TOKENS] = tokens
            out[line, C_FUNCTION] = function
            out[line, C_URL] = url
            out[line, C_COLON] = last == 58
            out[line, C_FALLBACK] = fallback
            out[line, C_LIST] = _list_item(points, begin, p, classes)
            digits = upper = letters = alnum = spaces = title = fallback = tokens = function = url = 0
            line += 1
            begin = p + 1
            prev_word = False
            last = 0
            continue
        last = c
        special = flags[c] if c < 0x10000 else SHAPE_FALLBACK
        if special & SHAPE_FALLBACK:
            fallback = 1
            prev_word = False
            continue
        bits = classes[c]
        digits += bits & DIGIT
        upper += (bits & UPPER) >> 1
        letters += (bits & ALPHA) >> 2
        alnum += (bits & ALNUM) >> 3
        spaces += (bits & SPACE) >> 4
        if (special & SHAPE_TITLE) and not prev_word:
            title += 1
        prev_word = (bits & WORD) != 0
        if bits & SPACE:
            continue
        if not in_token:
            in_token = True
            tokens += 1
            key = np.int64(1)
            size = 0
        size += 1
        # (The lower case only where it is read: a token's first KEY_MAX_CHARS characters, a sign's start.)
        if size <= KEY_MAX_CHARS:
            low = lower[c]
            if low >= KEY_MAX_POINT:
                size = KEY_MAX_CHARS + 1  # no function word has such a character
            else:
                key = key * KEY_MAX_POINT + low
        if (special & SHAPE_URL) and not url:
            low = lower[c]
            # The sign's second character first, here (most c, h, w start no sign): _url_sign_at says no
            # without it.
            if low == 64 or low == 0xA9:
                url = True
            elif _lower_at(
                points, p + 1, lower, 99 if low == 40 else 116 if low == 104 else 119 if low == 119 else 111
            ):
                url = _url_sign_at(points, p, lower)


@numba.njit(cache=True, nogil=True)
def tree_leaf_values(
    x: np.ndarray, feature: np.ndarray, threshold: np.ndarray, leaf: np.ndarray, depth: int, out: np.ndarray
) -> None:
    """out[row, tree] = the leaf value the row reaches in the tree: from node 0, go to child 2j+1, or
    2j+2 when x[row, feature[tree, j]] > threshold[tree, j], ``depth`` times (breadth-first layout).
    One tree at a time over all rows: the rows' walks are independent, so they overlap in the CPU."""
    inner = 2**depth - 1
    rows = x.shape[0]
    node = np.zeros(rows, dtype=np.int64)
    for t in range(feature.shape[0]):
        node[:] = 0
        columns = feature[t]
        cuts = threshold[t]
        for _ in range(depth):
            for r in range(rows):
                j = node[r]
                node[r] = 2 * j + (2 if x[r, columns[j]] > cuts[j] else 1)
        values = leaf[t]
        for r in range(rows):
            out[r, t] = values[node[r] - inner]


@numba.njit(cache=True, nogil=True)
def _line_key(
    points: np.ndarray, b: int, e: int, classes: np.ndarray, lower: np.ndarray, key_classes: np.ndarray, key: np.ndarray
) -> tuple[int, int, bool]:
    """The stage's ``normalise`` of the line ``points[b:e]``, built in ``key``: whitespace runs (str.isspace)
    folded to one space and dropped at the ends, every character lower-cased through ``lower``, then the
    edge characters (KEY_EDGE in ``key_classes``, space included) stripped from both ends. Returns the
    key's (start, end) in ``key``, and True instead when that cannot be exact: astral or surrogate code
    points, a character lower-casing to several, and Σ (str.lower makes it ς at the end of a word)."""
    size = 0
    pending_space = False
    for q in range(b, e):
        c = points[q]
        if c >= 0xD800 and (c >= 0x10000 or c < 0xE000):
            return 0, 0, True
        if classes[c] & SPACE:
            pending_space = size > 0
            continue
        low = lower[c]
        if low == NO_LOWER or c == 0x3A3:
            return 0, 0, True
        if pending_space:
            key[size] = 32
            size += 1
            pending_space = False
        key[size] = low
        size += 1
    end = size
    while end > 0 and key_classes[key[end - 1]] & KEY_EDGE:
        end -= 1
    start = 0
    while start < end and key_classes[key[start]] & KEY_EDGE:
        start += 1
    return start, end, False


@numba.njit(cache=True, nogil=True)
def phrase_lines(
    points: np.ndarray,
    words: np.ndarray,
    max_words: int,
    starts: np.ndarray,
    phrase_points: np.ndarray,
    phrase_bounds: np.ndarray,
    hits: np.ndarray,
) -> None:
    """hits[line] = whether one of the phrases occurs in the line (a plain substring), for the lines with
    0 < words[line] <= max_words (the others are left alone). ``points``: the lines (keys) joined by
    newlines. Phrase k is phrase_points[phrase_bounds[k]:phrase_bounds[k + 1]]; the phrases are sorted by
    their first code point, those starting with c (a BMP code point) are starts[c] .. starts[c + 1] - 1."""
    n = points.size
    line = 0
    begin = np.int64(0)
    for p in range(n + 1):
        if p < n and points[p] != NEWLINE:
            continue
        if 0 < words[line] <= max_words:
            found = False
            for q in range(begin, p):
                c = points[q]
                if c >= 0x10000:
                    continue
                for k in range(starts[c], starts[c + 1]):
                    a = phrase_bounds[k]
                    size = phrase_bounds[k + 1] - a
                    if size > p - q:
                        continue
                    if same_run(points, q + 1, phrase_points, a + 1, size - 1):
                        found = True
                        break
                if found:
                    break
            hits[line] = found
        line += 1
        begin = p + 1


# --- Second pass of the line scorer: the words of the candidate lines and their lexicon weights. ---
# A 64-bit FNV-1a hash of the lower-cased code points locates words in open-addressing tables; every
# hit is confirmed by comparing the characters, so equal ids mean equal words (no collision risk).
# Capital sigma: str.lower() makes it "ς" at the end of a word, so a per-character table cannot lower it.
CAPITAL_SIGMA = 0x3A3
# word_lower's mark of a BMP character candidate_words leaves to Python (Σ, a lower case of several characters).
WORD_LOWER_PYTHON = -2


@numba.njit(cache=True, nogil=True)
def lexicon_table(points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Open-addressing slots (word index, -1 when empty) of the words points[starts[k]:starts[k + 1]].
    int32: half the bytes a lookup's cache lines come from (a document's lookups mostly miss the cache)."""
    n = starts.size - 1
    slots = np.full(table_size(n), -1, dtype=np.int32)
    mask = np.uint64(slots.size - 1)
    for k in range(n):
        h = FNV_OFFSET
        for p in range(starts[k], starts[k + 1]):
            h = (h ^ np.uint64(points[p])) * FNV_PRIME
        s = h & mask
        while slots[s] >= 0:
            s = (s + np.uint64(1)) & mask
        slots[s] = k
    return slots


@numba.njit(cache=True, nogil=True)
def lexicon_slot_hashes(slots: np.ndarray, points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per slot of lexicon_table's ``slots``: the hash of the word in it (0 when empty), so that a lookup
    tells the slot of its word by the hash before it reads the word's characters."""
    out = np.zeros(slots.size, dtype=np.uint64)
    for s in range(slots.size):
        k = slots[s]
        if k >= 0:
            h = FNV_OFFSET
            for p in range(starts[k], starts[k + 1]):
                h = (h ^ np.uint64(points[p])) * FNV_PRIME
            out[s] = h
    return out


@numba.njit(cache=True, nogil=True)
def _lexicon_find(
    low: np.ndarray,
    begin: int,
    end: int,
    h: np.uint64,
    slots: np.ndarray,
    lex_points: np.ndarray,
    lex_starts: np.ndarray,
) -> int:
    # Index of the lexicon word equal to low[begin:end] (lower-cased code points, hash h), or -1.
    mask = np.uint64(slots.size - 1)
    s = h & mask
    size = end - begin
    while slots[s] >= 0:
        k = slots[s]
        q = lex_starts[k]
        if lex_starts[k + 1] - q == size and same_run(lex_points, q, low, begin, size):
            return k
        s = (s + np.uint64(1)) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def candidate_words(
    points: np.ndarray,
    lines: int,
    word_lower: np.ndarray,
    astral: np.ndarray,
    astral_lower: np.ndarray,
    slots: np.ndarray,
    slot_hash: np.ndarray,
    lex_points: np.ndarray,
    lex_starts: np.ndarray,
    lex_weight: np.ndarray,
):
    """The distinct lower-cased ``\\w+`` words of each line of ``points`` (lines joined by newlines),
    in order of first occurrence per line, as ``re.findall(r"\\w+", line.lower())`` + dict.fromkeys
    give them: per word its document id (equal words, equal ids), line, length and lexicon weight
    (NaN when unknown), plus the number of words per line. ``word_lower``: per BMP code point its lower
    case when that is a word character, -1 when not, WORD_LOWER_PYTHON when the lines need Python (word_lower,
    one lookup a character instead of two dependent ones). Characters outside the BMP come from the
    sorted table ``astral`` (``astral_lower``: their lower case, -1 for non-word characters; the caller
    lists every astral character of the lines). ``ok`` is False (and the rest empty) when the lines
    need Python: a BMP character lowering to several characters or capital sigma, or a line count
    other than ``lines``. ``slots``, ``slot_hash``: the lexicon's table (lexicon_table) and the hash of
    each slot's word (lexicon_slot_hashes)."""
    n = points.size
    # Lower-cased code points, and -1 for characters that are not \w once lower-cased (and newlines).
    low = np.empty(n + 1, dtype=np.int64)
    low[n] = -1
    newlines = 0
    runs = 0  # words (runs of \w characters): the arrays below need no more entries
    previous = -1
    for p in range(n):
        c = points[p]
        if c == NEWLINE:
            newlines += 1
            low[p] = -1
        elif c >= 0x10000:
            low[p] = astral_lower[np.searchsorted(astral, c)]
        else:
            w = word_lower[c]
            if w == WORD_LOWER_PYTHON:
                newlines = -1
                break
            low[p] = w
        if previous < 0 and low[p] >= 0:
            runs += 1
        previous = low[p]
    most = runs + 1
    word_id = np.empty(most, dtype=np.int64)
    word_line = np.empty(most, dtype=np.int64)
    word_len = np.empty(most, dtype=np.int64)
    counts = np.zeros(lines, dtype=np.int64)
    if newlines + 1 != lines:
        return False, word_id[:0], word_line[:0], word_len[:0], np.empty(0, dtype=np.float64), counts
    doc_slots = np.full(table_size(most), -1, dtype=np.int64)
    mask = np.uint64(doc_slots.size - 1)
    id_start = np.empty(most, dtype=np.int64)  # first occurrence of each id, to compare characters
    id_len = np.empty(most, dtype=np.int64)
    id_line = np.empty(most, dtype=np.int64)  # last line the id was counted in (distinct per line)
    id_hash = np.empty(most, dtype=np.uint64)
    ids = 0
    words = 0
    line = 0
    begin = -1
    h = FNV_OFFSET
    for p in range(n + 1):
        c = low[p]
        if c >= 0:
            if begin < 0:
                begin = p
                h = FNV_OFFSET
            h = (h ^ np.uint64(c)) * FNV_PRIME
            continue
        if begin >= 0:
            size = p - begin
            s = h & mask
            found = -1
            while doc_slots[s] >= 0:
                k = doc_slots[s]
                if id_len[k] == size and same_run(low, id_start[k], low, begin, size):
                    found = k
                    break
                s = (s + np.uint64(1)) & mask
            if found < 0:
                found = ids
                ids += 1
                doc_slots[s] = found
                id_start[found] = begin
                id_len[found] = size
                id_line[found] = -1
                id_hash[found] = h
            if id_line[found] != line:
                id_line[found] = line
                word_id[words] = found
                word_line[words] = line
                word_len[words] = size
                words += 1
                counts[line] += 1
            begin = -1
        if p < n and points[p] == NEWLINE:
            line += 1
    # The distinct words' lexicon weights, in loops of their own: the lookups are independent, so their
    # cache misses overlap (one at each new word of the loop above, each waited for the last). First each
    # word's slot by its hash alone (slot_hash: no load of the word's characters while probing), then the
    # characters of the word found compared: a word found by its hash is (all but always) the word, so the
    # comparisons' branches are predictable and their loads overlap too; one whose characters differ is
    # looked up again in full (_lexicon_find: its characters decide).
    id_weight = np.empty(ids, dtype=np.float64)
    found_at = np.empty(ids, dtype=np.int64)
    mask = np.uint64(slots.size - 1)
    for k in range(ids):
        h = id_hash[k]
        s = h & mask
        at = -1
        while slots[s] >= 0:
            if slot_hash[s] == h:
                at = slots[s]
                break
            s = (s + np.uint64(1)) & mask
        found_at[k] = at
    for k in range(ids):
        at = found_at[k]
        if at < 0:
            id_weight[k] = np.nan  # (no word with its hash: not in the lexicon)
            continue
        b = id_start[k]
        size = id_len[k]
        q = lex_starts[at]
        same = lex_starts[at + 1] - q == size
        if same:
            for j in range(size):
                same &= lex_points[q + j] == low[b + j]
        if not same:
            at = _lexicon_find(low, b, b + size, id_hash[k], slots, lex_points, lex_starts)
        id_weight[k] = lex_weight[at] if at >= 0 else np.nan
    weight = np.empty(words, dtype=np.float64)
    for k in range(words):
        weight[k] = id_weight[word_id[k]]
    return True, word_id[:words], word_line[:words], word_len[:words], weight, counts


# --- Second pass of the line scorer: window statistics of the first model's scores. ---


@numba.njit(cache=True, nogil=True)
def context_windows(
    s: np.ndarray, near: int, wide: int, confident: float, pad: float, x: np.ndarray, counts: np.ndarray
) -> None:
    """For each candidate k (row of ``x``): x[k, 0] = s[k]; x[k, 1..3] = s[k-1..k-3] and x[k, 4..6] =
    s[k+1..k+3] (``pad`` outside); x[k, 7..9] = mean, min, max of the scores within +-``near`` (s[k] when
    there are none); x[k, 10] = mean within +-``wide`` (k included). ``counts[0..3, k]``: confident
    lines (s >= ``confident``) before and after k, distance to the nearest one before and after
    (m + 1 when none). The sums run in the order numpy's column sums of the shifted rows used
    (offsets -near..-1, 1..near; -wide..wide), so the means are bit-identical to them."""
    m = s.size
    for k in range(m):
        x[k, 0] = s[k]
        for d in range(1, 4):
            x[k, d] = s[k - d] if k - d >= 0 else pad
            x[k, 3 + d] = s[k + d] if k + d < m else pad
        total = 0.0
        n = 0
        low = np.inf
        high = -np.inf
        first = True
        for d in range(-near, near + 1):
            if d == 0:
                continue
            j = k + d
            value = s[j] if 0 <= j < m else 0.0
            total = value if first else total + value
            first = False
            if 0 <= j < m:
                n += 1
                low = min(low, value)
                high = max(high, value)
        if n:
            x[k, 7] = total / n
            x[k, 8] = low
            x[k, 9] = high
        else:
            x[k, 7] = x[k, 8] = x[k, 9] = s[k]
        total = 0.0
        n = 0
        for d in range(-wide, wide + 1):
            j = k + d
            value = s[j] if 0 <= j < m else 0.0
            total = value if d == -wide else total + value
            n += 0 <= j < m
        x[k, 10] = total / n
    seen = 0
    last = -1
    for k in range(m):
        counts[0, k] = seen
        counts[2, k] = k - last if last >= 0 else m + 1
        if s[k] >= confident:
            seen += 1
            last = k
    after = 0
    upcoming = -1
    for k in range(m - 1, -1, -1):
        counts[1, k] = after
        counts[3, k] = upcoming - k if upcoming >= 0 else m + 1
        if s[k] >= confident:
            after += 1
            upcoming = k


@numba.njit(cache=True, nogil=True)
def lexical_rows(weight: np.ndarray, counts: np.ndarray, near: int, x: np.ndarray) -> None:
    """Per line k (row of ``x``, zeros on entry), from its words' weights (NaN: unknown), the words of
    line k following those of line k - 1: mean, min and max of the known weights, share of known words
    (0 for a line without a known word), the previous and next line's mean, and the mean of the means
    within +-``near`` lines. Sums run in word order from 0.0 (as np.bincount adds weights) and the
    window sums are differences of a running sum (as np.cumsum), so the values are bit-identical."""
    m = counts.size
    p = 0
    for k in range(m):
        total = 0.0
        known = 0
        low = np.inf
        high = -np.inf
        for _ in range(counts[k]):
            w = weight[p]
            p += 1
            if not np.isnan(w):
                total += w
                known += 1
                low = min(low, w)
                high = max(high, w)
        if known:
            x[k, 0] = total / known
            x[k, 1] = low
            x[k, 2] = high
            x[k, 3] = known / counts[k]
    sums = np.zeros(m + 1)
    running = 0.0
    for k in range(m):
        running += x[k, 0]
        sums[k + 1] = running
        x[k, 4] = x[k - 1, 0] if k > 0 else 0.0
        x[k, 5] = x[k + 1, 0] if k + 1 < m else 0.0
    for k in range(m):
        lo = max(k - near, 0)
        hi = min(k + near + 1, m)
        x[k, 6] = (sums[hi] - sums[lo]) / (hi - lo)


@numba.njit(cache=True, nogil=True)
def word_overlap(
    word_id: np.ndarray, line: np.ndarray, length: np.ndarray, in_body: np.ndarray, min_chars: int, x: np.ndarray
) -> None:
    """Per line k with words of at least ``min_chars`` characters (the others keep x's values): x[k, 0] =
    share of them found in another line, x[k, 1] = share found in another line with ``in_body``. Ids
    are below word_id.size; a word occurs at most once per line, so counts per id are line counts."""
    everywhere = np.zeros(word_id.size, dtype=np.int64)
    body = np.zeros(word_id.size, dtype=np.int64)
    for k in range(word_id.size):
        if length[k] >= min_chars:
            everywhere[word_id[k]] += 1
            body[word_id[k]] += in_body[line[k]]
    m = in_body.size
    n_long = np.zeros(m, dtype=np.int64)
    shared = np.zeros(m, dtype=np.int64)
    shared_body = np.zeros(m, dtype=np.int64)
    for k in range(word_id.size):
        if length[k] >= min_chars:
            j = line[k]
            n_long[j] += 1
            shared[j] += everywhere[word_id[k]] > 1
            shared_body[j] += body[word_id[k]] > in_body[j]
    for j in range(m):
        if n_long[j]:
            x[j, 0] = shared[j] / n_long[j]
            x[j, 1] = shared_body[j] / n_long[j]


# --- The rule facts of a document's new lines (BoilerplateStage.line_infos). ---
# More bits of the key classes' table: a letter for the sentence-end pattern (`regex`
# \p{L}); `regex` \s and \d (sentence end, navigation); a non-ASCII \d of the stdlib engine (the
# whole-line patterns' prefilter treats \d as ASCII, so such keys are matched with re).
KEY_LETTER, KEY_RSPACE, KEY_RDIGIT, KEY_XDIGIT = 4, 8, 16, 32
# The characters line_facts' separator and colon tests look at (» › → : / | >): one load skips every other.
KEY_SEP = 64
SEP_CHARS = "\u00bb\u203a\u2192:/|>"
# Bits of the stage's breadcrumb table: a key can start / end a root line ("home", "1. startseite"), a
# stripped line can start a glued trail ("HomeWorld...").
CRUMB_ROOT_HEAD, CRUMB_ROOT_LAST, CRUMB_GLUED_HEAD = 1, 2, 4
# Bits of line_facts' per-line output.
F_FALLBACK, F_PROSE, F_NAV, F_KEEP, F_CRUMB, F_QUANTITY, F_GLUED = 1, 2, 4, 8, 16, 32, 64
# F_NUMBERED: the line opens as a numbered list item (_numbered_item).
F_NUMBERED = 128
PROSE_MIN_WORDS = 16
QUANTITY_MAX_WORDS = 12


@numba.njit(cache=True, nogil=True, inline="always")
def _is_closer(c: int) -> bool:
    # ) ] " ' ” ’ » : what may stand between a sentence's last letters, its end mark and what follows.
    return c == 0x29 or c == 0x5D or c == 0x22 or c == 0x27 or c == 0x201D or c == 0x2019 or c == 0xBB


@numba.njit(cache=True, nogil=True)
def _sentence_end(points: np.ndarray, b: int, e: int, key_classes: np.ndarray) -> bool:
    """The stage's _SENTENCE_END_RE.search on points[b:e] (BMP only): an end mark (. ! ? …) after two
    letters and maybe closing brackets/quotes, or ? / ! anywhere, followed by closers then a space or the
    end; or a CJK full stop (。！？) anywhere."""
    for q in range(b, e):
        c = points[q]
        if c == 0x3002 or c == 0xFF01 or c == 0xFF1F:
            return True
        if not (c == 0x2E or c == 0x21 or c == 0x3F or c == 0x2026):
            continue
        ok = c == 0x21 or c == 0x3F
        if not ok:
            k = q - 1
            while k >= b and _is_closer(points[k]):
                k -= 1
            ok = (
                k - 1 >= b
                and (key_classes[points[k]] & KEY_LETTER) != 0
                and (key_classes[points[k - 1]] & KEY_LETTER) != 0
            )
        if ok:
            r = q + 1
            while r < e and _is_closer(points[r]):
                r += 1
            if r == e or (key_classes[points[r]] & KEY_RSPACE) != 0:
                return True
    return False


@numba.njit(cache=True, nogil=True)
def _put_utf8(out: np.ndarray, w: int, c: int) -> int:
    if c < 0x80:
        out[w] = c
        return w + 1
    if c < 0x800:
        out[w] = 0xC0 | (c >> 6)
        out[w + 1] = 0x80 | (c & 0x3F)
        return w + 2
    out[w] = 0xE0 | (c >> 12)
    out[w + 1] = 0x80 | ((c >> 6) & 0x3F)
    out[w + 2] = 0x80 | (c & 0x3F)
    return w + 3


@numba.njit(cache=True, nogil=True, inline="always")
def _put_key(
    out: np.ndarray, w: int, key: np.ndarray, start: int, end: int, key_classes: np.ndarray, min_words: int
) -> tuple[int, int, np.uint64]:
    """key[start:end] written to ``out`` from ``w`` as UTF-8: where it ends, its mark (RECURRING_COUNTED with at
    least ``min_words`` words, a CJK character counting half a word; else RECURRING_SITE) and its FNV-1a hash."""
    spaces = cjk = 0
    h = FNV_OFFSET
    for k in range(start, end):
        x = key[k]
        w = _put_utf8(out, w, x)
        spaces += x == 32
        cjk += (key_classes[x] & KEY_CJK) != 0
        h = (h ^ np.uint64(x)) * FNV_PRIME
    return w, RECURRING_COUNTED if spaces + 1 + cjk // 2 >= min_words else RECURRING_SITE, h


@numba.njit(cache=True, nogil=True)
def recurring_keys(
    points: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    key_classes: np.ndarray,
    max_chars: int,
    min_words: int,
    out: np.ndarray,
    marks: np.ndarray,
) -> int:
    """The first pass's view of every line of ``points`` (lines joined by newlines): its key as
    _line_key makes it, written to ``out`` as UTF-8 joined by newlines (empty for a line not
    counted), and ``marks[line]``: RECURRING_SKIP (blank, longer than ``max_chars`` characters, or an
    empty key), RECURRING_COUNTED (at least ``min_words`` words: counted corpus-wide), RECURRING_SITE
    (counted per site only) or RECURRING_FALLBACK (`_line_key` cannot be exact: Python normalises it).
    Returns how many bytes were written."""
    n = points.size
    key = np.empty(n + 1, dtype=np.uint32)
    w = np.int64(0)
    line = 0
    b = np.int64(0)
    for p in range(n + 1):
        if p < n and points[p] != NEWLINE:
            continue
        mark = RECURRING_SKIP
        if 0 < p - b <= max_chars:
            start, end, bad = _line_key(points, b, p, classes, lower, key_classes, key)
            if bad:
                mark = RECURRING_FALLBACK
            elif end > start:
                w, mark, _ = _put_key(out, w, key, start, end, key_classes, min_words)
        marks[line] = mark
        if p < n:
            out[w] = NEWLINE
            w += 1
        line += 1
        b = p + 1
    return w


@numba.njit(cache=True, nogil=True)
def line_facts(
    points: np.ndarray,
    begins: np.ndarray,
    lengths: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    key_classes: np.ndarray,
    crumb_classes: np.ndarray,
    root_lengths: np.ndarray,
    nav_max: int,
    body_min_words: int,
    keep_min_words: int,
    out: np.ndarray,
    ends: np.ndarray,
    words: np.ndarray,
    flags: np.ndarray,
    body: np.ndarray,
    chars: np.ndarray,
) -> int:
    """Per stripped non-blank line ``points[begins[j] : begins[j] + lengths[j]]`` (line_index's new lines, read
    where they are: no copy of them, no search for their ends): its key as _line_key makes it,
    written to ``out`` in UTF-8 (keys joined by newlines; ``ends[line]``: the byte offset after the key),
    its words, and what _line_info derives from the line's text: the F_* bits and the body characters
    (len or -1). F_FALLBACK (nothing else set, nothing written): astral or surrogate code points, Σ or a
    character lower-casing to several; the caller does such lines in Python. F_CRUMB: _breadcrumb may
    find a trail (a possible root line or a separator character); F_GLUED (without F_CRUMB): only its
    glued-trail test can; F_QUANTITY: is_quantity_line may say yes (the line is not kept otherwise, is
    short, opens with a number then a letter: _may_be_quantity); F_NUMBERED: it opens as a numbered list
    item (_numbered_item); ``chars[line]``: the key's characters (0 for a fallback line). Returns the bytes
    written."""
    m = lengths.size
    longest = 0
    for line in range(m):
        longest = max(longest, lengths[line])
    key = np.empty(longest + 1, dtype=np.uint32)
    # (np.int64, not a literal 0, where a callee gets it: see key_hashes)
    w = np.int64(0)
    for line in range(m):
        b = begins[line]
        e = b + lengths[line]
        ks, ke, bad = _line_key(points, b, e, classes, lower, key_classes, key)
        f = F_FALLBACK if bad else 0
        spaces = cjk = 0
        digit = False
        for k in range(ks, ke):
            x = key[k]
            w = _put_utf8(out, w, x)
            spaces += x == 32
            kc = key_classes[x]
            cjk += (kc & KEY_CJK) != 0
            digit |= (kc & KEY_RDIGIT) != 0
        ends[line] = w
        chars[line] = ke - ks
        if line < m - 1:
            out[w] = NEWLINE
            w += 1
        count = spaces + 1 + cjk // 2 if ke > ks else 0
        words[line] = count
        body[line] = -1
        if not bad and ke > ks:
            first, last = points[b], points[e - 1]
            # sep: a breadcrumb separator (_SEP_RE and its variants): » › → anywhere, or > / | :: between
            # whitespace (`regex` \s) on both sides.
            colon = sep = False
            for q in range(b, e):
                c = points[q]
                if not key_classes[c] & KEY_SEP:  # (a BMP code point: the line is not a fallback one)
                    continue
                if c == 0xBB or c == 0x203A or c == 0x2192:
                    sep = True
                elif c == 0x3A:
                    colon = True
                    if (
                        q + 2 < e
                        and points[q + 1] == 0x3A
                        and q > b
                        and key_classes[points[q - 1]] & KEY_RSPACE
                        and key_classes[points[q + 2]] & KEY_RSPACE
                    ):
                        sep = True
                elif (
                    (c == 0x2F or c == 0x7C or c == 0x3E)
                    and b < q < e - 1
                    and key_classes[points[q - 1]] & KEY_RSPACE
                    and key_classes[points[q + 1]] & KEY_RSPACE
                ):
                    sep = True
            ends_sentence = False
            if count < PROSE_MIN_WORDS or count <= nav_max:
                ends_sentence = _sentence_end(points, b, e, key_classes)
            if count >= PROSE_MIN_WORDS or ends_sentence:
                f |= F_PROSE
            if 0 < count <= nav_max and not (ends_sentence or colon or digit) and last != 0x2C and last != 0x3B:
                f |= F_NAV
            is_body = count >= PROSE_MIN_WORDS or (count >= body_min_words and _body_end(last))
            if is_body:
                body[line] = e - b
            if is_body and count >= keep_min_words:
                f |= F_KEEP
            elif count <= QUANTITY_MAX_WORDS and _may_be_quantity(points, b, e, classes, key_classes):
                f |= F_QUANTITY
            k0, k1 = key[ks], key[ke - 1]
            root = (
                (crumb_classes[k0] & CRUMB_ROOT_HEAD) != 0
                and (crumb_classes[k1] & CRUMB_ROOT_LAST) != 0
                and _root_length(key, ks, ke, key_classes, root_lengths)
            )
            if root or sep:
                f |= F_CRUMB
            elif crumb_classes[first] & CRUMB_GLUED_HEAD:
                f |= F_GLUED
            if _numbered_item(points, b, e, classes):
                f |= F_NUMBERED
        flags[line] = f
    return w


@numba.njit(cache=True, nogil=True)
def _numbered_item(points: np.ndarray, b: int, e: int, classes: np.ndarray) -> bool:
    """Whether the stripped line points[b:e] (BMP) opens as the stage's _NUMBERED_ITEM_RE matches,
    ``(\\d{1,3})[.)]\\s+\\S``: one to three digits, a dot or parenthesis, whitespace (a stripped line has a
    non-space after it). ``classes``: the shape classes, whose RE_DIGIT and SPACE are the stdlib engine's \\d
    and \\s over the BMP (tested)."""
    q = b
    while q < e and q - b < 3 and (classes[points[q]] & RE_DIGIT) != 0:
        q += 1
    if q == b or q + 1 >= e or (points[q] != 0x2E and points[q] != 0x29):
        return False  # (a fourth digit is not a dot or parenthesis either)
    return (classes[points[q + 1]] & SPACE) != 0


@numba.njit(cache=True, nogil=True)
def _root_length(key: np.ndarray, ks: int, ke: int, key_classes: np.ndarray, root_lengths: np.ndarray) -> bool:
    """Whether key[ks:ke] has the length of a root (``root_lengths[n]``), alone or after a "12. " prefix:
    the root-line pattern (?:\\d+\\.\\s*)?(?:root|...) folds case one character to one."""
    if ke - ks < root_lengths.size and root_lengths[ke - ks]:
        return True
    q = ks
    while q < ke and key_classes[key[q]] & KEY_RDIGIT:
        q += 1
    if q in (ks, ke) or key[q] != 0x2E:
        return False
    q += 1
    while q < ke and key_classes[key[q]] & KEY_RSPACE:
        q += 1
    return ke - q < root_lengths.size and root_lengths[ke - q] != 0


@numba.njit(cache=True, nogil=True, inline="always")
def _body_end(c: int) -> bool:
    # . ! ? … : ; " ' ” “ » ) ] 。 ！ ？ : the stage's _BODY_END_CHARS.
    return (
        c == 0x2E
        or c == 0x21
        or c == 0x3F
        or c == 0x2026
        or c == 0x3A
        or c == 0x3B
        or c == 0x22
        or c == 0x27
        or c == 0x201D
        or c == 0x201C
        or c == 0xBB
        or c == 0x29
        or c == 0x5D
        or c == 0x3002
        or c == 0xFF01
        or c == 0xFF1F
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _fraction(c: int) -> bool:
    return c == 0xBD or c == 0xBC or c == 0xBE or c == 0x2153 or c == 0x2154  # ½ ¼ ¾ ⅓ ⅔


@numba.njit(cache=True, nogil=True, inline="always")
def _bullet(c: int) -> bool:
    # • · ▪ ◦ ‣ ∙ * -
    return c == 0x2022 or c == 0xB7 or c == 0x25AA or c == 0x25E6 or c == 0x2023 or c == 0x2219 or c in (0x2A, 0x2D)


@numba.njit(cache=True, nogil=True)
def _may_be_quantity(points: np.ndarray, b: int, e: int, classes: np.ndarray, key_classes: np.ndarray) -> bool:
    """Whether the stage's _QUANTITY_RE can match at the start of points[b:e] (a superset): an ASCII digit or
    a fraction, or a bullet, spaces and a decimal digit or fraction (is_quantity_line's own heads); then,
    past the number (digits, . , / - – spaces, fractions), a letter: every unit starts with one."""
    c = points[b]
    q = b
    if _bullet(c):
        q += 1
        while q < e and classes[points[q]] & SPACE:
            q += 1
        if q == e:
            return False
        c = points[q]
        if not ((0x30 <= c <= 0x39) or (key_classes[c] & KEY_XDIGIT) != 0 or _fraction(c)):
            return False
    elif not ((0x30 <= c <= 0x39) or _fraction(c)):
        return False
    while q < e:
        c = points[q]
        if (
            (0x30 <= c <= 0x39)
            or (key_classes[c] & KEY_XDIGIT) != 0
            or _fraction(c)
            or (classes[c] & SPACE) != 0
            or c == 0x2E
            or c == 0x2C
            or c == 0x2F
            or c == 0x2D
            or c == 0x2013
        ):
            q += 1
            continue
        return (classes[c] & ALPHA) != 0
    return False


# --- Line scorer: tree walk, every node's test over all rows at once. ---


@numba.njit(cache=True, nogil=True)
def leaf_of_tests(depth: int) -> np.ndarray:
    """table[bits] = the leaf (0 .. 2**depth - 1) a walk reaches when bit j of ``bits`` is the test of
    inner node j (breadth-first: children of j are 2j+1 and 2j+2, the second when the test holds).
    The same for every tree of a depth; 128 entries for depth 3."""
    inner = 2**depth - 1
    table = np.empty(2**inner, dtype=np.int64)
    for bits in range(2**inner):
        j = 0
        for _ in range(depth):
            j = 2 * j + 1 + ((bits >> j) & 1)
        table[bits] = j - inner
    return table


@numba.njit(cache=True, nogil=True)
def tree_leaf_values_by_tests(
    xt: np.ndarray, feature: np.ndarray, threshold: np.ndarray, leaf: np.ndarray, table: np.ndarray, out: np.ndarray
) -> None:
    """out[row, tree] = the leaf value tree_leaf_values gives, found differently: every inner node's test
    (x > threshold) for all rows, then the leaf from the tests' bits through ``table`` (leaf_of_tests).
    ``xt``: the features as (features, rows), C-contiguous, so each test is a straight pass over a row
    of xt that the compiler vectorises; testing all 7 nodes of a depth-3 tree costs less than 3
    dependent steps per row."""
    trees, inner = feature.shape
    rows = xt.shape[1]
    bits = np.empty(rows, dtype=np.int64)
    for t in range(trees):
        bits[:] = 0
        for j in range(inner):
            column = xt[feature[t, j]]
            cut = threshold[t, j]
            for r in range(rows):
                bits[r] |= np.int64(column[r] > cut) << j
        values = leaf[t]
        for r in range(rows):
            out[r, t] = values[table[bits[r]]]


# --- Line scorer: the first model's features of a document's candidate lines. ---
# Columns scorer_rows fills, by name (the stage maps them to its SCORER_FEATURES positions); the first
# SHAPE_FEATURES are the shape values line_shape_counts gives (and the stage's _line_shape), in their order.
SHAPE_FEATURES = 9
ROW_FEATURES = (
    "log_chars",
    "ends_colon",
    "list_item",
    "digit_ratio",
    "upper_ratio",
    "symbol_ratio",
    "titlecase_ratio",
    "url_mail_copyright",
    "function_word_ratio",
    "log_words",
    "prose",
    "body",
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
    "length_vs_stretch",
)
# Per candidate, the facts scorer_rows reads (columns of its ``facts`` argument).
COL_ROW, COL_WORDS, COL_PROSE, COL_NAV, COL_BODY_CHARS, COL_KEEP, COL_REPEATED, COL_CHARS = range(8)
FACT_COLUMNS = 8


@numba.njit(cache=True, nogil=True)
def _log1p_int(k: int, table: np.ndarray) -> float:
    # math.log1p of a non-negative integer: looked up in ``table`` (math.log1p values), else computed
    # (numba's math.log1p calls the same C library function as Python's).
    return table[k] if k < table.size else math.log1p(k)


@numba.njit(cache=True, nogil=True)
def _flag(b: bool) -> float:
    return 1.0 if b else 0.0


@numba.njit(cache=True, nogil=True)
def scorer_rows(
    facts: np.ndarray,
    shapes: np.ndarray,
    removed: np.ndarray,
    first_in: int,
    after_in: int,
    first_marker: int,
    log1p_table: np.ndarray,
    where: np.ndarray,
    x: np.ndarray,
) -> None:
    """The line scorer's ROW_FEATURES of a document's candidate lines, written to x[k, where[f]] for
    candidate k and feature f. ``facts`` (m, FACT_COLUMNS): per candidate its line number, words, prose, nav
    item, body characters (or -1), kept outside, repeated in the document, characters of the stripped
    line; ``shapes``: line_shape_counts of the stripped candidate lines; ``removed`` (n + 1): lines
    removed by the rules before each line; [first_in, after_in): the candidates inside the article
    stretch; first_marker: line of the first end-of-article marker (n when none). Every value is what
    the stage's numpy/Python definition gives, bit for bit: integer counts divided as float64, logs from
    the same C functions, the typical body line as statistics.median computes it."""
    m = facts.shape[0]
    n = removed.size - 1
    # Median characters of the body lines inside the stretch (1.0 without any).
    inside_body = np.empty(max(after_in - first_in, 0), dtype=np.int64)
    count = 0
    for k in range(first_in, after_in):
        if facts[k, COL_BODY_CHARS] > 0:
            inside_body[count] = facts[k, COL_BODY_CHARS]
            count += 1
    typical = 1.0
    if count:
        ordered = np.sort(inside_body[:count])
        half = count // 2
        typical = float(ordered[half]) if count % 2 else (ordered[half - 1] + ordered[half]) / 2
    body_sums = np.zeros(m + 1, dtype=np.int64)
    for k in range(m):
        body_sums[k + 1] = body_sums[k] + (facts[k, COL_BODY_CHARS] > 0)
    for k in range(m):
        row = facts[k, COL_ROW]
        chars = facts[k, COL_CHARS]
        tokens = max(shapes[k, C_TOKENS], 1)
        letters = shapes[k, C_LETTERS]
        log_words = _log1p_int(facts[k, COL_WORDS], log1p_table)
        inside = first_in <= k < after_in
        if k < first_in:
            outside = first_in - k
        elif k >= after_in:
            outside = k - after_in + 1
        else:
            outside = 0
        before = removed[row] - (removed[facts[k - 1, COL_ROW] + 1] if k else 0)
        after = (removed[facts[k + 1, COL_ROW]] if k + 1 < m else removed[n]) - removed[row + 1]
        lo = max(k - 3, 0)
        hi = min(k + 4, m)
        values = (
            _log1p_int(chars, log1p_table),
            float(shapes[k, C_COLON]),
            float(shapes[k, C_LIST]),
            shapes[k, C_DIGITS] / chars,
            shapes[k, C_UPPER] / (letters if letters else 1),
            (chars - shapes[k, C_ALNUM] - shapes[k, C_SPACES]) / chars,
            shapes[k, C_TITLE] / tokens,
            float(shapes[k, C_URL]),
            shapes[k, C_FUNCTION] / tokens,
            log_words,
            float(facts[k, COL_PROSE]),
            _flag(facts[k, COL_BODY_CHARS] > 0),
            _flag(inside),
            _log1p_int(outside, log1p_table),
            _log1p_int(max(k - first_in, 0), log1p_table) if inside else 0.0,
            _log1p_int(max(after_in - 1 - k, 0), log1p_table) if inside else 0.0,
            row / n,
            _log1p_int(before, log1p_table),
            _log1p_int(after, log1p_table),
            _flag(facts[k - 1, COL_BODY_CHARS] > 0) if k else -1.0,
            _log1p_int(facts[k - 1, COL_WORDS], log1p_table) if k else -1.0,
            _flag(facts[k + 1, COL_BODY_CHARS] > 0) if k + 1 < m else -1.0,
            _log1p_int(facts[k + 1, COL_WORDS], log1p_table) if k + 1 < m else -1.0,
            (body_sums[hi] - body_sums[lo]) / (hi - lo),
            _flag(row > first_marker),
            float(facts[k, COL_NAV]),
            float(facts[k, COL_KEEP]),
            float(facts[k, COL_REPEATED]),
            math.log(chars / typical),
        )
        for f in range(len(values)):
            x[k, where[f]] = values[f]


@numba.njit(cache=True, nogil=True)
def gather_facts(
    cols: np.ndarray, cache_rows: np.ndarray, lines: np.ndarray, src: np.ndarray, dst: np.ndarray, facts: np.ndarray
) -> None:
    """facts[k, COL_ROW] = lines[k] and facts[k, dst[j]] = cols[cache_rows[lines[k]], src[j]]: the candidate
    lines' columns of the line cache (one call instead of three numpy fancy-index passes a document)."""
    for k in range(lines.size):
        line = lines[k]
        facts[k, COL_ROW] = line
        row = cache_rows[line]
        for j in range(src.size):
            facts[k, dst[j]] = cols[row, src[j]]


@numba.njit(cache=True, nogil=True)
def scorer_inputs(
    points: np.ndarray,
    line_starts: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    function_keys: np.ndarray,
    flags: np.ndarray,
    removed_lines: np.ndarray,
    facts: np.ndarray,
    first_in: int,
    after_in: int,
    first_marker: int,
    log1p_table: np.ndarray,
    where: np.ndarray,
    x: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """score_line_shapes then scorer_rows of a document's candidate lines in one call (a few numpy calls
    fewer per document): ``points``: the candidate lines joined by newlines, or, with ``line_starts`` (where
    each line starts, one more: the end + 1), the whole document's, the candidates' gathered from it
    (gather_stripped); the candidate lines stripped, joined by newlines, are returned (candidate_words reads
    them: stripping takes no word character away); ``removed_lines`` (n, uint8): whether the rules removed each
    line (its prefix sum is the ``removed`` array returned); ``facts``: the candidates' line numbers,
    words, prose, nav item, body characters and kept-outside columns filled, the repeated and character
    columns are written here; ``x``: the features. Also returns the candidates whose shape counts need
    Python (C_FALLBACK)."""
    m = facts.shape[0]
    n = removed_lines.size
    removed = np.empty(n + 1, dtype=np.int64)
    removed[0] = 0
    count = 0
    for i in range(n):
        count += removed_lines[i] != 0
        removed[i + 1] = count
    shapes = np.zeros((m, COLUMNS), dtype=np.int64)
    if line_starts.size:
        # The candidates stripped as they are gathered (one copy, not a copy then a stripped one).
        chars = np.empty(m, dtype=np.int64)
        stripped, begin = gather_stripped(points, line_starts, facts[:, COL_ROW].copy(), classes, chars)
        facts[:, COL_CHARS] = chars
        repeated = np.empty(m, dtype=np.int64)
        _stripped_shapes(stripped, begin, classes, lower, function_keys, flags, shapes, chars, repeated)
        facts[:, COL_REPEATED] = repeated
    else:
        stripped = score_line_shapes(
            points, classes, lower, function_keys, flags, shapes, facts[:, COL_CHARS], facts[:, COL_REPEATED]
        )
    scorer_rows(facts, shapes, removed, first_in, after_in, first_marker, log1p_table, where, x)
    fallback = np.empty(m, dtype=np.int64)
    count = 0
    for k in range(m):
        if shapes[k, C_FALLBACK] != 0:
            fallback[count] = k
            count += 1
    return removed, fallback[:count], stripped


@numba.njit(cache=True, nogil=True)
def context_rows(
    s: np.ndarray, near: int, wide: int, confident: float, pad: float, log1p_table: np.ndarray, x: np.ndarray
) -> None:
    """Columns 0..17 of the context model's features (the stage's CONTEXT_FEATURES) from the first
    model's log-odds ``s`` of a document's candidate lines: context_windows' columns, math.log1p of its
    four counts, the median (as np.median: the middle value, or the mean of the two middle ones), each
    score minus it, and the rank (stable order) over m - 1. The stretch mean (column 18) is left to
    numpy (its pairwise sum)."""
    m = s.size
    counts = np.empty((4, m), dtype=np.int64)
    context_windows(s, near, wide, confident, pad, x, counts)
    order = np.argsort(s, kind="mergesort")
    half = m // 2
    # np.mean of the middle value(s): summed from 0.0, then divided by their count.
    median = (0.0 + s[order[half]]) / 1.0 if m % 2 else (0.0 + s[order[half - 1]] + s[order[half]]) / 2.0
    scale = max(m - 1, 1)
    for k in range(m):
        for j in range(4):
            x[k, 11 + j] = _log1p_int(counts[j, k], log1p_table)
        x[k, 15] = median
        x[k, 16] = s[k] - median
        x[order[k], 17] = k / scale


@numba.njit(cache=True, nogil=True)
def block_rows(s: np.ndarray, rows: np.ndarray, removed: np.ndarray, confident: float, x: np.ndarray) -> None:
    """BLOCK_FEATURES of the candidate lines (``rows``, their line numbers) from their scores ``s`` and the
    per-line ``removed`` flags (line removed by a rule); x[:, 0], x[:, 5] and x[:, 6] get the plain
    counts (segment size, offset in it, block size), the caller takes log1p. Sums run in line order from
    0.0, as np.bincount / np.cumsum do."""
    m = s.size
    seg = np.empty(m, dtype=np.int64)
    blk = np.empty(m, dtype=np.int64)
    seg_first = np.empty(m, dtype=np.int64)
    nseg = 0
    nblk = 0
    for k in range(m):
        new_seg = k == 0
        if k > 0:
            for i in range(rows[k - 1] + 1, rows[k]):
                if removed[i]:
                    new_seg = True
                    break
        if new_seg:
            seg_first[nseg] = k
            nseg += 1
        if k == 0 or rows[k] - rows[k - 1] > 1:
            nblk += 1
        seg[k] = nseg - 1
        blk[k] = nblk - 1
    seg_sum = np.zeros(nseg)
    seg_conf = np.zeros(nseg)
    seg_min = np.full(nseg, np.inf)
    seg_max = np.full(nseg, -np.inf)
    seg_n = np.zeros(nseg, dtype=np.int64)
    blk_sum = np.zeros(nblk)
    blk_n = np.zeros(nblk, dtype=np.int64)
    for k in range(m):
        g = seg[k]
        seg_sum[g] += s[k]
        seg_conf[g] += 1.0 if s[k] >= confident else 0.0
        seg_min[g] = min(seg_min[g], s[k])
        seg_max[g] = max(seg_max[g], s[k])
        seg_n[g] += 1
        blk_sum[blk[k]] += s[k]
        blk_n[blk[k]] += 1
    total = 0.0
    for k in range(m):
        total += s[k]
    running = 0.0
    for k in range(m):
        g = seg[k]
        b = blk[k]
        x[k, 0] = seg_n[g]
        x[k, 1] = seg_sum[g] / seg_n[g]
        x[k, 2] = seg_min[g]
        x[k, 3] = seg_max[g]
        x[k, 4] = seg_conf[g] / seg_n[g]
        x[k, 5] = k - seg_first[g]
        x[k, 6] = blk_n[b]
        x[k, 7] = blk_sum[b] / blk_n[b]
        before = running  # sum of s[:k]
        running += s[k]
        x[k, 8] = running / (k + 1)
        x[k, 9] = (total - before) / (m - k)


# --- The per-document index lists of line_facts' output (BoilerplateStage._new_line_infos). ---
# Marks, in info_marks' order: lines only the glued-trail test can call a breadcrumb, lines the
# breadcrumb tests may call one, possible quantity lines, lines with an empty key (no words), lines left
# to Python (F_FALLBACK).
INFO_MARKS = 5


@numba.njit(cache=True, nogil=True)
def _info_mark_bits(f: int, words: int) -> int:
    """Bit k set when the line has mark k, in INFO_MARKS' order."""
    return (
        int((f & F_GLUED) != 0)
        | int((f & F_CRUMB) != 0) << 1
        | int((f & F_QUANTITY) != 0) << 2
        | int(words == 0) << 3
        | int((f & F_FALLBACK) != 0) << 4
    )


@numba.njit(cache=True, nogil=True)
def key_hashes(
    data: np.ndarray, ends: np.ndarray, exact: np.ndarray, exact_bits: np.ndarray, hashes: np.ndarray, hits: np.ndarray
) -> int:
    """line_facts' keys (``data``: their UTF-8 joined by newlines, ``ends[j]``: where key j ends): each key's
    xxh3_64 (line_hash) into ``hashes``, and the keys whose hash is in ``exact`` (sorted) listed in ``hits``
    (the exact-line rule's candidates, each to be confirmed by its bytes). ``exact_bits``: per value of a
    hash's low bits (power-of-two size), whether an exact hash has them (most keys need no binary search).
    Returns how many hit."""
    found = 0
    # (not the literal 0: numba would also compile xxh3_64 for a first argument of Literal[int](0), ~6 s of
    # the first run's compile, for a version no call uses once typing settles on int64)
    start = np.int64(0)
    mask = np.uint64(exact_bits.size - 1)
    for j in range(ends.size):
        end = ends[j]
        h = xxh3_64(data, start, end - start)
        hashes[j] = h
        if exact_bits[h & mask]:
            k = np.searchsorted(exact, h)
            if k < exact.size and exact[k] == h:
                hits[found] = j
                found += 1
        start = end + 1
    return found


@numba.njit(cache=True, nogil=True)
def info_marks(
    flags: np.ndarray,
    words: np.ndarray,
    marks: np.ndarray,
    bounds: np.ndarray,
    prose: np.ndarray,
    nav: np.ndarray,
    keep: np.ndarray,
) -> None:
    """From line_facts' ``flags`` and ``words`` (m lines): the line numbers of each mark (see INFO_MARKS),
    written one mark after the other in ascending order to ``marks`` (size INFO_MARKS * m), and the
    F_PROSE / F_NAV / F_KEEP bits as booleans; ``bounds`` (INFO_MARKS + 1): where each mark's lines start
    and end in ``marks`` (passed in: returning an array costs a few µs per call). One call instead of a dozen
    small numpy operations per document (most documents have few new lines)."""
    m = flags.size
    bounds[:] = 0
    for j in range(m):
        f = flags[j]
        bits = _info_mark_bits(f, words[j])
        for k in range(INFO_MARKS):
            bounds[k + 1] += (bits >> k) & 1
        prose[j] = (f & F_PROSE) != 0
        nav[j] = (f & F_NAV) != 0
        keep[j] = (f & F_KEEP) != 0
    for k in range(INFO_MARKS):
        bounds[k + 1] += bounds[k]
    at = bounds[:INFO_MARKS].copy()
    for j in range(m):
        bits = _info_mark_bits(flags[j], words[j])
        for k in range(INFO_MARKS):
            if (bits >> k) & 1:
                marks[at[k]] = j
                at[k] += 1


# --- Line scorer: one pass over the candidate lines as they are (not stripped), shared with candidate_words. ---


@numba.njit(cache=True, nogil=True)
def score_line_shapes(
    points: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    function_keys: np.ndarray,
    flags: np.ndarray,
    shapes: np.ndarray,
    chars: np.ndarray,
    repeated: np.ndarray,
) -> np.ndarray:
    """line_shape_counts of the candidate lines stripped as str.strip() strips them (``points``: the
    lines as they are, joined by newlines), plus per line the characters of the stripped line (``chars``)
    and whether the same stripped line occurs again among them (``repeated``, 0/1). Whitespace is what
    str.isspace() says (the SPACE bit; no astral character is whitespace). Returns the stripped lines
    joined by newlines (what candidate_words reads: stripping takes no word character away)."""
    n = points.size
    m = chars.size
    stripped = np.empty(n, dtype=np.uint32)
    begin = np.empty(m, dtype=np.int64)  # stripped line k: stripped[begin[k]:begin[k] + chars[k]]
    size = 0
    line = 0
    start = 0
    for p in range(n + 1):
        if p < n and points[p] != NEWLINE:
            continue
        b = start
        e = p
        while b < e and points[b] < 0x10000 and (classes[points[b]] & SPACE) != 0:
            b += 1
        while e > b and points[e - 1] < 0x10000 and (classes[points[e - 1]] & SPACE) != 0:
            e -= 1
        if line:
            stripped[size] = NEWLINE
            size += 1
        begin[line] = size
        chars[line] = e - b
        for q in range(b, e):
            stripped[size] = points[q]
            size += 1
        line += 1
        start = p + 1
    stripped = stripped[:size]
    _stripped_shapes(stripped, begin, classes, lower, function_keys, flags, shapes, chars, repeated)
    return stripped


@numba.njit(cache=True, nogil=True)
def gather_stripped(
    points: np.ndarray, line_starts: np.ndarray, rows: np.ndarray, classes: np.ndarray, chars: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The lines ``rows`` of a document (``points``, its lines starting at ``line_starts``, one more: its
    size + 1) stripped as str.strip() strips them, joined by newlines, gathered in one copy; with where
    each starts in it, and its characters written to ``chars``: what score_line_shapes makes of the lines
    joined as they are."""
    m = rows.size
    begin = np.empty(m, dtype=np.int64)
    lo = np.empty(m, dtype=np.int64)
    size = m - 1 if m else 0
    for k in range(m):
        row = rows[k]
        b = line_starts[row]
        e = line_starts[row + 1] - 1
        while b < e and points[b] < 0x10000 and (classes[points[b]] & SPACE) != 0:
            b += 1
        while e > b and points[e - 1] < 0x10000 and (classes[points[e - 1]] & SPACE) != 0:
            e -= 1
        lo[k] = b
        chars[k] = e - b
        size += e - b
    stripped = np.empty(size, dtype=np.uint32)
    w = 0
    for k in range(m):
        if k:
            stripped[w] = NEWLINE
            w += 1
        begin[k] = w
        b = lo[k]
        stripped[w : w + chars[k]] = points[b : b + chars[k]]
        w += chars[k]
    return stripped, begin


@numba.njit(cache=True, nogil=True)
def _stripped_shapes(
    stripped: np.ndarray,
    begin: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    function_keys: np.ndarray,
    flags: np.ndarray,
    shapes: np.ndarray,
    chars: np.ndarray,
    repeated: np.ndarray,
) -> None:
    """score_line_shapes' counts and repeated lines of the stripped lines (``stripped``, joined by newlines;
    line k is stripped[begin[k]:begin[k] + chars[k]])."""
    m = chars.size
    line_shape_counts(stripped, classes, lower, function_keys, shapes, flags)
    # Equal stripped lines: an open-addressing table of line numbers, hashed by what is known of each line
    # already (its length, first and last characters, counts), characters compared only on a tie.
    slots = np.full(table_size(m), -1, dtype=np.int64)
    mask = np.uint64(slots.size - 1)
    for k in range(m):
        repeated[k] = 0
    for k in range(m):
        size = chars[k]
        h = (FNV_OFFSET ^ np.uint64(size)) * FNV_PRIME
        if size:
            h = (h ^ np.uint64(stripped[begin[k]])) * FNV_PRIME
            h = (h ^ np.uint64(stripped[begin[k] + size - 1])) * FNV_PRIME
        for j in range(C_TOKENS + 1):
            h = (h ^ np.uint64(shapes[k, j])) * FNV_PRIME
        s = (h >> np.uint64(17)) & mask
        while slots[s] >= 0:
            j = slots[s]
            if chars[j] == size and same_run(stripped, begin[j], stripped, begin[k], size):
                repeated[j] = 1
                repeated[k] = 1
                break
            s = (s + np.uint64(1)) & mask
        if slots[s] < 0:
            slots[s] = k


@numba.njit(cache=True, nogil=True)
def score_announced(colon: np.ndarray, listed: np.ndarray, rows: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Per candidate line, whether it is an item of a list announced by a line ending with a colon
    (the stage's _announced_list_items, as flags): ``colon``/``listed``: per candidate, whether its
    stripped line ends with ":" / opens like a list item; ``rows``: their line numbers; ``removed``
    (n + 1): lines removed by a rule before each line. A list runs on over consecutive candidates with no
    removed line in between that are list items; an item ending with a colon starts no list of its own."""
    m = rows.size
    items = np.zeros(m, dtype=np.bool_)
    for k in range(m):
        if colon[k] == 0 or items[k]:
            continue
        previous = rows[k]
        for at in range(k + 1, m):
            j = rows[at]
            if removed[j] != removed[previous + 1] or listed[at] == 0:
                break
            items[at] = True
            previous = j
    return items


@numba.njit(cache=True, nogil=True)
def scorer_removals(
    odds: np.ndarray,
    low: float,
    x: np.ndarray,
    colon_col: int,
    list_col: int,
    rows: np.ndarray,
    removed: np.ndarray,
    facts: np.ndarray,
    keep_col: int,
) -> tuple[np.ndarray, int]:
    """The candidate lines (``rows``) whose log-odds are below ``low`` and that are not items of an announced
    list (score_announced on the colon and list-item columns of ``x``), in one call instead of a dozen small
    numpy ones per document: first those without the keep mark in ``facts`` (removed), in row order, then
    (from the returned index on) those with it (removed unless is_quantity_line: the caller tests)."""
    m = rows.size
    items = score_announced(x[:, colon_col], x[:, list_col], rows, removed)
    out = np.empty(m, dtype=np.int64)
    w = 0
    for k in range(m):
        if odds[k] < low and not items[k] and facts[k, keep_col] == 0:
            out[w] = rows[k]
            w += 1
    split = w
    for k in range(m):
        if odds[k] < low and not items[k] and facts[k, keep_col] != 0:
            out[w] = rows[k]
            w += 1
    return out[:w], split


# --- Line scorer: both models and the context model's features of a document in one call. ---
# What score_log_odds returns: the context model's log-odds; the first model's (the stage has no context
# model, or the lexicon covers too few of the words); the first model's, and the words need Python
# (candidate_words could not lower-case them character by character).
SCORED_CONTEXT, SCORED_FIRST, SCORED_WORDS_IN_PYTHON = 0, 1, 2
# Most candidate lines score_log_odds scores with the context model: block sizes above the range checked
# against numpy's log1p go to Python (SCORED_WORDS_IN_PYTHON).
SCORED_MAX_ROWS = 100_000
# Widths of the context model's feature blocks after the first model's (the stage's CONTEXT_FEATURES,
# LEXICAL_FEATURES, DOCUMENT_FEATURES, BLOCK_FEATURES, in this order).
CONTEXT_WIDTH, LEXICAL_WIDTH, DOCUMENT_WIDTH, BLOCK_WIDTH = 19, 7, 2, 10


@numba.njit(cache=True, nogil=True)
def _pairwise_block(a: np.ndarray, lo: int, n: int, stride: int) -> float:
    # numpy's pairwise_sum of a[lo], a[lo + stride], ... (n values) for n <= 128 (PW_BLOCKSIZE): eight
    # running sums, then the rest.
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i * stride]
        return res
    r = np.empty(8)
    for j in range(8):
        r[j] = a[lo + j * stride]
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += a[lo + (i + j) * stride]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i * stride]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(a: np.ndarray, lo: int, n: int, stride: int) -> float:
    """Sum of the n values a[lo], a[lo + stride], ... in numpy's pairwise order (np.sum of a float64 run,
    and of each row of a 2-D array along axis 1): bit-identical to it. numpy splits a run of more than
    128 values at half its length rounded down to a multiple of 8 and adds the two sums; the halves are
    walked here with an explicit stack (numba's cache does not load recursive functions reliably)."""
    if n <= 128:
        return _pairwise_block(a, lo, n, stride)
    # Stack of (start, length, combine): combine marks a run whose two halves' sums are on `sums`.
    starts = np.empty(256, dtype=np.int64)
    lengths = np.empty(256, dtype=np.int64)
    combine = np.empty(256, dtype=np.bool_)
    sums = np.empty(256, dtype=np.float64)
    top = 1
    starts[0], lengths[0], combine[0] = lo, n, False
    done = 0
    while top:
        top -= 1
        start, length = starts[top], lengths[top]
        if combine[top]:
            sums[done - 2] = sums[done - 2] + sums[done - 1]
            done -= 1
        elif length <= 128:
            sums[done] = _pairwise_block(a, start, length, stride)
            done += 1
        else:
            half = length // 2
            half -= half % 8
            # Popped in reverse: the first half, then the second, then their sum.
            starts[top], lengths[top], combine[top] = start, length, True
            starts[top + 1], lengths[top + 1], combine[top + 1] = start + half * stride, length - half, False
            starts[top + 2], lengths[top + 2], combine[top + 2] = start, half, False
            top += 3
    return sums[0]


# Rows _tree_log_odds scores at a time: its per-row work arrays take ~100 bytes a row, the feature bins one
# byte per tested feature; a document of 500k short lines is scored in blocks.
TREE_ROWS = 8192
# numpy's pairwise summation: runs of up to this many values are summed with eight running sums.
PW_BLOCKSIZE = 128


def pairwise_program(n: int) -> np.ndarray:
    """numpy's pairwise summation order of n values as a postfix program: rows (start, length) of the runs
    summed directly, in order, and (-1, 0) where the two sums on top of the stack are added (the first
    half's plus the second's). _pairwise_sum follows the same order for one run of values."""
    program: list[tuple[int, int]] = []

    def walk(start: int, length: int) -> None:
        if length <= PW_BLOCKSIZE:
            program.append((start, length))
            return
        half = length // 2
        half -= half % 8
        walk(start, half)
        walk(start + half, length - half)
        program.append((-1, 0))

    walk(0, n)
    return np.array(program, dtype=np.int64).reshape(-1, 2)


def binned_trees(
    feature: np.ndarray, threshold: np.ndarray, leaf_of_bits: np.ndarray, base: float
) -> tuple[Any, ...] | None:
    """_tree_log_odds' form of a depth-3 ensemble, or None when it has none (deeper trees, NaN thresholds,
    a feature with 255 distinct thresholds or more). Each tested feature's distinct thresholds, sorted: a
    value's bin is how many of them are below it, so ``x > threshold`` is ``bin > rank`` (the threshold's
    index among them), and NaN, above none, gets bin 0 (x > t is false for NaN). The tests then compare
    one byte per row instead of a float64 (4x more lanes per vector instruction) and a feature's bins are
    found once for all the nodes testing it. Tuple: (used features, their thresholds padded with +inf, how
    many each, per node its feature's slot in ``used``, per node its rank (uint8), the summation program,
    the leaf value per bit pattern, the 8 leaf values per tree of a depth-3 ensemble (_leaves), base)."""
    trees, inner = feature.shape
    if inner > 7 or leaf_of_bits.shape != (trees, 1 << inner) or np.isnan(threshold).any():
        return None
    used = distinct_sorted(feature)  # (no NaN threshold: checked above)
    cuts = [distinct_sorted(threshold[feature == f]) for f in used]
    width = max((c.size for c in cuts), default=0)
    if width >= 255:
        return None
    padded = np.full((used.size, max(width, 1)), np.inf)
    for s, c in enumerate(cuts):
        padded[s, : c.size] = c
    counts = np.array([c.size for c in cuts], dtype=np.int64)
    slot = np.searchsorted(used, feature).astype(np.int64)
    rank = np.empty(feature.shape, dtype=np.uint8)
    for s, c in enumerate(cuts):  # (per feature, not per node: start-up)
        nodes = slot == s
        rank[nodes] = np.searchsorted(c, threshold[nodes])
    by_bits = np.ascontiguousarray(leaf_of_bits, dtype=np.float64)
    return (
        used.astype(np.int64),
        padded,
        counts,
        slot,
        rank,
        pairwise_program(trees),
        by_bits,
        _leaves(by_bits),
        float(base),
    )


def _leaves(by_bits: np.ndarray) -> np.ndarray:
    """Per tree of a depth-3 ensemble (7 inner nodes), its 8 leaf values by the leaf's number (4 t0 + 2 t1|t2 +
    the third test on the path: leaf_of_tests' order), when ``by_bits`` gives every bit pattern the value of the
    leaf its path reaches (checked, bit for bit); else no rows (_tree_log_odds then reads ``by_bits``)."""
    trees, patterns = by_bits.shape
    leaves = np.zeros((trees, 8), dtype=np.float64)
    if patterns != 128:
        return leaves[:0]
    walk = leaf_of_tests(3)
    for bits in range(128):
        leaves[:, walk[bits]] = by_bits[:, bits]
    for bits in range(128):
        if not np.array_equal(leaves[:, walk[bits]].view(np.int64), by_bits[:, bits].view(np.int64)):
            return leaves[:0]
    return leaves


@numba.njit(cache=True, nogil=True)
def _tree_log_odds(xt: np.ndarray, model: tuple) -> np.ndarray:  # type: ignore[type-arg]
    """The stage's TreeEnsemble.log_odds of the rows of ``xt`` (features, rows), the same bits, with a
    binned_trees model: per block of rows, each tested feature's bins, then tree after tree the bit
    pattern of its node tests (vectorised over rows), its leaf values, added into the per-row sums in
    numpy's pairwise order (np.sum along a row of the (rows, trees) leaf values), plus the base."""
    used, cuts, counts, slot, rank, program, by_bits, leaves, base = model
    trees, inner = slot.shape
    by_leaf = inner == 7 and leaves.shape[0] == trees
    total = xt.shape[1]
    block = max(1, min(total, TREE_ROWS))
    bins = np.empty((used.size, block), dtype=np.uint8)
    bits = np.empty(block, dtype=np.uint8)
    running = np.empty((8, block), dtype=np.float64)
    runs = 0
    for p in range(program.shape[0]):
        runs += program[p, 0] >= 0
    run_sums = np.empty((runs, block), dtype=np.float64)
    stack = np.empty((runs, block), dtype=np.float64)
    odds = np.empty(total, dtype=np.float64)
    one, two, four, zero = np.uint8(1), np.uint8(2), np.uint8(4), np.uint8(0)
    for first in range(0, total, TREE_ROWS):
        rows = min(TREE_ROWS, total - first)
        # A row's bin: how many of the feature's thresholds are below its value, counted threshold by
        # threshold in a pass over the rows (the compiler vectorises it over rows; a loop over the ~10
        # thresholds per row did not vectorise: 2x the time).
        for s in range(used.size):
            column = xt[used[s], first : first + rows]
            b = bins[s]
            b[:rows] = zero
            for k in range(counts[s]):
                cut = cuts[s, k]
                for r in range(rows):
                    b[r] += one if column[r] > cut else zero
        run = 0
        for p in range(program.shape[0]):
            start, n = program[p, 0], program[p, 1]
            if start < 0:
                continue
            out = run_sums[run]
            full = n - n % 8  # the trees summed by the eight running sums (none when n < 8)
            if n < 8:
                out[:rows] = 0.0
            for i in range(n):
                t = start + i
                if by_leaf:
                    # A depth-3 tree's leaf number per row from its path's three tests (bytes, vectorised),
                    # then its value chosen among the tree's 8 by comparisons (vectorised too, where a table
                    # lookup per row is not): below.
                    b0, b1, b2, b3 = bins[slot[t, 0]], bins[slot[t, 1]], bins[slot[t, 2]], bins[slot[t, 3]]
                    b4, b5, b6 = bins[slot[t, 4]], bins[slot[t, 5]], bins[slot[t, 6]]
                    a0, a1, a2, a3 = rank[t, 0], rank[t, 1], rank[t, 2], rank[t, 3]
                    a4, a5, a6 = rank[t, 4], rank[t, 5], rank[t, 6]
                    for r in range(rows):
                        t0, t1, t2, t3 = b0[r] > a0, b1[r] > a1, b2[r] > a2, b3[r] > a3
                        t4, t5, t6 = b4[r] > a4, b5[r] > a5, b6[r] > a6
                        mid = t2 if t0 else t1
                        low = (t6 if mid else t5) if t0 else (t4 if mid else t3)
                        bits[r] = (four if t0 else zero) | (two if mid else zero) | (one if low else zero)
                elif inner == 7:
                    # A depth-3 tree's seven node tests in one pass over the rows (not one pass per test).
                    b0, b1, b2, b3 = bins[slot[t, 0]], bins[slot[t, 1]], bins[slot[t, 2]], bins[slot[t, 3]]
                    b4, b5, b6 = bins[slot[t, 4]], bins[slot[t, 5]], bins[slot[t, 6]]
                    a0, a1, a2, a3 = rank[t, 0], rank[t, 1], rank[t, 2], rank[t, 3]
                    a4, a5, a6 = rank[t, 4], rank[t, 5], rank[t, 6]
                    for r in range(rows):
                        bits[r] = (
                            (np.uint8(1) if b0[r] > a0 else zero)
                            | (np.uint8(2) if b1[r] > a1 else zero)
                            | (np.uint8(4) if b2[r] > a2 else zero)
                            | (np.uint8(8) if b3[r] > a3 else zero)
                            | (np.uint8(16) if b4[r] > a4 else zero)
                            | (np.uint8(32) if b5[r] > a5 else zero)
                            | (np.uint8(64) if b6[r] > a6 else zero)
                        )
                else:
                    bits[:rows] = 0
                    for j in range(inner):
                        tested = bins[slot[t, j]]
                        above = rank[t, j]
                        bit = np.uint8(1 << j)
                        for r in range(rows):
                            bits[r] |= bit if tested[r] > above else zero
                if by_leaf:
                    l0, l1, l2, l3 = leaves[t, 0], leaves[t, 1], leaves[t, 2], leaves[t, 3]
                    l4, l5, l6, l7 = leaves[t, 4], leaves[t, 5], leaves[t, 6], leaves[t, 7]
                    if i < 8 and n >= 8:
                        sums = running[i]
                        for r in range(rows):
                            k = bits[r]
                            below = (l1 if k & 1 else l0) if k < 2 else (l3 if k & 1 else l2)
                            above = (l5 if k & 1 else l4) if k < 6 else (l7 if k & 1 else l6)
                            sums[r] = below if k < 4 else above
                    else:
                        sums = running[i % 8] if i < full else out
                        for r in range(rows):
                            k = bits[r]
                            below = (l1 if k & 1 else l0) if k < 2 else (l3 if k & 1 else l2)
                            above = (l5 if k & 1 else l4) if k < 6 else (l7 if k & 1 else l6)
                            sums[r] += below if k < 4 else above
                else:
                    value = by_bits[t]
                    if i < 8 and n >= 8:
                        sums = running[i]
                        for r in range(rows):
                            sums[r] = value[bits[r]]
                    elif i < full:
                        sums = running[i % 8]
                        for r in range(rows):
                            sums[r] += value[bits[r]]
                    else:
                        for r in range(rows):
                            out[r] += value[bits[r]]
                if i == full - 1:
                    for r in range(rows):
                        out[r] = ((running[0, r] + running[1, r]) + (running[2, r] + running[3, r])) + (
                            (running[4, r] + running[5, r]) + (running[6, r] + running[7, r])
                        )
            run += 1
        top = 0
        run = 0
        for p in range(program.shape[0]):
            if program[p, 0] >= 0:
                stack[top, :rows] = run_sums[run, :rows]
                top += 1
                run += 1
            else:
                for r in range(rows):
                    stack[top - 2, r] = stack[top - 2, r] + stack[top - 1, r]
                top -= 1
        for r in range(rows):
            odds[first + r] = base + stack[0, r]
    return odds


@numba.njit(cache=True, nogil=True)
def score_log_odds(
    x: np.ndarray,
    rows: np.ndarray,
    body_chars: np.ndarray,
    removed: np.ndarray,
    stretch_start: int,
    stretch_end: int,
    first: tuple,  # type: ignore[type-arg]
    context: bool,
    second: tuple,  # type: ignore[type-arg]
    points: np.ndarray,
    word_lower: np.ndarray,
    astral: np.ndarray,
    astral_lower: np.ndarray,
    lex_slots: np.ndarray,
    lex_slot_hash: np.ndarray,
    lex_points: np.ndarray,
    lex_starts: np.ndarray,
    lex_weight: np.ndarray,
    near: int,
    wide: int,
    confident: float,
    pad: float,
    min_known_share: float,
    overlap_min_chars: int,
    log1p_table: np.ndarray,
    odds: np.ndarray,
) -> int:
    """The stage's _line_log_odds of a document's candidate lines, in one call: the first model on their
    features ``x`` (line_features), then, with ``context`` and enough known words (candidate_words on
    ``points``, the candidate lines joined by newlines), the context model on x plus the context,
    lexical, document and block features, each block computed by the kernel the stage's function uses,
    the stretch mean and the tree sums in numpy's summation order: the same bits. ``rows``/``body_chars``:
    the candidates' line numbers and body characters (-1: not body); ``removed`` (lines + 1): lines removed
    by the rules before each line; the stretch [stretch_start, stretch_end) ((0, 0) without one);
    ``first``/``second``: the models as binned_trees gives them (``second`` is not read without ``context``).
    Writes ``odds`` and returns SCORED_CONTEXT, SCORED_FIRST or SCORED_WORDS_IN_PYTHON (what ``odds``
    holds: see those constants). context_features and _tree_log_odds are its two parts, for callers that
    score several documents' trees in one call (a row's log-odds do not depend on the other rows)."""
    m, width = x.shape
    xt = np.ascontiguousarray(x.T)
    s = _tree_log_odds(xt, first)
    odds[:] = s
    if not context:
        return SCORED_FIRST
    xt2 = np.empty((width + CONTEXT_WIDTH + LEXICAL_WIDTH + DOCUMENT_WIDTH + BLOCK_WIDTH, m), dtype=np.float64)
    status = context_features(
        xt, s, 0, m, rows, body_chars, removed, stretch_start, stretch_end,
        points, word_lower, astral, astral_lower,
        lex_slots, lex_slot_hash, lex_points, lex_starts, lex_weight,
        near, wide, confident, pad, min_known_share, overlap_min_chars, log1p_table, xt2, 0,
    )  # fmt: skip
    if status == SCORED_CONTEXT:
        odds[:] = _tree_log_odds(xt2, second)
    return status


@numba.njit(cache=True, nogil=True)
def context_features(
    xts: np.ndarray,
    scores: np.ndarray,
    at: int,
    m: int,
    rows: np.ndarray,
    body_chars: np.ndarray,
    removed: np.ndarray,
    stretch_start: int,
    stretch_end: int,
    points: np.ndarray,
    word_lower: np.ndarray,
    astral: np.ndarray,
    astral_lower: np.ndarray,
    lex_slots: np.ndarray,
    lex_slot_hash: np.ndarray,
    lex_points: np.ndarray,
    lex_starts: np.ndarray,
    lex_weight: np.ndarray,
    near: int,
    wide: int,
    confident: float,
    pad: float,
    min_known_share: float,
    overlap_min_chars: int,
    log1p_table: np.ndarray,
    xt2s: np.ndarray,
    at2: int,
) -> int:
    """score_log_odds' second part for the document whose m candidates are columns [at, at + m) of ``xts``
    (their first-model features, (features, rows)) with first-model log-odds ``scores[at : at + m]``: with
    enough known words, the context model's features of them into columns [at2, at2 + m) of ``xt2s``
    (x's features, then the context, lexical, document and block ones) and SCORED_CONTEXT; else
    SCORED_FIRST or SCORED_WORDS_IN_PYTHON and ``xt2s`` untouched. Other arguments: score_log_odds'."""
    width = xts.shape[0]
    if m >= SCORED_MAX_ROWS:  # (known before the words are found)
        return SCORED_WORDS_IN_PYTHON
    ok, word_id, word_line, word_len, weight, counts = candidate_words(
        points, m, word_lower, astral, astral_lower, lex_slots, lex_slot_hash, lex_points, lex_starts, lex_weight
    )
    if not ok:
        return SCORED_WORDS_IN_PYTHON
    known = 0
    for k in range(weight.size):
        known += not np.isnan(weight[k])
    if (known / weight.size if weight.size else 0.0) < min_known_share:
        return SCORED_FIRST
    s = scores[at : at + m]
    xt2 = xt2s[:, at2 : at2 + m]
    xt2[:width] = xts[:, at : at + m]
    col = width
    # Context features (the stage's context_features): the window columns, then the stretch mean.
    ctx = np.empty((m, CONTEXT_WIDTH), dtype=np.float64)
    context_rows(s, near, wide, confident, pad, log1p_table, ctx)
    inside = np.empty(m, dtype=np.float64)
    count = 0
    for k in range(m):
        if stretch_start <= rows[k] < stretch_end:
            inside[count] = s[k]
            count += 1
    mean = _pairwise_sum(inside, 0, count, 1) / count if count else pad
    for k in range(m):
        ctx[k, CONTEXT_WIDTH - 1] = mean
    xt2[col : col + CONTEXT_WIDTH] = ctx.T
    col += CONTEXT_WIDTH
    lex = np.zeros((m, LEXICAL_WIDTH), dtype=np.float64)
    lexical_rows(weight, counts, near, lex)
    xt2[col : col + LEXICAL_WIDTH] = lex.T
    col += LEXICAL_WIDTH
    doc = np.full((m, DOCUMENT_WIDTH), -1.0)
    if word_line.size:
        in_body = np.empty(m, dtype=np.bool_)
        for k in range(m):
            in_body[k] = stretch_start <= rows[k] < stretch_end and body_chars[k] > 0
        word_overlap(word_id, word_line, word_len, in_body, overlap_min_chars, doc)
    xt2[col : col + DOCUMENT_WIDTH] = doc.T
    col += DOCUMENT_WIDTH
    flags = np.empty(removed.size - 1, dtype=np.bool_)
    for i in range(flags.size):
        flags[i] = removed[i + 1] != removed[i]
    blk = np.empty((m, BLOCK_WIDTH), dtype=np.float64)
    block_rows(s, rows, flags, confident, blk)
    for k in range(m):
        for j in (0, 5, 6):  # counts (segment size, offset in it, block size), as np.log1p gives them
            blk[k, j] = _log1p_int(int(blk[k, j]), log1p_table)
    xt2[col : col + BLOCK_WIDTH] = blk.T
    return SCORED_CONTEXT


# Bits of the first pass's per-code-point table (``recurring_classes``): what recurring_distinct asks of a
# character, from one load instead of three dependent ones (shape class, lower case, its key class).
RC_SPACE, RC_BAD, RC_EDGE, RC_CJK = 1, 2, 4, 8


def recurring_classes(classes: np.ndarray, lower: np.ndarray, key_classes: np.ndarray) -> np.ndarray:
    """Per BMP code point, recurring_distinct's view of it: RC_SPACE (a SPACE shape class: separates
    words), else RC_BAD (a surrogate, a lower case of several characters, or capital sigma, whose lower
    case depends on its place: Python normalises the line), else its lower case's RC_EDGE and RC_CJK
    (KEY_EDGE, KEY_CJK)."""
    points = np.arange(0x10000)
    surrogate = (points >= 0xD800) & (points < 0xE000)
    several = lower == NO_LOWER
    keyed = key_classes[np.where(several, 0, lower)]
    table = np.where(keyed & KEY_EDGE, RC_EDGE, 0) | np.where(keyed & KEY_CJK, RC_CJK, 0)
    table = np.where(several | (points == 0x3A3) | surrogate, RC_BAD, table)
    table = np.where(((classes & SPACE) != 0) & ~surrogate, RC_SPACE, table)
    return table.astype(np.uint8)


@numba.njit(cache=True, nogil=True)
def recurring_distinct(
    points: np.ndarray,
    rc: np.ndarray,
    lower: np.ndarray,
    max_chars: int,
    min_words: int,
    out: np.ndarray,
    marks: np.ndarray,
    hashes: np.ndarray,
) -> tuple[int, int]:
    """``recurring_keys`` with only the distinct keys written (first occurrence order, joined by newlines,
    none empty), ``marks[k]`` of the k-th of them (RECURRING_COUNTED or RECURRING_SITE: a function of
    the key) and ``hashes[k]``, the xxh3_64 of its UTF-8 (``line_hash``'s). Returns (bytes written, keys),
    or (-1, 0) at the first line Python must normalise (the caller then runs recurring_keys). In Python,
    the split of every line's key, and the dict that dropped the repeated ones, took ~0.1 s of CPU on
    40 MB of web text, as long as this pass."""
    n = points.size
    mask = table_size(marks.size) - 1  # (a mark per line: at least as many as the distinct keys)
    slot_start = np.full(mask + 1, -1, dtype=np.int64)  # the key's bytes in ``out``: start, end
    slot_end = np.empty(mask + 1, dtype=np.int64)
    slot_hash = np.empty(mask + 1, dtype=np.uint64)
    w = 0
    count = 0
    p = 0
    while p <= n:
        # One line, in one pass (``_line_key`` then ``_put_key`` took three: the line's end, its key, the
        # key's bytes): the key's UTF-8 written from w0 as it is made, edge characters at its start skipped,
        # the state after its last non-edge character kept (``ck_``), which ends it.
        b = p
        w0 = w + (count > 0)
        q = w0
        started = pending = bad = False
        spaces = cjk = ck_spaces = ck_cjk = 0
        ck_w = w0
        while p < n:
            c = points[p]
            if c == NEWLINE:
                break
            p += 1
            f = rc[c] if c < 0x10000 else RC_BAD
            if f & (RC_SPACE | RC_BAD):
                if f & RC_BAD:  # (Python normalises the line, if it is counted at all): to its end
                    bad = True
                    while p < n and points[p] != NEWLINE:
                        p += 1
                    break
                pending = started
                continue
            if not started:
                if f & RC_EDGE:
                    continue
                started = True
            elif pending:
                out[q] = 32
                q += 1
                spaces += 1
            pending = False
            q = _put_utf8(out, q, lower[c])
            cjk += (f & RC_CJK) != 0
            if not f & RC_EDGE:
                ck_w, ck_spaces, ck_cjk = q, spaces, cjk
        length = p - b
        p += 1  # (past the newline)
        if not 0 < length <= max_chars:
            continue
        if bad:
            return -1, 0
        if not started:  # an empty key
            continue
        w1 = ck_w
        # The key's xxh3 (the part's hash) also finds its slot: a per-character hash of the key as it was
        # made cost a multiply's latency a character (~0.05 s of 40 MB), xxh3 of the key's bytes far less.
        h = xxh3_64(out, w0, w1 - w0)
        mark = RECURRING_COUNTED if ck_spaces + 1 + ck_cjk // 2 >= min_words else RECURRING_SITE
        if count > 0:
            out[w] = NEWLINE
        j = np.int64(h & np.uint64(mask))
        seen = False
        while slot_start[j] >= 0:
            if (
                slot_hash[j] == h
                and slot_end[j] - slot_start[j] == w1 - w0
                and same_run(out, slot_start[j], out, w0, w1 - w0)
            ):
                seen = True
                break
            j = (j + 1) & mask
        if not seen:  # (a repeat is left where it was written: the next key overwrites it)
            slot_start[j], slot_end[j], slot_hash[j] = w0, w1, h
            marks[count] = mark
            hashes[count] = h
            count += 1
            w = w1
    return w, count


@numba.njit(cache=True, nogil=True)
def recurring_hashes(
    points: np.ndarray,
    rc: np.ndarray,
    lower: np.ndarray,
    max_chars: int,
    min_words: int,
) -> tuple[int, np.ndarray, np.ndarray]:
    """boilerplate's first-pass part of a text in one call: ``recurring_distinct``'s distinct keys as the
    xxh3_64 of their UTF-8 (what ``line_hash`` gives a key) and whether each counts corpus-wide
    (RECURRING_COUNTED), in first occurrence order. (-1, empty, empty) where Python must normalise a line.
    Splitting the keys into bytes objects and hashing each with a Python call, and counting the lines for
    the marks, took a quarter of the first pass's part."""
    n = points.size
    lines = 1
    for p in range(n):
        lines += points[p] == NEWLINE
    out = np.empty(3 * n + 1, dtype=np.uint8)
    marks = np.empty(lines, dtype=np.uint8)
    hashes = np.empty(lines, dtype=np.uint64)
    size, count = recurring_distinct(points, rc, lower, max_chars, min_words, out, marks, hashes)
    if size < 0:
        return -1, hashes[:0], np.empty(0, dtype=np.bool_)
    counted = np.empty(count, dtype=np.bool_)
    for k in range(count):
        counted[k] = marks[k] == RECURRING_COUNTED
    return count, hashes[:count].copy(), counted


# --- The rule loop of a document (BoilerplateStage._rule_verdicts) over the line cache's columns. ---
# Columns of a line cache row (int32; the key hash is a column of its own, int64): what _line_info says
# about one stripped line, with the rule as a code (0: none) and the two text tests the loop needs.
(
    LC_STATE,  # LC_BLANK, LC_NO_KEY (nothing left after normalisation) or LC_KEY
    LC_WORDS,
    LC_RULE,  # the pack rule's code, 0 for none
    LC_CRUMB,  # CRUMB_NONE, CRUMB_WHOLE ('breadcrumb') or CRUMB_PREFIX ('breadcrumb-prefix')
    LC_CUT,  # a breadcrumb prefix's length
    LC_PROSE,
    LC_NAV,
    LC_BODY,  # body characters, or -1
    LC_KEEP,
    LC_MARKER,  # an end-marker rule, and not a list item: ends the article once prose was seen
    LC_TEASER,  # a list item ending in "?" or "!" (_listed_teaser), for a prose line
    LC_RECURRING,  # the key hash is one of the corpus-wide recurring ones
    LC_NUMBERED,  # the line opens as a numbered list item ("3. ", "12) "; _numbered_item)
) = range(13)
LINE_COLUMNS = 13
LC_BLANK, LC_NO_KEY, LC_KEY = 0, 1, 2
CRUMB_NONE, CRUMB_WHOLE, CRUMB_PREFIX = 0, 1, 2
# Rule codes the loop gives itself (the stage's rule names list starts with these).
RULE_NONE, RULE_RECURRING, RULE_BREADCRUMB, RULE_WIDGET, RULE_NAVIGATION, RULE_CONTENT = range(6)
# rule_loop's counts, in its `counts` output.
RL_PREFIXES, RL_MARKERS, RL_SCORED, RL_BODY_LINES, RL_RECURRING_BODY, RL_STRETCH, RL_START, RL_END = range(8)
RL_COUNTS = 8
# rule_loop's switches, in its `switches` input.
(
    RS_RECURRING,
    RS_COPY,
    RS_CRUMBS,
    RS_PREFIX,
    RS_TRAILING,
    RS_TRAILING_MAX,
    RS_CONTENT,
    RS_NAVIGATION,
    RS_MARK,
    RS_REMOVED_COST,
    RS_MARKER_COST,
    RS_SEEN_PROSE_WORDS,
    RS_NAV_MIN_RUN,
    RS_LINE_PENALTY,
    RS_MARGIN,
) = range(15)
RL_SWITCHES = 15


@numba.njit(cache=True, nogil=True, inline="always")
def _in_sorted(keys: np.ndarray, key: np.int64) -> bool:
    k = np.searchsorted(keys, key)
    return k < keys.size and keys[k] == key


@numba.njit(cache=True, nogil=True)
def rule_loop(
    cols: np.ndarray,
    hashes: np.ndarray,
    rows: np.ndarray,
    site: np.ndarray,
    switches: np.ndarray,
    verdict: np.ndarray,
    prefixes: np.ndarray,
    markers: np.ndarray,
    scored: np.ndarray,
    counts: np.ndarray,
) -> None:
    """BoilerplateStage._rule_verdicts' loop, navigation runs and article stretch (in Python:
    tests/boilerplate_reference.py) for one document of n lines: ``rows`` (n) its lines' rows in the line
    cache's ``cols`` / ``hashes``; ``site``: the site's recurring key hashes (sorted int64; the corpus-wide
    ones are a column); ``switches``: the options (RS_*). Writes each line's rule code to ``verdict`` (n, 0
    kept), and in line order the lines cut as a breadcrumb prefix, the end markers and the lines the article
    search looks at to ``prefixes``, ``markers``, ``scored`` (n each), with their numbers and the rest in
    ``counts`` (RL_*)."""
    n = rows.size
    recurring_on = switches[RS_RECURRING] != 0
    copy = switches[RS_COPY] != 0
    crumbs_on = switches[RS_CRUMBS] != 0
    prefix_on = switches[RS_PREFIX] != 0
    trailing_on = switches[RS_TRAILING] != 0
    trailing_max = switches[RS_TRAILING_MAX]
    content_on = switches[RS_CONTENT] != 0
    removed_cost = switches[RS_REMOVED_COST]
    marker_cost = switches[RS_MARKER_COST]
    seen_words = switches[RS_SEEN_PROSE_WORDS]
    body = np.zeros(n, dtype=np.int64)
    keep = np.zeros(n, dtype=np.bool_)
    gap = np.zeros(n, dtype=np.int64)
    nav = np.zeros(n, dtype=np.bool_)
    nav_lines = np.empty(n, dtype=np.int64)
    n_nav = n_prefix = n_markers = n_scored = body_lines = recurring_body = 0
    pending = 0
    trailing = seen_prose = False
    for i in range(n):
        verdict[i] = RULE_NONE
    for i in range(n):
        r = rows[i]
        if cols[r, LC_STATE] != LC_KEY:
            continue
        words = cols[r, LC_WORDS]
        rule = cols[r, LC_RULE]
        if rule != RULE_NONE:
            verdict[i] = rule
            pending += removed_cost
            # A marker ends an article only once some prose was seen (a list item is a menu link).
            if cols[r, LC_MARKER] != 0 and seen_prose:
                trailing = trailing_on
                pending += marker_cost
                markers[n_markers] = i
                n_markers += 1
            continue
        body_chars = cols[r, LC_BODY]
        if body_chars > 0:
            body_lines += 1
        if recurring_on and (cols[r, LC_RECURRING] != 0 or _in_sorted(site, hashes[r])):
            if body_chars > 0:
                recurring_body += 1
            if not copy or body_chars <= 0:
                verdict[i] = RULE_RECURRING
                pending += removed_cost
                continue
        crumb = cols[r, LC_CRUMB]
        if crumb == CRUMB_WHOLE and crumbs_on:
            verdict[i] = RULE_BREADCRUMB
            pending += removed_cost
            continue
        if crumb == CRUMB_PREFIX and prefix_on:
            prefixes[n_prefix] = i
            n_prefix += 1
            trailing = False
            continue
        prose = cols[r, LC_PROSE] != 0
        if trailing:
            # A listed headline ending in "?" or "!" is one more teaser, not the article resuming.
            if words <= trailing_max and (not prose or cols[r, LC_TEASER] != 0):
                verdict[i] = RULE_WIDGET
                pending += removed_cost
                continue
            trailing = False
        if prose and words >= seen_words:
            seen_prose = True
        if cols[r, LC_NAV] != 0:
            nav[i] = True
            nav_lines[n_nav] = i
            n_nav += 1
        if content_on:
            body[i] = body_chars
            keep[i] = cols[r, LC_KEEP] != 0
            scored[n_scored] = i
            n_scored += 1
            gap[i] = pending
            pending = 0
    if n_nav and switches[RS_NAVIGATION] != 0:
        _mark_navigation(verdict, nav, nav_lines[:n_nav], switches[RS_NAV_MIN_RUN])
    counts[:] = 0
    if content_on:
        _mark_outside_content(verdict, body, keep, scored[:n_scored], gap, switches, counts)
    counts[RL_PREFIXES] = n_prefix
    counts[RL_MARKERS] = n_markers
    counts[RL_SCORED] = n_scored
    counts[RL_BODY_LINES] = body_lines
    counts[RL_RECURRING_BODY] = recurring_body


@numba.njit(cache=True, nogil=True)
def _mark_navigation(verdict: np.ndarray, nav: np.ndarray, nav_lines: np.ndarray, min_run: int) -> None:
    """tests/boilerplate_reference.mark_navigation on rule codes."""
    n = verdict.size
    i = 0
    for start in nav_lines:
        if start < i:
            continue
        i = start
        first = i
        items = 0
        anchored = start > 0 and verdict[start - 1] != RULE_NONE
        while i < n and (nav[i] or verdict[i] != RULE_NONE):
            if nav[i]:
                items += 1
            else:
                anchored = True
            i += 1
        if items >= min_run and (anchored or items >= 2 * min_run):
            for j in range(first, i):
                if nav[j]:
                    verdict[j] = RULE_NAVIGATION


@numba.njit(cache=True, nogil=True)
def _mark_outside_content(
    verdict: np.ndarray,
    body: np.ndarray,
    keep: np.ndarray,
    scored: np.ndarray,
    gap: np.ndarray,
    switches: np.ndarray,
    counts: np.ndarray,
) -> None:
    """tests/boilerplate_reference.mark_outside_content on rule codes; the stretch goes to counts[RL_STRETCH:]."""
    penalty = switches[RS_LINE_PENALTY]
    removed_penalty = switches[RS_REMOVED_COST]
    best = cur = 0
    best_start = best_end = cur_start = 0
    cur_body = best_body = 0
    live = np.empty(scored.size, dtype=np.int64)
    n_live = 0
    skipped = 0
    for i in scored:
        if verdict[i] != RULE_NONE:  # navigation removed it since
            skipped += 1
            continue
        live[n_live] = i
        n_live += 1
        value = body[i]
        if gap[i] or skipped:
            cur -= gap[i] + removed_penalty * skipped
        skipped = 0
        if cur <= 0:
            cur, cur_start, cur_body = 0, i, 0
        if value > 0:
            cur += value
            cur_body += 1
        else:
            cur -= penalty
        if cur > best:
            best, best_start, best_end, best_body = cur, cur_start, i + 1, cur_body
    if best_body < 2:
        return
    counts[RL_STRETCH] = 1
    counts[RL_START] = best_start
    counts[RL_END] = best_end
    if switches[RS_MARK] == 0:
        return
    margin = switches[RS_MARGIN]
    # Walk outwards from the stretch, counting kept non-blank lines.
    live = live[:n_live]
    split_before = np.searchsorted(live, best_start)
    split_after = np.searchsorted(live, best_end)
    for k in range(split_before - 1, -1, -1):
        if split_before - k > margin and not keep[live[k]]:
            verdict[live[k]] = RULE_CONTENT
    for k in range(split_after, n_live):
        if k - split_after + 1 > margin and not keep[live[k]]:
            verdict[live[k]] = RULE_CONTENT


@numba.njit(cache=True, nogil=True)
def line_rows(
    points: np.ndarray,
    begins: np.ndarray,
    lengths: np.ndarray,
    classes: np.ndarray,
    flags: np.ndarray,
    words: np.ndarray,
    body: np.ndarray,
    keep: np.ndarray,
    rules: np.ndarray,
    marker_rules: np.ndarray,
    recurring: np.ndarray,
    cols: np.ndarray,
    hashes: np.ndarray,
) -> None:
    """The line cache rows (``cols``, ``hashes``: the new rows, zeroed) of m new stripped lines, from
    line_facts' ``flags``, ``words``, ``body`` (of the lines ``points[begins[j] : begins[j] + lengths[j]]``),
    the keep column with the quantity lines decided, the lines' pack rule codes
    (``rules``, 0: none; whether a code is an end marker: ``marker_rules``) and their key ``hashes``: what
    BoilerplateStage._new_line_infos' tuples say, and whether the key hash is corpus-wide ``recurring``
    (sorted int64). The F_FALLBACK lines are left to the caller (zero), and so are breadcrumbs. The
    list-item test (of an end marker, of a teaser) reads ``classes`` (the shape classes: BMP lines only)."""
    m = words.size
    for j in range(m):
        begin = begins[j]
        end = begin + lengths[j]
        f = flags[j]
        if f & F_FALLBACK:
            hashes[j] = 0
        elif words[j] == 0:
            cols[j, LC_STATE] = LC_NO_KEY
            hashes[j] = 0
        else:
            cols[j, LC_STATE] = LC_KEY
            cols[j, LC_NUMBERED] = (f & F_NUMBERED) != 0
            cols[j, LC_WORDS] = words[j]
            rule = rules[j]
            if rule != RULE_NONE:
                cols[j, LC_RULE] = rule
                cols[j, LC_BODY] = -1
                hashes[j] = 0
                cols[j, LC_MARKER] = marker_rules[rule] and not _list_item(points, begin, end, classes)
            else:
                prose = (f & F_PROSE) != 0
                cols[j, LC_PROSE] = prose
                cols[j, LC_NAV] = (f & F_NAV) != 0
                cols[j, LC_BODY] = body[j]
                cols[j, LC_KEEP] = keep[j]
                cols[j, LC_RECURRING] = _in_sorted(recurring, hashes[j])
                last = points[end - 1]
                cols[j, LC_TEASER] = prose and (last == 63 or last == 33) and _list_item(points, begin, end, classes)


# --- The line cache's index (BoilerplateStage._line_rows): stripped line -> row, confirmed by code points. ---
# line_index's `state`: rows in use (the next new row), pool code points in use, new lines' code points written.
LI_ROWS, LI_POOL, LI_WRITTEN = range(3)
LI_STATE = 3
LI_MAX_POINT = 0xFFFF  # the pool is uint16: a line with an astral code point is never cached


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(c: int) -> bool:
    """str.isspace of one code point (what str.strip strips)."""
    if c <= 32:
        return c == 32 or 9 <= c <= 13 or 28 <= c <= 31
    if c < 0x85:
        return False
    return (
        c == 0x85
        or c == 0xA0
        or c == 0x1680
        or 0x2000 <= c <= 0x200A
        or c == 0x2028
        or c == 0x2029
        or c == 0x202F
        or c == 0x205F
        or c == 0x3000
    )


LI_TAG = np.int64(-(1 << 32))  # a slot: the high half of the line's mixed hash | its row (0: free)
LI_ROW = np.int64(0xFFFFFFFF)
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def line_index(
    points: np.ndarray,
    max_chars: int,
    slots: np.ndarray,
    row_start: np.ndarray,
    row_len: np.ndarray,
    pool: np.ndarray,
    state: np.ndarray,
    rows: np.ndarray,
    line_starts: np.ndarray,
    new_first: np.ndarray,
    new_lengths: np.ndarray,
    new_begins: np.ndarray,
) -> int:
    """The line cache's row of every line of ``points`` (a document's lines joined by newlines) into
    ``rows`` (and where each line starts in ``points`` into ``line_starts``, one more: points.size + 1):
    0 for a blank line (nothing left by str.strip), the row of the same stripped line cached
    before, else a new row (``state[LI_ROWS]`` on), one per distinct stripped line of the document. The
    index: open addressing in ``slots`` (int64, power-of-two size; a slot holds the high half of the line's
    hash, FNV-1a over pairs of code points times the Fibonacci constant, with the row in its low half; 0 is
    free), each hit confirmed by the length (``row_len``) and the code points themselves (``pool`` from
    ``row_start``). The new lines (in order of first sight): their line number (``new_first``), stripped
    length (``new_lengths``) and where the stripped line begins in ``points`` (``new_begins``: the kernels
    after read them there, no copy); ``state[LI_WRITTEN]``: their code points and a newline between two
    (their size joined). Each goes into the index but for lines longer than ``max_chars`` (not hashed) or
    with an astral code point (each sight of those is new). The caller makes room: ``slots`` at most half
    full after the call, the row arrays and the pool (``state[LI_POOL]`` in use) large enough. Returns the
    number of new lines."""
    n = points.size
    size = slots.size
    shift = 64
    while size > 1:
        size >>= 1
        shift -= 1
    mask = slots.size - 1
    # First every line's stripped bounds and mixed hash, touching its first slot: the table's cache misses
    # then overlap (nothing waits for them) instead of stalling each line's probe in turn.
    lines = rows.size
    begins = np.empty(lines, dtype=np.int64)
    ends = np.empty(lines, dtype=np.int64)  # negative: not cached (too long, astral)
    mixed = np.empty(lines, dtype=np.uint64)
    touched = np.int64(0)
    line = 0
    b = 0
    for p in range(n + 1):
        if p < n and points[p] != NEWLINE:
            continue
        s = b
        e = p
        line_starts[line] = b
        b = p + 1
        while s < e and _is_space(points[s]):
            s += 1
        while e > s and _is_space(points[e - 1]):
            e -= 1
        begins[line] = s
        ends[line] = e
        if e - s > max_chars:
            ends[line] = -e  # (never cached: not hashed)
        elif s < e:
            # Two code points a step (a shorter multiply chain); `wide`: any astral one.
            h = FNV_OFFSET
            wide = np.uint32(0)
            q = s
            while q + 1 < e:
                c0 = points[q]
                c1 = points[q + 1]
                wide |= c0 | c1
                h = (h ^ (np.uint64(c0) | (np.uint64(c1) << np.uint64(32)))) * FNV_PRIME
                q += 2
            if q < e:
                wide |= points[q]
                h = (h ^ np.uint64(points[q])) * FNV_PRIME
            if wide > LI_MAX_POINT:
                ends[line] = -e
            else:
                mixed[line] = h * _FIBONACCI
                touched += slots[np.int64(mixed[line] >> np.uint64(shift)) if shift < 64 else 0]
        line += 1
    line_starts[lines] = n + 1
    state[LI_WRITTEN] = touched  # (stored, so that the touching loads are not left out; overwritten below)
    count = state[LI_ROWS]
    used = state[LI_POOL]
    w = 0
    k = 0
    for line in range(lines):
        s = begins[line]
        e = ends[line]
        if s == e:
            rows[line] = 0
            continue
        cached = e > 0
        if not cached:
            e = -e
        length = e - s
        found = 0
        slot = 0
        tag = np.int64(0)
        if cached:
            slot = np.int64(mixed[line] >> np.uint64(shift)) if shift < 64 else 0
            tag = np.int64(mixed[line]) & LI_TAG
            while True:
                v = slots[slot]
                if v == 0:
                    break
                if v & LI_TAG == tag:
                    r = v & LI_ROW
                    if row_len[r] == length and same_run(pool, row_start[r], points, s, length):
                        found = r
                        break
                slot = (slot + 1) & mask
        if found:
            rows[line] = found
            continue
        r = count
        count += 1
        rows[line] = r
        new_first[k] = line
        new_lengths[k] = length
        new_begins[k] = s
        w += length + (k > 0)
        k += 1
        if cached:
            slots[slot] = tag | r
            row_len[r] = length
            row_start[r] = used
            pool[used : used + length] = points[s:e]
            used += length
    state[LI_ROWS] = count
    state[LI_POOL] = used
    state[LI_WRITTEN] = w
    return k
