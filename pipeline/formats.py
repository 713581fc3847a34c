"""Readers for web archives (WARC, WET), HTML pages and Parquet, and the Parquet writer.

``pipeline.io`` dispatches here by format. Like the other readers, these never raise for one bad
record: a truncated archive, a corrupt gzip member or a broken record becomes a Document already
rejected at stage ``input`` (quarantined) whose reason names the byte offset, and reading goes on
with the next record that can be found.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from pipeline.config import InputConfig
from pipeline.document import Document
from pipeline.records import check_size, quarantined, record_document

if TYPE_CHECKING:
    from pipeline.io import InputFile

HTML_TYPES = ("text/html", "application/xhtml+xml")
GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_RESYNCS = 100  # a file this broken is given up on after this many corrupt spots
PARQUET_BATCH_ROWS = 1024

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


# ---------------------------------------------------------------- HTML decoding


def _codec(name: str | None) -> str | None:
    """A Python codec for a declared charset, or None if unknown. ISO-8859-1/ASCII declarations mean
    windows-1252, as browsers (WHATWG) read them."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    if codec in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return "gb18030" if codec in ("gb2312", "gbk") else codec  # supersets, as browsers read them


def declared_charset(html: bytes) -> str | None:
    """The charset a page declares in a ``<meta>`` tag of its first 4 KiB."""
    m = _META_CHARSET.search(html[:4096])
    return m.group(1).decode("ascii") if m else None


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str | None, str | None, str | None]:
    """(text, encoding if not UTF-8, error) for HTML bytes.

    Valid UTF-8 is taken as UTF-8 (a wrong Latin-1 declaration is the usual mistake); otherwise the
    declared charset (HTTP header, then ``<meta>``) if it decodes the bytes; otherwise detection."""
    from pipeline.io import decode_bytes

    try:
        return data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"), None, None
    except UnicodeDecodeError:
        pass
    for declared in (http_charset, declared_charset(data)):
        codec = _codec(declared)
        if codec and codec not in ("utf-8", "utf-8-sig"):
            try:
                return data.decode(codec), codec, None
            except UnicodeDecodeError:
                continue
    return decode_bytes(data)


def _html_document(
    doc_id: str, source: str, data: bytes, cfg: InputConfig, http_charset: str | None, record: dict[str, Any]
) -> Document:
    if len(data) > cfg.max_doc_chars * 4:
        return quarantined(doc_id, source, f"document too large (over {cfg.max_doc_chars * 4:,} bytes)")
    text, encoding, error = decode_html(data, http_charset)
    if text is None:
        return quarantined(doc_id, source, error or "undecodable")
    record[cfg.id_field] = doc_id
    record[cfg.text_field] = ""
    doc = Document(id=doc_id, text=text, source=source, record=record)
    doc.meta["content_type"] = "text/html"  # the extract stage turns it into text
    if encoding:
        doc.meta["encoding"] = encoding
    return doc


def read_html(f: InputFile, cfg: InputConfig, fh: IO[bytes]) -> Iterator[Document]:
    """One ``.html``/``.htm`` page (optionally gzipped) is one HTML document; its id is the path."""
    data = fh.read(cfg.max_doc_chars * 4 + 1)
    yield _html_document(f.rel, f.rel, data, cfg, None, {})


# ---------------------------------------------------------------- WARC / WET


def _gzip_tail_problem(path: Path, start: int) -> tuple[int, str] | None:
    """Check that the gzip members from ``start`` to the end of the file are complete.

    The WARC reader stops quietly at a member cut short, so this finds a truncated last record
    (or trailing garbage). Only the members after the last record read are decompressed, streaming."""
    with open(path, "rb") as fh:
        fh.seek(start)
        offset = start
        while True:
            member_start = offset
            head = fh.read(3)
            if not head:
                return None
            if head != GZIP_MAGIC:
                return member_start, "data after the last record that is not a gzip member"
            inflater = zlib.decompressobj(wbits=31)
            pending = head
            while not inflater.eof:
                try:
                    inflater.decompress(pending, 0)
                except zlib.error as err:
                    return member_start, f"corrupt gzip member: {err}"
                offset += len(pending)
                pending = fh.read(1 << 20)
                if not pending and not inflater.eof:
                    return member_start, "the archive ends inside this gzip member"
            rest = inflater.unused_data
            offset -= len(rest)  # bytes read past the member's end belong to the next one
            fh.seek(offset)


