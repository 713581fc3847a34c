from __future__ import annotations

from pipeline.document import Document
from pipeline.stages.normalize import NormalizeOptions, NormalizeStage


def _norm(text: str, **options: object) -> str:
    doc = Document("d", text, "s")
    NormalizeStage(NormalizeOptions(**options)).process(doc)
    return doc.text


def test_whitespace_blank_lines_and_unicode_form() -> None:
    text = "\n\n  Title\r\n\n\n\nCafe\u0301 \u00a0 costs\t 3\u200b €   \n\n\n"
    assert _norm(text) == "  Title\n\nCafé costs 3 €"


def test_options_switch_rules_off() -> None:
    assert _norm("a\n\n\n\nb", max_blank_lines=2) == "a\n\n\nb"
    assert _norm("a  b", collapse_spaces=False) == "a  b"
    assert _norm("ﬁ", unicode_form="NFKC") == "fi"
    assert _norm("\n\nx\n\n", strip_document=False) == "\n\nx\n\n"


def test_clean_text_is_unchanged() -> None:
    text = "First line.\n\nSecond paragraph, with “quotes” and 中文。"
    assert _norm(text) == text
