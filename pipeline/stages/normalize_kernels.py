"""normalize's compiled pass: odd spaces made spaces, runs of spaces squeezed and line ends stripped in one
walk over the code points.

As a regex substitution and line by line in Python (split, lstrip and a regex per line, join, then split,
rstrip and join again) this took ~0.4 s of CPU on 40 MB of web text, most documents having a double or an
odd space somewhere; ~0.1 s so."""

from __future__ import annotations

import codecs

import numba
import numpy as np

from pipeline.stages import text_kernels  # noqa: F401  (keeps scipy.linalg out of numba's start-up)
from pipeline.stages.text_kernels import code_points

_UTF32_LE_DECODE = codecs.utf_32_le_decode


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
