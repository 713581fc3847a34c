"""The run machinery: first pass split between workers and this process, batches sent to workers."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from conftest import seed_text

from pipeline import executors
from pipeline.cli import cli
from pipeline.document import Document
from pipeline.runner import (
    _UNCHANGED,
    Batch,
    _apply_changes,
    _changes,
    _incoming,
    _outgoing,
    _prepare_parts,
    _prepare_sent,
    _snapshot,
    _unpacked,
    apply_stage,
    removed_lines,
    render_removed,
)
from pipeline.stages.base import Stage


class SplitHeaderStage(Stage):
    """Drops a first line that starts two or more documents; the first pass is split: each worker
    returns (first line, its pid), this process counts them."""

    name = "split_header"
    needs_prepare = True

    def __init__(self, options: Stage.Options | None = None) -> None:
        super().__init__(options)
        self.headers: set[str] = set()
        self.order: list[str] = []
        self.parts_from_main = False

    def prepare_part(self, doc: Document) -> object:
        return doc.text.split("\n", 1)[0], os.getpid()

    def prepare_merge(self, parts: Iterable[object]) -> None:
        pairs: list[tuple[str, int]] = list(parts)  # type: ignore[arg-type]
        self.order = [first for first, _ in pairs]
        self.headers = {line for line, n in Counter(self.order).items() if n >= 2}
        self.parts_from_main = any(pid == os.getpid() for _, pid in pairs)

    def process(self, doc: Document) -> None:
        if not _FIRST_RUNS:
            _FIRST_RUNS.append((os.getpid(), threading.current_thread().name))
        doc.meta["first_run_in"] = _FIRST_RUNS[0]
        first, _, rest = doc.text.partition("\n")
        doc.meta["order"] = self.order
        doc.meta["parts_from_main"] = self.parts_from_main
        if first in self.headers:
            doc.remove(self.name, "header", first, lines=1)
            doc.text = rest


_FIRST_RUNS: list[tuple[int, str]] = []  # where SplitHeaderStage.process first ran: process, thread
_TABLE: list[int] = []  # loaded on the first document, in the process where that happens


class LazyTableStage(Stage):
    """Loads a module-level table on its first document, as language and dedup do (langdetect's
    profiles, numba's cached code): where that happened shows whether the workers inherited it."""

    name = "lazy_table"

    def process(self, doc: Document) -> None:
        if not _TABLE:
            time.sleep(0.2)  # loading takes a while: a worker forked meanwhile would load it again
            _TABLE.append(os.getpid())
        doc.meta["table_loaded_in"] = _TABLE[0]


class CollectorProbeStage(Stage):
    """Notes whether the garbage collector runs automatically when it is built and when it processes."""

    name = "collector_probe"

    def __init__(self, options: Stage.Options | None = None) -> None:
        super().__init__(options)
        self.built_with_collector = gc.isenabled()

    def process(self, doc: Document) -> None:
        doc.meta["collector"] = [self.built_with_collector, gc.isenabled()]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_sets_up_without_automatic_collections_and_leaves_the_collector_as_it_was(
    tmp_path: Path, enabled: bool
) -> None:
    from pipeline.config import load_config_data
    from pipeline.runner import run

    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "One line."}\n')
    config = load_config_data(
        {"output": {"metadata_field": "meta"}, "stages": [{"stage": "test_runner:CollectorProbeStage"}]}
    )
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        run(config, [str(tmp_path / "in.jsonl")], tmp_path / "out")
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    record = json.loads((tmp_path / "out" / "in.jsonl").read_text())
    # Built while paused; processing too (a batch's task collects once at its end: _collector_paused); after the
    # run, the collector is as the caller had it.
    assert record["meta"]["collector"] == [False, False]
    assert after is enabled


class LoadProbeStage(Stage):
    """Loads a table in ``load`` (as the language stage loads its word profiles) and looks at it per document."""

    name = "load_probe"
    loads: ClassVar[list[bool]] = []  # the collector's state at each call
    table: ClassVar[list[object]] = []

    def load(self) -> None:
        LoadProbeStage.loads.append(gc.isenabled())
        LoadProbeStage.table[:] = [{"entry": [i]} for i in range(100)]

    def process(self, doc: Document) -> None:
        young = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        doc.meta["table_frozen"] = bool(LoadProbeStage.table) and all(id(o) not in young for o in LoadProbeStage.table)


def test_a_one_worker_run_loads_the_stages_tables_before_it_freezes_what_lives_as_long_as_it(tmp_path: Path) -> None:
    # (made during the first batch, the tables were walked by the collection that ends it: settle_garbage)
    from pipeline.config import load_config_data
    from pipeline.runner import run

    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "One line."}\n')
    config = load_config_data(
        {"output": {"metadata_field": "meta"}, "stages": [{"stage": "test_runner:LoadProbeStage"}]}
    )
    LoadProbeStage.loads.clear()
    run(config, [str(tmp_path / "in.jsonl")], tmp_path / "out")
    assert LoadProbeStage.loads == [False]  # once, while the collector was paused for the set-up
    assert json.loads((tmp_path / "out" / "in.jsonl").read_text())["meta"]["table_frozen"] is True
    run(config, [str(tmp_path / "in.jsonl")], tmp_path / "out")  # nothing new: nothing to load
    assert LoadProbeStage.loads == [False]


class CyclesStage(Stage):
    """Leaves cyclic garbage on every document: enough new containers for many automatic collections."""

    name = "cycles"

    def process(self, doc: Document) -> None:
        for _ in range(2000):
            loop: list[object] = []
            loop.append(loop)
        doc.meta["collector"] = gc.isenabled()


@pytest.mark.parametrize("sent", [False, True])
def test_a_batchs_task_has_no_automatic_collections_and_collects_its_cycles_once_at_its_end(sent: bool) -> None:
    from pipeline.executors import Shared
    from pipeline.runner import _run_in_worker, _run_sent

    docs = [Document(str(i), f"Text {i}.", "f.jsonl") for i in range(5)]
    stages: list[Stage | None] = [CyclesStage()]
    generations: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(note)
    try:
        if sent:
            changes = _run_sent(Shared(value=stages), [0], None, [_outgoing(doc, "text") for doc in docs])
            assert len(changes[0]) == len(docs)
        else:
            batch = _run_in_worker(Shared(value=stages), [0], None, Batch(docs))
            assert [doc.meta["collector"] for doc in batch.docs] == [False] * len(docs)
        enabled_after = gc.isenabled()
        left = gc.get_count()[0]
    finally:
        gc.callbacks.remove(note)
        (gc.enable if was else gc.disable)()
    # 10,000 cyclic lists: ~14 young passes with the collector on; paused, only settle_garbage's full one.
    assert generations == [2]
    assert enabled_after
    assert left < 100  # the batch's garbage was collected (and its survivors frozen)


def _run(tmp_path: Path, workers: int, more_stages: str = "") -> list[dict[str, object]]:
    src = tmp_path / "in.jsonl"
    texts = ["Site Header\nOne.", "Unique\nTwo.", "Site Header\nThree.", "", "Other\nFour."]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    config = tmp_path / "c.yaml"
    config.write_text(
        "output:\n  metadata_field: meta\nstages:\n  - stage: encoding\n  - stage: test_runner:SplitHeaderStage\n"
        + more_stages
    )
    out = tmp_path / f"w{workers}"
    args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", str(workers)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "in.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("workers", "start"), [(1, None), (2, "fork"), (2, "spawn")])
def test_first_pass_parts_come_from_the_workers_in_input_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, start: str | None
) -> None:
    if start is not None:  # spawn: what runs with a live progress display (another thread), or off Linux
        monkeypatch.setattr(executors, "start_method", lambda: start)
    records = _run(tmp_path, workers)
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    meta = records[0]["meta"]
    assert isinstance(meta, dict)
    assert meta["order"] == ["Site Header", "Unique", "Site Header", "Other"]  # the empty one was rejected
    assert meta["parts_from_main"] is (workers == 1)


def test_stages_after_the_first_pass_warm_up_here_and_the_stream_workers_inherit_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 2 forked workers they warm up in this process during the first pass, and the stream's
    # workers are forked after that (a second pool): none of them loads the table again.
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    _TABLE.clear()
    records = _run(tmp_path, 2, "  - stage: test_runner:LazyTableStage\n")
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    assert {r["meta"]["table_loaded_in"] for r in records} == {os.getpid()}  # type: ignore[index]
    assert records[0]["meta"]["parts_from_main"] is False  # type: ignore[index]


