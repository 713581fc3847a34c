"""encoding: ftfy-exact repair, typography kept under `preserve`, clean text untouched."""

from __future__ import annotations

import gzip
import json
import random
import re
import unicodedata
from pathlib import Path

import ftfy
import ftfy.bad_codecs  # noqa: F401 - registers sloppy-windows-1252
import pytest
from conftest import CORPORA
from ftfy import TextFixerConfig
from ftfy.badness import BADNESS_RE

from pipeline.config import InputConfig
from pipeline.document import Document
from pipeline.io import InputFile, decode_bytes, input_format, read_documents
from pipeline.stages import encoding as enc
from pipeline.stages.encoding import EncodingOptions, EncodingStage
from pipeline.stages.text_kernels import code_points, lead_positions, lead_scan

CASES_DIR = CORPORA / "ftfy-test-cases"
PASS_FILES = ["in-the-wild.json", "synthetic.json", "language-names.json", "negative.json"]


def _cases(*files: str) -> list[dict]:
    return [c for f in files for c in json.loads((CASES_DIR / f).read_text(encoding="utf-8"))]


def _fix(stage: EncodingStage, text: str) -> str:
    doc = Document("d", text, "s")
    stage.process(doc)
    return doc.text


def test_ftfy_default_preset_equals_ftfy_on_every_pass_case() -> None:
    stage = EncodingStage(EncodingOptions(preset="ftfy-default"))
    cases = [c for c in _cases(*PASS_FILES) if c["expect"] == "pass"]
    assert len(cases) == 151
    mismatches = [c["label"] for c in cases if _fix(stage, c["original"]) != c["fixed"]]
    assert mismatches == []


@pytest.mark.parametrize("preset", ["preserve", "ftfy-default"])
def test_no_preset_repairs_a_negative_case(preset: str) -> None:
    stage = EncodingStage(EncodingOptions(preset=preset))
    for case in _cases("negative.json"):
        got = _fix(stage, case["original"])
        assert got == ftfy.fix_text(case["original"], stage.ftfy_config), case["label"]
        # Only typography (quotes; C1 U+85 meant as '…') may differ from the original.
        assert ftfy.fixes.uncurl_quotes(got) == ftfy.fixes.uncurl_quotes(case["fixed"]), case["label"]


def test_preserve_keeps_typography_but_repairs_mojibake() -> None:
    stage = EncodingStage()
    assert _fix(stage, "“Quoted” ﬁne text，全角。") == "“Quoted” ﬁne text，全角。"
    assert _fix(stage, "The Mona Lisa doesnâ€™t have eyebrows.") == "The Mona Lisa doesn’t have eyebrows."
    assert _fix(stage, "Fish &amp; chips") == "Fish & chips"
    assert stage.take_stats()["doc-changed"] == 2


# Share of sentences ftfy restores exactly (measured). French is lower: "à " becomes "Ã " + space,
# and a space cannot be told apart from the lost byte A0 when it is followed by a letter.
RESTORED = {"de": 0.98, "fr": 0.8, "pl": 0.97, "pt": 0.99, "cs": 0.98, "tr": 0.99, "ru": 0.99, "el": 0.99, "zh": 0.99}


