"""OUTDIR/report.html: one self-contained page describing a run, for a person to look at.

Rendered from report.json's dict plus a bounded look at the audit files (removed.jsonl, rejected.jsonl)
and, for a few sample documents, the input and output files. Charts are inline SVG drawn here; no
network, no external files; a few lines of optional JavaScript add copy buttons to commands.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import shlex
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import yaml
import zstandard

from pipeline.config import InputConfig
from pipeline.io import (
    ZSTD_MAGIC,
    AtomicFile,
    InputFile,
    document_place,
    input_format,
    read_documents,
    txt_output_texts,
)
from pipeline.report import place_removals, reason_kind

# Bounds: the page must stay cheap for a corpus of any size.
MAX_AUDIT_LINES = 5000  # lines read from the start of each audit file
MAX_AUDIT_BYTES = 64 * 1024 * 1024  # bytes read from each audit file
MAX_SCAN_DOCS = 20_000  # documents read from an input/output file looking for the samples
SAMPLE_DOCS = 3  # before/after documents with removed spans
SAMPLE_REJECTED = 1  # rejected documents shown
DOC_CHARS = 4000  # characters of a sample document shown
CONTEXT = 160  # unchanged characters shown next to a removed span
TOP_RULES = 15
TOP_LANGUAGES = 12
TOP_CLUSTERS = 5

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
STAGE_COLORS = {
    "input": "#555555",
    "encoding": "#0072B2",
    "boilerplate": "#E69F00",
    "language": "#009E73",
    "dedup": "#CC79A7",
    "normalize": "#56B4E9",
}
OTHER_COLORS = ["#D55E00", "#332288", "#882255", "#117733", "#999933"]
OTHERS_COLOR = "#9e9e9e"  # a bar that merges the smaller items


def write_html_report(
    report: dict[str, Any],
    outdir: Path,
    sources: Mapping[str, str | Path] | None = None,
    audit_files: AuditFiles | None = None,
    prepared: Callable[[dict[str, Any]], str] | None = None,
) -> Path:
    """Write OUTDIR/report.html atomically and return its path.

    ``sources`` maps input names (the ``source`` of audit records) to input paths, for the
    before/after samples; by default they come from the run's state database. ``audit_files``: the
    run's own audit records (removed, rejected), so that an incremental run shows its documents, not the
    start of the audit files every run appends to; by default those files. ``prepared``: what
    ``prepare_html`` made of the run's files (then ``sources`` and ``audit_files`` are not read again).
    """
    outdir = Path(outdir)
    page = (prepared or prepare_html(report, outdir, sources, audit_files))(report)
    path = outdir / "report.html"
    out = AtomicFile(path)
    try:
        out.write(page.encode("utf-8"))
        out.commit()
    except BaseException:
        out.abort()
        raise
    return path


# ---------------------------------------------------------------- small helpers


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _change(before: int, after: int, what: str, share: bool = False) -> str:
    """'1,000 → 900 (−100 removed, −10.0%)'; just '1,000 → 1,000' when nothing changed."""
    diff = before - after
    if diff == 0:
        return f"{_num(before)} → {_num(after)}"
    detail = f"{_num(diff)} {what}" if diff > 0 else f"+{_num(-diff)} added"
    if share:
        detail += f", {_pct(abs(diff), before)}"
    return f"{_num(before)} → {_num(after)} ({detail})"


def _num(value: float) -> str:
    """Numbers as people read them: 12,345 or 0.17."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.4f}"


def _pct(part: float, whole: float) -> str:
    share = part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"


def _plural(n: int, word: str, plural: str | None = None) -> tuple[str, str]:
    """(number, word) with the word in the singular for 1: ("1", "copy"), ("2", "copies")."""
    return _num(n), word if n == 1 else plural or word + "s"


def _count(n: int, word: str, plural: str | None = None) -> str:
    return " ".join(_plural(n, word, plural))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _color(stage: str, order: list[str]) -> str:
    if stage in STAGE_COLORS:
        return STAGE_COLORS[stage]
    index = order.index(stage) if stage in order else len(order)
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _explain_cmd(doc_id: str, outdir: Path, source: Any = None, line: Any = None) -> str:
    """The command showing this document: with its input file (and line), as ids are often shared by
    documents of several files, or of one file (without them, explain shows each document with the id)."""
    cmd = f"cleancorpus explain {shlex.quote(doc_id)} -o {shlex.quote(str(outdir))}"
    if isinstance(source, str) and source:
        cmd += f" --source {shlex.quote(source)}"
        if isinstance(line, int) and not isinstance(line, bool) and line > 0:
            cmd += f" --line {line}"
    return f'<code class="cmd">{_esc(cmd)}</code>'


# ---------------------------------------------------------------- charts