def test_the_first_pass_stage_runs_first_in_the_warm_up_thread_while_its_workers_prepare_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first pass's workers only prepare that stage's parts: its own run (boilerplate's line scorer,
    # numba's cached kernels) warms up with the later stages during the first pass, not before it.
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    _FIRST_RUNS.clear()
    _TABLE.clear()
    records = _run(tmp_path, 2, "  - stage: test_runner:LazyTableStage\n")
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    assert {tuple(r["meta"]["first_run_in"]) for r in records} == {(os.getpid(), "cleancorpus-warm-up")}  # type: ignore[index]


def test_a_batch_comes_back_from_a_worker_unchanged() -> None:
    kept = Document("a", "cleaned", "f.jsonl", original="raw text", record={"id": "a", "url": "u"}, line_no=3)
    kept.remove("boilerplate", "menu", "Home | About", lines=1)
    kept.remove("dedup", "near-duplicate", "a paragraph", duplicate_of="b", jaccard=0.9)
    kept.meta["language"] = "en"
    kept.scratch["dedup"] = ("cleaned", {"keys": [1, 2]})
    rejected = Document("b", "", "f.jsonl", original="")
    rejected.reject("input", "empty document")
    quarantined = Document("c", "x", "f.jsonl")
    quarantined.reject("language", "stage error: boom", quarantine=True, detail=1)
    batch = Batch([kept, rejected, quarantined])
    back = pickle.loads(pickle.dumps(batch))
    assert back.docs == batch.docs
    assert back.docs[1].original == ""


def test_removed_lines_are_each_records_orjson_line_whatever_its_values() -> None:
    # The common record is written from a start made once per (stage, rule): it must be byte for byte the
    # line orjson makes of the record's dict, for any id, line, text and offsets (else the dict's own line).
    from pipeline.document import Removal
    from pipeline.io import jsonl_line

    texts = [
        "Home | About",
        "",
        'quote " back \\ slash',
        "tab\tnew\nline\x00\x1f",
        "é漢字😀",
        "\u2028\u2029",
        "x" * 5000,
    ]
    ids: list[Any] = ["a", "", 'i"d', 12345678901234, "ü/ß", "\ud7ff"]
    for doc_id in ids:
        for line in (0, 7):
            doc = Document(doc_id, "", "in/f ü.jsonl", line_no=line)
            for k, text in enumerate(texts):
                doc.removed.append(Removal("boilerplate", "menu" if k % 2 else "line-scorer", text, 1, None, k, k + 3))
            doc.removed.append(Removal("dedup", "near-duplicate", "p", 1, {"duplicate_of": "b", "jaccard": 0.5}, 3, 4))
            doc.removed.append(Removal("language", "fragment", "q", 0, None, None, None))  # offsets not known
            doc.removed.append(Removal("language", "fragment", "r", 0, None, True, 2))  # (not an int: as orjson has it)
            doc.removed.append(Removal("boilerplate", "menu", "s", 1, None, 2**63 - 1, 2**63 - 1))
            doc.removed.append(Removal("stage-é", 'rule"x', "t", 1, None, 0, 0))
            expected = b""
            for r in doc.removed:
                record = {"id": doc_id, "source": doc.source} | ({"line": line} if line else {})
                record |= {"stage": r.stage, "rule": r.rule, "start": r.start, "end": r.end, "text": r.text}
                if r.extra:
                    record.update(r.extra)
                expected += jsonl_line(record)
            assert removed_lines(doc) == expected


def test_a_batch_whose_audit_lines_are_rendered_travels_without_its_removals() -> None:
    doc = Document("a", "kept text", "f.jsonl")
    doc.remove("boilerplate", "menu", "Home | About", 1, 0, 12)  # where it was (offsets.py)
    doc.remove("dedup", "near-duplicate", "a paragraph", duplicate_of="b")  # not known
    lines = removed_lines(doc)
    assert [json.loads(line) for line in lines.splitlines()] == [
        {
            "id": "a",
            "source": "f.jsonl",
            "stage": "boilerplate",
            "rule": "menu",
            "start": 0,
            "end": 12,
            "text": "Home | About",
        },
        {
            "id": "a",
            "source": "f.jsonl",
            "stage": "dedup",
            "rule": "near-duplicate",
            "start": None,
            "end": None,
            "text": "a paragraph",
            "duplicate_of": "b",
        },
    ]
    batch = Batch([doc])
    render_removed(batch)
    back = pickle.loads(pickle.dumps(batch))
    assert back.removed_lines == [lines] and back.docs[0].removed == [] and back.docs[0].text == "kept text"

    # a record of a JSONL line names it, as rejected.jsonl does: ids are often shared by documents of a file
    doc = Document("a", "kept text", "f.jsonl", line_no=7)
    doc.remove("dedup", "near-duplicate", "a paragraph", duplicate_of="b")
    assert json.loads(removed_lines(doc)) == {
        "id": "a",
        "source": "f.jsonl",
        "line": 7,
        "stage": "dedup",
        "rule": "near-duplicate",
        "start": None,
        "end": None,
        "text": "a paragraph",
        "duplicate_of": "b",
    }


def test_removals_rendered_in_two_workers_give_the_lines_rendered_at_once() -> None:
    # A worker renders the Removals of its stages and drops them; the next one appends its own.
    doc = Document("a", "kept text", "f.jsonl")
    other = Document("b", "other text", "f.jsonl")
    doc.remove("boilerplate", "menu", "Home | About", lines=1)
    batch = Batch([doc, other])
    render_removed(batch)
    assert doc.removed == [] and batch.removed_lines is not None and batch.removed_lines[1] == b""
    batch = pickle.loads(pickle.dumps(batch))
    batch.docs[0].remove("dedup", "near-duplicate", "a paragraph", duplicate_of="b")
    batch.docs[1].remove("normalize", "whitespace", "  ")
    render_removed(batch)
    expected = Document("a", "kept text", "f.jsonl")
    expected.remove("boilerplate", "menu", "Home | About", lines=1)
    expected.remove("dedup", "near-duplicate", "a paragraph", duplicate_of="b")
    assert batch.removed_lines[0] == removed_lines(expected)
    assert json.loads(batch.removed_lines[1])["rule"] == "whitespace"


def _worker_edits(batch: Batch) -> None:
    """What a worker's stages might do to a batch: new text, metadata, a rejection, scratch, removals."""
    first, second = batch.docs[0], batch.docs[1]
    first.remove("boilerplate", "menu", "Home | About", lines=1)
    first.text = first.text.replace("Home | About\n", "")
    first.meta["language"] = "en"
    first.scratch["dedup"] = (first.text, {"keys": [1, 2]})
    second.reject("language", "not English", language="de")
    first.record["url"] = "https://example.org/a?clean"  # a user's stage may change the record
    first.record["quality"] = 0.9
    render_removed(batch)


def test_documents_sent_to_local_workers_come_back_as_the_batch_run_here() -> None:
    # Local workers get the live documents without what stays here (the text as read, the record's
    # text field) and return only what changed: the batch ends up as a whole Batch run in place.
    def batch() -> Batch:
        record = {"id": "a", "text": "Home | About\nA page.", "url": "https://example.org/a"}
        first = Document("a", record["text"], "f.jsonl", record=record, line_no=1)
        first.remove("dedup", "near-duplicate", "an earlier paragraph", duplicate_of="z")
        second = Document("b", "Ein Text.", "f.jsonl", record={"id": "b", "text": "Ein Text."}, line_no=2)
        dropped = Document("c", "", "f.jsonl", line_no=3)
        dropped.reject("input", "empty document")
        third = Document("d", "Unchanged.", "f.jsonl", line_no=4)
        return Batch([first, second, dropped, third], removed_lines=[b"", b"", b"", b""])

    here = batch()
    _worker_edits(here)
    sent_from = batch()
    live = [i for i, doc in enumerate(sent_from.docs) if doc.rejected is None]
    sent = pickle.loads(pickle.dumps([_outgoing(sent_from.docs[i], "text") for i in live]))
    assert [packed[0] for packed in sent] == ["a", "b", "d"]  # the rejected one stays here
    assert sent[0][3] == {"id": "a", "url": "https://example.org/a"}  # no second copy of the text
    worker = Batch([_incoming(packed) for packed in sent])
    texts = [doc.text for doc in worker.docs]
    records = [_snapshot(doc.record) for doc in worker.docs]
    _worker_edits(worker)
    changes = pickle.loads(pickle.dumps(_changes(worker, texts, records)))
    assert changes[0][2][0] is None  # the unchanged text does not travel back
    assert changes[0][1][4] is False and changes[0][0][4] is not False  # nor an unchanged record
    _apply_changes(sent_from, live, changes)
    assert sent_from.docs == here.docs
    assert list(sent_from.docs[0].record) == ["id", "text", "url", "quality"]  # the text field in its place
    assert (
        sent_from.docs[0].original == "Home | About\nA page."
        and sent_from.docs[0].record["text"] == "Home | About\nA page."
    )
    assert sent_from.removed_lines == here.removed_lines and sent_from.removed_lines[0].count(b"\n") == 2


def test_a_text_the_workers_left_as_sent_does_not_travel_back_in_a_stages_scratch() -> None:
    # dedup's prepare_document keeps (the text, its sketch) in the scratch: for a document no stage changed, that
    # text went back to this process, which has it (CC: 0.28 of 2.7 MB of texts; all of an input already clean).
    import numpy as np

    def batch() -> Batch:
        return Batch([Document("a", "Clean text. " * 50, "f.jsonl", line_no=1), Document("b", "Cut me.", "f.jsonl")])

    sent_from = batch()
    sent = pickle.loads(pickle.dumps([_outgoing(doc, "text") for doc in sent_from.docs]))
    worker = Batch([_incoming(packed) for packed in sent])
    texts = [doc.text for doc in worker.docs]
    records = [_snapshot(doc.record) for doc in worker.docs]
    worker.docs[1].text = "Cut."
    for doc in worker.docs:
        doc.scratch["dedup"] = (doc.text, {"keys": np.arange(3)}, np.arange(2))
    doc = worker.docs[0]
    doc.scratch["other"] = {"n": 1}
    data = pickle.dumps(_changes(worker, texts, records))
    assert b"Clean text." not in data and data.count(b"Cut.") == 1  # (a changed text once: pickle's memo)
    _apply_changes(sent_from, [0, 1], pickle.loads(data))
    kept, cut = sent_from.docs
    assert kept.scratch["dedup"][0] is kept.text and kept.text == "Clean text. " * 50
    assert cut.scratch["dedup"][0] is cut.text and cut.text == "Cut."
    assert list(kept.scratch["dedup"][1]["keys"]) == [0, 1, 2] and list(kept.scratch["dedup"][2]) == [0, 1]
    assert kept.scratch["other"] == {"n": 1}
    assert worker.docs[0].scratch["dedup"][0] is texts[0]  # (the worker's own scratch is left as it was)


_TOUCHED: list[str] = []  # the texts TouchStage processed, in this process


class TouchStage(Stage):
    """Changes the documents that say "fix" and leaves the others exactly as they were."""

    name = "touch"

    def process(self, doc: Document) -> None:
        _TOUCHED.append(doc.text)
        if "fix" in doc.text:
            doc.text = doc.text.replace("fix", "fixed")
            self.stat_update("fixed")


class DropEmptyStage(Stage):
    """Rejects documents without text (a per-document stage before the first pass's one)."""

    name = "drop_empty"

    def process(self, doc: Document) -> None:
        if not doc.text:
            doc.reject(self.name, "empty")


def test_the_first_pass_workers_send_a_batchs_parts_packed_and_they_unpack_equal():
    """A local worker of the first pass packs its batch's parts with the stage's pack_parts (one bytes object to
    pickle); unpacked in this process they equal prepare_part's, None where a document did not live. A stage
    that packs nothing (the default, or boilerplate with the recurring rule off) sends its parts as they are."""
    from pipeline.executors import Shared
    from pipeline.stages.boilerplate import BoilerplateStage

    texts = ["Home\nNews\nA first line of the article here.\nShare this", "", "Menu\nΣίγμα line\n\U0001f600 ok"]
    docs = [
        Document(f"d{i}", text, "a.jsonl", record={"url": f"https://s{i % 2}.example/x"})
        for i, text in enumerate(texts)
    ]
    sent = [_outgoing(doc, "text") for doc in docs]
    stages = [DropEmptyStage(), BoilerplateStage()]
    payload, masks, live = _prepare_sent(Shared(value=stages), 1, sent)
    assert live == [True, False, True]
    expected, expected_masks, expected_live = _prepare_parts(
        Shared(value=stages), 1, Batch([_incoming(p) for p in sent])
    )
    assert isinstance(payload, bytes) and masks == expected_masks and live == expected_live
    got = _unpacked(stages[1], payload, live)
    assert len(got) == len(expected) == 3
    for part, want in zip(got, expected, strict=True):
        if want is None:
            assert part is None
            continue
        assert part[0] == want[0] and part[1].tolist() == want[1].tolist() and part[2].tolist() == want[2].tolist()
        assert part[1].dtype == want[1].dtype and part[2].dtype == want[2].dtype
    assert any(p is not None and p[1].size for p in expected)
    off = [DropEmptyStage(), BoilerplateStage(BoilerplateStage.Options(disable_rules=["recurring"]))]
    plain, _, _ = _prepare_sent(Shared(value=off), 1, sent)
    assert isinstance(plain, list) and all(part is None for part in plain)


def test_the_first_pass_makes_an_unchanged_texts_code_points_once_for_encoding_and_the_part(monkeypatch):
    """Within a first-pass batch the encoding stage's scan and boilerplate's part share a text's code points
    (``keeping_code_points``): made once per text encoding left as it was, again for one it changed, the same
    parts as without; outside a first pass (or in another thread) nothing is kept."""
    from pipeline.executors import Shared
    from pipeline.stages import text_kernels
    from pipeline.stages.boilerplate import BoilerplateStage
    from pipeline.stages.encoding import EncodingStage

    made: list[str] = []
    real = text_kernels._UTF32_LE
    monkeypatch.setattr(text_kernels, "_UTF32_LE", lambda text, errors: made.append(text) or real(text, errors))
    texts = ["Home\nNews\nA first line of the article here.\nShare this", "Caf\u00c3\u00a9 menu\nok line", "x y z"]
    docs = [Document(f"d{i}", text, "a.jsonl", record={"url": "https://s.example/x"}) for i, text in enumerate(texts)]
    stages = [EncodingStage(), BoilerplateStage()]
    parts, _, _ = _prepare_parts(Shared(value=stages), 1, Batch(docs))
    ours = [*texts, "Café menu\nok line"]  # the second was repaired: its new text too
    assert [made.count(text) for text in ours] == [1, 1, 1, 1]
    made.clear()
    fresh = [BoilerplateStage().prepare_part(Document("d", text, "a.jsonl")) for text in (texts[0], texts[0])]
    assert made.count(texts[0]) == 2  # (not kept outside a first pass)
    assert parts[0][1].tolist() == fresh[0][1].tolist()
    with text_kernels.keeping_code_points():
        first = text_kernels.code_points(texts[2])
        assert text_kernels.code_points(texts[2]) is first and not first.flags.writeable
        seen: list[object] = []
        worker = threading.Thread(target=lambda: seen.append(text_kernels.code_points(texts[2])))
        worker.start()
        worker.join()
        assert seen[0] is not first and seen[0].tolist() == first.tolist()
    assert text_kernels.code_points(texts[2]) is not first


@pytest.mark.parametrize("dedup_first", [False, True])
def test_the_real_pass_skips_documents_the_first_pass_saw_a_stage_leave_unchanged(
    tmp_path: Path, dedup_first: bool
) -> None:
    # TouchStage runs before the first-pass stage: in the first pass on every document, in the real
    # pass only on those it changed, with the same counts. Not after a cross-document stage: the
    # first pass does not run that one, so the real pass's text may differ.
    src = tmp_path / "in.jsonl"
    texts = ["Site Header\nOne fix.", "Unique\nTwo.", "Site Header\nThree.", "", "Other\nFour."]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    config = tmp_path / "c.yaml"
    stages = ["encoding", "dedup", "test_runner:TouchStage"] if dedup_first else ["encoding", "test_runner:TouchStage"]
    config.write_text(
        "stages:\n" + "".join(f"  - stage: {name}\n" for name in [*stages, "test_runner:SplitHeaderStage"])
    )
    out = tmp_path / "out"
    _TOUCHED.clear()
    args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "in.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == ["One fixed.", "Unique\nTwo.", "Three.", "Other\nFour."]
    first_pass = ["Site Header\nOne fix.", "Unique\nTwo.", "Site Header\nThree.", "Other\nFour."]
    assert first_pass + (first_pass if dedup_first else ["Site Header\nOne fix."]) == _TOUCHED
    touch = json.loads((out / "report.json").read_text())["stages"][len(stages) - 1]
    assert (touch["documents_in"], touch["documents_out"], touch["counters"]) == (4, 4, {"fixed": 1})
    assert touch["characters_out"] - touch["characters_in"] == 2


class TagStage(Stage):
    name = "tag"

    def process(self, doc: Document) -> None:
        doc.meta["tags"] = []


class AppendTagStage(Stage):
    """Changes a document only inside a value of its metadata: not "unchanged" for the real pass."""

    name = "append_tag"

    def process(self, doc: Document) -> None:
        if "fix" in doc.text:
            doc.meta["tags"].append("fix")


def test_a_change_inside_a_metadata_value_is_a_change(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(["A fix.", "B."])))
    config = tmp_path / "c.yaml"
    config.write_text(
        "output:\n  metadata_field: meta\nstages:\n"
        + "".join(f"  - stage: test_runner:{name}\n" for name in ("TagStage", "AppendTagStage", "SplitHeaderStage"))
    )
    out = tmp_path / "out"
    args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "in.jsonl").read_text().splitlines()]
    assert [r["meta"]["tags"] for r in records] == [["fix"], []]  # type: ignore[index]