def _starts_plain_warc(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(5) == b"WARC/"


def _next_sync_point(path: Path, after: int, gzipped: bool) -> int | None:
    """Offset of the next place a record may start (gzip member or ``WARC/`` line) after ``after``."""
    marker = GZIP_MAGIC if gzipped else b"\nWARC/1."
    with open(path, "rb") as fh:
        fh.seek(after)
        pos, tail = after, b""
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            i = buf.find(marker)
            if i >= 0:
                return pos - len(tail) + i + (0 if gzipped else 1)
            tail = buf[-len(marker) + 1 :]
            pos += len(chunk)
    return None


def _archive_record(rec: Any, f: InputFile, cfg: InputConfig) -> Document | None:
    """A document for a conversion record (WET text) or an HTML response/resource; None otherwise."""
    from fastwarc.warc import WarcRecordType

    kind = rec.record_type
    headers = rec.headers
    offset = rec.stream_pos
    doc_id = headers.get("WARC-Record-ID") or f"{f.rel}@{offset}"
    # FastWARC passes over a header block it cannot make sense of: such a record is reported
    missing = [h for h in ("WARC-Type", "Content-Length") if headers.get(h) is None]
    if missing:
        return quarantined(doc_id, f.rel, f"broken record at offset {offset}: no {' or '.join(missing)} header")
    if kind not in (WarcRecordType.conversion, WarcRecordType.response, WarcRecordType.resource):
        return None
    is_html, charset, encoded = False, None, False
    if kind == WarcRecordType.response:
        if not rec.is_http or rec.http_headers is None:
            return None
        is_html = (rec.http_content_type or "").lower() in HTML_TYPES
        charset = rec.http_charset
        encoded = bool(rec.http_headers.get("Content-Encoding") or rec.http_headers.get("Transfer-Encoding"))
    elif kind == WarcRecordType.resource:
        is_html = (headers.get("Content-Type") or "").split(";")[0].strip().lower() in HTML_TYPES
    if kind != WarcRecordType.conversion and not is_html:
        return None  # images, PDFs, robots.txt, wget logs, ...
    limit = cfg.max_doc_chars * 4
    try:
        body = rec.reader.read(limit + 1)
    except OSError as err:  # e.g. a corrupt gzip member inside the record
        return quarantined(doc_id, f.rel, f"broken record at offset {offset}: {err}")
    if len(body) > limit:
        return quarantined(doc_id, f.rel, f"document too large (over {limit:,} bytes) at offset {offset}")
    # content_length is the payload length on the wire; a decoded (gzip, chunked) body differs from it
    if not encoded and len(body) < rec.content_length:
        return quarantined(
            doc_id, f.rel, f"truncated record at offset {offset}: {len(body):,} of {rec.content_length:,} bytes"
        )
    record: dict[str, Any] = {
        cfg.id_field: doc_id,
        "url": (headers.get("WARC-Target-URI") or "").strip("<>") or None,  # WARC/1.0 writers may bracket it
        "date": headers.get("WARC-Date"),
        cfg.text_field: "",
        "warc_type": headers.get("WARC-Type"),
        "warc_offset": offset,
        "warc_headers": dict(headers.items()),
    }
    if is_html:
        if kind == WarcRecordType.response:
            record["http_status"] = rec.http_headers.status_code
            record["http_content_type"] = rec.http_content_type
        return _html_document(doc_id, f.rel, body, cfg, charset, record)
    from pipeline.io import decode_bytes

    text, encoding, error = decode_bytes(body)
    if text is None:
        return quarantined(doc_id, f.rel, f"{error} in record at offset {offset}")
    doc = Document(id=doc_id, text=text, source=f.rel, record=record)
    if encoding:
        doc.meta["encoding"] = encoding
    return check_size(doc, cfg)


def read_archive(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    """WARC and WET files (``.warc``, ``.warc.gz``, ``.warc.wet``, ``.warc.wet.gz``), with FastWARC.

    Conversion records are text documents; HTML responses (and HTML resource records) are HTML
    documents for the extract stage; other records (requests, metadata, images, ...) are skipped.
    A cut or corrupt part is quarantined with its offset and reading resumes at the next record."""
    from fastwarc.warc import ArchiveIterator

    # By its bytes, not only its name: a plain WARC named .warc.gz (FastWARC reads either) has no gzip members to
    # check, and its records, not gzip members, are where reading resumes. (Anything else under a .gz name is
    # taken as gzip, so that damaged data at its start is still reported.)
    gzipped = f.compression == "gz" and not _starts_plain_warc(f.path)
    start, resyncs, last_pos = 0, 0, -1
    # One document is held back: FastWARC ends quietly at a gzip member cut short, so the last record
    # read may be partial; the check of the file's tail below decides.
    pending: Document | None = None
    pending_offset = -1
    # A corrupt spot is reported once reading goes on (or at the end): a restart that fails at once
    # pins it to the record that starts there.
    corrupt: tuple[str, str] | None = None
    while True:
        failed: str | None = None
        read_any = False
        with open(f.path, "rb") as fh:
            fh.seek(start)
            # FastWARC detects gzip itself and reports offsets in the compressed file.
            records = iter(ArchiveIterator(fh, parse_http=True, auto_decode="all"))
            while True:
                try:
                    rec = next(records)
                except StopIteration:
                    break
                except OSError as err:
                    failed = str(err)
                    break
                read_any, last_pos = True, rec.stream_pos
                if corrupt is not None:
                    yield quarantined(f"{f.rel}@{corrupt[0]}", f.rel, corrupt[1])
                    corrupt = None
                doc = _archive_record(rec, f, cfg)
                if doc is not None:
                    if pending is not None:
                        yield pending
                    pending, pending_offset = doc, rec.stream_pos
        if failed is None:
            break
        at = max(last_pos, start)
        if read_any and pending_offset == at and pending is not None and pending.rejected:
            corrupt = None  # the record that broke reading is quarantined already
        elif read_any or corrupt is None:
            corrupt = (str(at), f"corrupt archive after the record at offset {at}: {failed}")
        else:
            corrupt = (str(start), f"corrupt archive record at offset {start}: {failed}")
        if pending is not None:
            yield pending
            pending = None
        resyncs += 1
        nxt = _next_sync_point(f.path, max(last_pos, start) + 1, gzipped) if resyncs <= MAX_RESYNCS else None
        if nxt is None:
            break
        start = nxt
    if corrupt is not None:
        yield quarantined(f"{f.rel}@{corrupt[0]}", f.rel, corrupt[1])
    problem = _gzip_tail_problem(f.path, max(last_pos, 0)) if gzipped and failed is None else None
    if problem is not None and pending is not None and pending_offset == problem[0]:
        if not (pending.rejected and pending.rejected.reason.startswith("truncated")):
            reason = f"truncated record at offset {problem[0]} ({problem[1]})"
            pending = quarantined(pending.id, f.rel, reason)
        problem = None
    if pending is not None:
        yield pending
    if problem is not None:
        offset, reason = problem
        yield quarantined(f"{f.rel}@{offset}", f.rel, f"truncated archive at offset {offset} ({reason})")


# ---------------------------------------------------------------- Parquet


def read_parquet(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    """Rows of a Parquet file, streamed in batches of each row group; ids and texts come from the
    ``input.id_field`` / ``input.text_field`` columns, the other columns are carried through."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f.path)
    except Exception as err:  # not Parquet, or a cut footer
        yield quarantined(f.rel, f.rel, f"unreadable Parquet file: {err}")
        return
    if cfg.text_field not in pf.schema_arrow.names:
        yield quarantined(f.rel, f.rel, f"Parquet file has no column '{cfg.text_field}' (input.text_field)")
        return
    row = 0
    for group in range(pf.num_row_groups):
        try:
            batches = list(pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]))
        except Exception as err:  # a corrupt row group: quarantine it, go on with the next
            rows = pf.metadata.row_group(group).num_rows
            yield quarantined(
                f"{f.rel}#rg{group}", f.rel, f"corrupt row group {group} (rows {row}-{row + rows - 1}): {err}"
            )
            row += rows
            continue
        for batch in batches:
            for record in batch.to_pylist():
                row += 1
                yield record_document(record, f.rel, cfg, row, f"{f.rel}:{row}", "row")


class UnwritableRecord(ValueError):
    """A document's record cannot be written in the output format (nothing of it was written)."""


def field_problem(record: dict[str, Any], err: Exception, default: Any = None) -> str:
    """``err`` (orjson failing on ``record``, with ``default``) as a reason naming the first field JSON
    has no form for."""
    for key, value in record.items():
        try:
            orjson.dumps(value, default=default)
        except TypeError as one:
            return f"field {key!r}: {one}"
    return str(err)


class _BigInt(int):
    """The column type of an integer outside int64 (JSON has them): such a column is written as strings."""


class ParquetOutput:
    """Writes records to a Parquet file through an open binary handle, one row group per batch.

    Parquet input keeps its schema (and metadata). Other inputs (JSONL, text, archives) have no
    schema, and a record late in a file may bring a new field or another type: such records are
    spooled to a temporary file while the column types are unified over *all* records, and the
    Parquet file is written at close. Lists and mappings are stored as JSON strings; a column whose
    values mix types is promoted (int + float -> double, anything else -> string).

    ``write`` raises UnwritableRecord for a record that cannot be written (a value the schema's column
    cannot hold, a null in a non-nullable column, a value JSON has no form for), having written
    nothing of it; it is converted or checked right there, so that writing a batch later cannot fail
    on it (and take its neighbours with it).

    Fields the input's schema lacks are columns too: ``json_fields`` (the metadata field) from the start,
    as JSON strings, and a field a stage adds to the records while no row is written yet (a mapping or
    list as a JSON string, else its value's type). A record that brings a new field after that is
    refused (UnwritableRecord): the field is not dropped unsaid."""

    def __init__(
        self, handle: IO[bytes], schema: Any = None, json_fields: Iterable[str] = (), columns: Iterable[str] = ()
    ) -> None:
        self.handle = handle
        self.schema = schema
        # Without a schema: the columns of an output that gets no record (the id and text fields), as strings.
        # One with no column at all made a dataset read over the output folder lose every column if it took
        # its schema from that file.
        self.empty_columns = tuple(columns)
        self.json_fields: set[str] = set()  # columns of JSON strings the input's schema lacked
        if schema is not None:
            import pyarrow as pa

            for name in json_fields:
                if schema.get_field_index(name) == -1:
                    self.schema = self.schema.append(pa.field(name, pa.string()))
                    self.json_fields.add(name)
        self.columns = set(self.schema.names) if self.schema is not None else set()
        self.rows: list[Any] = []  # with a schema: each record as a one-row record batch
        self.writer: Any = None
        self.spool: IO[bytes] | None = None if schema is not None else tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.column_types: dict[str, set[type]] = {}

    def write(self, record: dict[str, Any]) -> None:
        if self.spool is not None:
            try:
                line = orjson.dumps(record)
            except TypeError as err:  # orjson's JSONEncodeError: a value JSON has no form for
                raise UnwritableRecord(f"cannot be written to Parquet: {field_problem(record, err)}") from None
            types = self.column_types
            for key, value in record.items():
                seen = types.setdefault(key, set())
                if value is not None:
                    seen.add(str if isinstance(value, (dict, list)) else _value_type(value))
            self.spool.write(line + b"\n")
            return
        row = self._row(record)  # (first: it may give self.rows new columns)
        self.rows.append(row)
        if len(self.rows) >= PARQUET_BATCH_ROWS:
            self._write_batches(self.rows)
            self.rows = []

    def _row(self, record: dict[str, Any]) -> Any:
        """``record`` as a one-row record batch of the schema; UnwritableRecord naming the field if it
        does not fit."""
        import pyarrow as pa

        if not self.columns.issuperset(record):
            self._add_fields(record)
        if self.json_fields:
            record = self._as_json_strings(record)
        for field in self.schema:
            problem = _shape_problem(record.get(field.name), field.type, field.nullable)
            if problem is not None:
                raise UnwritableRecord(f"field {field.name!r} cannot be written to Parquet: {problem}")
        errors = (pa.ArrowException, TypeError, ValueError, OverflowError)  # (UnicodeError is a ValueError)
        try:
            return pa.RecordBatch.from_pylist([record], schema=self.schema)
        except errors as err:
            problem = f"cannot be written to Parquet: {err}"
        for field in self.schema:  # which field: the first pyarrow cannot convert alone
            try:
                pa.array([record.get(field.name)], type=field.type)
            except errors as err:
                problem = f"field {field.name!r} cannot be written to Parquet: {err} (column type {field.type})"
                break
        raise UnwritableRecord(problem)

    def _add_fields(self, record: dict[str, Any]) -> None:
        """Columns for the record's fields the schema lacks (see the class), the rows waiting given nulls."""
        import pyarrow as pa

        new = [key for key in record if key not in self.columns]
        if self.writer is not None:
            raise UnwritableRecord(
                f"field {new[0]!r} is not a column of the Parquet output (the input's schema lacks it, "
                "and the rows written before had no such field)"
            )
        for key in new:
            value = record[key]
            if value is None or isinstance(value, (dict, list, tuple)):
                kind = pa.string()
                self.json_fields.add(key)
            else:
                try:
                    kind = pa.array([value]).type
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as err:
                    raise UnwritableRecord(f"field {key!r} cannot be written to Parquet: {err}") from None
            self.schema = self.schema.append(pa.field(key, kind))
            self.columns.add(key)
            self.rows = [
                pa.RecordBatch.from_arrays([*row.columns, pa.nulls(row.num_rows, kind)], schema=self.schema)
                for row in self.rows
            ]

    def _as_json_strings(self, record: dict[str, Any]) -> dict[str, Any]:
        converted = dict(record)
        try:
            _json_strings(converted, self.json_fields)
        except TypeError as err:
            raise UnwritableRecord(f"cannot be written to Parquet: {field_problem(record, err)}") from None
        return converted

    def _write_batches(self, rows: list[Any]) -> None:
        import pyarrow as pa

        self._write_table(pa.Table.from_batches(rows, schema=self.schema).combine_chunks())

    def _write_table(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        if table.num_rows:
            self.writer.write_table(table)

    def close(self) -> None:
        if self.spool is None:
            self._write_batches(self.rows)
            self.rows = []
        else:
            self._write_spooled(self.spool)
        self.writer.close()

    def _write_spooled(self, spool: IO[bytes]) -> None:
        import pyarrow as pa

        seen_types = self.column_types or {key: set() for key in self.empty_columns}
        arrow_types = {key: _unified_arrow_type(seen) for key, seen in seen_types.items()}
        self.schema = pa.schema([pa.field(key, t) for key, t in arrow_types.items()])
        as_string = [key for key, t in arrow_types.items() if t == pa.string()]
        spool.seek(0)
        rows: list[dict[str, Any]] = []
        for line in spool:
            record = orjson.loads(line)
            _json_strings(record, as_string)
            rows.append(record)
            if len(rows) >= PARQUET_BATCH_ROWS:
                self._write_table(pa.Table.from_pylist(rows, schema=self.schema))
                rows = []
        self._write_table(pa.Table.from_pylist(rows, schema=self.schema))
        spool.close()
        self.spool = None


def _json_strings(record: dict[str, Any], keys: Iterable[str]) -> None:
    """The record's values under ``keys`` that are not strings (mappings, lists, numbers) as JSON strings, in
    place (a string column's form of them); TypeError for a value JSON has no form for."""
    for key in keys:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            record[key] = orjson.dumps(value).decode()


INT64 = range(-(2**63), 2**63)


def _value_type(value: Any) -> type:
    """A spooled value's type for ``_unified_arrow_type``."""
    kind = type(value)
    return _BigInt if kind is int and value not in INT64 else kind


def _shape_problem(value: Any, arrow_type: Any, nullable: bool = True) -> str | None:
    """What pyarrow would not refuse but would get wrong: a null in a non-nullable column, and a string
    or mapping where a list belongs (a string would become a list of its characters); else None."""
    import pyarrow.types as pt

    if value is None:
        return None if nullable else f"null, and the column (type {arrow_type}) is not nullable"
    if pt.is_list(arrow_type) or pt.is_large_list(arrow_type) or pt.is_fixed_size_list(arrow_type):
        if isinstance(value, (str, bytes, dict)):
            return f"{type(value).__name__} value {_short(value)} where the column has lists ({arrow_type})"
        if isinstance(value, (list, tuple)):
            item = arrow_type.value_field
            for element in value:
                problem = _shape_problem(element, item.type, item.nullable)
                if problem is not None:
                    return problem
    elif pt.is_struct(arrow_type) and isinstance(value, dict):
        for i in range(arrow_type.num_fields):
            sub = arrow_type.field(i)
            problem = _shape_problem(value.get(sub.name), sub.type, sub.nullable)
            if problem is not None:
                return f"{sub.name}: {problem}"
    return None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unified_arrow_type(seen: set[type]) -> Any:
    """The Arrow type that holds every value of a column whose Python value types are ``seen``."""
    import pyarrow as pa

    if seen == {bool}:
        return pa.bool_()
    if seen == {int}:  # (an integer outside int64 is a _BigInt: written as a string)
        return pa.int64()
    if seen and seen <= {int, float}:
        return pa.float64()
    return pa.string()  # strings, JSON of lists/mappings, mixed types, and all-null columns
