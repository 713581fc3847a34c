"""dedup: signatures equal datasketch's, exact and near-duplicate paragraphs, duplicate documents."""

from __future__ import annotations

import json

import datasketch
import numpy as np
import pytest
import xxhash
from conftest import CORPORA

from pipeline.document import Document
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


def test_signatures_equal_datasketch_on_real_paragraphs() -> None:
    stage = DedupStage(DedupOptions(num_perm=128, seed=7))
    for para in _real_paragraphs(60):
        shingles = stage.shingles(stage.normalize(para))
        ours = stage.hasher.signature(stage.hasher.hashes(shingles))
        theirs = datasketch.MinHash(num_perm=128, seed=7, hashfunc=xxhash.xxh32_intdigest)
        theirs.update_batch([s.encode("utf-8") for s in shingles])
        assert np.array_equal(ours, theirs.hashvalues)


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
    assert "mostly duplicate" in docs[1].rejected.reason
    assert docs[2].rejected is None and paras[6] in docs[2].text  # the rejected doc's new text was not indexed


def test_short_units_are_never_removed() -> None:
    (doc,) = _run(DedupStage(), "Yes.\n\nA long enough paragraph of text that stays.\n\nYes.")
    assert doc.text.count("Yes.") == 2


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