# ---------------------------------------------------------------- inputs and outputs of a run


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_two_inputs_that_would_write_the_same_output_file_are_refused(tmp_path: Path) -> None:
    """x.html is written to x.html.jsonl: an input of that name would be overwritten by it (or it by that)."""
    _write(
        tmp_path / "in" / "p.html",
        "<html><body><article><p>A page about the sea and its tides.</p></article></body></html>",
    )
    _write(tmp_path / "in" / "p.html.jsonl", '{"id": "x", "text": "A different document about gardening."}\n')
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2, result.output
    assert "two inputs would write the same output file" in result.output and "p.html.jsonl" in result.output
    assert not (tmp_path / "out" / "p.html.jsonl").exists()
    # two folders holding a file of the same name
    _write(tmp_path / "f1" / "a.txt", "From the first folder.")
    _write(tmp_path / "f2" / "a.txt", "From the second folder.")
    args = ["run", str(tmp_path / "f1"), str(tmp_path / "f2"), "-o", str(tmp_path / "o1"), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "two inputs would write the same output file" in result.output
    assert str(tmp_path / "f1" / "a.txt") in result.output and str(tmp_path / "f2" / "a.txt") in result.output
    # output.format makes every output <name>.<format>: a.txt and a.txt.jsonl clash then, not before
    _write(tmp_path / "in2" / "a.txt", "Some text.")
    _write(tmp_path / "in2" / "a.txt.jsonl", '{"id": "y", "text": "Other text."}\n')
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "in2"), "-o", str(tmp_path / "o2"), "-q"]).exit_code == 0
    config = _write(tmp_path / "jsonl.yaml", "output:\n  format: jsonl\n")
    args = ["run", str(tmp_path / "in2"), "-o", str(tmp_path / "o3"), "-q", "-c", str(config)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "a.txt.jsonl" in result.output


def test_a_trial_run_may_not_rebuild_the_state(tmp_path: Path) -> None:
    """--limit records nothing; with --rebuild it would have wiped what earlier runs recorded."""
    _write(tmp_path / "in" / "a.txt", "A first document with a few words in it.")
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "--limit", "1", "--rebuild"])
    assert result.exit_code == 2 and "--limit" in result.output and "--rebuild" in result.output
    info = CliRunner().invoke(cli, ["state", "info", "-o", str(out)])
    assert "files: 1" in info.output and sorted(p.name for p in out.iterdir()) == before


