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
    assert _norm("\nx\n\n", strip_document=False) == "\nx\n\n"


def test_max_blank_lines_holds_at_the_start_of_a_document_that_is_not_stripped() -> None:
    # The first line's end was counted as a line's: one blank line more was kept at the start.
    text = "\n\n\n\nA line\n\n\n\nB line\n\n\n\n"
    assert _norm(text, strip_document=False) == "\nA line\n\nB line\n\n"  # (before: "\n\nA line...")
    assert _norm(text, strip_document=False, max_blank_lines=0) == "A line\nB line\n"  # (before: "\nA line")
    assert _norm(text, strip_document=False, max_blank_lines=3) == "\n\n\nA line\n\n\n\nB line\n\n\n\n"
    assert _norm(" \n\t\n\nA", strip_document=False) == "\nA"  # (blank lines of spaces are blank)
    assert _norm("\n\nx", strip_document=False, max_blank_lines=2) == "\n\nx"
    assert _norm("\n\n\n", strip_document=False) == "\n"


def test_clean_text_is_unchanged() -> None:
    text = "First line.\n\nSecond paragraph, with “quotes” and 中文。"
    assert _norm(text) == text


def _reference(text: str) -> str:
    """The default options as plain regex substitutions, without the stage's skip checks."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]", "\n", text)
    text = re.sub(r"[\u200b\u2060\ufeff]", "", text)
    text = re.sub(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]", " ", text)
    lines = [(line[: len(line) - len(line.lstrip(" "))], line.lstrip(" ")) for line in text.split("\n")]
    text = "\n".join(indent + re.sub(" {2,}", " ", body) for indent, body in lines)
    text = re.sub(r"[ \t\u00a0\u3000]+$", "", text, flags=re.MULTILINE)
    text = re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text)
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def test_skip_checks_miss_no_special_character() -> None:
    # Every character a substitution looks for, inside a line, at a line end and at the text end,
    # in ASCII and non-ASCII text: the stage's output equals the plain substitutions.
    specials = "\r\u2028\u2029\x85\x0b\x0c\u200b\u2060\ufeff\t\u00a0\u1680\u202f\u205f\u3000" + "".join(
        map(chr, range(0x2000, 0x200B))
    )
    for host in ("Plain ASCII line.\nSecond  line here.", "Zweite Zeile, schön.\n  Eingerückt  hier."):
        for ch in specials:
            for text in (f"a{ch}b\n{host}", f"{host}{ch}\nend", f"{host}{ch}", f"{ch}{host}"):
                assert _norm(text) == _reference(text), (repr(ch), repr(text))


def _lines_reference(text: str, collapse: bool, strip: bool) -> str:
    """collapse_spaces and strip_trailing_spaces as they were done in Python, line by line."""
    import re

    if collapse:
        text = re.sub(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]", " ", text)
        lines = [(line[: len(line) - len(line.lstrip(" "))], line.lstrip(" ")) for line in text.split("\n")]
        text = "\n".join(indent + re.sub(" {2,}", " ", body) for indent, body in lines)
    if strip:
        text = "\n".join(line.rstrip(" \t\u00a0\u3000") for line in text.split("\n"))
    return text


def test_compiled_space_pass_equals_the_line_by_line_one() -> None:
    # normalize_kernels.squeeze_strip (indentation, runs of spaces, odd spaces, line ends, lone
    # surrogates), alone and as the stage runs it with each option on and off.
    import random

    from pipeline.stages.normalize_kernels import squeeze_strip_text

    rng = random.Random(7)
    alphabet = [" ", " ", " ", "a", "é", "\n", "\n", "\t", "\u00a0", "\u3000", "\u2009", "\u200b", "\r", "\ud800"]
    texts = ["", " ", "  ", "\n  \n", "  a  b  \n   c \t\n\u3000 d\u00a0 ", "x" * 3 + "   "]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    for text in texts:
        for collapse in (True, False):
            for strip in (True, False):
                expected = _lines_reference(text, collapse, strip)
                assert squeeze_strip_text(text, collapse, strip) == expected, (repr(text), collapse, strip)
                options = {"collapse_spaces": collapse, "strip_trailing_spaces": strip, "unicode_form": "none"}
                options |= {"line_breaks": False, "remove_zero_width": False, "max_blank_lines": 30}
                assert _norm(text, strip_document=False, **options) == expected, (repr(text), collapse, strip)


def test_compiled_space_pass_collapses_exactly_the_odd_spaces() -> None:
    import numpy as np

    from pipeline.stages.normalize import _ODD_SPACES
    from pipeline.stages.normalize_kernels import squeeze_strip

    # Every code point (but the line break) after an "A", so that no two spaces follow each other.
    points = np.arange(0x110000, dtype=np.uint32)
    points[10] = 0x41
    spaced = np.full(2 * points.size, 0x41, dtype=np.uint32)
    spaced[1::2] = points
    made_spaces = np.flatnonzero(squeeze_strip(spaced, True, False)[1::2] == 32).tolist()
    odd = [c for c in range(0x110000) if _ODD_SPACES.fullmatch(chr(c))]
    assert made_spaces == sorted({32, *odd})


def _options_reference(text: str, opts: NormalizeOptions) -> str:
    """The stage's options as plain regex substitutions in its order, without skip checks or compiled passes."""
    import re
    import unicodedata

    if opts.unicode_form != "none":
        text = unicodedata.normalize(opts.unicode_form, text)
    if opts.line_breaks:
        text = re.sub(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]", "\n", text)
    if opts.remove_zero_width:
        text = re.sub(r"[\u200b\u2060\ufeff]", "", text)
    if opts.collapse_spaces:
        text = re.sub(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]", " ", text)
        lines = [(line[: len(line) - len(line.lstrip(" "))], line.lstrip(" ")) for line in text.split("\n")]
        text = "\n".join(indent + re.sub(" {2,}", " ", body) for indent, body in lines)
    if opts.strip_trailing_spaces:
        text = re.sub(r"[ \t\u00a0\u3000]+$", "", text, flags=re.MULTILINE)
    leading = None if opts.strip_document else re.match(r"\A(?:[ \t]*\n)+", text)
    if leading is not None and leading.group().count("\n") > opts.max_blank_lines:
        text = "\n" * opts.max_blank_lines + text[leading.end() :]
    limit = opts.max_blank_lines
    text = re.sub(r"\n(?:[ \t]*\n){" + str(limit + 1) + ",}", "\n" * (limit + 1), text)
    if opts.strip_document:
        text = re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()
    return text