@dataclass
class Bar:
    label: str
    value: float  # the solid segment (kept, or the value itself)
    rest: float = 0.0  # a light segment after it (removed / rejected)
    color: str = "#0072B2"
    note: str = ""  # the numbers printed after the bar
    tip: str = ""  # tooltip
    data: dict[str, Any] = field(default_factory=dict)  # extra data- attributes for machines


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    bars: list[Bar],
    legend: Iterable[tuple[str, str]] = (),
    width: int = 900,
) -> str:
    """A horizontal bar chart as inline SVG with a visible title, labels and numbers on every bar."""
    row_h, bar_h, top = 26, 16, 8
    legend = list(legend)
    if legend:
        top += 22
    label_chars = max((len(_short(b.label, 36)) for b in bars), default=4)
    note_chars = max((len(b.note) for b in bars), default=4)
    label_w = min(max(7 * label_chars + 16, 70), 270)
    note_w = min(7.2 * note_chars + 12, 360)
    area = width - label_w - note_w
    scale = max((b.value + max(b.rest, 0) for b in bars), default=0) or 1
    height = top + row_h * len(bars) + 6
    out = [
        f'<figure class="chart" id="chart-{_esc(chart_id)}">',
        f'<h3 class="chart-title">{_esc(title)}</h3>',
        f'<svg class="bars" data-chart="{_esc(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{_esc(chart_id)}-t {_esc(chart_id)}-d">',
        f'<title id="{_esc(chart_id)}-t">{_esc(title)}</title><desc id="{_esc(chart_id)}-d">{_esc(desc)}</desc>',
    ]
    x = label_w
    for color_, text in legend:
        out.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{_esc(color_)}"/>')
        out.append(f'<text x="{x + 17}" y="16.5" class="legend">{_esc(text)}</text>')
        x += 30 + 7 * len(text)
    for i, b in enumerate(bars):
        y = top + i * row_h
        w_value = area * max(b.value, 0) / scale
        w_rest = area * max(b.rest, 0) / scale
        if b.value > 0:
            w_value = max(w_value, 1.5)  # a tiny value stays visible
        if b.rest > 0:
            w_rest = max(w_rest, 1.5)
        attrs = "".join(f' data-{_esc(k)}="{_esc(v)}"' for k, v in b.data.items())
        tip = f"<title>{_esc(b.tip or b.label + ': ' + b.note)}</title>"
        out.append(
            f'<g class="row" data-label="{_esc(b.label)}" data-value="{_esc(b.value)}" data-rest="{_esc(b.rest)}"'
            f"{attrs}>{tip}"
        )
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 3}" text-anchor="end" class="lbl">'
            f"{_esc(_short(b.label, 36))}</text>"
        )
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w_value:.1f}" height="{bar_h}" '
            f'fill="{_esc(b.color)}" rx="2"/>'
        )
        if w_rest:
            out.append(
                f'<rect class="bar rest" x="{label_w + w_value:.1f}" y="{y}" width="{w_rest:.1f}" '
                f'height="{bar_h}" fill="{_esc(b.color)}" fill-opacity="0.25" stroke="{_esc(b.color)}" '
                'stroke-width="1" stroke-dasharray="3 2" rx="2"/>'
            )
        out.append(
            f'<text x="{label_w + w_value + w_rest + 6:.1f}" y="{y + bar_h - 3}" class="num">{_esc(b.note)}</text>'
        )
        out.append("</g>")
    out.append("</svg></figure>")
    return "\n".join(out)


# ---------------------------------------------------------------- audit files


def _lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """The lines of audit files: removed.jsonl and rejected.jsonl, or the state folder's parts of this run's
    files, which are zstd-compressed (a damaged one is read as far as it goes: the report shows samples)."""
    for path in paths:
        if path.is_file():
            with open(path, "rb") as fh:
                if fh.read(4) != ZSTD_MAGIC:
                    fh.seek(0)
                    yield from fh
                    continue
                fh.seek(0)
                reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=False)
                with contextlib.suppress(zstandard.ZstdError), io.BufferedReader(reader) as lines:  # type: ignore[arg-type]
                    yield from lines


