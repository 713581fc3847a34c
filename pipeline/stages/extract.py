"""extract: turn HTML documents (WARC responses, .html pages) into text with trafilatura.

Readers mark HTML documents with ``doc.meta["content_type"] = "text/html"`` and carry the decoded
HTML in ``doc.text``; every other document passes untouched (counted), so the stage can stay first
in every config. The markup is not written to removed.jsonl (it would copy whole pages there): the
report's per-stage characters in/out show what extraction took away.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

HTML = "text/html"


class ExtractOptions(StageOptions):
    favor: Literal["balanced", "precision", "recall"] = Field(
        "balanced",
        description="Trafilatura's trade-off: precision keeps less (surer main text), recall keeps more.",
    )
    include_comments: bool = Field(False, description="Keep the comment section of pages.")
    include_tables: bool = Field(True, description="Keep the text of tables in the main content.")
    fast: bool = Field(False, description="Skip trafilatura's fallback extractors (faster, a little less text).")
    deduplicate: bool = Field(
        False,
        description="Trafilatura's own removal of repeated segments (the dedup stage does this across documents).",
    )


class ExtractStage(Stage):
    """Main text of HTML documents with trafilatura (other documents pass untouched)."""

    name: ClassVar[str] = "extract"
    offsets_origin: ClassVar[bool] = True
    Options: ClassVar[type[StageOptions]] = ExtractOptions

    def __init__(self, options: StageOptions | None = None) -> None:
        super().__init__(options)
        self._extract: Any = None

    def _extractor(self) -> Any:
        if self._extract is None:  # imported on first HTML document: trafilatura takes a second to load
            import trafilatura

            # trafilatura logs each page it finds too short or unparsable: our report counts those
            logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
            self._extract = trafilatura.extract
        return self._extract

    def process(self, doc: Document) -> None:
        if doc.meta.get("content_type") != HTML:
            self.stat_update("not_html")
            return
        o: ExtractOptions = self.options  # type: ignore[assignment]
        url = (doc.record or {}).get("url")
        text = self._extractor()(
            doc.text,
            url=url if isinstance(url, str) else None,
            favor_precision=o.favor == "precision",
            favor_recall=o.favor == "recall",
            include_comments=o.include_comments,
            include_tables=o.include_tables,
            fast=o.fast,
            deduplicate=o.deduplicate,
            output_format="txt",
        )
        self.stat_update("html")
        self.stat_update("html_characters", len(doc.text))
        doc.meta["content_type"] = "text/plain"
        doc.meta["extracted"] = "trafilatura"
        if not text or not text.strip():
            doc.text = ""
            doc.reject(self.name, "no main text found in the HTML")
            return
        doc.text = text
