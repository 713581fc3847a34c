"""dedup: signatures equal datasketch's, exact and near-duplicate paragraphs, duplicate documents."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import datasketch
import numpy as np
import pytest
from conftest import CORPORA

from pipeline.config import ConfigError
from pipeline.document import Document
from pipeline.stages import dedup
from pipeline.stages.dedup import DedupOptions, DedupStage, split_units


def _real_paragraphs(n: int) -> list[str]:
    paras = []
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        for line in fh:
            for p in json.loads(line)["text"].split("\n"):
                if len(p.split()) >= 20:
                    paras.append(p)
            if len(paras) >= n:
                break
    return paras[:n]


def _run(stage: DedupStage, *texts: str) -> list[Document]:
    docs = [Document(f"d{i}", t, "s") for i, t in enumerate(texts)]
    for d in docs:
        stage.process(d)
    return docs


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_signatures_equal_datasketch_on_real_paragraphs(shingle: str) -> None:
    # Same seed, permutations and hash function (ShingleHash, defined on the shingle string):
    # datasketch's MinHash gives the signatures the vectorized path computes for whole documents.
    stage = DedupStage(DedupOptions(num_perm=128, seed=7, shingle=shingle, unit="line", documents=False))
    paras = _real_paragraphs(60)
    sk = stage.sketch("\n".join(paras))
    assert sk["near"].tolist() == list(range(len(paras)))  # every paragraph got a signature
    for para, ours in zip(paras, sk["signatures"], strict=True):
        shingles = stage.shingles(stage.normalize(para))
        theirs = datasketch.MinHash(num_perm=128, seed=7, hashfunc=stage.shingle_hash)
        theirs.update_batch([s.encode("utf-8") for s in shingles])
        assert np.array_equal(ours, theirs.hashvalues)


@pytest.mark.parametrize("num_perm", [32, 128])
def test_band_parameters_and_permutations_equal_datasketchs(num_perm: int) -> None:
    # The stage computes both without importing datasketch (whose import costs ~0.5 s of start-up).
    from datasketch.lsh import _optimal_param

    for threshold in np.round(np.arange(0.05, 1.0, 0.05), 4):
        expected = _optimal_param(float(threshold), num_perm, 0.5, 0.5)
        assert dedup.lsh_params.__wrapped__(float(threshold), num_perm) == expected
    for seed in (1, 7):
        a, b = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        ours = dedup.affine32_permutations(num_perm, seed)
        assert ours[0].dtype == ours[1].dtype == np.uint32
        assert np.array_equal(ours[0], a) and np.array_equal(ours[1], b)


def test_band_parameters_near_a_tie_are_datasketchs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "_LSH_NEAR_TIE", 1.0)  # every candidate counts as tied: datasketch decides
    from datasketch.lsh import _optimal_param

    assert dedup.lsh_params.__wrapped__(0.65, 64) == _optimal_param(0.65, 64, 0.5, 0.5)


def test_band_parameters_come_from_a_saved_copy_only_when_it_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The stage's (bands, rows) are saved once (their integration costs ~6 ms a threshold at every start) and
    read back; a copy that does not hold a pair is computed again, and an unwritable place only means
    computing in each process."""
    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path)
    expected = dedup.lsh_params.__wrapped__(0.6, 128)
    assert dedup.saved_lsh_params.__wrapped__(0.6, 128) == expected
    [saved] = tmp_path.glob("dedup_lsh-*.json")
    assert json.loads(saved.read_bytes()) == list(expected)
    saved.write_bytes(b"[3, 4]")  # (not a pair this computes: shows the copy is what is read)
    assert dedup.saved_lsh_params.__wrapped__(0.6, 128) == (3, 4)
    for foreign in (b"[3", b'["3", 4]', b"{}"):
        saved.write_bytes(foreign)
        assert dedup.saved_lsh_params.__wrapped__(0.6, 128) == expected
    assert dedup.saved_lsh_params.__wrapped__(0.65, 128) == dedup.lsh_params.__wrapped__(0.65, 128)
    assert len(list(tmp_path.glob("dedup_lsh-*.json"))) == 2  # one per threshold
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path / "file" / "cache")
    assert dedup.saved_lsh_params.__wrapped__(0.6, 128) == expected


def test_exact_verification_sets_are_the_unique_shingle_hashes() -> None:
    stage = DedupStage(DedupOptions(unit="line", documents=False))
    paras = _real_paragraphs(20)
    sk = stage.sketch("\n".join(paras))
    for para, got in zip(paras, sk["sets"], strict=True):
        want = sorted({stage.shingle_hash(s) for s in stage.shingles(stage.normalize(para))})
        assert got.tolist() == want


def test_vectorized_normalization_equals_the_string_one_on_real_documents() -> None:
    stage = DedupStage()
    raw = DedupStage(DedupOptions(lowercase=False, strip_punctuation=False, normalize_digits=False))
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(80), fh, strict=False)]
    for text in texts:
        assert stage.normalized(text) == stage.normalize(text)
        assert raw.normalized(text) == " ".join(dedup._SOLO.sub(r" \g<0> ", text).split())


def test_exact_repeated_paragraph_inside_a_document_is_removed_and_first_kept() -> None:
    para = "China and Russia are committed to sticking to the principle of no interference."
    (doc,) = _run(DedupStage(), f"{para}\n\nSomething else entirely happened in between here.\n\n{para}")
    assert doc.text.count(para) == 1
    assert doc.text.startswith(para)
    (removal,) = doc.removed
    assert removal.rule == "exact-paragraph" and removal.extra["duplicate_of"] == "d0"


