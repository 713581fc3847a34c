"""The first pass's local workers read plain JSONL files by ranges of lines (pipeline/jsonl_ranges.py)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from conftest import CORPORA

from pipeline import executors, jsonl_ranges, runner
from pipeline.cli import cli
from pipeline.config import InputConfig, default_config
from pipeline.document import Document
from pipeline.executors import ProcessExecutor, SerialExecutor, Shared
from pipeline.io import InputFile, decode_bytes, discover, read_documents

# The line whose encoding only the file's earlier lines tell: alone it is taken for cp1250.
_GROSSE = b'{"id": "grosse", "text": "Gr\xf6\xdfe"}'


def _mixed_lines() -> list[bytes]:
    """Lines of every kind io._read_jsonl tells apart."""
    long_text = "A line of a long document. " * 40
    return [
        b"\xef\xbb\xbf" + orjson.dumps({"id": "bom", "text": "After the BOM."}),
        b"",
        b"   ",
        orjson.dumps({"id": "crlf", "text": "Windows line end.", "url": "https://a.example/x"}) + b"\r",
        b"[1, 2]",
        b'{"id": "cut", "text": ',
        b'{"id": "lone", "text": "broken \\ud800 surrogate"}',
        b'{"id": "big", "text": "big number", "n": 123456789012345678901234, "f": 1.5}',
        '{"id": "fr", "text": "Ça coûte 5 € et la crème brûlée est très bonne, naïve et âgée."}'.encode("cp1252"),
        b'{"id": "nul", "text": "a\x00b"}',
        b'{"id": "no-text"}',
        b'{"id": "null-text", "text": null}',
        b'{"id": "number-text", "text": 7}',
        b'{"id": "empty", "text": "  "}',
        b'{"text": "no id"}',
        orjson.dumps({"id": "long", "text": long_text}),
        b'"tr\xe8s bon"',
        _GROSSE,
        orjson.dumps({"id": "last", "text": "No newline after me."}),
    ]


def _as_tuple(doc: Document) -> tuple[Any, ...]:
    rejected = doc.rejected
    return (
        doc.id,
        doc.text,
        doc.source,
        doc.original,
        doc.record,
        doc.meta,
        doc.line_no,
        None if rejected is None else (rejected.stage, rejected.reason, rejected.quarantined),
    )


def _by_ranges(f: InputFile, cfg: InputConfig, size: int) -> list[Document]:
    """The file's documents as the first pass at local workers reads them: ranges, then the refused lines here."""
    docs: list[Document] = []
    known: str | None = None
    for start, end, line_no in jsonl_ranges.ranges(f, size):
        data = jsonl_ranges.read_range(f, start, end)
        for entry in jsonl_ranges.range_documents(data, line_no, f, cfg):
            if isinstance(entry, jsonl_ranges.Refused):
                doc, known = jsonl_ranges.refused_document(entry, known, f, cfg)
                if doc is None:
                    continue
                entry = doc
            docs.append(entry)
    return docs


