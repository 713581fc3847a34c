"""Where each removed span was in the document's input text: ``start`` and ``end`` in removed.jsonl.

A stage records a removal with offsets into the text it saw (``Removal.start`` / ``end``). The runner
(``after_stage``, called once per document and stage that changed it) turns them into offsets into the
input text, through the edits the earlier stages made, and adds the stage's own edits to the document's
map. The map is a list of edits of the input text, ``(a, b, n)``: ``input[a:b]`` became ``n`` characters
of the current text (a removed line with its newline: ``n == 0``; an encoding repair: the repaired
characters). It lives in ``doc.scratch[MAP]`` (travelling with the document between processes) and is
absent while the text is the input text, so that the first stage to cut (boilerplate, on nearly every
page) costs nothing more here.

A stage that knows exactly what it cut (the newline with a removed line) says so with ``note_cuts``;
for other stages the cuts are found by aligning the text before and after with the removed spans
(``_cuts_from_spans``), and a text change without removals (encoding) by ``_cuts_from_diff``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate, compress
from operator import add, ne, sub
from typing import Any

from pipeline.document import Document, Removal

MAP = "offsets:map"  # doc.scratch: (a, b, n) lists, the edits of the input text so far
CUTS = "offsets:cuts"  # doc.scratch: (starts, ends, lengths) a stage noted for its own change
LOST = "offsets:lost"  # doc.scratch: the text changed in a way not aligned: later spans get no offsets

Edits = tuple[list[int], list[int], list[int]]


def note_cuts(doc: Document, starts: Sequence[int], ends: Sequence[int], lengths: Sequence[int] | None = None) -> None:
    """What a stage cut from ``doc.text`` (offsets into the text it saw, in order, not overlapping):
    ``text[starts[i]:ends[i]]`` became ``lengths[i]`` characters (0 if not given: removed)."""
    if not len(starts):
        return  # nothing cut (the runner reads the cuts of a stage that recorded a removal)
    doc.scratch[CUTS] = (list(starts), list(ends), [0] * len(starts) if lengths is None else list(lengths))


def removed_lines_at(
    doc: Document, lines: list[str], verdict: list[Any], texts: list[str]
) -> tuple[list[int], list[int]]:
    """Offsets of the removed lines (``verdict[i]`` true; ``texts``: their recorded text) in ``doc.text``
    (``lines``: its split on newlines), and the cuts noted: each removed line with the newline after it
    (the last line of the text has none), as a stage that keeps the other lines joined by newlines cuts
    them. C-level passes only: a page has hundreds of removed lines, 40 MB of web text 330k."""
    at = list(accumulate(map((1).__add__, map(len, lines)), initial=0))  # where each line starts
    starts = list(compress(at, verdict))
    ends = list(map(add, starts, map(len, texts)))
    cut_ends = list(compress(at[1:], verdict))  # the next line's start
    if verdict[-1]:
        cut_ends[-1] -= 1  # the last line has no newline after it
    # runs of removed lines as one cut each: shorter maps for the later stages to go through
    new_run = list(map(ne, starts[1:], cut_ends[:-1]))
    run_starts = [starts[0], *compress(starts[1:], new_run)]
    doc.scratch[CUTS] = (run_starts, [*compress(cut_ends, new_run), cut_ends[-1]], [0] * len(run_starts))
    return starts, ends


def after_stage(doc: Document, before: str, removals: list[Removal], last: bool = False) -> None:
    """Offsets into the input text for the stage's ``removals`` (given into ``before``, the text it saw),
    and the stage's edits added to the document's map (not after the ``last`` stage: nothing reads it)."""
    scratch = doc.scratch
    cuts = scratch.pop(CUTS, None) if scratch else None
    lost = LOST in scratch if scratch else False
    edits = scratch.get(MAP) if scratch else None
    changed = not (last or lost or doc.rejected is not None or doc.text == before)
    if removals and (removals[0].start is None or removals[-1].start is None):
        _locate(before, removals)  # a stage that gave no offsets (a user's): found by their text
    if changed and cuts is None:  # from the spans as the stage gave them, before they are mapped
        cuts = _cuts_from_spans(before, doc.text, removals) if removals else _cuts_from_diff(before, doc.text)
    needed = edits is not None and (removals or (changed and cuts is not None))
    where = _where(edits) if needed else None  # the edits' characters in the current text
    if removals and (where is not None or lost):
        _to_input(removals, edits, where, lost)
    if not changed:
        return
    if cuts is None:
        scratch[LOST] = True
        scratch.pop(MAP, None)
    else:
        scratch[MAP] = cuts if edits is None or where is None else _compose(edits, where, cuts)


def _locate(before: str, removals: list[Removal]) -> None:
    """Offsets for removals without them: each span's text found after the one before it (stages record
    their spans in text order); the alignment of the text before and after then checks them."""
    pos = 0
    for r in removals:
        if r.start is not None:
            pos = r.end if r.end is not None else pos
            continue
        at = before.find(r.text, pos)
        if at < 0:
            at = before.find(r.text)
        if at >= 0 and r.text:
            r.start, r.end = at, at + len(r.text)
            pos = r.end


def _where(edits: Edits) -> tuple[list[int], list[int]]:
    """Where each edit's characters start and end in the current text (C-level passes: a page has hundreds)."""
    a, b, n = edits
    starts = list(map(add, a, accumulate(map(sub, n, map(sub, b, a)), initial=0)))
    return starts, list(map(add, starts, n))