def test_paragraph_repeated_across_documents_names_the_kept_document() -> None:
    shared = _real_paragraphs(3)
    stage = DedupStage(DedupOptions(max_duplicate_fraction=1.0))
    a, b = _run(stage, f"{shared[0]}\n\n{shared[1]}", f"{shared[2]}\n\n{shared[0]}")
    assert shared[0] in a.text and shared[0] not in b.text and shared[2] in b.text
    assert b.removed[0].extra["duplicate_of"] == "d0"


def test_near_duplicate_paragraph_is_removed_but_distinct_ones_kept() -> None:
    paras = _real_paragraphs(40)
    words = paras[0].split()
    edited = " ".join(words[:-1]).upper() + "!!"  # one word dropped, case and punctuation changed
    stage = DedupStage()
    docs = _run(stage, "\n\n".join(paras[:20]), "\n\n".join([edited, *paras[20:40]]))
    assert edited not in docs[1].text
    assert docs[1].removed[0].rule == "near-duplicate-paragraph"
    assert docs[1].removed[0].extra["jaccard"] >= 0.75
    assert len(docs[1].removed) == 1  # the 20 distinct real paragraphs all stay


def test_document_scope_does_not_look_across_documents() -> None:
    para = _real_paragraphs(1)[0]
    docs = _run(
        DedupStage(DedupOptions(scope="document")), f"{para}\n\nOne more line of text here.", para + "\n\nx y z w"
    )
    assert all(not d.removed and d.rejected is None for d in docs)


def test_exact_and_near_duplicate_documents_are_rejected_with_the_original_id() -> None:
    paras = _real_paragraphs(12)
    original = "\n\n".join(paras[:10])
    near = "\n\n".join(paras[:9] + [paras[10]])
    docs = _run(DedupStage(), original, original.upper(), near)
    assert docs[0].rejected is None
    assert docs[1].rejected.reason == "exact duplicate of document d0"
    assert docs[2].rejected.extra["duplicate_of"] == "d0"
    assert "near-duplicate of document d0" in docs[2].rejected.reason


def test_document_made_mostly_of_earlier_paragraphs_is_rejected_and_not_indexed() -> None:
    paras = _real_paragraphs(8)
    stage = DedupStage(DedupOptions(documents=False))
    docs = _run(stage, "\n\n".join(paras[:6]), "\n\n".join(paras[:5] + [paras[6]]), paras[6])
    assert "mostly duplicate" in docs[1].rejected.reason and docs[1].rejected.extra["duplicate_of"] == "d0"
    assert docs[2].rejected is None and paras[6] in docs[2].text  # the rejected doc's new text was not indexed


def test_document_repeating_its_own_paragraph_is_kept_with_the_repeats_removed() -> None:
    # Repeats whose first copy is in the same document are removed, but they are not text of another
    # document: the page is kept (it used to be rejected as "mostly duplicate" of itself).
    para = "Our bakery on Main Street opens at seven and sells fresh sourdough bread every single morning."
    paras = _real_paragraphs(7)
    stage = DedupStage()
    docs = _run(stage, "\n\n".join(paras[:6]), "Welcome to the bakery page.\n\n" + "\n\n".join([para] * 10))
    assert docs[1].rejected is None
    assert docs[1].text.split() == f"Welcome to the bakery page. {para}".split()  # (blank lines stay)
    assert len(docs[1].removed) == 9
    assert all(r.rule == "exact-paragraph" and r.extra["duplicate_of"] == "d1" for r in docs[1].removed)
    # the kept page is indexed: a near copy of it is a near-duplicate document
    (near,) = _run(stage, "Welcome to the bakery page.\n\n" + "\n\n".join([para] * 9))
    assert near.rejected.reason.startswith("near-duplicate of document d1")
    # a document made of another's text is still rejected, however often it repeats its own paragraph
    stage = DedupStage(DedupOptions(documents=False))
    _, copy = _run(stage, "\n\n".join(paras[:6]), "\n\n".join(paras[:6] + [paras[6]] * 5))
    assert "mostly duplicate" in copy.rejected.reason and copy.rejected.extra["duplicate_of"] == "d0"


def test_short_units_below_min_words_are_kept_and_longer_short_units_deduplicated_exactly() -> None:
    text = "Yes.\n\nRead more here now.\n\nA long enough paragraph of text that stays.\n\nYes.\n\nRead more here now!"
    (doc,) = _run(DedupStage(), text)
    assert doc.text.count("Yes.") == 2  # below min_words (3): never removed
    assert doc.text.count("Read more here") == 1  # 4 words: exact (normalized) duplicate removed
    assert [r.rule for r in doc.removed] == ["exact-paragraph"]


# Two recipes and two Dockerfile write-ups of the trafilatura test pages (de0d199faa66 / b25b509c8902,
# cba3f608eabf / 8b7126af1471): unrelated documents that share a few generic lines.
_RECIPE_A = (
    "Für den Mürbeteig:\n125 g \t\tMehl\n65 g \t\tZucker\n65 g \t\tMargarine oder Butter\n1 \t\tEi(er)\n"
    "1 TL \t\tBackpulver\nFür die Füllung:\n500 ml \t\tMilch\n2 Pck. \t\tVanillepuddingpulver\n200 g \t\tZucker\n"
    "Aus Mehl, Zucker, Fett, Ei und Backpulver einen Mürbeteig herstellen und in eine gefettete Springform geben."
)
_RECIPE_B = (
    "Ergibt:\xa040 Stück\nZutaten:\n300 g Mehl\n1 TL Backpulver\n100 g gemahlene Mandeln\n200 g Margarine\n"
    "200 g Zucker\n1 Prise Salz\n1 Ei\n1 Vanillezucker\n"
    "Alle Zutaten zu einem glatten Teig verkneten und eine Stunde im Kühlschrank ruhen lassen."
)
_DOCKER_A = (
    "Your Dockerfile might then look like this:\nFROM python:3.7\nCOPY . /tmp/myapp\nRUN pip install /tmp/myapp\n"
    "CMD flask run exampleapp:app\nThe problem with this setup is that every time you change the code, the image"
    " is rebuilt from scratch.\nRUN pip install -r requirements.txt"
)
_DOCKER_B = (
    "The Dockerfile will look something like\nFROM python:3.7\nWORKDIR /opt/app\n"
    "COPY ./requirements.txt ./requirements.txt\nRUN pip install -r requirements.txt\nin which we:"
)