@pytest.mark.parametrize("size", [16, 100, 333, 1 << 20])
def test_documents_read_by_ranges_are_those_the_reader_reads(tmp_path: Path, size: int) -> None:
    """Every kind of line (a BOM, blank lines, CRLF, not an object, malformed, a lone surrogate, a big integer,
    cp1252, NUL, missing or non-string text, no id, no newline at the end), cut into ranges of any size (16
    bytes: a range a line), gives the same documents, numbered the same, as reading the file whole; the cp1252
    line that alone would be taken for cp1250 is read with the encoding of the line before, in another range."""
    assert decode_bytes(_GROSSE)[1] != "cp1252"  # (what the test relies on)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(_mixed_lines()))
    (f,), _ = discover([str(path)])
    cfg = InputConfig(max_doc_chars=500)
    whole = [_as_tuple(doc) for doc in read_documents(f, cfg)]
    assert [_as_tuple(doc) for doc in _by_ranges(f, cfg, size)] == whole
    assert {doc[0]: doc[5].get("encoding") for doc in whole}["grosse"] == "cp1252"
    assert sum(doc[7] is not None for doc in whole) >= 9  # (the rejected ones are numbered too)
    pieces = list(jsonl_ranges.ranges(f, size))
    assert pieces[0][0] == 0 and pieces[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert len(pieces) == 2 if size > 1000 else len(pieces) >= {16: 15, 100: 8, 333: 3}[size]  # (2: the last line)


def test_a_ranges_line_breaks_are_counted_as_bytes_count_counts_them(tmp_path: Path) -> None:
    """``ranges`` numbers each range's first line by the line breaks before it (``_newlines``: found one by one
    while the lines are long, counted in one pass from where they turn out short): the same count as
    ``bytes.count`` for web pages, short lines, long then short lines, blank lines and none, in any part of a
    block; and the same line numbers as reading the file whole."""
    web = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes()[:300_000]
    short = b"".join(b'{"id": "%d", "text": "%s"}\n' % (i, b"word " * (i % 30)) for i in range(3000))
    blocks = [web, short, web[:150_000] + short, short[:20_000] + web, b"\n" * 5000, b"x" * 5000, b""]
    for data in blocks:
        block = bytearray(data)
        for end in {0, 1, len(block) // 3, len(block) // 2, len(block)}:
            assert jsonl_ranges._newlines(block, end) == block.count(b"\n", 0, end)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(web[: web.rfind(b"\n") + 1] + short)
    (f,), _ = discover([str(path)])
    whole = [doc.line_no for doc in read_documents(f, InputConfig())]
    for size in (4096, 65536):
        numbered = []
        for start, end, line_no in jsonl_ranges.ranges(f, size):
            data = jsonl_ranges.read_range(f, start, end)
            numbered += [d.line_no for d in jsonl_ranges.range_documents(data, line_no, f, InputConfig())]
        assert numbered == whole


def test_only_plain_jsonl_files_of_some_size_are_read_by_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(jsonl_ranges, "MIN_FILE_BYTES", 10)
    line = b'{"id": "a", "text": "some text here"}\n'
    files = {
        "plain.jsonl": line * 3,
        "small.jsonl": line[:8],
        "utf16.jsonl": line.decode().encode("utf-16") * 3,
        "gzip.jsonl": b"\x1f\x8b" + line * 3,
        "a.txt": line * 3,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    found, _ = discover([str(tmp_path)])
    assert {f.rel: jsonl_ranges.splittable(f) for f in found} == {
        "a.txt": False,
        "gzip.jsonl": False,
        "plain.jsonl": True,
        "small.jsonl": False,
        "utf16.jsonl": False,
    }


class _InProcessPool(ProcessExecutor):
    """A local executor's first pass without processes: every task and result pickled as between processes."""

    def __init__(self) -> None:
        self.forks = False
        self.tasks: list[Any] = []

    def share(self, obj: Any) -> Shared:
        return Shared(blob=pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            self.tasks.append(item)
            task = pickle.loads(pickle.dumps(fn, protocol=5))
            yield pickle.loads(pickle.dumps(task(pickle.loads(pickle.dumps(item)))))

    def close(self) -> None:
        pass


def test_the_first_pass_at_local_workers_reads_plain_jsonl_by_ranges_and_learns_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local workers read a plain JSONL file themselves (this process only cuts it into ranges): the parts
    merged, the unchanged bits noted per document, are those of the first pass that reads every document here;
    a small file is still read here and sent; lines in a legacy encoding are read here, in order."""
    monkeypatch.setattr(jsonl_ranges, "MIN_FILE_BYTES", 1000)
    monkeypatch.setattr(jsonl_ranges, "RANGE_BYTES", 4000)
    pages = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines()[:60]
    mojibake = orjson.dumps({"id": "moji", "text": "CafÃ© menu\nA line of text here.", "url": "https://m.example/"})
    templated = [  # a cookie line on every site (corpus-wide), a menu on one site's pages (per site)
        orjson.dumps(
            {
                "id": f"t{i}",
                "url": f"https://{'shop' if i % 2 else f'site{i}'}.example/p{i}",
                "text": f"Home | Shop | Contact\nPage {i} has words of its own, {i * 7} of them.\n"
                "We use cookies to improve your experience on our site.",
            }
        )
        for i in range(10)
    ]
    lines = [*pages[:20], *templated[:5], *_mixed_lines()[:-1], mojibake, *pages[20:40], *templated[5:], *pages[40:]]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b'{"id": "b1", "text": "Short."}\n{"id": "b2", "text": "Menu\\nHi."}\n')  # small
    files, _ = discover([str(tmp_path)])
    config = default_config()
    specs = config.enabled_stages()
    read_here: list[str] = []

    def read(chosen: list[InputFile]) -> Iterator[Document]:
        read_here.extend(f.rel for f in chosen)
        return (doc for f in chosen for doc in read_documents(f, config.input))

    def first_pass(executor: Any, ranges: InputConfig | None) -> tuple[Any, ...]:
        stages = runner.build_stages(specs)
        unchanged = runner._first_pass(executor, specs, stages, files, read, "text", None, ranges)
        (stage,) = [s for s in stages if s.needs_prepare]
        return unchanged, stage.recurring, stage.recurring_by_site  # type: ignore[attr-defined]

    serial = first_pass(SerialExecutor(), config.input)
    assert read_here == ["a.jsonl", "b.jsonl"]
    read_here.clear()
    pool = _InProcessPool()
    local = first_pass(pool, config.input)
    assert read_here == ["b.jsonl"]
    assert local == serial
    assert serial[0]["a.jsonl"].count(0) < len(serial[0]["a.jsonl"]) and serial[1] and serial[2]
    ranges = [task for task in pool.tasks if isinstance(task, runner._Range)]
    assert len(ranges) > 10 and {task.file.rel for task in ranges} == {"a.jsonl"}
    read_here.clear()
    assert first_pass(_InProcessPool(), None) == serial  # (Ray, --limit: no ranges)
    assert read_here == ["a.jsonl", "b.jsonl"]


def test_a_range_a_worker_cannot_read_ends_its_files_documents(tmp_path: Path) -> None:
    """As io.read_documents: one quarantined record for the file (numbered), nothing after it."""
    from pipeline.stages.boilerplate import BoilerplateStage

    f = InputFile(tmp_path / "gone.jsonl", "gone.jsonl", "jsonl", None)
    read = runner._RangesRead(BoilerplateStage(), 0, [], [], InputConfig())
    result = runner._prepare_range(Shared(value=[BoilerplateStage()]), 0, InputConfig(), runner._Range(f, 0, 10, 1))
    assert isinstance(result, str) and result.startswith("cannot read file")
    assert list(read.entries(f, result)) == [(("gone.jsonl", 0), 0, None, False)]
    assert list(read.entries(f, (([None], [0], [True]), [], [1]))) == []  # (a later range of the file)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_two_worker_run_reading_ranges_writes_what_one_worker_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    monkeypatch.setattr(executors, "start_method", lambda: start)  # (spawn: with a live progress display)
    monkeypatch.setattr(jsonl_ranges, "MIN_FILE_BYTES", 1000)
    monkeypatch.setattr(jsonl_ranges, "RANGE_BYTES", 8000)
    pages = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines()[:40]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([*pages[:20], *_mixed_lines(), *pages[20:], pages[3], pages[30]]))  # (2 copies)
    cut: list[str] = []  # the files this process cut into ranges
    real = jsonl_ranges.ranges
    monkeypatch.setattr(jsonl_ranges, "ranges", lambda f, size=None: cut.append(f.rel) or real(f, size))
    outputs, counts = [], []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "-q", "--workers", str(workers)])
        assert result.exit_code == 3, result.output  # (some records are quarantined)
        outputs.append([(out / name).read_bytes() for name in ("in.jsonl", "removed.jsonl", "rejected.jsonl")])
        counts.append(json.loads((out / "report.json").read_text())["documents"])
    assert cut == ["in.jsonl", "in.jsonl"]  # (at 2 workers only: the first pass, then the stream)
    assert outputs[0] == outputs[1] and counts[0] == counts[1]
    assert counts[0]["in"] == 40 + 17 + 2 and counts[0]["out"] > 30
    # a copy dedup rejected in the main process: its text as read (read again at 2 workers) in rejected.jsonl
    rejected = [orjson.loads(line) for line in outputs[1][2].splitlines()]
    copies = [r for r in rejected if r["stage"] == "dedup"][-2:]
    assert [r["line"] for r in copies] == [60, 61]
    assert [r["text"] for r in copies] == [orjson.loads(pages[i])["text"] for i in (3, 30)]


def _stream_outcome(
    executor: Any, files: list[InputFile], by_ranges: bool
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], dict[str, int], dict[tuple[str, int], bool]]:
    """A run's first pass and stream over ``files`` (the default stages): each document as it leaves the stream
    (with its removed.jsonl lines), the stages' statistics (but their seconds), the kinds rejected as read, and
    the documents whose text as read stayed in a worker (``Unread``: whether it was rejected here)."""
    config = default_config()
    specs = config.enabled_stages()
    stages = runner.build_stages(specs)
    rejections: dict[str, int] = {}

    def read(chosen: list[InputFile]) -> Iterator[Document]:
        for f in chosen:
            for doc in read_documents(f, config.input):
                if doc.rejected is not None:
                    kind = runner.reason_kind(doc.rejected.reason)
                    rejections[kind] = rejections.get(kind, 0) + 1
                yield doc

    def first_pass_read(chosen: list[InputFile]) -> Iterator[Document]:
        return (doc for f in chosen for doc in read_documents(f, config.input))

    by_line: runner.Unchanged = {}
    unchanged = runner._first_pass(executor, specs, stages, files, first_pass_read, "text", None, config.input, by_line)
    if by_ranges:
        assert runner.stream_reads_ranges(executor, stages)
        docs: Iterable[Any] = runner._stream_input(files, read, unchanged, by_line)
        batches = runner._stream(executor, specs, stages, docs, "text", config.input, rejections)
    else:
        batches = runner._stream(executor, specs, stages, runner._marked(read(files), unchanged), "text")
    made: list[tuple[Any, ...]] = []
    totals = {i: runner.StageStats(s.name) for i, s in enumerate(stages)}
    by_rel = {f.rel: f for f in files}
    unread: dict[tuple[str, int], bool] = {}
    for batch in batches:
        for position, st in batch.stats.items():
            totals[position].merge(st)
        for j, doc in enumerate(batch.docs):
            rendered = b"" if batch.removed_lines is None else batch.removed_lines[j]
            # the text as read where the main process needs it: its length, rejected.jsonl (read again if Unread),
            # and the record's fields but its text (which the output replaces), in their order
            chars = runner.original_chars(doc)
            if runner._UNREAD in doc.scratch:
                unread[doc.source, doc.line_no] = doc.rejected is not None
            doc.original = runner.original_text(doc, by_rel[doc.source], config.input)
            if doc.record is not None:
                doc.record = {key: None if key == "text" else value for key, value in doc.record.items()}
            made.append((*_as_tuple(doc), rendered + runner.removed_lines(doc), chars))
    stats = [{k: v for k, v in totals[i].to_json().items() if k != "seconds"} for i in range(len(stages))]
    return made, stats, rejections, unread


def test_the_streams_workers_read_plain_jsonl_by_ranges_and_make_the_same_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At local workers the stream's workers read a plain JSONL file of some size themselves, by ranges: every
    document (every kind of line: quarantined, rejected, a legacy encoding read here in order, duplicates) leaves
    the stream as when this process reads the file and sends the documents, in the same order, with the same
    removed.jsonl lines, statistics and counts of documents rejected as read; a small file and a .txt file
    between the ranges are read here; the first pass's unchanged bits reach the ranges by line."""
    monkeypatch.setattr(jsonl_ranges, "MIN_FILE_BYTES", 1000)
    monkeypatch.setattr(jsonl_ranges, "RANGE_BYTES", 6000)
    pages = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines()[:50]
    mojibake = orjson.dumps({"id": "moji", "text": "CafÃ© menu\nA line of text here.", "url": "https://m.example/"})
    lines = [*pages[:20], *_mixed_lines()[:-1], mojibake, pages[3], *pages[20:45], pages[30], b"", *pages[45:]]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b'{"id": "b1", "text": "Short."}\n{"id": "b2", "text": "Menu\\nHi."}\n')
    (tmp_path / "c.txt").write_text("A text file of one document.\nWith two lines.\n")
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(pages[10:30]))  # (no newline at its end; copies of a.jsonl's)
    files, _ = discover([str(tmp_path)])
    serial = _stream_outcome(SerialExecutor(), files, by_ranges=False)
    pool = _InProcessPool()
    local = _stream_outcome(pool, files, by_ranges=True)
    assert local[0] == serial[0]
    assert local[1:3] == serial[1:3]
    assert len(serial[0]) == len(lines) - 3 + 2 + 1 + 20  # (a.jsonl's three blank lines make no document)
    assert any(doc[7] is not None and doc[7][0] == "dedup" for doc in serial[0])  # (the copies)
    assert all(doc[3] == "" or doc[9] == len(doc[3]) for doc in serial[0])
    assert serial[2]  # (quarantined and empty lines)
    streamed = [task for task in pool.tasks if isinstance(task, runner._StreamRange)]
    assert {task.file.rel for task in streamed} == {"a.jsonl", "d.jsonl"}
    assert len([task for task in streamed if task.file.rel == "a.jsonl"]) > 10
    assert any(task.masks.count(0) < len(task.masks) for task in streamed)  # (encoding left most pages as they were)
    # the texts as read of the pages the stages changed stayed in the workers; those dedup rejected read again
    unread = local[3]
    assert len(unread) > 40 and any(unread.values()) and not serial[3]
    sent = [task for task in pool.tasks if isinstance(task, list)]  # (documents read here, in both passes)
    assert sorted(doc[2] for task in sent for doc in task) == ["b.jsonl"] * 4 + ["c.txt"] * 2


def test_a_stream_range_a_worker_cannot_read_ends_its_files_documents(tmp_path: Path) -> None:
    """As io.read_documents: one quarantined record for the file, counted as rejected as read, nothing after it."""
    f = InputFile(tmp_path / "gone.jsonl", "gone.jsonl", "jsonl", None)
    rejections: dict[str, int] = {}
    read = runner._StreamRangesRead([], [], [], None, InputConfig(), rejections)
    result = runner._run_range(Shared(value=[]), [], None, InputConfig(), runner._StreamRange(f, 0, 10, 1))
    assert isinstance(result, str) and result.startswith("cannot read file")
    (doc,) = read.batch(runner._StreamRange(f, 0, 10, 1), result).docs
    assert (doc.id, doc.source, doc.line_no, doc.original) == ("gone.jsonl", "gone.jsonl", 0, "")
    assert doc.rejected is not None and doc.rejected.quarantined and doc.rejected.reason == result
    assert rejections == {"cannot read file": 1}
    later = ([], {}, None, None, [], {})
    assert read.batch(runner._StreamRange(f, 10, 20, 2), later).docs == []
    # a file that cannot be cut: its ranges so far, then the record
    (tmp_path / "dir.jsonl").mkdir()
    (task,) = runner._stream_ranges_of(InputFile(tmp_path / "dir.jsonl", "dir.jsonl", "jsonl", None), b"")
    assert task.error is not None and task.error.startswith("cannot read file")


@pytest.mark.parametrize("size", [16, 1 << 20])
def test_lines_read_in_place_in_a_range_are_those_the_reader_reads(tmp_path: Path, size: int) -> None:
    """``range_documents`` parses each line where it is in the range (no copy): blank lines of carriage returns,
    blanks before an object, carriage returns after it, a last line without its newline, and lines it must make
    bytes of (not an object, a big integer) give the documents and line spans the whole-file reader gives."""
    lines = [
        b"\r\r",
        b' \t{"id": "indented", "text": "Blanks before the object."}\r\r',
        b"",
        b'{"id": "big", "text": "big", "n": 123456789012345678901234, "f": 0.5}',
        b"[3]",
        b'{"id": "x", "text": "one"}',
        b'{"id": "last", "text": "No newline after me."}',
    ]
    path = tmp_path / "edge.jsonl"
    path.write_bytes(b"\n".join(lines))
    (f,), _ = discover([str(path)])
    cfg = InputConfig()
    whole = [_as_tuple(doc) for doc in read_documents(f, cfg)]
    assert [_as_tuple(doc) for doc in _by_ranges(f, cfg, size)] == whole
    assert [doc[0] for doc in whole] == ["indented", "big", "edge.jsonl:5", "x", "last"]
    data = path.read_bytes()
    spans: list[tuple[int, int]] = []
    jsonl_ranges.range_documents(data, 1, f, cfg, spans)
    assert [data[a:b] for a, b in spans] == [line.rstrip(b"\r") for line in lines if line.strip()]