def _to_input(
    removals: list[Removal], edits: Edits | None, where: tuple[list[int], list[int]] | None, lost: bool
) -> None:
    if lost or edits is None or where is None:
        for r in removals:
            r.start = r.end = None
        return
    a, b, _ = edits
    cs, ce = where
    for r in removals:
        if r.start is None or r.end is None:
            continue
        r.start = _map_start(r.start, cs, ce, a, b)
        r.end = _map_end(r.end, cs, ce, a, b)


def _map_start(c: int, cs: list[int], ce: list[int], a: list[int], b: list[int]) -> int:
    """The input offset of a span starting at ``c`` of the current text (inside an edit's characters:
    where the edit starts)."""
    i = bisect.bisect_right(cs, c) - 1
    if i < 0:
        return c
    return a[i] if c < ce[i] else b[i] + (c - ce[i])


def _map_end(c: int, cs: list[int], ce: list[int], a: list[int], b: list[int]) -> int:
    """The input offset of a span ending at ``c`` (inside an edit's characters: where the edit ends)."""
    i = bisect.bisect_left(cs, c) - 1
    if i < 0:
        return c
    return b[i] if c <= ce[i] else b[i] + (c - ce[i])


def _compose(edits: Edits, where: tuple[list[int], list[int]], cuts: Edits) -> Edits:
    """The map after a stage: its ``cuts`` (offsets into the current text) as edits of the input text,
    merged with the ``edits`` before them (an old edit a cut reaches into or covers becomes part of it)."""
    a, b, n = edits
    cs, ce = where
    # The cuts in the current text, widened to the whole of an old edit they start or end inside, and
    # joined where they then touch: [start, end, characters cut, characters put].
    groups: list[list[int]] = []
    for s, e, m in zip(*cuts, strict=True):
        i = bisect.bisect_right(cs, s) - 1
        start = cs[i] if i >= 0 and cs[i] < s < ce[i] else s
        j = bisect.bisect_left(cs, e) - 1
        end = ce[j] if j >= 0 and e < ce[j] else e
        if groups and start <= groups[-1][1]:
            group = groups[-1]
            group[1] = max(group[1], end)
            group[2] += e - s
            group[3] += m
        else:
            groups.append([start, end, e - s, m])
    out_a: list[int] = []
    out_b: list[int] = []
    out_n: list[int] = []

    def put(x: int, y: int, m: int) -> None:
        if out_b and out_b[-1] == x:  # touching the edit before: one edit
            out_b[-1] = y
            out_n[-1] += m
        else:
            out_a.append(x)
            out_b.append(y)
            out_n.append(m)

    k, total = 0, len(a)
    for start, end, cut, put_in in groups:
        first = bisect.bisect_left(cs, start, k)  # the old edits before the group are copied as they are
        out_a += a[k:first]
        out_b += b[k:first]
        out_n += n[k:first]
        k = first
        prev_ce, prev_b = (ce[k - 1], b[k - 1]) if k else (0, 0)  # the last old edit before here
        in_s = a[k] if k < total and cs[k] == start and ce[k] <= end else prev_b + (start - prev_ce)
        while k < total and ce[k] <= end:  # inside the group: absorbed
            prev_ce, prev_b = ce[k], b[k]
            k += 1
        put(in_s, prev_b + (end - prev_ce), (end - start) - cut + put_in)
    if k < total:
        put(a[k], b[k], n[k])
        out_a += a[k + 1 :]
        out_b += b[k + 1 :]
        out_n += n[k + 1 :]
    return out_a, out_b, out_n


# ---------------------------------------------------------------- finding a stage's cuts


