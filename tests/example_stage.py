"""A user stage, as a user would write one and name it in YAML (`stage: example_stage:MinWords`)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

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


class RecurringFirstLineOptions(StageOptions):
    min_documents: int = Field(2, ge=2, description="Documents a first line must start to count as a header.")


class RecurringFirstLine(Stage):
    """Drop a first line that starts many documents (a site header): learnt in a first pass."""

    name = "recurring_first_line"
    Options = RecurringFirstLineOptions
    needs_prepare = True

    def __init__(self, options: RecurringFirstLineOptions | None = None) -> None:
        super().__init__(options)
        self.headers: set[str] = set()

    def prepare(self, docs: Iterable[Document]) -> None:
        counts = Counter(doc.text.split("\n", 1)[0] for doc in docs)
        self.headers = {line for line, n in counts.items() if n >= self.options.min_documents}

    def process(self, doc: Document) -> None:
        first, _, rest = doc.text.partition("\n")
        if first in self.headers:
            self.stat_update("header")
            doc.remove(self.name, "recurring-header", first, lines=1)
            doc.text = rest


class WordCountField(Stage):
    """Add the word count to the output record (a field beside the text, not in the metadata)."""

    name = "word_count_field"

    def process(self, doc: Document) -> None:
        if doc.record is not None:
            doc.record["words"] = len(doc.text.split())


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as StageOptions: a misspelt key is an error, not ignored
    min_words: int = Field(1, ge=0)
    max_words: int = Field(100_000, ge=1)


class WordBoundsOptions(StageOptions):
    bounds: Bounds = Field(default_factory=Bounds, description="Words a document may have.")
    per_language: dict[str, Bounds] = Field(default_factory=dict, description="Bounds for some languages.")


class WordBounds(Stage):
    """Reject documents with too few or too many words: options in nested models."""

    name = "word_bounds"
    Options = WordBoundsOptions

    def process(self, doc: Document) -> None:
        o: WordBoundsOptions = self.options  # type: ignore[assignment]
        bounds = o.per_language.get(str(doc.meta.get("language")), o.bounds)
        words = len(doc.text.split())
        if not bounds.min_words <= words <= bounds.max_words:
            doc.reject(self.name, f"{words} words")


class TagStripper(Stage):
    """A user's own HTML-to-text stage (tags dropped, nothing else): it declares extracts_html, so that .html
    and WARC inputs are accepted without the built-in extract stage."""

    name = "tag_stripper"
    extracts_html = True

    def process(self, doc: Document) -> None:
        if doc.meta.get("content_type") == "text/html":
            doc.text = re.sub(r"(?s)<(script|style)\b.*?</\1>|<[^>]*>", " ", doc.text)
            doc.meta["content_type"] = "text/plain"


class RepeatedTitleAtFoot(Stage):
    """Drop the last line when it repeats the first (a page title repeated at the foot), recording where
    it was: the text alone names the first copy."""

    name = "repeated_title"

    def process(self, doc: Document) -> None:
        head, _, _ = doc.text.partition("\n")
        body, sep, last = doc.text.rpartition("\n")
        if sep and last == head:
            doc.remove(self.name, "title-at-foot", last, 1, len(body) + 1, len(doc.text))
            doc.text = body
