"""Scale: the compact dedup key table, and the Ray executor giving the local executor's output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.document import Document
from pipeline.stages.dedup import DedupStage, KeyTable

SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"


def test_key_table_behaves_like_a_first_wins_dict() -> None:
    rng = np.random.default_rng(7)
    table = KeyTable(compact_at=50)
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
        table.compact()
    assert table.runs > 0 and len(table) == len(reference)
    assert table.slot_keys.nbytes + table.slot_values.nbytes < 40 * len(reference)  # vs ~100 in a dict


def _docs(n: int) -> list[dict[str, str]]:
    with CC.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def test_dedup_results_do_not_depend_on_when_the_index_is_compacted(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _docs(150)
    records += [dict(r, id=r["id"] + "-again") for r in records[:40:3]]  # exact and near repeats

    def run(compact_at: int) -> list[tuple[str, str | None, str]]:
        monkeypatch.setattr(KeyTable.__init__, "__defaults__", (compact_at, False))
        stage = DedupStage()
        out = []
        for r in records:
            doc = Document(r["id"], r["text"], "cc")
            stage.process(doc)
            out.append((doc.id, doc.rejected.reason if doc.rejected else None, doc.text))
        assert (stage.units.buckets.runs > 0) == (compact_at < 1000)
        return out

    small, large = run(8), run(1 << 30)  # compacted after nearly every document / never
    assert small == large
    assert any(reason for _, reason, _ in small)


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