def test_short_generic_lines_one_other_document_shares_are_kept() -> None:
    # A QA round found ingredients and Dockerfile lines removed from a second, unrelated document
    # because the first had them: the reader of the second lost a line of its content.
    a, b, c, d = _run(DedupStage(), _RECIPE_A, _RECIPE_B, _DOCKER_A, _DOCKER_B)
    assert b.text == _RECIPE_B and not b.removed  # "1 TL Backpulver", "200 g Zucker" stay
    assert d.text == _DOCKER_B and not d.removed  # "RUN pip install -r requirements.txt" stays
    # short_words: 1 is the earlier rule: every unit of min_words words is removed as a repeat
    a, b, c, d = _run(DedupStage(DedupOptions(short_words=1)), _RECIPE_A, _RECIPE_B, _DOCKER_A, _DOCKER_B)
    assert [r.text for r in b.removed] == ["1 TL Backpulver", "200 g Zucker"]
    assert [r.text for r in d.removed] == ["RUN pip install -r requirements.txt"]


def test_short_lines_of_a_copied_run_are_removed_with_it() -> None:
    # An article republished with its sub-heading (a trafilatura test page, c56b5ab61f8a): the heading
    # sits between copied paragraphs, so it is part of the copy.
    paras = _real_paragraphs(4)
    article = f"{paras[0]}\nRECUPERAR LA CONFIANZA\n{paras[1]}"
    menu = "  • Notebook, Netbook & Tablet PC\n  • Kunden werben Kunden\n  • Vergleichsrechner: DSL & Festnetz"
    stage = DedupStage(DedupOptions(max_duplicate_fraction=1.0))  # (a copy of most of d0: kept, to show the removals)
    first, copy = _run(stage, f"{article}\n{menu}\n{paras[2]}", f"{paras[3]}\n{article}\nOther text here.\n{menu}")
    assert copy.rejected is None
    removed = [r.text for r in copy.removed]
    assert removed[:3] == [paras[0], "RECUPERAR LA CONFIANZA", paras[1]]
    assert all(r.extra["duplicate_of"] == "d0" for r in copy.removed)
    # three short menu lines in a row (10 words together: short_run_words) are a copied block too
    assert removed[3:] == menu.split("\n")
    # a run shorter than short_run_words is not: the menu stays
    _, copy = _run(DedupStage(DedupOptions(short_run_words=11)), f"{article}\n{menu}", f"{paras[3]}\n{menu}")
    assert copy.text == f"{paras[3]}\n{menu}"


def test_a_short_line_common_to_many_documents_is_removed_from_the_fifth_on() -> None:
    # "Skip to content" heads 51 of the trafilatura test pages (raw page text): boilerplate-like, it is
    # removed from the short_common_documents-th (5th) document holding it on, wherever it stands; a
    # document rejected as a copy does not count; the counts survive the saved state.
    paras = _real_paragraphs(8)
    options = DedupOptions(documents=False)  # (a near copy of a whole document: rejected as mostly duplicate)
    texts = [f"Skip to content\n{p}" for p in paras[:8]]
    texts.insert(3, f"Skip to content\n{paras[0]}\nAnd a line of its own.")  # mostly d0's text
    docs = _run(DedupStage(options), *texts)
    assert "mostly duplicate" in docs[3].rejected.reason  # its units are taken back out, and its counts
    kept = ["Skip to content" in d.text for d in docs if d.rejected is None]
    assert kept == [True, True, True, True, False, False, False, False]
    assert docs[5].removed[0].extra["duplicate_of"] == "d0"
    stage = DedupStage(options)
    first = _run(stage, *texts[:4])
    rows = [("a.jsonl", payload) for payload in stage.pop_state("s")]
    again = DedupStage(options)
    again.load_state(rows)
    loaded = (len(again.exact), len(again.short_counts))
    later = [Document(f"d{i}", t, "b.jsonl") for i, t in enumerate(texts[4:], 4)]
    for d in later:
        again.process(d)
    assert [d.text for d in first + later] == [d.text for d in docs]
    # rows saved before the counts were kept still load (without them: fewer lines look common)
    header, arrays = dedup.unpack_arrays(rows[0][1])
    del arrays["short_keys"], header["short_keys"]
    older = DedupStage(options)
    older.load_state([("a.jsonl", dedup.pack_arrays(header, arrays))])
    assert loaded[1] == 1 and (len(older.exact), len(older.short_counts)) == (loaded[0], 0)


def test_repeats_of_a_short_line_inside_a_document_are_still_removed() -> None:
    # The first copy of a short line another document has is kept; later copies in the same document
    # are repeats of it (as of any line there), named as such.
    a, b = _run(DedupStage(), _RECIPE_A, _RECIPE_B.replace("1 Prise Salz", "1 TL Backpulver"))
    assert b.text.count("1 TL Backpulver") == 1
    (removal,) = b.removed
    assert removal.text == "1 TL Backpulver" and removal.extra["duplicate_of"] == "d1"


