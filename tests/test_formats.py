"""WET/WARC archives, HTML pages, Parquet in and out, stdin/stdout: real files from ../shared."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CORPORA, REPO

from pipeline.config import ConfigError, InputConfig, default_config, load_config_data
from pipeline.document import Document
from pipeline.formats import decode_html
from pipeline.io import InputFile, OutputWriter, discover, read_documents, split_txt_documents
from pipeline.runner import run
from pipeline.stages.base import Stage
from pipeline.stages.extract import ExtractOptions, ExtractStage

WET = CORPORA / "cc-wet-format-sample" / "whirlwind.warc.wet"
WARC_DIR = CORPORA / "cc-2019-30-dolma" / "warc_samples"
WARC = WARC_DIR / "sample-0000.warc.gz"
PAGES = CORPORA / "trafilatura-testpages"
NORMALIZE_ONLY = load_config_data({"stages": [{"stage": "normalize"}]})
EXTRACT_ONLY = load_config_data({"stages": [{"stage": "extract"}]})
CFG = InputConfig()


def _docs(path: Path, cfg: InputConfig = CFG) -> list[Document]:
    (f,), _ = discover([str(path)])
    return list(read_documents(f, cfg))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _quarantined(docs: list[Document]) -> list[Document]:
    return [d for d in docs if d.rejected and d.rejected.quarantined]


# ---------------------------------------------------------------- WET / WARC


def test_wet_conversion_record_is_a_document_with_its_metadata() -> None:
    (doc,) = _docs(WET)  # the warcinfo record is not a document
    assert doc.id == "<urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d>"
    assert doc.record is not None
    assert doc.record["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert doc.record["date"] == "2024-05-18T01:58:10Z"
    assert doc.record["warc_headers"]["WARC-Identified-Content-Language"] == "spa"
    assert doc.text.startswith("Escopete - Biquipedia, a enciclopedia libre\n")
    assert len(doc.text.encode("utf-8")) == 4456 and "content_type" not in doc.meta


def test_warc_html_responses_become_html_documents() -> None:
    docs = _docs(WARC)
    assert not _quarantined(docs)
    assert len(docs) == 22  # the HTML responses; requests, warcinfo, wget's log and metadata are skipped
    assert len({d.id for d in docs}) == 22
    first = docs[0]
    assert first.meta["content_type"] == "text/html" and "<html" in first.text[:2000].lower()
    assert first.record is not None
    assert first.record["url"] == "https://www.semanticscholar.org/research/research-team"  # brackets gone
    assert first.record["warc_offset"] == 865 and first.record["http_status"] == 200


def test_wet_and_warc_run_to_jsonl_with_default_config(tmp_path: Path) -> None:
    result = run(default_config(), [str(WET.parent)], tmp_path / "out")
    out = tmp_path / "out"
    (wet,) = _lines(out / "whirlwind.warc.wet.jsonl")
    assert wet["id"] == "<urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d>" and wet["url"].endswith("/Escopete")
    assert "Castiella-La Mancha" in wet["text"] and wet["date"] == "2024-05-18T01:58:10Z"
    (page,) = _lines(out / "whirlwind.warc.gz.jsonl")  # the HTML response of the same page
    assert "<" not in page["text"] and "Escopete" in page["text"]
    extract = result.report["stages"][0]
    assert extract["stage"] == "extract" and extract["counters"] == {
        "html": 1,
        "html_characters": extract["counters"]["html_characters"],
        "not_html": 1,
    }


def _cut(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (100_000, "truncated record at offset 99869 (the archive ends inside this gzip member)"),  # in its header
        (900, "truncated archive at offset 865 (the archive ends inside this gzip member)"),  # no record to see
        (5_000, "truncated record at offset 865: 9,137 of 87,229 bytes"),  # in an HTML body
    ],
)
def test_truncated_warc_is_quarantined_with_its_offset(tmp_path: Path, cut: int, reason: str) -> None:
    docs = _docs(_cut(tmp_path, "cut.warc.gz", WARC.read_bytes()[:cut]))
    (bad,) = _quarantined(docs)
    assert bad.rejected is not None and bad.rejected.stage == "input" and bad.rejected.reason == reason
    full = {d.id: d.text for d in _docs(WARC)}
    assert all(full[d.id] == d.text for d in docs if not d.rejected)  # what came before is intact


def test_corrupt_gzip_member_is_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    data = bytearray(WARC.read_bytes())
    data[20_000:20_050] = bytes(b ^ 0xFF for b in data[20_000:20_050])  # inside the member at 15904
    docs = _docs(_cut(tmp_path, "corrupt.warc.gz", bytes(data)))
    (bad,) = _quarantined(docs)
    assert bad.rejected is not None and bad.rejected.reason.startswith("corrupt archive record at offset 15904:")
    good = [d for d in docs if not d.rejected]
    assert len(good) == 21  # every other HTML response, also those after the broken member
    assert good[-1].id == _docs(WARC)[-1].id


def test_plain_warc_with_a_broken_record_resyncs_at_the_next(tmp_path: Path) -> None:
    raw = gzip.decompress(WARC.read_bytes())
    second_response = raw.index(b"WARC/1.0\r\nWARC-Type: response", 1000)
    broken = raw[:second_response] + b"WARC/1.0\r\nthis is no header\r\n\r\n" + raw[second_response:]
    cut = broken[: len(broken) - 5_000]  # and cut the last record short
    docs = _docs(_cut(tmp_path, "broken.warc", cut))
    reasons = [d.rejected.reason for d in _quarantined(docs) if d.rejected]
    assert reasons[0] == f"broken record at offset {second_response}: no WARC-Type or Content-Length header"
    assert reasons[1].startswith("broken record at offset") and reasons[1].endswith("unexpected end of file")
    assert len(reasons) == 2
    assert len([d for d in docs if not d.rejected]) == 21


def test_plain_warc_named_warc_gz_reads_like_the_warc(tmp_path: Path) -> None:
    # FastWARC reads a plain WARC under a .gz name, but its tail was checked as gzip members: the last record was
    # quarantined ("data after the last record that is not a gzip member"). A real .warc.gz keeps that check.
    for data in (WET.read_bytes(), gzip.decompress(WARC.read_bytes())):  # one WET record; 22 HTML responses
        plain = [(d.id, d.text, d.rejected) for d in _docs(_cut(tmp_path, "plain.warc", data))]
        named_gz = [(d.id, d.text, d.rejected) for d in _docs(_cut(tmp_path, "plain.warc.gz", data))]
        assert named_gz == plain and plain and not any(r for _, _, r in plain)
    (bad,) = _quarantined(_docs(_cut(tmp_path, "cut.warc.gz", WARC.read_bytes()[:100_000])))
    assert bad.rejected is not None
    assert bad.rejected.reason == "truncated record at offset 99869 (the archive ends inside this gzip member)"
    (bad,) = _quarantined(_docs(_cut(tmp_path, "junk.warc.gz", b"not an archive at all\n" * 50)))
    assert bad.rejected is not None and bad.rejected.reason.startswith("corrupt archive after the record at offset 0")


def test_run_goes_on_after_a_truncated_archive(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _cut(tmp_path / "in", "a-cut.warc.gz", WARC.read_bytes()[:100_000])
    (tmp_path / "in" / "b.jsonl").write_bytes(b'{"id": "j1", "text": "A plain record."}\n')
    result = run(EXTRACT_ONLY, [str(tmp_path / "in")], tmp_path / "out")
    assert result.quarantined == 1
    rejected = _lines(tmp_path / "out" / "rejected.jsonl")
    assert [r["reason"] for r in rejected] == [
        "truncated record at offset 99869 (the archive ends inside this gzip member)"
    ]
    assert len(_lines(tmp_path / "out" / "a-cut.warc.gz.jsonl")) == result.documents_out - 1
    assert _lines(tmp_path / "out" / "b.jsonl") == [{"id": "j1", "text": "A plain record."}]


def test_html_input_with_no_extract_stage_is_a_config_error_not_markup_as_text(tmp_path: Path) -> None:
    # README's own example config lists no extract stage: a WARC ran through it wrote "<head>\n<meta ..."
    # as the documents' text (kept, exit 0). A WET archive holds text and needs no extract.
    config = load_config_data({"stages": [{"stage": "encoding"}, {"stage": "normalize"}]})
    for page in (WARC, PAGES / "html" / "eval" / "006af185d8299148.html.gz"):
        with pytest.raises(ConfigError, match=r"holds HTML pages, but the config runs no extract stage"):
            run(config, [str(page)], tmp_path / "out")
        assert not (tmp_path / "out" / f"{page.name}.jsonl").exists()
    disabled = load_config_data({"stages": [{"stage": "extract", "enabled": False}, {"stage": "normalize"}]})
    with pytest.raises(ConfigError, match="no extract stage"):
        run(disabled, [str(WARC)], tmp_path / "out")
    run(config, [str(WET)], tmp_path / "wet")
    (record,) = _lines(tmp_path / "wet" / "whirlwind.warc.wet.jsonl")
    assert record["url"] == "https://an.wikipedia.org/wiki/Escopete" and "<" not in record["text"][:200]
    # a stage of the user's own that turns HTML into text (extracts_html) stands in for extract
    own = load_config_data({"stages": [{"stage": "example_stage:TagStripper"}, {"stage": "normalize"}]})
    run(own, [str(WARC)], tmp_path / "own")
    pages = _lines(tmp_path / "own" / f"{WARC.name}.jsonl")
    assert len(pages) == 22 and not any("<head" in p["text"] or "<div" in p["text"] for p in pages)


# ---------------------------------------------------------------- HTML


def test_html_charset_declared_then_detected() -> None:
    page = "<html><head><meta charset='iso-8859-2'></head><body><p>Zażółć gęślą jaźń, łódź i źdźbło.</p></body></html>"
    data = page.encode("iso-8859-2")
    assert decode_html(data) == (page, "iso8859-2", None)  # cp1252 would also decode these bytes
    assert decode_html(data, http_charset="utf-8")[0] == page  # a wrong header: the meta tag is next
    assert decode_html(page.encode("utf-8"), http_charset="iso-8859-1") == (page, None, None)  # UTF-8 first
    text, encoding, _ = decode_html("<p>Grüße aus Köln, schöne Tage überall.</p>".encode("cp1252"))
    assert text == "<p>Grüße aus Köln, schöne Tage überall.</p>" and encoding  # nothing declared: detected


def test_html_page_files_are_decoded_by_their_charset() -> None:
    docs = {r["id"]: r for r in map(json.loads, (PAGES / "text" / "docs.jsonl").open(encoding="utf-8"))}
    for page_id, encoding in [("a38d0a4922dcec25", "cp1250"), ("85a99ee4896fcbcf", "iso8859-2")]:
        (doc,) = _docs(PAGES / "html" / "eval" / f"{page_id}.html.gz")
        assert doc.id == f"{page_id}.html.gz" and doc.meta == {"content_type": "text/html", "encoding": encoding}
        words = [w for w in docs[page_id]["text"].split() if len(w) > 6 and not w.isascii()][:20]
        assert words and all(w in doc.text for w in words)


def _gold(n: int) -> list[dict]:
    lines = (PAGES / "text" / "gold_snippets.dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def test_extract_stage_keeps_main_text_and_drops_page_chrome() -> None:
    stage = ExtractStage()
    found_with = found_without = total_with = total_without = 0
    for gold in _gold(8):
        (doc,) = _docs(PAGES / "html" / "eval" / f"{gold['id']}.html.gz")
        stage.process(doc)
        assert doc.meta["content_type"] == "text/plain" and "<div" not in doc.text
        text = " ".join(doc.text.split())
        found_with += sum(" ".join(s.split()) in text for s in gold["with"])
        found_without += sum(" ".join(s.split()) in text for s in gold["without"])
        total_with += len(gold["with"])
        total_without += len(gold["without"])
    assert found_with >= 0.8 * total_with and found_without <= 0.3 * total_without
    assert stage.take_stats()["html"] == 8


def test_extract_leaves_text_alone_and_rejects_empty_pages() -> None:
    stage = ExtractStage(ExtractOptions(favor="precision", include_comments=True))
    plain = Document(id="t", text="Just text, <b>not HTML</b>.", source="s")
    stage.process(plain)
    assert plain.text == "Just text, <b>not HTML</b>." and plain.rejected is None
    empty = Document(id="e", text="<html><body><script>var x = 1;</script></body></html>", source="s")
    empty.meta["content_type"] = "text/html"
    stage.process(empty)
    assert empty.rejected is not None and not empty.rejected.quarantined and empty.rejected.stage == "extract"
    assert stage.take_stats() == {"not_html": 1, "html": 1, "html_characters": len(empty.original)}


# ---------------------------------------------------------------- Parquet


def _parquet(path: Path, n: int, group: int) -> pa.Table:
    table = pa.table(
        {
            "doc_id": [f"d{i}" for i in range(n)],
            "content": [f"Row  {i}  text.\n\n\n\nEnd of row {i}." if i % 7 else "   " for i in range(n)],
            "score": pa.array([i / 10 for i in range(n)], pa.float32()),
            "tags": [[f"t{i}", "x"] for i in range(n)],
        }
    )
    pq.write_table(table, path, row_group_size=group)
    return table


def test_parquet_round_trip_keeps_schema_and_drops_rejected_rows(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    source = _parquet(tmp_path / "in" / "part.parquet", 50, 16)
    config = load_config_data(
        {"input": {"id_field": "doc_id", "text_field": "content"}, "stages": [{"stage": "normalize"}]}
    )
    result = run(config, [str(tmp_path / "in")], tmp_path / "out")
    out = pq.read_table(tmp_path / "out" / "part.parquet")
    assert out.schema == source.schema
    kept = [i for i in range(50) if i % 7]
    assert out.column("doc_id").to_pylist() == [f"d{i}" for i in kept]
    assert out.column("content").to_pylist()[0] == "Row 1 text.\n\nEnd of row 1."
    assert out.column("tags").to_pylist()[0] == ["t1", "x"]
    assert result.documents_rejected == 50 - len(kept)
    rejected = _lines(tmp_path / "out" / "rejected.jsonl")
    assert [r["id"] for r in rejected] == [f"d{i}" for i in range(0, 50, 7)] and rejected[1]["line"] == 8


def test_output_format_overrides_the_input_format(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _parquet(tmp_path / "in" / "part.parquet", 10, 4)
    (tmp_path / "in" / "b.jsonl").write_bytes(
        b'{"id": "j1", "text": "One.", "meta": {"a": 1}}\n{"id": "j2", "text": "Two.", "meta": null}\n'
    )
    to_jsonl = load_config_data(
        {"input": {"id_field": "doc_id", "text_field": "content"}, "output": {"format": "jsonl"}, "stages": []}
    )
    run(to_jsonl, [str(tmp_path / "in" / "part.parquet")], tmp_path / "o1")
    rows = _lines(tmp_path / "o1" / "part.parquet.jsonl")
    assert [r["doc_id"] for r in rows] == [f"d{i}" for i in range(1, 7)] + ["d8", "d9"]
    assert rows[0]["score"] == pytest.approx(0.1) and rows[0]["tags"] == ["t1", "x"]

    to_parquet = load_config_data({"output": {"format": "parquet"}, "stages": []})
    run(to_parquet, [str(tmp_path / "in" / "b.jsonl")], tmp_path / "o2")
    table = pq.read_table(tmp_path / "o2" / "b.jsonl.parquet")
    assert table.to_pylist() == [
        {"id": "j1", "text": "One.", "meta": '{"a":1}'},  # nested values are JSON strings
        {"id": "j2", "text": "Two.", "meta": None},
    ]


def test_txt_output_tells_documents_apart_from_paragraphs(tmp_path: Path) -> None:
    # Documents of several paragraphs (CC pages): in a txt output of many documents a blank line is a
    # paragraph break, a form-feed line a document break; split_txt_documents gives the JSONL output's texts.
    with (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").open(encoding="utf-8") as fh:
        records = [json.loads(line) for _, line in zip(range(8), fh, strict=False)]
    records = [{"id": r["id"], "text": r["text"].replace("\n", "\n\n")} for r in records if r["text"].strip()]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_text("One page.\n\nIts second paragraph.", encoding="utf-8")
    stages = [{"stage": "encoding"}, {"stage": "normalize"}]
    run(load_config_data({"stages": stages}), [str(tmp_path / "in")], tmp_path / "jsonl")
    run(load_config_data({"output": {"format": "txt"}, "stages": stages}), [str(tmp_path / "in")], tmp_path / "txt")
    texts = [r["text"] for r in _lines(tmp_path / "jsonl" / "a.jsonl")]
    assert len(texts) >= 5 and all("\n\n" in t for t in texts)
    data = (tmp_path / "txt" / "a.jsonl.txt").read_text(encoding="utf-8")
    assert data.count("\n\f\n") == len(texts) - 1
    assert split_txt_documents(data) == texts
    assert (tmp_path / "txt" / "b.txt").read_text(encoding="utf-8") == "One page.\n\nIts second paragraph.\n"


def test_a_document_with_a_form_feed_line_is_quarantined_in_txt_output_not_split(tmp_path: Path) -> None:
    # Without normalize (which turns form feeds into line breaks) a page break of pdftotext survives;
    # on a line of its own it would read as two documents: quarantined at stage output instead.
    records = [
        {"id": "a", "text": "Page one.\n\f\nPage two."},
        {"id": "b", "text": "End of a page.\fStart of the next."},  # not a line of its own: kept
        {"id": "c", "text": "Closing words."},
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = load_config_data({"output": {"format": "txt"}, "stages": []})
    report = run(config, [str(tmp_path / "a.jsonl")], tmp_path / "out").report
    assert report["documents"]["quarantined"] == 1
    data = (tmp_path / "out" / "a.jsonl.txt").read_text(encoding="utf-8")
    assert split_txt_documents(data) == [records[1]["text"], records[2]["text"]]
    (rejected,) = _lines(tmp_path / "out" / "rejected.jsonl")
    assert rejected["id"] == "a" and rejected["stage"] == "output" and "form feed" in rejected["reason"]
    assert rejected["text"] == records[0]["text"]


def test_explain_finds_a_document_of_a_txt_output_of_many(tmp_path: Path) -> None:
    # The output holds the input's kept documents in order: explain counts those before it (the rejected
    # ones, here an exact duplicate and a page break on a line of its own, are not there).
    from pipeline.explain import explain_document

    records = [
        {"id": "a", "text": "A first page about rivers and the towns along them."},
        {"id": "b", "text": "Page one.\n\f\nPage two."},
        {"id": "c", "text": "A first page about rivers and the towns along them."},
        {"id": "d", "text": "Closing words of the last page, on mountains."},
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = load_config_data({"output": {"format": "txt"}, "stages": [{"stage": "dedup"}]})
    run(config, [str(tmp_path / "a.jsonl")], tmp_path / "out")
    assert len(split_txt_documents((tmp_path / "out" / "a.jsonl.txt").read_text(encoding="utf-8"))) == 2
    for doc_id, after in (("a", records[0]["text"]), ("d", records[3]["text"]), ("c", "(rejected: no output)")):
        shown = explain_document(config, tmp_path / "out", doc_id)
        assert shown.split("--- after ---\n")[1] == after


def test_explain_shows_an_html_pages_text_as_extract_made_it(tmp_path: Path) -> None:
    # removed.jsonl's offsets index the text extract made: explain (without -c: the last run's config) shows
    # that text with the spans marked, not the page's markup with every span "not found verbatim".
    from click.testing import CliRunner

    from pipeline.cli import cli

    (tmp_path / "in").mkdir()
    page = "006af185d8299148.html.gz"
    (tmp_path / "in" / page).write_bytes((PAGES / "html" / "eval" / page).read_bytes())
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]).exit_code == 0
    shown = runner.invoke(cli, ["explain", page, "-o", str(tmp_path / "out")]).output
    assert "1 span removed" in shown and "[-boilerplate/copyright: Sofern nicht anders" in shown, shown[:500]
    assert "<html" not in shown and "not found verbatim" not in shown


def test_a_one_document_input_is_written_to_txt_as_it_is_form_feeds_and_all(tmp_path: Path) -> None:
    # A .txt or .html input holds one document: its txt output has no separator to be mistaken for,
    # so a page break of its own (pdftotext's, normalize off) is written, not quarantined.
    text = "Page one.\n\f\nPage two."
    for name, fmt in (("a.txt", "txt"), ("p.html", "html")):
        writer = OutputWriter(InputFile(tmp_path / name, name, fmt, None), tmp_path / "out", CFG, None, "txt")
        writer.write(Document(name, text, name))
        writer.commit()
        assert writer.path.read_text(encoding="utf-8") == text + "\n"


def test_parquet_columns_json_lacks_are_written_to_jsonl_in_a_lossless_form(tmp_path: Path) -> None:
    # Binary and decimal columns made the whole run fail ("Type is not JSON serializable: bytes").
    table = pa.table(
        {
            "id": ["a"],
            "text": ["First document about cats and their habits at home today."],
            "raw": pa.array([b"\x00\xff"]),
            "blobs": pa.array([[b"x", b""]], pa.list_(pa.large_binary())),
            "price": pa.array([Decimal("1.50")], pa.decimal128(5, 2)),
            "big": pa.array([Decimal("-12345678901234567890123456789.5")], pa.decimal256(40, 1)),
            "took": pa.array([timedelta(days=-1, microseconds=500)], pa.duration("us")),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    config = load_config_data({"output": {"format": "jsonl"}, "stages": [{"stage": "normalize"}]})
    result = run(config, [str(tmp_path / "t.parquet")], tmp_path / "out")
    assert result.documents_out == 1
    (row,) = _lines(tmp_path / "out" / "t.parquet.jsonl")
    assert base64.b64decode(row["raw"]) == b"\x00\xff" and row["blobs"] == ["eA==", ""]
    assert row["price"] == "1.50" and Decimal(row["big"]) == table.column("big")[0].as_py()
    assert row["took"] == "-PT86399.9995S"


def test_jsonl_to_parquet_keeps_fields_that_appear_or_change_type_late(tmp_path: Path) -> None:
    # More records than one Parquet batch; the late ones bring a new field and other value types.
    records = [{"id": f"r{i}", "text": f"Line {i}.", "n": i, "score": 1} for i in range(1500)]
    records[1400]["source"] = "late"
    records[1401]["score"] = 2.5  # int + float -> double
    records[1402]["n"] = "n/a"  # int + str -> string
    records[1403]["tags"] = ["a", "b"]
    (tmp_path / "late.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    config = load_config_data({"output": {"format": "parquet"}, "stages": []})
    run(config, [str(tmp_path / "late.jsonl")], tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "late.jsonl.parquet")
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("n").type == pa.string()
    rows = table.to_pylist()
    assert len(rows) == 1500 and [r["id"] for r in rows] == [r["id"] for r in records]
    assert rows[0]["n"] == "0" and rows[1402]["n"] == "n/a" and rows[1401]["score"] == 2.5
    assert rows[1400]["source"] == "late" and rows[0]["source"] is None
    assert rows[1403]["tags"] == '["a","b"]'


def test_parquet_output_with_every_document_rejected_still_has_the_id_and_text_columns(tmp_path: Path) -> None:
    """A JSONL or text input whose documents were all rejected (empty, duplicates) gave a Parquet file
    with no column at all: a dataset read over the output folder that took its schema from it lost every
    column of the other files. It has the id and text fields as string columns, and no row."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b'{"doc": "a1", "body": "Some text here.", "n": 1}\n')
    (tmp_path / "in" / "b.jsonl").write_bytes(b'{"doc": "b1", "body": ""}\n{"doc": "b2", "body": " "}\n')
    config = load_config_data(
        {"input": {"id_field": "doc", "text_field": "body"}, "output": {"format": "parquet"}, "stages": []}
    )
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    empty = pq.read_table(tmp_path / "out" / "b.jsonl.parquet")
    assert empty.num_rows == 0 and empty.schema == pa.schema([("doc", pa.string()), ("body", pa.string())])
    import pyarrow.dataset as ds

    files = [str(tmp_path / "out" / name) for name in ("b.jsonl.parquet", "a.jsonl.parquet")]
    assert ds.dataset(files, format="parquet").to_table().column("body").to_pylist() == ["Some text here."]