def _audit_records(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The first records of audit files (one after the other), streamed, within the line and byte bounds."""
    budget = MAX_AUDIT_BYTES
    for line in islice(_lines(paths), MAX_AUDIT_LINES):
        budget -= len(line)
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            yield record
        if budget <= 0:
            return


@dataclass
class _Cluster:
    original: str  # the document holding the kept copy
    text: str
    rule: str
    source: Any = None  # its input file and line (records of earlier versions: none)
    line: Any = None
    copies: list[str] = field(default_factory=list)  # documents a copy was removed from
    places: list[tuple[Any, Any]] = field(default_factory=list)  # their (source, line), in the same order


@dataclass
class Audit:
    removed_read: int = 0
    rejected_read: int = 0
    # (source, id, line) -> records: ids are often shared by documents of several files, or of one
    removals: dict[tuple[str, str, int | None], list[dict[str, Any]]] = field(default_factory=dict)
    clusters: dict[tuple[Any, ...], _Cluster] = field(default_factory=dict)  # (original, its place, text) -> cluster
    # (original id, input file, line) -> the records of its rejected copies
    duplicate_docs: dict[tuple[str, Any, Any], list[dict[str, Any]]] = field(default_factory=dict)
    rejected_samples: list[dict[str, Any]] = field(default_factory=list)


# The fields of a removed.jsonl record the page reads.
_KEYS = ("stage", "rule", "start", "end", "text", "language", "duplicate_of")

AuditFiles = tuple[Sequence[Path], Sequence[Path]]  # (removed, rejected) records to read, in order


def read_audit(outdir: Path, files: AuditFiles | None = None) -> Audit:
    """What the report shows of the audit records: those of ``files`` (the run's own), else the start of
    OUTDIR's removed.jsonl and rejected.jsonl."""
    removed, rejected = files if files is not None else ([outdir / "removed.jsonl"], [outdir / "rejected.jsonl"])
    audit = Audit()
    for record in _audit_records(removed):
        audit.removed_read += 1
        line = record.get("line")
        key = (str(record.get("source", "")), record["id"], line if isinstance(line, int) else None)
        removals = audit.removals.setdefault(key, [])
        if len(removals) < 200:  # enough to mark a sample; bounds memory for pathological documents
            # The record itself: the page reads only these fields of it, by .get() but for "stage" and "rule"
            # (a copy of the seven per record was ~0.7 µs, ~3.5 ms of a CC run's page); a record lacking
            # those two (not written by this program) gets them as None, as the copy had them.
            removals.append(record if "stage" in record and "rule" in record else {k: record.get(k) for k in _KEYS})
        original = record.get("duplicate_of")
        if isinstance(original, str) and isinstance(record.get("text"), str):
            text = record["text"].strip()
            where = (record.get("duplicate_source"), record.get("duplicate_line"))
            cluster = audit.clusters.setdefault(
                (original, *where, text), _Cluster(original, _short(text, 600), str(record.get("rule", "")), *where)
            )
            cluster.copies.append(record["id"])
            cluster.places.append((record.get("source"), record.get("line")))
    for record in _audit_records(rejected):
        audit.rejected_read += 1
        slim = {k: record.get(k) for k in ("id", "source", "line", "stage", "reason", "duplicate_of", "jaccard")}
        if isinstance(record.get("duplicate_of"), str):
            key = (record["duplicate_of"], record.get("duplicate_source"), record.get("duplicate_line"))
            audit.duplicate_docs.setdefault(key, []).append(slim)
        elif record.get("stage") != "input" and len(audit.rejected_samples) < SAMPLE_REJECTED:
            text = record.get("text") if isinstance(record.get("text"), str) else ""
            audit.rejected_samples.append(slim | {"text": text[: DOC_CHARS + 1]})
    return audit


def pick_samples(audit: Audit, count: int = SAMPLE_DOCS) -> list[tuple[str, str, int | None]]:
    """Documents that together show the most stages at work (then the most removals), in audit order."""
    chosen: list[tuple[str, str, int | None]] = []
    covered: set[str] = set()
    # (key, its stages, its removals up to 20) per document: the stages found once, not once per sample chosen
    candidates = [
        (key, {r["stage"] for r in removals}, min(len(removals), 20)) for key, removals in audit.removals.items()
    ]

    def score(item: tuple[tuple[str, str, int | None], set[str], int], covered: set[str]) -> tuple[int, int, int]:
        _, stages, removals = item
        return (len(stages - covered), len(stages), removals)

    while candidates and len(chosen) < count:
        best = max(candidates, key=partial(score, covered=covered))  # max keeps the first of equals: audit order
        candidates.remove(best)
        chosen.append(best[0])
        covered |= best[1]
    return chosen


def _state_sources(report: dict[str, Any]) -> dict[str, str]:
    """Input paths recorded in the state (read-only: the run may still hold it)."""
    folder = (report.get("state") or {}).get("folder")
    if not folder:
        return {}
    db = (Path(folder) / "state.sqlite").resolve()
    if not db.is_file():
        return {}
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT source, path FROM files").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def _find_texts(
    path: Path, source: str, ids: set[str], cfg: InputConfig, last_line: int | None = None, output: bool = False
) -> dict[tuple[str, int | None], str]:
    """Texts of the documents of one file with the given ids, by (id, line), reading at most MAX_SCAN_DOCS
    documents, and none after line ``last_line`` when it is given (the samples come from the start of the
    audit: reading the rest of a 40 MB input took 0.13 s of the page's 0.29). An ``output`` of this program
    (JSONL, as ``OutputWriter`` writes it) is read whole, to find ids that several documents have, but only
    its lines that can hold one of ``ids`` are parsed (``_id_lines``)."""
    fmt = input_format(path)
    if fmt is None or not path.is_file():
        return {}
    wanted = _id_lines(ids, cfg.id_field) if output else None
    found: dict[tuple[str, int | None], str] = {}
    for doc in islice(read_documents(InputFile(path, source, *fmt), cfg, wanted), MAX_SCAN_DOCS):
        if doc.id in ids and not doc.rejected:
            found.setdefault((doc.id, doc.line_no or None), doc.original)
        if last_line is not None and doc.line_no and doc.line_no >= last_line:
            break
    return found


def _odd_id(doc_id: str) -> bool:
    """Whether a document's id may have been read from something other than a JSON string or integer: a
    float, true/false, a list or object (as JSON), none at all (the reader's "file:line"), or holds what JSON
    escapes. The line of such a document need not hold the id as ``_id_lines`` looks for it."""
    if doc_id in ("True", "False") or doc_id[:1] in "[{" or ":" in doc_id or _JSON_ESCAPED.search(doc_id):
        return True
    if doc_id.lstrip("-").isdigit():
        return False
    try:
        float(doc_id)
    except ValueError:
        return False
    return True


_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _id_lines(ids: set[str], id_field: str) -> Callable[[bytes], bool] | None:
    """A test of the output lines (compact JSON written by orjson) that can hold a document with one of ``ids``:
    those with ``"ID_FIELD":`` then the id as a JSON string or, for digits, as an integer. The first
    MAX_SCAN_DOCS lines are tested, no later one (as many documents as the reader yields unfiltered). None
    (parse every line) where an id may have come from another JSON value (``_odd_id``)."""
    if any(map(_odd_id, ids)):
        return None
    key = orjson.dumps(id_field) + b":"
    needles = [key + orjson.dumps(i) for i in ids] + [key + i.encode() for i in ids if i.lstrip("-").isdigit()]
    # One search for any of them: the regex engine looks for their common start and tries each there (a
    # substring test per needle scanned each line once per needle: ~0.02 s for 26 MB of output and 5 ids; ~0.007).
    found = re.compile(b"|".join(map(re.escape, needles))).search
    tested = 0

    def wanted(line: bytes) -> bool:
        nonlocal tested
        tested += 1
        return tested <= MAX_SCAN_DOCS and found(line) is not None

    return wanted


# ---------------------------------------------------------------- spans


def marked_html(
    before: str, removals: list[dict[str, Any]], order: list[str], limit: int = DOC_CHARS, doc_id: str | None = None
) -> str:
    """The text with each removed span highlighted and labelled. Long unchanged stretches are cut to
    CONTEXT characters around the spans, so the removals are on screen; at most ``limit`` characters
    of removed and context text are shown."""
    spans, missing = place_removals(before, removals, doc_id)
    unplaced = len(missing)
    out: list[str] = []
    shown = pos = 0

    def unchanged(text: str, lead: bool, tail: bool) -> str:
        """Kept text between spans: its ends next to spans, the middle summarised."""
        keep_head, keep_tail = (0 if lead else CONTEXT), (0 if tail else CONTEXT)
        if len(text) <= keep_head + keep_tail + 80:
            return _esc(text)
        head_end, tail_start = keep_head, len(text) - keep_tail
        # Cut at a line end, else a space, nearby: the context reads as whole lines or words.
        for sep in ("\n", " "):
            cut = text.rfind(sep, 0, head_end)
            if cut > keep_head // 3:
                head_end = cut
                break
        for sep in ("\n", " "):
            cut = text.find(sep, tail_start)
            if cut != -1 and cut < len(text) - keep_tail // 3:
                tail_start = cut + 1
                break
        cut = tail_start - head_end
        gap = f'<span class="gap">⋯ {_num(cut)} unchanged characters ⋯</span>'
        return _esc(text[:head_end]) + ("\n" if keep_head else "") + gap + "\n" + _esc(text[tail_start:])

    for i, (start, end, r) in enumerate(spans):
        if shown >= limit:
            rest = len(spans) - i
            out.append(f'\n<span class="more">… and {_num(rest)} more removed {_plural(rest, "span")[1]}</span>')
            pos = len(before)
            break
        gap = unchanged(before[pos:start], lead=i == 0, tail=False)
        out.append(gap)
        label = f"{r.get('stage')}/{r.get('rule')}"
        color = _color(str(r.get("stage")), order)
        text = before[start:end]
        if len(text) > CONTEXT * 3:  # a huge removal: its ends are enough
            text_html = _esc(text[:CONTEXT]) + f"<i> ⋯ {_num(len(text) - 2 * CONTEXT)} characters ⋯ </i>"
            text_html += _esc(text[-CONTEXT:])
        else:
            text_html = _esc(text)
        out.append(
            f'<del class="rm" style="--c:{_esc(color)}" title="removed by {_esc(label)}" '
            f'data-stage="{_esc(r.get("stage"))}">{text_html}</del>'
            f'<span class="tag" style="--c:{_esc(color)}">{_esc(label)}</span>'
        )
        shown += min(len(text), 3 * CONTEXT) + min(start - pos, 2 * CONTEXT)
        pos = end
    if pos < len(before):
        out.append(unchanged(before[pos:], lead=not spans, tail=True) if spans else _esc(_short(before, limit)))
    if unplaced:
        out.append(f'\n<span class="more">{unplaced} removed spans not found verbatim in the input</span>')
    return "".join(out)


# ---------------------------------------------------------------- sections


def _stage_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report.get("stages", []) if isinstance(s, dict)]


