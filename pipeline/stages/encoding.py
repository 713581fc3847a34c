"""encoding: repair mojibake, HTML entities and bad Unicode with ftfy, only where needed.

Input bytes are decoded by the readers (UTF-8 first, then charset-normalizer); the encoding they
detected is in ``doc.meta["encoding"]`` and counted here.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import ftfy
from ftfy import TextFixerConfig
from pydantic import Field, model_validator

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

# ftfy's own defaults, and ours: the same repairs, but the writer's typography is kept.
FTFY_DEFAULTS: dict[str, Any] = {
    k: v for k, v in TextFixerConfig._field_defaults.items() if k not in ("explain", "max_decode_length")
}
PRESETS: dict[str, dict[str, Any]] = {
    "ftfy-default": FTFY_DEFAULTS,
    "preserve": {
        **FTFY_DEFAULTS,
        "fix_latin_ligatures": False,
        "fix_character_width": False,
        "uncurl_quotes": False,
        "normalization": "NFC",
    },
}

# A segment with none of these characters is left unchanged by every ftfy fix (all of them act on
# non-ASCII text, '&' entities, ESC sequences, CR line breaks or ASCII control characters).
_NEEDS_FTFY = re.compile(r"[^\t\n\x20-\x7e]|&")


class EncodingOptions(StageOptions):
    preset: Literal["preserve", "ftfy-default"] = Field(
        "preserve",
        description="Starting values for the options below: 'preserve' keeps curly quotes, "
        "full-width characters and ligatures; 'ftfy-default' is ftfy.fix_text's behaviour.",
    )
    unescape_html: bool | Literal["auto"] = Field(
        "auto", description="Decode HTML entities (&amp; ...); 'auto' skips lines of text that contain '<'."
    )
    remove_terminal_escapes: bool = Field(True, description="Remove ANSI terminal escape sequences.")
    fix_encoding: bool = Field(True, description="Undo mojibake (UTF-8 decoded as cp1252/latin-1 ...).")
    restore_byte_a0: bool = Field(True, description="Allow repairs where a space stands for byte A0.")
    replace_lossy_sequences: bool = Field(True, description="Replace unrecoverable mojibake sequences with U+FFFD.")
    decode_inconsistent_utf8: bool = Field(True, description="Fix UTF-8 mojibake mixed into otherwise correct text.")
    fix_c1_controls: bool = Field(True, description="Replace C1 control characters with their cp1252 meaning.")
    fix_latin_ligatures: bool = Field(
        False, description="Split ligatures such as 'ﬁ' into letters (changes the writer's text)."
    )
    fix_character_width: bool = Field(False, description="Fold full-width/half-width forms (changes CJK punctuation).")
    uncurl_quotes: bool = Field(False, description="Turn curly quotes into straight ones (changes typography).")
    fix_line_breaks: bool = Field(True, description="Turn CRLF, CR and Unicode line separators into \\n.")
    fix_surrogates: bool = Field(True, description="Join UTF-16 surrogate pairs into real characters.")
    remove_control_chars: bool = Field(True, description="Remove control characters that have no meaning in text.")
    normalization: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
        "NFC", description="Unicode normalization form applied by ftfy (NFKC changes meaning; null = none)."
    )
    max_decode_length: int = Field(1_000_000, ge=1, description="Longest segment (line) ftfy repairs in one piece.")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        # Options the user did not set take the preset's value.
        if isinstance(data, dict):
            preset = PRESETS.get(data.get("preset", "preserve"), {})
            data = {**preset, **data}
        return data


class EncodingStage(Stage):
    """Repair mojibake and bad Unicode with ftfy; clean lines skip ftfy with identical results."""

    name = "encoding"
    Options = EncodingOptions

    def __init__(self, options: EncodingOptions | None = None) -> None:
        super().__init__(options)
        fields = {k: getattr(self.options, k) for k in TextFixerConfig._fields if k != "explain"}
        self.ftfy_config = TextFixerConfig(**fields, explain=True)

    def process(self, doc: Document) -> None:
        encoding = doc.meta.get("encoding")
        if encoding:
            self.stat_update(f"decoded-{encoding}")
        fixed = fix_text(doc.text, self.ftfy_config, self.stat_update)
        if fixed != doc.text:
            self.stat_update("doc-changed")
            doc.text = fixed


def fix_text(text: str, config: TextFixerConfig, count: Any = None) -> str:
    """``ftfy.fix_text`` with the same segments and config, skipping segments it cannot change."""
    if not _NEEDS_FTFY.search(text):
        return text
    out: list[str] = []
    pos = 0
    while pos < len(text):
        textbreak = text.find("\n", pos) + 1
        if textbreak == 0:
            textbreak = len(text)
        if textbreak - pos > config.max_decode_length:
            textbreak = pos + config.max_decode_length
        segment = text[pos:textbreak]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if _NEEDS_FTFY.search(segment):
            fixed, explanation = ftfy.fix_and_explain(segment, config)
            if count is not None and fixed != segment:
                count("segment-fixed")
                for step, _ in explanation or ():
                    count(f"fix-{step}")
            segment = fixed
        out.append(segment)
        pos = textbreak
    return "".join(out)