@pytest.mark.parametrize("codec", ["sloppy-windows-1252", "latin-1"])
@pytest.mark.parametrize("lang", sorted(RESTORED))
def test_synthetic_mojibake_from_real_sentences_is_restored(lang: str, codec: str) -> None:
    sentences = (CORPORA / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    stage = EncodingStage()
    broken_ok = total = 0
    for sentence in sentences[:300]:
        if sentence.isascii():
            continue
        # What a browser shows for UTF-8 read as Windows-1252 (undefined bytes kept as C1 controls).
        broken = sentence.encode("utf-8").decode(codec)
        fixed = _fix(stage, broken)
        assert fixed == ftfy.fix_text(broken, stage.ftfy_config._replace(explain=False))
        total += 1
        broken_ok += fixed == sentence
    assert total > 150
    assert broken_ok / total >= RESTORED[lang]


def test_unknown_preset_is_rejected() -> None:
    with pytest.raises(ValueError):
        EncodingOptions(preset="ftfy-fast")


# ---------------------------------------------------------------- exactness against ftfy

PRESET_NAMES = ["preserve", "ftfy-default"]


def _ftfy_config(stage: EncodingStage) -> TextFixerConfig:
    # The same options; explain=True makes ftfy honour restore_byte_a0 & co. (identical text).
    return stage.ftfy_config


def test_anchored_badness_matches_wherever_ftfy_badness_does() -> None:
    """Sample strings from every branch of ftfy's BADNESS_RE, in random context: the cheap
    anchored regex must find each (it decides which lines skip ftfy)."""
    rng = random.Random(9)
    tree = enc.sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    branches = tree.data[0][1][1]
    # Every character the regex names, plus ASCII, white space and common letters.
    named = {c for b in branches for op, av in b.data for c in enc._explicit_chars(op, av) or ()}
    pool = sorted({chr(c) for c in range(0x20, 0x7F)} | set("\n\t\xa0äöüßéçñłśżčğıаяαω") | set(map(chr, named)))
    assert len(branches) == 37
    for branch in branches:
        pieces: list[list[str]] = []
        for op, av in branch.data:
            if op is enc.sre_c.AT:
                continue
            if op is enc.sre_c.MAX_REPEAT:  # \s? : one or none
                inner = re.compile(enc._single_char(*av[2].data[0]) or ".")
                pieces.append([c for c in pool if inner.fullmatch(c)] + [""])
            else:
                element = re.compile(enc._single_char(op, av) or ".")
                pieces.append([c for c in pool if element.fullmatch(c)])
        for _ in range(150):
            core = "".join(rng.choice(p) for p in pieces)
            text = (
                "".join(rng.choices(pool, k=rng.randrange(3))) + core + "".join(rng.choices(pool, k=rng.randrange(3)))
            )
            if BADNESS_RE.search(text):
                assert enc.badness_anchored().search(text), (branch, text)
            for preset in PRESET_NAMES:
                stage = _stage(preset)
                assert _fix(stage, text) == ftfy.fix_text(text, stage.ftfy_config), (preset, text)


def test_the_scan_is_tried_only_where_it_can_match_and_finds_every_match() -> None:
    """The fixer tries its scan only at the positions ``lead_positions`` gives: the same matches as the
    scan over the whole text (ftfy's cases, and bullets, quotes and entities after every character the
    scan names, in random context), and no try at a bullet after an ordinary character."""
    rng = random.Random(17)
    needed = (chars for needs in enc._BADNESS_PREVIOUS.values() for chars in needs if chars)
    named = sorted(set().union(*enc._BADNESS_GROUPS, *needed))
    pool = [chr(c) for c in rng.sample(named, 400)] + list("ab \n\t.&;#<>1") + ["&amp;", "&#8226;", "â€¢", "Ã©"]
    texts = [c["original"] for c in _cases(*PASS_FILES, "known-failures.json")]
    for lead in "•“„«©‘€&":
        texts += [prev + lead + nxt for prev in pool for nxt in ("", "a", "™", "Â")]
    texts += ["".join(rng.choices(pool, k=rng.randrange(1, 12))) for _ in range(3000)]
    for preset in PRESET_NAMES:
        fixer = _stage(preset).fixer
        for text in texts:
            every = [(m.start(), m.group(), m.group(1)) for m in fixer.scan.finditer(text)]
            tried = lead_positions(code_points(text), fixer._lead_kind, fixer._lead_before).tolist()
            found = [(m.start(), m.group(), m.group(1)) for m in (fixer.scan.match(text, at) for at in tried) if m]
            assert found == every, (preset, text)
        assert lead_positions(code_points("a • b\n• c"), fixer._lead_kind, fixer._lead_before).size == 0
        for text in texts[-300:]:  # lead_scan: the same positions
            found, _ = lead_scan(code_points(text), fixer._scan_kind, fixer._lead_before)
            assert found.tolist() == lead_positions(code_points(text), fixer._lead_kind, fixer._lead_before).tolist()


def test_a_text_of_nfc_safe_characters_is_nfc_and_the_fixer_skips_unicodedatas_check(monkeypatch) -> None:
    """``not_nfc_safe``: text made of the other code points is NFC (random strings of them, weighted to the
    characters that start a canonical composition, Hangul's leading jamo and syllables), and lead_scan tells
    whether a text holds a listed one. The fixer then
    asks unicodedata.is_normalized only for texts with a listed character, with ftfy's output either way."""
    unsafe = enc.not_nfc_safe()
    listed = set(unsafe.tolist())
    assert {0x0301, 0x1161, 0x11A8, 0x212B, 0x0340, 0xD800, 0x0CD5} <= listed  # a mark, jamo, singletons, ...
    assert not {ord("a"), ord("é"), 0xAC00, 0x1100, 0x4E2D, 0x1F600} & listed
    firsts = sorted(
        {int(m.split()[0], 16) for c in range(0x30000) if (m := unicodedata.decomposition(chr(c))) and m[0] != "<"}
        - listed
    )
    rng = random.Random(5)
    pool = [chr(c) for c in firsts] + [chr(c) for c in (0x1100, 0x1112, 0xAC00, 0xAC01, ord("e"), ord("A"))]
    anywhere = [c for c in rng.sample(range(0x30000), 20000) if c not in listed]
    for _ in range(400):
        text = "".join(rng.choice(pool) if rng.random() < 0.7 else chr(rng.choice(anywhere)) for _ in range(60))
        assert unicodedata.is_normalized("NFC", text), [hex(ord(c)) for c in text]
    assert len(listed) < 5000  # (of 1.1M code points: the check is skipped for nearly every text)
    stage = _stage("preserve")
    fixer = stage.fixer
    assert lead_scan(code_points("Café 中文 😀"), fixer._scan_kind, fixer._lead_before)[1]
    assert not lead_scan(code_points("Cafe\u0301"), fixer._scan_kind, fixer._lead_before)[1]
    asked: list[str] = []
    check, normalize = unicodedata.is_normalized, unicodedata.normalize
    monkeypatch.setattr(enc.unicodedata, "is_normalized", lambda form, text: asked.append(text) or check(form, text))
    monkeypatch.setattr(enc.unicodedata, "normalize", lambda form, text: asked.append(text) or normalize(form, text))
    texts = ["Café 中文 😀 • ok\n" * 3, "Cafe\u0301 and \u1100\u1161\n" * 2, "plain &amp; ok\n", "\u212b ring"]
    expected = [ftfy.fix_text(text, stage.ftfy_config) for text in texts]
    asked.clear()
    for text, fixed in zip(texts, expected, strict=True):
        assert _fix(stage, text) == fixed, text
    # (NFC line by line: text_kernels.nfc_by_line)
    assert not any(a in texts[0] for a in asked) and "Cafe\u0301 and \u1100\u1161\n" in asked
    # A text the form changes is normalized once, not checked first (the check of a text with a "maybe"
    # character normalizes it whole), nor its result checked again: the form of a text in it is that text.
    # NFC: only its lines with such a character (text_kernels.nfc_by_line).
    lines = ["Vie\u0302\u0323t Nam,\n", "plain line\n", "ca\u0301c ba\u0300i\n", "ha\u0301t"]
    text = "".join(lines)
    expected = ftfy.fix_text(text, stage.ftfy_config)
    assert expected == normalize("NFC", text) != text
    asked.clear()
    assert _fix(stage, text) == expected
    assert asked == [lines[0], lines[2], lines[3]]
    # A text a fixer changes (line breaks, a C1 control): normalized again only if the result may not be NFC;
    # under ftfy-default, width folding makes half-width katakana's sound mark a combining one (then composed).
    normalized: list[str] = []
    real_normalize = unicodedata.normalize
    monkeypatch.setattr(
        enc.unicodedata, "normalize", lambda form, text: normalized.append(text) or real_normalize(form, text)
    )
    seen = 0
    for preset in PRESET_NAMES:
        stage = _stage(preset)
        for text in ["Line one\r\nline two\r\n", "Price \x80 5\r\n", "ｶﾞｲﾄﾞ\r\n", "Cafe\u0301\r\n", "ok\x1b[1m bold"]:
            expected = ftfy.fix_text(text, stage.ftfy_config)
            del normalized[seen:]  # (only the fixer's own calls)
            assert _fix(stage, text) == expected, (preset, text)
            seen = len(normalized)
    assert not any(text.startswith(("Line one", "ok")) for text in normalized)  # ("Price": ftfy's own, a C1 control)
    assert any(text.startswith("Cafe") for text in normalized)


_STAGES: dict[str, EncodingStage] = {}


def _stage(preset: str) -> EncodingStage:
    if preset not in _STAGES:
        _STAGES[preset] = EncodingStage(EncodingOptions(preset=preset))
    return _STAGES[preset]


def _jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_real_documents_equal_ftfy(preset: str) -> None:
    stage = _stage(preset)
    docs = _jsonl_texts(CORPORA / "cc-2019-30-dolma" / "docs.jsonl")
    # Every 8th trafilatura page keeps this test short; the benchmark compares all of them.
    docs += _jsonl_texts(CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl")[::8]
    mismatches = [i for i, text in enumerate(docs) if _fix(stage, text) != ftfy.fix_text(text, stage.ftfy_config)]
    assert mismatches == []


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_lingua_sentences_in_every_language_equal_ftfy(preset: str) -> None:
    stage = _stage(preset)
    paths = sorted((CORPORA / "lingua-sentences").glob("*.txt"))
    assert len(paths) == 75
    for path in paths:
        sample = "\n".join(path.read_text(encoding="utf-8").splitlines()[:150]) + "\n"
        assert _fix(stage, sample) == ftfy.fix_text(sample, stage.ftfy_config), path.name


def test_clean_text_in_all_75_languages_is_unchanged_under_preserve() -> None:
    stage = _stage("preserve")
    for path in sorted((CORPORA / "lingua-sentences").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        # Sentences ftfy itself would touch are not clean (e.g. Bengali often not in NFC); the
        # others must pass through untouched.
        lines = [ln for ln in text.splitlines()[:400] if ftfy.fix_text(ln, stage.ftfy_config) == ln]
        assert len(lines) > 100, path.name
        sample = "\n".join(lines)
        assert _fix(stage, sample) == sample, path.name


# Lines exercising every fixer and the segment rules: entities before and after a '<' line (ftfy
# stops decoding entities for the rest of the text), CRLF, CR, U+2028, C1, controls, ANSI
# escapes, surrogates, ligatures, full-width, curly quotes, NFD, mojibake next to clean lines.
TRICKY_LINES = [
    "Fish &amp; chips &eacute;t&eacute; &#x2019;n&#8217; &NotAnEntity; &amp",
    "Crème brûlée, Łódź, Straße, Ελληνικά, русский, 中文，全角。",
    "The Mona Lisa doesnâ€™t have eyebrows.\r",
    "CRLF line\r\n",
    "old Mac\rline breaks\u2028and\u2029separators\x85end",
    "C1 \x93quoted\x94 and \x80 euro",
    "bell\x07 nul\x00 bom\ufeff sub\x1a ok",
    "\x1b[36;44mcolored\x1b[0m text",
    "surrogates \ud83d\udca9 lone \ud800 end",
    "ligatures ﬁne ﬂow ĳs and ＦＵＬＬ　ｗｉｄｔｈ ｶﾀｶﾅ",
    "“curly” ‘quotes’ ʼn",
    "NFD: Cafe\u0301 and A\u030a",
    "voilÃ le travail, Ã  la maison",
    "<b>html</b> &amp; stays after a tag",
    "and &eacute; stays too",
    "ÐŸÑ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
    "â€œmixedâ€\x9d with “real” quotes",
    "sÃ³lo Ã©l",
    "",
    "plain ASCII line",
]
OPTION_VARIANTS: list[dict[str, object]] = (
    [{}]
    + [
        {name: not default}
        for name, default in enc.FTFY_DEFAULTS.items()
        if isinstance(default, bool) and name != "unescape_html"
    ]
    + [{"unescape_html": True}, {"unescape_html": False}, {"normalization": "NFKC"}, {"normalization": None}]
)


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("variant", OPTION_VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "preset")
def test_every_option_equals_ftfy_with_the_same_options(preset: str, variant: dict[str, object]) -> None:
    stage = EncodingStage(EncodingOptions(preset=preset, **variant))
    rng = random.Random(str(variant))
    for trial in range(8):
        lines = rng.sample(TRICKY_LINES, k=rng.randrange(1, len(TRICKY_LINES)))
        text = "\n".join(lines) + rng.choice(["", "\n"])
        assert _fix(stage, text) == ftfy.fix_text(text, stage.ftfy_config), (trial, text)
        # Short segments: ftfy cuts lines at max_decode_length; so must we.
        short = EncodingStage(EncodingOptions(preset=preset, max_decode_length=7, **variant))
        assert _fix(short, text) == ftfy.fix_text(text, short.ftfy_config), (trial, text)


def test_counters_name_the_fixes_per_document() -> None:
    stage = EncodingStage()
    docs = [
        Document("a", "doesnâ€™t", "s", meta={"encoding": "cp1252"}),
        Document("b", "Fish &amp; chips\r\nbell\x07", "s"),
        Document("c", "C1 \x93quoted\x94", "s"),
        Document("d", "clean “text”", "s"),
    ]
    for doc in docs:
        stage.process(doc)
    stats = stage.take_stats()
    assert docs[0].text == "doesn’t" and docs[3].text == "clean “text”"
    assert stats["doc-changed"] == 3
    assert stats["doc-fixed-mojibake"] == 1
    assert stats["doc-fixed-html-entities"] == 1
    assert stats["doc-fixed-line-breaks"] == 1
    assert stats["doc-fixed-control-chars"] == 1
    assert stats["doc-fixed-c1-controls"] == 1
    assert stats["decoded-cp1252"] == 1


# ---------------------------------------------------------------- bytes in

# Real sentences in legacy encodings, 20 samples of 12 sentences each: the share decoded to exactly
# the original text (measured, minus a margin). Single-byte Latin code pages whose letters differ are
# sometimes confused on short text; among candidates charset-normalizer scores alike, the one whose words are
# frequent words of a language is taken (io._detect).
LEGACY = [
    ("de", "cp1252", 1.0),
    ("fr", "cp1252", 0.95),
    ("fi", "latin-1", 0.9),
    ("it", "latin-1", 0.9),
    ("pt", "latin-1", 0.95),  # (0.85 before the frequent words decided between close candidates)
    ("sv", "latin-1", 0.9),
    ("da", "latin-1", 1.0),
    ("pl", "cp1250", 1.0),
    ("cs", "cp1250", 0.9),
    ("hu", "cp1250", 0.5),  # ő/ű read as cp1252 õ/û: charset-normalizer scores both the same (0.4 before)
    ("ru", "cp1251", 1.0),
    ("uk", "cp1251", 1.0),
    ("ru", "koi8-r", 1.0),
    ("zh", "gb18030", 1.0),
    ("ja", "shift_jis", 0.9),
    ("ko", "euc-kr", 1.0),
    ("el", "cp1253", 0.95),  # one sample of 20 read as iso8859_7 (Ά as ’), which has one listed word more
    ("tr", "cp1254", 0.95),  # (0.8 before)
    ("he", "cp1255", 0.95),
    ("ar", "cp1256", 1.0),
    ("lt", "cp1257", 0.9),  # (not listed before: mostly read as cp1252/cp1250)
    ("lv", "cp1257", 0.95),
    ("et", "cp1257", 0.9),
]


def _encodable(lang: str, codec: str) -> list[str]:
    """Non-ASCII sentences of ``lang`` that ``codec`` can encode."""
    out = []
    for sentence in (CORPORA / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines():
        if sentence.isascii():
            continue
        try:
            sentence.encode(codec)
        except UnicodeEncodeError:
            continue
        out.append(sentence)
    return out


@pytest.mark.parametrize(("lang", "codec", "share"), LEGACY, ids=lambda x: str(x))
def test_legacy_encoded_files_are_decoded(lang: str, codec: str, share: float) -> None:
    sentences = _encodable(lang, codec)
    samples = ["\n".join(sentences[i : i + 12]) + "\n" for i in range(0, 240, 12)]
    assert len(samples) == 20
    right = 0
    for text in samples:
        data = text.encode(codec)
        assert data.decode("utf-8", "replace") != text  # really not UTF-8
        got, encoding, error = decode_bytes(data)
        assert (got is None) == (error is not None)  # decoded whole, or refused with a reason
        right += got == text
    assert right / len(samples) >= share


@pytest.mark.parametrize("lang", ["de", "zh", "ru", "ar", "hi"])
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_utf16_with_bom_and_utf8_bom_round_trip(lang: str, codec: str) -> None:
    text = "\n".join((CORPORA / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:5])
    data = text.encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    got, encoding, error = decode_bytes(data)
    assert (got, error) == (text, None)
    assert encoding == (None if codec == "utf-8-sig" else "utf_16")


def test_binary_files_are_rejected_whole_with_a_reason() -> None:
    page = sorted((CORPORA / "trafilatura-testpages" / "html" / "eval").glob("*.html.gz"))[0].read_bytes()
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    controls = bytes(b for b in gzip.decompress(page)[:4000] if b < 0x80)[:2000] + b"\x01\x02\x03\x04" * 100
    for data in (page, png, bytes(1000), controls):
        text, encoding, error = decode_bytes(data)
        assert text is None and encoding is None
        assert error and error.startswith("binary file"), error
    assert decode_bytes(gzip.decompress(page))[2] is None  # the page itself is text


def test_a_cp1250_txt_file_is_read_and_its_encoding_recorded(tmp_path: Path) -> None:
    text = "\n".join(_encodable("pl", "cp1250")[:12]) + "\n"
    path = tmp_path / "polski.txt"
    path.write_bytes(text.encode("cp1250"))
    (doc,) = read_documents(InputFile(path, "polski.txt", *input_format(path)), InputConfig())  # type: ignore[misc]
    assert doc.rejected is None and doc.text == text
    stage = EncodingStage()
    stage.process(doc)
    assert stage.take_stats()[f"decoded-{doc.meta['encoding']}"] == 1


def test_a_character_class_with_ranges_matches_exactly_its_code_points() -> None:
    # The scan's classes are written with ranges (a shorter pattern that compiles ~2x faster at start-up).
    import re

    from pipeline.stages.encoding import _charclass

    sets = [
        set(range(0, 40)) - {9, 10, 12},  # controls but tab, newline, form feed
        {1, 2, 3, 5, 7, 8, 9, 0x5D, 0x5E, 0x2D, 0x5C, 0x80, 0x81, 0x82, 0x2028},  # "]", "^", "-", "\\" inside
        set(range(0xD7FE, 0xE002)) | {0x10FFFF, 0x1F600, 0x1F601},  # around the surrogates, astral
    ]
    probe = range(0, 0x3000)
    for chars in sets:
        pattern = re.compile(_charclass(chars))
        assert [c for c in probe if (pattern.fullmatch(chr(c)) is not None) != (c in chars)] == []
        assert all(pattern.fullmatch(chr(c)) for c in chars)
    assert len(_charclass(range(0x80, 0x100))) < 30


def test_the_heavy_pattern_is_compiled_only_for_texts_that_need_it() -> None:
    # (~8 ms of every process's first document otherwise.) A short text with a scan: the scan finds the heavy
    # segments itself; a text longer than max_decode_length is cut in ftfy's segments, each checked with it.
    stage = EncodingStage()
    text = "Caf\u00c3\u00a9 &amp; plain text \u2014 fixed."
    assert stage.fixer.fix(text) == ftfy.fix_text(text, stage.fixer.config._replace(explain=False))
    assert "heavy" not in vars(stage.fixer)
    long = "plain line\n" * (stage.fixer.max_len // 11 + 10) + text
    assert stage.fixer.fix(long) == ftfy.fix_text(long, stage.fixer.config._replace(explain=False))
    assert vars(stage.fixer)["heavy"] is not None
