"""normalize: Unicode form, whitespace inside lines, blank lines, leading/trailing blank lines."""

from __future__ import annotations

import re
import unicodedata
from itertools import repeat
from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

# Horizontal whitespace other than a plain space: tabs, NBSP, the Unicode spaces, ideographic space.
_ODD_SPACES = re.compile(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUNS = re.compile(r" {2,}")
_ZERO_WIDTH = re.compile(r"[\u200b\u2060\ufeff]")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")

# Most documents contain none of the characters a pattern looks for; a substring test per character
# is ~30x cheaper than letting the regex scan the text, so each substitution runs only when needed.
_ODD_SPACE_CHARS = ("\u00a0", "\u1680", "\u202f", "\u205f", "\u3000", *map(chr, range(0x2000, 0x200B)))
_ZERO_WIDTH_CHARS = ("\u200b", "\u2060", "\ufeff")
_LINE_BREAK_CHARS = ("\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c")
_TRAILING_CHARS = (" ", "\t", "\u00a0", "\u3000")
_TRAILING = "".join(_TRAILING_CHARS)
_TRAILING_BEFORE_BREAK = tuple(c + "\n" for c in _TRAILING_CHARS)


def _has_any(text: str, chars: tuple[str, ...]) -> bool:
    return any(c in text for c in chars)


class NormalizeOptions(StageOptions):
    unicode_form: Literal["NFC", "NFKC", "none"] = Field(
        "NFC",
        description="Unicode normalization form (NFKC folds compatibility characters; changes meaning; 'none' "
        "or null: none).",
    )

    @field_validator("unicode_form", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        return "none" if value is None else value  # as encoding's normalization: null is written

    line_breaks: bool = Field(True, description="Turn CRLF, CR and Unicode line/paragraph separators into \\n.")
    strip_trailing_spaces: bool = Field(True, description="Remove spaces and tabs at the end of lines.")
    collapse_spaces: bool = Field(
        True,
        description="Turn tabs and odd Unicode spaces into one space and squeeze runs of spaces "
        "(leading indentation is kept).",
    )
    remove_zero_width: bool = Field(True, description="Remove zero-width spaces, word joiners and stray BOMs.")
    max_blank_lines: int = Field(1, ge=0, description="Keep at most this many blank lines in a row.")
    strip_document: bool = Field(True, description="Remove blank lines at the start and end of the document.")


class NormalizeStage(Stage):
    """Produce clean normalized text: Unicode form, spaces, blank lines."""

    name = "normalize"
    Options = NormalizeOptions

    def __init__(self, options: NormalizeOptions | None = None) -> None:
        super().__init__(options)
        limit = self.options.max_blank_lines
        self._blank_runs = re.compile(r"\n(?:[ \t]*\n){" + str(limit + 1) + ",}")
        self._blank_replacement = "\n" * (limit + 1)

    def process(self, doc: Document) -> None:
        opts = self.options
        text = doc.text
        if opts.unicode_form != "none" and not text.isascii():
            text = unicodedata.normalize(opts.unicode_form, text)
        ascii_only = text.isascii()
        if opts.line_breaks and _has_any(text, _LINE_BREAK_CHARS):
            text = _LINE_BREAKS.sub("\n", text)
        if opts.remove_zero_width and not ascii_only and _has_any(text, _ZERO_WIDTH_CHARS):
            text = _ZERO_WIDTH.sub("", text)
        if opts.collapse_spaces:
            if "\t" in text or (not ascii_only and _has_any(text, _ODD_SPACE_CHARS)):
                text = _ODD_SPACES.sub(" ", text)
            # squeeze runs after the first non-space character of each line (keep indentation)
            text = "\n".join(_squeeze(line) for line in text.split("\n")) if "  " in text else text
        if opts.strip_trailing_spaces and (_has_any(text, _TRAILING_BEFORE_BREAK) or text.endswith(_TRAILING_CHARS)):
            # Line by line in C: a MULTILINE "[ ...]+$" regex tries a match at every space of the text (5x slower).
            text = "\n".join(map(str.rstrip, text.split("\n"), repeat(_TRAILING)))
        leading = None if opts.strip_document else _LEADING_BLANK_LINES.match(text)
        if leading is not None and leading.group().count("\n") > opts.max_blank_lines:
            # Blank lines at the start: no line ends before the first, as _blank_runs counts from a line's end.
            text = "\n" * opts.max_blank_lines + text[leading.end() :]
        text = self._blank_runs.sub(self._blank_replacement, text)
        if opts.strip_document:
            text = _LEADING_BLANK_LINES.sub("", text).rstrip()
        if text != doc.text:
            self.stat_update("doc-changed")
            doc.text = text


def _squeeze(line: str) -> str:
    body = line.lstrip(" ")
    if "  " not in body:
        return line
    return line[: len(line) - len(body)] + _SPACE_RUNS.sub(" ", body)