def test_min_words_counts_words_as_written() -> None:
    # "10:32 BST" is two words (the time split into three tokens: a repeated time stamp of a live blog
    # was removed); commas separate words written without a space; a run of Chinese characters counts
    # half its length (rounded up) between clause marks: 3 + 3.
    stage = DedupStage()
    assert stage.sketch("10:32 BST\nFROM python:3.7\n— — —\na,b,c\n有病看醫生，用藥問藥師。")["words"].tolist() == [
        2,
        2,
        0,
        3,
        6,
    ]
    (doc,) = _run(stage, "10:32 BST\nA first update of the live blog.\n10:32 BST\nAnd a second update of it.")
    assert doc.text.count("10:32 BST") == 2 and not doc.removed
    # a unit long enough to be matched as a near-duplicate is no short line, however few its written words
    url = "https://mywakenews.wordpress.com/2016/07/06/was-wissen-wir-talk-von-und-mit-menschen-mit-maria-wake-news-radiotv/"
    first, second = _run(DedupStage(DedupOptions(documents=False)), f"{url}\nOne line of text.", url)
    assert second.rejected is not None and second.rejected.extra["duplicate_of"] == "d0"


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_short_lines_that_differ_only_in_numbers_are_kept_long_ones_are_not(shingle: str) -> None:
    # An event list (from a trafilatura test page): the dates are the content of each line.
    events = "Termin: 28.02.2020, 19 Uhr\n- Eintritt: 44,90 €/Person\nTermin: 29.02.2020, 19 Uhr\n"
    long = "The council met on 12 May and approved 3 of the 7 proposals after a long debate on the budget."
    text = events + "- Eintritt: 44,90 €/Person\n" + long + "\n" + long.replace("12 May", "19 May")
    (doc,) = _run(DedupStage(DedupOptions(shingle=shingle)), text)
    assert "Termin: 28.02.2020" in doc.text and "Termin: 29.02.2020" in doc.text
    assert doc.text.count("Eintritt: 44,90") == 1  # the same digits: still a repeat
    assert "19 May" not in doc.text  # a paragraph: digits still normalized
    (doc,) = _run(DedupStage(DedupOptions(shingle=shingle, digits_min_words=1)), events)
    assert "Termin: 29.02.2020" not in doc.text  # every unit normalized: the old behaviour


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_dates_and_times_do_not_count_as_words_for_keeping_digits(shingle: str) -> None:
    # Comment headers of a trafilatura test page (oekonomenstimme.org): 7 words as written, but the
    # date and time split into 5 tokens, so the line counted 10 "words" and lost its digits: every
    # header of the same commenter was removed as a copy of the first one.
    headers = [
        "geschrieben von berg2012 am 21. Jan. 2015, 19:04 [ antworten ]",
        "geschrieben von berg2012 am 22. Jan. 2015, 11:38 [ antworten ]",
        "geschrieben von berg2012 am 21. Jan. 2015, 19:04 [ antworten ]",
    ]
    (doc,) = _run(DedupStage(DedupOptions(shingle=shingle)), "\n\n".join(headers))
    assert "22. Jan. 2015, 11:38" in doc.text  # other digits: another comment
    assert doc.text.count("21. Jan. 2015, 19:04") == 1  # the same digits: still a repeat
    assert [r.rule for r in doc.removed] == ["exact-paragraph"]
    # words with digits do not count towards digits_min_words, so ten real words still normalize
    long = "The council met on 12 May and approved 3 of the 7 proposals after a long debate."
    (doc,) = _run(DedupStage(DedupOptions(shingle=shingle)), long + "\n" + long.replace("12 May", "19 May"))
    assert "19 May" not in doc.text


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_short_documents_that_differ_only_in_numbers_are_not_duplicates(shingle: str) -> None:
    # Sports results and market briefs (found by a QA round): a whole short document keeps its digits in its
    # key as a short unit does, so only the same numbers make a copy; long documents are still normalized.
    briefs = (
        "Final score: Bayern 2, Dortmund 1.",
        "Final score: Bayern 0, Dortmund 3.",
        "The DAX closed at 15,320 points on Monday.",
        "The DAX closed at 15,980 points on Monday.",
        "Final score: Bayern 2, Dortmund 1.",
    )
    docs = _run(DedupStage(DedupOptions(shingle=shingle)), *briefs)
    assert [d.rejected is None for d in docs] == [True, True, True, True, False]
    assert docs[4].rejected is not None and docs[4].rejected.extra["duplicate_of"] == "d0"
    long = "The council met on 12 May and approved 3 of the 7 proposals after a long debate on the budget."
    docs = _run(DedupStage(DedupOptions(shingle=shingle)), long, long.replace("12 May", "19 May"))
    assert docs[0].rejected is None and docs[1].rejected is not None  # digits normalized: a copy


