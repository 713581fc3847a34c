"""Tests for the boilerplate stage, on the real seed articles, small cases per rule and language
pack, and a sanity check on the trafilatura test pages (dev half of the gold snippets)."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

from pipeline.document import Document
from pipeline.stages.boilerplate import BoilerplateStage, available_languages, normalise

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"
TESTPAGES = REPO.parent / "shared" / "corpora" / "trafilatura-testpages" / "text"

ARTICLE = (
    "The council met on Tuesday to discuss the new budget for the coming year, and the mayor "
    "presented a plan that would cut spending on roads while adding money for schools."
)


@pytest.fixture(scope="module")
def stage() -> BoilerplateStage:
    return BoilerplateStage()


def run(text: str, stage: BoilerplateStage | None = None, **options) -> Document:
    stage = stage if stage is not None and not options else BoilerplateStage(BoilerplateStage.Options(**options))
    doc = Document("t", text, "t.txt")
    stage.process(doc)
    return doc


def seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def removed(doc: Document) -> list[tuple[str, str]]:
    return [(r.rule, r.text) for r in doc.removed]


# -- the seed articles ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["000", "002"])
def test_seed_clean_articles_untouched(stage, prefix):
    text = seed(prefix)
    doc = run(text, stage)
    assert doc.text == text
    assert doc.removed == []


def test_seed_001_related_posts_dropped(stage):
    text = seed("001")
    doc = run(text, stage)
    assert removed(doc) == [("widget-heading", "Related Posts")]
    assert "Related Posts" not in doc.text
    assert doc.text == text[: -len("Related Posts")]
    for line in text.splitlines()[:-1]:
        assert line in doc.text


def test_seed_003_breadcrumb_prefix_removed(stage):
    text = seed("003")
    doc = run(text, stage)
    assert removed(doc) == [("breadcrumb-prefix", " date 2023-11-10 Home » ")]
    assert doc.removed[0].lines == 0
    lines = doc.text.split("\n")
    assert lines[0].startswith("China and Russia are committed to")
    assert lines[0] == lines[1]  # now an exact copy: dedup drops it later
    assert doc.text == text.replace(" date 2023-11-10 Home » ", "", 1)


def test_seed_004_boilerplate_dropped_article_kept(stage):
    text = seed("004")
    doc = run(text, stage)
    got = {t for _, t in removed(doc)}
    assert got == {
        "Sunday, June 23, 2024",
        "HomeWorldPutin in Beijing to Bolster Sino-Russian Strategic Alliance with Xi Jinping",
        "Source :",
        "(The story is published based on the data from a syndicated feed. However there can be "
        "minor changes from the original source article.)",
        "From the Desk of TheHardNewsDaily",
        "Please enter your comment!",
        "Please enter your name here",
        "This site uses Akismet to reduce spam. Learn how your comment data is processed.",
        "Most Popular",
        "Recent Comments",
    }
    assert all(r.lines == 1 for r in doc.removed)
    rules = dict((t, r) for r, t in removed(doc))
    assert rules["Sunday, June 23, 2024"] == "date-line"
    assert rules["Source :"] == "source-label"
    assert rules["Most Popular"] == "widget-heading"
    assert rules["Please enter your comment!"] == "comment-form"
    assert "\nPutin in Beijing to Bolster Sino-Russian Strategic Alliance with Xi Jinping\n" in doc.text
    for para in text.split("\n"):
        if len(para.split()) > 20 and para not in got:
            assert para in doc.text


# -- rules, one small case each --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("Leave a Reply", "comment-form"),
        ("Leave a Reply Cancel reply", "comment-form"),
        ("Your email address will not be published. Required fields are marked *", "comment-form"),
        ("Schreibe einen Kommentar Antworten abbrechen", "comment-form"),
        ("Deine E-Mail-Adresse wird nicht veröffentlicht.", "comment-form"),
        ("Laisser un commentaire", "comment-form"),
        ("Dodaj komentarz", "comment-form"),
        ("Lascia un commento", "comment-form"),
        ("Deixe uma resposta", "comment-form"),
        ("Laat een reactie achter", "comment-form"),
        ("Оставить комментарий", "comment-form"),
        ("发表评论", "comment-form"),
        ("Related Posts", "widget-heading"),
        ("Ähnliche Beiträge", "widget-heading"),
        ("Articles similaires", "widget-heading"),
        ("Artículos relacionados", "widget-heading"),
        ("Похожие статьи", "widget-heading"),
        ("相关文章", "widget-heading"),
        ("Najpopularniejsze", "widget-heading"),
        ("Das könnte Sie auch interessieren", "widget-heading"),
        ("Share this:", "share"),
        ("Share on Facebook", "share"),
        ("Follow us on Twitter", "share"),
        ("Teilen", "share"),
        ("Facebook Twitter WhatsApp E-Mail", "share"),
        ("This website uses cookies to improve your experience.", "cookie"),
        ("We use cookies to give you the best experience on our website.", "cookie"),
        ("Accept all cookies", "cookie"),
        ("Diese Website verwendet Cookies.", "cookie"),
        ("Subscribe to our newsletter", "newsletter"),
        ("Newsletter abonnieren", "newsletter"),
        ("Log in", "login"),
        ("Anmelden", "login"),
        ("Skip to content", "skip-link"),
        ("Zum Inhalt springen", "skip-link"),
        ("© 2024 Example Media Group", "copyright"),
        ("Copyright © 2023 MediaNews Group", "copyright"),
        ("All rights reserved.", "copyright"),
        ("Impressum", "copyright"),
        ("Datenschutz", "copyright"),
        ("Mentions légales", "copyright"),
        (
            "This story has not been edited by Business Standard staff and is auto-generated from a syndicated feed.",
            "syndication",
        ),
        ("From the Desk of The Daily Wire", "syndication"),
        ("Source :", "source-label"),
        ("Source: Reuters", "source-label"),
        ("Quelle: dpa", "source-label"),
        ("Sunday, June 23, 2024", "date-line"),
        ("2023-11-10", "date-line"),
        ("23. Juni 2024", "date-line"),
        ("12 de marzo de 2024", "date-line"),
        ("2024年6月23日", "date-line"),
        ("Previous article: Floods hit the north", "post-navigation"),
        ("Tags: politics, economy", "tags"),
    ],
)
def test_rule_line(stage, line, rule):
    doc = run(f"{ARTICLE}\n{line}\n{ARTICLE}\n", stage)
    assert removed(doc) == [(rule, line)]
    assert doc.text == f"{ARTICLE}\n{ARTICLE}\n"
    assert stage.classify(line) == rule


@pytest.mark.parametrize(
    "line",
    [
        "Many websites now use cookies to follow visitors around, and regulators in Europe have "
        "answered with strict consent rules.",
        "The company said its newsletter, which reaches two million readers, would be subscribe-only.",
        "Source code for the model is available on request from the authors.",
        "Home prices rose by 4 percent in May, the statistics office said.",
        "Follow the river north for two miles and you reach the old mill.",
        "Share prices fell sharply on Monday.",
        "We use cookies in our bakery recipes? No, but we do use a lot of butter.",
    ],
)
def test_prose_mentioning_keywords_is_kept(stage, line):
    text = f"{ARTICLE}\n{line}\n"
    doc = run(text, stage)
    assert doc.text == text, removed(doc)


def test_normalise_key():
    assert normalise("  • Share this: ") == "share this"
    assert normalise("(The story.)") == "(the story.)"
    assert normalise("Comments (3)") == "comments (3)"
    assert normalise("Leave\u00a0a   Reply") == "leave a reply"


# -- breadcrumbs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Home » World » Asia",
        "Home > News > Politics",
        "Startseite › Politik › Inland",
        "Accueil / Monde",
        "Sie sind hier: Startseite » Service",
        "Home",
        "1. Startseite",
        "HomeNewsPolitics",
    ],
)
def test_breadcrumb_lines(stage, line):
    doc = run(f"{ARTICLE}\n{line}\n", stage)
    assert removed(doc) == [("breadcrumb", line)]


def test_breadcrumb_prefix_keeps_sentence(stage):
    doc = run(f"Home » World » {ARTICLE}\nnext line\n", stage)
    assert doc.text == f"{ARTICLE}\nnext line\n"
    assert removed(doc) == [("breadcrumb-prefix", "Home » World » ")]
    assert doc.removed[0].lines == 0


def test_breadcrumb_not_confused_with_quotes_or_prose(stage):
    for line in [
        "Retour sur les revues de rang « 1 » ou « 1* » où les chercheurs « placent » quelques articles",
        "Prices went from 5 > 3 in a year, which surprised analysts.",
        "HomeKit support arrives in the next update.",
    ]:
        assert run(f"{ARTICLE}\n{line}\n", stage).removed == []


# -- trailing blocks and navigation -----------------------------------------------------------------


def test_trailing_widget_list_until_prose(stage):
    text = (
        f"{ARTICLE}\n\nRelated Posts\nMayor unveils budget plan\nSchools get more money\n\n"
        f"Roads to wait another year\n{ARTICLE}\nShort line after prose\n"
    )
    doc = run(text, stage)
    assert removed(doc) == [
        ("widget-heading", "Related Posts"),
        ("widget-list", "Mayor unveils budget plan"),
        ("widget-list", "Schools get more money"),
        ("widget-list", "Roads to wait another year"),
    ]
    assert doc.text == f"{ARTICLE}\n\n\n{ARTICLE}\nShort line after prose\n"
    kept = run(text, remove_trailing_blocks=False)
    assert [r for r, _ in removed(kept)] == ["widget-heading"]


def test_marker_before_any_prose_does_not_start_a_block(stage):
    text = f"Recent Posts\nArticle title here\n{ARTICLE}\n"
    doc = run(text, stage)
    assert removed(doc) == [("widget-heading", "Recent Posts")]
    assert "Article title here" in doc.text


def test_navigation_run_removed(stage):
    menu = ["Home", "Politik", "Wirtschaft", "Kultur", "Sport", "Wissen", "Kontakt"]
    doc = run("\n".join(menu) + f"\n\n{ARTICLE}\n", stage)
    assert {r for r, _ in removed(doc)} == {"breadcrumb", "navigation", "copyright"}
    assert doc.text == f"\n{ARTICLE}\n"
    assert stage.stats["line-filter-navigation"] >= 5


def test_short_content_list_kept(stage):
    text = f"{ARTICLE}\nYou will need:\n  • Flour\n  • Butter\n  • Sugar\n  • Fresh eggs\n  • Salt\n{ARTICLE}\n"
    assert run(text, stage).text == text
    # ... unless the user asks for shorter runs without menu context
    shorter = run(text, nav_min_run=2)
    assert [r for r, _ in removed(shorter)] == ["navigation"] * 5


def test_blank_lines_and_line_endings_kept(stage):
    text = f"\n\n{ARTICLE}\r\n\nShare this:\r\n\n\n{ARTICLE}"
    doc = run(text, stage)
    assert doc.text == f"\n\n{ARTICLE}\r\n\n\n\n{ARTICLE}"
    assert removed(doc) == [("share", "Share this:")]


# -- options --------------------------------------------------------------------------------------


def test_user_patterns_new_rule_and_counters():
    stage = BoilerplateStage(BoilerplateStage.Options(patterns={"promo": [r"buy \d+ get \d+ free"]}))
    doc = run(f"{ARTICLE}\nBUY 2 GET 1 FREE!\nShare this:\n", stage)
    assert removed(doc) == [("promo", "BUY 2 GET 1 FREE!"), ("share", "Share this:")]
    assert stage.stats["line-filter-promo"] == 1
    assert stage.stats["line-filter-share"] == 1
    assert stage.take_stats()["line-filter-promo"] == 1 and not stage.stats


def test_disable_rules():
    text = f"Sunday, June 23, 2024\n{ARTICLE}\nShare this:\n"
    doc = run(text, disable_rules=["date-line"])
    assert removed(doc) == [("share", "Share this:")]
    with pytest.raises(ValueError, match="did you mean 'date-line'"):
        BoilerplateStage(BoilerplateStage.Options(disable_rules=["date-lines"]))
    with pytest.raises(ValueError, match="did you mean 'navigation'"):
        BoilerplateStage(BoilerplateStage.Options(disable_rules=["navigaton"]))


def test_languages_option():
    text = f"{ARTICLE}\nLeave a Reply\nSchreibe einen Kommentar\n"
    doc = run(text, languages=["de"])
    assert removed(doc) == [("comment-form", "Schreibe einen Kommentar")]
    assert {"en", "de", "fr", "es", "pl", "it", "pt", "nl", "ru", "zh"} <= set(available_languages())
    with pytest.raises(ValueError, match="did you mean 'de'"):
        BoilerplateStage(BoilerplateStage.Options(languages=["dee"]))


def test_pattern_files(tmp_path):
    pack = tmp_path / "shop.yaml"
    pack.write_text(
        "language: en\nrules:\n  shop:\n    lines: [add to cart]\n    patterns: ['only \\d+ left in stock']\n"
        "    phrases: [free shipping]\n",
        encoding="utf-8",
    )
    stage = BoilerplateStage(BoilerplateStage.Options(pattern_files=[str(pack)]))
    doc = run(f"{ARTICLE}\nAdd to cart\nOnly 3 left in stock\nFree shipping on all orders\n", stage)
    assert [r for r, _ in removed(doc)] == ["shop"] * 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  shop:\n    line: [x]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown keys"):
        BoilerplateStage(BoilerplateStage.Options(pattern_files=[str(bad)]))


def test_bad_user_regex_is_reported():
    with pytest.raises(ValueError, match="bad regex"):
        BoilerplateStage(BoilerplateStage.Options(patterns={"x": ["(unclosed"]}))


def test_max_phrase_line_words():
    line = "Note: the shop uses cookies"
    assert run(f"{ARTICLE}\n{line}\n").removed[0].rule == "cookie"
    assert run(f"{ARTICLE}\n{line}\n", max_phrase_line_words=4).removed == []


def test_options_documented():
    for name, field in BoilerplateStage.Options.model_fields.items():
        assert field.description and len(field.description) > 20, name
    with pytest.raises(ValueError):
        BoilerplateStage.Options(no_such_option=1)


def test_picklable_and_equivalent(stage):
    clone = pickle.loads(pickle.dumps(stage))
    text = seed("004")
    assert run(text, clone).text == run(text, stage).text


def test_one_megabyte_document_is_fast(stage):
    block = f"Home » News\nShare this:\n{ARTICLE}\nRelated Posts\nSome title\n\n"
    text = block * (1_000_000 // len(block))
    started = time.perf_counter()
    doc = run(text, stage)
    assert time.perf_counter() - started < 3.0
    assert doc.text.count(ARTICLE) == text.count(ARTICLE)


# -- sanity check on real pages --------------------------------------------------------------------


@pytest.mark.skipif(not TESTPAGES.exists(), reason="trafilatura test pages not available")
def test_trafilatura_dev_with_snippets_survive():
    def fold(s: str) -> str:
        return " ".join(s.split())

    gold = {}
    with open(TESTPAGES / "gold_snippets.dev.jsonl", encoding="utf-8") as f:
        for line in f:
            g = json.loads(line)
            gold[g["id"]] = g
    stage = BoilerplateStage()
    kept = lost = fp = tn = 0
    with open(TESTPAGES / "docs.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            g = gold.get(d["id"])
            if g is None:
                continue
            doc = Document(d["id"], d["text"], d["id"])
            stage.process(doc)
            before, after = fold(d["text"]), fold(doc.text)
            for s in map(fold, g["with"]):
                if s and s in before:
                    kept, lost = (kept + 1, lost) if s in after else (kept, lost + 1)
            for s in map(fold, g["without"]):
                if s and s in before:
                    fp, tn = (fp + 1, tn) if s in after else (fp, tn + 1)
    recall = kept / (kept + lost)
    precision = kept / (kept + fp)
    f1 = 2 * precision * recall / (precision + recall)
    # Measured on this dev half: recall 0.9993 (1438 of 1439), F1 0.7750; the floors sit just under.
    assert recall >= 0.99, (recall, f1)
    assert f1 >= 0.76, (recall, f1)