def _summary(report: dict[str, Any], outdir: Path) -> str:
    docs, chars, inputs = report.get("documents", {}), report.get("characters", {}), report.get("inputs", {})

    def val(key: str, value: Any) -> str:
        return f'<span class="v" data-key="{_esc(key)}" data-value="{_esc(value)}">{_esc(_num(value))}</span>'

    removed_share = _pct(chars.get("removed", 0), chars.get("in", 0))
    processed, all_files = (
        val("inputs.processed", inputs.get("processed", 0)),
        val("inputs.files", inputs.get("files", 0)),
    )
    files = f"{processed} processed of {all_files}"
    if inputs.get("unchanged_skipped"):
        files += f" ({val('inputs.unchanged_skipped', inputs['unchanged_skipped'])} unchanged, skipped)"
    return f"""
<dl class="cards">
<div class="card"><dt>Documents</dt><dd>{val("documents.in", docs.get("in", 0))} in →
 {val("documents.out", docs.get("out", 0))} kept</dd>
<dd class="sub">{val("documents.rejected", docs.get("rejected", 0))} rejected,
 {val("documents.quarantined", docs.get("quarantined", 0))} quarantined</dd></div>
<div class="card"><dt>Characters</dt><dd>{val("characters.in", chars.get("in", 0))} →
 {val("characters.out", chars.get("out", 0))}</dd>
<dd class="sub">{val("characters.removed", chars.get("removed", 0))} removed ({removed_share})</dd></div>
<div class="card"><dt>Input files</dt><dd>{files}</dd>
<dd class="sub">{_esc(_num(inputs.get("bytes", 0)))} bytes read</dd></div>
<div class="card"><dt>Run time</dt><dd>{val("seconds", report.get("seconds", 0))} s</dd>
<dd class="sub">{_esc(_count(report.get("workers", 1), "process", "processes"))}</dd></div>
</dl>
<p class="where">Output folder <code>{_esc(outdir)}</code>. Numbers from <code>report.json</code> (this run);
examples from <code>removed.jsonl</code> and <code>rejected.jsonl</code> (every run on this folder).</p>"""


def _stages_section(report: dict[str, Any], order: list[str]) -> str:
    stages = _stage_rows(report)
    docs = report.get("documents", {})
    at_input = sum((docs.get("rejected_at_input") or {}).values())
    doc_bars = [
        Bar(
            "input",
            docs.get("in", 0) - at_input,
            at_input,
            STAGE_COLORS["input"],
            _change(docs.get("in", 0), docs.get("in", 0) - at_input, "rejected"),
            data={"in": docs.get("in", 0), "out": docs.get("in", 0) - at_input, "stage": "input"},
        )
    ]
    char_bars = []
    for s in stages:
        name = s.get("stage", "?")
        color = _color(name, order)
        d_in, d_out, d_rej = s.get("documents_in", 0), s.get("documents_out", 0), s.get("documents_rejected", 0)
        doc_bars.append(
            Bar(
                name,
                d_out,
                d_rej,
                color,
                _change(d_in, d_out, "rejected"),
                data={"in": d_in, "out": d_out, "stage": name},
            )
        )
        c_in, c_out = s.get("characters_in", 0), s.get("characters_out", 0)
        char_bars.append(
            Bar(
                name,
                c_out,
                max(c_in - c_out, 0),
                color,
                _change(c_in, c_out, "removed", share=True),
                data={"in": c_in, "out": c_out, "stage": name},
            )
        )
    legend_docs = [("#777777", "kept"), ("#d9d9d9", "rejected")]
    legend_chars = [("#777777", "characters out"), ("#d9d9d9", "removed (also rejected documents)")]
    rows = []
    keys = (
        "documents_in",
        "documents_out",
        "documents_rejected",
        "characters_in",
        "characters_out",
        "characters_removed",
        "lines_removed",
        "seconds",
    )
    for i, s in enumerate(stages):
        name = s.get("stage", "?")
        cells = "".join(
            f'<td data-key="{k}" data-value="{_esc(s.get(k, 0))}">{_esc(_num(s.get(k, 0)))}</td>' for k in keys
        )
        swatch = f'<span class="swatch" style="background:{_esc(_color(name, order))}"></span>'
        rows.append(
            f'<tr data-stage="{_esc(name)}" data-position="{i}"><th scope="row">{swatch}{_esc(name)}</th>{cells}</tr>'
        )
    doc_chart = bar_chart(
        "documents",
        "Documents in and out per stage",
        "Documents entering each stage, kept and rejected.",
        doc_bars,
        legend_docs,
    )
    char_chart = (
        bar_chart(
            "characters",
            "Characters in and out per stage",
            "Characters entering each stage and what is left after it.",
            char_bars,
            legend_chars,
        )
        if char_bars
        else ""
    )
    # Two header rows: the group (documents, characters) over its columns.
    head = (
        '<tr><th scope="col" rowspan="2">stage</th><th scope="colgroup" colspan="3">documents</th>'
        '<th scope="colgroup" colspan="3">characters</th><th scope="col" rowspan="2">lines<br>removed</th>'
        '<th scope="col" rowspan="2">seconds</th></tr>'
        "<tr>"
        + "".join(f'<th scope="col">{w}</th>' for w in ("in", "out", "rejected", "in", "out", "removed"))
        + "</tr>"
    )
    return f"""
<section id="stages"><h2>Documents and characters per stage</h2>
<p>Each stage sees what the previous one kept. Solid: kept; light, dashed: rejected or removed.</p>
{doc_chart}
{char_chart}
<div class="scroll"><table class="numbers" id="stage-table"><thead>{head}</thead>
<tbody>{"".join(rows)}</tbody></table></div>
</section>"""


