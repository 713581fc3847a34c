"""Compiled (numba) loops of the boilerplate stage: per-line lookup keys and word counts of a whole
document, per-line character counts of its candidate lines, each in one call instead of several Python
calls per line.

The stage's options, rules and features stay in ``boilerplate.py``; these only count. Input is the
code-point array of the lines joined by newlines (lines themselves hold no newline).
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.stages.text_kernels import FNV_OFFSET, FNV_PRIME, table_size

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

# --- Second pass of the line scorer: the words of the candidate lines and their lexicon weights. ---
# A 64-bit FNV-1a hash of the lower-cased code points locates words in open-addressing tables; every
# hit is confirmed by comparing the characters, so equal ids mean equal words (no collision risk).
# Capital sigma: str.lower() makes it "ς" at the end of a word, so a per-character table cannot lower it.
CAPITAL_SIGMA = 0x3A3


@numba.njit(cache=True, nogil=True)
def lexicon_table(points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Open-addressing slots (word index, -1 when empty) of the words points[starts[k]:starts[k + 1]]."""
    n = starts.size - 1
    slots = np.full(table_size(n), -1, dtype=np.int64)
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
        if lex_starts[k + 1] - q == size:
            same = True
            for j in range(size):
                if lex_points[q + j] != low[begin + j]:
                    same = False
                    break
            if same:
                return k
        s = (s + np.uint64(1)) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def candidate_words(
    points: np.ndarray,
    lines: int,
    classes: np.ndarray,
    lower: np.ndarray,
    astral: np.ndarray,
    astral_lower: np.ndarray,
    slots: np.ndarray,
    lex_points: np.ndarray,
    lex_starts: np.ndarray,
    lex_weight: np.ndarray,
):
    """The distinct lower-cased ``\\w+`` words of each line of ``points`` (lines joined by newlines),
    in order of first occurrence per line, as ``re.findall(r"\\w+", line.lower())`` + dict.fromkeys
    give them: per word its document id (equal words, equal ids), line, length and lexicon weight
    (NaN when unknown), plus the number of words per line. Characters outside the BMP come from the
    sorted table ``astral`` (``astral_lower``: their lower case, -1 for non-word characters; the caller
    lists every astral character of the lines). ``ok`` is False (and the rest empty) when the lines
    need Python: a BMP character lowering to several characters or capital sigma, or a line count
    other than ``lines``."""
    n = points.size
    # Lower-cased code points, and -1 for characters that are not \w once lower-cased (and newlines).
    low = np.empty(n + 1, dtype=np.int64)
    low[n] = -1
    newlines = 0
    for p in range(n):
        c = points[p]
        if c == NEWLINE:
            newlines += 1
            low[p] = -1
        elif c >= 0x10000:
            low[p] = astral_lower[np.searchsorted(astral, c)]
        elif c == CAPITAL_SIGMA or lower[c] == NO_LOWER or lower[c] >= 0x10000:
            newlines = -1
            break
        else:
            low[p] = lower[c] if (classes[lower[c]] & WORD) != 0 else -1
    most = n // 2 + 1
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
    id_weight = np.empty(most, dtype=np.float64)
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
                if id_len[k] == size:
                    same = True
                    q = id_start[k]
                    for j in range(size):
                        if low[q + j] != low[begin + j]:
                            same = False
                            break
                    if same:
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
                at = _lexicon_find(low, begin, p, h, slots, lex_points, lex_starts)
                id_weight[found] = lex_weight[at] if at >= 0 else np.nan
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
