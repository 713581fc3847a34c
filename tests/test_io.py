"""Reading and writing: formats, carried fields, quarantined bad input, atomic output."""

from __future__ import annotations

import codecs
import gzip
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from pipeline.config import ConfigError, InputConfig, load_config_data
from pipeline.io import discover, read_documents
from pipeline.runner import run

NORMALIZE_ONLY = load_config_data({"stages": [{"stage": "normalize"}]})


def _jsonl(records: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_round_trip_keeps_other_fields_and_order(tmp_path: Path, suffix: str) -> None:
    records = [{"id": f"r{i}", "text": f"Text  number {i}.  \n\n\n\nEnd.", "url": f"https://x/{i}"} for i in range(5)]
    data = _jsonl(records)
    if suffix == ".jsonl.gz":
        data = gzip.compress(data)
    elif suffix == ".jsonl.zst":
        data = zstandard.ZstdCompressor().compress(data)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / f"part{suffix}").write_bytes(data)
    result = run(NORMALIZE_ONLY, [str(tmp_path / "in")], tmp_path / "out")
    out = (tmp_path / "out" / f"part{suffix}").read_bytes()
    if suffix == ".jsonl.gz":
        out = gzip.decompress(out)
    elif suffix == ".jsonl.zst":
        out = zstandard.ZstdDecompressor().stream_reader(out).read()
    got = [orjson.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in records]
    assert got[2] == {"id": "r2", "text": "Text number 2.\n\nEnd.", "url": "https://x/2"}
    assert result.documents_out == 5