def _rules_section(report: dict[str, Any], order: list[str]) -> str:
    rules = []
    for s in _stage_rows(report):
        for rule, counts in (s.get("rules") or {}).items():
            rules.append((s.get("stage", "?"), rule, counts))
    rules.sort(key=lambda r: (-r[2].get("characters", 0), r[0], r[1]))
    bars = [
        Bar(
            f"{stage} · {rule}",
            c.get("characters", 0),
            color=_color(stage, order),
            note=f"{_num(c.get('characters', 0))} chars, {_count(c.get('spans', 0), 'span')}, "
            f"{_count(c.get('lines', 0), 'line')}",
            data={"stage": stage, "rule": rule, "spans": c.get("spans", 0), "lines": c.get("lines", 0)},
        )
        for stage, rule, c in rules[:TOP_RULES]
    ]
    rejections = []
    for kind, n in (report.get("documents", {}).get("rejected_at_input") or {}).items():
        rejections.append(("input", kind, n))
    for s in _stage_rows(report):
        for kind, n in (s.get("rejections") or {}).items():
            rejections.append((s.get("stage", "?"), kind, n))
    rej_bars = [
        Bar(f"{stage} · {kind}", n, color=_color(stage, order), note=_count(n, "document"), data={"stage": stage})
        for stage, kind, n in sorted(rejections, key=lambda r: -r[2])
    ]
    parts = ['<section id="rules"><h2>What was removed</h2>']
    if bars:
        more = f" (the top {TOP_RULES} of {len(rules)})" if len(rules) > TOP_RULES else ""
        parts.append(
            bar_chart(
                "rules",
                f"Rules by characters removed{more}",
                "Characters removed by each rule, with the spans and whole lines it removed.",
                bars,
            )
        )
    else:
        parts.append("<p>No rule removed anything.</p>")
    if rej_bars:
        parts.append(
            bar_chart("rejections", "Rejected documents by stage and reason", "Documents dropped, by reason.", rej_bars)
        )
    parts.append("</section>")
    return "\n".join(parts)


def _counters(report: dict[str, Any], prefix: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in _stage_rows(report):
        for name, n in (s.get("counters") or {}).items():
            if name.startswith(prefix):
                total[name[len(prefix) :]] = total.get(name[len(prefix) :], 0) + n
    return total


def _top(items: dict[str, int], n: int) -> list[tuple[str, int, int]]:
    """(label, value, how many merged) for the n-1 largest and the rest as one 'other' row."""
    ranked = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) <= n:
        return [(k, v, 1) for k, v in ranked]
    rest = ranked[n - 1 :]
    return [(k, v, 1) for k, v in ranked[: n - 1]] + [(f"{len(rest)} others", sum(v for _, v in rest), len(rest))]


def _languages_section(report: dict[str, Any]) -> str:
    # main-language-by-profile/-by-langdetect say how, -bilingual that a text has two (it is counted under its
    # first too); fragment-kept-code/-citation/-name count Latin kept as content: none is a language or fragment
    mains = {
        k: v for k, v in _counters(report, "main-language-").items() if not k.startswith("by-") and k != "bilingual"
    }
    fragments = {k: v for k, v in _counters(report, "fragment-").items() if k.startswith(("script-", "same-script-"))}
    fragment_chars = _counters(report, "fragment-").get("chars", 0)
    if not mains and not fragments:
        return '<section id="languages"><h2>Language mix</h2><p>No language counts in this run.</p></section>'
    color = STAGE_COLORS["language"]
    total_docs = sum(mains.values())
    main_bars = [
        Bar(
            lang,
            n,
            color=color if m == 1 else OTHERS_COLOR,
            note=f"{_count(n, 'document')} ({_pct(n, total_docs)})",
            data={"merged": m},
        )
        for lang, n, m in _top(mains, TOP_LANGUAGES)
    ]

    def fragment_label(name: str) -> str:
        if name.startswith("same-script-"):
            return f"{name[len('same-script-') :]} (same script)"
        if name.startswith("script-"):
            return f"{name[len('script-') :]} script"
        return name

    frag_bars = [
        Bar(
            fragment_label(name),
            n,
            color=color if m == 1 else OTHERS_COLOR,
            note=_count(n, "fragment"),
            data={"merged": m, "key": name},
        )
        for name, n, m in _top(fragments, TOP_LANGUAGES)
    ]
    parts = [
        '<section id="languages"><h2>Language mix</h2>',
        f"<p>{_count(len(mains), 'main language')} across {_count(total_docs, 'document')}; "
        f"{_count(sum(fragments.values()), 'foreign fragment')} removed or tagged "
        f'(<span data-key="fragment-chars" data-value="{fragment_chars}">{_num(fragment_chars)}</span> '
        "characters).</p>",
        '<div class="pair">',
    ]
    if main_bars:
        parts.append(
            bar_chart(
                "languages", "Main language of documents", "Documents by detected main language.", main_bars, width=540
            )
        )
    if frag_bars:
        parts.append(
            bar_chart(
                "fragments",
                "Foreign fragments by language or script",
                "Fragments in another script, or in another language of the same script.",
                frag_bars,
                width=540,
            )
        )
    parts.append("</div></section>")
    return "\n".join(parts)


_BUCKETS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None)]


