"""Compiled (numba) loops of the language stage, over a text's code points (``code_points``: index i
is ``text[i]``).

They replace Python work per line and per token of every document; the stage's options,
decisions and counters stay in ``language.py``; these only compute.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.stages.aot_kernels import numba  # (numba's njit, or the compiled kernels')
from pipeline.stages.text_kernels import FNV_OFFSET, FNV_PRIME, code_points, fnv1a, same_run, table_size

# What `str.split()` splits at (`str.isspace`): all below U+3001, so a small table covers them. Its
# last entry (U+3001) is not a space, so ``spaces[min(c, spaces.size - 1)]`` is the test for any c
# without a branch (`spread_tokens`).
_SPACE_LIMIT = 0x3002
SPACES = np.array([chr(c).isspace() for c in range(_SPACE_LIMIT)], dtype=np.bool_)


@numba.njit(cache=True, nogil=True)
def _doubled(rows: np.ndarray) -> np.ndarray:
    """The rows in an array twice as long (output tables grow while a kernel fills them)."""
    grown = np.empty((2 * rows.shape[0], rows.shape[1]), dtype=rows.dtype)
    grown[: rows.shape[0]] = rows
    return grown


@numba.njit(cache=True, nogil=True)
def _is_space(c: np.uint32, spaces: np.ndarray) -> bool:
    return c < spaces.size and spaces[c]


def word_keys(words: list[str]) -> np.ndarray:
    """The `fnv1a` key of each word, in order (what `listed_key_table` puts in its table)."""
    keys = np.zeros(len(words), dtype=np.uint64)
    if words:
        ends = np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)))
        _keys_of_words(keys, code_points("".join(words)), ends)
    return keys


def listed_key_table(keys: np.ndarray, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An open-addressing set (power-of-two size, at most half full, 0 marks an empty slot) of words
    given as their `word_keys`, with each slot's languages: bit j of a slot's
    mask is set when language j lists every word of its key (`listed`: a row of languages per word, at
    most 64; two words sharing a key is rare). A word is foreign-frequent for main language j when its
    slot's bit j is clear: one table per script serves every main language of it (`line_hits`)."""
    table = np.zeros(table_size(len(keys)), dtype=np.uint64)
    masks = np.zeros(table.size, dtype=np.uint64)
    if listed.shape[1] > 64:
        raise ValueError(f"{listed.shape[1]} languages in one script: a slot's mask holds 64")
    bits = (listed.astype(np.uint64) << np.arange(listed.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    _put_listed(table, masks, keys, bits)
    return table, masks


@numba.njit(cache=True, nogil=True)
def _put_listed(table: np.ndarray, masks: np.ndarray, keys: np.ndarray, bits: np.ndarray) -> None:
    mask = table.size - 1
    for w in range(keys.size):
        key = keys[w]
        j = np.int64(key & np.uint64(mask))
        while table[j] != 0 and table[j] != key:
            j = (j + 1) & mask
        if table[j] == 0:
            table[j] = key
            masks[j] = bits[w]
        else:
            masks[j] &= bits[w]  # listed for a language only when all its words are


@numba.njit(cache=True, nogil=True)
def _unlisted(table: np.ndarray, masks: np.ndarray, key: np.uint64, lang: int) -> bool:
    """Is `key` in a `listed_key_table` and not listed for language `lang` (bit `lang` of its mask)?"""
    mask = table.size - 1
    j = np.int64(key & np.uint64(mask))
    while table[j] != 0:
        if table[j] == key:
            return (masks[j] >> np.uint64(lang)) & np.uint64(1) == 0
        j = (j + 1) & mask
    return False


@numba.njit(cache=True, nogil=True)
def _keys_of_words(keys: np.ndarray, cps: np.ndarray, ends: np.ndarray) -> None:
    start = 0
    for w in range(ends.size):
        keys[w] = fnv1a(cps, start, ends[w])
        start = ends[w]


# Fibonacci hashing of an n-gram's key to its slot: the key's low bits are its first character only
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# A Bloom filter of a word set's keys (two bits a key) that a token is tested against before the
# set itself: the set of a main language's foreign-frequent words (~10^4 keys, 256 KB) is mostly out
# of the cache by the next document, and a look-up per token went to memory; 16 KB stay near.
BLOOM_BITS = 1 << 17
_BLOOM_MASK = np.uint64(BLOOM_BITS - 1)


def word_bloom(keys: np.ndarray) -> np.ndarray:
    """The Bloom filter (`BLOOM_BITS` bits in uint64 words) of a `listed_key_table`'s keys."""
    bloom = np.zeros(BLOOM_BITS // 64, dtype=np.uint64)
    _put_bloom(bloom, keys)
    return bloom


@numba.njit(cache=True, nogil=True)
def foreign_bloom(keys: np.ndarray, masks: np.ndarray, lang: int) -> np.ndarray:
    """`word_bloom` of the keys of a `listed_key_table` (`keys`, `masks`) that language `lang` does not list
    (bit `lang` of the mask clear): one pass over the table instead of numpy's masks over all of it and a
    copy of the keys (~0.16 ms at each main language's first document, ~40 of them on CC)."""
    bloom = np.zeros(BLOOM_BITS // 64, dtype=np.uint64)
    one = np.uint64(1)
    for j in range(keys.size):
        key = keys[j]
        if key != 0 and (masks[j] >> np.uint64(lang)) & one == 0:
            a, b = _bloom_bits(key)
            bloom[a >> 6] |= one << np.uint64(a & 63)
            bloom[b >> 6] |= one << np.uint64(b & 63)
    return bloom


@numba.njit(cache=True, nogil=True)
def _put_bloom(bloom: np.ndarray, keys: np.ndarray) -> None:
    for key in keys:
        if key != 0:
            a, b = _bloom_bits(key)
            bloom[a >> 6] |= np.uint64(1) << np.uint64(a & 63)
            bloom[b >> 6] |= np.uint64(1) << np.uint64(b & 63)


@numba.njit(cache=True, nogil=True)
def _bloom_bits(key: np.uint64) -> tuple[int, int]:
    h = key * _GOLDEN
    return np.int64(h >> np.uint64(47)), np.int64((h >> np.uint64(30)) & _BLOOM_MASK)


@numba.njit(cache=True, nogil=True)
def _maybe(bloom: np.ndarray, key: np.uint64) -> bool:
    """False: the key is not in the filter's set; True: it may be."""
    a, b = _bloom_bits(key)
    one = np.uint64(1)
    return (bloom[a >> 6] >> np.uint64(a & 63)) & one != 0 and (bloom[b >> 6] >> np.uint64(b & 63)) & one != 0


@numba.njit(cache=True, nogil=True)
def line_hits(
    low: np.ndarray,
    keys: np.ndarray,
    masks: np.ndarray,
    bloom: np.ndarray,
    lang: int,
    odd: np.ndarray,
    shortest: int,
    spaces: np.ndarray,
) -> np.ndarray:
    """Candidate words of the same-script check, over a lowercased text's code points.

    Lines are split at "\\n" and tokens at whitespace (as ``str.split``). A token is a hit when
    its `fnv1a` key is in `keys` and not listed for language `lang` (`listed_key_table` of the script's
    frequent words and their `masks`: the foreign-frequent words of main language `lang`; asked only
    when the keys' `word_bloom`, `bloom`, may hold it), or when it holds a code
    point marked in `odd` (letters the main language's alphabet lacks; an empty array: none).
    Lines shorter than `shortest` are skipped; only lines with hits of two distinct keys are
    reported, since a sentence needs two to be judged. One row per hit: line start, line end,
    token start, token end, offset of the token's first odd letter (0 for a listed word).
    """
    out = np.empty((64, 5), dtype=np.int64)
    n_out = 0
    n = low.size
    n_odd = odd.size
    odd_ascii = False
    for c in range(min(n_odd, 128)):
        odd_ascii |= odd[c]
    # one pass over the text: a line's rows are written as its tokens are read and get the line's end
    # when the "\n" (or the text's end) is met, or are dropped then (a short line, one distinct key).
    # Finding each line's end first read every character twice: 0.123 -> 0.074 s on the 40 MB texts.
    ls = 0  # the current line's start
    first = 0  # its first row
    first_key = np.uint64(0)
    distinct = 0  # distinct keys on the line, counted up to 2
    i = 0
    while True:
        if i >= n or low[i] == 10:
            if i - ls < shortest or distinct < 2:
                n_out = first  # a short line, or one distinct word (or none): nothing to judge on it
            else:
                for r in range(first, n_out):
                    out[r, 1] = i
            if i >= n:
                break
            i += 1
            ls, first, distinct = i, n_out, 0
            continue
        c = low[i]
        if c == 32 or _is_space(c, spaces):
            i += 1
            continue
        ts = i
        shift = -1
        key = FNV_OFFSET
        while i < n:
            c = low[i]
            if c < 128:
                # the ASCII spaces of str.isspace spelt out (9-13, 28-32), "\n" (the line's end) among
                # them: ~30 % faster than a table load per character; and the odd-letter test only
                # where the table marks an ASCII letter (none of the listed alphabets lacks one): the
                # search 0.111 -> 0.098 s over the 40 MB texts (all of them, main "en")
                if c <= 32 and (c == 32 or (c >= 9 and c <= 13) or c >= 28):
                    break
                if odd_ascii and shift < 0 and c < n_odd and odd[c]:
                    shift = i - ts
            else:
                if _is_space(c, spaces):
                    break
                if shift < 0 and c < n_odd and odd[c]:
                    shift = i - ts
            key = (key ^ np.uint64(c)) * FNV_PRIME  # fnv1a, as the token is read
            i += 1
        if _maybe(bloom, key) and _unlisted(keys, masks, key, lang):
            shift = 0
        elif shift < 0:
            continue
        if n_out == out.shape[0]:
            out = _doubled(out)
        out[n_out, 0] = ls
        out[n_out, 2] = ts
        out[n_out, 3] = i
        out[n_out, 4] = shift
        n_out += 1
        if distinct == 0:
            first_key, distinct = key, 1
        elif distinct == 1 and key != first_key:
            distinct = 2
    return out[:n_out]


@numba.njit(cache=True, nogil=True)
def hits_by_sentence(
    low: np.ndarray,
    cps: np.ndarray,
    keys: np.ndarray,
    masks: np.ndarray,
    bloom: np.ndarray,
    lang: int,
    odd: np.ndarray,
    shortest: int,
    spaces: np.ndarray,
    table: np.ndarray,
    cases: np.ndarray,
    alpha: np.ndarray,
    letter_digit: np.ndarray,
    marks: np.ndarray,
    word_keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
    frequent: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    main: int,
) -> tuple[int, np.ndarray, np.ndarray]:
    """`line_hits`, `hit_sentences` and `sentence_hits` in one call (a call's arguments and returned arrays
    cost ~2 µs each): 0 when `line_hits` finds no rows; 1 and `sentence_hits`' kept hits and sentences; -1
    when `sentence_hits` leaves the text to Python, with `line_hits`' rows and `hit_sentences`' spans
    followed by its `which` (a row (which, 0) for each of the rows): what Python reads then (the steps
    called one by one would each load in a process at its first such text, ~1 ms apiece)."""
    hits = line_hits(low, keys, masks, bloom, lang, odd, shortest, spaces)
    if hits.shape[0] == 0:
        return 0, np.empty((0, 3), dtype=np.int64), np.empty((0, 4), dtype=np.int64)
    found, which = hit_sentences(cps, hits, table, spaces)
    ok, kept, two = sentence_hits(
        cps, low, hits, which, found.shape[0], cases, alpha, letter_digit, marks, spaces,
        word_keys, rows, words, starts, frequent, ptr, langs, main, odd, found,
    )  # fmt: skip
    if ok:
        return 1, kept, two
    spans = np.zeros((found.shape[0] + which.size, 2), dtype=np.int64)
    spans[: found.shape[0]] = found
    spans[found.shape[0] :, 0] = which
    return -1, hits, spans


# `lower_table`'s mark of a code point whose lowercase is not one code point of its own: İ (two) and Σ
# (ς at a word's end, σ elsewhere: str.lower reads its neighbours)
NO_LOWER = 0xFFFFFFFF


def lower_table() -> np.ndarray:
    """``str.lower`` of every code point up to the last whose lowercase is another (uint32; NO_LOWER where
    it is not a single code point that does not depend on the neighbours); those above lower to
    themselves. ~0.3 s to build: read from the copy saved beside the package."""
    every = range(0x110000)
    size = max(c for c in every if chr(c).lower() != chr(c)) + 1
    lows = [chr(c).lower() for c in range(size)]
    table = np.fromiter((ord(x) if len(x) == 1 else NO_LOWER for x in lows), dtype=np.uint32, count=size)
    table[0x3A3] = NO_LOWER  # capital sigma: final or not
    return table


@numba.njit(cache=True, nogil=True)
def lowered_marked(cps: np.ndarray, table: np.ndarray, marked: np.ndarray) -> tuple[np.ndarray, bool, int]:
    """The code points of ``text.lower()`` from the text's (`cps`) by `lower_table`, and False when a
    code point marked NO_LOWER makes it fall to str.lower (the array is then incomplete); and the
    `first_marked` index of the output in `marked` (-1: none, or fallen to str.lower): one pass where
    two read every character of most texts."""
    out = np.empty_like(cps)
    size = table.size
    n_marked = marked.size
    n = cps.size
    i = 0
    while i < n:
        c = cps[i]
        if c < size:
            c = table[c]
            if c == NO_LOWER:
                return out, False, -1
        out[i] = c
        if c >= n_marked or marked[c]:
            # found: the rest without the test
            first = i
            i += 1
            while i < n:
                c = cps[i]
                if c < size:
                    c = table[c]
                    if c == NO_LOWER:
                        return out, False, -1
                out[i] = c
                i += 1
            return out, True, first
        i += 1
    return out, True, -1


@numba.njit(cache=True, nogil=True)
def first_marked(cps: np.ndarray, table: np.ndarray, start: int) -> int:
    """The first index from `start` whose code point is marked in `table` or lies beyond it, or -1."""
    size = table.size
    for i in range(start, cps.size):
        c = cps[i]
        if c >= size or table[c]:
            return i
    return -1


# `code_tokens`' table bits, by ASCII code point
CODE_CHAR = 1  # a character a code token can hold
CODE_TRIGGER = 2  # one that makes a run of them worth searching alone (the others: "::", "->", "." + [a-z_])
CODE_WORD = 4  # [A-Za-z0-9_]: a token's first part


@numba.njit(cache=True, nogil=True)
def code_runs(cps: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The maximal runs (start, end) of CODE_CHAR characters (`table`: bits by code point below 128)
    holding a trigger: a CODE_TRIGGER character, "::", "->" or "." before [a-z_]."""
    # room for every run (one in two characters at most; pages never written are never touched): an
    # output grown by `_doubled` inside the loop made the scan ~3x slower (0.014 -> 0.0045 s on the 40 MB
    # input's non-Latin texts)
    out = np.empty((cps.size // 2 + 1, 2), dtype=np.int64)
    n_out = 0
    n = cps.size
    i = 0
    while i < n:
        c = cps[i]
        if c >= 128 or not table[c] & CODE_CHAR:
            i += 1
            continue
        start = i
        trigger = False
        while i < n:
            c = cps[i]
            if c >= 128 or not table[c] & CODE_CHAR:
                break
            if not trigger:
                if table[c] & CODE_TRIGGER:
                    trigger = True
                elif (c == 58 or c == 45 or c == 46) and i + 1 < n:  # ":", "-", "."
                    trigger = _pair_trigger(c, cps[i + 1])
            i += 1
        if trigger:
            out[n_out, 0] = start
            out[n_out, 1] = i
            n_out += 1
    return out[:n_out]


@numba.njit(cache=True, nogil=True)
def _pair_trigger(c: np.uint32, d: np.uint32) -> bool:
    """The pair "::", "->" or "." before [a-z_]."""
    return (c == 58 and d == 58) or (c == 45 and d == 62) or (c == 46 and (d == 95 or 97 <= d <= 122))


@numba.njit(cache=True, nogil=True)
def code_tokens(cps: np.ndarray, table: np.ndarray, word: np.ndarray) -> np.ndarray:
    """The language stage's ``_CODE_TOKEN_RE`` matches, `\\b[A-Za-z0-9_]+` then a trigger (a CODE_TRIGGER
    character, "::", "->" or "." before [a-z_]) then any CODE_CHAR characters, in the `code_runs`: rows
    (start, end, 0). Every character the pattern reads is a CODE_CHAR, so a match lies in a run and,
    its tail taking every CODE_CHAR, ends at the run's end: a run holds at most one, which starts at
    the run's first position p with a word boundary (the character before p not a word character,
    `word`: regex's \\w by code point) from which [A-Za-z0-9_]+ reaches a trigger (an "_" after p, or
    one right after the letters). A run whose first character follows one beyond `word` is a row
    (start, end, 1): the regex searches it."""
    runs = code_runs(cps, table)
    out = np.empty((runs.shape[0], 3), dtype=np.int64)
    n_out = 0
    for r in range(runs.shape[0]):
        start, end = runs[r, 0], runs[r, 1]
        before_word = False
        if start > 0:
            c = cps[start - 1]
            if c >= word.size:
                out[n_out, 0], out[n_out, 1], out[n_out, 2] = start, end, 1
                n_out += 1
                continue
            before_word = word[c]
        for p in range(start, end):
            c = cps[p]
            if not table[c] & CODE_WORD:
                before_word = False
                continue
            if before_word:
                continue  # no word boundary before p
            before_word = True
            q = p + 1
            found = False
            while q < end and table[cps[q]] & CODE_WORD:
                found |= cps[q] == 95  # "_" after p: a trigger with the letters before it
                q += 1
            if not found and q < end:
                c = cps[q]
                found = (table[c] & CODE_TRIGGER) != 0 or (q + 1 < end and _pair_trigger(c, cps[q + 1]))
            if found:
                out[n_out, 0], out[n_out, 1], out[n_out, 2] = p, end, 0
                n_out += 1
                break
    return out[:n_out]


# Classes of `script_table`: 1..OTHER-1 the stage's scripts in order, then these.
OTHER = 26  # a letter of a script the stage does not name
INHERITED = 27  # a combining mark (Inherited script): continues any run


@numba.njit(cache=True, nogil=True)
def script_runs(cps: np.ndarray, table: np.ndarray, opaque: np.ndarray) -> np.ndarray:
    """Runs of letters of one script: rows (start, end, class) with `table` from the stage's
    ``script_table``. A run starts at a character of a class (1..OTHER) and goes on over characters
    of its class or INHERITED (an OTHER run: only INHERITED; adjacent OTHER runs then merge). A run
    that starts inside an `opaque` span (sorted, disjoint rows start, end: URLs, code) is dropped
    whole; the kept run before it may merge only with a run touching it."""
    out = np.empty((64, 3), dtype=np.int64)
    n_out = 0
    n = cps.size
    j = 0
    i = 0
    while i < n:
        k = table[cps[i]]
        if k == 0 or k == INHERITED:
            i += 1
            continue
        s = i
        i += 1
        while i < n:
            t = table[cps[i]]
            if t != INHERITED and (t != k or k == OTHER):
                break
            i += 1
        while j < opaque.shape[0] and opaque[j, 1] <= s:
            j += 1
        if j < opaque.shape[0] and opaque[j, 0] <= s:
            continue
        if n_out > 0 and out[n_out - 1, 2] == k and out[n_out - 1, 1] == s:
            out[n_out - 1, 1] = i
            continue
        if n_out == out.shape[0]:
            out = _doubled(out)
        out[n_out, 0] = s
        out[n_out, 1] = i
        out[n_out, 2] = k
        n_out += 1
    return out[:n_out]


@numba.njit(cache=True, nogil=True)
def script_clusters(
    rows: np.ndarray,
    cps: np.ndarray,
    hosts: np.ndarray,
    cjk: np.ndarray,
    no_bridge: np.ndarray,
    cases: np.ndarray,
    latin: int,
    min_words: int,
) -> tuple[bool, np.ndarray, np.ndarray]:
    """The stage's ``_script_clusters`` of a text's `script_runs` rows: clusters of runs of a class not in
    `hosts` (by class), a cluster ending at a newline between two of its runs, at a change between a
    `cjk` class and another, and at a host run unless it is the one "bridge" after a run of a class not in
    `no_bridge` (at most 20 letters starting with a capital, CASE_UPPER of `cases`, at most 3 characters
    and no newline after the run). A cluster starting with a `latin` run when Latin is no host, all of
    whose runs are Latin and fewer than `min_words` of which hold two letters or more, is dropped (too
    few words to be sentence-like). Returns the kept clusters' runs (indices into `rows`, in order) and
    where each cluster starts among them (one more entry: the end); False when a bridge would start at
    a code point beyond `cases` (Python decides)."""
    n = rows.shape[0]
    members = np.empty(n, dtype=np.int64)
    bounds = np.empty(n + 1, dtype=np.int64)
    n_members = 0
    n_clusters = 0
    bounds[0] = 0
    first = 0  # the open cluster's first member (open when n_members > first)
    pending = False  # a bridge run was met after the cluster's last run
    latin_host = hosts[latin]
    for r in range(n + 1):
        close = r == n
        if not close:
            k = rows[r, 2]
            if not hosts[k]:
                if n_members > first:
                    last = members[n_members - 1]
                    if cjk[k] != cjk[rows[last, 2]]:
                        close = True
                    else:
                        for i in range(rows[last, 1], rows[r, 0]):
                            if cps[i] == 10:
                                close = True
                                break
            elif n_members > first and not pending:
                last = members[n_members - 1]
                s, e, gap_start = rows[r, 0], rows[r, 1], rows[last, 1]
                bridge = False
                if not no_bridge[rows[last, 2]] and e - s <= 20 and e > s:
                    c = cps[s]
                    if c >= cases.size:
                        return False, members[:0], bounds[:0]
                    if cases[c] & CASE_UPPER and s - gap_start <= 3:
                        bridge = True
                        for i in range(gap_start, s):
                            if cps[i] == 10:
                                bridge = False
                                break
                if bridge:
                    pending = True
                    continue
                close = True
            else:
                close = True
        if close and n_members > first:
            keep = True
            if rows[members[first], 2] == latin and not latin_host:
                words = 0
                all_latin = True
                for m in range(first, n_members):
                    j = members[m]
                    words += rows[j, 1] - rows[j, 0] >= 2
                    all_latin &= rows[j, 2] == latin
                keep = not (words < min_words and all_latin)
            if keep:
                n_clusters += 1
                bounds[n_clusters] = n_members
            else:
                n_members = first
            first = n_members
        if r < n and not hosts[rows[r, 2]]:
            members[n_members] = r
            n_members += 1
            pending = False
        elif close:
            pending = False
    return True, members[:n_members], bounds[: n_clusters + 1]


@numba.njit(cache=True, nogil=True)
def run_weights(
    rows: np.ndarray, cps: np.ndarray, cases: np.ndarray, cjk: np.ndarray
) -> tuple[bool, np.ndarray, np.ndarray]:
    """The letters of the `script_runs` rows by class, each weighed 2 in a `cjk` class, else 0.5 when the
    run's first character is uppercase (CASE_UPPER of `cases`), else 1; and the classes in order of
    first appearance. Every term is a whole number times 2, 1 or 0.5: the sums are exact in any order.
    False when a run starts at a code point beyond `cases` (Python decides)."""
    sums = np.zeros(cjk.size, dtype=np.float64)
    seen = np.zeros(cjk.size, dtype=np.bool_)
    order = np.empty(cjk.size, dtype=np.int64)
    n_order = 0
    for r in range(rows.shape[0]):
        k = rows[r, 2]
        if cjk[k]:
            weight = 2.0
        else:
            c = cps[rows[r, 0]]
            if c >= cases.size:
                return False, sums, order[:0]
            weight = 0.5 if cases[c] & CASE_UPPER else 1.0
        sums[k] += (rows[r, 1] - rows[r, 0]) * weight
        if not seen[k]:
            seen[k] = True
            order[n_order] = k
            n_order += 1
    return True, sums, order[:n_order]


# CPython's `random` generator (MT19937, `_randommodule.c`): a state is 624 words and, last, the
# index of the next one (`random.Random.getstate()[1]`), held as uint64 (every value below 2**32)
MT_WORDS = 624
_MT_SHIFT = 397
_MT_MATRIX = np.uint64(0x9908B0DF)
_MT_UPPER = np.uint64(0x80000000)
_MT_LOWER = np.uint64(0x7FFFFFFF)
_ONE = np.uint64(1)


@numba.njit(cache=True, nogil=True)
def _mt_twist(state: np.ndarray) -> None:
    """The next 624 words (``genrand_uint32``'s refill)."""
    n, m = MT_WORDS, _MT_SHIFT
    for kk in range(n):
        y = (state[kk] & _MT_UPPER) | (state[(kk + 1) % n] & _MT_LOWER)
        mixed = state[(kk + m) % n] ^ (y >> _ONE)
        state[kk] = mixed ^ _MT_MATRIX if y & _ONE else mixed


@numba.njit(cache=True, nogil=True)
def mt_next(state: np.ndarray) -> np.uint64:
    """``genrand_uint32``: the generator's next 32-bit output (what ``getrandbits(32)`` returns)."""
    index = np.int64(state[MT_WORDS])
    if index >= MT_WORDS:
        _mt_twist(state)
        index = 0
    y = state[index]
    state[MT_WORDS] = np.uint64(index + 1)
    y ^= y >> np.uint64(11)
    y ^= (y << np.uint64(7)) & np.uint64(0x9D2C5680)
    y ^= (y << np.uint64(15)) & np.uint64(0xEFC60000)
    y ^= y >> np.uint64(18)
    return y


@numba.njit(cache=True, nogil=True)
def mt_outputs(state: np.ndarray, count: int) -> np.ndarray:
    """The generator's next `count` 32-bit outputs."""
    out = np.empty(count, dtype=np.uint64)
    for t in range(count):
        out[t] = mt_next(state)
    return out


@numba.njit(cache=True, nogil=True)
def langdetect_trial(
    ids: np.ndarray, rows: np.ndarray, prob: np.ndarray, weight: float, state: np.ndarray, conv: float, limit: int
) -> None:
    """langdetect's trial loop (``Detector._detect_block``), the same floating-point operations in
    the same order: draw an n-gram, multiply each language's probability by ``weight + p(n-gram |
    language)``, every 5th draw normalise and stop above `conv` or at `limit`.

    The draws are ``random.choice`` over the text's n-grams from the generator `state` (`mt_next`,
    advanced as there): ``_randbelow(n)`` keeps the top k = n.bit_length() bits of one output,
    drawing again while they are >= n. `ids` maps a draw to its row of `rows` (n-gram
    probabilities by language)."""
    n = ids.size
    k = 0
    while (1 << k) <= n:
        k += 1
    shift = np.uint64(32 - k)
    i = 0
    while True:
        r = np.int64(mt_next(state) >> shift)
        while r >= n:
            r = np.int64(mt_next(state) >> shift)
        row = ids[r]
        for x in range(prob.size):
            prob[x] *= weight + rows[row, x]
        if i % 5 == 0:
            total = 0.0
            for x in range(prob.size):
                total += prob[x]  # in order, as Python's sum() of floats
            top = 0.0
            for x in range(prob.size):
                p = prob[x] / total
                if top < p:
                    top = p
                prob[x] = p
            if top > conv or i >= limit:
                return
        i += 1


@numba.njit(cache=True, nogil=True)
def gauss(state: np.ndarray, cached: float, has_cached: bool) -> tuple[float, float, bool]:
    """``random.Random.gauss(0.0, 1.0)`` (3.11's Box-Muller: the same operations, and math's cos, sin,
    log and sqrt are the C library's, as Python's) drawing from `state`, with the generator's cached
    second value (`cached`, when `has_cached`): the value, and the cache after."""
    if has_cached:
        return 0.0 + cached * 1.0, 0.0, False
    a = mt_next(state)
    b = mt_next(state)
    c = mt_next(state)
    d = mt_next(state)
    # random.random(): 53 bits from two outputs
    first = (np.float64(a >> np.uint64(5)) * 67108864.0 + np.float64(b >> np.uint64(6))) * (1.0 / 9007199254740992.0)
    second = (np.float64(c >> np.uint64(5)) * 67108864.0 + np.float64(d >> np.uint64(6))) * (1.0 / 9007199254740992.0)
    x2pi = first * TAU
    g2rad = math.sqrt(-2.0 * math.log(1.0 - second))
    return 0.0 + math.cos(x2pi) * g2rad * 1.0, math.sin(x2pi) * g2rad, True


TAU = 6.283185307179586  # math.tau


@numba.njit(cache=True, nogil=True)
def langdetect_trials(
    ids: np.ndarray,
    rows: np.ndarray,
    prior: np.ndarray,
    n_trial: int,
    alpha: float,
    alpha_width: float,
    base_freq: float,
    state: np.ndarray,
    conv: float,
    limit: int,
) -> tuple[np.ndarray, float, bool]:
    """langdetect's ``Detector._detect_block`` after its n-grams: `n_trial` trials (`langdetect_trial`),
    each from the initial probabilities `prior` with a smoothing ``alpha + gauss * alpha_width`` drawn
    from `state`, averaged in order as there (a Python step per trial, its gauss and the numpy steps
    around it took ~10 µs each). Returns the averaged probabilities and the generator's cached gauss
    value after (`gauss`)."""
    langprob = np.zeros(prior.size)
    cached, has_cached = 0.0, False
    for _ in range(n_trial):
        prob = prior.copy()
        z, cached, has_cached = gauss(state, cached, has_cached)
        weight = (alpha + z * alpha_width) / base_freq
        langdetect_trial(ids, rows, prob, weight, state, conv, limit)
        for x in range(prob.size):
            langprob[x] += prob[x] / n_trial
    return langprob, cached, has_cached


@numba.njit(cache=True, nogil=True)
def add_gram_rows(
    grams: np.ndarray,
    by_gram: np.ndarray,
    matrix: np.ndarray,
    first: int,
    starts: np.ndarray,
    lang_ids: np.ndarray,
    probs: np.ndarray,
) -> int:
    """Give each n-gram of `grams` (indexes of a profile map) with no row yet (`by_gram` 0) the next row
    from `first`, in order of first appearance, and put its non-zero probabilities (entries
    starts[g]:starts[g + 1] of `lang_ids` and `probs`) in that row of `matrix` (zero, with room for them
    all). Returns the next free row."""
    row = first
    for g in grams:
        if by_gram[g] == 0:
            by_gram[g] = row
            for e in range(starts[g], starts[g + 1]):
                matrix[row, lang_ids[e]] = probs[e]
            row += 1
    return row


def gram_table(grams: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """An open-addressing map from an n-gram's key (1 to 3 characters: each code point + 1 in 21 bits)
    to its index in `grams` (key 0: empty slot), for `ngram_grams`. N-grams of other lengths are left
    out (never looked up)."""
    size = table_size(len(grams))
    keys = np.zeros(size, dtype=np.uint64)
    ids = np.zeros(size, dtype=np.int64)
    if grams:
        ends = np.cumsum(np.fromiter(map(len, grams), dtype=np.int64, count=len(grams)))
        _put_grams(keys, ids, code_points("".join(grams)), ends)
    return keys, ids


@numba.njit(cache=True, nogil=True)
def _put_grams(keys: np.ndarray, ids: np.ndarray, cps: np.ndarray, ends: np.ndarray) -> None:
    start = 0
    for i in range(ends.size):
        end = ends[i]
        if 1 <= end - start <= 3:
            key = np.uint64(0)
            for k in range(end - start):
                key |= (np.uint64(cps[start + k]) + np.uint64(1)) << np.uint64(21 * k)
            j = _slot(key, keys.size)
            while keys[j] != 0:
                j = (j + 1) & (keys.size - 1)
            keys[j] = key
            ids[j] = i
        start = end


@numba.njit(cache=True, nogil=True)
def _slot(key: np.uint64, size: int) -> int:
    return np.int64((key * _GOLDEN) >> np.uint64(40)) & (size - 1)


@numba.njit(cache=True, nogil=True)
def _gram_id(key: np.uint64, keys: np.ndarray, ids: np.ndarray) -> int:
    mask = keys.size - 1
    j = _slot(key, keys.size)
    while keys[j] != 0:
        if keys[j] == key:
            return ids[j]
        j = (j + 1) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def ngram_grams(cps: np.ndarray, upper: np.ndarray, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """langdetect's n-grams of a normalised text (``Detector._extract_ngrams``) that `gram_table`
    knows, in order, as their indexes there: a buffer of the last 3 characters (reset after a
    space), no n-gram while two capitals in a row (`upper`: ``str.isupper`` of each character),
    then the 1-gram (not a space), the 2-gram and the 3-gram ending at each character."""
    out = np.empty(3 * cps.size, dtype=np.int64)
    n_out = 0
    b0 = np.uint64(32)  # the buffer, oldest first: b0 alone, b0 b1, or b0 b1 b2
    b1 = np.uint64(0)
    b2 = np.uint64(0)
    size = 1
    last_upper = False  # str.isupper of the buffer's last character
    capital = False
    for i in range(cps.size):
        ch = np.uint64(cps[i])
        last = b0 if size == 1 else (b1 if size == 2 else b2)
        if last == 32:
            b0, size, capital, last_upper = np.uint64(32), 1, False, False
            if ch == 32:
                continue
        elif size == 3:
            b0, b1, size = b1, b2, 2
        if size == 1:
            b1 = ch
        else:
            b2 = ch
        size += 1
        up = upper[i]
        if up:
            if last_upper:
                capital = True
        else:
            capital = False
        last_upper = up
        if capital:
            continue
        if ch != 32:
            g = _gram_id(ch + np.uint64(1), keys, ids)
            if g >= 0:
                out[n_out] = g
                n_out += 1
        if size == 2:
            g = _gram_id((b0 + np.uint64(1)) | ((b1 + np.uint64(1)) << np.uint64(21)), keys, ids)
            if g >= 0:
                out[n_out] = g
                n_out += 1
        else:
            g = _gram_id((b1 + np.uint64(1)) | ((b2 + np.uint64(1)) << np.uint64(21)), keys, ids)
            if g >= 0:
                out[n_out] = g
                n_out += 1
            key = (b0 + np.uint64(1)) | ((b1 + np.uint64(1)) << np.uint64(21)) | ((b2 + np.uint64(1)) << np.uint64(42))
            g = _gram_id(key, keys, ids)
            if g >= 0:
                out[n_out] = g
                n_out += 1
    return out[:n_out]


# `normalized_ngram_rows`' mark of a code point whose langdetect normalisation is not known yet (or not
# below U+10000)
NOT_NORMALIZED = 0xFFFFFFFF


@numba.njit(cache=True, nogil=True)
def normalized_ngram_rows(
    cps: np.ndarray, norm: np.ndarray, upper: np.ndarray, keys: np.ndarray, ids: np.ndarray, by_gram: np.ndarray
) -> tuple[bool, np.ndarray, np.ndarray]:
    """`ngram_grams` of a text's code points normalised by `norm` (langdetect's ``NGram.normalize`` by code
    point below U+10000, NOT_NORMALIZED where it is not known: then False and nothing else; `upper`:
    ``str.isupper`` by code point below U+10000), and each n-gram's row (`by_gram`, 0: none yet)."""
    n = cps.size
    normed = np.empty(n, dtype=np.uint32)
    ups = np.empty(n, dtype=np.bool_)
    for i in range(n):
        c = cps[i]
        if c >= norm.size or norm[c] == NOT_NORMALIZED:
            return False, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        normed[i] = norm[c]
        ups[i] = upper[normed[i]]
    grams = ngram_grams(normed, ups, keys, ids)
    rows = np.empty(grams.size, dtype=np.int64)
    for t in range(grams.size):
        rows[t] = by_gram[grams[t]]
    return True, grams, rows


@numba.njit(cache=True, nogil=True)
def spread_tokens(cps: np.ndarray, want: int, spaces: np.ndarray) -> np.ndarray:
    """Start and end of every step-th whitespace token (``text.split()[::step]``, step =
    max(1, tokens // want); every token for want 0): words spread over the whole text, without splitting
    all of it. `spaces`: `SPACES` (its last entry not a space)."""
    # one pass records every token's start and end (at most n // 2 + 1 tokens), then every step-th is
    # kept: a counting pass and a second one over the whole text took ~2x as long. Without a branch
    # per character: each position is written as a start and as an end, and the counts move only at a
    # token's first character and at the space after its last (a loop testing each character and
    # looping over the token took ~2x as long: 0.053 -> 0.025 s on the 40 MB texts, mispredicted
    # branches at every token's ends)
    n = cps.size
    size = n // 2 + 2
    starts = np.empty(size, dtype=np.int64)
    ends = np.empty(size, dtype=np.int64)
    n_starts = 0
    n_ends = 0
    last = spaces.size - 1
    before = 1  # the character before is a space (or there is none)
    for i in range(n):
        space = np.int64(spaces[min(cps[i], last)])
        starts[n_starts] = i
        n_starts += before & (1 - space)
        ends[n_ends] = i
        n_ends += (1 - before) & space
        before = space
    ends[n_ends] = n  # the last token's end when the text does not end in a space
    step = max(1, n_starts // want) if want > 0 else 1
    out = np.empty(((n_starts + step - 1) // step, 2), dtype=np.int64)
    for t in range(out.shape[0]):
        out[t, 0] = starts[t * step]
        out[t, 1] = ends[t * step]
    return out


@numba.njit(cache=True, nogil=True)
def profile_scores(
    rows: np.ndarray, ptr: np.ndarray, langs: np.ndarray, deltas: np.ndarray, oov: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stage's ``_scores`` of a list of words, given as their rows of a script's profile index
    (0: unlisted): for each distinct listed word in order of first occurrence, with k its count, add
    k * delta to each language listing it (entries ptr[row]:ptr[row + 1] of `langs` / `deltas`) and
    k to its hits; a language's score is then len(rows) * oov + its sum. The same additions in the
    same order as the Python dict loop over ``Counter(words)``, so the same floats. Returns the
    languages touched (in first-touch order, the dict's key order), their scores and hits."""
    n = rows.size
    delta, hits, order, n_order, _ = _profile_sums(rows, ptr, langs, deltas, oov.size)
    scores = np.empty(n_order, dtype=np.float64)
    touched_hits = np.empty(n_order, dtype=np.int64)
    for t in range(n_order):
        j = order[t]
        base = n * oov[j]  # two roundings, as Python's n * oov + delta
        scores[t] = base + delta[j]
        touched_hits[t] = hits[j]
    return order[:n_order], scores, touched_hits


@numba.njit(cache=True, nogil=True)
def _profile_sums(
    rows: np.ndarray, ptr: np.ndarray, langs: np.ndarray, deltas: np.ndarray, n_langs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """`profile_scores`' sums by language (index into the script's languages), hits, and the
    languages touched in first-touch order (the first `n_order` of `order`); and the distinct listed
    rows in order of first occurrence."""
    n = rows.size
    # distinct rows in first-occurrence order and their counts (an open-addressing table)
    mask = table_size(n) - 1
    slots = np.zeros(mask + 1, dtype=np.int64)  # row + 1 in use, 0 empty
    where = np.empty(mask + 1, dtype=np.int64)
    distinct = np.empty(n, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    n_distinct = 0
    for row in rows:
        if row == 0:
            continue
        j = row & mask
        while slots[j] != 0 and slots[j] != row + 1:
            j = (j + 1) & mask
        if slots[j] == 0:
            slots[j] = row + 1
            where[j] = n_distinct
            distinct[n_distinct] = row
            n_distinct += 1
        counts[where[j]] += 1
    delta = np.zeros(n_langs, dtype=np.float64)
    hits = np.zeros(n_langs, dtype=np.int64)
    order = np.empty(n_langs, dtype=np.int64)
    seen = np.zeros(n_langs, dtype=np.bool_)
    n_order = 0
    for i in range(n_distinct):
        k = counts[i]
        row = distinct[i]
        for e in range(ptr[row], ptr[row + 1]):
            j = langs[e]
            if not seen[j]:
                seen[j] = True
                order[n_order] = j
                n_order += 1
            delta[j] += k * deltas[e]
            hits[j] += k
    return delta, hits, order, n_order, distinct[:n_distinct]


@numba.njit(cache=True, nogil=True)
def profile_choice(
    rows: np.ndarray, ptr: np.ndarray, langs: np.ndarray, deltas: np.ndarray, oov: np.ndarray, rank: np.ndarray
) -> tuple[int, float, float, int, int, int, int]:
    """Of `profile_scores` (the languages its words touch and their scores and hits; `rank`: each
    language's place in name order): the best language (the highest score; of equal ones the first
    name), its score, the second score (the best one again when two share it; -inf when alone), the
    best's hits, and the runner-up to it (the highest of the others; of equal ones the last name;
    -1 when none). -1 as the best when no word is listed. Then `_distinct_only` of the runner-up against
    the best (0, 0 without a runner-up): what the stage's bilingual test reads next (a call of its own
    cost ~2 µs a document)."""
    delta, hits, order, n_order, distinct = _profile_sums(rows, ptr, langs, deltas, oov.size)
    if n_order == 0:
        return -1, -np.inf, -np.inf, 0, -1, 0, 0
    n = rows.size
    scores = np.empty(n_order, dtype=np.float64)
    top = -np.inf
    for t in range(n_order):
        j = order[t]
        base = n * oov[j]  # two roundings, as Python's n * oov + delta
        scores[t] = base + delta[j]
        if scores[t] > top:
            top = scores[t]
    best = -1
    ties = 0
    for t in range(n_order):
        if scores[t] == top:
            ties += 1
            if best < 0 or rank[order[t]] < rank[best]:
                best = order[t]
    second = top if ties > 1 else -np.inf
    runner = -1
    runner_score = -np.inf
    for t in range(n_order):
        j = order[t]
        if j == best:
            continue
        if ties == 1 and scores[t] > second:
            second = scores[t]
        if runner < 0 or scores[t] > runner_score or (scores[t] == runner_score and rank[j] > rank[runner]):
            runner, runner_score = j, scores[t]
    only_runner, only_best = 0, 0
    if runner >= 0:
        only_runner, only_best = _distinct_only(distinct, ptr, langs, runner, best)
    return best, top, second, hits[best], runner, only_runner, only_best


@numba.njit(cache=True, nogil=True)
def pair_scores(
    cps: np.ndarray,
    spans: np.ndarray,
    spaces: np.ndarray,
    strip: np.ndarray,
    alpha: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    deltas: np.ndarray,
    oov: np.ndarray,
    mine: int,
    theirs: int,
) -> tuple[bool, np.ndarray]:
    """For each span (start, end) of a lowercased text's code points: `profile_scores` of its `token_rows`
    for languages `mine` and `theirs` only (the same floats; -inf for a language none of its words
    touches, as a missing key). False (and an incomplete array) when a token has a code point of
    ALPHA_LIMIT or more: Python decides those."""
    out = np.empty((spans.shape[0], 2), dtype=np.float64)
    for k in range(spans.shape[0]):
        part = cps[spans[k, 0] : spans[k, 1]]
        found, python = _bounds_rows(
            part, spread_tokens(part, np.int64(0), spaces), strip, alpha, keys, rows, words, starts
        )
        if python.shape[0]:
            return False, out
        delta, hits, _, _, _ = _profile_sums(found, ptr, langs, deltas, oov.size)
        n = found.size
        for c, j in ((0, mine), (1, theirs)):
            if hits[j] > 0:  # touched: every entry adds its word's count (1 or more) to the hits
                base = n * oov[j]  # two roundings, as Python's n * oov + delta
                out[k, c] = base + delta[j]
            else:
                out[k, c] = -np.inf
    return True, out


@numba.njit(cache=True, nogil=True)
def _distinct_only(distinct: np.ndarray, ptr: np.ndarray, langs: np.ndarray, mine: int, theirs: int) -> tuple[int, int]:
    """Among distinct rows of a script's profile index (none 0): how many language `mine` lists and
    `theirs` does not, and the other way round (entries ptr[row]:ptr[row + 1] of `langs` are the
    languages listing a row's word)."""
    only_mine = 0
    only_theirs = 0
    for row in distinct:
        in_mine = False
        in_theirs = False
        for e in range(ptr[row], ptr[row + 1]):
            in_mine |= langs[e] == mine
            in_theirs |= langs[e] == theirs
        if in_mine and not in_theirs:
            only_mine += 1
        elif in_theirs and not in_mine:
            only_theirs += 1
    return only_mine, only_theirs


@numba.njit(cache=True, nogil=True)
def most_listed(rows: np.ndarray, ptr: np.ndarray, langs: np.ndarray, n_langs: int, main: int) -> int:
    """The most distinct rows of a script's profile index in `rows` (0: unlisted, never counted) that
    one language lists and `main` does not (entries ptr[row]:ptr[row + 1] of `langs` are the
    languages listing a row's word): as many as any language's listed words telling it from `main`."""
    counts = np.zeros(n_langs, dtype=np.int64)
    seen = np.empty(rows.size, dtype=np.int64)
    n_seen = 0
    best = 0
    for i in range(rows.size):
        row = rows[i]
        if row == 0:
            continue
        again = False
        for k in range(n_seen):  # a fragment's few dozen words: a scan beats a table
            if seen[k] == row:
                again = True
                break
        if again:
            continue
        seen[n_seen] = row
        n_seen += 1
        listed_main = False
        for e in range(ptr[row], ptr[row + 1]):
            listed_main |= langs[e] == main
        if listed_main:
            continue
        for e in range(ptr[row], ptr[row + 1]):
            j = langs[e]
            counts[j] += 1
            best = max(best, counts[j])
    return best


@numba.njit(cache=True, nogil=True)
def best_foreign(
    rows: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    deltas: np.ndarray,
    oov: np.ndarray,
    odd_rows: np.ndarray,
    counts: np.ndarray,
    odd_weight: float,
    by_name: np.ndarray,
    excluded: np.ndarray,
    main: int,
) -> tuple[int, float, float]:
    """The stage's ``_judge`` scoring without its dicts: the `profile_scores` of the words, each
    language some word spelt with an odd letter is odd for (`odd_rows`: a row per such word, by
    language 0 if not odd, 1 if odd and listed, 2 if odd and unlisted; `counts`: each word's
    occurrences) scored as all-unlisted when untouched and lowered by `odd_weight` times the
    occurrences of its odd unlisted words, then the best language not `excluded` in name order
    (`by_name`; the first of equal scores) and the main language's score (all-unlisted when
    untouched). The same floating-point operations as there. Returns (best or -1, its score, main's)."""
    n = rows.size
    penalties = _odd_penalties(odd_rows, counts)
    delta, _, order, n_order, _ = _profile_sums(rows, ptr, langs, deltas, oov.size)
    touched = np.zeros(oov.size, dtype=np.bool_)
    score = np.empty(oov.size, dtype=np.float64)
    for t in range(n_order):
        j = order[t]
        touched[j] = True
        base = n * oov[j]
        score[j] = base + delta[j]
    for j in range(oov.size):
        if penalties[j] >= 0:
            if not touched[j]:
                touched[j] = True
                score[j] = n * oov[j]
            score[j] -= odd_weight * penalties[j]
    own = score[main] if touched[main] else n * oov[main]
    best = -1
    best_score = -np.inf
    for t in range(by_name.size):
        j = by_name[t]
        if touched[j] and not excluded[j] and score[j] > best_score:
            best, best_score = j, score[j]
    return best, best_score, own


@numba.njit(cache=True, nogil=True)
def non_ascii_words(low: np.ndarray, words: np.ndarray, ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The words (rows (start, end, ...) of `words`, offsets into the lowercase code points `low`) in the
    ranges (first, end) of `ranges` whose lowercase has a code point beyond ASCII, as the index of each
    word's text among theirs (-1 for the other words: by row of `words`) and the first word of each text,
    in order of appearance."""
    index = np.full(words.shape[0], -1, dtype=np.int64)
    total = 0
    for r in range(ranges.shape[0]):
        total += ranges[r, 1] - ranges[r, 0]
    firsts = np.empty(total, dtype=np.int64)
    n_firsts = 0
    # the texts met, by `fnv1a` key in an open-addressing table (at most half full)
    size = 16
    while size < 2 * total:
        size *= 2
    keys = np.zeros(size, dtype=np.uint64)
    slots = np.empty(size, dtype=np.int64)
    for r in range(ranges.shape[0]):
        for w in range(ranges[r, 0], ranges[r, 1]):
            a = words[w, 0]
            e = words[w, 1]
            beyond = np.uint32(0)
            for k in range(a, e):
                beyond |= low[k]
            if beyond < 128 or index[w] >= 0:
                continue
            key = FNV_OFFSET
            for k in range(a, e):
                key = (key ^ np.uint64(low[k])) * FNV_PRIME
            if key == 0:
                key = np.uint64(1)  # 0 marks an empty slot
            j = np.int64(key & np.uint64(size - 1))
            found = -1
            while keys[j] != 0:
                if keys[j] == key:
                    f = firsts[slots[j]]
                    fa = words[f, 0]
                    if words[f, 1] - fa == e - a and same_run(low, fa, low, a, e - a):
                        found = slots[j]
                        break
                j = (j + 1) & (size - 1)
            if found < 0:
                found = n_firsts
                firsts[n_firsts] = w
                n_firsts += 1
                keys[j] = key
                slots[j] = found
            index[w] = found
    return index, firsts[:n_firsts]


@numba.njit(cache=True, nogil=True)
def odd_letter_rows(
    low: np.ndarray,
    words: np.ndarray,
    firsts: np.ndarray,
    letter_index: np.ndarray,
    lacking: np.ndarray,
    alphabets: np.ndarray,
    alpha: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """The stage's `_odd_row` of each word ``words[firsts[q]]`` (rows: start, end, kept inside a clause,
    profile row; offsets into the lowercase code points `low`): by language, 0 if its alphabet has every
    letter of the word, 1 if it lacks one and lists the word (the profile row's entries, `ptr` / `langs`),
    2 if it lacks one and does not list it. A letter some listed alphabet has (`letter_index`: its row of
    `lacking`, by code point; -1 for others) makes the languages whose alphabet lacks it odd; a letter
    (`alpha`) no listed alphabet has makes every language with one (`alphabets`) odd instead; a word
    without either is odd for none (`_odd_langs`). False (and the rows unfinished) when a word holds a
    code point of `alpha`'s size or more: Python decides."""
    n_langs = lacking.shape[1]
    out = np.zeros((firsts.size, n_langs), dtype=np.int8)
    n_index = letter_index.size
    n_alpha = alpha.size
    odd = np.zeros(n_langs, dtype=np.bool_)
    for q in range(firsts.size):
        w = firsts[q]
        odd[:] = False
        known = False
        unknown = False
        for k in range(words[w, 0], words[w, 1]):
            c = low[k]
            i = letter_index[c] if c < n_index else -1
            if i >= 0:
                known = True
                for j in range(n_langs):
                    odd[j] |= lacking[i, j]
            elif c >= n_alpha:
                return out, False
            elif alpha[c]:
                unknown = True
        if not known:
            continue
        for j in range(n_langs):
            if alphabets[j] if unknown else odd[j]:
                out[q, j] = 2
        row = words[w, 3]
        for e in range(ptr[row], ptr[row + 1]):
            if out[q, langs[e]] != 0:
                out[q, langs[e]] = 1
    return out, True


@numba.njit(cache=True, nogil=True)
def odd_spelt_words(
    low: np.ndarray,
    words: np.ndarray,
    ranges: np.ndarray,
    letter_index: np.ndarray,
    lacking: np.ndarray,
    alphabets: np.ndarray,
    alpha: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """`non_ascii_words` of the ranges and the `odd_letter_rows` of the words it finds, in one call (one kernel
    for a process to load, not two): each word's index among those texts (-1: all ASCII), the first word of each
    text, the texts' odd-letter rows in that order and whether they are complete."""
    index, firsts = non_ascii_words(low, words, ranges)
    rows, ok = odd_letter_rows(low, words, firsts, letter_index, lacking, alphabets, alpha, ptr, langs)
    return index, firsts, rows, ok


@numba.njit(cache=True, nogil=True)
def _lists(row: int, ptr: np.ndarray, langs: np.ndarray, lang: int) -> bool:
    """Does language `lang` list the word of profile row `row` (0: unlisted)?"""
    listed = False
    for e in range(ptr[row], ptr[row + 1]):
        listed |= langs[e] == lang
    return listed


@numba.njit(cache=True, nogil=True)
def _telling_count(
    ids: np.ndarray,
    rows: np.ndarray,
    odd_of: np.ndarray,
    odd_rows: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    lang: int,
    other: int,
    letters: bool,
) -> int:
    """The stage's `_telling(words, lang, other, odd)` of the distinct words `ids` (indices into `rows`,
    their profile rows, and `odd_of`, their rows of `odd_rows` or -1): listed for `lang` and not for
    `other`, or (`letters`: `lang` has a listed alphabet) spelt with a letter `other` lacks and `lang`
    has, and not listed for `other`."""
    found = 0
    for t in range(ids.size):
        w = ids[t]
        row = rows[w]
        theirs = row != 0 and _lists(row, ptr, langs, other)
        if theirs:
            continue
        k = odd_of[w]
        spelt_theirs = letters and k >= 0 and odd_rows[k, other] != 0 and odd_rows[k, lang] == 0
        if spelt_theirs or (row != 0 and _lists(row, ptr, langs, lang)):
            found += 1
    return found


@numba.njit(cache=True, nogil=True)
def _evidence(low: np.ndarray, words: np.ndarray, first: int, end: int, ev: np.ndarray) -> int:
    """The stage's `_evidence_pieces` of the words first:end of `words` (rows: start, end, kept inside a
    clause, ...; offsets into the lowercase code points `low`): the first word and those kept, less each
    "et al", as indices into `words` written to `ev`; returns how many."""
    n = 0
    has_al = False
    for w in range(first, end):
        if w == first or words[w, 2] != 0:
            ev[n] = w
            n += 1
            a = words[w, 0]
            if words[w, 1] - a == 2 and low[a] == 97 and low[a + 1] == 108:  # "al"
                has_al = True
    if has_al:
        i = n - 2
        while i >= 0:
            if i + 1 < n:
                a = words[ev[i], 0]
                b = words[ev[i + 1], 0]
                if (
                    words[ev[i], 1] - a == 2
                    and low[a] == 101
                    and low[a + 1] == 116
                    and words[ev[i + 1], 1] - b == 2
                    and low[b] == 97
                    and low[b + 1] == 108
                ):
                    for q in range(i, n - 2):
                        ev[q] = ev[q + 2]
                    n -= 2
            i -= 1
    return n


@numba.njit(cache=True, nogil=True)
def _distinct(words: np.ndarray, ev: np.ndarray, odd_index: np.ndarray, ids: np.ndarray) -> int:
    """The distinct words of `ev` (indices into `words`, whose column 3 is the profile row) that a telling
    count can count, written to `ids`: a listed word by its row, an unlisted one spelt beyond ASCII by its
    `odd_index` (an unlisted ASCII word counts for nothing); returns how many."""
    n_ids = 0
    for t in range(ev.size):
        w = ev[t]
        row = words[w, 3]
        k = odd_index[w]
        if row == 0 and k < 0:
            continue
        seen = False
        for q in range(n_ids):
            if (row != 0 and words[ids[q], 3] == row) or (row == 0 and odd_index[ids[q]] == k):
                seen = True
                break
        if not seen:
            ids[n_ids] = w
            n_ids += 1
    return n_ids


@numba.njit(cache=True, nogil=True)
def host_clause(
    low: np.ndarray,
    words: np.ndarray,
    ranges: np.ndarray,
    odd_index: np.ndarray,
    odd_rows: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    main: int,
    lang: int,
    alphabets: np.ndarray,
) -> bool:
    """The stage's `_host_clause`: does the evidence (`_evidence`) of a run of words ranges[r, 0]:ranges[r, 1]
    (a clause of a sentence judged language `lang`) tell `main` from `lang` by one word or more, and by more
    than it tells `lang` from `main` (`_telling_count`; `judge_ranges` names the arguments)."""
    rows = words[:, 3]
    for r in range(ranges.shape[0]):
        ev = np.empty(max(ranges[r, 1] - ranges[r, 0], 0), dtype=np.int64)
        n = _evidence(low, words, ranges[r, 0], ranges[r, 1], ev)
        ids = np.empty(n, dtype=np.int64)
        n_ids = _distinct(words, ev[:n], odd_index, ids)
        for_main = _telling_count(ids[:n_ids], rows, odd_index, odd_rows, ptr, langs, main, lang, alphabets[main])
        if for_main >= 1 and for_main > _telling_count(
            ids[:n_ids], rows, odd_index, odd_rows, ptr, langs, lang, main, alphabets[lang]
        ):
            return True
    return False


@numba.njit(cache=True, nogil=True)
def judge_ranges(
    low: np.ndarray,
    words: np.ndarray,
    ranges: np.ndarray,
    odd_index: np.ndarray,
    odd_rows: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    deltas: np.ndarray,
    oov: np.ndarray,
    odd_weight: float,
    by_name: np.ndarray,
    excluded: np.ndarray,
    main: int,
    alphabets: np.ndarray,
    min_pieces: int,
    min_margin: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stage's `_decide` up to langdetect (`_evidence_pieces`, the count of pieces, then `_judge`) of
    each run of words ranges[r, 0]:ranges[r, 1] of `words` (`sentence_words`' rows: start, end, kept
    inside a clause, profile row; offsets into the lowercase code points `low`): 1 and the best foreign
    language and margin where `_judge` gives them, else 0. `odd_index`: each word's row of `odd_rows`
    (the stage's `_odd_row` of its lowercase; -1 for an ASCII word, which no listed alphabet lacks a letter
    of), distinct words having distinct rows; `alphabets`: by language, whether its alphabet is listed;
    `min_pieces`: fewer evidence words are no evidence; `min_margin`: `langdetect_margin`. The scores are
    `best_foreign`'s, the same floating-point operations."""
    n_ranges = ranges.shape[0]
    status = np.zeros(n_ranges, dtype=np.int64)
    best_out = np.full(n_ranges, -1, dtype=np.int64)
    margins = np.zeros(n_ranges, dtype=np.float64)
    n_langs = oov.size
    longest = 0
    for r in range(n_ranges):
        longest = max(longest, ranges[r, 1] - ranges[r, 0])
    # (buffers for the longest run, sliced per run: a few arrays per run took ~10 % of the pass)
    ev = np.empty(longest, dtype=np.int64)
    row_buf = np.empty(longest, dtype=np.int64)
    id_buf = np.empty(longest, dtype=np.int64)
    spelt = np.empty(longest, dtype=np.int64)
    count_buf = np.empty(longest, dtype=np.int64)
    for r in range(n_ranges):
        first = ranges[r, 0]
        end = ranges[r, 1]
        n = _evidence(low, words, first, end, ev)
        if n < min_pieces:
            continue
        rows = row_buf[:n]
        listed_main = 0
        for t in range(n):
            rows[t] = words[ev[t], 3]
            if rows[t] != 0 and _lists(rows[t], ptr, langs, main):
                listed_main += 1
        if 2 * listed_main >= n:
            continue  # host text: half its words or more are on the main language's list
        # the distinct words (a listed word by its row, an unlisted one spelt beyond ASCII by its odd row;
        # other words count for nothing below), and the spelt ones with their occurrences
        ids = id_buf[:n]
        n_ids = _distinct(words, ev[:n], odd_index, ids)
        counts = count_buf[:n]
        counts[:] = 0
        n_spelt = 0
        odd_main = 0  # distinct words main lacks a letter of and does not list
        for t in range(n):
            k = odd_index[ev[t]]
            if k < 0:
                continue
            again = -1
            for q in range(n_spelt):
                if odd_index[spelt[q]] == k:
                    again = q
                    break
            if again >= 0:
                counts[again] += 1
            else:
                spelt[n_spelt] = ev[t]
                counts[n_spelt] = 1
                n_spelt += 1
                if odd_rows[k, main] == 2:
                    odd_main += 1
        listed = most_listed(rows, ptr, langs, n_langs, main)
        if listed + odd_main < 2:
            continue
        sub = np.zeros((n_spelt, n_langs), dtype=np.int8)
        for q in range(n_spelt):
            sub[q, :] = odd_rows[odd_index[spelt[q]], :]
        j, best_score, own = best_foreign(
            rows, ptr, langs, deltas, oov, sub, counts[:n_spelt], odd_weight, by_name, excluded, main
        )
        if j < 0:
            continue
        # distinct words telling the two apart: two at least, and more than the main language has
        distinct, word_rows = ids[:n_ids], words[:, 3]
        for_best = _telling_count(distinct, word_rows, odd_index, odd_rows, ptr, langs, j, main, alphabets[j])
        if for_best < 2:
            continue
        if for_best <= _telling_count(distinct, word_rows, odd_index, odd_rows, ptr, langs, main, j, alphabets[main]):
            continue
        margin = best_score - own
        if margin < min_margin:
            continue
        status[r] = 1
        best_out[r] = j
        margins[r] = margin
    return status, best_out, margins


@numba.njit(cache=True, nogil=True)
def _odd_penalties(odd_rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """By language: the occurrences of the words odd for it and unlisted (`best_foreign`'s
    `odd_rows` == 2, weighted by `counts`), or -1 when no word is odd for it."""
    penalties = np.full(odd_rows.shape[1], -1, dtype=np.int64)
    for w in range(odd_rows.shape[0]):
        for j in range(odd_rows.shape[1]):
            if odd_rows[w, j] != 0:
                if penalties[j] < 0:
                    penalties[j] = 0
                if odd_rows[w, j] == 2:
                    penalties[j] += counts[w]
    return penalties


@numba.njit(cache=True, nogil=True)
def spread_sample(cps: np.ndarray, want: int, spaces: np.ndarray) -> np.ndarray:
    """The `spread_tokens` joined by one space, as code points (``" ".join(...)`` without a Python
    slice per token: one decode of the result gives the string)."""
    rows = spread_tokens(cps, want, spaces)
    size = rows.shape[0] - 1 if rows.shape[0] else 0
    for t in range(rows.shape[0]):
        size += rows[t, 1] - rows[t, 0]
    out = np.empty(size, dtype=np.uint32)
    at = 0
    for t in range(rows.shape[0]):
        if t:
            out[at] = 32
            at += 1
        for i in range(rows[t, 0], rows[t, 1]):
            out[at] = cps[i]
            at += 1
    return out


# `str.isalpha` of the code points below this (a table; a token with a letter above it is decided in
# Python: astral letters are rare in the text these tokens come from).
ALPHA_LIMIT = 0x10000


def alpha_table() -> np.ndarray:
    """`str.isalpha` of every code point below ALPHA_LIMIT (~10 ms)."""
    return np.fromiter(map(str.isalpha, map(chr, range(ALPHA_LIMIT))), dtype=np.bool_, count=ALPHA_LIMIT)


def word_rows_table(words: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An exact word -> row look-up for `token_rows`: word i (0-based) has row i + 1. Returns the
    open-addressing slots (`fnv1a` keys, 0 empty, and each slot's row) and the words' code points
    with each word's start (word i is cps[starts[i]:starts[i + 1]]), to confirm a key by the text."""
    size = table_size(len(words))
    keys = np.zeros(size, dtype=np.uint64)
    rows = np.zeros(size, dtype=np.int64)
    starts = np.zeros(len(words) + 1, dtype=np.int64)
    starts[1:] = np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)))
    cps = code_points("".join(words))
    _put_rows(keys, rows, cps, starts)
    return keys, rows, cps, starts


@numba.njit(cache=True, nogil=True)
def _put_rows(keys: np.ndarray, rows: np.ndarray, cps: np.ndarray, starts: np.ndarray) -> None:
    mask = keys.size - 1
    for w in range(starts.size - 1):
        key = fnv1a(cps, starts[w], starts[w + 1])
        j = np.int64(key & np.uint64(mask))
        while keys[j] != 0:  # distinct words: a key met again is a collision, kept in its own slot
            j = (j + 1) & mask
        keys[j] = key
        rows[j] = w + 1


@numba.njit(cache=True, nogil=True)
def _bounds_rows(
    cps: np.ndarray,
    bounds: np.ndarray,
    strip: np.ndarray,
    alpha: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`token_rows` of the tokens cps[s:e] of `bounds` (a row (s, e) each): the `strip` characters taken
    off both ends, kept when all the rest are letters (`alpha`), each as its row of the
    `word_rows_table` (0: none), confirmed by the text; -1 for a token with a code point of ALPHA_LIMIT
    or more (Python decides it), listed in the second array as (its index in the rows, the stripped
    span's start, end): most texts have none, and Python tests an empty array's length, not every
    row. One loop, written out: the key
    is hashed in the letter test's pass, and the probe exits by `break` (the same steps as inlined
    helpers returning from inside their loops ran ~2.5x as long)."""
    n = bounds.shape[0]
    out = np.empty(n, dtype=np.int64)
    python = np.empty((n, 3), dtype=np.int64)
    n_python = 0
    n_strip = strip.size
    mask = keys.size - 1
    n_out = 0
    for t in range(n):
        s = bounds[t, 0]
        e = bounds[t, 1]
        while s < e and cps[s] < n_strip and strip[cps[s]]:
            s += 1
        while e > s and cps[e - 1] < n_strip and strip[cps[e - 1]]:
            e -= 1
        if s == e:
            continue  # "".isalpha() is False
        state = 0  # 1: a code point from ALPHA_LIMIT, 2: not all letters
        key = FNV_OFFSET
        for k in range(s, e):
            c = cps[k]
            if c >= ALPHA_LIMIT:
                state = 1
            elif not alpha[c]:
                state = 2
                break
            key = (key ^ np.uint64(c)) * FNV_PRIME  # `fnv1a`
        if state == 2:
            continue
        if state == 1:
            out[n_out] = -1
            python[n_python, 0] = n_out
            python[n_python, 1] = s
            python[n_python, 2] = e
            n_python += 1
            n_out += 1
            continue
        j = np.int64(key & np.uint64(mask))
        found = 0
        while keys[j] != 0:
            if keys[j] == key:
                w = rows[j] - 1
                ws = starts[w]
                if starts[w + 1] - ws == e - s:
                    same = True
                    for q in range(e - s):
                        if words[ws + q] != cps[s + q]:
                            same = False
                            break
                    if same:
                        found = rows[j]
                        break
            j = (j + 1) & mask
        out[n_out] = found
        n_out += 1
    return out[:n_out], python[:n_python]


@numba.njit(cache=True, nogil=True, inline="always")
def _keyed_row(
    key: np.uint64,
    cps: np.ndarray,
    s: int,
    e: int,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
) -> int:
    """`_word_row` of the word cps[s:e] whose `fnv1a` key is `key` (hashed by the caller's own pass)."""
    mask = keys.size - 1
    j = np.int64(key & np.uint64(mask))
    found = 0
    while keys[j] != 0:
        if keys[j] == key:
            w = rows[j] - 1
            ws = starts[w]
            if starts[w + 1] - ws == e - s:
                same = True
                for q in range(e - s):
                    if words[ws + q] != cps[s + q]:
                        same = False
                        break
                if same:
                    found = rows[j]
                    break
        j = (j + 1) & mask
    return found


@numba.njit(cache=True, nogil=True, inline="always")
def _word_row(
    cps: np.ndarray, s: int, e: int, keys: np.ndarray, rows: np.ndarray, words: np.ndarray, starts: np.ndarray
) -> int:
    """The row of the word cps[s:e] in a `word_rows_table` (0: none): a slot with its key, confirmed by the
    text. (Inlined: a call per word took ~3x as long.)"""
    return _keyed_row(fnv1a(cps, s, e), cps, s, e, keys, rows, words, starts)


@numba.njit(cache=True, nogil=True)
def token_rows(
    cps: np.ndarray,
    spaces: np.ndarray,
    strip: np.ndarray,
    alpha: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``[row.get(v, 0) for w in text.split() if (v := w.strip(STRIP)).isalpha()]`` over a (lowercase)
    text's code points: whitespace tokens, the `strip` characters taken off both ends, kept when
    all the rest are letters (`alpha`), each as its row of the `word_rows_table`. A token with a
    code point of ALPHA_LIMIT or more gets row -1: Python decides it. Returns the rows and, for the -1
    rows, (index, start, end) of their stripped spans (`_bounds_rows`)."""
    return _bounds_rows(cps, spread_tokens(cps, np.int64(0), spaces), strip, alpha, keys, rows, words, starts)


@numba.njit(cache=True, nogil=True)
def spread_rows(
    cps: np.ndarray,
    want: int,
    spaces: np.ndarray,
    strip: np.ndarray,
    alpha: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`token_rows` of the `spread_sample` of `cps`, read from the `spread_tokens` in place (the sample
    is never joined, decoded and split again): the same rows, and the -1 rows' (index, start, end) with
    offsets of `cps`."""
    return _bounds_rows(cps, spread_tokens(cps, want, spaces), strip, alpha, keys, rows, words, starts)


# Classes of the sentence-end search (`sentence_spans`), bits of a table by code point below U+10000
# built from the stage's `_SENTENCE_END_RE` character classes (`regex`'s own Unicode tables).
END_MARK = 1  # [.!?…]: a run of them before a space ends a sentence
END_CLOSER = 2  # ["”’»“«)\]]: closing that run
END_SPACE = 4  # regex's \s (which is not str.isspace: U+001C-U+001F are not)
LOWER = 8  # \p{Ll}
UPPER = 16  # \p{Lu}
GLUED_MARK = 32  # [.!?]: a run of them glued to a capital after two lowercase letters
GLUED_CLOSER = 64  # ["”’»]: closing that run
GLUED_OPENER = 128  # ["“„«]: may open the next sentence
CJK_MARK = 256  # [。！？!?]: a run of them always ends a sentence
CJK_CLOSER = 512  # [」』”’）)]: closing that run
NEWLINE = 1024  # \n: always ends a sentence
_STARTS = END_MARK | GLUED_MARK | CJK_MARK | NEWLINE  # what a match can start with
SENTENCE_TABLE_SIZE = 0x10000


@numba.njit(cache=True, nogil=True)
def _has(cps: np.ndarray, k: int, end: int, table: np.ndarray, bit: int) -> bool:
    return k < end and (table[cps[k]] & bit) != 0


@numba.njit(cache=True, nogil=True)
def sentence_spans(cps: np.ndarray, pos: int, table: np.ndarray, spaces: np.ndarray) -> tuple[bool, np.ndarray]:
    """The stage's ``_sentences`` of cps[pos:] (`cps` may start up to two characters before `pos`,
    which the glued end's lookbehind reads): `_add_sentences`' spans, or (False, empty) when a code
    point from U+10000 lies there (the regex decides)."""
    out = np.empty((cps.size - pos + 1, 2), dtype=np.int64)
    # (np.int64, not a literal 0: the other call's signature, compiled once on the first run)
    n_out = _add_sentences(cps, pos, cps.size, table, spaces, out, np.int64(0))
    return n_out >= 0, out[: max(n_out, 0)]


@numba.njit(cache=True, nogil=True)
def hit_sentences(
    cps: np.ndarray, hits: np.ndarray, table: np.ndarray, spaces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For `line_hits`' rows over a text's code points `cps`: the sentences (`_add_sentences`) of
    each line holding hits, and each hit's sentence there (the last one starting at or before it:
    an index into those spans, -1 if none; -2 for every hit of a line holding a code point from
    U+10000, which the regex splits)."""
    spans = np.empty((64, 2), dtype=np.int64)
    n_spans = 0
    which = np.empty(hits.shape[0], dtype=np.int64)
    line = -1
    first = 0  # the current line's first span
    ok = True
    for r in range(hits.shape[0]):
        ls, le, ts = hits[r, 0], hits[r, 1], hits[r, 2]
        if ls != line:
            line, first = ls, n_spans
            while spans.shape[0] - n_spans < le - ls + 1:
                spans = _doubled(spans)
            added = _add_sentences(cps, ls, le, table, spaces, spans, n_spans)
            ok = added >= 0
            n_spans = added if ok else n_spans
        if not ok:
            which[r] = -2
            continue
        k = first - 1
        while k + 1 < n_spans and spans[k + 1, 0] <= ts:
            k += 1
        which[r] = k if k >= first else -1
    return spans[:n_spans], which


@numba.njit(cache=True, nogil=True)
def sentence_hits(
    cps: np.ndarray,
    low: np.ndarray,
    hits: np.ndarray,
    which: np.ndarray,
    n_spans: int,
    cases: np.ndarray,
    alpha: np.ndarray,
    letter_digit: np.ndarray,
    marks: np.ndarray,
    spaces: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
    frequent: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    main: int,
    odd: np.ndarray,
    spans: np.ndarray,
) -> tuple[bool, np.ndarray, np.ndarray]:
    """The stage's `_hits_by_sentence` loop over `line_hits`' rows (`hits`) and their sentences
    (`hit_sentences`: `spans`, n_spans of them, and `which`), for a text's code points `cps` and its
    lowercase's `low` (same offsets). A hit is kept when its token low[ts:te] is a listed word
    (`frequent`: by row of the `word_rows_table` keys..starts, a word of `_frequent_words`; not
    listed for language `main`, by `ptr` / `langs`) or holds a letter of `odd` (a key hit is a key
    collision otherwise), lies in a sentence, and is not capitalised inside it: cps[ts:te] is
    lowercase (`cases`: str.islower, no istitle) or `_capitalised_inside` does not hold (its first
    letter, by `alpha`, is upper; a letter or digit (`letter_digit`) lies before it in the sentence;
    the last non-space (`spaces`) character before that letter is not a clause mark (`marks`)).
    Returns False and empty arrays when a hit's line holds a code point from U+10000 (which -2:
    Python decides), else the kept hits as rows (position: ts + shift, ts, te) in order, and the
    sentences whose rows hold two distinct tokens as rows (start, end, first row, end row)."""
    groups = np.zeros((n_spans, 3), dtype=np.int64)
    kept = np.empty((hits.shape[0], 3), dtype=np.int64)
    n_kept = 0
    n_odd = odd.size
    mask = keys.size - 1
    for r in range(hits.shape[0]):
        k = which[r]
        if k == -2:
            return False, kept[:0], np.empty((0, 4), dtype=np.int64)
        ts, te, shift = hits[r, 2], hits[r, 3], hits[r, 4]
        if shift == 0:
            # a key hit is confirmed by the word's text, else by an odd letter (which may also sit at 0)
            confirmed = False
            for q in range(ts, te):
                c = low[q]
                if c < n_odd and odd[c]:
                    confirmed = True
                    break
            if not confirmed:
                key = FNV_OFFSET
                for q in range(ts, te):
                    key = (key ^ np.uint64(low[q])) * FNV_PRIME
                j = np.int64(key & np.uint64(mask))
                row = 0
                while keys[j] != 0:
                    if keys[j] == key:
                        w = rows[j] - 1
                        ws = starts[w]
                        if starts[w + 1] - ws == te - ts:
                            same = True
                            for q in range(te - ts):
                                if words[ws + q] != low[ts + q]:
                                    same = False
                                    break
                            if same:
                                row = rows[j]
                                break
                    j = (j + 1) & mask
                if row != 0 and frequent[row]:
                    confirmed = True
                    for q in range(ptr[row], ptr[row + 1]):
                        if langs[q] == main:
                            confirmed = False  # on main's list: no evidence
                            break
            if not confirmed:
                continue
        if k < 0:
            continue  # in no sentence
        lower = False
        blocked = False
        for q in range(ts, te):
            flags = cases[cps[q]]
            blocked |= (flags & CASE_BLOCKS) != 0
            lower |= (flags & CASE_LOWER) != 0
        if not (lower and not blocked):
            # `_capitalised_inside(text, sentence start, ts, te - ts)`
            first = te
            for q in range(ts, te):
                if alpha[cps[q]]:
                    first = q
                    break
            if first < te and (cases[cps[first]] & CASE_UPPER) != 0:
                ss = spans[k, 0]
                inside = False
                for q in range(ss, ts):
                    if letter_digit[cps[q]]:
                        inside = True
                        break
                if inside:
                    q = first - 1
                    while q >= ss and _is_space(cps[q], spaces):
                        q -= 1
                    if q < ss or not (cps[q] < marks.size and marks[cps[q]]):
                        continue  # capitalised inside the sentence: a name, no evidence
        if groups[k, 1] == 0:
            groups[k, 0] = n_kept
        else:
            # two distinct tokens: this one against the sentence's first
            a, b = kept[groups[k, 0], 1], kept[groups[k, 0], 2]
            if groups[k, 2] == 0:
                differ = b - a != te - ts
                for q in range(te - ts):
                    if differ:
                        break
                    differ = low[a + q] != low[ts + q]
                groups[k, 2] = differ
        kept[n_kept, 0] = ts + shift
        kept[n_kept, 1] = ts
        kept[n_kept, 2] = te
        n_kept += 1
        groups[k, 1] = n_kept
    two = np.empty((n_spans, 4), dtype=np.int64)
    n_two = 0
    for k in range(n_spans):
        if groups[k, 2]:
            two[n_two, 0] = spans[k, 0]
            two[n_two, 1] = spans[k, 1]
            two[n_two, 2] = groups[k, 0]
            two[n_two, 3] = groups[k, 1]
            n_two += 1
    return True, kept[:n_kept], two[:n_two]


@numba.njit(cache=True, nogil=True)
def _add_sentences(
    cps: np.ndarray, pos: int, end: int, table: np.ndarray, spaces: np.ndarray, out: np.ndarray, n_out: int
) -> int:
    """The stage's ``_sentences`` of cps[pos:end] written to `out` from row `n_out`: the ends
    ``_SENTENCE_END_RE.finditer`` finds (its lookbehind reads up to two characters before `pos`, its
    lookaheads nothing from `end`), in its order of alternatives and with its backtracking, then the
    spans between them with `spaces` (str.isspace) stripped, empty ones dropped. Returns the rows
    filled, or -1 when a code point from U+10000 lies there (the table does not cover it)."""
    for k in range(max(0, pos - 2), end):
        if cps[k] >= SENTENCE_TABLE_SIZE:
            return -1
    start = pos
    i = pos
    while i <= end:
        stop = end + 1  # past the last match: the rest of the range is the last span
        if i < end:
            if not table[cps[i]] & _STARTS:
                i += 1
                continue
            stop = _sentence_end(cps, i, end, table)
            if stop < 0:
                i += 1
                continue
        s = start
        e = min(stop, end)
        while s < e and _is_space(cps[s], spaces):
            s += 1
        while e > s and _is_space(cps[e - 1], spaces):
            e -= 1
        if e > s:
            out[n_out, 0] = s
            out[n_out, 1] = e
            n_out += 1
        start = stop
        i = stop
    return n_out


@numba.njit(cache=True, nogil=True)
def _sentence_end(cps: np.ndarray, i: int, end: int, table: np.ndarray) -> int:
    """Where a `_SENTENCE_END_RE` match starting at i ends, or -1 when none starts there."""
    flags = table[cps[i]]
    if flags & END_MARK:
        # [.!?…]+["”’»“«)\]]*(?=\s): giving back marks or closers never puts a space next
        j = i + 1
        while _has(cps, j, end, table, END_MARK):
            j += 1
        while _has(cps, j, end, table, END_CLOSER):
            j += 1
        if _has(cps, j, end, table, END_SPACE):
            return j
    if flags & GLUED_MARK and i >= 2 and table[cps[i - 2]] & LOWER and table[cps[i - 1]] & LOWER:
        # [.!?](?<=\p{Ll}{2}.)[.!?]*["”’»]*(?=["“„«]?\p{Lu}): the closers given back one by one
        # until a capital (after an optional opener) follows; giving back marks never helps
        j = i + 1
        while _has(cps, j, end, table, GLUED_MARK):
            j += 1
        m = j
        while _has(cps, m, end, table, GLUED_CLOSER):
            m += 1
        for k in range(m, j - 1, -1):
            if _has(cps, k, end, table, GLUED_OPENER) and _has(cps, k + 1, end, table, UPPER):
                return k
            if _has(cps, k, end, table, UPPER):
                return k
    if flags & CJK_MARK:
        j = i + 1
        while _has(cps, j, end, table, CJK_MARK):
            j += 1
        while _has(cps, j, end, table, CJK_CLOSER):
            j += 1
        return j
    if cps[i] == 10:
        return i + 1
    return -1


# `sentence_words`: a table of `[\p{L}\p{M}]` (the stage's `_WORD_RE` letters) by code point below this;
# a sentence holding a code point from it (or a capital sigma, lowercased by context) goes to Python.
WORD_TABLE_SIZE = 0x10000
_CAPITAL_SIGMA = 0x3A3
_APOSTROPHES = (0x27, 0x2019)  # the `['’]` joining the parts of one `_WORD_RE` word


@numba.njit(cache=True, nogil=True)
def sentence_words(
    cps: np.ndarray,
    low: np.ndarray,
    spans: np.ndarray,
    word_chars: np.ndarray,
    spaces: np.ndarray,
    keys: np.ndarray,
    rows: np.ndarray,
    words: np.ndarray,
    starts: np.ndarray,
    ptr: np.ndarray,
    langs: np.ndarray,
    n_langs: int,
    main: int,
    letter_classes: np.ndarray,
    odd: np.ndarray,
    has_alphabet: bool,
    cases: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each sentence (s, e) of `spans` over a text's code points `cps` (`low`: its lowercase's,
    of the same length): the count of ``_WORD_RE.findall(text, s, e)``'s words, their letters (the
    sum of their lengths), the non-space characters of text[s:e] (`spaces`: str.isspace), the
    `most_listed` of the words' lowercase as rows of the `word_rows_table` (keys..starts) of a
    script's profile (ptr, langs: `_score_table`) for language `main`, that plus the distinct
    non-ASCII lowercased words `main` lacks a letter of and does not list (`_may_tell`'s bound;
    `letter_classes`: IS_ALPHA, IN_ALPHABETS by code point; `odd`: the letters main's alphabet
    lacks; `has_alphabet`: main has one listed, else no word counts), 1 when every lowercased
    word is ASCII, and where its words start in the second array: a row (start, end, kept, profile row)
    per word, kept 1 when `_evidence` keeps the word inside a clause (``w.islower() or not
    w[:1].isupper()``; `cases`: CASE_LOWER, CASE_BLOCKS, CASE_UPPER by code point), and the row of its
    lowercase in the `word_rows_table` (0: unlisted; what `_judge` scores it by).
    A row of -1s for a sentence holding a code point from WORD_TABLE_SIZE or a capital sigma
    (whose lowercase depends on the letters around it: a word alone may lower otherwise)."""
    out = np.zeros((spans.shape[0], 7), dtype=np.int64)
    total = 0
    for r in range(spans.shape[0]):
        total += max(spans[r, 1] - spans[r, 0] + 1, 0) // 2 + 1
    all_words = np.empty((total, 4), dtype=np.int64)
    found_buf = np.empty(64, dtype=np.int64)
    odd_buf = np.empty((64, 2), dtype=np.int64)
    n_all = 0
    for r in range(spans.shape[0]):
        s = spans[r, 0]
        e = spans[r, 1]
        python = False
        nonspace = 0
        for k in range(s, e):
            c = cps[k]
            if c >= WORD_TABLE_SIZE or c == _CAPITAL_SIGMA or low[k] >= WORD_TABLE_SIZE:
                python = True
                break
            if not _is_space(c, spaces):
                nonspace += 1
        if python:
            out[r, :] = -1
            continue
        need = (e - s + 1) // 2 + 1
        if need > found_buf.size:  # (buffers grown for the longest sentence, not two arrays per sentence)
            found_buf = np.empty(2 * need, dtype=np.int64)
            odd_buf = np.empty((2 * need, 2), dtype=np.int64)
        found = found_buf
        odd_words = odd_buf  # spans of distinct such words
        n_odd = 0
        n_words = 0
        letters = 0
        ascii = 1
        i = s
        while i < e:
            if not word_chars[cps[i]]:
                i += 1
                continue
            a = i
            while i < e and word_chars[cps[i]]:
                i += 1
            # (?:['’][\p{L}\p{M}]+)*: an apostrophe joins only when a letter or mark follows it
            while i + 1 < e and (cps[i] == _APOSTROPHES[0] or cps[i] == _APOSTROPHES[1]) and word_chars[cps[i + 1]]:
                i += 1
                while i < e and word_chars[cps[i]]:
                    i += 1
            letters += i - a
            # str.islower: no upper- or titlecase letter and a lowercase one; str.isupper of the first;
            # and the lowercase word's code points or-ed (ASCII?) and `fnv1a` key: one pass over the word
            lower = False
            blocked = False
            beyond = np.uint32(0)
            key = FNV_OFFSET
            for k in range(a, i):
                flags = cases[cps[k]]
                blocked |= (flags & CASE_BLOCKS) != 0
                lower |= (flags & CASE_LOWER) != 0
                beyond |= low[k]
                key = (key ^ np.uint64(low[k])) * FNV_PRIME
            all_words[n_all, 0] = a
            all_words[n_all, 1] = i
            all_words[n_all, 2] = (lower and not blocked) or (cases[cps[a]] & CASE_UPPER) == 0
            n_all += 1
            word_ascii = beyond < 128
            if not word_ascii:
                ascii = 0
            row = _keyed_row(key, low, a, i, keys, rows, words, starts)  # the lowercase word's row
            all_words[n_all - 1, 3] = row
            found[n_words] = row
            n_words += 1
            if has_alphabet and not word_ascii and _lacks(low, a, i, letter_classes, odd):
                listed_main = False
                if row != 0:
                    for q in range(ptr[row], ptr[row + 1]):
                        listed_main |= langs[q] == main
                if not listed_main and not _seen_word(low, a, i, odd_words, n_odd):
                    odd_words[n_odd, 0] = a
                    odd_words[n_odd, 1] = i
                    n_odd += 1
        out[r, 0] = n_words
        out[r, 1] = letters
        out[r, 2] = nonspace
        out[r, 3] = most_listed(found[:n_words], ptr, langs, n_langs, main)
        out[r, 4] = out[r, 3] + n_odd
        out[r, 5] = ascii
        out[r, 6] = n_all - n_words
    return out, all_words[:n_all]


# `_CLAUSE_SPLIT_RE`'s characters (language.py), bits of a table by code point (`clause_table`): a clause
# mark alone splits; a space (regex's \s, which `_REGEX_SPACE` spells out) splits with a dash and a space
# after it, or with an apostrophe after it; an apostrophe before a space or the span's end splits
CLAUSE_MARK = 1
CLAUSE_SPACE = 2
CLAUSE_DASH = 4


def clause_table() -> np.ndarray:
    marks = [ord(c) for c in ',;:()[]{}“”„"«»‹›「」']
    spaces = [*range(9, 14), 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    dashes = [ord(c) for c in "–—-"]
    table = np.zeros(max(marks + spaces + dashes) + 1, dtype=np.uint8)
    for chars, bit in ((marks, CLAUSE_MARK), (spaces, CLAUSE_SPACE), (dashes, CLAUSE_DASH)):
        table[chars] |= bit
    return table


CLAUSE_TABLE = clause_table()


@numba.njit(cache=True, nogil=True, inline="always")
def _clause_bits(c: np.uint32, table: np.ndarray) -> int:
    return table[c] if c < table.size else 0


@numba.njit(cache=True, nogil=True)
def clause_spans(cps: np.ndarray, spans: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_clauses` (language.py) of each span (s, e) of `spans` over a text's code points: the pieces between
    the matches of `_CLAUSE_SPLIT_RE` searched from s to e (as ``finditer(text, s, e)``: its `$` is e), none
    when there are fewer than two. Returns them all, in order, and where each span's start (a row per
    span and one past the last: span r's are rows first[r]:first[r + 1]). `table`: CLAUSE_TABLE."""
    total = 0
    for r in range(spans.shape[0]):
        total += max(spans[r, 1] - spans[r, 0], 0) + 1
    out = np.empty((total, 2), dtype=np.int64)
    first = np.empty(spans.shape[0] + 1, dtype=np.int64)
    n_out = 0
    for r in range(spans.shape[0]):
        s = spans[r, 0]
        e = spans[r, 1]
        first[r] = n_out
        start = s
        k = s
        while k < e:
            bits = _clause_bits(cps[k], table)
            end = -1  # the match's end, if one starts at k (the alternatives in the regex's order)
            if bits & CLAUSE_MARK:
                end = k + 1
            elif bits & CLAUSE_SPACE:
                if (
                    k + 2 < e
                    and _clause_bits(cps[k + 1], table) & CLAUSE_DASH
                    and _clause_bits(cps[k + 2], table) & CLAUSE_SPACE
                ):
                    end = k + 3
                elif k + 1 < e and cps[k + 1] == 39:
                    end = k + 2
            elif cps[k] == 39 and (k + 1 == e or _clause_bits(cps[k + 1], table) & CLAUSE_SPACE):
                end = k + 1
            if end < 0:
                k += 1
                continue
            if k > start:
                out[n_out, 0] = start
                out[n_out, 1] = k
                n_out += 1
            start = end
            k = end
        if start < e:
            out[n_out, 0] = start
            out[n_out, 1] = e
            n_out += 1
        if n_out - first[r] < 2:
            n_out = first[r]  # one piece (or none): no clauses
    first[spans.shape[0]] = n_out
    return out[:n_out], first


CASE_LOWER = 1  # str.islower of the character
CASE_BLOCKS = 2  # str.istitle of the character (upper- or titlecase): the word is not str.islower
CASE_UPPER = 4  # str.isupper of the character


IS_ALPHA = 1  # str.isalpha
IN_ALPHABETS = 2  # a letter of some listed alphabet of the script


@numba.njit(cache=True, nogil=True)
def _lacks(low: np.ndarray, a: int, e: int, letter_classes: np.ndarray, odd: np.ndarray) -> bool:
    """`main in _odd_langs(word, script)` for the word low[a:e] (main with a listed alphabet): it has
    a letter main's alphabet lacks (`odd`), or a letter of the script's alphabets and a letter none
    of them has (then every alphabet lacks one)."""
    known = False
    stray = False
    for k in range(a, e):
        c = low[k]
        if c < odd.size and odd[c]:
            return True
        flags = letter_classes[c]
        if flags & IN_ALPHABETS:
            known = True
        elif flags & IS_ALPHA:
            stray = True
    return known and stray


@numba.njit(cache=True, nogil=True)
def _seen_word(low: np.ndarray, a: int, e: int, spans: np.ndarray, n: int) -> bool:
    """Is low[a:e] the same text as one of the first n spans?"""
    for k in range(n):
        s = spans[k, 0]
        if spans[k, 1] - s != e - a:
            continue
        same = True
        for q in range(e - a):
            if low[s + q] != low[a + q]:
                same = False
                break
        if same:
            return True
    return False
