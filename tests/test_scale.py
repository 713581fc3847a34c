"""Scale: the compact dedup key table, the Ray executor giving the local executor's output, and a large
document of short lines scored in blocks with the results of scoring it at once."""

from __future__ import annotations

import json
import os
import pickle
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline import runner
from pipeline.cli import cli
from pipeline.document import Document
from pipeline.runner import removed_lines
from pipeline.stages import boilerplate
from pipeline.stages import boilerplate_kernels as kernels
from pipeline.stages.boilerplate import BoilerplateStage, _scorer_inputs, scorer_candidates
from pipeline.stages.dedup import DedupStage, KeyTable, Sketch

SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"
LINGUA_EN = SHARED / "corpora" / "lingua-sentences" / "en.txt"


def test_key_table_behaves_like_a_first_wins_dict() -> None:
    rng = np.random.default_rng(7)
    table = KeyTable()
    reference: dict[int, int] = {}
    for step in range(400):
        keys = rng.integers(0, 2**64, size=30, dtype=np.uint64)
        keys[:5] = rng.choice(np.array(list(reference) or [1], dtype=np.uint64), size=5)  # repeats
        found = table.get_many(keys)
        assert found == [reference.get(k) for k in keys.tolist()]
        new = {k: step for k in dict.fromkeys(keys.tolist()) if k not in reference and k not in table}
        table.update(new)
        if step % 7 == 0:  # a rolled-back document: its keys go again
            for k in new:
                del table[k]
        else:
            reference.update(new)
    assert len(table) == len(reference)
    assert table.slot_keys.nbytes + table.slot_values.nbytes < 40 * len(reference)  # vs ~100 in a dict


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b)
            and b.flags.writeable
            and b.flags.aligned
        )
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_a_sketch_travels_as_one_buffer_and_dedups_as_before() -> None:
    """A worker's sketch (prepare_document) is pickled as one buffer, not array by array; back in the
    main process its arrays are equal, writable and aligned (as numba's kernels are typed for), and
    dedup's decisions on the documents are the ones the sketches it made itself give."""
    records = _docs(60)
    records += [dict(r, id=r["id"] + "-again") for r in records[:20:3]]
    here, there = DedupStage(), DedupStage()
    for record in records:
        doc = Document(record["id"], record["text"], "docs.jsonl")
        here.prepare_document(doc)
        text, sketch = doc.scratch["dedup"]
        assert isinstance(sketch, Sketch)
        payload = pickle.dumps(sketch, protocol=pickle.HIGHEST_PROTOCOL)
        assert b"numpy" not in payload  # (each array pickled alone names numpy's reconstructor)
        back = pickle.loads(payload)
        assert list(back) == list(sketch) and all(_same(sketch[k], back[k]) for k in sketch)
        sent = Document(record["id"], record["text"], "docs.jsonl", scratch={"dedup": (text, back)})
        own = Document(record["id"], record["text"], "docs.jsonl")
        here.process(sent)
        there.process(own)
        assert (sent.text, sent.rejected, removed_lines(sent)) == (own.text, own.rejected, removed_lines(own))
    assert here.take_stats() == there.take_stats()
    assert len(here.doc_ids) < len(records)  # some duplicates were found


class _Counting(pickle.Unpickler):
    """Counts the functions the payload names by reconstructor."""

    def __init__(self, payload: bytes) -> None:
        import io

        super().__init__(io.BytesIO(payload))
        self.named: list[str] = []

    def find_class(self, module: str, name: str) -> object:
        self.named.append(name)
        return super().find_class(module, name)


