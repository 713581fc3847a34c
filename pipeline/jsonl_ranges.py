"""A plain JSONL file read by ranges of whole lines, for the local workers of the first pass and the stream.

At ``--workers 2`` the main process read and parsed every document and pickled its text to a worker (first pass:
~0.15 s of CPU on 40 MB, holding the GIL the warm-up thread needs too; stream: ~0.2 s, and 39 MB of tasks), and
the worker unpickled it. Now the main process only cuts the file into ranges of whole lines (``ranges``: ~1 MB
each in the first pass, ~0.5 MB in the stream, a few ms in all) and each worker reads and parses its own ranges
(``range_documents``), line by line as ``io._read_jsonl`` does (``runner._Range``, ``runner._StreamRange``).

The one thing a line cannot decide alone is the decoding of a line that is not UTF-8: ``io._reread_line``
tries the encoding found for the file's earlier lines first. Such a line comes back as its bytes
(``Refused``) and the main process reads it in order (``refused_document``), carrying that encoding along.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import orjson

from pipeline.config import InputConfig
from pipeline.document import Document
from pipeline.io import InputFile, _misnamed, _reread_line, _wide_jsonl, line_document

RANGE_BYTES = 1 << 20  # (~110 web pages: ~40 tasks on 40 MB, each ~10 ms of a worker's time)
# Smaller files are sent as documents, several in one task, as before: a task a file would cost more than
# the reading saves where there are many small files (a task's round trip and garbage collection, ~1 ms).
MIN_FILE_BYTES = RANGE_BYTES // 4


def stream_range_bytes(f: InputFile) -> int:
    """The size of the stream's ranges of ``f`` (``runner._StreamRange``): half the first pass's (a thirty-second
    of the file, 256 kB to 512 kB: ~50 web pages, as many as a batch of documents read here), so that the last
    range, which one worker runs while the other may wait, is short."""
    return min(RANGE_BYTES // 2, max(MIN_FILE_BYTES, f.size // 32))


class Refused(NamedTuple):
    """A line orjson refused whose reading may depend on the file's earlier lines (not UTF-8)."""

    line_no: int
    raw: bytes


def splittable(f: InputFile) -> bool:
    """Whether ``f``'s documents are to be read by ranges of lines: an uncompressed JSONL file of at least
    ``MIN_FILE_BYTES``, not in UTF-16/32 (whose lines do not split at b"\\n") and not misnamed
    (``io._read_jsonl`` gives such a file one record)."""
    if f.format != "jsonl" or f.compression is not None or f.size < MIN_FILE_BYTES:
        return False
    try:
        with open(f.path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False  # (the reader quarantines it)
    return _misnamed(f, head) is None and _wide_jsonl(head) is None


def ranges(f: InputFile, size: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(start, end, number of its first line) of consecutive ranges of whole lines covering ``f``, each
    ``size`` bytes or a little less (a line longer than that makes its range longer); by default a sixteenth
    of the file, at least ``MIN_FILE_BYTES`` and at most ``RANGE_BYTES`` (a file of a few MB in a few ranges
    kept one worker busy while the other waited). Only a block of ``size`` bytes is held at a time, however
    long a line is (the workers read the bytes)."""
    size = size or min(RANGE_BYTES, max(MIN_FILE_BYTES, f.size // 16))
    block = bytearray(size)  # (one buffer: a new 1 MB bytes object a read is 256 page faults)
    with open(f.path, "rb", buffering=0) as fh:
        start = at = 0  # where the range starts; where the block read next starts
        line_no = 1
        while n := fh.readinto(block):
            cut = block.rfind(b"\n", 0, n)  # (the blocks since ``start`` before this one hold none)
            if cut >= 0:
                end = at + cut + 1
                yield start, end, line_no
                line_no += _newlines(block, cut + 1)
                start = end
            at += n
        if at > start:  # a last line without its newline
            yield start, at, line_no


def _newlines(block: bytearray, end: int) -> int:
    """The line breaks in ``block[:end]``: found one by one (memchr) while the lines are long, as web pages are
    (``bytes.count`` looks at every byte: ``ranges`` over 40 MB of web text took 13.5 ms, now 4.6, the first pass
    and the stream each, in this process), counted in one pass from where they turn out short (``_SHORT_LINE``
    bytes or less on average so far)."""
    n = 0
    at = block.find(b"\n", 0, end)
    while at >= 0:
        n += 1
        if at < n * _SHORT_LINE and n >= 16:
            return n + block.count(b"\n", at + 1, end)
        at = block.find(b"\n", at + 1, end)
    return n


_SHORT_LINE = 1024  # (bytes: a find costs ~0.1-0.3 us in Python, count ~0.6 ns a byte of a bytearray)


def read_range(f: InputFile, start: int, end: int) -> bytes:
    """The bytes of ``f`` from ``start`` to ``end`` (fewer if the file is shorter now)."""
    with open(f.path, "rb", buffering=0) as fh:
        parts = []
        while start < end:
            data = os.pread(fh.fileno(), end - start, start)
            if not data:
                break
            parts.append(data)
            start += len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def range_documents(
    data: bytes, line_no: int, f: InputFile, cfg: InputConfig, spans: list[tuple[int, int]] | None = None
) -> list[Document | Refused]:
    """The documents of the whole lines in ``data`` (the first is line ``line_no`` of ``f``), made as
    ``io._read_jsonl`` makes them; a line whose reading depends on the earlier lines as ``Refused``. ``spans``
    (if given) gets each one's line's (start, end) in ``data`` (without its line break)."""
    # The lines are parsed where they are in ``data`` (memoryview slices): ``data.split`` copied every line, ~0.012
    # s of the ~0.075 s the lines of 40 MB of web text took to parse. A line is made bytes only where it is kept or
    # read otherwise (refused, malformed, not an object, a big number).
    out: list[Document | Refused] = []
    view = memoryview(data)
    size = len(data)
    at = 0  # where the next line starts in data
    while at < size:
        cut = data.find(b"\n", at)
        end = size if cut < 0 else cut  # (the file's last line may have no newline)
        number, start = line_no, at
        line_no += 1
        at = end + 1
        while end > start and data[end - 1] == 13:  # (rstrip(b"\r\n"): a line holds no b"\n")
            end -= 1
        if (data[start] if end > start else 32) != 123 and not data[start:end].strip():  # ("{": not blank)
            continue
        try:
            record = orjson.loads(view[start:end])
        except orjson.JSONDecodeError as err:
            raw = data[start:end]
            # Only a line that is not UTF-8 is decoded with the encoding of the file's earlier lines (and
            # changes it); NUL bytes refuse a line before that (io._decode_line, io.decode_bytes).
            if b"\x00" not in raw and not _utf8(raw):
                out.append(Refused(number, raw))
            elif (doc := _reread_line(raw, number, err, None, f, cfg)[0]) is not None:
                out.append(doc)
        else:
            out.append(line_document(view[start:end], record, number, f, cfg))
        if spans is not None and len(spans) < len(out):
            spans.append((start, end))
    return out


def refused_document(
    refused: Refused, known: str | None, f: InputFile, cfg: InputConfig
) -> tuple[Document | None, str | None]:
    """The document of a ``Refused`` line (None: none) and the encoding for the file's later lines, given
    ``known``, the one the earlier lines left (as ``io._read_jsonl`` reads it)."""
    try:
        orjson.loads(refused.raw)
    except orjson.JSONDecodeError as err:
        return _reread_line(refused.raw, refused.line_no, err, known, f, cfg)
    raise AssertionError("a refused line parsed")  # pragma: no cover - range_documents refuses only those


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