def _duplicates_section(report: dict[str, Any], audit: Audit, outdir: Path, audit_on: bool) -> str:
    sizes: dict[int, int] = {}
    for name, n in _counters(report, "clusters-with-").items():
        copies = name.removesuffix("-copies")
        if copies.isdigit():
            sizes[int(copies)] = sizes.get(int(copies), 0) + n
    clusters = sum((s.get("counters") or {}).get("clusters", 0) for s in _stage_rows(report))
    color = STAGE_COLORS["dedup"]
    bars = []
    for low, high in _BUCKETS:
        n = sum(v for k, v in sizes.items() if k >= low and (high is None or k <= high))
        label = f"{low}" if low == high else f"{low}+" if high is None else f"{low}–{high}"
        if n or (high is not None and high <= 4):
            bars.append(
                Bar(
                    f"{label} removed cop{'y' if low == high == 1 else 'ies'}",
                    n,
                    color=color,
                    note=_count(n, "cluster"),
                    data={"low": low, "high": high if high is not None else ""},
                )
            )
    parts = ['<section id="duplicates"><h2>Duplicates</h2>']
    if sizes:
        parts.append(
            f'<p><span data-key="clusters" data-value="{clusters}">{_num(clusters)}</span> '
            f"{_plural(clusters, 'cluster')[1]} of repeated text: a paragraph kept once, its copies removed "
            "from later documents (or later in the same one). "
            f"The largest had {_count(max(sizes), 'copy', 'copies')}.</p>"
        )
        parts.append(
            bar_chart("clusters", "Duplicate clusters by size", "Clusters by how many copies were removed.", bars)
        )
    else:
        parts.append("<p>No duplicate clusters counted in this run.</p>")
    if not audit_on:
        parts.append("<p>Audit files are off (<code>output.audit: false</code>): no examples.</p></section>")
        return "\n".join(parts)
    top = sorted(audit.clusters.values(), key=lambda c: -len(c.copies))[:TOP_CLUSTERS]
    if top:
        parts.append(
            f'<h3>Largest clusters among the first {_num(audit.removed_read)} removed spans</h3><ol class="clusters">'
        )
        for c in top:
            docs = list(dict.fromkeys(c.copies))  # documents holding the copies, in order
            shown = ", ".join(f"<code>{_esc(d)}</code>" for d in docs[:3])
            more = f" and {len(docs) - 3} more" if len(docs) > 3 else ""
            # (the kept copy's document is named by its id alone: its command shows each document with the id)
            other = next((i for i, d in enumerate(c.copies) if d != c.original), None)
            cmds = _explain_cmd(c.original, outdir, c.source, c.line) + (
                f" {_explain_cmd(c.copies[other], outdir, *c.places[other])}" if other is not None else ""
            )
            parts.append(
                f'<li data-copies="{len(c.copies)}"><blockquote>{_esc(c.text)}</blockquote>'
                f"<p>{_count(len(c.copies), 'copy', 'copies')} removed ({_esc(c.rule)}) from "
                f"{_count(len(docs), 'document')}: {shown}{more}. Kept in <code>{_esc(c.original)}</code>.</p>"
                f'<p class="cmds">{cmds}</p></li>'
            )
        parts.append("</ol>")
    if audit.duplicate_docs:
        parts.append(
            f'<h3>Duplicate documents among the first {_num(audit.rejected_read)} rejected</h3><ol class="clusters">'
        )
        ranked = sorted(audit.duplicate_docs.items(), key=lambda kv: -len(kv[1]))[:TOP_CLUSTERS]
        for (original, original_source, original_line), records in ranked:

            def kind(r: dict[str, Any]) -> str:
                jaccard = f", Jaccard {r['jaccard']:.2f}" if isinstance(r.get("jaccard"), float) else ""
                return reason_kind(str(r.get("reason", ""))) + jaccard

            copies = ", ".join(f"<code>{_esc(r['id'])}</code> ({_esc(kind(r))})" for r in records[:3])
            more = f" and {len(records) - 3} more" if len(records) > 3 else ""
            parts.append(
                f'<li data-copies="{len(records)}"><p>Kept <code>{_esc(original)}</code>; rejected '
                f"{_count(len(records), 'copy', 'copies')}: {copies}{more}.</p>"
                f'<p class="cmds">{_explain_cmd(original, outdir, original_source, original_line)} '
                f"{_explain_cmd(records[0]['id'], outdir, records[0].get('source'), records[0].get('line'))}</p></li>"
            )
        parts.append("</ol>")
    parts.append("</section>")
    return "\n".join(parts)