def test_a_batch_of_sketches_travels_as_one_pack() -> None:
    """The sketches a worker made for a batch are pickled together, once, with the batch's results (one
    pack: each field one array for all of them, not ~15 arrays per document), and they come back equal,
    writable and aligned. The pack is sealed as it is sent (the next batch's sketches make a new one) and
    holds no sketch alive: one processed before the pack is pickled is left out."""
    records = _docs(40)
    stage = DedupStage()
    batches = [records[:20], records[20:]]
    for batch in batches:
        docs = [Document(r["id"], r["text"], "docs.jsonl") for r in batch]
        for doc in docs:
            stage.prepare_document(doc)
        gone = docs.pop(3)  # processed here before the results are sent: its sketch is let go
        stage.process(gone)
        del gone
        sketches = [doc.scratch["dedup"][1] for doc in docs]
        payload = pickle.dumps([(i, doc.scratch) for i, doc in enumerate(docs)], protocol=pickle.HIGHEST_PROTOCOL)
        reader = _Counting(payload)
        back = reader.load()
        assert reader.named.count("_unpack_sketches") == 1, reader.named  # one pack for the batch
        assert "_reconstruct" not in reader.named and "frombuffer" not in reader.named  # no array alone
        for sketch, (_, scratch) in zip(sketches, back, strict=True):
            text, got = scratch["dedup"]
            assert isinstance(got, Sketch) and list(got) == list(sketch)
            assert all(_same(sketch[k], got[k]) for k in sketch)
    # sketches unlike the others (a field changed, another added) and one of its own travel too
    docs = [Document(r["id"], r["text"], "docs.jsonl") for r in records[:8]]
    for doc in docs:
        stage.prepare_document(doc)
    docs[1].scratch["dedup"][1]["doc_signature"] = None
    docs[2].scratch["dedup"][1]["extra"] = np.arange(3)
    # columns of arrays unlike each other: a dtype, a row shape, a 0-d array, a 2-d column's only 1-d one
    docs[4].scratch["dedup"][1]["keys"] = docs[4].scratch["dedup"][1]["keys"].astype(np.uint32)
    docs[5].scratch["dedup"][1]["band_keys"] = np.arange(12, dtype=np.uint64).reshape(4, 3)
    docs[6].scratch["dedup"][1]["line_chars"] = np.array(7)
    docs[7].scratch["dedup"][1]["band_keys"] = np.arange(5, dtype=np.uint64)
    alone = Sketch(docs[3].scratch["dedup"][1])
    sketches = [doc.scratch["dedup"][1] for doc in docs] + [alone]
    back = pickle.loads(pickle.dumps(sketches, protocol=pickle.HIGHEST_PROTOCOL))
    for sketch, got in zip(sketches, back, strict=True):
        assert list(got) == list(sketch) and all(_same(sketch[k], got[k]) for k in sketch)
        assert all(np.asarray(sketch[k]).dtype == np.asarray(got[k]).dtype for k in ("keys", "band_keys"))


def test_what_the_index_keeps_of_a_sent_sketch_does_not_hold_its_buffer() -> None:
    """A sketch comes back as views of its batch's buffer. What the stage keeps of a kept document until
    its input file's state is saved (``_learnt``) must not be one of them: a view held the whole buffer
    (all the batch's sketches: ~35 MB of 40 MB of web text in one file, until the file was done)."""
    worker, main = DedupStage(), DedupStage()
    docs = [Document(r["id"], r["text"], "docs.jsonl") for r in _docs(20)]
    for doc in docs:
        worker.prepare_document(doc)
    back = pickle.loads(pickle.dumps([doc.scratch for doc in docs], protocol=pickle.HIGHEST_PROTOCOL))
    for doc, scratch in zip(docs, back, strict=True):
        main.process(Document(doc.id, doc.text, doc.source, scratch=scratch))
    rows = main._learnt["docs.jsonl"]
    assert rows and any(row["doc_sig"] is not None for row in rows)
    for row in rows:
        for value in row.values():
            while isinstance(value, np.ndarray):
                value = value.base
            if isinstance(value, memoryview):
                value = value.obj
            assert not isinstance(value, (bytes, bytearray)), row


def _docs(n: int) -> list[dict[str, str]]:
    with CC.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def test_ray_executor_output_equals_local(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    src = tmp_path / "in"
    src.mkdir()
    records = _docs(40)
    records += [dict(r, id=r["id"] + "-again") for r in records[:10:2]]
    (src / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    outs = {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--workers", "2"])):
        out = tmp_path / name
        result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "-q", *extra])
        assert result.exit_code == 0, result.output
        outs[name] = out
    for name in ("docs.jsonl", "removed.jsonl", "rejected.jsonl"):
        assert (outs["ray"] / name).read_bytes() == (outs["local"] / name).read_bytes(), name
    assert (outs["local"] / "rejected.jsonl").read_text().count("duplicate") >= 5


def _word_list(lines: int) -> str:
    """A word list / phrase book: short lines of 3-7 English words ending with a comma, a sentence
    every 12th line (so that the document has an article stretch and the line scorer runs)."""
    rng = random.Random(12)
    sentences = [s for s in LINGUA_EN.read_text(encoding="utf-8").split("\n") if s.isascii() and len(s.split()) >= 8]
    words = [w.strip(".,;:!?\"'()") for s in sentences for w in s.split()]
    words = [w for w in words if w.isalpha()]
    out = []
    for i in range(lines):
        if i % 12 == 11:
            out.append(rng.choice(sentences))
        else:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 7))) + ",")
    return "\n".join(out) + "\n"