def _cuts_from_spans(before: str, after: str, removals: list[Removal]) -> Edits | None:
    """The cuts that make ``after`` from ``before``: each removed span, widened by the spaces and line
    breaks its stage took beside it (and a space it put in their place); None if the text is not
    ``before`` with those spans cut (the stage changed something else)."""
    spans = [(r.start, r.end) for r in removals]
    if any(s is None or e is None for s, e in spans):
        return None
    spans.sort()
    starts: list[int] = []
    ends: list[int] = []
    lengths: list[int] = []
    pos = j = 0
    for s, e in [*spans, (len(before), len(before))]:
        if s < pos:
            return None  # overlapping spans
        piece = before[pos:s]
        fit = _fit(piece, after, j, final=s == len(before))
        if fit is None:
            return None
        lead, trail, inserted = fit
        if (lead or inserted) and starts and ends[-1] == pos:
            ends[-1] += lead
            lengths[-1] += inserted
        elif lead or inserted:
            starts.append(pos)
            ends.append(pos + lead)
            lengths.append(inserted)
        j += inserted + len(piece) - lead - trail
        if s < len(before) or trail:
            cut_start = s - trail
            if starts and ends[-1] == cut_start:
                ends[-1] = e
            else:
                starts.append(cut_start)
                ends.append(e)
                lengths.append(0)
        pos = e
    return (starts, ends, lengths) if j == len(after) else None


def _fit(piece: str, after: str, j: int, final: bool) -> tuple[int, int, int] | None:
    """How the kept ``piece`` lands at ``after[j:]``: (whitespace taken from its start, from its end,
    spaces put before it), fewest changes first."""
    n = len(piece)
    leading, trailing = n - len(piece.lstrip()), n - len(piece.rstrip())
    for total in range(leading + trailing + 1):
        for lead in range(min(total, leading) + 1):
            trail = total - lead
            if trail > trailing or lead + trail > n:
                continue
            core = piece[lead : n - trail]
            for inserted in (0, 1):
                at = j + inserted
                if inserted and not after.startswith(" ", j):
                    break
                if after.startswith(core, at) and (not final or at + len(core) == len(after)):
                    return lead, trail, inserted
    return None


def _cuts_from_diff(before: str, after: str) -> Edits:
    """A change without removals (encoding repairs: a few characters here and there, "Ã©" to "é",
    "&mdash;" to "—") as cuts, in one pass: the common run, then the nearest point where the two texts agree
    again (``_resync``). Any such script is exact (only equal text is matched); a change it cannot resync
    within a few thousand characters is one cut to the end. (difflib took ~1 s of CPU per 10 MB of web text.)"""
    starts: list[int] = []
    ends: list[int] = []
    lengths: list[int] = []
    i = j = 0
    nx, ny = len(before), len(after)
    while True:
        same = _common_run(before, i, after, j)
        i, j = i + same, j + same
        if i == nx and j == ny:
            break
        di, dj = _resync(before, i, after, j)
        starts.append(i)
        ends.append(i + di)
        lengths.append(dj)
        i, j = i + di, j + dj
    return starts, ends, lengths


def _common_run(x: str, i: int, y: str, j: int) -> int:
    """How many characters ``x[i:]`` and ``y[j:]`` share at their start (slices compared in C, galloping)."""
    n = min(len(x) - i, len(y) - j)
    same, step = 0, 256
    while same < n:
        k = min(step, n - same)
        if x[i + same : i + same + k] == y[j + same : j + same + k]:
            same += k
            step *= 2
        elif k == 1:
            break
        else:
            step = k // 2
    return same


_ANCHOR = 6  # characters the two texts must agree on after a change


def _resync(x: str, i: int, y: str, j: int) -> tuple[int, int]:
    """(characters of ``x``, of ``y``) from ``i``, ``j`` to where they agree again, fewest first."""
    nx, ny = len(x) - i, len(y) - j
    for total in range(1, 40):
        for di in range(min(total, nx) + 1):
            dj = total - di
            if dj > ny:
                continue
            k = min(_ANCHOR, nx - di, ny - dj)
            agree = k == _ANCHOR or (di + k == nx and dj + k == ny)  # an anchor, or both ends together
            if agree and x[i + di : i + di + k] == y[j + dj : j + dj + k]:
                return di, dj
    for dj in range(0, min(ny, 256)):
        at = x.find(y[j + dj : j + dj + 16], i, i + 4096) if ny - dj >= 16 else -1
        if at >= 0:
            return at - i, dj
    return nx, ny


def offsets_of(record: dict[str, Any]) -> tuple[int, int] | None:
    """A removed.jsonl record's (start, end), if it has them (records of earlier versions have none)."""
    s, e = record.get("start"), record.get("end")
    if isinstance(s, int) and isinstance(e, int) and not isinstance(s, bool) and not isinstance(e, bool) and s <= e:
        return s, e
    return None