def test_near_duplicate_below_threshold_is_kept_and_jaccard_is_exact() -> None:
    para = _real_paragraphs(1)[0]
    words = para.split()
    half = " ".join(words[: len(words) // 2] + ["completely", "different", "ending", "here", "now"] * 3)
    stage = DedupStage(DedupOptions(documents=False, max_duplicate_fraction=1.0))
    docs = _run(stage, para, half, para.replace(words[3], "CHANGED", 1))
    assert not docs[1].removed  # shares half its shingles: far below the threshold
    (removal,) = docs[2].removed
    key_a, key_b = stage.normalize(para), stage.normalize(docs[2].original)
    sa, sb = set(stage.shingles(key_a)), set(stage.shingles(key_b))
    assert removal.extra["jaccard"] == round(len(sa & sb) / len(sa | sb), 4)


def test_units_lines_unless_hard_wrapped() -> None:
    lines = ["One sentence per line here.", "Another sentence on its own line."]
    assert split_units(lines, "auto") == [(0, 1), (1, 2)]
    wrapped = [
        "This paragraph was wrapped at a fixed width by the program that",
        "wrote it, so its lines end in the middle of a sentence and must",
        "be compared as one unit rather than line by line as usual.",
    ]
    assert split_units(wrapped, "auto") == [(0, 3)]
    assert split_units(["a", "", "b", "c"], "paragraph") == [(0, 1), (2, 4)]


def test_hard_wrapped_blocks_are_found_on_code_points_as_on_lines() -> None:
    # The sketch tests blocks on the text's code points (a kernel), unit_ranges on its lines (_hard_wrapped):
    # the same units on real pages and on lines ending in spaces, \r, CJK marks, or a mark then spaces.
    body = "word " * 8
    made = [
        f"{body}ends here.  \n{body}and goes on\r\n{body}ends。\u3000\n{body}ends ”\t\nlast",
        f"{body}one\n{body}two.\n{body}three)\n{body}four !\nend\n\n{body}a\n{body}b",
        f"{body}x\n{body}y;\n{body}z»\nend\n{body}\u3002\n{body}?\nend",
        f"{body}one\u2028\n{body}two\xa0\n{body}.\n\n",
    ]
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = made + [json.loads(line)["text"] for line in fh]
    stage, wrapped = DedupStage(), 0
    for text in texts:
        u_start, u_end = stage.sketch(text)["units"]
        starts, ends = dedup.unit_ranges(text.split("\n"), "auto")
        assert u_start.tolist() == starts.tolist() and u_end.tolist() == ends.tolist(), text[:80]
        wrapped += int((ends - starts > 1).sum())
    assert wrapped > 50  # (blocks taken as one unit: the test sees both answers)


def test_a_pickled_stage_leaves_the_sketch_tables_behind() -> None:
    stage = DedupStage()
    empty = len(pickle.dumps(stage))
    stage.sketch("A first sentence of a document here.\nAnd its second line of words.")
    assert stage._sketch_args is not None  # (built by the first sketch)
    back = pickle.loads(pickle.dumps(stage))
    assert len(pickle.dumps(stage)) < empty + 10_000 and back._sketch_args is None  # (the tables: ~7 MB)
    text = "Straße one two three four five six seven eight nine ten\nmore words here"
    assert all(np.array_equal(a, b) for a, b in zip(back.sketch(text)["keys"], stage.sketch(text)["keys"], strict=True))


def test_cluster_counts_at_close() -> None:
    para = _real_paragraphs(1)[0]
    stage = DedupStage(DedupOptions(documents=False, max_duplicate_fraction=1.0))
    _run(stage, para + "\n\nfirst unique text here ok", para + "\n\nsecond unique text here", para + "\n\nthird one")
    stage.close()
    stats = stage.take_stats()
    assert stats["clusters"] == 1 and stats["clusters-with-2-copies"] == 1


def test_bands_and_rows_must_fit_num_perm() -> None:
    with pytest.raises(ValueError):
        DedupOptions(num_perm=64, bands=10, rows=10)
    with pytest.raises(ValueError, match=r"bands \(65\) exceeds num_perm \(64\)"):
        DedupOptions(num_perm=64, bands=65)


def test_bands_or_rows_alone_derives_the_other_from_num_perm_as_the_help_says() -> None:
    # (Before: "set both bands and rows, or neither", while the help said rows null is derived with bands.)
    assert "num_perm // bands" in (DedupOptions.model_fields["rows"].description or "")
    stage = DedupStage(DedupOptions(bands=16))
    assert (stage.bands, stage.rows) == (16, 8)
    stage = DedupStage(DedupOptions(num_perm=64, rows=5))
    assert (stage.bands, stage.rows) == (12, 5)
    stage = DedupStage(DedupOptions(bands=16, rows=4))
    assert (stage.bands, stage.rows) == (16, 4)


def test_segment_signatures_across_matrix_blocks_equal_one_minhash_per_segment() -> None:
    # Segments longer than a block (4096 shingles) and cut by block edges are combined correctly.
    stage = DedupStage()
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**32, size=10_000, dtype=np.uint64).astype(np.uint32)
    bounds = np.array([0, 5, 4090, 4100, 9000])
    got = stage.hasher.segment_min(hashes, bounds)
    ends = [*bounds[1:], hashes.size]
    for row, s, e in zip(got, bounds, ends, strict=True):
        theirs = datasketch.MinHash(num_perm=128, seed=1, hashfunc=int)
        theirs.update_batch(hashes[s:e].tolist())
        assert np.array_equal(row, theirs.hashvalues)


def test_compiled_kernel_equals_numpy_for_units_with_gaps_and_the_whole_document() -> None:
    # The kernel permutes each hash once: unit signatures over disjoint ranges with gaps between
    # them, and the document's over everything (gaps included), as the numpy path computes them.
    stage = DedupStage()
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**32, size=9_000, dtype=np.uint64).astype(np.uint32)
    # (the kernel takes four hashes a step: ranges of every length modulo 4)
    starts, ends = np.array([3, 100, 2047, 5000, 5003]), np.array([90, 2000, 4500, 5001, 5009])
    sigs, doc = stage.hasher.ranges_min(hashes, starts, ends, True)
    for row, s, e in zip(sigs, starts, ends, strict=True):
        assert np.array_equal(row, stage.hasher.segment_min_numpy(hashes[s:e], np.zeros(1, np.int64))[0])
    assert np.array_equal(doc, stage.hasher.segment_min_numpy(hashes, np.zeros(1, np.int64))[0])
    bounds = np.array([0, 7, 4096, 4097, 8000])
    assert np.array_equal(stage.hasher.segment_min(hashes, bounds), stage.hasher.segment_min_numpy(hashes, bounds))


