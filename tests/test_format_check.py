"""benchmarks/format_check.py: its input folder is deterministic and holds every input kind it is for, and its
comparison sees what differs (compressed outputs by content, report.json without its times) and nothing else."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # (plain pytest imports the installed package; the benchmarks live in the repo)
    sys.path.insert(0, str(REPO))

from conftest import SHARED  # noqa: E402

from benchmarks import diff_check, format_check  # noqa: E402


def _use_shared(monkeypatch) -> None:
    corpora = SHARED / "corpora"
    monkeypatch.setattr(diff_check, "SENTENCES", corpora / "lingua-sentences")
    monkeypatch.setattr(format_check, "CC", corpora / "cc-2019-30-dolma" / "docs.jsonl")
    monkeypatch.setattr(format_check, "TP", corpora / "trafilatura-testpages" / "text" / "docs.jsonl")
    monkeypatch.setattr(format_check, "HTML", corpora / "trafilatura-testpages" / "html" / "eval")
    monkeypatch.setattr(format_check, "SEEDS", SHARED / "seeds")
    monkeypatch.setattr(
        format_check,
        "WARCS",
        [
            corpora / "cc-2019-30-dolma" / "warc_samples" / "sample-0000.warc.gz",
            corpora / "cc-wet-format-sample" / "whirlwind.warc.wet",
        ],
    )
    monkeypatch.setattr(
        format_check, "BROKEN_WARC", corpora / "cc-2019-30-dolma" / "warc_samples" / "sample-0001.warc.gz"
    )


def test_input_folder_is_deterministic_and_holds_every_kind(tmp_path: Path, monkeypatch) -> None:
    _use_shared(monkeypatch)
    a, b = tmp_path / "a", tmp_path / "b"
    changed = format_check.write_inputs(a, 7)
    format_check.write_inputs(b, 7)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    names = {str(f) for f in files}
    for suffix in (".jsonl.gz", ".jsonl.zst", ".parquet", ".warc.gz", ".warc.wet", ".html.gz", ".html", ".txt"):
        assert any(n.endswith(suffix) for n in names), suffix
    txt = a / "d_txt"
    assert (txt / "cc04.txt").read_bytes()[:2] == b"\xff\xfe"  # UTF-16 with its BOM
    assert b"\x00" in (txt / "binary.txt").read_bytes() or b"\x00" in (txt / "nul.txt").read_bytes()
    assert (a / "j_gzip-named.jsonl").read_bytes()[:2] == b"\x1f\x8b"
    assert b"{broken json" in (a / "g_odd.jsonl").read_bytes()
    assert (a / "f_web" / "plain-wet.warc.gz").read_bytes()[:5] == b"WARC/"  # a plain WARC under a gzip name
    assert (a / "o_plain.jsonl.gz").read_bytes()[:1] == b"{"
    assert (a / "o_gzip.jsonl.zst").read_bytes()[:2] == b"\x1f\x8b"
    assert changed["middle"].exists() and changed["changed_last"].parent == a and not changed["new_last"].exists()
    format_check.write_inputs(tmp_path / "c", 8)  # another seed, other documents
    assert (tmp_path / "c" / "e_rows.parquet").read_bytes() != (a / "e_rows.parquet").read_bytes()


def test_compare_sees_content_not_compression_or_times(tmp_path: Path) -> None:
    x, y = tmp_path / "x", tmp_path / "y"
    report = {"seconds": 1.0, "started": "t", "workers": 1, "documents": {"in": 2}, "stages": [{"seconds": 0.5}]}
    for out, level in ((x, 1), (y, 9)):
        out.mkdir()
        (out / "a.jsonl.gz").write_bytes(
            gzip.compress(b'{"id": "1", "text": "Stra\xc3\x9fe"}\n', compresslevel=level, mtime=0)
        )
        (out / "removed.jsonl").write_text("")
        (out / "report.json").write_text(json.dumps(report))
        report = {**report, "seconds": 9.0, "started": "u", "workers": 2, "stages": [{"seconds": 0.7}]}
    assert format_check.compare(x, y) == ["a.jsonl.gz: bytes differ, content equal"]
    (y / "a.jsonl.gz").write_bytes((x / "a.jsonl.gz").read_bytes())
    assert format_check.compare(x, y) == []
    (y / "a.jsonl.gz").write_bytes(gzip.compress(b'{"id": "1", "text": "Strasse"}\n', mtime=0))
    assert format_check.compare(x, y) == ["a.jsonl.gz: content differs"]
    (y / "a.jsonl.gz").write_bytes((x / "a.jsonl.gz").read_bytes())
    report["documents"] = {"in": 3}
    (y / "report.json").write_text(json.dumps(report))
    assert format_check.compare(x, y) == ["report.json: .documents.in: 2 vs 3"]
    (y / "rejected.jsonl").write_text("")
    assert "rejected.jsonl: only in second" in format_check.compare(x, y)


def test_compare_names_the_first_differing_line_of_a_text_output(tmp_path: Path) -> None:
    x, y = tmp_path / "x", tmp_path / "y"
    for out, last in ((x, "5\n"), (y, "6\n")):
        out.mkdir()
        (out / "a.txt").write_text("Straße\n\f\n" + last, encoding="utf-8")  # lines that read as JSON numbers
    assert format_check.compare(x, y) == ["a.txt: line 3 of 3/3\n    base: '5\\n'\n    new:  '6\\n'"]
