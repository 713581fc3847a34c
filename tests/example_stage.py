"""A user stage, as a user would write one and name it in YAML (`stage: example_stage:MinWords`)."""

from __future__ import annotations

from pydantic import Field

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions


class MinWordsOptions(StageOptions):
    min_words: int = Field(50, ge=0, description="Reject documents with fewer words.")


class MinWords(Stage):
    """Reject documents that are too short to be useful."""

    name = "min_words"
    Options = MinWordsOptions

    def process(self, doc: Document) -> None:
        words = len(doc.text.split())
        if words < self.options.min_words:
            self.stat_update("too-short")
            doc.reject(self.name, f"only {words} words (< {self.options.min_words})")