def test_char_shingles_with_a_wordless_last_unit() -> None:
    # A last unit of punctuation only has no characters after normalization (used to index past the end).
    (doc,) = _run(DedupStage(DedupOptions(shingle="char")), "Some words on a line here.\n\n...")
    assert doc.rejected is None and doc.text.endswith("...")


@pytest.mark.parametrize(("verify", "chunk"), [("exact", 10_000), ("estimate", 10_000), ("exact", 7)])
def test_saved_index_reloaded_dedups_like_one_run(verify: str, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # chunk 7: a.jsonl's entries are saved in several rows, and loading them gives the same index
    monkeypatch.setattr("pipeline.stages.dedup.STATE_CHUNK_DOCUMENTS", chunk)
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(60), fh, strict=False)]
    paras = _real_paragraphs(30)
    later = [texts[5], max(texts[45].split("\n"), key=len) + "\n\n" + texts[50], paras[3] + "\n\n" + texts[40]]
    options = DedupOptions(verify=verify)

    def docs(prefix: str, items: list[str], source: str) -> list[Document]:
        return [Document(f"{prefix}{i}", t, source) for i, t in enumerate(items)]

    first = docs("a", texts[:30], "a.jsonl") + docs("b", [texts[45]], "b.jsonl")

    run1 = DedupStage(options)
    for d in docs("a", texts[:30], "a.jsonl") + docs("b", [texts[45]], "b.jsonl"):
        run1.process(d)
    rows = [(src, payload) for src in ("a.jsonl", "b.jsonl") for payload in run1.pop_state(src)]
    assert len(rows) == (2 if chunk > 30 else 6) and list(run1.pop_state("a.jsonl")) == []  # popped once
    grown = []
    grow, rehash = dedup.kernels.ht_grow_in_place, dedup.kernels.ht_rehash_into
    monkeypatch.setattr(dedup.kernels, "ht_grow_in_place", lambda *a: grown.append(a[0].size) or grow(*a))
    monkeypatch.setattr(dedup.kernels, "ht_rehash_into", lambda *a: grown.append(a[2].size) or rehash(*a))
    run2 = DedupStage(options)
    run2.load_state(rows)  # rows that can be read twice: every table sized once, before the keys go in
    assert len(grown) <= 3, grown
    streamed = DedupStage(options)
    streamed.load_state(iter(rows))  # read once: the tables grow as they fill
    for a, b in ((run2.exact, streamed.exact), (run2.units.buckets, streamed.units.buckets)):
        assert a.slot_keys.size == b.slot_keys.size and len(a) == len(b) > 0  # sized as filling them would
    got = []
    for d in docs("c", later, "c.jsonl"):
        run2.process(d)
        got.append((d.text, d.rejected, [(r.rule, r.extra) for r in d.removed]))
    for d in docs("c", later, "c.jsonl"):
        streamed.process(d)
        assert (d.text, d.rejected, [(r.rule, r.extra) for r in d.removed]) == got[int(d.id[1:])]
    # compare with the single run's results for the same later documents
    single = DedupStage(options)
    for d in first:
        single.process(d)
    want = []
    for d in docs("c", later, "c.jsonl"):
        single.process(d)
        want.append((d.text, d.rejected, [(r.rule, r.extra) for r in d.removed]))
    assert got == want and any(g[1] is not None or g[2] for g in got)  # something was deduplicated
    with pytest.raises(ConfigError, match=r"other hashing \(ngram: .*--rebuild"):
        DedupStage(DedupOptions(verify=verify, ngram=4)).load_state(rows)


