"""Pieces the stages' compiled kernels share: a text as an array of code points, the 64-bit FNV-1a
hash of a run of code points, and the size of an open-addressing table."""

from __future__ import annotations

import codecs
import functools
import sys
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# numba's njit, or while the compiled kernels module is valid a stand-in that gives its kernels (aot_kernels)
from pipeline.stages.aot_kernels import numba

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


def code_points(text: str) -> np.ndarray:
    """The text's code points (uint32, read-only; lone surrogates kept, so index i is ``text[i]``)."""
    kept = _kept.points
    if kept is None:
        # The codec function itself: str.encode looks the codec up by name on every call (~1 µs of ~3 µs for
        # a short text; the boilerplate stage calls this once per document).
        return np.frombuffer(_UTF32_LE(text, "surrogatepass")[0], np.uint32)
    found = kept.get(id(text))
    if found is not None and found[0] is text:
        return found[1]
    points = np.frombuffer(_UTF32_LE(text, "surrogatepass")[0], np.uint32)
    if len(text) <= KEEP_POINTS_MAX_CHARS:
        kept[id(text)] = (text, points)  # (the text too: its id is not reused while it is here)
    return points


_UTF32_LE = codecs.utf_32_le_encode
# A text's code points kept for the next stage that asks within ``keeping_code_points`` (texts up to this long:
# a batch holds ~2M characters, so at most ~8 MB of them beside the batch).
KEEP_POINTS_MAX_CHARS = 1 << 20


class _Kept(threading.local):
    points: dict[int, tuple[str, np.ndarray]] | None = None


_kept = _Kept()


@contextmanager
def keeping_code_points() -> Iterator[None]:
    """Within it (this thread), ``code_points`` of a text it gave before is that array again: the first pass runs
    the encoding stage's scan and boilerplate's part over the same batch, each of which made the array (~0.02 s of
    40 MB's 0.6 s), most texts unchanged between them."""
    previous = _kept.points
    _kept.points = {}
    try:
        yield
    finally:
        _kept.points = previous


