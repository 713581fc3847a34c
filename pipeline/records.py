"""Raw input records to Documents, shared by every reader: quarantine and the size checks."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.config import InputConfig
from pipeline.document import Document


def quarantined(doc_id: str, source: str, reason: str, original: str = "", line_no: int = 0) -> Document:
    """A record that could not be read: quarantined at stage ``input`` with its reason."""
    doc = Document(id=doc_id, text="", source=source, original=original, line_no=line_no)
    doc.reject("input", reason, quarantine=True)
    return doc


def check_size(doc: Document, cfg: InputConfig) -> Document:
    """Quarantine a too large document; reject an empty one (an ordinary filter decision)."""
    if not doc.rejected:
        if len(doc.text) > cfg.max_doc_chars:
            reason = f"document too large ({len(doc.text):,} characters > {cfg.max_doc_chars:,})"
            doc.reject("input", reason, quarantine=True)
        elif not doc.text or doc.text.isspace():  # (what strip() leaves nothing of, without copying the text)
            doc.reject("input", "empty document")
    return doc


def record_document(
    record: dict[str, Any], source: str, cfg: InputConfig, number: int, fallback_id: str, where: str
) -> Document:
    """A JSONL line or Parquet row (``where``: "line" or "row") as a Document, fields carried along."""
    doc_id = record.get(cfg.id_field)
    if doc_id is None:
        doc_id = fallback_id
    elif isinstance(doc_id, (list, dict)):  # as JSON, not as Python's repr
        doc_id = orjson.dumps(doc_id, default=str).decode()
    else:
        doc_id = str(doc_id)
    text = record.get(cfg.text_field)
    if not isinstance(text, str):
        if text is None:
            problem = "missing" if cfg.text_field not in record else "null"
        else:
            problem = f"not a string ({type(text).__name__})"
        kind = "field" if where == "line" else "column"
        return quarantined(doc_id, source, f"{kind} '{cfg.text_field}' {problem} at {where} {number}", "", number)
    return check_size(Document(id=doc_id, text=text, source=source, record=record, line_no=number), cfg)