def test_the_compiled_pass_equals_the_substitutions_with_every_option() -> None:
    # normalize_kernels.normalize_points (the stage's path when line ends are stripped) against plain regex
    # substitutions in the stage's order: a "\r" before a zero-width character and "\n", blank lines of spaces,
    # odd spaces, zero-width characters between spaces, blank lines at the start and end, a lone surrogate.
    import itertools
    import random

    rng = random.Random(11)
    alphabet = [" ", " ", " ", "a", "b", "é", "e\u0301", "\n", "\n", "\n", "\t", "\u00a0", "\u3000", "\u2009"]
    alphabet += ["\u200b", "\ufeff", "\r", "\r\n", "\u2028", "\x85", "\x0c", "\x1c", "\ud800", "😀", "中", "\u1680"]
    texts = ["", "\n", " \n \n", "\n\n\n\na\n\n\n\nb\n\n\n\n", "\r\u200b\nx", "  a  b \u200b c\t\n\u3000 d\u00a0 "]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(600)]
    for line_breaks, zero_width, collapse, strip_document, limit in itertools.product(
        (True, False), (True, False), (True, False), (True, False), (0, 1, 2)
    ):
        options = NormalizeOptions(
            line_breaks=line_breaks,
            remove_zero_width=zero_width,
            collapse_spaces=collapse,
            strip_document=strip_document,
            max_blank_lines=limit,
        )
        stage = NormalizeStage(options)
        for text in texts:
            doc = Document("d", text, "s")
            stage.process(doc)
            assert doc.text == _options_reference(text, options), (repr(text), options)


def test_nfc_is_applied_only_to_texts_with_a_character_that_can_keep_them_from_nfc(monkeypatch) -> None:
    # The compiled pass marks the texts with such a character (normalize_kernels.classes): only they are made NFC
    # and passed again; the others come out as NFC then the rest would make them.
    import unicodedata

    from pipeline.stages import normalize

    texts = [
        "Ça coûte 3 € — “déjà vu”  ok\u00a0 \n\n\n中文 😀 Привет\u200b\r\n",  # NFC already (no marked character)
        "Vie\u0302\u0323t Nam  ca\u0301c\u2003ba\u0300i \n\n\nha\u0301t\r\n",  # combining marks: NFC composes them
        "\u212b ring\u2000and \u2126hm \n",  # singletons NFC changes, one of them an odd space
        "x\u200b\u0301 y",  # a zero-width space between a letter and a mark: removed after NFC, as before
    ]
    asked: list[str] = []
    real = unicodedata.normalize
    monkeypatch.setattr(normalize.unicodedata, "normalize", lambda form, text: asked.append(text) or real(form, text))
    stage = NormalizeStage()
    for text in texts:
        doc = Document("d", text, "s")
        stage.process(doc)
        expected = stage._substituted(real("NFC", text))
        assert doc.text == expected, text
    # (line by line: text_kernels.nfc_by_line)
    assert asked == ["Vie\u0302\u0323t Nam  ca\u0301c\u2003ba\u0300i \n", "ha\u0301t\r\n", texts[2], texts[3]]
    assert _norm(texts[1]) == "Việt Nam các bài\n\nhát"
    assert _norm(texts[3]) == "x\u0301 y"


def test_nfc_by_line_equals_unicodedatas_nfc() -> None:
    # Only the lines with a marked character are normalized: the same as NFC of the whole text, lone surrogates,
    # Hangul jamo, singletons and marks at a line's start included.
    import random
    import unicodedata

    from pipeline.stages.normalize_kernels import NFC_UNSAFE, classes
    from pipeline.stages.text_kernels import nfc_by_line

    pool = ["a", "e", " ", "\n", "\r", "\u0301", "\u0323", "\u0302", "\u1100", "\u1161", "\u11a8", "\uac00", "\ud800"]
    pool += ["\u212b", "\u2000", "\u0f73", "\u0958", "Việt", "中文", "\n\u0301"]
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(40)))
        assert nfc_by_line(text, classes(True), NFC_UNSAFE) == unicodedata.normalize("NFC", text), repr(text)