def test_corrupt_parquet_file_is_quarantined(tmp_path: Path) -> None:
    _parquet(tmp_path / "p.parquet", 10, 4)
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "in" / "ok.parquet").write_bytes(data)
    config = load_config_data({"input": {"id_field": "doc_id", "text_field": "content"}, "stages": []})
    result = run(config, [str(tmp_path / "in")], tmp_path / "out")
    assert result.quarantined == 1 and result.documents_out == 8
    (bad,) = _lines(tmp_path / "out" / "rejected.jsonl")[:1]
    assert bad["source"] == "cut.parquet" and bad["reason"].startswith("unreadable Parquet file")


class MisfitStage(Stage):
    """Gives a few records values their Parquet columns cannot hold. Cross-document, so it runs in this
    process and its edits of the records reach the writer whatever the worker count."""

    name = "misfit"
    cross_document = True
    MISFITS: dict[str, tuple[str, object]] = {
        "d5": ("score", "n/a"),  # a string in a float column
        "d1023": ("tags", [{"a": 1}]),  # a nested value a list<string> column cannot take
        "d1024": ("tags", "ab"),  # pyarrow would store ["a", "b"]
        "d1500": ("doc_id", None),  # a null in a non-nullable column: refused only when the row group is written
    }

    def process(self, doc: Document) -> None:
        misfit = self.MISFITS.get(doc.id)
        if misfit is not None and doc.record is not None:
            doc.record[misfit[0]] = misfit[1]