def test_an_empty_input_folder_is_a_run_with_nothing_to_do(tmp_path: Path) -> None:
    """In a cron job an empty folder means nothing arrived: exit 0, a report, the state kept; a missing
    folder is still an error."""
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["files"] == 0 and report["documents"]["in"] == 0
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "missing"), "-o", str(out)])
    assert result.exit_code == 2 and "input not found" in result.output and "relative to" not in result.output
    # a relative path: where it was looked for (a cron job runs in its user's home)
    result = CliRunner().invoke(cli, ["run", "no-such-folder", "-o", str(out)])
    assert result.exit_code == 2
    assert f"input not found: no-such-folder (relative to the current directory, {Path.cwd()})" in result.output


def test_an_input_folder_inside_the_output_folder_is_a_usage_error(tmp_path: Path) -> None:
    """`cleancorpus run corpus/ -o .`: the output folder is left out of the inputs, so a folder inside it
    was too, and the run cleaned nothing, exit 0, night after night in cron."""
    from conftest import seed_text

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text(seed_text("000"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "corpus"), "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "inside the output folder" in result.output and not (tmp_path / "a.txt").exists()
    # an output folder inside the input folder is still left out of the inputs
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "corpus"), "-o", str(tmp_path / "corpus" / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "corpus" / "out" / "a.txt").read_text(encoding="utf-8").strip()


def test_a_recorded_file_now_read_from_another_path_is_reported(tmp_path: Path) -> None:
    """Two input folders with the same file names into one output folder: the second run replaces the
    first one's output of a.txt, and says so in the report (and the log)."""
    _write(tmp_path / "dA" / "a.txt", "The first folder's text about rivers.")
    _write(tmp_path / "dB" / "a.txt", "The second folder's text about mountains.")
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "dA"), "-o", str(out), "-q"]).exit_code == 0
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "dB"), "-o", str(out), "-q"]).exit_code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["replaced"] == [
        {"file": "a.txt", "before": str(tmp_path / "dA" / "a.txt"), "now": str(tmp_path / "dB" / "a.txt")}
    ]
    assert "mountains" in (out / "a.txt").read_text(encoding="utf-8")


class UnwritableFieldStage(Stage):
    """Puts a value JSON has no form for into the record of the documents that say "odd"."""

    name = "unwritable"

    def process(self, doc: Document) -> None:
        if "odd" in doc.text and doc.record is not None:
            doc.record["extra"] = {1, 2}  # a set