def _samples_section(
    report: dict[str, Any],
    audit: Audit,
    outdir: Path,
    shown_dir: Path,
    sources: Mapping[str, str | Path] | None,
    audit_on: bool,
) -> str:
    parts = ['<section id="samples"><h2>Before and after</h2>']
    if not audit_on:
        parts.append("<p>Audit files are off: no samples.</p></section>")
        return "\n".join(parts)
    order = [s.get("stage", "?") for s in _stage_rows(report)]
    picked = pick_samples(audit)
    paths = {k: str(v) for k, v in (sources if sources is not None else _state_sources(report)).items()}
    try:
        cfg = InputConfig(**(report.get("config") or {}).get("input", {}))
    except Exception:  # a report from another version: the defaults read most inputs
        cfg = InputConfig()
    wanted: dict[str, set[str]] = {}
    lines: dict[str, list[int | None]] = {}
    for source, doc_id, line in picked:
        wanted.setdefault(source, set()).add(doc_id)
        lines.setdefault(source, []).append(line)
    before: dict[tuple[str, str, int | None], str] = {}
    after: dict[tuple[str, str], str | None] = {}  # None: several documents of the output have the id
    for source, ids in wanted.items():
        if source in paths:
            # Picked by (id, line): with every line known, nothing after the last one is needed.
            known = [line for line in lines[source] if line is not None]
            last_line = max(known) if len(known) == len(lines[source]) else None
            found = _find_texts(Path(paths[source]), source, ids, cfg, last_line)
            before.update({(source, i, line): t for (i, line), t in found.items()})
        # The output keeps the input's name, or adds the output format's suffix (archives, HTML, output.format).
        requested = ((report.get("config") or {}).get("output") or {}).get("format")
        for name in dict.fromkeys([source, f"{source}.{requested or 'jsonl'}"]):
            if not (outdir / name).is_file():
                continue
            if name != source and requested == "txt":  # an input of several documents: found by place
                picks = [(i, line) for s, i, line in picked if s == source and line is not None]
                texts = txt_output_texts(outdir, outdir / name, paths.get(source), source, cfg, {ln for _, ln in picks})
                for doc_id, ln in picks:
                    if ln in texts:  # (an id twice among the samples: "several documents have this id")
                        after[(source, doc_id)] = texts[ln] if (source, doc_id) not in after else None
                break
            for (i, _), t in _find_texts(outdir / name, source, ids, cfg, output=True).items():
                after[(source, i)] = t if (source, i) not in after else None
            break
    if not picked and not audit.rejected_samples:
        parts.append("<p>Nothing was removed: no samples to show.</p></section>")
        return "\n".join(parts)
    legend = " ".join(
        f'<span class="tag" style="--c:{_esc(_color(name, order))}">{_esc(name)}</span>' for name in order
    )
    parts.append(
        f"<p>A few documents with removed spans highlighted (label: stage/rule). Stages: {legend}. "
        "The full document: the <code>explain</code> command under it.</p>"
    )
    for source, doc_id, line in picked:
        removals = audit.removals[(source, doc_id, line)]
        counts: dict[str, int] = {}
        for r in removals:
            counts[r["stage"]] = counts.get(r["stage"], 0) + 1
        summary = ", ".join(f"{n} by {stage}" for stage, n in counts.items())
        text_before = before.get((source, doc_id, line))
        if text_before is None and line is None:  # records of an earlier version, which named no line
            texts = [t for (s, i, _), t in before.items() if (s, i) == (source, doc_id)]
            text_before = texts[0] if len(texts) == 1 else None
        if text_before is None:
            left = (
                '<p class="more">Input not found (moved, or not recorded). Removed spans:</p><ul>'
                + "".join(
                    f"<li><span class='tag' style='--c:{_esc(_color(r['stage'], order))}'>{_esc(r['stage'])}/"
                    f"{_esc(r['rule'])}</span> {_esc(_short(r.get('text') or '', 300))}</li>"
                    for r in removals[:20]
                )
                + "</ul>"
            )
        else:
            left = f'<pre class="doc">{marked_html(text_before, removals, order, doc_id=doc_id)}</pre>'
        text_after = after.get((source, doc_id))
        if text_after is None and (source, doc_id) in after:
            right = '<p class="more">Several documents of the output have this id: see the command below.</p>'
        elif text_after is None:
            right = '<p class="more">Output not found (rejected, written to stdout, or moved).</p>'
        else:
            tail = (
                f'<span class="more">… {_num(len(text_after) - DOC_CHARS)} more characters</span>'
                if len(text_after) > DOC_CHARS
                else ""
            )
            right = f'<pre class="doc">{_esc(text_after[:DOC_CHARS])}{tail}</pre>'
        parts.append(
            f'<article class="sample" data-id="{_esc(doc_id)}"><h3><code>{_esc(doc_id)}</code> '
            f"<small>from {_esc(document_place(source, line))}: {_count(len(removals), 'span')} removed "
            f"({_esc(summary)})</small></h3>"
            '<div class="pair"><div><h4>Before: removed spans highlighted, long unchanged stretches shortened</h4>'
            f"{left}</div>"
            f"<div><h4>After: the cleaned text</h4>{right}</div></div>"
            f'<p class="cmds">{_explain_cmd(doc_id, shown_dir, source, line)}</p></article>'
        )
    for r in audit.rejected_samples:
        text = r.get("text") or ""
        tail = '<span class="more">… more</span>' if len(text) > DOC_CHARS else ""
        parts.append(
            f'<article class="sample rejected" data-id="{_esc(r["id"])}"><h3><code>{_esc(r["id"])}</code> '
            f"<small>from {_esc(document_place(str(r.get('source', '')), r.get('line')))}: "
            f"rejected by {_esc(r.get('stage', ''))}</small></h3>"
            f'<p class="reason">{_esc(r.get("reason", ""))}</p>'
            f'<pre class="doc">{_esc(text[:DOC_CHARS])}{tail}</pre>'
            f'<p class="cmds">{_explain_cmd(r["id"], shown_dir, r.get("source"), r.get("line"))}</p></article>'
        )
    cfg_note = ""
    default = InputConfig()
    if (cfg.id_field, cfg.text_field) != (default.id_field, default.text_field) or (report.get("config") or {}).get(
        "state"
    ):
        cfg_note = " This run used its own id/text fields or state folder: add <code>-c YOUR_CONFIG</code>."
    parts.append(f'<p class="note">Commands are ready to copy.{cfg_note}</p></section>')
    return "\n".join(parts)


def _time_section(report: dict[str, Any], order: list[str]) -> str:
    stages = _stage_rows(report)
    total = sum(s.get("seconds", 0) for s in stages)
    bars = [
        Bar(
            s.get("stage", "?"),
            s.get("seconds", 0),
            color=_color(s.get("stage", "?"), order),
            note=f"{s.get('seconds', 0):.2f} s ({_pct(s.get('seconds', 0), total)})",
            data={"stage": s.get("stage", "?")},
        )
        for s in stages
    ]
    workers = report.get("workers", 1)
    note = " (summed over the processes)" if workers and workers > 1 else ""  # (--workers N: N - 1 and this one)
    chart = bar_chart("time", "Seconds per stage", f"Time spent in each stage{note}.", bars) if bars else ""
    return (
        f'<section id="time"><h2>Run time</h2><p>The run took {_num(report.get("seconds", 0))} s in all; '
        f"the stages {_num(round(total, 2))} s{note}; the rest is reading, writing and state.</p>{chart}</section>"
    )


def _config_yaml(config: dict[str, Any]) -> str:
    """The config as yaml.safe_dump writes it, by libyaml's emitter where PyYAML has it (~0.4 ms instead of ~1.9
    ms for the default config). The two differ in what libyaml escapes (characters beyond the BMP, which
    PyYAML's emitter writes as they are) and in how they fold double-quoted strings (control characters): a
    text that is not ASCII or holds a double quote is written again by PyYAML's emitter."""
    options: dict[str, Any] = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False}
    dumper = getattr(yaml, "CSafeDumper", None)
    if dumper is not None:
        text = yaml.dump(config, Dumper=dumper, **options)
        if text.isascii() and '"' not in text:
            return text
    return yaml.safe_dump(config, **options)


def _config_section(report: dict[str, Any]) -> str:
    config = report.get("config") or {}
    inputs = report.get("inputs", {})
    text = _config_yaml(config)
    skipped = inputs.get("skipped") or []
    skipped_html = ""
    if skipped:
        skipped_html = (
            "<h3>Inputs skipped</h3><ul>"
            + "".join(f"<li><code>{_esc(s.get('path'))}</code>: {_esc(s.get('reason'))}</li>" for s in skipped[:50])
            + ("</ul>" if len(skipped) <= 50 else f"<li>and {len(skipped) - 50} more</li></ul>")
        )
    state = report.get("state") or {}
    return (
        '<section id="config"><h2>Config used</h2>'
        f"<p>Config hash <code>{_esc(state.get('config_hash', '?'))}</code>; state in "
        f"<code>{_esc(state.get('folder', '?'))}</code>"
        f"{'' if state.get('recorded', True) else ' (a --limit trial: nothing recorded)'}.</p>"
        f'<details open><summary>Every option, resolved</summary><pre class="config">{_esc(text)}</pre></details>'
        f"{skipped_html}</section>"
    )


