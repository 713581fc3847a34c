"""`cleancorpus explain ID`: one document before and after, each removed span marked by stage and rule."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import RunConfig
from pipeline.io import (
    STDIN,
    InputFile,
    document_place,
    input_format,
    read_documents,
    txt_output_texts,
)
from pipeline.report import place_removals
from pipeline.runner import build_stages, state_folder
from pipeline.stages import stage_class
from pipeline.stages.base import Stage
from pipeline.state import StateStore

_RED_STRIKE, _DIM, _RESET = "\x1b[9;31m", "\x1b[2m", "\x1b[0m"
MAX_SHOWN = 10  # documents shown for one id; more: the user chooses with --source / --line


class ExplainError(Exception):
    pass


Key = tuple[str, int | None]  # a document: its source file and, for JSONL and Parquet, its line (row)


@dataclass
class _Doc:
    source: str
    line: int | None
    removed: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    before: str | None = None  # its text as read, if the input was read
    copies: int = 0  # documents of the input read with this key (several: an id repeated in a .warc)
    lineless: bool = False  # audit records without a line, of a source whose documents have lines


def _line(record: dict[str, Any]) -> int | None:
    line = record.get("line")
    return line if isinstance(line, int) and not isinstance(line, bool) and line > 0 else None


def _records(path: Path, doc_id: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = []
    key = orjson.dumps(doc_id)
    with open(path, "rb") as fh:
        for line in fh:
            if key in line:  # cheap filter before parsing
                record = orjson.loads(line)
                if record.get("id") == doc_id:
                    found.append(record)
    return found


def _read(
    path: Path, source: str, doc_id: str, config: RunConfig, extract: bool = False
) -> list[tuple[int | None, str]]:
    """(line, text as read) of each document with this id in the file, in order; with ``extract``, an HTML
    page's text as the config's extract stage makes it (what the run cleaned, and removed.jsonl's offsets
    index), when the config has one."""
    fmt = input_format(path)
    if fmt is None or not path.is_file():
        return []
    if fmt[0] in ("txt", "html") and source != doc_id:
        return []  # a .txt or .html file is one document, whose id is its name
    found = []
    extractor = None
    for doc in read_documents(InputFile(path, source, *fmt), config.input):
        if doc.id != doc_id:
            continue
        if extract and not doc.rejected and doc.meta.get("content_type") == "text/html":
            extractor = extractor or _html_extractor(config)
            if extractor is not None:
                extractor.process(doc)
                if doc.rejected:  # no main text: the page as read
                    found.append((doc.line_no or None, doc.original))
                    continue
        found.append((doc.line_no or None, doc.original if doc.rejected else doc.text))
    return found


def _html_extractor(config: RunConfig) -> Stage | None:
    """The config's stage that turns HTML into text (extract), built, or None."""
    spec = next((s for s in config.enabled_stages() if getattr(stage_class(s.stage), "extracts_html", False)), None)
    return build_stages([spec])[0] if spec is not None else None


def _known_sources(config: RunConfig, outdir: Path, report: dict[str, Any] | None) -> dict[str, str]:
    """Source name -> path of the input files: the state's, and those a --limit trial (which records no
    state) read, from its ``report`` (report.json)."""
    read = ((report or {}).get("inputs") or {}).get("read_files")
    sources = {str(k): str(v) for k, v in read.items()} if isinstance(read, dict) else {}
    folder = state_folder(config, outdir)
    if not (folder / "state.sqlite").exists():
        return sources
    store = StateStore.for_reading(folder)
    try:
        recorded = {f.source: f.path for f in store.files()}
    finally:
        store.close()
    # Versions before session 17 recorded an input named by a relative path as given: relative to the directory
    # the run was started in (report.json's ``cwd`` since), not to explain's.
    started_in = (report or {}).get("cwd")
    if isinstance(started_in, str):
        recorded = {k: v if k == STDIN else os.path.join(started_in, v) for k, v in recorded.items()}
    return sources | recorded


