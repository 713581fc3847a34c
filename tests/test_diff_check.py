"""benchmarks/diff_check.py: its inputs are deterministic and hold the traps it is for, and its comparison
finds a difference and names the document."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # (plain pytest imports the installed package; the benchmarks live in the repo)
    sys.path.insert(0, str(REPO))

from conftest import SHARED  # noqa: E402

from benchmarks import diff_check  # noqa: E402


def test_generated_input_is_deterministic_and_holds_the_traps(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(diff_check, "SENTENCES", SHARED / "corpora" / "lingua-sentences")
    a, b = tmp_path / "a", tmp_path / "b"
    diff_check.write_input(a, 3, 40, with_seeds=False)
    diff_check.write_input(b, 3, 40, with_seeds=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    texts = [
        json.loads(line)["text"]
        for f in a.glob("[a-e]_*.jsonl")
        for line in f.read_text(encoding="utf-8").split("\n")
        if line
    ]
    joined = "".join(texts)
    for trap in ("ß", "İ", "ς", "\u2028", "\r", "\U0001f600"):
        assert trap in joined, trap
    assert max(len(line) for t in texts for line in t.split("\n")) > 65_535
    assert any(t.count("\n") >= 65_536 for t in texts)
    assert any(not t.strip() for t in texts)  # an empty or whitespace-only document
    # (JSONL lines split at "\n" only: the texts hold U+2028 and U+0085 as they are)
    assert diff_check.generate(4, 40)["a_kinds.jsonl"] != diff_check.generate(3, 40)["a_kinds.jsonl"]


def test_compare_names_the_first_differing_document(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    for out in (base, new):
        out.mkdir()
        (out / "report.json").write_text("{}")  # not compared: it holds times
    rows = [{"id": "x1", "text": "same"}, {"id": "x2", "text": "Straße"}]
    (base / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows[1]["text"] = "Strasse"
    (new / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (base / "removed.jsonl").write_text("")
    (new / "removed.jsonl").write_text("")
    (new / "rejected.jsonl").write_text("")
    diffs = diff_check.compare(base, new)
    assert len(diffs) == 2
    assert diffs[0].startswith("in.jsonl: line 2 of 2/2") and '"id": "x2"' in diffs[0]
    assert diffs[1] == "rejected.jsonl: only in new"
    (base / "rejected.jsonl").write_text("")
    (new / "in.jsonl").write_bytes((base / "in.jsonl").read_bytes())
    assert diff_check.compare(base, new) == []