def test_a_record_its_parquet_schema_cannot_hold_is_quarantined_and_the_rest_is_written(tmp_path: Path) -> None:
    # Each of these made the whole run fail (or, "ab", wrote a list of its characters). Misfits on both
    # sides of the first batch boundary (1024 rows) and one found only when the last row group is written.
    n = 2000
    schema = pa.schema(
        [
            pa.field("doc_id", pa.string(), nullable=False),
            ("content", pa.string()),
            ("score", pa.float32()),
            ("tags", pa.list_(pa.string())),
        ]
    )
    rows = [{"doc_id": f"d{i}", "content": f"Row  {i}  text.", "score": i / 10, "tags": [f"t{i}"]} for i in range(n)]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "in" / "part.parquet", row_group_size=700)
    config = load_config_data(
        {
            "input": {"id_field": "doc_id", "text_field": "content"},
            "stages": [{"stage": "normalize"}, {"stage": "test_formats:MisfitStage"}],
        }
    )
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = run(config, [str(tmp_path / "in")], out, workers=workers)
        assert result.quarantined == 4 and result.documents_out == n - 4
        table = pq.read_table(out / "part.parquet")
        assert table.schema == schema
        bad = set(MisfitStage.MISFITS)
        assert table.column("doc_id").to_pylist() == [f"d{i}" for i in range(n) if f"d{i}" not in bad]
        assert table.column("content").to_pylist()[:2] == ["Row 0 text.", "Row 1 text."]
        rejected = {r["id"]: r for r in _lines(out / "rejected.jsonl")}
        assert set(rejected) == bad and {r["stage"] for r in rejected.values()} == {"output"}
        assert rejected["d5"]["text"] == "Row  5  text."
        for doc_id, (field, _) in MisfitStage.MISFITS.items():
            assert f"field {field!r} cannot be written to Parquet" in rejected[doc_id]["reason"]
        assert "float" in rejected["d5"]["reason"] and "not nullable" in rejected["d1500"]["reason"]
        assert "where the column has lists" in rejected["d1024"]["reason"]
        outputs.append(((out / "part.parquet").read_bytes(), (out / "rejected.jsonl").read_bytes()))
    assert outputs[0] == outputs[1]


