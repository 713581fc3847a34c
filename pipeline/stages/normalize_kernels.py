"""normalize's compiled pass: odd spaces made spaces, runs of spaces squeezed and line ends stripped in one
walk over the code points (``squeeze_strip``); with the line breaks, zero-width characters and blank lines too
(``normalize_points``: the stage's whole work but the Unicode form and the document's trailing whitespace).

As a regex substitution and line by line in Python (split, lstrip and a regex per line, join, then split,
rstrip and join again) this took ~0.4 s of CPU on 40 MB of web text, most documents having a double or an
odd space somewhere; ~0.1 s so."""

from __future__ import annotations

import codecs
import functools

import numpy as np

from pipeline.stages import text_kernels  # noqa: F401  (keeps scipy.linalg out of numba's start-up)
from pipeline.stages.aot_kernels import numba  # (numba's njit, or the compiled kernels')
from pipeline.stages.text_kernels import code_points, not_nfc_safe

_UTF32_LE_DECODE = codecs.utf_32_le_decode
# normalize_points' table of classes by code point: one that can keep a text from being NFC; one of those the
# substitutions look for but the space (line breaks, zero-width characters, odd spaces, other controls).
NFC_UNSAFE = 1
SPECIAL = 2


@functools.cache
def classes(nfc_check: bool) -> np.ndarray:
    """``normalize_points``' table (uint8 by code point: ``SPECIAL``, and ``NFC_UNSAFE`` if ``nfc_check``)."""
    table = np.zeros(0x110000, np.uint8)
    table[:32] = SPECIAL
    table[0x85 : 0xA0 + 1] = SPECIAL
    table[0x1680 : 0x3000 + 1] = SPECIAL
    table[0xFEFF] = SPECIAL
    if nfc_check:
        table[not_nfc_safe()] |= NFC_UNSAFE
    return table


@numba.njit(cache=True, nogil=True)
def _is_odd_space(c: np.uint32) -> bool:
    # normalize's _ODD_SPACES: tab, no-break space, the Unicode spaces, ideographic space
    if c < 0xA0:
        return c == 9
    return c == 0xA0 or c == 0x1680 or (0x2000 <= c <= 0x200A) or c == 0x202F or c == 0x205F or c == 0x3000


@numba.njit(cache=True, nogil=True)
def _is_trailing(c: np.uint32) -> bool:
    # normalize's _TRAILING_CHARS: space, tab, no-break space, ideographic space
    return c == 32 or c == 9 or c == 0xA0 or c == 0x3000


@numba.njit(cache=True, nogil=True)
def squeeze_strip(cps: np.ndarray, collapse: bool, strip: bool) -> np.ndarray:
    """The code points with, ``collapse``: every odd space made a space, then per line (lines end at
    "\\n") every run of spaces after the line's first character that is not a space made one space (the
    leading ones kept); then ``strip``: the spaces, tabs, no-break and ideographic spaces at each line's
    end removed (``str.rstrip``)."""
    out = np.empty(cps.size, dtype=np.uint32)
    j = 0
    line_start = 0  # where the current line starts in ``out``
    indent = True  # still in the line's leading spaces
    for i in range(cps.size):
        c = cps[i]
        if c == 10:
            if strip:
                while j > line_start and _is_trailing(out[j - 1]):
                    j -= 1
            out[j] = c
            j += 1
            line_start = j
            indent = True
            continue
        if collapse and _is_odd_space(c):
            c = np.uint32(32)
        if c == 32:
            # (out[j - 1] is the previous character as written, or a space itself kept for its run)
            if collapse and not indent and out[j - 1] == 32:
                continue
        else:
            indent = False
        out[j] = c
        j += 1
    if strip:
        while j > line_start and _is_trailing(out[j - 1]):
            j -= 1
    return out[:j]


def squeeze_strip_text(text: str, collapse: bool, strip: bool) -> str:
    """``squeeze_strip`` of a str (lone surrogates kept)."""
    out = squeeze_strip(code_points(text), collapse, strip)
    return _UTF32_LE_DECODE(out.tobytes(), "surrogatepass")[0]


