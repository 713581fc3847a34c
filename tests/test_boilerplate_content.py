"""Boilerplate stage: content the line scorer removed and the stage now keeps (cases found by reading the
removals on the Common Crawl and trafilatura pages)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.document import Document
from pipeline.stages import boilerplate
from pipeline.stages.boilerplate import SCORER_RULE, BoilerplateStage

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
TESTPAGES = CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl"


@pytest.fixture(scope="module")
def stage() -> BoilerplateStage:
    return BoilerplateStage()


def page(path: Path, doc_id: str) -> dict:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if f'"{doc_id}"' in line[:80] and (d := json.loads(line))["id"] == doc_id:
                return d
    raise KeyError(doc_id)


def cleaned(stage: BoilerplateStage, text: str, url: str | None = None) -> Document:
    doc = Document("t", text, "t.jsonl", record={"url": url})
    stage.process(doc)
    return doc


# -- numbered lists ---------------------------------------------------------------------------------


def scored_out(verdict: list[str | None]) -> list[int]:
    """The lines the line scorer removed, in order (what the stage passes the rescues)."""
    return [i for i, rule in enumerate(verdict) if rule == SCORER_RULE]


def _verdicts(lines: list[str], removed: dict[int, str]) -> tuple[list[str | None], list]:
    verdict: list[str | None] = [removed.get(i) for i in range(len(lines))]
    infos = [(1, 2) if line.strip() else None for line in lines]
    return verdict, infos


def test_numbered_list_mostly_kept_keeps_its_scored_items():
    lines = ["Intro:", "1. Robert Plant", "2. Rob Halford", "", "3. Steven Tyler", "4. Bon Scott", "5. Axl Rose"]
    verdict, infos = _verdicts(lines, {4: SCORER_RULE, 6: SCORER_RULE})
    assert boilerplate._numbered_list_items(lines, verdict, infos, scored_out(verdict)) == [4, 6]
    # An item another rule removed stays removed (it counts as a removed item).
    verdict, infos = _verdicts(lines, {1: "recurring", 6: SCORER_RULE})
    assert boilerplate._numbered_list_items(lines, verdict, infos, scored_out(verdict)) == [6]


def test_numbered_list_mostly_removed_or_short_or_broken_is_left_alone():
    crumbs = ["1. Startseite", "2. Presse", "3. Meldungen", "4. 2022", "5. Neue Taskforce nimmt die Arbeit auf"]
    verdict, infos = _verdicts(crumbs, {0: "recurring", 1: SCORER_RULE, 2: SCORER_RULE})
    assert boilerplate._numbered_list_items(crumbs, verdict, infos, scored_out(verdict)) == []  # 2 of 5 kept
    short = ["1. Home", "2. News", "3. Sport", "4. Wetter"]
    verdict, infos = _verdicts(short, {1: SCORER_RULE})
    assert boilerplate._numbered_list_items(short, verdict, infos, scored_out(verdict)) == []  # fewer than 5 items
    # Numbers that do not follow each other, or items far apart, are no list.
    jumpy = ["1. a b", "2. c d", "4. e f", "5. g h", "6. i j"]
    verdict, infos = _verdicts(jumpy, {3: SCORER_RULE})
    assert boilerplate._numbered_list_items(jumpy, verdict, infos, scored_out(verdict)) == []
    apart = ["1. a", "2. b", "x", "y", "z", "3. c", "4. d", "5. e"]
    verdict, infos = _verdicts(apart, {6: SCORER_RULE})
    assert boilerplate._numbered_list_items(apart, verdict, infos, scored_out(verdict)) == []


@pytest.mark.skipif(not TESTPAGES.exists(), reason="trafilatura test pages not available")
def test_ranked_list_of_an_article_is_kept_whole(stage):
    # hearya.com "Hit Parader's Top 100 Metal Vocalists": the scorer removed 39 of the 100 names
    # ("05. Bon Scott", "11. Axl Rose", ...) and kept the others.
    d = page(TESTPAGES, "b3c2573b083f336b")
    items = [line.strip() for line in d["text"].split("\n") if re.match(r"\s*\d{1,3}\. \S", line)]
    assert len(items) == 100
    doc = cleaned(stage, d["text"], d["url"])
    kept = set(doc.text.split("\n"))
    assert [item for item in items if item not in {k.strip() for k in kept}] == []
    assert not any(r.rule == SCORER_RULE and r.text.strip() in items for r in doc.removed)


# -- a sentence between two kept paragraphs -----------------------------------------------------------

CC = CORPORA / "cc-2019-30-dolma" / "docs.jsonl"


def _infos(lines: list[str]) -> list:
    # (key, words, rule, crumb, prose, nav item, body chars, keep): the fields the rescue reads
    return [
        (1, len(line.split()), None, None, boilerplate.looks_like_prose(line, len(line.split())), False, 0, False)
        if line.strip()
        else None
        for line in lines
    ]


def test_sentence_between_kept_paragraphs_is_kept_but_not_a_teaser_or_list_item():
    para = "The council met on Tuesday to discuss the new budget for the coming year in the town hall."
    for middle, kept in [
        ("The series first aired on Sunday evenings, during what was known as the family hour.", True),
        ("Should you earn a master of arts in teaching or a master of education this year?", False),
        ("• It's over! The star files for divorce from her husband after 21 years of marriage.", False),
        ("FP\t\tMotorrad Räder: Hinterrad aus und einbauen, arbeiten nach der Anweisung im Lehrmaterial.", False),
        ("Share this article with your friends", False),  # no sentence
    ]:
        lines = [para, "", middle, "", para]
        verdict: list[str | None] = [None, None, SCORER_RULE, None, None]
        assert boilerplate._sentences_between_prose(lines, verdict, _infos(lines), scored_out(verdict)) == (
            [2] if kept else []
        ), middle
    # Only between two kept paragraphs of prose: not next to a removed line or a short kept one.
    lines = [para, "Read more", "The series first aired on Sunday evenings, during the family hour.", para]
    verdict = [None, None, SCORER_RULE, None]
    assert boilerplate._sentences_between_prose(lines, verdict, _infos(lines), scored_out(verdict)) == []


@pytest.mark.skipif(not CC.exists(), reason="Common Crawl documents not available")
def test_sentence_of_a_wiki_article_between_kept_paragraphs_is_kept(stage):
    # battlestarwiki "Galactica 1980": the scorer removed the second sentence of the section on the
    # broadcast, between two kept paragraphs.
    d = page(CC, "awsyqect7xlxhxwjwpu675atitx3cklk")
    sentence = (
        'The series first aired in Sunday\'s 7:00 PM time slot, during what was known as the "family hour", '
        "targeting the show's audience primarily for children."
    )
    assert sentence in d["text"]
    doc = cleaned(stage, d["text"], d["url"])
    assert sentence in doc.text
    assert not any(r.text.strip() == sentence for r in doc.removed)


# -- the page's title, named by its URL ------------------------------------------------------------


def test_url_title_words():
    words = boilerplate.url_title_words
    assert words("https://adhd.org.sa/en/publication/current-state-of-psychiatry-in-saudi-arabia/") == [
        ("current", "state", "of", "psychiatry", "in", "saudi", "arabia"),
        ("publication", "current", "state", "of", "psychiatry", "in", "saudi", "arabia"),
        ("en", "publication", "current", "state", "of", "psychiatry", "in", "saudi", "arabia"),
    ]
    assert words("https://it.wikipedia.org/wiki/Bord%C3%A8res-Louron")[0] == ("bordères", "louron")
    assert ("category", "mapping", "party", "in", "asia", "translations") in words(
        "https://wiki.openstreetmap.org/wiki/Category:Mapping_Party_in_Asia/translations"
    )
    # File extension and trailing ids go; no path, no title.
    assert words("http://www.forosdelweb.com/f100/pl-sql-oracle9i-398385/")[0] == ("pl", "sql", "oracle9i")
    assert words("https://www.iha.co.nl/gite-te-huur-kersey_36055.html")[0] == ("gite", "te", "huur", "kersey")
    assert words("https://example.org/") == [] and words(None) == []


def test_url_title_words_plain_url_path_is_urlsplits():
    """url_title_words reads the path of the usual URL with a regex (_PLAIN_URL_PATH_RE) instead of urlsplit:
    wherever it matches (and the URL has no tab or line break), its path is urlsplit's, on URLs built from
    pieces that make urlsplit take other turns (ports, user info, queries and fragments in either order,
    upper-case schemes and hosts, brackets, percent escapes, spaces)."""
    import random
    from urllib.parse import urlsplit

    schemes = ["http://", "https://", "HTTP://", "ftp://", "http:/", "https:///", " http://", ""]
    hosts = ["example.org", "www.ex-ample.co.uk", "Example.org", "a.b", "host:8080", "host:", "host:80x", "u@host",
             "[::1]", "h\u00e9.org", "", "1.2.3.4"]  # fmt: skip
    tails = ["", "/", "/a/b-c", "/%C3%A8t%C3%A9/", "?q=1", "#f", "/p?q#f", "/p#f?q", "/p;x", "//two", "/a b", "/\t/x",
             "\n", "/x.html", "/2019/05/some-title-123.html"]  # fmt: skip
    rnd = random.Random(7)
    matched = 0
    for _ in range(4000):
        url = rnd.choice(schemes) + rnd.choice(hosts) + "".join(rnd.choice(tails) for _ in range(rnd.randint(0, 3)))
        plain = boilerplate._PLAIN_URL_PATH_RE.match(url)
        if plain is None or any(c in url for c in "\t\r\n"):
            continue
        matched += 1
        assert plain.group(1) == urlsplit(url).path, url
    assert matched > 200
    # And the words of URLs through both paths (a host urlsplit refuses: no words).
    words = boilerplate.url_title_words
    assert words("https://ex.org:8080/a/the-title-here?x#y", 1) == [("the", "title", "here")]
    assert words("http://[::1/the-title") == []
    assert words("HTTPS://Ex.org/Some-Title/") == words("https://ex.org/Some-Title/") == [("some", "title")]


def test_url_title_words_of_the_last_segment_first_and_a_longer_title_still_found():
    """_url_title_line asks url_title_words for the last segment's words first (most=1: the full list's
    first entry) and for the longer sequences only when it compares a line's words: a title of the last two
    segments is still found, and a URL whose last segment has no words falls back to the full list."""
    words = boilerplate.url_title_words
    url = "https://wiki.openstreetmap.org/wiki/Category:Mapping_Party_in_Asia/translations"
    assert words(url, 1) == [("translations",)] == words(url)[:1]
    assert len(words(url)) == 3
    assert words("https://example.org/some-long-title-here/2019/", 1) == []  # (digits only: no words)
    assert words("https://example.org/some-long-title-here/2019/")[0] == ("some", "long", "title", "here")
    lines = ["Category:Mapping Party in Asia/translations", "Translations of the page are listed below here.", "x"]
    infos = [(1, 6), (1, 7), (1, 1)]
    assert boilerplate._url_title_line(lines, [SCORER_RULE, None, None], infos, url) == 0
    # The last segment without words: the first title is the last two segments' words ("some long title here").
    url = "https://example.org/some-long-title-here/2019/"
    lines = ["Some long title here", "A paragraph of text that is long enough here.", "x"]
    assert boilerplate._url_title_line(lines, [SCORER_RULE, None, None], infos, url) == 0


def test_holding_finds_the_lines_whose_lower_case_holds_the_needle_on_either_path():
    """_holding (the title test's search) gives the lines whose str.lower() holds the needle, whether it
    searches the text lowered as str or (an ASCII needle of letters and digits, no İ or Kelvin sign in the
    lines) the text with every other character as "?" lowered as bytes; including the two characters that
    lower-case to ASCII, "?" in the text, astral characters and lone surrogates."""
    import random

    chars = [*"abcdeKkIiİıéÉßẞΣσς ?", "\u212a", "\U0001f600", "\ud800"]
    needles = ["k", "ki", "ab", "i", "é", "ss", "σ", "a?", "ka", "i\u0307", "e1"]
    for seed in range(3000):
        rnd = random.Random(seed)
        texts = ["".join(rnd.choice(chars) for _ in range(rnd.randint(0, 12))) for _ in range(rnd.randint(1, 8))]
        needle = rnd.choice(needles)
        assert boilerplate._holding(texts, needle) == [i for i, t in enumerate(texts) if needle in t.lower()]
    # The Kelvin sign and İ send the search to the str path: their lower case holds "k" and "i".
    assert boilerplate._holding(["x\u212ay", "nothing"], "k") == [0]
    assert boilerplate._holding(["a", "\u0130x"], "i") == [1]
    assert boilerplate._holding(["Grüße aus KÖLN", "köln"], "k") == [0, 1]


def test_url_title_line_only_when_no_copy_was_kept_and_not_a_menu_entry():
    url = "https://example.org/blog/2019/05/storm-floods-northern-districts/"
    lines = ["• Storm floods northern districts", "Storm Floods Northern Districts", "Text."]
    infos = [(1, 4), (1, 4), (1, 1)]
    # The menu entry linking to the page is not its title; the heading is.
    assert boilerplate._url_title_line(lines, [SCORER_RULE, SCORER_RULE, None], infos, url) == 1
    assert boilerplate._url_title_line(lines, ["navigation", None, None], infos, url) is None  # kept already
    assert boilerplate._url_title_line(lines, [None, SCORER_RULE, None], infos, url) is None  # a copy kept
    assert boilerplate._url_title_line(lines, [SCORER_RULE, "recurring", None], infos, url) is None
    # A slug of 4+ words may be cut short: a line starting with its words is the title, unless a line
    # with exactly the slug's words or another such line was kept.
    url = "https://blog.example/2019/07/storm-floods-the-northern.html"
    lines = ["Storm floods the northern districts", "Storm floods the northern", "Text."]
    assert boilerplate._url_title_line(lines, [SCORER_RULE, SCORER_RULE, None], infos, url) == 1
    assert boilerplate._url_title_line(lines, [SCORER_RULE, "recurring", None], infos, url) == 0
    assert boilerplate._url_title_line(lines, [SCORER_RULE, None, None], infos, url) is None
    assert (
        boilerplate._url_title_line(lines[:1] + lines, [SCORER_RULE, None, "tags", None], infos + infos[:1], url) == 2
    )
    # A one-word title needs 4 characters ("Blog" on /blog/ is one, "FAQ" on /faq is not taken).
    assert (
        boilerplate._url_title_line(["FAQ", "Text."], [SCORER_RULE, None], [(1, 1), (1, 1)], "https://e.org/faq")
        is None
    )


@pytest.mark.skipif(not CC.exists(), reason="Common Crawl documents not available")
@pytest.mark.parametrize(
    ("doc_id", "title"),
    [
        ("wzzybjzuloxajt55ohuqqsltnsn7xy4f", "Current State of Psychiatry in Saudi Arabia"),
        ("66zumt4ech7tfzjjbs2zjho5h4sioprh", "Category:Rappahannock County, Virginia"),
        ("p6zru47fnya2lztuncfkzdpi4hzmi5ko", "Category:Mapping Party in Asia/translations"),
        # a Blogger slug keeps the title's first words: .../assista-ao-novo-e-ousado-videoclipe-da.html
        ("ni5ifee5eaqeg5m6gx7j6ypsbtkjuy5c", "Assista ao novo e ousado videoclipe da Miley Cyrus"),
    ],
)
def test_title_named_by_the_url_is_kept(stage, doc_id, title):
    # Common Crawl pages whose title line the line scorer (or the tag-line pattern, for a wiki category
    # page) removed; the URL names the page with the same words.
    d = page(CC, doc_id)
    doc = cleaned(stage, d["text"], d["url"])
    assert title in doc.text.split("\n")
    assert not any(r.text.strip() == title for r in doc.removed)
