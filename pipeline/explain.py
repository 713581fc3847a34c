"""`cleancorpus explain ID`: one document before and after, each removed span marked by stage and rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline.config import RunConfig
from pipeline.io import InputFile, input_format, read_documents
from pipeline.runner import state_folder
from pipeline.state import StateStore

_RED_STRIKE, _DIM, _RESET = "\x1b[9;31m", "\x1b[2m", "\x1b[0m"


class ExplainError(Exception):
    pass


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


def _find(path: Path, source: str, doc_id: str, config: RunConfig) -> tuple[str | None, int]:
    """The text of the first document with this id in the file, and how many documents have the id."""
    fmt = input_format(path)
    if fmt is None or not path.exists():
        return None, 0
    text, count = None, 0
    for doc in read_documents(InputFile(path, source, *fmt), config.input):
        if doc.id == doc_id:
            count += 1
            if text is None:
                text = doc.original if doc.rejected else doc.text
    return text, count


def _known_sources(config: RunConfig, outdir: Path) -> dict[str, str]:
    folder = state_folder(config, outdir)
    if not (folder / "state.sqlite").exists():
        return {}
    store = StateStore(folder)
    try:
        return {f.source: f.path for f in store.files()}
    finally:
        store.close()


def _occurrences(text: str, span: str) -> list[int]:
    found, start = [], text.find(span)
    while start != -1:
        found.append(start)
        start = text.find(span, start + 1)
    return found


def _whole_line(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] spans whole lines (spaces around it aside), as a removed line does."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return not text[line_start:start].strip() and not text[end : len(text) if line_end == -1 else line_end].strip()


def mark_spans(
    before: str, removals: list[dict[str, Any]], color: bool, doc_id: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The text with each removal marked where it occurs, and the removals not found verbatim
    (an earlier stage, e.g. encoding repair, changed the text around them). Where a span occurs several
    times: a free occurrence that is a whole line first (a removed line "Saludos" is not the start of a
    kept line "Saludos!"), and for a repeat of the document's own text (``duplicate_of`` is ``doc_id``:
    dedup kept the first copy) not the first occurrence."""
    taken: list[tuple[int, int, str]] = []
    unplaced = []
    for r in removals:
        text = r["text"]
        free = (
            [
                start
                for start in _occurrences(before, text)
                if not any(s < start + len(text) and start < e for s, e, _ in taken)
            ]
            if text
            else []
        )
        if doc_id is not None and r.get("duplicate_of") == doc_id and len(free) > 1:
            free = free[1:]  # the first copy is the one kept
        if not free:
            unplaced.append(r)
            continue
        start = next((at for at in free if _whole_line(before, at, at + len(text))), free[0])
        taken.append((start, start + len(text), f"{r['stage']}/{r['rule']}"))
    out, pos = [], 0
    for start, end, label in sorted(taken):
        out.append(before[pos:start])
        span = before[start:end]
        out.append(f"{_RED_STRIKE}{span}{_RESET}{_DIM}[{label}]{_RESET}" if color else f"[-{label}: {span}-]")
        pos = end
    out.append(before[pos:])
    return "".join(out), unplaced


def explain_document(config: RunConfig, outdir: Path, doc_id: str, color: bool = False) -> str:
    removed = _records(outdir / "removed.jsonl", doc_id)
    rejected = _records(outdir / "rejected.jsonl", doc_id)
    sources = _known_sources(config, outdir)
    source = (removed or rejected or [{}])[0].get("source") or (doc_id if doc_id in sources else None)
    candidates = [source] if source else list(sources)
    before = after = None
    sharing = 0
    for candidate in candidates:
        if candidate in sources:
            before, sharing = _find(Path(sources[candidate]), candidate, doc_id, config)
            if before is not None:
                source = candidate
                break
    if source is None and before is None:
        raise ExplainError(f"no document {doc_id!r} in {outdir} (looked in removed.jsonl, rejected.jsonl, state)")
    if not rejected and source:
        after, _ = _find(outdir / source, source, doc_id, config)

    lines = [f"document {doc_id} from {source}"]
    if sharing > 1:  # the audit records name documents by id: those of all of them are shown together
        lines.append(
            f"NOTE: {sharing} documents of {source} have this id; shown: the first, with the removals of all of them"
        )
    if rejected:
        r = rejected[-1]
        lines.append(f"REJECTED at stage {r['stage']}: {r['reason']}")
    lines.append(f"{len(removed)} spans removed")
    lines.append("--- before (removed spans marked [-stage/rule: text-]) ---" if not color else "--- before ---")
    if before is None:
        before = rejected[-1]["text"] if rejected else None
    if before is None:
        lines.append("(input not found: it was moved, or the run was a --limit trial that records no state)")
        unplaced = removed
    else:
        marked, unplaced = mark_spans(before, removed, color, doc_id)
        lines.append(marked)
    if unplaced:
        lines.append("--- removed spans not found verbatim in the input ---")
        lines.extend(f"[{r['stage']}/{r['rule']}] {r['text']}" for r in unplaced)
    lines.append("--- after ---")
    lines.append("(rejected: no output)" if rejected else after if after is not None else "(output not found)")
    return "\n".join(lines)
