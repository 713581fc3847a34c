"""Distributed dedup on Ray gives the local executor's results: outputs, audit files, dedup counters
and the state rows a later (incremental) run loads. One local Ray (2 CPUs) for the whole module."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline import ray_dedup
from pipeline.cli import cli
from pipeline.config import RunConfig, default_config, load_config_data
from pipeline.runner import run
from pipeline.state import StateStore

ray = pytest.importorskip("ray")

SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"
ENGLISH = SHARED / "corpora" / "lingua-sentences" / "en.txt"
# Short lines (exact keys only), each shared by one pair of otherwise unrelated documents.
PHRASES = [
    "Parking is free behind the town hall.",
    "Tickets are sold at the door only.",
    "Bring a friend along next time, please.",
    "Our office is closed on public holidays.",
    "Children under five travel for free.",
    "Please return the keys to the front desk.",
]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    if not CC.exists():
        pytest.skip("shared CC corpus not found")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024 * 1024)
    yield
    ray.shutdown()


def _cc(n: int) -> list[dict[str, str]]:
    with CC.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def _paragraphs(record: dict[str, str]) -> list[str]:
    return [p for p in record["text"].split("\n") if len(p.split()) >= 15]


def _with_duplicates(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """CC documents plus: a document repeated whole, a near-duplicate document, copied and slightly
    edited paragraphs, a document mostly made of other documents' paragraphs (rejected, so that a
    later copy of its one new paragraph is kept), and a document repeating its own paragraph (kept once)."""
    r = records
    long_paras = [p for rec in r for p in _paragraphs(rec)]
    longest = max(r[:20], key=lambda rec: len(rec["text"]))
    near = longest["text"].split(" ")
    near[len(near) // 2] = "changed"
    edited = long_paras[3].split(" ")
    edited[2] = "altered"
    again = "Written for this test, a line this document says again and again."
    novel = "This paragraph is only in the injected documents and nowhere in the crawl sample at all."
    extra = [
        dict(r[3], id="whole-copy"),
        dict(longest, id="near-copy", text=" ".join(near)),
        {"id": "copied-paragraphs", "text": f"A fresh opening line.\n{long_paras[0]}\n{' '.join(edited)}"},
        {"id": "mostly-copied", "text": "\n".join([*long_paras[5:9], novel])},
        {"id": "repeats-novel", "text": f"{novel}\nAnd something else that was written for this test only."},
        {"id": "self-repeat", "text": "\n".join([again] * 6)},
    ]
    return r[:20] + extra[:3] + r[20:] + extra[3:]


def _pairs() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Pairs of documents of real, otherwise unique sentences that share one short line each (one
    exact key: the pair is joined in one key partition only, the other partitions never see it)."""
    sentences = ENGLISH.read_text(encoding="utf-8").splitlines()[100:]
    firsts, seconds = [], []
    for k, phrase in enumerate(PHRASES):
        for side, out in (("a", firsts), ("b", seconds)):
            body = " ".join(sentences[8 * k + (4 if side == "b" else 0) :][:4])
            out.append({"id": f"pair-{k}-{side}", "text": f"{body}\n{phrase}"})
    return firsts, seconds


