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


def _find(path: Path, source: str, doc_id: str, config: RunConfig) -> str | None:
    fmt = input_format(path)
    if fmt is None or not path.exists():
        return None
    for doc in read_documents(InputFile(path, source, *fmt), config.input):
        if doc.id == doc_id:
            return doc.original if doc.rejected else doc.text
    return None


def _known_sources(config: RunConfig, outdir: Path) -> dict[str, str]:
    folder = state_folder(config, outdir)
    if not (folder / "state.sqlite").exists():
        return {}
    store = StateStore(folder)
    try:
        return {f.source: f.path for f in store.files()}
    finally:
        store.close()


def mark_spans(before: str, removals: list[dict[str, Any]], color: bool) -> tuple[str, list[dict[str, Any]]]:
    """The text with each removal marked where it occurs, and the removals not found verbatim
    (an earlier stage, e.g. encoding repair, changed the text around them)."""
    taken: list[tuple[int, int, str]] = []
    unplaced = []
    for r in removals:
        start = before.find(r["text"])
        while start != -1 and any(s < start + len(r["text"]) and start < e for s, e, _ in taken):
            start = before.find(r["text"], start + 1)
        if start == -1 or not r["text"]:
            unplaced.append(r)
            continue
        taken.append((start, start + len(r["text"]), f"{r['stage']}/{r['rule']}"))
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
    for candidate in candidates:
        if candidate in sources:
            before = _find(Path(sources[candidate]), candidate, doc_id, config)
            if before is not None:
                source = candidate
                break
    if source is None and before is None:
        raise ExplainError(f"no document {doc_id!r} in {outdir} (looked in removed.jsonl, rejected.jsonl, state)")
    if not rejected and source:
        after = _find(outdir / source, source, doc_id, config)

    lines = [f"document {doc_id} from {source}"]
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
        marked, unplaced = mark_spans(before, removed, color)
        lines.append(marked)
    if unplaced:
        lines.append("--- removed spans not found verbatim in the input ---")
        lines.extend(f"[{r['stage']}/{r['rule']}] {r['text']}" for r in unplaced)
    lines.append("--- after ---")
    lines.append("(rejected: no output)" if rejected else after if after is not None else "(output not found)")
    return "\n".join(lines)
