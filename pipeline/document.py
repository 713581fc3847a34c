"""The unit of work: one document flowing through the stages, with its audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Removal:
    """A span a stage took out of a document (one line of `removed.jsonl`)."""

    stage: str
    rule: str
    text: str
    lines: int = 0  # whole lines removed by this span (0 for a fragment inside a line)
    extra: dict[str, Any] | None = None  # e.g. {"duplicate_of": "doc-7"}
    # Where the span was: offsets into the text its stage saw, then (the runner maps them, offsets.py)
    # into the input text. None: not known (a stage of another version or a user stage).
    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class Rejection:
    """Why a whole document was dropped (one line of `rejected.jsonl`)."""

    stage: str
    reason: str
    extra: dict[str, Any] | None = None
    quarantined: bool = False  # bad input or a stage error, not an ordinary filter decision


@dataclass(slots=True)
class Document:
    id: str
    text: str
    source: str  # input file, relative to its input root
    original: str = ""  # text as read, kept for rejected.jsonl
    record: dict[str, Any] | None = None  # the JSONL record the document came from (other fields)
    meta: dict[str, Any] = field(default_factory=dict)  # what stages learnt (language, encoding, ...)
    removed: list[Removal] = field(default_factory=list)
    rejected: Rejection | None = None
    line_no: int = 0  # line of the record in its JSONL file (1-based; 0 for .txt)
    # Work a later stage had done in a worker process (e.g. dedup's signatures); never written out.
    scratch: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.original:
            self.original = self.text

    def remove(
        self,
        stage: str,
        rule: str,
        text: str,
        lines: int = 0,
        start: int | None = None,
        end: int | None = None,
        **extra: Any,
    ) -> None:
        """Record a removed span: ``text`` was at ``start:end`` of the text the stage saw (give both)."""
        self.removed.append(Removal(stage, rule, text, lines, extra or None, start, end))

    def reject(self, stage: str, reason: str, quarantine: bool = False, **extra: Any) -> None:
        self.rejected = Rejection(stage, reason, extra or None, quarantine)