def _short_lines() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Documents of real, otherwise unique sentences holding short lines: "Notes from the reading room" in six
    (common from the fifth on: removed there), "Tickets at the door." in two (kept in both)."""
    sentences = ENGLISH.read_text(encoding="utf-8").splitlines()[200:]
    docs = []
    for k in range(6):
        body = " ".join(sentences[4 * k : 4 * k + 4])
        tail = "\nTickets at the door." if k in (1, 4) else ""
        docs.append({"id": f"short-{k}", "text": f"Notes from the reading room\n{body}{tail}"})
    return docs[:3], docs[3:]


def _write(folder: Path, name: str, records: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _run(src: Path, out: Path, executor: str, config: RunConfig | None = None) -> dict[str, Any]:
    return run(config or default_config(), [str(src)], out, workers=2, executor=executor).report


def _dedup_counters(report: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [s for s in report["stages"] if s["stage"] == "dedup"]
    return {k: v for k, v in stage.items() if k != "seconds"}


def _state_rows(out: Path, report: dict[str, Any]) -> list[tuple[str, bytes]]:
    position = [s["stage"] for s in report["stages"]].index("dedup")
    store = StateStore(out / ".cleancorpus")
    try:
        return list(store.stage_rows(f"{position}:dedup", set()))
    finally:
        store.close()


def _assert_same(local: Path, distributed: Path, reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
    names = sorted(p.name for p in local.glob("*.jsonl"))  # outputs (one per input file) and audit files
    assert len(names) >= 3 and sorted(p.name for p in distributed.glob("*.jsonl")) == names
    for name in names:
        assert (distributed / name).read_bytes() == (local / name).read_bytes(), name
    assert _dedup_counters(reports[1]) == _dedup_counters(reports[0])
    rows = _state_rows(local, reports[0])
    assert rows and _state_rows(distributed, reports[1]) == rows


def test_distributed_dedup_equals_local(tmp_path: Path) -> None:
    src = tmp_path / "in"
    records = _with_duplicates(_cc(60))
    firsts, seconds = _pairs()  # the second of each pair in the other batch
    _write(src, "docs.jsonl", records[:5] + firsts + records[5:] + seconds)
    local = _run(src, tmp_path / "local", "local")
    distributed = _run(src, tmp_path / "ray", "ray")
    _assert_same(tmp_path / "local", tmp_path / "ray", (local, distributed))
    # Every path ran: documents deduplicated alone, and components of several documents in group
    # tasks, one of them spanning both batches (the 66 documents make two); none in the driver.
    split = ray_dedup.last_split
    assert split.alone >= 3 and split.grouped >= 3 and split.driver == 0  # counts move with earlier stages
    assert split.components.size >= 2 and split.components.sum() == split.grouped == sum(split.tasks)
    assert len(split.tasks) == 2 and split.spanning >= 1 and split.with_state == 0  # two CPUs: two group tasks
    rejected = (tmp_path / "ray" / "rejected.jsonl").read_text(encoding="utf-8")
    for doc_id in ("whole-copy", "near-copy", "mostly-copied"):
        assert f'"id":"{doc_id}"' in rejected, doc_id
    assert '"id":"self-repeat"' not in rejected  # its own repeats removed, its first line kept
    removed_here = [json.loads(line) for line in (tmp_path / "ray" / "removed.jsonl").open(encoding="utf-8")]
    assert [r["duplicate_of"] for r in removed_here if r["id"] == "self-repeat"] == ["self-repeat"] * 5
    removed = [json.loads(line) for line in (tmp_path / "ray" / "removed.jsonl").open(encoding="utf-8")]
    for k, phrase in enumerate(PHRASES):  # found through a key of either partition
        assert [r["id"] for r in removed if r["text"] == phrase] == [f"pair-{k}-b"], phrase
    kept = (tmp_path / "ray" / "docs.jsonl").read_text(encoding="utf-8")
    assert '"id":"repeats-novel"' in kept and "only in the injected documents" in kept


def test_short_lines_are_decided_as_locally(tmp_path: Path) -> None:
    # Without the boilerplate stage (which removes a line of five documents first): a short line one
    # other document shares is kept, one common to many documents is removed from the fifth on.
    config = load_config_data({"stages": [{"stage": "encoding"}, {"stage": "dedup"}, {"stage": "normalize"}]})
    src = tmp_path / "in"
    early, late = _short_lines()
    records = _with_duplicates(_cc(40))
    _write(src, "docs.jsonl", records[:5] + early + records[5:] + late)
    reports = tuple(_run(src, tmp_path / executor, executor, config) for executor in ("local", "ray"))
    _assert_same(tmp_path / "local", tmp_path / "ray", reports)
    removed = [json.loads(line) for line in (tmp_path / "ray" / "removed.jsonl").open(encoding="utf-8")]
    assert [r["id"] for r in removed if r["text"] == "Notes from the reading room"] == ["short-4", "short-5"]
    kept = (tmp_path / "ray" / "docs.jsonl").read_text(encoding="utf-8")
    assert kept.count("Tickets at the door.") == 2


def test_one_cpu_one_key_partition_equals_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--executor ray --workers 1` (a one-CPU Ray): one key partition, whose task returns its one
    # part as a single object (num_returns=1); the reducer took that list for the pair and failed.
    monkeypatch.setattr(ray_dedup, "MAX_PARTITIONS", 1)
    config = load_config_data({"stages": [{"stage": "encoding"}, {"stage": "dedup"}, {"stage": "normalize"}]})
    src = tmp_path / "in"
    firsts, seconds = _pairs()
    _write(src, "docs.jsonl", firsts + _with_duplicates(_cc(30)) + seconds)
    reports = tuple(_run(src, tmp_path / executor, executor, config) for executor in ("local", "ray"))
    _assert_same(tmp_path / "local", tmp_path / "ray", reports)
    assert len(ray_dedup.last_split.tasks) == 1


@pytest.mark.parametrize(
    "options",
    [
        # signatures verified by their estimate: the compiled pass met read-only sketch arrays
        # from Ray's object store (every document was quarantined)
        {"verify": "estimate", "documents": False},
        # each document's own index: the local counters add up clusters of equal labels
        {"scope": "document"},
    ],
    ids=["estimate", "scope-document"],
)
def test_other_dedup_options_equal_local(tmp_path: Path, options: dict[str, Any]) -> None:
    config = load_config_data(
        {"stages": [{"stage": "encoding"}, {"stage": "dedup", **options}, {"stage": "normalize"}]}
    )
    src = tmp_path / "in"
    records = _with_duplicates(_cc(40))
    firsts, seconds = _pairs()
    _write(src, "docs.jsonl", firsts + records + seconds)
    reports = tuple(_run(src, tmp_path / executor, executor, config) for executor in ("local", "ray"))
    local = tmp_path / "local"
    assert '"id":"self-repeat"' not in (local / "rejected.jsonl").read_text(encoding="utf-8")
    if options.get("scope") != "document":
        _assert_same(local, tmp_path / "ray", reports)
        assert ray_dedup.last_split.grouped >= 3
        return
    names = sorted(p.name for p in local.glob("*.jsonl"))  # no state rows: nothing is learnt across documents
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (local / name).read_bytes(), name
    assert _dedup_counters(reports[1]) == _dedup_counters(reports[0])


def test_incremental_run_against_the_saved_index_equals_local(tmp_path: Path) -> None:
    records = _with_duplicates(_cc(50))
    first, second = records[:30], records[30:] + [dict(records[12], id="copy-of-first-run")]
    outs = {"local": tmp_path / "local", "ray": tmp_path / "ray"}
    reports = {}
    for executor, out in outs.items():
        src = tmp_path / f"in-{executor}"
        _write(src, "a.jsonl", first)
        _run(src, out, executor)
        _write(src, "b.jsonl", second)  # the second run reads b.jsonl only, against a.jsonl's index
        reports[executor] = _run(src, out, executor)
        assert reports[executor]["inputs"]["unchanged_skipped"] == 1
    _assert_same(outs["local"], outs["ray"], (reports["local"], reports["ray"]))
    assert ray_dedup.last_split.with_state >= 1  # a group task deduplicated against a copy of the saved index
    assert '"id":"copy-of-first-run"' in (outs["ray"] / "rejected.jsonl").read_text(encoding="utf-8")


def _code(batch_no: int, position: int) -> int:
    return batch_no << 32 | position


def test_a_quiet_run_shows_rays_errors_but_not_its_start_up_notices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This module's Ray is running, so the run starts none: ray.init is replaced by what matters of it here.
    # Joining a cluster it sets Ray's logger back to INFO; starting a local Ray it warns that token
    # authentication is enabled (on Ray's logger, on stderr), which a cron run must not print.
    ray_log = logging.getLogger("ray")
    # What Ray's logger shows, through a handler of its own (Ray's handlers write to the stderr of when they
    # were made, not CliRunner's, and which handlers there are depends on how Ray and pytest set up logging):
    # the quiet run filters every handler the logger has.
    shown = io.StringIO()
    ours = logging.StreamHandler(shown)
    ray_log.addHandler(ours)
    saved = ray_log.level, [list(h.filters) for h in ray_log.handlers]
    started: list[bool] = []

    def init(**kwargs: Any) -> None:
        started.append(True)
        ray_log.setLevel(logging.INFO)
        logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
            "Token authentication is enabled for this Ray cluster."
        )
        logging.getLogger("ray._private.worker").error("a real error")

    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Some text here.", encoding="utf-8")
    try:
        args = ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", "--executor", "ray"]
        result = CliRunner().invoke(cli, args)
    finally:
        ray_log.setLevel(saved[0])
        for handler, filters in zip(ray_log.handlers, saved[1], strict=True):
            handler.filters[:] = filters
        ray_log.removeHandler(ours)
    assert result.exit_code == 0 and result.output == "", result.output
    assert started == [True]
    assert "a real error" in shown.getvalue() and "Token authentication" not in shown.getvalue()


def test_components_join_documents_through_shared_keys_across_partitions_and_batches() -> None:
    """The reducers' forests, merged, give the components; documents holding a saved key are routed
    even when alone, and a group holding one of them is given the saved index."""
    holders = {  # document code -> its keys
        _code(0, 0): [10, 11],
        _code(0, 1): [11, 13],  # joined to (0, 0) by 11 (odd keys: partition 1)
        _code(0, 2): [20],  # shares nothing: deduplicated alone
        _code(1, 0): [13, 30],  # joined to (0, 1) by 13: the component spans both batches
        _code(1, 1): [40],  # holds a key of the saved index only
        _code(1, 2): [50, 52],
        _code(1, 3): [52],  # joined to (1, 2) by 52 (partition 0)
    }
    keys = np.array([k for ks in holders.values() for k in ks], dtype=np.uint64)
    codes = np.array([c for c, ks in holders.items() for _ in ks], dtype=np.int64)
    parts = [(keys[keys % 2 == p], codes[keys % 2 == p]) for p in range(2)]
    known = np.array([40, 99], dtype=np.uint64)
    found = [ray_dedup.shared_links(known, part) for part in parts]
    plan = ray_dedup.plan_groups(found, groups=2)
    assert sorted(plan.sizes.tolist()) == [1, 2, 3] and plan.spanning == 1
    assert plan.tasks == [3, 3] and plan.with_state.count(True) == 1
    routed = {_code(b, i): g for b, positions in plan.routes.items() for i, g in positions.items()}
    assert _code(0, 2) not in routed and len(routed) == 6
    assert routed[_code(0, 0)] == routed[_code(0, 1)] == routed[_code(1, 0)]  # one component, one task
    assert routed[_code(1, 2)] == routed[_code(1, 3)] != routed[_code(0, 0)]  # the lighter group
    assert plan.with_state[routed[_code(1, 1)]]


def test_spanning_forest_matches_a_graph_search() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 300, 200), rng.integers(0, 300, 200)
    nodes, roots = ray_dedup.spanning_forest(a, b)
    neighbours: dict[int, set[int]] = {}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        neighbours.setdefault(x, set()).add(y)
        neighbours.setdefault(y, set()).add(x)
    for node, root in zip(nodes.tolist(), roots.tolist(), strict=True):
        seen, todo = {node}, [node]
        while todo:
            for other in neighbours[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        assert root == min(seen)
