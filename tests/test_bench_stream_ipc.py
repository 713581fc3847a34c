"""benchmarks/bench_stream_ipc.py keeps a 2-worker run's stream results as the workers pickled them."""

from __future__ import annotations

import json
import sys
from multiprocessing.reduction import ForkingPickler

from conftest import REPO

sys.path.insert(0, str(REPO))  # (plain `pytest`, as CI runs it, puts tests/ on the path, not the repo)
from benchmarks.bench_stream_ipc import capture, parts  # noqa: E402
from pipeline.stages import dedup  # noqa: E402


def test_results_are_kept_as_the_workers_pickled_them_one_sketch_pack_a_batch(tmp_path, monkeypatch):
    lines = [
        {
            "id": str(i),
            "url": f"https://site{i % 3}.example/{i}",
            "text": f"Article number {i} about the town library.\n"
            f"The reading room opens at {i % 9} and closes late on weekdays, said the librarian.",
        }
        for i in range(40)
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    tasks, results, seconds = capture(str(path), 2)
    assert tasks and len(results) == len(tasks)
    assert seconds >= 0
    packs = []
    unpack = dedup._unpack_sketches

    def counted(*args):
        packs.append(len(args[2]))  # (alike: one entry per sketch of the pack)
        return unpack(*args)

    monkeypatch.setattr(dedup, "_unpack_sketches", counted)
    for data in results:
        before = len(packs)
        changes = ForkingPickler.loads(data)
        sketched = sum(1 for scratch in (c[3] for c in changes[0]) if scratch and "dedup" in scratch)
        # A batch's sketches travel as the one pack the worker made (re-pickled here, each was a pack of its own).
        assert len(packs) - before == (1 if sketched else 0)
        assert sum(packs[before:]) >= sketched
    # --parts: each batch's results split by part, the sketches apart (packed again as the worker packs them)
    split = parts(results)
    assert set(split) == {
        "texts",
        "texts as read",
        "ahead",
        "lines",
        "sketches",
        "scratch",
        "meta+rejected+records",
        "stats",
    }
    assert all(len(items) == len(results) for items in split.values())
    assert sum(map(len, split["sketches"])) == sum(
        1 for data in results for c in ForkingPickler.loads(data)[0] if c[3] and "dedup" in c[3]
    )


def test_parts_split_the_results_of_ranges_the_workers_read(tmp_path, monkeypatch):
    """A plain JSONL file the stream's workers read by ranges (runner.RangeResult): split by part too, every
    document's text among the texts, the texts as read of those the stages changed apart."""
    from pipeline import jsonl_ranges

    monkeypatch.setattr(jsonl_ranges, "MIN_FILE_BYTES", 1000)
    monkeypatch.setattr(jsonl_ranges, "RANGE_BYTES", 4000)
    lines = [
        {"id": str(i), "text": f"Home | About\nArticle {i} about the town library and its reading room, {i * 3} seats."}
        for i in range(60)
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _, results, _ = capture(str(path), 2)
    ranged = [data for data in results if len(ForkingPickler.loads(data)) == 6]
    assert len(ranged) == len(results) > 1
    split = parts(results)
    assert sum(map(len, split["texts"])) == 60 == sum(map(len, split["texts as read"]))
    assert all(len(items) == len(results) for items in split.values())