@numba.njit(cache=True, nogil=True)
def normalize_points(
    cps: np.ndarray,
    line_breaks: bool,
    remove_zero_width: bool,
    collapse: bool,
    max_blank_lines: int,
    strip_document: bool,
    table: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """The normalize stage's substitutions, with its line ends stripped, in one walk: ``line_breaks``: "\\r\\n",
    "\\r" and the Unicode line breaks made "\\n" (``_LINE_BREAKS``); ``remove_zero_width``: zero-width characters
    dropped (after that, as in the stage); ``collapse``: ``squeeze_strip``'s collapse; every line's end stripped
    (``squeeze_strip``'s strip); then at most ``max_blank_lines`` blank lines in a row (stripped, a blank line is
    empty); ``strip_document``: no blank line at the start (else at most ``max_blank_lines`` there). The trailing
    whitespace of the document (``str.rstrip``) is left to the caller. And whether no code point has ``NFC_UNSAFE``
    in ``table`` (every code point's classes: ``classes()``): a text NFC leaves as it is."""
    n = cps.size
    out = np.empty(n, dtype=np.uint32)
    j = 0
    line_start = 0  # where the current line starts in ``out``
    indent = True  # still in the line's leading spaces
    prev_space = False  # the last character written is a space
    lead = strip_document  # no line written yet but blank ones, which are dropped
    run = 0 if strip_document else 1  # line breaks in a row at the end of ``out`` (the text's start counts as one)
    marked = 0
    i = 0
    while i < n:
        c = cps[i]
        i += 1
        k = table[c]  # (one load for both questions; a branch on c >= 0x300 for the NFC one cost ~0.5 ns a character)
        marked |= k & NFC_UNSAFE
        if not (k & SPECIAL):
            # Most characters: none of those the substitutions look for, bar the space. Without branches: a
            # space after a space past the line's indentation is written and not kept (j not advanced).
            space = c == 32
            out[j] = c
            j += 1 - (collapse & space & prev_space & (not indent))
            indent = indent & space
            prev_space = space
            continue
        if line_breaks:
            if c == 13:
                c = np.uint32(10)
                if i < n and cps[i] == 10:
                    i += 1
            elif c == 0x2028 or c == 0x2029 or c == 0x85 or c == 11 or c == 12:
                c = np.uint32(10)
        if remove_zero_width and (c == 0x200B or c == 0x2060 or c == 0xFEFF):
            continue
        if c == 10:
            while j > line_start and _is_trailing(out[j - 1]):
                j -= 1
            if j == line_start:  # a blank line
                if lead or run > max_blank_lines:
                    continue
                run += 1
            else:
                run = 1
                lead = False
            out[j] = c
            j += 1
            line_start = j
            indent = True
            prev_space = False
            continue
        if collapse and _is_odd_space(c):
            c = np.uint32(32)
        space = c == 32
        if space and collapse and prev_space and not indent:
            continue
        indent = indent and space
        prev_space = space
        out[j] = c
        j += 1
    while j > line_start and _is_trailing(out[j - 1]):
        j -= 1
    return out[:j], marked == 0


def normalize_text(
    text: str,
    line_breaks: bool,
    remove_zero_width: bool,
    collapse: bool,
    max_blank_lines: int,
    strip_document: bool,
    nfc_check: bool = False,
) -> str | None:
    """``normalize_points`` of a str (lone surrogates kept), with ``str.rstrip`` if ``strip_document``; None if
    ``nfc_check`` and a code point of ``text`` can keep it from being NFC (``NFC_UNSAFE``)."""
    points = code_points(text)
    args = (line_breaks, remove_zero_width, collapse, max_blank_lines, strip_document, classes(nfc_check))
    out, nfc = normalize_points(points, *args)
    if not nfc:
        return None
    text = _UTF32_LE_DECODE(out, "surrogatepass")[0]  # (the array's buffer: no copy to bytes)
    return text.rstrip() if strip_document else text
