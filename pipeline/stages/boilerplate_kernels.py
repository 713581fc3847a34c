"""Compiled (numba) loops of the boilerplate stage: per-line lookup keys and word counts of a whole
document, per-line character counts of its candidate lines, each in one call instead of several Python
calls per line.

The stage's options, rules and features stay in ``boilerplate.py``; these only count. Input is the
code-point array of the lines joined by newlines (lines themselves hold no newline).
"""

from __future__ import annotations

import numba
import numpy as np

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
# Bits of normalise_lines' per-code-point table: stripped from a key's ends; a CJK character (half a word).
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


@numba.njit(cache=True, nogil=True)
def line_shape_counts(
    points: np.ndarray, classes: np.ndarray, lower: np.ndarray, function_keys: np.ndarray, out: np.ndarray
) -> None:
    """Per line (row of ``out``): digits, uppercase, letters, letters-or-digits and spaces (as the str
    methods count them), title-case word starts (``\\b[A-ZÀ-ÖØ-ÞĀ-Ž]``), whitespace tokens and function
    words of the lower-cased line, URL/mail/copyright sign, ends with a colon, a fallback flag for
    lines these counts cannot cover (astral characters, characters lower-casing to several, İ/ı/ſ which
    case-insensitive matching folds), and whether the line opens like a list item
    (``[•·▪◦‣∙*-]\\s|\\d{1,2}[.)]\\s`` with the `regex` module's classes).

    ``points``: the lines joined by newlines; ``classes``: bits per BMP code point; ``lower``: per BMP
    code point, its lower-case character (lower-casing never makes or removes whitespace); function
    words are compared as packed keys (``function_keys``, sorted)."""
    line = 0
    begin = 0
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
            if in_token and size <= KEY_MAX_CHARS:
                at = np.searchsorted(function_keys, key)
                if at < function_keys.size and function_keys[at] == key:
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
        if c >= 0x10000 or c == 0x130 or c == 0x131 or c == 0x17F or lower[c] == NO_LOWER:
            fallback = 1
            prev_word = False
            continue
        bits = classes[c]
        digits += bits & DIGIT
        upper += (bits & UPPER) >> 1
        letters += (bits & ALPHA) >> 2
        alnum += (bits & ALNUM) >> 3
        spaces += (bits & SPACE) >> 4
        if not prev_word and _is_title(c):
            title += 1
        prev_word = (bits & WORD) != 0
        if bits & SPACE:
            continue
        low = lower[c]
        if not in_token:
            in_token = True
            tokens += 1
            key = np.int64(1)
            size = 0
        size += 1
        if low >= KEY_MAX_POINT:
            size = KEY_MAX_CHARS + 1  # no function word has such a character
        elif size <= KEY_MAX_CHARS:
            key = key * KEY_MAX_POINT + low
        if not url and (low == 64 or low == 0xA9 or low == 40 or low == 104 or low == 119 or low == 99):
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
def normalise_lines(
    points: np.ndarray,
    classes: np.ndarray,
    lower: np.ndarray,
    key_classes: np.ndarray,
    out: np.ndarray,
    words: np.ndarray,
    fallback: np.ndarray,
) -> int:
    """The stage's ``normalise`` of every line of ``points`` (lines joined by newlines), written to
    ``out`` joined by newlines; returns how many code points were written. Per line: whitespace runs
    (str.isspace) folded to one space and dropped at the ends, every character lower-cased through
    ``lower``, then the edge characters (KEY_EDGE in ``key_classes``, space included) stripped from both
    ends. ``words[line]``: the key's words as the stage counts them (spaces + 1, plus half the KEY_CJK
    characters; 0 for an empty key). ``fallback[line]`` is set, and nothing written for the line, when
    that cannot be exact: astral or surrogate code points, a character lower-casing to several, and Σ
    (str.lower makes it ς at the end of a word)."""
    n = points.size
    w = 0  # write position
    line = 0
    begin = 0  # where the current line's output starts
    pending_space = False
    bad = False
    for p in range(n + 1):
        c = points[p] if p < n else NEWLINE
        if c == NEWLINE:
            if bad:
                fallback[line] = 1
                w = begin
            else:
                # Strip edge characters from both ends of the line's output, then move it to `begin`.
                end = w
                while end > begin and key_classes[out[end - 1]] & KEY_EDGE:
                    end -= 1
                start = begin
                while start < end and key_classes[out[start]] & KEY_EDGE:
                    start += 1
                spaces = cjk = 0
                for k in range(end - start):
                    x = out[start + k]
                    out[begin + k] = x
                    spaces += x == 32
                    cjk += (key_classes[x] & KEY_CJK) != 0
                w = begin + end - start
                words[line] = spaces + 1 + cjk // 2 if end > start else 0
            if p < n:
                out[w] = NEWLINE
                w += 1
            line += 1
            begin = w
            pending_space = False
            bad = False
            continue
        if bad:
            continue
        if c >= 0xD800 and (c >= 0x10000 or c < 0xE000):
            bad = True
            continue
        if classes[c] & SPACE:
            pending_space = w > begin
            continue
        low = lower[c]
        if low == NO_LOWER or c == 0x3A3:
            bad = True
            continue
        if pending_space:
            out[w] = 32
            w += 1
            pending_space = False
        out[w] = low
        w += 1
    return w


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
    begin = 0
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
                    same = True
                    for t in range(1, size):
                        if points[q + t] != phrase_points[a + t]:
                            same = False
                            break
                    if same:
                        found = True
                        break
                if found:
                    break
            hits[line] = found
        line += 1
        begin = p + 1