def test_punctuation_and_digit_code_points_come_from_a_saved_copy_only_when_it_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The code points the two regex scans find are saved once and read back equal to a fresh scan; an
    unreadable copy is scanned again, and an unwritable place only means scanning in each process."""
    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path)
    every = dedup._every_code_point()
    patterns = (dedup._PUNCT_SYMBOLS, dedup._DIGITS, dedup._SOLO, dedup._SOLO_HALF)
    fresh = [dedup._codepoints("".join(p.findall(every))) for p in patterns]
    assert fresh[0].size > 1000 and ord("!") in fresh[0] and ord("٣") in fresh[1]  # (Arabic-Indic three)
    assert {ord("京"), ord("の"), ord("カ"), ord("ไ")} <= set(fresh[2].tolist()) and ord("한") not in fresh[2]
    assert ord("京") in fresh[3] and ord("ไ") not in fresh[3]
    assert fresh[2].min() >= dedup._NB_FIRST_SOLO  # the kernel looks them up only from there on
    built = dedup._class_points()
    [saved] = tmp_path.glob("dedup_classes-*.npz")
    for points in (built, dedup._class_points()):  # scanned, then read back
        assert all(np.array_equal(a, b) for a, b in zip(points, fresh, strict=True))
    saved.write_bytes(saved.read_bytes()[:100])  # truncated
    assert all(np.array_equal(a, b) for a, b in zip(dedup._class_points(), fresh, strict=True))
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(dedup, "_CLASS_CACHE_DIR", tmp_path / "file" / "cache")
    assert all(np.array_equal(a, b) for a, b in zip(dedup._class_points(), fresh, strict=True))


def _as_npz(payload: bytes) -> bytes:
    """A state row as versions before 0.1 (session 12) saved it: np.savez, the header as a uint8 array."""
    header, arrays = dedup.unpack_arrays(payload)
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("verify", ["exact", "estimate"])
def test_state_rows_of_earlier_versions_npz_still_load(verify: str) -> None:
    # Rows are raw arrays behind a JSON header now; an archive's rows saved as .npz by earlier versions
    # must load into the same index, so a cron job's state survives the upgrade.
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(40), fh, strict=False)]
    options = DedupOptions(verify=verify)
    run1 = DedupStage(options)
    for i, t in enumerate(texts[:30]):
        run1.process(Document(f"a{i}", t, "a.jsonl"))
    rows = [("a.jsonl", payload) for payload in run1.pop_state("a.jsonl")]
    assert rows and all(payload.startswith(dedup.PAYLOAD_MAGIC) for _, payload in rows)
    old_rows = [(src, _as_npz(payload)) for src, payload in rows]
    assert all(payload.startswith(b"PK") for _, payload in old_rows)
    assert dedup.array_shapes(rows[0][1], ["keys", "sets"]) == dedup.array_shapes(old_rows[0][1], ["keys", "sets"])
    results, ids = [], []
    for saved in (rows, old_rows):
        stage = DedupStage(options)
        stage.load_state(saved)
        ids.append(stage.doc_ids)
        later = [Document(f"c{i}", texts[i], "c.jsonl") for i in (3, 17, 35)]
        for d in later:
            stage.process(d)
        results.append([(d.text, d.rejected, [(r.rule, r.extra) for r in d.removed]) for d in later])
    assert results[0] == results[1] and ids[0] == ids[1] and len(ids[0]) > 20
    assert results[0][0][1] is not None and results[0][2][1] is None  # a copy of a3 rejected, a new page kept


def test_a_duplicate_names_the_document_it_repeats_by_file_and_line_also_from_the_saved_index() -> None:
    # Ids are often shared (numbered per file): "duplicate of document 1" did not say which document 1.
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(12), fh, strict=False)]
    first = DedupStage()
    for i, text in enumerate(texts[:4]):
        first.process(Document("1" if i == 2 else f"a{i}", text, "a.jsonl", line_no=i + 1))
    first.process(Document("1", texts[5], "b.jsonl", line_no=1))
    copy = Document("c0", texts[2], "c.jsonl", line_no=7)
    first.process(copy)
    assert copy.rejected is not None
    assert copy.rejected.extra == {"duplicate_of": "1", "duplicate_source": "a.jsonl", "duplicate_line": 3}
    # the same, from the index a later run loads; rows of earlier versions (no lines) name the file only
    rows = [(src, payload) for src in ("a.jsonl", "b.jsonl") for payload in first.pop_state(src)]
    later = DedupStage()
    later.load_state(rows)
    mixed = Document("d0", texts[8] + "\n\n" + texts[5], "d.txt")
    later.process(mixed)
    named = [{k: v for k, v in r.extra.items() if k != "jaccard"} for r in mixed.removed]
    assert named and all(n == {"duplicate_of": "1", "duplicate_source": "b.jsonl", "duplicate_line": 1} for n in named)
    old = DedupStage()
    old.load_state([(src, _as_npz(_without_lines(payload))) for src, payload in rows])
    again = Document("d0", texts[8] + "\n\n" + texts[5], "d.txt")
    old.process(again)
    assert {k: v for k, v in again.removed[0].extra.items() if k != "jaccard"} == {
        "duplicate_of": "1",
        "duplicate_source": "b.jsonl",
    }


def _without_lines(payload: bytes) -> bytes:
    header, arrays = dedup.unpack_arrays(payload)
    header.pop("lines")
    return dedup.pack_arrays(header, arrays)


def _lingua(lang: str, n: int) -> list[str]:
    with open(CORPORA / "lingua-sentences" / f"{lang}.txt", encoding="utf-8") as fh:
        return [line.strip() for _, line in zip(range(n), fh, strict=False)]


def test_chinese_japanese_and_thai_characters_are_words_of_their_own() -> None:
    """Written without spaces, a Chinese sentence was one or a few "words" (its clauses): it was never
    matched as a near-duplicate and, counted as a few written words, was short. So was Thai."""
    stage = DedupStage()
    assert stage.normalize("东京的天气，很好。iPhone手机") == "东 京 的 天 气 很 好 iphone 手 机"
    assert stage.normalized("東京の天気は、とても良い。") == "東 京 の 天 気 は と て も 良 い"
    assert stage.normalize("ภาษาไทย ง่าย") == "ภ า ษ า ไ ท ย ง ่ า ย"
    mixed = "a京" * 5000 + "b"  # as many words as characters: the kernel's arrays are sized for them
    assert len(stage._tokens(mixed)[0]) == len(stage.normalize(mixed).split()) == 10_001
    raw = DedupStage(DedupOptions(normalize_digits=False))
    assert raw.normalize("พ.ศ. ๒๕๖๖") == raw.normalized("พ.ศ. ๒๕๖๖") == "พ ศ ๒๕๖๖"  # digits are digits
    written = stage._tokens("北京时间昨天晚上\n东京a\nabc 東京, 大阪\nภาษาไทยง่ายมาก\n")[4]
    assert np.diff(written).tolist() == [4, 2, 3, 4, 0]  # half a run of Han or kana, a quarter of Thai, rounded up
    # signatures still equal datasketch's on the shingles of such words
    paras = _lingua("zh", 20) + _lingua("ja", 20) + _lingua("th", 20)
    sk = DedupStage(DedupOptions(unit="line", documents=False)).sketch("\n".join(paras))
    assert sk["near"].tolist() == list(range(len(paras)))
    for para, ours in zip(paras, sk["signatures"], strict=True):
        theirs = datasketch.MinHash(num_perm=128, seed=1, hashfunc=stage.shingle_hash)
        theirs.update_batch([s.encode("utf-8") for s in stage.shingles(stage.normalize(para))])
        assert np.array_equal(ours, theirs.hashvalues)


def test_chinese_near_duplicate_and_repeated_sentences_across_documents_are_removed() -> None:
    zh = _lingua("zh", 12)
    edited = zh[0][:10] + "的" + zh[0][11:]  # one character changed
    a, b = _run(DedupStage(), "\n".join(zh[:6]), "\n".join([zh[6], edited, zh[7], zh[3], zh[8]]))
    assert a.text == "\n".join(zh[:6])
    assert b.text == "\n".join([zh[6], zh[7], zh[8]])
    assert [(r.rule, r.text) for r in b.removed] == [
        ("near-duplicate-paragraph", edited),
        ("exact-paragraph", zh[3]),
    ]
    # a short line (fewer than short_words written words) one other document shares stays
    short = "今天天气很好"  # 3 written words
    c, d = _run(DedupStage(), zh[9] + "\n" + short, zh[10] + "\n" + short + "\n" + zh[11])
    assert short in d.text.split("\n") and not d.removed


@pytest.mark.parametrize("chunk", [7, 10, 100])
def test_rows_given_while_a_file_goes_on_then_the_rest_are_the_rows_given_at_its_end(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ready_state gives a file's full chunks so far (the runner writes them while the run goes on), pop_state the
    # rest: the same payloads, cut at the same documents, as pop_state alone at the file's end.
    monkeypatch.setattr("pipeline.stages.dedup.STATE_CHUNK_DOCUMENTS", chunk)
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(40), fh, strict=False)]
    texts += texts[:3]  # (copies: not learnt)
    at_end, ahead = DedupStage(), DedupStage()
    given: dict[str, list[bytes]] = {"a.jsonl": [], "b.jsonl": []}
    for i, text in enumerate(texts):
        source = "a.jsonl" if i < 30 else "b.jsonl"
        at_end.process(Document(f"d{i}", text, source))
        ahead.process(Document(f"d{i}", text, source))
        given[source] += ahead.ready_state(source)
    whole = [p for source in ("a.jsonl", "b.jsonl") for p in at_end.pop_state(source)]
    rest = {source: list(ahead.pop_state(source)) for source in ("a.jsonl", "b.jsonl")}
    counts = {source: (len(given[source]), len(rest[source])) for source in given}
    assert counts == {7: {"a.jsonl": (4, 1), "b.jsonl": (1, 1)}, 10: {"a.jsonl": (2, 1), "b.jsonl": (1, 0)}}.get(
        chunk, {"a.jsonl": (0, 1), "b.jsonl": (0, 1)}
    )
    assert given["a.jsonl"] + rest["a.jsonl"] + given["b.jsonl"] + rest["b.jsonl"] == whole
    assert list(ahead.ready_state("a.jsonl")) == [] and list(ahead.pop_state("a.jsonl")) == []


def test_an_index_sized_for_the_input_does_not_grow_and_decides_the_same() -> None:
    # expect_input sizes the tables for the bytes the run reads: filling them then rehashes nothing, and
    # the decisions are those of an index grown as it filled.
    paras = _real_paragraphs(300)
    texts = ["\n\n".join(paras[i : i + 6] + paras[i // 2 : i // 2 + 2]) for i in range(0, 294, 3)]
    grown, sized = DedupStage(), DedupStage()
    sized.expect_input(sum(len(t.encode()) for t in texts) * 4)
    tables = [sized.exact, sized.units.buckets, sized.docs.buckets]
    slots = [t.slot_keys.size for t in tables]
    assert slots[1] > 1 << 10  # (made ahead: not the first 1,024 slots)
    one, other = _run(grown, *texts), _run(sized, *texts)
    assert [t.slot_keys.size for t in tables] == slots
    assert len(grown.exact) == len(sized.exact) > 200 and len(grown.units.buckets) == len(sized.units.buckets)
    assert [(d.text, d.rejected, len(d.removed)) for d in one] == [(d.text, d.rejected, len(d.removed)) for d in other]
    assert sum(len(d.removed) for d in one) > 50
    local = DedupStage(DedupOptions(scope="document"))
    local.expect_input(10 << 20)  # (an index a document: nothing made ahead)
    assert local.units.buckets.slot_keys.size == 1 << 10


def test_state_payload_arrays_of_any_layout_are_saved_as_their_bytes() -> None:
    # pack_arrays joins the arrays' buffers (no tobytes copy first): a strided view, a 0-d array, an empty
    # row block, big-endian values and read-only views (a repacked payload's) are saved as tobytes gave them
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(6), fh, strict=False)]
    stage = DedupStage()
    for i, text in enumerate(texts):
        stage.process(Document(f"d{i}", text, "a.jsonl", line_no=i + 1))
    header, saved = dedup.unpack_arrays(next(iter(stage.pop_state("a.jsonl"))))
    arrays = {
        **saved,
        "strided": saved["keys"][::2],
        "scalar": np.array(7, dtype=np.int64),
        "no_rows": np.empty((0, 9), np.uint64),
        "big_endian": saved["set_sizes"].astype(">u4"),
        "columns": saved["unit_keys"].T,
    }
    payload = dedup.pack_arrays(header, arrays)
    back_header, back = dedup.unpack_arrays(payload)
    assert back_header == header and back.keys() == arrays.keys()
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name
    # the arrays' bytes, each 8-byte aligned, after the header (as ``tobytes`` wrote them)
    raw = b"".join(a.tobytes() + b"\0" * (-a.nbytes % 8) for a in arrays.values())
    assert payload.endswith(raw) and saved["keys"].size and saved["sets"].size