@numba.njit(cache=True, nogil=True)
def fnv1a(cps: np.ndarray, start: int, end: int) -> np.uint64:
    """64-bit FNV-1a over code points [start, end)."""
    h = FNV_OFFSET
    for i in range(start, end):
        h = (h ^ np.uint64(cps[i])) * FNV_PRIME
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def same_run(a: np.ndarray, a0: int, b: np.ndarray, b0: int, size: int) -> bool:
    """Whether ``a[a0:a0 + size]`` equals ``b[b0:b0 + size]`` (the runs must exist): the inner compare of
    the kernels' open-addressing tables, inlined where it is called."""
    for t in range(size):  # noqa: SIM110 (a loop numba compiles; not all() over a generator)
        if a[a0 + t] != b[b0 + t]:
            return False
    return True


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` (flattened, sorted, of the same dtype) for values without NaN (np.unique counts all
    NaNs as one): numpy 2's np.unique asks ``np.ma.is_masked`` at every call, and importing numpy.ma for that
    took ~4 ms of every process's start-up."""
    ordered = np.sort(values, axis=None)
    if ordered.size < 2:
        return ordered
    first = np.empty(ordered.size, dtype=np.bool_)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


@numba.njit(cache=True, nogil=True)
def table_size(items: int) -> int:
    """A power of two at least twice ``items`` (at most half full: short probe chains), 16 at least."""
    size = 16
    while size < 2 * items:
        size *= 2
    return size


@numba.njit(cache=True, nogil=True)
def lead_positions(cps: np.ndarray, kind: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Positions of the code points whose ``kind`` is 1, or k >= 2 and the code point before them is
    one of row k - 2 of ``before`` (a table of the code points below its width)."""
    out = np.empty(cps.size, np.int64)
    n = 0
    for i in range(cps.size):
        k = kind[cps[i]]
        if k == 0:
            continue
        if k == 1 or (i > 0 and cps[i - 1] < before.shape[1] and before[k - 2, cps[i - 1]]):
            out[n] = i
            n += 1
    return out[:n]


# In ``lead_scan``'s kind table: a code point after which the text may not be NFC (unicodedata's quick check
# would not answer "yes" for it), beside the kind ``lead_positions`` reads in the low bits.
NOT_NFC_SAFE = 0x80


def _build_not_nfc_safe() -> np.ndarray:
    """The code points a text made of others is NFC without looking further: all but those whose NFC quick
    check is not "yes" or whose combining class is not 0 (an unordered pair of marks is not NFC), i.e. those
    NFC changes, the second character of any two-character canonical decomposition (NFC may compose it with
    the one before: a superset of the "maybe" ones), Hangul's vowel and trailing jamo, and the surrogates.
    For a text of the others, ``unicodedata.is_normalized("NFC", text)`` is True: its quick check says yes
    for each character and needs no normalization (~0.3 s to build; saved beside the package)."""
    second: set[int] = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for c in range(0x110000):
        mapping = unicodedata.decomposition(chr(c))
        if mapping and not mapping.startswith("<") and mapping.count(" ") == 1:
            second.add(int(mapping.split()[1], 16))
    unsafe = [
        c
        for c in range(0x110000)
        if 0xD800 <= c < 0xE000
        or c in second
        or unicodedata.combining(chr(c))
        or unicodedata.normalize("NFC", chr(c)) != chr(c)
    ]
    return np.array(unsafe, dtype=np.uint32)


@functools.cache
def not_nfc_safe() -> np.ndarray:
    """``_build_not_nfc_safe()``, from the copy an earlier process saved (``base.cached_table``)."""
    from pipeline.stages.base import CACHE_DIR, cached_table  # (pydantic: not at the kernels' import)

    return cached_table(CACHE_DIR, "encoding_not_nfc_safe", _build_not_nfc_safe, sys.modules[__name__])


def nfc_by_line(text: str, table: np.ndarray, bit: int) -> str:
    """``unicodedata.normalize("NFC", text)``, applied only to the lines with a code point of ``not_nfc_safe()``,
    those with ``bit`` in ``table`` (by code point: the caller's, e.g. ``lead_scan``'s, which holds it): NFC leaves
    the other lines as they are, and never composes or reorders across "\\n" (a starter that composes with
    nothing). (~13 ns a character for unicodedata on a text with a "maybe" character; on web text the lines with
    a marked one were 19 % of such texts' characters.)"""
    points = code_points(text)
    marked = np.flatnonzero(table[points] & bit)
    if marked.size == 0:
        return text
    breaks = np.flatnonzero(points == 10)
    out: list[str] = []
    pos = 0
    lines = np.searchsorted(breaks, marked)  # (the line of each, ascending: the breaks before it)
    for line in distinct_sorted(lines).tolist():
        start = int(breaks[line - 1]) + 1 if line > 0 else 0
        end = int(breaks[line]) + 1 if line < breaks.size else len(text)
        out.append(text[pos:start])
        out.append(unicodedata.normalize("NFC", text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


@numba.njit(cache=True, nogil=True)
def lead_scan(cps: np.ndarray, kind: np.ndarray, before: np.ndarray) -> tuple[np.ndarray, bool]:
    """``lead_positions`` of ``kind & ~NOT_NFC_SAFE``, and whether no code point has NOT_NFC_SAFE: the same
    pass answers both (a separate check of every character cost about what it saved)."""
    out = np.empty(cps.size, np.int64)
    n = 0
    safe = True
    for i in range(cps.size):
        k = kind[cps[i]]
        if k == 0:
            continue
        if k >= NOT_NFC_SAFE:
            safe = False
            k -= NOT_NFC_SAFE
            if k == 0:
                continue
        if k == 1 or (i > 0 and cps[i - 1] < before.shape[1] and before[k - 2, cps[i - 1]]):
            out[n] = i
            n += 1
    return out[:n], safe
