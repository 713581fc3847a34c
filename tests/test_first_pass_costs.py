"""benchmarks/first_pass_costs.py runs each part of the first pass over a small input and prints a digest."""

from __future__ import annotations

import json
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))  # (plain `pytest`, as CI runs it, puts tests/ on the path, not the repo)
from benchmarks.first_pass_costs import main  # noqa: E402


def test_first_pass_costs_times_every_part_and_prints_what_the_merge_learnt(tmp_path, capsys):
    lines = [
        {"id": str(i), "url": f"https://site{i % 2}.example/{i}", "text": f"Home\nShare this page\nArticle number {i}."}
        for i in range(12)
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    main([str(path), "--rounds", "1"])
    out = capsys.readouterr().out
    for part in ("read and parse", "_apply_noting", "prepare_part", "result unpickled", "prepare_merge"):
        assert part in out
    assert "documents 12, batches 1, learnt " in out