def test_configurable_field_names(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(_jsonl([{"doc_id": "x1", "body": "Hello   world."}]))
    config = load_config_data(
        {"input": {"id_field": "doc_id", "text_field": "body"}, "stages": [{"stage": "normalize"}]}
    )
    run(config, [str(tmp_path / "a.jsonl")], tmp_path / "out")
    assert _lines(tmp_path / "out" / "a.jsonl") == [{"doc_id": "x1", "body": "Hello world."}]


def test_bad_records_are_quarantined_and_the_run_goes_on(tmp_path: Path) -> None:
    good = orjson.dumps({"id": "ok", "text": "Fine text."})
    lines = [
        good,
        b'{"id": "broken", "text": ',
        orjson.dumps({"id": "notext"}),
        b"[1, 2]",
        orjson.dumps({"id": "num", "text": 5}),
        b'{"id": "bad-utf8", "text": "caf\xe9"}',
        orjson.dumps({"id": "empty", "text": "  \n "}),
        orjson.dumps({"id": "ok2", "text": "More text."}),
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = run(NORMALIZE_ONLY, [str(tmp_path / "in.jsonl")], tmp_path / "out")
    # line 6 is not UTF-8: it is decoded (test_non_utf8_jsonl_lines_are_decoded), not lost
    assert [r["id"] for r in _lines(tmp_path / "out" / "in.jsonl")] == ["ok", "bad-utf8", "ok2"]
    rejected = {r["id"]: r for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert rejected["in.jsonl:2"]["reason"].startswith("malformed JSON at line 2")
    assert rejected["in.jsonl:2"]["line"] == 2 and rejected["in.jsonl:2"]["text"] == '{"id": "broken", "text": '
    assert rejected["notext"]["reason"] == "field 'text' missing at line 3"
    assert rejected["in.jsonl:4"]["reason"] == "not a JSON object at line 4"
    assert rejected["num"]["reason"] == "field 'text' not a string (int) at line 5"
    assert rejected["empty"]["reason"] == "empty document"
    assert all(r["stage"] == "input" and r["source"] == "in.jsonl" for r in rejected.values())
    assert result.documents_rejected == 5
    assert result.report["documents"]["rejected_at_input"]["malformed JSON at line N"] == 1


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_jsonl_lines_are_read_as_without_their_line_break(tmp_path: Path, newline: bytes) -> None:
    # orjson reads each line with its line break (JSON allows whitespace after the value: no copy of the line);
    # what is shown or reported of a line is as it was without it: orjson's messages count positions in it.
    lines = [
        b'{"id": "a", "text": "Fine text.", "n": 1.5, "x": {"y": [1, {"z": 2.0}]}}',
        b'{"id": "broken", "text": ',
        b'{"id": "broken2", "text": "x"',
        b"[1, 2]",
        b"null",
        b"   \t",
        b"\x0b\x0c",
        b"",
        b'{"id": "c", "text": "More.", "big": 123456789012345678901234, "f": 0.5}',
        b'{"id": "d", "text": "caf\xe9"}',
        b'{"id": "e", "text": "End."} ',
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(newline.join(lines))  # (the last line without one)
    got = [
        (d.id, d.text, d.record, d.line_no, d.rejected and (d.rejected.reason, d.original))
        for d in read_documents(discover([str(path)])[0][0], InputConfig())
    ]
    expected_reasons = {}
    for number, line in enumerate(lines, 1):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as err:
            expected_reasons[number] = f"malformed JSON at line {number}: {err}"
    assert [g[0] for g in got] == ["a", "in.jsonl:2", "in.jsonl:3", "in.jsonl:4", "in.jsonl:5", "c", "d", "e"]
    assert got[0][2] == {"id": "a", "text": "Fine text.", "n": 1.5, "x": {"y": [1, {"z": 2.0}]}}
    assert got[1][4] == (expected_reasons[2], '{"id": "broken", "text": ')
    assert got[2][4] == (expected_reasons[3], '{"id": "broken2", "text": "x"')
    assert got[3][4] == ("not a JSON object at line 4", "[1, 2]")
    assert got[4][4] == ("not a JSON object at line 5", "null")
    assert got[5][2]["big"] == 123456789012345678901234 and got[5][3] == 9  # (exact: read again by json)
    assert got[6][1] == "café" and got[6][3] == 10
    assert got[7][1] == "End." and got[7][3] == 11 and got[7][4] is None


def test_null_text_and_structured_ids_are_reported_as_json(tmp_path: Path) -> None:
    records = [
        {"id": "nul", "text": None},
        {"id": "gone"},
        {"id": ["a", 1], "text": None},
        {"id": {"k": "v"}, "text": "Kept under a mapping id."},
        {"id": 7, "text": None},
    ]
    (tmp_path / "in.jsonl").write_bytes(_jsonl(records))
    run(NORMALIZE_ONLY, [str(tmp_path / "in.jsonl")], tmp_path / "out")
    reasons = {r["id"]: r["reason"] for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert reasons == {
        "nul": "field 'text' null at line 1",
        "gone": "field 'text' missing at line 2",
        '["a",1]': "field 'text' null at line 3",
        "7": "field 'text' null at line 5",  # an int id reads as before
    }
    # the kept record is written back unchanged
    assert _lines(tmp_path / "out" / "in.jsonl") == [{"id": {"k": "v"}, "text": "Kept under a mapping id."}]
    (f,), _ = discover([str(tmp_path / "in.jsonl")])
    assert [d.id for d in read_documents(f, InputConfig())][3] == '{"k":"v"}'


def test_non_utf8_jsonl_lines_are_decoded_with_one_detection_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.io

    detections: list[bytes] = []

    def counting_detect(data: bytes) -> tuple[str, str] | None:
        detections.append(data)
        return detect(data)

    detect = pipeline.io._detect
    monkeypatch.setattr(pipeline.io, "_detect", counting_detect)
    texts = [
        "Le café est très bon à Paris, même en été.",
        "Où est la bibliothèque ? À côté de l’église, près du marché.",
        "Déjà vu : ça arrive même aux élèves très appliqués.",
    ]
    lines = [orjson.dumps({"id": f"fr{i}", "text": t}).decode().encode("cp1252") for i, t in enumerate(texts)]
    lines.insert(1, orjson.dumps({"id": "utf8", "text": "Grüße aus Köln."}))  # a UTF-8 line among them
    lines.append('{"id": "cut", "text": "très'.encode("cp1252"))  # decodable, still not JSON
    lines.append('"très bon"'.encode("cp1252"))  # JSON, but not an object
    (tmp_path / "fr.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    config = load_config_data({"stages": [{"stage": "encoding"}, {"stage": "normalize"}]})
    result = run(config, [str(tmp_path / "fr.jsonl")], tmp_path / "out")
    out = {r["id"]: r["text"] for r in _lines(tmp_path / "out" / "fr.jsonl")}
    assert out == {"fr0": texts[0], "utf8": "Grüße aus Köln.", "fr1": texts[1], "fr2": texts[2]}
    assert len(detections) == 1  # the encoding found for the first line is reused for the others
    assert result.report["stages"][0]["counters"]["decoded-cp1252"] == 3
    rejected = {r["line"]: r for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert rejected[5]["reason"].startswith("malformed JSON at line 5")
    assert rejected[5]["text"] == '{"id": "cut", "text": "très'
    assert rejected[6]["reason"] == "not a JSON object at line 6" and rejected[6]["text"] == '"très bon"'


def test_utf8_bom_opening_a_jsonl_file_is_dropped(tmp_path: Path) -> None:
    first, second = _jsonl([{"id": "a", "text": "First."}]), _jsonl([{"id": "b", "text": "Second."}])
    (tmp_path / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + first + second)
    (tmp_path / "blank.jsonl").write_bytes(codecs.BOM_UTF8 + b"\n" + second)  # a BOM on a line of its own
    (tmp_path / "late.jsonl").write_bytes(first + codecs.BOM_UTF8 + second)  # not at the start: not JSON
    result = run(NORMALIZE_ONLY, [str(tmp_path)], tmp_path / "out")
    assert [r["id"] for r in _lines(tmp_path / "out" / "bom.jsonl")] == ["a", "b"]
    assert [r["id"] for r in _lines(tmp_path / "out" / "blank.jsonl")] == ["b"]
    assert [r["id"] for r in _lines(tmp_path / "out" / "late.jsonl")] == ["a"]
    (bad,) = _lines(tmp_path / "out" / "rejected.jsonl")
    assert bad["source"] == "late.jsonl" and bad["reason"].startswith("malformed JSON at line 2")
    assert result.documents_rejected == 1


def _zst_frame(records: list[dict], newline_at_end: bool = True) -> bytes:
    data = _jsonl(records)
    return zstandard.ZstdCompressor(write_checksum=True).compress(data if newline_at_end else data[:-1])


def test_truncated_zstd_jsonl_keeps_the_records_before_the_cut_and_reports_it_once(tmp_path: Path) -> None:
    records = [{"id": str(i), "text": f"Document {i}, text {i * 7919 % 10007}."} for i in range(20_000)]
    whole = _zst_frame(records)
    cut = whole[: len(whole) // 2]
    # what the decoder gives for the cut file: whole lines, then part of one
    part = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    complete = part.count(b"\n")
    assert 0 < complete < len(records) and not part.endswith(b"\n")
    (tmp_path / "cut.jsonl.zst").write_bytes(cut)
    # a second frame cut inside its header: the output stops at the end of a line
    (tmp_path / "frames.jsonl.zst").write_bytes(_zst_frame(records[:10]) + _zst_frame(records[10:20])[:6])
    # complete: several frames, a skippable one between, no newline at the very end
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    whole_frames = _zst_frame(records[:5]) + skippable + _zst_frame(records[5:9], newline_at_end=False)
    (tmp_path / "ok.jsonl.zst").write_bytes(whole_frames)
    result = run(NORMALIZE_ONLY, [str(tmp_path)], tmp_path / "out")
    out = tmp_path / "out"

    def kept(name: str) -> list[str]:
        data = zstandard.ZstdDecompressor().stream_reader((out / name).read_bytes()).read()
        return [orjson.loads(line)["id"] for line in data.splitlines()]

    assert kept("cut.jsonl.zst") == [str(i) for i in range(complete)]
    assert kept("frames.jsonl.zst") == [str(i) for i in range(10)]
    assert kept("ok.jsonl.zst") == [str(i) for i in range(9)]
    rejected = {r["source"]: r for r in _lines(out / "rejected.jsonl")}
    assert sorted(rejected) == ["cut.jsonl.zst", "frames.jsonl.zst"]  # once each, nothing for ok.jsonl.zst
    cut_line = complete + 1
    assert rejected["cut.jsonl.zst"]["reason"] == (
        f"corrupt compressed file: truncated zstd stream (the file ends at byte {len(cut):,}, inside the frame that "
        f"starts at byte 0), line {cut_line} is cut short; the lines after it are in the block the file ends in, "
        "which zstd cannot decompress"
    )
    assert rejected["cut.jsonl.zst"]["line"] == cut_line
    assert rejected["cut.jsonl.zst"]["text"] == part.splitlines()[-1].decode()  # the partial line, not parsed
    frame2 = len(_zst_frame(records[:10]))
    assert rejected["frames.jsonl.zst"]["reason"] == (
        f"corrupt compressed file: truncated zstd stream (the file ends at byte {frame2 + 6:,}, inside the frame "
        f"that starts at byte {frame2:,}), after line 10; the lines after it are in the block the file ends in, "
        "which zstd cannot decompress"
    )
    assert result.documents_rejected == 2
    assert result.report["documents"]["rejected_at_input"] == {"corrupt compressed file": 2}


def test_truncated_small_zstd_jsonl_says_why_nothing_was_read_and_gzip_keeps_its_lines(tmp_path: Path) -> None:
    # Under 128 KB of text the frame is one block, and zstd decodes a block only whole: a cut gives nothing, and the
    # reason says so (it said only "the file ends inside the frame at byte 0", which read as a bug); gzip, which
    # streams, keeps the lines before the same cut. Both are quarantines (exit 3).
    records = [{"id": str(i), "text": f"Document {i}, text {i * 7919 % 10007}."} for i in range(500)]
    whole = _zst_frame(records)
    (tmp_path / "small.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    gz = gzip.compress(_jsonl(records), mtime=0)
    (tmp_path / "small.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    result = run(NORMALIZE_ONLY, [str(tmp_path)], tmp_path / "out")
    out = tmp_path / "out"
    assert zstandard.ZstdDecompressor().stream_reader((out / "small.jsonl.zst").read_bytes()).read() == b""
    assert len(gzip.decompress((out / "small.jsonl.gz").read_bytes()).splitlines()) > 100
    rejected = {r["source"]: r for r in _lines(out / "rejected.jsonl")}
    assert rejected["small.jsonl.zst"]["reason"] == (
        f"corrupt compressed file: truncated zstd stream (the file ends at byte {len(whole) // 2:,}, inside the frame "
        "that starts at byte 0); no line could be read: zstd decompresses only whole blocks (up to 128 KB of text) "
        "and the file ends in its first"
    )
    assert rejected["small.jsonl.gz"]["reason"].startswith("corrupt compressed file: ")
    assert result.quarantined == 2  # what makes the command exit 3


def test_wrong_compression_behind_a_compressed_name_gets_a_naming_hint(tmp_path: Path) -> None:
    # It got the decompressor's words ("zstd decompress error: Unknown frame descriptor", "Not a gzipped file
    # (b'{\"')"), where a .jsonl holding gzip/zstd/Parquet gets a hint how to name it.
    data = _jsonl([{"id": "a", "text": "Some text."}, {"id": "b", "text": "More text."}])
    (tmp_path / "plain.jsonl.gz").write_bytes(data)
    (tmp_path / "plain.jsonl.zst").write_bytes(codecs.BOM_UTF8 + data)
    (tmp_path / "zstd.jsonl.gz").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "gzip.jsonl.zst").write_bytes(gzip.compress(data, mtime=0))
    (tmp_path / "ok.jsonl.gz").write_bytes(gzip.compress(data, mtime=0))
    result = run(NORMALIZE_ONLY, [str(tmp_path)], tmp_path / "out")
    reasons = {r["source"]: r["reason"] for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert reasons == {
        "plain.jsonl.gz": "uncompressed JSONL in a file named plain.jsonl.gz: name it *.jsonl to read it",
        "plain.jsonl.zst": "uncompressed JSONL in a file named plain.jsonl.zst: name it *.jsonl to read it",
        "zstd.jsonl.gz": "zstd-compressed data in a file named zstd.jsonl.gz: name it *.jsonl.zst to read it",
        "gzip.jsonl.zst": "gzip-compressed data in a file named gzip.jsonl.zst: name it *.jsonl.gz to read it",
    }
    assert result.quarantined == 4 and result.documents_out == 2  # ok.jsonl.gz read as before


def test_binary_jsonl_lines_say_binary_and_show_their_bytes_escaped(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"id": "ok", "text": "Fine text."}),
        b"\xff\xfe\x00bin\x01\x02",  # a UTF-16 BOM: decoded as UTF-16 this read as CJK
        b"\x00\x01\x02\x03 valid UTF-8 with NUL",
        bytes(range(1, 9)) * 4 + b"ctl",  # valid UTF-8, no NUL, but mostly control bytes
        b'{"id": "x", "text": "a\x01"}',  # one control byte: text, just not JSON
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = run(NORMALIZE_ONLY, [str(tmp_path / "in.jsonl")], tmp_path / "out")
    assert [r["id"] for r in _lines(tmp_path / "out" / "in.jsonl")] == ["ok"]
    rejected = {r["line"]: (r["reason"], r["text"]) for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert rejected[2] == ("binary data (NUL bytes) at line 2", "\\xff\\xfe\\x00bin\\x01\\x02")
    assert rejected[3] == ("binary data (NUL bytes) at line 3", "\\x00\\x01\\x02\\x03 valid UTF-8 with NUL")
    assert rejected[4] == (
        "binary data (control bytes) at line 4",
        "\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08" * 4 + "ctl",
    )
    assert rejected[5][0].startswith("malformed JSON at line 5") and rejected[5][1] == '{"id": "x", "text": "a\x01"}'
    assert result.report["documents"]["rejected_at_input"] == {"binary data": 3, "malformed JSON at line N": 1}


def test_lone_surrogate_escapes_in_jsonl_become_u_fffd_in_every_string_and_the_document_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python's json.dumps writes a broken string's lone surrogates as escapes (scraped data has them);
    # orjson refuses them, which lost the whole document as a malformed line.
    import pipeline.io

    lines = [
        json.dumps({"id": "a", "text": "caf\ud800 ok"}).encode(),  # a lone high surrogate
        json.dumps({"id": "b\udc80", "text": "low \udfff\ud800 two", "tags": ["x\ud83d"], "k\udc00": 1}).encode(),
        json.dumps({"id": "pair", "text": "emoji \U0001f600 \ud83d"}).encode(),  # a pair is one character
        b'{"id": "upper", "text": "A\\uD800B"}',
        b'{"id": "literal", "text": "not an escape: \\\\ud800"}',  # a backslash, then the letters ud800
        b'{"id": "good", "text": "Fine text."}',
        b'{"id": "bad", "text": "x\\ud800" oops}',  # a lone surrogate does not excuse other errors
        '{"id": "cp1252", "text": "caf\u00e9 \\ud800"}'.encode("cp1252"),  # decoded, then repaired
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    reread: list[int] = []
    original = pipeline.io._reread_line
    monkeypatch.setattr(pipeline.io, "_reread_line", lambda raw, n, *a: (reread.append(n), original(raw, n, *a))[1])
    (f,), _ = discover([str(tmp_path / "in.jsonl")])
    docs = {d.id: d for d in read_documents(f, InputConfig())}
    assert reread == [1, 2, 3, 4, 7, 8]  # the slow path only for the lines orjson refuses
    assert {i: d.meta.get("lone_surrogates") for i, d in docs.items() if not d.rejected} == {
        "a": 1,
        "b\ufffd": 5,  # the id, two in the text, the list, the key: every string of the record
        "pair": 1,
        "upper": 1,
        "literal": None,
        "good": None,
        "cp1252": 1,
    }
    assert docs["cp1252"].meta["encoding"]  # (not UTF-8: detected, both recorded)
    assert docs["in.jsonl:7"].rejected

    config = load_config_data({"stages": [{"stage": "encoding"}, {"stage": "normalize"}], "output": {}})
    result = run(config, [str(tmp_path / "in.jsonl")], tmp_path / "out")
    out = (tmp_path / "out" / "in.jsonl").read_bytes()
    assert "\ud800".encode("utf-8", "surrogatepass") not in out  # valid UTF-8 (decoding below is strict)
    assert _lines(tmp_path / "out" / "in.jsonl") == [
        {"id": "a", "text": "caf\ufffd ok"},
        {"id": "b\ufffd", "text": "low \ufffd\ufffd two", "tags": ["x\ufffd"], "k\ufffd": 1},
        {"id": "pair", "text": "emoji \U0001f600 \ufffd"},
        {"id": "upper", "text": "A\ufffdB"},
        {"id": "literal", "text": "not an escape: \\ud800"},
        {"id": "good", "text": "Fine text."},
        {"id": "cp1252", "text": "caf\u00e9 \ufffd"},
    ]
    (rejected,) = _lines(tmp_path / "out" / "rejected.jsonl")  # none at stage output: all were writable
    assert rejected["line"] == 7 and rejected["stage"] == "input"
    assert rejected["reason"].startswith("malformed JSON at line 7")
    assert rejected["text"] == lines[6].decode()  # as it was in the file
    assert result.report["stages"][0]["counters"]["lone-surrogates-replaced"] == 9


def test_a_misnamed_jsonl_file_is_one_quarantine_and_utf16_jsonl_is_read(tmp_path: Path) -> None:
    # A .jsonl that is really gzip (a download saved under the wrong name) was quarantined line by line
    # as undecodable bytes, garbage in each record; a UTF-16 JSONL (Windows tools) as NUL bytes.
    records = [{"id": f"r{i}", "text": f"Ceci est le document numéro {i}, écrit en français."} for i in range(300)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in records)
    src = tmp_path / "in"
    src.mkdir()
    (src / "gzipped.jsonl").write_bytes(gzip.compress(data.encode()))
    (src / "zstd.jsonl").write_bytes(zstandard.ZstdCompressor().compress(data.encode()))
    (src / "le.jsonl").write_bytes(data.encode("utf-16"))  # with its BOM
    first = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:20])
    (src / "be.jsonl").write_bytes(codecs.BOM_UTF16_BE + first.encode("utf-16-be"))
    result = run(NORMALIZE_ONLY, [str(src)], tmp_path / "out")
    rejected = _lines(tmp_path / "out" / "rejected.jsonl")
    assert [(r["id"], r["reason"]) for r in rejected] == [
        ("gzipped.jsonl", "gzip-compressed data in a file named gzipped.jsonl: name it *.jsonl.gz to read it"),
        ("zstd.jsonl", "zstd-compressed data in a file named zstd.jsonl: name it *.jsonl.zst to read it"),
    ]
    assert _lines(tmp_path / "out" / "le.jsonl") == records
    assert _lines(tmp_path / "out" / "be.jsonl") == records[:20]
    assert result.report["documents"]["quarantined"] == 2


def test_txt_inputs_non_utf8_binary_and_too_large(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "cp1252.txt").write_bytes("Größe und Maße: “Grüße” aus Köln — 12 €.".encode("cp1252"))
    (src / "utf16.txt").write_bytes("Текст в UTF-16 с BOM.".encode("utf-16"))
    (src / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (src / "big.txt").write_text("word " * 300, encoding="utf-8")
    (src / "notes.md").write_text("ignored", encoding="utf-8")
    config = load_config_data(
        {"input": {"max_doc_chars": 1000}, "stages": [{"stage": "encoding"}, {"stage": "normalize"}]}
    )
    result = run(config, [str(src)], tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "sub" / "cp1252.txt").read_text(encoding="utf-8") == "Größe und Maße: “Grüße” aus Köln — 12 €.\n"
    assert (out / "utf16.txt").read_text(encoding="utf-8") == "Текст в UTF-16 с BOM.\n"
    assert not (out / "binary.txt").exists() and not (out / "big.txt").exists()
    reasons = {r["id"]: r["reason"] for r in _lines(out / "rejected.jsonl")}
    assert reasons["binary.txt"] == "binary file (NUL bytes)"
    assert reasons["big.txt"].startswith("document too large")
    assert result.report["inputs"]["skipped"] == [{"path": str(src / "notes.md"), "reason": "unsupported file type"}]
    # cp1250 and cp1252 decode these bytes alike; either guess gives the same text
    decoded = {k for k in result.report["stages"][0]["counters"] if k.startswith("decoded-")}
    assert decoded in ({"decoded-cp1252", "decoded-utf_16"}, {"decoded-cp1250", "decoded-utf_16"})


def test_discover_is_sorted_recursive_and_skips_the_output_folder(tmp_path: Path) -> None:
    for rel in ["b/2.txt", "a.txt", "b/1.jsonl", "out/old.txt", ".hidden/x.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    files, _ = discover([str(tmp_path)], exclude=tmp_path / "out")
    assert [f.rel for f in files] == ["a.txt", "b/1.jsonl", "b/2.txt"]
    with pytest.raises(ConfigError):
        discover([str(tmp_path / "missing")])


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    # `run in/a.jsonl in/a.jsonl` or `run in in/a.jsonl` (overlapping globs) stopped with "two inputs would
    # write the same output file ...: in/a.jsonl and in/a.jsonl", exit 2
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"id": "a", "text": "A short document."}\n', encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_text("Another one.", encoding="utf-8")
    a = str(tmp_path / "in" / "a.jsonl")
    files, skipped = discover([str(tmp_path / "in"), a, a])
    assert [f.rel for f in files] == ["a.jsonl", "b.txt"]
    assert skipped == [(a, "named twice, read once")] * 2
    result = run(NORMALIZE_ONLY, [a, a], tmp_path / "out")
    assert result.report["documents"]["in"] == 1 and _lines(tmp_path / "out" / "a.jsonl") == [
        {"id": "a", "text": "A short document."}
    ]


def test_discover_follows_symlinked_folders_and_reads_a_folder_once(tmp_path: Path) -> None:
    src, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    for rel in ["in/a/x.txt", "elsewhere/y.jsonl"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    (src / "a" / "loop").symlink_to(src / "a", target_is_directory=True)
    files, skipped = discover([str(src)])
    assert [f.rel for f in files] == ["a/x.txt", "linked/y.jsonl"]
    assert skipped == [(str(src / "a" / "loop"), f"same folder as {src / 'a'}, read once")]


def test_discover_lists_a_folder_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subfolder that cannot be listed (permissions; root reads everything, so os.scandir is made to
    refuse it) is listed in skipped with the reason, not left out without a word."""
    for rel in ["in/a.txt", "in/locked/b.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, skipped = discover([str(tmp_path / "in")])
    assert [f.rel for f in files] == ["a.txt"]
    assert skipped == [(str(tmp_path / "in" / "locked"), "unreadable folder: Permission denied")]


def test_discover_skips_a_fifo_in_a_folder_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    """A named pipe (or socket, device) named like an input would block the run for ever on open: it is
    listed in skipped, and one named as the input itself (/dev/stdin, a shell's <(...)) is an error,
    not an input folder with nothing in it."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("x", encoding="utf-8")
    os.mkfifo(src / "pipe.jsonl")
    files, skipped = discover([str(src)])
    assert [f.rel for f in files] == ["a.txt"]
    assert skipped == [(str(src / "pipe.jsonl"), "not a regular file: a FIFO")]
    with pytest.raises(ConfigError, match="input is a FIFO, not a file or folder"):
        discover([str(src / "pipe.jsonl")])


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_run_goes_on(tmp_path: Path) -> None:
    """A name with bytes that are not UTF-8 (a Latin-1 file system, an old archive) is held by Python with
    lone surrogates, which the state database cannot store: the whole run failed (exit 1), every cron run
    after it too. The file is listed in skipped, with its bytes escaped (report.json is JSON)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("A document with a plain name.", encoding="utf-8")
    bad = os.fsdecode(bytes(src) + b"/caf\xe9.txt")
    Path(bad).write_text("A document whose name is Latin-1.", encoding="utf-8")
    Path(os.fsdecode(bytes(src) + b"/notes\xff.md")).write_text("x", encoding="utf-8")
    result = run(NORMALIZE_ONLY, [str(src)], tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").exists()
    assert result.report["inputs"]["skipped"] == [
        {"path": f"{src}/caf\\xe9.txt", "reason": "file name is not valid UTF-8 (rename it to read it)"},
        {"path": f"{src}/notes\\xff.md", "reason": "unsupported file type"},
    ]
    with pytest.raises(ConfigError, match="file name is not valid UTF-8"):
        discover([bad])


def test_input_files_are_never_modified_and_no_partial_files_remain(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_bytes(_jsonl([{"id": "1", "text": "Some   text\n\n\n\nhere."}]))
    before = (src.read_bytes(), os.stat(src).st_mtime_ns)
    run(NORMALIZE_ONLY, [str(src)], tmp_path / "out")
    assert (src.read_bytes(), os.stat(src).st_mtime_ns) == before
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".cleancorpus", "a.jsonl", "rejected.jsonl", "removed.jsonl", "report.html", "report.json"]
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_audit_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello.", encoding="utf-8")
    config = load_config_data({"output": {"audit": False}, "stages": [{"stage": "normalize"}]})
    run(config, [str(tmp_path / "a.txt")], tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".cleancorpus", "a.txt", "report.html", "report.json"]
    assert not (tmp_path / "out" / ".cleancorpus" / "audit").exists()


def test_audit_parts_are_kept_only_for_files_with_records_and_a_stale_one_goes(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_bytes(_jsonl([{"id": "1", "text": "Fine  text."}, {"id": "2", "text": ""}]))
    (src / "b.jsonl").write_bytes(_jsonl([{"id": "3", "text": "Clean text."}]))
    out = tmp_path / "out"
    run(NORMALIZE_ONLY, [str(src)], out)
    audit = out / ".cleancorpus" / "audit"
    # b.jsonl has nothing to audit: no empty part files are made for it (nor for a's removals)
    assert sorted(p.name for p in audit.iterdir()) == ["a.jsonl.rejected.jsonl"]
    assert [r["id"] for r in _lines(out / "rejected.jsonl")] == ["2"]
    # a.jsonl changes and nothing in it is rejected now: its part from the first run must not survive
    (src / "a.jsonl").write_bytes(_jsonl([{"id": "1", "text": "Fine text, changed."}]))
    run(NORMALIZE_ONLY, [str(src)], out)
    assert list(audit.iterdir()) == []
    assert (out / "rejected.jsonl").read_bytes() == b""
    assert not list(out.rglob("*.partial"))


def test_reader_yields_rejected_document_for_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    files, _ = discover([str(path)])
    (doc,) = list(read_documents(files[0], InputConfig()))
    assert doc.rejected is not None and doc.rejected.stage == "input"


def test_output_folder_may_not_overwrite_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello.", encoding="utf-8")
    with pytest.raises(ConfigError, match="is the input folder"):
        run(NORMALIZE_ONLY, [str(tmp_path)], tmp_path)
    with pytest.raises(ConfigError, match="would overwrite the input file"):
        run(NORMALIZE_ONLY, [str(tmp_path / "a.txt")], tmp_path)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "Hello."


def test_integers_beyond_64_bits_in_carried_fields_are_written_back_exactly(tmp_path: Path) -> None:
    # orjson reads an integer beyond 64 bits as a float: a tweet or order id carried along came out as
    # 1.2345678901234568e+22 (found by a QA round). Such lines are read with the json module and written back
    # as they were; records without one are untouched; Parquet, which has no such integers, quarantines the
    # record with the field named instead of rounding it.
    big = (
        b'{"id":"a","text":"Numbers in the text 1234567890123456789012345 stay text.","big":12345678901234567890123,'
        b'"neg":-9223372036854775809,"u64":18446744073709551615,"nested":{"x":[123456789012345678901234567890,1.5]}}'
    )
    plain = b'{"id":"b","text":"A plain record without large numbers.","n":42,"f":1.5}'
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(big + b"\n" + plain + b"\n")
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run(NORMALIZE_ONLY, [str(tmp_path / "in")], out, workers=workers)
        lines = (out / "a.jsonl").read_bytes().splitlines()
        assert lines == [big, plain]
        assert json.loads(lines[0])["big"] == 12345678901234567890123
    parquet = load_config_data({"stages": [{"stage": "normalize"}], "output": {"format": "parquet"}})
    result = run(parquet, [str(tmp_path / "in")], tmp_path / "pq")
    assert result.documents_out == 1 and result.quarantined == 1
    (rejected,) = _lines(tmp_path / "pq" / "rejected.jsonl")
    assert rejected["id"] == "a" and "'big'" in rejected["reason"] and "64-bit" in rejected["reason"]


@pytest.mark.parametrize(("lang", "line", "page"), [("tr", 22, "cp1254"), ("lt", 14, "cp1257"), ("pl", 10, "cp1250")])
def test_short_legacy_encoded_text_decodes_to_the_code_page_whose_words_read(
    tmp_path: Path, lang: str, line: int, page: str
) -> None:
    # Two real sentences in their language's usual code page (found by a QA round): charset-normalizer scores
    # cp1252 as well as the right page, which differs in a few letters (Turkish "çalışmaya" read as
    # "çalýþmaya"); the candidate whose non-ASCII words are frequent words of a language is taken.
    from conftest import CORPORA

    sentences = (CORPORA / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    text = sentences[line] + "\n" + sentences[line + 1] + "\n"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes(text.encode(page))
    run(NORMALIZE_ONLY, [str(tmp_path / "in")], tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text(encoding="utf-8") == text


def test_utf32_and_bomless_utf16_text_is_read_and_other_nul_data_stays_binary(tmp_path: Path) -> None:
    # UTF-32 with its BOM and UTF-16 without one were quarantined as "binary file (NUL bytes)";
    # BOM-less UTF-16 is read only on strong evidence: other data with NULs stays binary.
    text = "Größe und Maße: Grüße aus Köln, écrit en français — 12 €.\nZweite Zeile.\n"
    src = tmp_path / "in"
    src.mkdir()
    (src / "u32le.txt").write_bytes(text.encode("utf-32"))  # BOM, little-endian
    (src / "u32be.txt").write_bytes(codecs.BOM_UTF32_BE + text.encode("utf-32-be"))
    (src / "u16le.txt").write_bytes(text.encode("utf-16-le"))  # no BOM
    (src / "u16be.txt").write_bytes(text.encode("utf-16-be"))
    (src / "b-short.txt").write_bytes("Hi!".encode("utf-16-le"))  # too little evidence
    cyrillic = "Текст в UTF-16 без BOM, строка за строкой.\n"
    greek = "Κείμενο σε UTF-16 χωρίς BOM, γραμμή προς γραμμή.\n"
    (src / "u16-cyrillic.txt").write_bytes(cyrillic.encode("utf-16-le"))  # high bytes 0x04 and NUL
    (src / "u16-greek.txt").write_bytes(greek.encode("utf-16-be"))
    quote = "Ein Zitat: 一 heißt eins. " + "Und so weiter, Zeile für Zeile. " * 5  # U+4E00: a NUL low byte
    (src / "u16-quote.txt").write_bytes(quote.encode("utf-16-le"))
    (src / "b-cjk.txt").write_bytes("中文文本，没有字节顺序标记。日本語のテキスト、한국어 텍스트 ".encode("utf-16-le"))
    (src / "b-numbers.txt").write_bytes(bytes(b for i in range(500) for b in (i % 256, 0)))  # 16-bit numbers
    (src / "b-controls.txt").write_bytes(("text\x01\x02 " * 20).encode("utf-16-le"))
    (src / "b-odd.txt").write_bytes(text.encode("utf-16-le") + b"x")
    records = [{"id": f"r{i}", "text": f"Document numéro {i}, écrit en français."} for i in range(5)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    (src / "j32.jsonl").write_bytes(data.encode("utf-32"))
    (src / "j16le.jsonl").write_bytes(data.encode("utf-16-le"))
    (src / "j16be.jsonl").write_bytes(data.encode("utf-16-be"))
    result = run(NORMALIZE_ONLY, [str(src)], tmp_path / "out")
    out = tmp_path / "out"
    for name in ["u32le", "u32be", "u16le", "u16be"]:
        assert (out / f"{name}.txt").read_text(encoding="utf-8") == text, name
    assert (out / "u16-cyrillic.txt").read_text(encoding="utf-8") == cyrillic
    assert (out / "u16-greek.txt").read_text(encoding="utf-8") == greek
    assert (out / "u16-quote.txt").read_text(encoding="utf-8") == quote.rstrip() + "\n"
    for name in ["j32", "j16le", "j16be"]:
        assert _lines(out / f"{name}.jsonl") == records, name
    reasons = {r["id"]: r["reason"] for r in _lines(out / "rejected.jsonl")}
    assert reasons == {
        "b-short.txt": "binary file (NUL bytes)",
        "b-cjk.txt": "binary file (NUL bytes)",  # (high bytes of many blocks: not read without a BOM)
        "b-numbers.txt": "binary file (NUL bytes)",
        "b-controls.txt": "binary file (NUL bytes)",
        "b-odd.txt": "binary file (NUL bytes)",
    }
    assert result.report["documents"]["quarantined"] == 5


@pytest.mark.parametrize("compression", [None, "zst"])
def test_a_files_write_back_is_started_every_write_back_bytes_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    """An AtomicFile starts its write-back to disk (``start_write_back``, not waited for) each time WRITE_BACK_BYTES
    more were given to it, so that its commit's sync has little left to wait for; what it holds is unchanged."""
    import sys

    from pipeline import io as io_module

    started: list[str] = []
    real = io_module.start_write_back

    def noting(fd: int) -> None:
        started.append(os.readlink(f"/proc/self/fd/{fd}") if sys.platform.startswith("linux") else str(fd))
        real(fd)

    monkeypatch.setattr(io_module, "WRITE_BACK_BYTES", 1000)
    monkeypatch.setattr(io_module, "start_write_back", noting)
    path = tmp_path / "out.jsonl"
    written = io_module.AtomicFile(path, compression)
    chunks = [b"%05d" % i * 60 for i in range(10)]  # 300 bytes each
    for chunk in chunks:
        written.write(chunk)
    written.commit()
    assert len(started) == 2  # after 1,200 and 2,400 bytes; not for the last 600
    if sys.platform.startswith("linux"):
        assert io_module._sync_file_range() is not None
        assert all(name.endswith("out.jsonl.partial") for name in started)
    data = path.read_bytes()
    if compression:
        data = zstandard.ZstdDecompressor().stream_reader(data).read()
    assert data == b"".join(chunks)
