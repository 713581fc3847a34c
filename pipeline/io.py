"""Reading inputs into Documents and writing outputs atomically.

Readers never raise for one bad record: a malformed line, a binary or undecodable file, a missing
text field or a too large document becomes a Document already rejected at stage ``input``, so it
lands in rejected.jsonl with its reason and the run goes on.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import zstandard
from charset_normalizer import from_bytes

from pipeline.config import ConfigError, InputConfig
from pipeline.document import Document

# suffix -> (format, compression)
FORMATS: dict[str, tuple[str, str | None]] = {
    ".txt": ("txt", None),
    ".jsonl": ("jsonl", None),
    ".jsonl.gz": ("jsonl", "gz"),
    ".jsonl.zst": ("jsonl", "zst"),
}
PARTIAL = ".partial"  # suffix of files still being written


@dataclass(frozen=True)
class InputFile:
    path: Path
    rel: str  # path relative to its input root: the document source and the output name
    format: str
    compression: str | None

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def input_format(path: Path) -> tuple[str, str | None] | None:
    name = path.name.lower()
    for suffix, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    return None


def discover(paths: list[str], exclude: Path | None = None) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Input files under ``paths`` (folders walked recursively, sorted) and the files skipped, with why."""
    files: list[InputFile] = []
    skipped: list[tuple[str, str]] = []
    exclude = exclude.resolve() if exclude else None
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ConfigError(f"input not found: {raw}")
        if root.is_file():
            candidates = [(root, root.name)]
        else:
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                here = Path(dirpath)
                if exclude and (here.resolve() == exclude or exclude in here.resolve().parents):
                    dirnames[:] = []
                    continue
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                candidates += [(here / f, (here / f).relative_to(root).as_posix()) for f in sorted(filenames)]
            candidates.sort(key=lambda c: c[1])
        for path, rel in candidates:
            fmt = input_format(path)
            if fmt is None:
                if root.is_file():
                    raise ConfigError(f"unsupported input file type: {raw} (supported: {', '.join(FORMATS)})")
                if not path.name.startswith("."):
                    skipped.append((str(path), "unsupported file type"))
                continue
            files.append(InputFile(path, rel, *fmt))
    seen: dict[str, Path] = {}
    for f in files:
        if f.rel in seen:
            raise ConfigError(f"two inputs would write the same output file {f.rel}: {seen[f.rel]} and {f.path}")
        seen[f.rel] = f.path
    return files, skipped


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes) -> tuple[str | None, str | None, str | None]:
    """(text, encoding if not UTF-8, error). UTF-8 first; then charset-normalizer; binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM
        try:
            return data.decode("utf-16"), "utf_16", None
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"), None, None
    except UnicodeDecodeError as err:
        utf8_error = f"invalid UTF-8 at byte {err.start}"
    if b"\x00" in data[:8192]:
        return None, None, "binary file (NUL bytes)"
    best = from_bytes(data).best()
    if best is None:
        return None, None, f"undecodable bytes ({utf8_error}; no charset fits)"
    return str(best), best.encoding, None


def _open_binary(path: Path, compression: str | None) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - handed to the caller
    if compression == "gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if compression == "zst":
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw


def _reject(doc_id: str, source: str, reason: str, original: str = "", line_no: int = 0) -> Document:
    """A record that could not be read: quarantined with its reason."""
    doc = Document(id=doc_id, text="", source=source, original=original, line_no=line_no)
    doc.reject("input", reason, quarantine=True)
    return doc


def read_documents(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    try:
        if f.format == "txt":
            yield from _read_txt(f, cfg)
        else:
            yield from _read_jsonl(f, cfg)
    except OSError as err:  # unreadable, vanished, truncated archive, ...
        yield _reject(f.rel, f.rel, f"cannot read file: {err.strerror or err}")
    except (EOFError, zstandard.ZstdError, gzip.BadGzipFile) as err:
        yield _reject(f.rel, f.rel, f"corrupt compressed file: {err}")


def _check_size(doc: Document, cfg: InputConfig) -> Document:
    if not doc.rejected:
        if len(doc.text) > cfg.max_doc_chars:
            reason = f"document too large ({len(doc.text):,} characters > {cfg.max_doc_chars:,})"
            doc.reject("input", reason, quarantine=True)
        elif not doc.text.strip():
            doc.reject("input", "empty document")
    return doc


def _read_txt(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    with _open_binary(f.path, f.compression) as fh:
        data = fh.read(cfg.max_doc_chars * 4 + 1)
    if len(data) > cfg.max_doc_chars * 4:
        yield _reject(f.rel, f.rel, f"document too large (over {cfg.max_doc_chars * 4:,} bytes)")
        return
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # NUL is valid UTF-8 but no text file has it: an image, archive or other binary file
        yield _reject(f.rel, f.rel, "binary file (NUL bytes)")
        return
    text, encoding, error = decode_bytes(data)
    if text is None:
        yield _reject(f.rel, f.rel, error or "undecodable")
        return
    doc = Document(id=f.rel, text=text, source=f.rel)
    if encoding:
        doc.meta["encoding"] = encoding
    yield _check_size(doc, cfg)


def _read_jsonl(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    with _open_binary(f.path, f.compression) as fh:
        lines = io.BufferedReader(fh) if f.compression == "zst" else fh  # type: ignore[arg-type]
        for line_no, raw in enumerate(lines, start=1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            fallback_id = f"{f.rel}:{line_no}"
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                text, _, _ = decode_bytes(raw)
                original = text if text is not None else raw.decode("utf-8", "replace")
                yield _reject(fallback_id, f.rel, f"malformed JSON at line {line_no}: {err}", original, line_no)
                continue
            if not isinstance(record, dict):
                yield _reject(fallback_id, f.rel, f"not a JSON object at line {line_no}", raw.decode(), line_no)
                continue
            doc_id = record.get(cfg.id_field)
            doc_id = fallback_id if doc_id is None else str(doc_id)
            text = record.get(cfg.text_field)
            if not isinstance(text, str):
                problem = "missing" if text is None else f"not a string ({type(text).__name__})"
                yield _reject(doc_id, f.rel, f"field '{cfg.text_field}' {problem} at line {line_no}", "", line_no)
                continue
            yield _check_size(Document(id=doc_id, text=text, source=f.rel, record=record, line_no=line_no), cfg)


# ---------------------------------------------------------------- writing


class AtomicFile:
    """Writes to ``NAME.partial`` and renames to NAME on commit, so a killed run leaves no
    complete-looking file behind."""

    def __init__(self, path: Path, compression: str | None = None) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + PARTIAL)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        self._stream: Any = self._raw
        if compression == "gz":
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        elif compression == "zst":
            self._stream = zstandard.ZstdCompressor().stream_writer(self._raw, closefd=False)
        self.empty = True

    def write(self, data: bytes) -> None:
        self.empty = False
        self._stream.write(data)

    def commit(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._raw.close()
        self.tmp.unlink(missing_ok=True)


class OutputWriter:
    """The cleaned counterpart of one input file: same relative path, same format."""

    def __init__(self, f: InputFile, outdir: Path, cfg: InputConfig, metadata_field: str | None) -> None:
        self.input = f
        self.cfg = cfg
        self.metadata_field = metadata_field
        self.path = outdir / f.rel
        self.file = AtomicFile(self.path, f.compression)

    def write(self, doc: Document) -> None:
        if self.input.format == "txt":
            self.file.write(doc.text.encode("utf-8") + (b"\n" if doc.text else b""))
            return
        record = dict(doc.record or {})
        record[self.cfg.text_field] = doc.text
        if self.metadata_field and doc.meta:
            record[self.metadata_field] = doc.meta
        self.file.write(orjson.dumps(record) + b"\n")

    def commit(self) -> None:
        if self.input.format == "txt" and self.file.empty:
            # The document was rejected: no output file, and no stale one from an earlier run.
            self.file.abort()
            self.path.unlink(missing_ok=True)
            return
        self.file.commit()


def jsonl_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n"