def test_a_large_document_of_short_lines_is_scored_in_blocks_as_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line scorer takes a long document's rows in blocks (kernels.TREE_ROWS, boilerplate.LOG_ODDS_ROWS)
    and leaves documents of SCORED_MAX_ROWS candidates or more to the step-by-step path: every score,
    and so the cleaned document and its removals, is the one scoring all rows at once gives."""
    stage = BoilerplateStage()
    text = _word_list(20_000)
    lines = text.split("\n")
    v = stage.rule_verdicts(Document("big", text, "words.txt"), lines)
    assert v.stretch is not None
    cand = scorer_candidates(lines, v)
    assert len(cand) > 2 * kernels.TREE_ROWS and len(cand) > 2 * boilerplate.LOG_ODDS_ROWS
    compiled = stage._compiled_log_odds(v, _scorer_inputs(lines, v, cand))
    assert compiled is not None  # the kernel's blocks of TREE_ROWS rows
    monkeypatch.setattr(boilerplate, "LOG_ODDS_ROWS", 1 << 30)
    whole = stage._log_odds_of(lines, v, cand, _scorer_inputs(lines, v, cand))  # numpy, all rows at once
    monkeypatch.setattr(boilerplate, "LOG_ODDS_ROWS", 1000)
    blocks = stage._log_odds_of(lines, v, cand, _scorer_inputs(lines, v, cand))
    assert np.array_equal(compiled.view(np.int64), whole.view(np.int64))
    assert np.array_equal(blocks.view(np.int64), whole.view(np.int64))

    def cleaned() -> tuple[str, bytes]:
        doc = Document("big", text, "words.txt")
        stage.process(doc)
        return doc.text, removed_lines(doc)

    monkeypatch.setattr(boilerplate, "LOG_ODDS_ROWS", 8192)
    by_kernel = cleaned()
    monkeypatch.setattr(kernels, "SCORED_MAX_ROWS", 1000)  # this document now takes the step-by-step path
    assert cleaned() == by_kernel
    assert by_kernel[1].count(b'"rule":"line-scorer"') > 10


def test_the_warm_up_takes_the_line_scorers_python_words_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm-up page has a word whose capital lower-cases to two characters: boilerplate's line scorer
    finds its words in Python then, loading that path's kernels before the stream's workers fork (each
    worker loaded them, ~0.1 s apiece, on the first such page of its share)."""
    calls: list[str] = []
    python_path = BoilerplateStage._log_odds_of

    def noted(self: BoilerplateStage, *args: object, **kwargs: object) -> np.ndarray:
        calls.append("python words")
        return python_path(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BoilerplateStage, "_log_odds_of", noted)
    runner._warm_up([BoilerplateStage()])
    assert calls


def test_the_warm_up_scores_a_page_in_two_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm-up page is in two languages sentence by sentence: the language stage's bilingual test scores its
    sentences for both, loading that kernel before the stream's workers fork (each loaded it on its first such page)."""
    from pipeline.stages import language

    calls: list[str] = []
    scores = language._pair_scores

    def noted(*args: object, **kwargs: object) -> object:
        calls.append("pair scores")
        return scores(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(language, "_pair_scores", noted)
    runner._warm_up([language.LanguageStage()])
    assert calls


def test_the_last_files_state_record_is_written_beside_the_audit_assembly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last group's state record (the stages' rows and SQLite's fsync, ~0.3 s on 40 MB) is written in a
    thread while rejected.jsonl and removed.jsonl are assembled. A last file as large as a whole group
    (``GROUP_BYTES``: one large JSONL) was committed when it closed, so its record was written first, alone."""
    from pipeline.state import StateStore

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        (src / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _docs(6)), encoding="utf-8")
    monkeypatch.setattr(runner, "GROUP_BYTES", 1)  # every file fills a group
    threads: list[str] = []
    original = StateStore.commit_files

    def recording(self: StateStore, entries: object, config: object = None) -> None:
        threads.append(threading.current_thread().name)
        original(self, entries, config)  # type: ignore[arg-type]

    monkeypatch.setattr(StateStore, "commit_files", recording)
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert threads == ["MainThread", "cleancorpus-record"]