def _run_report(outdir: Path) -> dict[str, Any] | None:
    try:
        report = orjson.loads((outdir / "report.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None


def _check_audit(outdir: Path, doc_id: str, report: dict[str, Any] | None) -> None:
    """An ExplainError when the run (its ``report``) wrote no audit files: explain cannot answer."""
    output = ((report or {}).get("config") or {}).get("output") or {}
    if output.get("audit") is False:
        raise ExplainError(
            f"cannot explain {doc_id!r}: the last run on {outdir} had output.audit: false, so the spans it removed "
            "and the documents it rejected are unknown (set output.audit: true and run again)"
        )
    if report is not None and not (outdir / "removed.jsonl").exists() and not (outdir / "rejected.jsonl").exists():
        raise ExplainError(
            f"cannot explain {doc_id!r}: removed.jsonl and rejected.jsonl are missing from {outdir}, so the spans "
            "removed and the documents rejected are unknown"
        )


def where(source: str, line: int | None) -> str:
    """``document_place``, standard input named: 'b.jsonl line 2', 'standard input line 3', 'x.parquet row 7'."""
    return document_place("standard input" if source == STDIN else source, line)


def _documents(
    config: RunConfig, outdir: Path, doc_id: str, source: str | None, report: dict[str, Any] | None
) -> tuple[list[_Doc], dict[str, str]]:
    """The documents with this id (of the file ``source`` only, if given), in source and line order: audit
    records grouped by document, never mixed, and inputs read for those kept untouched; and the state's
    input files."""

    sources = _known_sources(config, outdir, report)
    docs: dict[Key, _Doc] = {}
    for src, path in sources.items():
        if src == STDIN or (source is not None and src != source):
            continue  # stdin was not kept: its documents are known by their audit records only
        for ln, text in _read(Path(path), src, doc_id, config, extract=True):
            doc = docs.setdefault((src, ln), _Doc(src, ln, before=text))
            doc.copies += 1
    for kind in ("removed", "rejected"):
        for record in _records(outdir / f"{kind}.jsonl", doc_id):
            src, ln = str(record.get("source", "")), _line(record)
            if source is not None and src != source:
                continue
            getattr(docs.setdefault((src, ln), _Doc(src, ln)), kind).append(record)
    # Audit records without a line in a source whose documents have lines (written before records of
    # removed.jsonl named their line): theirs is the source's one document with this id, if it has one.
    for (src, ln), doc in list(docs.items()):
        if ln is not None:
            continue
        numbered = [d for (s, n), d in docs.items() if s == src and n is not None]
        if len(numbered) == 1:
            numbered[0].removed[:0], numbered[0].rejected[:0] = doc.removed, doc.rejected
            del docs[(src, ln)]
        elif numbered:
            doc.lineless = True
    found = [docs[k] for k in sorted(docs, key=lambda k: (k[0], k[1] or 0))]
    return found, sources


def _output_text(
    config: RunConfig, outdir: Path, doc: _Doc, doc_id: str, every: list[_Doc], sources: dict[str, str]
) -> str | None:
    """The cleaned text of a kept document: the output file's documents with this id are those of the input
    (``every`` document with this id) not rejected, in the same order."""
    requested = config.output.format
    for name in dict.fromkeys([doc.source, f"{doc.source}.{requested or 'jsonl'}"]):
        path = outdir / name
        if path.is_file():
            if name != doc.source and requested == "txt":
                return _txt_output_text(config, outdir, path, doc, sources)
            texts = [text for _, text in _read(path, doc.source, doc_id, config)]
            break
    else:
        return None
    kept = [d for d in every if d.source == doc.source and not d.rejected]
    if len(texts) == 1 and len(kept) <= 1:
        return texts[0]
    if not any(d.copies for d in kept):
        return None  # the input was not read: which of the output's documents is this one is unknown
    position = next((i for i, d in enumerate(kept) if d is doc), None)
    return texts[position] if position is not None and position < len(texts) else None


def _txt_output_text(config: RunConfig, outdir: Path, path: Path, doc: _Doc, sources: dict[str, str]) -> str | None:
    """A document of a txt output written for an input of several documents (JSONL, Parquet, WARC): found by
    its line among the input's kept documents (``txt_output_texts``)."""
    if doc.line is None:
        return None
    return txt_output_texts(outdir, path, sources.get(doc.source), doc.source, config.input, {doc.line}).get(doc.line)


def mark_spans(
    before: str, removals: list[dict[str, Any]], color: bool, doc_id: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The text with each removal marked where it occurs (placed by `place_removals`), and the removals
    not found verbatim (an earlier stage, e.g. encoding repair, changed the text around them)."""
    taken, unplaced = place_removals(before, removals, doc_id)
    out, pos = [], 0
    for start, end, r in taken:
        label = f"{r['stage']}/{r['rule']}"
        out.append(before[pos:start])
        span = before[start:end]
        out.append(f"{_RED_STRIKE}{span}{_RESET}{_DIM}[{label}]{_RESET}" if color else f"[-{label}: {span}-]")
        pos = end
    out.append(before[pos:])
    return "".join(out), unplaced


def explain_document(
    config: RunConfig,
    outdir: Path,
    doc_id: str,
    color: bool = False,
    source: str | None = None,
    line: int | None = None,
) -> str:
    """Each document with this id (narrowed to one file with ``source``, one line with ``line``): its
    verdict, its text before with each removed span marked, and after."""
    report = _run_report(outdir)
    _check_audit(outdir, doc_id, report)
    every, sources = _documents(config, outdir, doc_id, source, report)
    docs = [d for d in every if line is None or d.line == line]
    chosen = f" in {where(source, line)}" if source is not None else f" at line {line}" if line is not None else ""
    if not docs:
        hint = ""
        if chosen:
            others = [
                where(d.source, d.line)
                for d in (every if source is None else _documents(config, outdir, doc_id, None, report)[0])
            ]
            hint = f"; documents with this id: {_listed(others)}" if others else ""
        if STDIN in sources and source in (None, STDIN):
            hint += (
                "; a document read from standard input is known only if something of it was removed or it was rejected"
            )
        raise ExplainError(
            f"no document {doc_id!r}{f' ({chosen[4:]})' if chosen else ''} in {outdir} "
            f"(looked in removed.jsonl, rejected.jsonl, state){hint}"
        )
    if len(docs) > MAX_SHOWN:
        raise ExplainError(
            f"{len(docs)} documents have the id {doc_id!r}{chosen} in {outdir} "
            f"({_listed([where(d.source, d.line) for d in docs])}): choose one with --source FILE (and --line N)"
        )
    sections = [_explain_one(config, outdir, doc_id, doc, every, sources, color) for doc in docs]
    if len(docs) == 1:
        return sections[0]
    head = (
        f"{len(docs)} documents have the id {doc_id!r}{chosen}: {_listed([where(d.source, d.line) for d in docs])}; "
        "each is shown below (--source FILE and --line N show one)"
    )
    return "\n".join(
        [head]
        + [
            f"\n===== {i} of {len(docs)}: {where(d.source, d.line)} =====\n{text}"
            for i, (d, text) in enumerate(zip(docs, sections, strict=True), 1)
        ]
    )


def _not_found(path: str | None) -> str:
    """Why there is no "before": where the input was looked for, and, for a path relative to the directory of
    a run whose report names none, that explain must be run from there."""
    if path is None:
        return "(input not found: the state records no input file of this name)"
    if os.path.isabs(path):
        return f"(input not found at {path}: it was moved or deleted)"
    return (
        f"(input not found at {path} from {os.getcwd()}: it was moved or deleted, or the run was started in "
        "another directory; the path is relative to that one: run explain from there)"
    )


def _listed(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _explain_one(
    config: RunConfig, outdir: Path, doc_id: str, doc: _Doc, every: list[_Doc], sources: dict[str, str], color: bool
) -> str:
    removed, rejected = doc.removed, doc.rejected
    lines = [f"document {doc_id} from {where(doc.source, doc.line)}"]
    if doc.lineless:
        lines.append(
            f"NOTE: audit records of an earlier version, which name no line: they belong to one of the documents "
            f"of {doc.source} with this id"
        )
    if doc.copies > 1:  # no line tells them apart (a .warc repeating a record id): shown together
        lines.append(
            f"NOTE: {doc.copies} documents of {doc.source} have this id and no line to tell them apart; shown: "
            "the first, with the removals of all of them"
        )
    if rejected:
        r = rejected[-1]
        original = r.get("duplicate_source")
        place = f" ({where(original, r.get('duplicate_line'))})" if isinstance(original, str) else ""
        lines.append(f"REJECTED at stage {r['stage']}: {r['reason']}{place}")
    else:
        lines.append("KEPT")
    lines.append(f"{len(removed)} {'span' if len(removed) == 1 else 'spans'} removed")
    lines.append("--- before (removed spans marked [-stage/rule: text-]) ---" if not color else "--- before ---")
    before = doc.before
    if before is None:
        before = rejected[-1].get("text") if rejected else None
    if before is None:
        lines.append(
            "(read from standard input, which was not kept: the audit holds the text of rejected documents only)"
            if doc.source == STDIN
            else _not_found(sources.get(doc.source))
        )
        unplaced = removed
    else:
        marked, unplaced = mark_spans(before, removed, color, doc_id)
        lines.append(marked)
    if unplaced:
        lines.append(
            "--- removed spans ---" if before is None else "--- removed spans not found verbatim in the input ---"
        )
        lines.extend(f"[{r['stage']}/{r['rule']}] {r['text']}" for r in unplaced)
    lines.append("--- after ---")
    if rejected:
        lines.append("(rejected: no output)")
    elif doc.source == STDIN:
        lines.append("(written to standard output, not kept)")
    else:
        after = _output_text(config, outdir, doc, doc_id, every, sources)
        lines.append(after if after is not None else "(output not found)")
    return "\n".join(lines)