class MetaSetStage(Stage):
    """Puts a value JSON has no form for into the metadata of the documents that say "odd"."""

    name = "meta_set"

    def process(self, doc: Document) -> None:
        if "odd" in doc.text:
            doc.meta["odd"] = {1, 2}  # a set


def test_jsonl_to_parquet_quarantines_a_record_json_cannot_hold_and_keeps_integers_beyond_int64(
    tmp_path: Path,
) -> None:
    # A set in the metadata made the run fail at once; an integer past int64 (JSON has them) when the
    # file was closed, in a column typed int64.
    records = [{"id": f"r{i}", "text": f"Line {i}.", "n": i} for i in range(1500)]
    records[3]["text"] = "An odd one."
    records[1200]["n"] = 2**63
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    config = load_config_data(
        {
            "output": {"format": "parquet", "metadata_field": "meta"},
            "stages": [{"stage": "normalize"}, {"stage": "test_formats:MetaSetStage"}],
        }
    )
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = run(config, [str(tmp_path / "in.jsonl")], out, workers=workers)
        assert result.quarantined == 1 and result.documents_out == 1499
        table = pq.read_table(out / "in.jsonl.parquet")
        assert table.column("id").to_pylist() == [r["id"] for r in records if r["id"] != "r3"]
        assert table.schema.field("n").type == pa.string()
        assert table.column("n").to_pylist()[1199] == str(2**63)  # (r3 is missing before it)
        (rejected,) = _lines(out / "rejected.jsonl")
        assert rejected["id"] == "r3" and rejected["stage"] == "output"
        assert rejected["reason"].startswith("cannot be written to Parquet: field 'meta'")
        outputs.append(((out / "in.jsonl.parquet").read_bytes(), (out / "rejected.jsonl").read_bytes()))
    assert outputs[0] == outputs[1]