_STYLE = """
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#e3e3e3;--bg:#fff;--soft:#f6f7f9}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);
 background:var(--bg);margin:0}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 8px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:0 0 4px;color:var(--muted);font-weight:600}
nav{margin:8px 0 16px;font-size:14px}nav a{margin-right:14px;color:#0b57d0;text-decoration:none}
nav a:hover{text-decoration:underline}
.meta,.where,.note{color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px;margin:16px 0}
.card{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card dt{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card dd{margin:2px 0;font-size:17px;font-weight:600}.card dd.sub{font-size:13px;font-weight:400;color:var(--muted)}
.chart{margin:14px 0 20px}.chart svg{max-width:100%;height:auto;display:block}
.chart-title{margin:0 0 4px}
svg .lbl{font-size:12.5px;fill:var(--fg)}svg .num{font-size:12px;fill:var(--muted)}
svg .legend{font-size:12px;fill:var(--muted)}
svg .row:hover .bar{filter:brightness(.9)}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.gap{color:var(--muted);font-style:italic;font-family:system-ui,sans-serif;font-size:12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
table.numbers td{text-align:right;font-variant-numeric:tabular-nums}
thead th{font-weight:600;color:var(--muted);white-space:nowrap;text-align:right}
thead th[scope=colgroup]{text-align:center;border-bottom:1px solid #c9c9c9}
tbody th{white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);
 padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
code.cmd{display:inline-block;user-select:all;border:1px solid var(--line);padding:3px 8px;margin:2px 4px 2px 0}
button.copy{font-size:12px;margin-right:10px;padding:2px 8px;border:1px solid #c7c7c7;border-radius:4px;
 background:#fff;cursor:pointer}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
pre.doc{font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);
 border:1px solid var(--line);border-radius:6px;padding:10px;max-height:30em;overflow:auto}
pre.config{font-size:12.5px;background:var(--soft);padding:10px;border-radius:6px;max-height:36em;overflow:auto}
del.rm{text-decoration:line-through;text-decoration-color:color-mix(in srgb,var(--c) 70%,#000);
 background:color-mix(in srgb,var(--c) 22%,#fff);border-radius:2px}
.tag{display:inline-block;font:600 10.5px/1.3 system-ui,sans-serif;color:#fff;background:var(--c);
 border-radius:3px;padding:0 4px;margin:0 2px;vertical-align:1px;white-space:nowrap}
.more{color:var(--muted);font-style:italic}
.sample{border:1px solid var(--line);border-radius:8px;padding:4px 14px 10px;margin:14px 0}
.sample h3 small{font-weight:400;color:var(--muted)}
.reason{color:#a50e0e;font-weight:600}
blockquote{margin:4px 0;padding:4px 10px;border-left:3px solid #CC79A7;background:var(--soft);
 white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px;max-height:8em;overflow:auto}
ol.clusters li{margin-bottom:10px}
details summary{cursor:pointer;color:var(--muted)}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{nav,button.copy{display:none}pre.doc,pre.config{max-height:none}}
"""

# Progressive enhancement: a copy button next to each command (the page works without it).
_SCRIPT = """
document.querySelectorAll("code.cmd").forEach(function (code) {
  var button = document.createElement("button");
  button.type = "button"; button.className = "copy"; button.textContent = "copy";
  button.setAttribute("aria-label", "copy the command " + code.textContent);
  button.addEventListener("click", function () {
    window.getSelection().selectAllChildren(code);
    if (navigator.clipboard) navigator.clipboard.writeText(code.textContent).then(function () {
      button.textContent = "copied";
    }, function () {});
  });
  code.after(button);
});
"""


def render_html(
    report: dict[str, Any],
    outdir: Path,
    sources: Mapping[str, str | Path] | None = None,
    audit_files: AuditFiles | None = None,
) -> str:
    return prepare_html(report, outdir, sources, audit_files)(report)


def prepare_html(
    report: dict[str, Any],
    outdir: Path,
    sources: Mapping[str, str | Path] | None = None,
    audit_files: AuditFiles | None = None,
) -> Callable[[dict[str, Any]], str]:
    """``render_html`` in two steps: the sections now (reading the audit records and the samples' input and
    output files: most of the page's cost), and a function that gives the page of the final ``report``,
    which may differ from this one only in its run time (``seconds``): the runner prepares the page while
    its last file's state record is written, and learns how long the run took after that."""
    outdir = Path(outdir)
    order = [s.get("stage", "?") for s in _stage_rows(report)]
    audit_on = bool(((report.get("config") or {}).get("output") or {}).get("audit", True))
    audit = read_audit(outdir, audit_files) if audit_on else Audit()
    examples = "this run's audit records" if audit_files is not None else "each audit file"
    shown_dir = outdir.absolute()
    middle = [
        _stages_section(report, order),
        _rules_section(report, order),
        _languages_section(report),
        _duplicates_section(report, audit, shown_dir, audit_on),
        _samples_section(report, audit, outdir, shown_dir, sources, audit_on),
    ]
    config = _config_section(report)
    nav = " ".join(
        f'<a href="#{k}">{v}</a>'
        for k, v in [
            ("stages", "Stages"),
            ("rules", "Removed"),
            ("languages", "Languages"),
            ("duplicates", "Duplicates"),
            ("samples", "Before/after"),
            ("time", "Time"),
            ("config", "Config"),
        ]
    )
    title = f"cleancorpus report: {outdir.absolute().name}"

    def page(report: dict[str, Any]) -> str:
        # (the summary and the time section show the run's seconds; the page's data is the whole report)
        sections = [_summary(report, shown_dir), *middle, _time_section(report, order), config]
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{_STYLE}</style>
</head><body><main>
<h1>cleancorpus run report</h1>
<p class="meta">cleancorpus {_esc(report.get("cleancorpus", "?"))}, run started {_esc(report.get("started", "?"))}</p>
<nav aria-label="sections">{nav}</nav>
{"".join(sections)}
<footer>Written by cleancorpus from <code>report.json</code>. Examples come from the first
{_num(MAX_AUDIT_LINES)} lines of {examples}.</footer>
</main>
<script type="application/json" id="report-data">{_json_for_script(report)}</script>
<script>{_SCRIPT}</script>
</body></html>
"""

    return page