def test_a_record_the_output_format_cannot_hold_is_quarantined_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(["fine one", "odd one", "x"])))
    config = _write(tmp_path / "c.yaml", "stages:\n  - stage: test_runner:UnwritableFieldStage\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(src), "-c", str(config), "-o", str(out)])
    assert result.exit_code == 3, result.output  # done, with a record quarantined
    assert [json.loads(line)["id"] for line in (out / "in.jsonl").read_text().splitlines()] == [0, 2]
    (rejected,) = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert rejected["id"] == "1" and rejected["stage"] == "output" and "cannot be written as JSON" in rejected["reason"]
    assert rejected["text"] == "odd one"
    report = json.loads((out / "report.json").read_text())
    assert report["documents"] == report["documents"] | {"in": 3, "out": 2, "rejected": 1, "quarantined": 1}


def test_the_last_files_state_record_is_written_while_the_audit_is_assembled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last files' record waits here until the audit assembly has begun: written in the run's main thread,
    before the assembly, it would wait in vain."""
    import threading

    import pipeline.runner as runner_module
    from pipeline.config import default_config
    from pipeline.runner import run
    from pipeline.state import StateStore

    src = tmp_path / "in"
    src.mkdir()
    for name, seed in (("a.txt", "003"), ("b.txt", "004")):
        (src / name).write_text(seed_text(seed), encoding="utf-8")
    assembling = threading.Event()
    waited: list[bool] = []
    commit_files, assemble = StateStore.commit_files, runner_module._assemble_audit

    def record_after_assembly_began(self: StateStore, entries: Any, config: Any = None) -> None:
        entries = list(entries)  # (the last group of files: here both)
        if any(record.source == "b.txt" for record, _ in entries):
            waited.append(assembling.wait(timeout=10))
        commit_files(self, entries, config)

    def assemble_noting(*args: Any, **kwargs: Any) -> list[str]:
        assembling.set()
        return assemble(*args, **kwargs)

    monkeypatch.setattr(StateStore, "commit_files", record_after_assembly_began)
    monkeypatch.setattr(runner_module, "_assemble_audit", assemble_noting)
    out = tmp_path / "out"
    run(default_config(), [str(src)], out)
    assert waited == [True]
    store = StateStore(out / ".cleancorpus")
    try:
        assert [r.source for r in store.files()] == ["a.txt", "b.txt"]
    finally:
        store.close()
    removed = [json.loads(line)["source"] for line in (out / "removed.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "b.txt" in removed


def test_a_failing_last_state_record_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from pipeline.config import default_config
    from pipeline.runner import run
    from pipeline.state import StateStore

    (tmp_path / "a.txt").write_text(seed_text("003"), encoding="utf-8")

    def full_disk(self: StateStore, entries: Any, config: Any = None) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(StateStore, "commit_files", full_disk)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        run(default_config(), [str(tmp_path / "a.txt")], tmp_path / "out")
    assert not (tmp_path / "out" / "report.json").exists()


class AheadStage(Stage):
    """Records the documents process_ahead is given and those process() then sees."""

    name = "ahead"

    def __init__(self) -> None:
        super().__init__()
        self.ahead: list[list[str]] = []
        self.processed: list[str] = []

    def process_ahead(self, docs: list[Document]) -> None:
        self.ahead.append([d.id for d in docs])

    def process(self, doc: Document) -> None:
        self.processed.append(doc.id)


def test_apply_stage_hands_the_batch_to_process_ahead_first() -> None:
    # A stage with process_ahead (boilerplate) gets the documents it is about to process, at once: not a
    # rejected one, nor one the first pass saw it leave unchanged (only counted).
    docs = [Document(str(i), f"text {i}", "in.jsonl") for i in range(4)]
    docs[1].reject("input", "broken")
    docs[2].scratch = {_UNCHANGED: 1 << 3}
    stage = AheadStage()
    apply_stage(stage, 3, Batch(docs))
    assert stage.ahead == [["0", "3"]]
    assert stage.processed == ["0", "3"]


def _shared_value(shared: executors.Shared) -> Any:
    return shared.get()


def _share_then_die(ready: Any) -> None:
    """(In a child process.) Share an object with a worker pool, then die as the OOM killer would kill it."""
    pool = executors.ProcessExecutor(2, int)
    shared = executors.share(pool, {"tables": list(range(1000))})
    assert list(pool.map(_shared_value, [shared]))[0]["tables"][-1] == 999
    ready.set()
    os.kill(os.getpid(), 9)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_load_a_shared_object_that_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    # A temporary file in /tmp outlived every run killed by SIGKILL (1.2 MB each); on Linux the object
    # lives in an in-memory file the workers open through /proc, gone with the run's process.
    if not hasattr(os, "memfd_create"):
        pytest.skip("no memfd_create here: a temporary file, removed at exit")
    import multiprocessing

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(executors.tempfile, "tempdir", None)  # (read TMPDIR again)
    monkeypatch.setattr(executors, "start_method", lambda: start)
    pool = executors.ProcessExecutor(2, int)
    try:
        pool.start()  # (workers forked after the share inherit the object instead: the next test)
        shared = executors.share(pool, {"word": "Grüße", "n": list(range(10))})
        assert shared.path is not None
        assert list(pool.map(_shared_value, [shared, shared, shared])) == [{"word": "Grüße", "n": list(range(10))}] * 3
        assert not list(tmp_path.iterdir())
    finally:
        pool.close()
    assert not os.path.exists(shared.path)  # closed with the pool
    ready = multiprocessing.get_context("fork").Event()
    child = multiprocessing.get_context("fork").Process(target=_share_then_die, args=(ready,))
    child.start()
    child.join(60)
    assert ready.is_set() and child.exitcode == -9
    assert not list(tmp_path.iterdir())


def _shared_call(shared: executors.Shared) -> tuple[int, int]:
    return shared.get()["fn"](), os.getpid()


def test_workers_forked_after_a_share_inherit_the_object_unpickled_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stream's stages were pickled to a file here and unpickled by every worker (0.01 s and ~2,500 page
    # faults each, 0.01 s here), though its fork pool had not forked yet: they now inherit them at the fork.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(executors.tempfile, "tempdir", None)
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    pool = executors.ProcessExecutor(2, int)
    try:
        shared = executors.share(pool, {"fn": lambda: 42})  # (a lambda does not pickle: inherited, not loaded)
        assert shared.inherited and shared.path is None and not pool.memory_files and not pool.files
        assert pickle.loads(pickle.dumps(shared)).inherited  # (as a task sends it)
        results = list(pool.map(_shared_call, [shared] * 6))
        assert {value for value, _ in results} == {42}
        assert os.getpid() not in {pid for _, pid in results}
        assert not list(tmp_path.iterdir())
        later = executors.share(pool, {"n": 7})  # forked already: through a file, as before
        assert not later.inherited and list(pool.map(_shared_value, [later])) == [{"n": 7}]
    finally:
        pool.close()
    assert shared.key not in executors._loaded  # (this process lets go of it with the pool)
    with pytest.raises(RuntimeError, match="inherited"):
        pickle.loads(pickle.dumps(shared)).get()  # a process that did not inherit it says so


def _sized(item: bytes) -> bytes:
    return item[::-1] + bytes([len(item) % 251]) * 3_000_000  # (a result much larger than a pipe)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_the_pools_pipes_carry_large_tasks_and_results_read_whole(monkeypatch: pytest.MonkeyPatch, start: str) -> None:
    # Read 64 kB at a time, each piece copied again into a growing buffer, the 150 MB of results of 40 MB of
    # web text cost the main process ~0.065 s; now each message is read straight into one buffer of its size,
    # from a 1 MB pipe (Linux), in the main process (results) and in forked workers (tasks; a spawned worker
    # gets a plain Connection).
    monkeypatch.setattr(executors, "start_method", lambda: start)
    pool = executors.ProcessExecutor(2, int)
    try:
        for queue in (pool.pool._call_queue, pool.pool._result_queue):  # type: ignore[attr-defined]
            assert type(queue._reader) is executors._WholeReads
            if sys.platform.startswith("linux"):
                import fcntl

                assert fcntl.fcntl(queue._writer.fileno(), 1032) >= 1 << 20  # F_GETPIPE_SZ
        items = [os.urandom(n) for n in (0, 5, 70_000, 2_500_000, 1 << 20)]
        assert list(pool.map(_sized, items)) == [_sized(item) for item in items]
    finally:
        pool.close()


def test_a_whole_read_gets_a_message_written_in_pieces_and_tells_a_closed_pipe() -> None:
    import multiprocessing.connection
    import struct

    reader, writer = multiprocessing.connection.Pipe(duplex=False)
    reader.__class__ = executors._WholeReads
    message = os.urandom(300_000)
    data = struct.pack("!i", len(message)) + message

    def write_slowly() -> None:
        for at in range(0, len(data), 70_001):
            os.write(writer.fileno(), data[at : at + 70_001])
            time.sleep(0.001)

    thread = threading.Thread(target=write_slowly)
    thread.start()
    assert reader.recv_bytes() == message
    thread.join()
    writer.send({"a": [1, 2]})
    assert reader.recv() == {"a": [1, 2]}
    os.write(writer.fileno(), struct.pack("!i", 10) + b"12345")  # a message cut short
    writer.close()
    with pytest.raises(OSError, match="end of file during message"):
        reader.recv_bytes()
    with pytest.raises(EOFError):
        reader.recv_bytes()


def _put_results(results: Any, put: Any) -> None:
    from concurrent.futures.process import _ResultItem

    results.put(_ResultItem(1, result=b"a" * 3_000_000))  # (larger than the pipe: nothing reads it yet)
    put.set()
    results.put(_ResultItem(2, result=b"b" * 3_000_000))  # (once the first is written)
    results.put(_ResultItem(3, exception=ValueError("three")))  # (written once the results before it are)
    results.put(os.getpid())  # (as a worker's last message: it exits after it)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")
def test_a_workers_results_are_written_by_its_thread_while_it_goes_on_in_order() -> None:
    # A result (~2 MB) larger than the pipe: the worker waited in its write until the main process's pool thread
    # read it, and that thread waited for the GIL the main process's own task held (0.06-0.07 s of the stream of
    # 40 MB at --workers 2). Now a thread of the worker writes it, and the worker goes on; in order, nothing lost.
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    results.__class__ = executors._BackgroundPuts
    put = context.Event()
    worker = context.Process(target=_put_results, args=(results, put))
    worker.start()
    try:
        assert put.wait(60)  # (a plain queue's first put waits for a reader forever)
        first, second, third = results.get(), results.get(), results.get()
        assert (first.work_id, first.result) == (1, b"a" * 3_000_000)
        assert (second.work_id, second.result) == (2, b"b" * 3_000_000)
        assert third.work_id == 3 and str(third.exception) == "three"
        assert results.get() == worker.pid
    finally:
        worker.join(60)
        if worker.is_alive():  # (stuck in its write)
            worker.kill()
    assert worker.exitcode == 0
    pool = executors.ProcessExecutor(1, int)
    try:  # (a fork pool's workers inherit the class)
        assert type(pool.pool._result_queue) is executors._BackgroundPuts  # type: ignore[attr-defined]
        assert list(pool.map(_sized, [b"xy"] * 4)) == [_sized(b"xy")] * 4
    finally:
        pool.close()


class _HerePool(executors.ProcessExecutor):
    """The runner's path for local worker processes, run in this process: each task gets a pickled copy of its
    item and gives back a pickled copy of its result, as between processes; ``maps`` counts the round trips."""

    forks = False
    helps = False  # (``meanwhile``: the work is done at once)

    def __init__(self) -> None:  # (no pool)
        self.maps = 0

    def share(self, obj: Any) -> executors.Shared:
        return executors.Shared(value=obj)

    def map(self, fn: Any, items: Iterable[Any]) -> Any:
        self.maps += 1
        for item in items:
            yield pickle.loads(pickle.dumps(fn(pickle.loads(pickle.dumps(item)))))

    def close(self) -> None:
        pass


class NoisyNormalizeStage(Stage):
    """Says it only changes the text (``text_only``), but notes in the metadata what it did to some documents."""

    name = "noisy_normalize"
    text_only = True

    def process(self, doc: Document) -> None:
        doc.text = doc.text.replace("  ", " ")
        if "Two" in doc.text:
            doc.meta["noisy"] = True


def _ahead_inputs(tmp_path: Path) -> Path:
    # Seed articles; one repeats a line of another (dedup cuts it: normalize runs on what is left), one
    # is a copy (dedup rejects it), others have runs of spaces, trailing spaces and tabs (normalize changes them).
    first, second = seed_text("000"), seed_text("001")
    paragraph = max(first.split("\n"), key=len)
    texts = [
        first,
        second.replace(". ", ".  ", 3) + "  \n",
        "A short page of its own with a\ttab and  two spaces.\n\n" + paragraph + "\n\nAnd a last line of its own here.",
        first,
        seed_text("002"),
        "Two  words, then  more words in a sentence of this page.",
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    return src


def _run_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, src: Path, config: str, pool: _HerePool | None
) -> tuple[Path, dict[str, Any]]:
    from pipeline import runner

    if pool is not None:
        monkeypatch.setattr(runner, "make_executor", lambda *args, **kwargs: pool)
    (tmp_path / "c.yaml").write_text(config)
    out = tmp_path / name
    args = ["run", str(src), "-c", str(tmp_path / "c.yaml"), "-o", str(out), "-q", "--workers", "2" if pool else "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    for stage in report["stages"]:
        stage.pop("seconds")
    return out, report


def _same_runs(one: Path, other: Path) -> None:
    for name in ("in.jsonl", "removed.jsonl", "rejected.jsonl"):
        assert (one / name).read_bytes() == (other / name).read_bytes(), name


def _count_ahead(monkeypatch: pytest.MonkeyPatch, position: int) -> tuple[list[str], list[str]]:
    """The ids of the documents given what was made ahead for them, and of those the stage at ``position`` ran
    on in this process."""
    from pipeline import runner

    kept_ahead: list[str] = []
    run_here: list[str] = []
    keep_ahead, run_positions = runner._keep_ahead, runner._run_positions

    def counting_keep(stages: Any, after: Any, batch: Any, doc: Document, made: Any) -> None:
        kept_ahead.append(doc.id)
        keep_ahead(stages, after, batch, doc, made)

    def counting_run(stages: Any, positions: list[int], batch: Batch, ahead: Any = None) -> Batch:
        if positions == [position]:
            run_here.extend(doc.id for doc in batch.docs)
        return run_positions(stages, positions, batch, ahead)

    monkeypatch.setattr(runner, "_keep_ahead", counting_keep)
    monkeypatch.setattr(runner, "_run_positions", counting_run)
    return kept_ahead, run_here


def test_local_workers_normalize_ahead_of_dedup_in_one_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local workers run the stages before dedup and normalize a copy of each document in the same task; this
    # process keeps that text where dedup changed nothing and normalizes the others itself. The texts were
    # sent out and back twice (three maps with the first pass's); the results, records and counts are the
    # serial run's.
    src = _ahead_inputs(tmp_path)
    config = "output:\n  metadata_field: meta\n"
    serial, serial_report = _run_here(tmp_path, monkeypatch, "serial", src, config, None)
    kept_ahead, normalized_here = _count_ahead(monkeypatch, 5)
    pool = _HerePool()
    here, report = _run_here(tmp_path, monkeypatch, "here", src, config, pool)
    assert pool.maps == 2  # the first pass, and the stream's one round trip
    _same_runs(serial, here)
    assert report["stages"] == serial_report["stages"]
    assert normalized_here == ["2"]  # dedup cut its line: normalized here
    assert sorted(kept_ahead) == ["0", "1", "4", "5"]  # ("3", a copy, was rejected)
    dedup, normalize = report["stages"][4], report["stages"][5]
    assert dedup["documents_rejected"] == 1 and dedup["counters"]["exact-paragraph"] >= 1
    assert normalize["counters"]["doc-changed"] >= 3


def test_a_stage_after_dedup_that_changes_more_than_the_text_runs_on_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run ahead, NoisyNormalizeStage changed the metadata of a document: that result is not used, the stage
    # runs on the document itself, here. A stage that is not text-only is not run ahead at all.
    src = _ahead_inputs(tmp_path)
    noisy = (
        "output:\n  metadata_field: meta\nstages:\n  - stage: encoding\n  - stage: dedup\n"
        "  - stage: test_runner:NoisyNormalizeStage\n"
    )
    serial, serial_report = _run_here(tmp_path, monkeypatch, "serial", src, noisy, None)
    kept_ahead, normalized_here = _count_ahead(monkeypatch, 2)
    pool = _HerePool()
    here, report = _run_here(tmp_path, monkeypatch, "here", src, noisy, pool)
    assert pool.maps == 1  # (no first pass)
    _same_runs(serial, here)
    assert report["stages"] == serial_report["stages"]
    assert "5" in normalized_here and "5" not in kept_ahead and "0" in kept_ahead
    assert json.loads((here / "in.jsonl").read_text().splitlines()[-1])["meta"]["noisy"] is True
    touch = "stages:\n  - stage: encoding\n  - stage: dedup\n  - stage: test_runner:TouchStage\n"
    serial, serial_report = _run_here(tmp_path, monkeypatch, "serial-touch", src, touch, None)
    pool = _HerePool()
    here, report = _run_here(tmp_path, monkeypatch, "here-touch", src, touch, pool)
    assert pool.maps == 2  # out and back for encoding, then for TouchStage
    _same_runs(serial, here)
    assert report["stages"] == serial_report["stages"]


def test_offsets_are_not_followed_after_the_last_stage_that_can_remove_something() -> None:
    # Normalize records no removal: after dedup's change of a text, nothing reads the offsets' map.
    from pipeline.config import StageConfig
    from pipeline.runner import build_stages
    from pipeline.stages import stage_class

    def specs(names: list[str]) -> list[StageConfig]:
        return [StageConfig(name, stage_class(name).Options()) for name in names]

    names = ["encoding", "boilerplate", "language", "dedup", "normalize"]
    stages = build_stages(specs(names))
    assert [stage.offsets_followed for stage in stages] == [True, True, True, False, False]
    stages = build_stages(specs([*names, "test_runner:TouchStage"]))
    assert [stage.offsets_followed for stage in stages] == [True, True, True, True, True, False]


class StoppedInKernelStage(Stage):
    """What a stop signal does to a stage whose numba kernel calls back into Python (numba unpickling a
    constant): the handler's exception comes out of the kernel's call as SystemError caused by it."""

    name = "stopped"

    def process(self, doc: Document) -> None:
        if doc.id == "1":
            raise SystemError("CPUDispatcher(<function k>) returned a result with an exception set") from (
                KeyboardInterrupt()
            )


def test_a_stop_signal_wrapped_by_a_kernels_call_stops_the_run_and_quarantines_nothing() -> None:
    # (it was quarantined as "stage error: SystemError", and the run went on to exit 3 instead of 143)
    docs = [Document(str(i), f"text {i}", "in.jsonl") for i in range(3)]
    with pytest.raises(KeyboardInterrupt):
        apply_stage(StoppedInKernelStage(), 0, Batch(docs))
    assert not any(doc.rejected for doc in docs)


def test_the_audit_files_are_committed_as_written_when_the_run_wrote_all_their_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """removed.jsonl and rejected.jsonl are the concatenation of the audit parts, in input-name order. A run that
    wrote every part, in that order, commits the files it wrote beside them instead of decompressing the parts
    again, and a run whose new parts come after the recorded ones appends what it wrote; other runs (an input
    named before the recorded ones) assemble them from the parts as before, and a run removes what a killed run
    left of the files it was writing."""
    import io

    from conftest import CORPORA

    from pipeline import runner as runner_module
    from pipeline.config import default_config

    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines(keepends=True)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "b.jsonl").write_bytes(b"".join(lines[:40]))
    (src / "c.jsonl").write_bytes(b"".join(lines[40:80]))
    copied: list[str] = []
    copy = runner_module.copy_audit_part

    def noting(path: Path, into: Any) -> None:
        copied.append(path.name)
        copy(path, into)

    monkeypatch.setattr(runner_module, "copy_audit_part", noting)

    def from_parts(kind: str) -> bytes:
        into = io.BytesIO()
        for part in sorted((out / ".cleancorpus" / "audit").glob(f"*.{kind}.jsonl")):
            copy(part, into)
        return into.getvalue()

    runner_module.run(default_config(), [str(src)], out)
    assert copied == []
    for kind in ("removed", "rejected"):
        assert (out / f"{kind}.jsonl").read_bytes() == from_parts(kind) != b""
    assert sorted(p.name for p in out.glob("*.partial")) == []
    (src / "d.jsonl").write_bytes(b"".join(lines[120:160]))  # parts after the recorded ones: appended
    before = {kind: (out / f"{kind}.jsonl").read_bytes() for kind in ("removed", "rejected")}
    runner_module.run(default_config(), [str(src)], out)
    assert copied == []
    for kind in ("removed", "rejected"):
        assert (out / f"{kind}.jsonl").read_bytes() == from_parts(kind) != before[kind]
    assert sorted(p.name for p in out.glob("*.partial")) == []
    (src / "a.jsonl").write_bytes(b"".join(lines[80:120]))  # parts before the recorded ones: assembled anew
    runner_module.run(default_config(), [str(src)], out)
    assert sorted(copied) == sorted(f"{n}.jsonl.{k}.jsonl" for n in "abcd" for k in ("removed", "rejected"))
    for kind in ("removed", "rejected"):
        assert (out / f"{kind}.jsonl").read_bytes() == from_parts(kind)
    left = out / f"removed.jsonl{runner_module.STREAM_PARTIAL}"
    left.write_bytes(b"what a killed run left")
    runner_module.run(default_config(), [str(src)], out)  # (nothing to do)
    assert not left.exists() and sorted(p.name for p in out.glob("*.partial")) == []


def test_a_cold_kernel_cache_compiles_the_later_stages_in_a_second_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run (no marker: numba's cache is cold) forks a process that warms the stages after the first
    pass up, the last first, and leaves the marker; a run that finds the marker, or runs with
    CLEANCORPUS_COMPILE_AHEAD=0, forks nothing."""
    from pipeline import runner
    from pipeline.config import default_config

    marker = tmp_path / "__pycache__" / "kernels_compiled-test"
    monkeypatch.setattr(runner, "_kernels_marker", lambda: marker)
    warmed: list[str] = []
    real_warm_up = runner._warm_up

    def warm_up(stages: list[Stage | None], first_pass: bool = False) -> None:
        warmed.extend(stage.name for stage in stages if stage is not None)
        (tmp_path / "warmed").write_text(" ".join(warmed))  # (from the forked process: its list is its own)
        real_warm_up(stages, first_pass)

    monkeypatch.setattr(runner, "_warm_up", warm_up)
    specs = default_config().enabled_stages()
    stages = runner.build_stages(specs)
    monkeypatch.setenv(runner.COMPILE_AHEAD_ENV, "0")
    assert runner._compile_ahead(specs, stages) is None
    monkeypatch.delenv(runner.COMPILE_AHEAD_ENV)
    pid = runner._compile_ahead(specs, stages)
    assert pid is not None
    runner._compiled_ahead(pid)
    assert marker.exists()
    assert (tmp_path / "warmed").read_text() == "normalize dedup language"
    assert warmed == []  # (nothing warmed up in this process)
    assert runner._compile_ahead(specs, stages) is None  # the marker is there now


def test_the_kernels_marker_changes_with_the_stage_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import runner

    before = runner._kernels_marker()
    stat = Path.stat

    def newer(path: Path, *args: Any, **kwargs: Any) -> Any:
        st = stat(path, *args, **kwargs)
        if path.name == "dedup_kernels.py":
            return os.stat_result((*st[:8], st.st_mtime + 1, st.st_ctime))
        return st

    monkeypatch.setattr(Path, "stat", newer)
    assert runner._kernels_marker() != before


def test_a_runs_workers_exit_beside_its_tail_and_are_waited_for_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once the stream is done its workers are let go without waiting for them (each one's exit took ~0.03 s of the
    # tail at 2 workers): the audit assembly goes on meanwhile; the run waits for them before it returns, so no
    # thread of the pool is left (a later run in this process forks its workers, as with one thread).
    import pipeline.runner as runner_module

    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    events: list[str] = []
    close_soon, assemble = executors.ProcessExecutor.close_soon, runner_module._assemble_audit

    def noting_close(self: executors.ProcessExecutor) -> Any:
        wait = close_soon(self)
        events.append("let go")
        return lambda: events.append("waited") or wait()

    def noting_assembly(*args: Any, **kwargs: Any) -> list[str]:
        events.append("assembly")
        return assemble(*args, **kwargs)

    monkeypatch.setattr(executors.ProcessExecutor, "close_soon", noting_close)
    monkeypatch.setattr(runner_module, "_assemble_audit", noting_assembly)
    records = _run(tmp_path, 2)
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    assert events == ["let go", "assembly", "waited"]  # (the first pass's pool was closed as before)
    assert threading.active_count() == 1 and not __import__("multiprocessing").active_children()


def test_the_audit_files_are_assembled_while_report_html_is_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The assembly (mostly the audit files' fsync) runs in a thread of its own while this one makes report.html's
    # sections from this run's audit parts; its warnings reach report.json, and its failure fails the run as before.
    import pipeline.runner as runner_module
    from pipeline import report_html

    preparing = threading.Event()
    seen: list[tuple[str, bool]] = []
    assemble, prepare = runner_module._assemble_audit, report_html.prepare_html

    def noting_assembly(*args: Any, **kwargs: Any) -> list[str]:
        kwargs["rejected_done"].set()  # (rejected.jsonl, which a txt output's samples read, is waited for)
        seen.append((threading.current_thread().name, preparing.wait(10)))  # (sequential: never set meanwhile)
        return [*assemble(*args, **kwargs), "a warning of the assembly"]

    def noting_prepare(*args: Any, **kwargs: Any) -> Any:
        preparing.set()
        return prepare(*args, **kwargs)

    monkeypatch.setattr(runner_module, "_assemble_audit", noting_assembly)
    monkeypatch.setattr(report_html, "prepare_html", noting_prepare)
    records = _run(tmp_path, 1)
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    assert seen == [("cleancorpus-audit", True)]
    report = json.loads((tmp_path / "w1" / "report.json").read_text())
    assert report["warnings"] == ["a warning of the assembly"]
    assert (tmp_path / "w1" / "removed.jsonl").exists() and (tmp_path / "w1" / "report.html").exists()


def test_the_first_pass_workers_inherit_their_stages_at_the_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 2 forked workers the first pass's stages are shared before its pool forks (it forks before the warm-up
    # thread starts): no file of them is made for the workers to load, as for the stream's pool.
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    made: list[int] = []
    memory_file = executors._memory_file
    monkeypatch.setattr(executors, "_memory_file", lambda data: made.append(len(data)) or memory_file(data))
    records = _run(tmp_path, 2, "  - stage: test_runner:LazyTableStage\n")  # (a later stage: a second pool)
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    assert records[0]["meta"]["parts_from_main"] is False  # type: ignore[index]
    assert made == []


def test_the_first_pass_workers_exit_while_its_last_parts_are_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first pass's pool (replaced by the stream's, forked after the warm-up) is let go once its last result is
    # in: its workers exit while this process merges the last parts, and are waited for before the next fork.
    import pipeline.runner as runner_module

    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    events: list[str] = []
    close_soon, first_pass = executors.ProcessExecutor.close_soon, runner_module._first_pass

    def noting_close(self: executors.ProcessExecutor) -> Any:
        events.append("let go")
        wait = close_soon(self)
        return lambda: events.append("waited") or wait()

    def noting_first_pass(*args: Any, **kwargs: Any) -> Any:
        unchanged = first_pass(*args, **kwargs)
        events.append("first pass merged")
        return unchanged

    monkeypatch.setattr(executors.ProcessExecutor, "close_soon", noting_close)
    monkeypatch.setattr(runner_module, "_first_pass", noting_first_pass)
    records = _run(tmp_path, 2, "  - stage: test_runner:LazyTableStage\n")  # (a later stage: a second pool)
    assert [r["text"] for r in records] == ["One.", "Unique\nTwo.", "Three.", "Other\nFour."]
    # the first pool's, before the merge ended and waited for before the stream's fork; the stream's at the end
    assert events == ["let go", "first pass merged", "waited", "let go", "waited"]
    assert threading.active_count() == 1


def test_the_first_pass_pool_takes_no_task_back_while_the_warm_up_thread_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    busy: list[object] = []
    close_soon = executors.ProcessExecutor.close_soon

    def noting_close(self: executors.ProcessExecutor) -> Any:
        busy.append(self.busy)
        return close_soon(self)

    monkeypatch.setattr(executors.ProcessExecutor, "close_soon", noting_close)
    _run(tmp_path, 2, "  - stage: test_runner:LazyTableStage\n")  # (a later stage: a warm-up thread, a second pool)
    first, stream = busy
    assert getattr(first, "__self__", None) is not None and first.__self__.name == "cleancorpus-warm-up"  # type: ignore[union-attr]
    assert stream is None


def _note_pool_forks(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> list[int]:
    """Forked workers, and "pool N forked" noted in ``events`` at each pool's first task; the pools seen (by id: clear
    it with ``events`` between runs)."""
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    pools: list[int] = []
    submit = executors.ProcessExecutor._submit

    def noting_submit(self: executors.ProcessExecutor, *args: Any) -> Any:
        if id(self) not in pools:
            pools.append(id(self))
            events.append(f"pool {len(pools)} forked")
        return submit(self, *args)

    monkeypatch.setattr(executors.ProcessExecutor, "_submit", noting_submit)
    return pools


def test_what_the_first_pass_keeps_of_its_last_file_is_saved_once_the_streams_worker_has_its_first_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last file's packed parts were saved (~0.01 s on 40 MB) after the first pass's last result, on the run's serial
    # path before the stream's worker forked; now this process saves them while that worker runs its first tasks
    # (ProcessExecutor.meanwhile), before any stream result is used. A later run takes the same parts.
    from pipeline.state import StateStore

    events: list[str] = []
    _note_pool_forks(monkeypatch, events)
    save = StateStore.save_first_pass

    def noting_save(self: StateStore, rows: Any) -> None:
        rows = list(rows)
        events.append(f"saved {len(rows)}")
        save(self, rows)

    monkeypatch.setattr(StateStore, "save_first_pass", noting_save)
    src = tmp_path / "in.jsonl"
    lines = ["Home | News | Contact", "Copyright 2024 Example. All rights reserved."]
    texts = [f"{lines[0]}\nArticle number {i} says something of its own.\n{lines[1]}" for i in range(12)]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: boilerplate\n  - stage: test_runner:LazyTableStage\n")
    kept = {}
    for workers in (2, 1):
        out = tmp_path / f"w{workers}"
        args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", str(workers)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        if workers == 2:
            assert events == ["pool 1 forked", "pool 2 forked", "saved 1"]
        store = StateStore(out / ".cleancorpus")
        try:
            kept[workers] = store.db.execute("SELECT stage, source, payload FROM first_pass").fetchall()
        finally:
            store.close()
    assert len(kept[2]) == 1 and kept[2] == kept[1]
    assert (tmp_path / "w2" / "in.jsonl").read_bytes() == (tmp_path / "w1" / "in.jsonl").read_bytes()


def test_a_cross_document_stage_is_told_the_bytes_of_input_once_the_streams_workers_have_forked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dedup sizes its index for the input (expect_input: 16 MB of its tables written for 40 MB). Sized before the
    # stream's worker forked, those pages were shared with it and copied at this process's first write to each; now
    # they are sized once the worker has its first tasks (ProcessExecutor.meanwhile), before any document reaches
    # dedup. A per-document stage is still told before (its workers are copies of it). Same outputs as one worker.
    from conftest import CORPORA

    from pipeline.stages.dedup import DedupStage
    from pipeline.stages.normalize import NormalizeStage

    events: list[str] = []
    pools = _note_pool_forks(monkeypatch, events)
    expect, process = DedupStage.expect_input, DedupStage.process

    def noting_expect(self: DedupStage, size: int) -> None:
        events.append(f"dedup told {size}")
        expect(self, size)

    def noting_process(self: DedupStage, doc: Document) -> None:
        if doc.source != "warm-up" and "dedup processes" not in events:  # (the warm-up's copies process too)
            events.append("dedup processes")
        process(self, doc)

    monkeypatch.setattr(DedupStage, "expect_input", noting_expect)
    monkeypatch.setattr(DedupStage, "process", noting_process)
    monkeypatch.setattr(NormalizeStage, "expect_input", lambda self, size: events.append(f"normalize told {size}"))
    src = tmp_path / "in.jsonl"
    pages = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines(keepends=True)[:40]
    src.write_bytes(b"".join(pages))
    size = src.stat().st_size
    config = tmp_path / "c.yaml"
    # (boilerplate's first pass has a pool of its own: the stream's worker forks at the stream's first task)
    config.write_text("stages:\n  - stage: boilerplate\n  - stage: normalize\n  - stage: dedup\n")
    for workers in (2, 1):
        events.clear()
        pools.clear()
        out = tmp_path / f"w{workers}"
        args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", str(workers)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        if workers == 2:
            told = [f"normalize told {size}", "pool 2 forked", f"dedup told {size}", "dedup processes"]
            assert events == ["pool 1 forked", *told]
        else:
            assert events == [f"normalize told {size}", f"dedup told {size}", "dedup processes"]
    for name in ("in.jsonl", "removed.jsonl", "rejected.jsonl"):
        assert (tmp_path / "w2" / name).read_bytes() == (tmp_path / "w1" / name).read_bytes()


def test_the_stages_are_told_the_bytes_of_input_before_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.stages.dedup import DedupStage

    told: list[int] = []
    monkeypatch.setattr(DedupStage, "expect_input", lambda self, size: told.append(size))
    src = _ahead_inputs(tmp_path)
    _run_here(tmp_path, monkeypatch, "out", src, "stages:\n  - stage: dedup\n", None)
    assert told == [src.stat().st_size]