# ---------------------------------------------------------------- stdin / stdout


def test_stdin_to_stdout_with_reports_in_outdir(tmp_path: Path) -> None:
    records = [{"id": f"s{i}", "text": f"Line  {i}.\n\n\n\nMore {i}."} for i in range(3)] + [{"id": "bad"}]
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _ in range(2):  # stdin is never 'unchanged': the second run processes it again
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "-", "-c", str(config), "-o", str(tmp_path / "out")],
            input=data,
            capture_output=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 3, proc.stderr  # the record without text is quarantined
        out = [json.loads(line) for line in proc.stdout.splitlines()]
        assert out == [{"id": f"s{i}", "text": f"Line {i}.\n\nMore {i}."} for i in range(3)]
        assert b"cleancorpus: 1 file, 4 documents: 3 kept" in proc.stderr
        report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
        assert report["inputs"]["processed"] == 1 and report["documents"]["in"] == 4
        assert [r["id"] for r in _lines(tmp_path / "out" / "rejected.jsonl")] == ["bad"]
    assert not (tmp_path / "out" / "-").exists()


def test_parquet_output_of_stdin_is_a_usage_error_not_jsonl_on_stdout(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    config = tmp_path / "c.yaml"
    config.write_text("output: {format: parquet}\nstages:\n  - stage: normalize\n")
    data = orjson.dumps({"id": "s", "text": "Kept."}) + b"\n"
    result = CliRunner().invoke(cli, ["run", "-", "-c", str(config), "-o", str(tmp_path / "out")], input=data)
    assert result.exit_code == 2  # (before: 0, and JSONL on stdout)
    assert result.output == (
        "cleancorpus: error: output.format parquet cannot be written to stdout (input -): use jsonl or txt, "
        "or write the input to a file first\n"
    )
    assert not (tmp_path / "out").exists()


def test_stdout_closed_by_its_reader_ends_the_run_quietly_as_a_unix_tool(tmp_path: Path) -> None:
    # `cleancorpus run - -o OUT | head -1`: before, "run failed: BrokenPipeError" and exit 1.
    import sqlite3

    data = tmp_path / "in.jsonl"
    data.write_bytes(
        b"".join(orjson.dumps({"id": f"d{i}", "text": f"Document {i}. " * 50}) + b"\n" for i in range(3000))
    )
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n")
    with open(data, "rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "-", "-c", str(config), "-o", str(tmp_path / "out")],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["id"] == "d0"
        proc.stdout.close()  # as head does once it has its line
        stderr = proc.stderr.read()
        assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports a tool ended by it
    assert stderr == b""
    con = sqlite3.connect(tmp_path / "out" / ".cleancorpus" / "state.sqlite")
    assert con.execute("SELECT COUNT(*) FROM files").fetchone() == (0,)  # not finished: not recorded
    con.close()


def test_binary_bytes_on_stdin_are_quarantined_as_binary_not_garbled(tmp_path: Path) -> None:
    data = b"\xff\xfe\x00bin\x01\x02\n" + orjson.dumps({"id": "s", "text": "Kept."}) + b"\n"
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "-", "-c", str(config), "-o", str(tmp_path / "out")],
        input=data,
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [{"id": "s", "text": "Kept."}]
    (bad,) = _lines(tmp_path / "out" / "rejected.jsonl")
    # decoded as UTF-16 (its BOM) these bytes read "戀湩ȁ"
    assert (bad["id"], bad["reason"]) == ("-:1", "binary data (NUL bytes) at line 1")
    assert bad["text"] == "\\xff\\xfe\\x00bin\\x01\\x02"


def test_parquet_input_written_as_parquet_keeps_the_metadata_and_fields_stages_add(tmp_path: Path) -> None:
    # The input's schema has no column for them: the metadata field and a user stage's field were dropped
    # unsaid. They are columns now (the metadata as JSON strings, as for other inputs).
    (tmp_path / "in").mkdir()
    source = _parquet(tmp_path / "in" / "part.parquet", 30, 8)
    config = load_config_data(
        {
            "input": {"id_field": "doc_id", "text_field": "content"},
            "output": {"metadata_field": "meta"},
            "stages": [{"stage": "example_stage:WordCountField"}, {"stage": "normalize"}, {"stage": "language"}],
        }
    )
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    out = pq.read_table(tmp_path / "out" / "part.parquet")
    assert out.schema.names == [*source.schema.names, "meta", "words"]
    assert out.schema.field("score").type == pa.float32() and out.schema.field("words").type == pa.int64()
    rows = out.to_pylist()
    assert [r["doc_id"] for r in rows] == [f"d{i}" for i in range(30) if i % 7]  # every row kept is there
    assert all(r["words"] == len(r["content"].split()) for r in rows)
    assert all("language" in json.loads(r["meta"]) for r in rows)


def test_a_field_that_comes_after_parquet_rows_were_written_is_refused_not_dropped() -> None:
    import io

    from pipeline.formats import PARQUET_BATCH_ROWS, ParquetOutput, UnwritableRecord

    schema = pa.schema([pa.field("id", pa.string()), pa.field("text", pa.string())])
    buf = io.BytesIO()
    out = ParquetOutput(buf, schema)
    out.write({"id": "a", "text": "A.", "lang": "en"})  # before anything is written: a new column
    for i in range(PARQUET_BATCH_ROWS):
        out.write({"id": f"r{i}", "text": "R."})
    with pytest.raises(UnwritableRecord, match="'score' is not a column"):
        out.write({"id": "late", "text": "L.", "score": 1.0})
    out.close()
    table = pq.read_table(io.BytesIO(buf.getvalue()))
    assert table.num_rows == PARQUET_BATCH_ROWS + 1 and table.column("lang").to_pylist()[:2] == ["en", None]


def test_an_abandoned_parquet_output_leaves_no_file_and_no_traceback(tmp_path: Path) -> None:
    # A failed run aborts its current output: the pyarrow writer, left open, wrote to the closed file when
    # collected ("Exception ignored in: ParquetWriter.__del__" on stderr).
    import gc
    import sys

    from pipeline.formats import PARQUET_BATCH_ROWS
    from pipeline.io import OutputWriter

    (tmp_path / "in").mkdir()
    _parquet(tmp_path / "in" / "part.parquet", 5, 5)
    [f] = [f for f in discover([str(tmp_path / "in")])[0] if f.rel == "part.parquet"]
    cfg = InputConfig(id_field="doc_id", text_field="content")
    writer = OutputWriter(f, tmp_path / "out", cfg, None)
    for i in range(PARQUET_BATCH_ROWS + 1):  # a row group is written: the pyarrow writer is open
        writer.write(Document(f"d{i}", "text", f.rel, record={"doc_id": f"d{i}", "content": "x"}))
    unraisable: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        writer.abort()
        del writer
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == [] and not list((tmp_path / "out").glob("*"))


def test_wrong_compression_behind_html_gz_gets_a_naming_hint(tmp_path: Path) -> None:
    # It got the decompressor's words ("Not a gzipped file (b'<!')"), where a .jsonl.gz gets a hint.
    import zstandard

    page = b"<!DOCTYPE html><html><body><p>" + b"A paragraph of plain text on a page. " * 20 + b"</p></body></html>"
    src = tmp_path / "in"
    src.mkdir()
    (src / "plain.html.gz").write_bytes(b"\n  " + page)
    (src / "zstd.html.gz").write_bytes(zstandard.ZstdCompressor().compress(page))
    (src / "table.html.gz").write_bytes(b"PAR1" + bytes(40))
    (src / "junk.html.gz").write_bytes(b"junk, not gzip")
    (src / "ok.html.gz").write_bytes(gzip.compress(page, mtime=0))
    result = run(EXTRACT_ONLY, [str(src)], tmp_path / "out")
    reasons = {r["source"]: r["reason"] for r in map(json.loads, (tmp_path / "out" / "rejected.jsonl").open())}
    assert reasons == {
        "plain.html.gz": "uncompressed HTML in a file named plain.html.gz: name it *.html to read it",
        "zstd.html.gz": "zstd-compressed data in a file named zstd.html.gz: decompress it to *.html to read it",
        "table.html.gz": "a Parquet file in a file named table.html.gz: name it *.parquet to read it",
        "junk.html.gz": "cannot read file: Not a gzipped file (b'ju')",  # unknown data: as before
    }
    assert result.quarantined == 4 and result.documents_out == 1  # ok.html.gz read as before
