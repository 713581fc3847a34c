"""normalize: Unicode form, whitespace inside lines, blank lines, leading/trailing blank lines."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

# Horizontal whitespace other than a plain space: tabs, NBSP, the Unicode spaces, ideographic space
# (what collapse_spaces makes a space: normalize_kernels.squeeze_strip, tested against this pattern).
_ODD_SPACES = re.compile(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile(r"[\u200b\u2060\ufeff]")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")

# Most documents contain none of the characters a pattern looks for; a substring test per character
# is ~30x cheaper than letting the regex scan the text, so each substitution runs only when needed.
_ODD_SPACE_CHARS = ("\u00a0", "\u1680", "\u202f", "\u205f", "\u3000", *map(chr, range(0x2000, 0x200B)))
_ZERO_WIDTH_CHARS = ("\u200b", "\u2060", "\ufeff")
_LINE_BREAK_CHARS = ("\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c")
_TRAILING_CHARS = (" ", "\t", "\u00a0", "\u3000")
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
    text_only = True  # (the runner may normalize a document ahead of dedup: Stage.text_only)

    def __init__(self, options: NormalizeOptions | None = None) -> None:
        super().__init__(options)
        limit = self.options.max_blank_lines
        self._blank_runs = re.compile(r"\n(?:[ \t]*\n){" + str(limit + 1) + ",}")
        self._blank_replacement = "\n" * (limit + 1)

    def process(self, doc: Document) -> None:
        opts = self.options
        text = doc.text
        form = opts.unicode_form if not text.isascii() else "none"
        if opts.strip_trailing_spaces:
            # All the rest in one compiled pass (normalize_kernels.normalize_points; the substitutions below,
            # each run only where a check finds its characters, took ~0.155 s of CPU on 40 MB of web text: ~0.1 s
            # so, a pass over every text included).
            from pipeline.stages.normalize_kernels import NFC_UNSAFE, classes, normalize_text  # (numba: when needed)
            from pipeline.stages.text_kernels import nfc_by_line

            if form not in ("none", "NFC"):
                text = unicodedata.normalize(form, text)
            # NFC: the pass also looks for a character that can keep the text from being NFC (none in most
            # texts: then NFC would leave it as it is; unicodedata's check of every character was ~0.024 s on
            # 40 MB), and only a text with one is made NFC first and passed again.
            args = (opts.line_breaks, opts.remove_zero_width, opts.collapse_spaces, opts.max_blank_lines)
            fixed = normalize_text(text, *args, opts.strip_document, form == "NFC")
            if fixed is None:
                fixed = normalize_text(nfc_by_line(text, classes(True), NFC_UNSAFE), *args, opts.strip_document)
            text = fixed
        else:
            if form != "none":
                text = unicodedata.normalize(form, text)
            text = self._substituted(text)
        if text != doc.text:
            self.stat_update("doc-changed")
            doc.text = text

    def _substituted(self, text: str) -> str:
        """The text after the Unicode form with the other options applied by substitutions (each run only where
        a check finds its characters)."""
        opts = self.options
        ascii_only = text.isascii()
        if opts.line_breaks and _has_any(text, _LINE_BREAK_CHARS):
            text = _LINE_BREAKS.sub("\n", text)
        if opts.remove_zero_width and not ascii_only and _has_any(text, _ZERO_WIDTH_CHARS):
            text = _ZERO_WIDTH.sub("", text)
        # (Collapsed, the only character a line can end with that strip_trailing_spaces strips is the space.)
        collapse = opts.collapse_spaces and (
            "  " in text or "\t" in text or (not ascii_only and _has_any(text, _ODD_SPACE_CHARS))
        )
        strip = opts.strip_trailing_spaces and (
            collapse  # (the compiled pass strips line ends at no extra cost)
            or (" \n" in text if opts.collapse_spaces else _has_any(text, _TRAILING_BEFORE_BREAK))
            or text.endswith(_TRAILING_CHARS)
        )
        if collapse or strip:
            # Odd spaces made spaces, runs of spaces after a line's first other character squeezed to one
            # (indentation kept), then line ends stripped (str.rstrip of _TRAILING_CHARS): one compiled pass.
            from pipeline.stages.normalize_kernels import squeeze_strip_text  # (numba: loaded when needed)

            text = squeeze_strip_text(text, collapse, strip)
        leading = None if opts.strip_document else _LEADING_BLANK_LINES.match(text)
        if leading is not None and leading.group().count("\n") > opts.max_blank_lines:
            # Blank lines at the start: no line ends before the first, as _blank_runs counts from a line's end.
            text = "\n" * opts.max_blank_lines + text[leading.end() :]
        text = self._blank_runs.sub(self._blank_replacement, text)
        if opts.strip_document:
            text = _LEADING_BLANK_LINES.sub("", text).rstrip()
        return text
