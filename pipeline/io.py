"""Reading inputs into Documents and writing outputs atomically.

Readers never raise for one bad record: a malformed line, a binary or undecodable file, a missing
text field or a too large document becomes a Document already rejected at stage ``input``, so it
lands in rejected.jsonl with its reason and the run goes on.
"""

from __future__ import annotations

import atexit
import base64
import codecs
import contextlib
import datetime
import decimal
import functools
import gzip
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import zstandard

from pipeline import formats
from pipeline.config import ConfigError, InputConfig
from pipeline.document import Document
from pipeline.formats import UnwritableRecord, field_problem
from pipeline.records import check_size, quarantined, record_document

# suffix -> (format, compression)
FORMATS: dict[str, tuple[str, str | None]] = {
    ".txt": ("txt", None),
    ".jsonl": ("jsonl", None),
    ".jsonl.gz": ("jsonl", "gz"),
    ".jsonl.zst": ("jsonl", "zst"),
    ".parquet": ("parquet", None),
    ".warc": ("warc", None),  # WARC and WET (.warc.wet) alike: records say what they hold
    ".warc.gz": ("warc", "gz"),
    ".warc.wet": ("warc", None),
    ".warc.wet.gz": ("warc", "gz"),
    ".html": ("html", None),
    ".htm": ("html", None),
    ".html.gz": ("html", "gz"),
}
STDIN = "-"  # as INPUT: JSONL from stdin, kept records to stdout


def holds_html(f: InputFile) -> bool:
    """An HTML page or a WARC (of HTTP responses), which the extract stage turns into text; a WET
    archive (.warc.wet) holds text already."""
    return f.format == "html" or (f.format == "warc" and ".warc.wet" not in f.path.name.lower())


def document_place(source: str, line: Any) -> str:
    """A document's place as explain and report.html name it: 'b.jsonl line 2', 'x.parquet row 7', or the
    file alone when there is no line (a .txt file, a record without one)."""
    if not isinstance(line, int) or isinstance(line, bool):
        return source
    return f"{source} {'row' if source.lower().endswith('.parquet') else 'line'} {line}"


PARTIAL = ".partial"  # suffix of files still being written
# Outputs are written a document at a time (6-15 kB on web text): through Python's default 8 kB buffer each is a
# write call of its own, and the kernel's cost per call dominated (62 MB of removed.jsonl in 15 kB writes: 0.035 s
# of CPU; through a 256 kB buffer, 0.015 s). The buffer's pages are touched only as far as a file gets.
_WRITE_BUFFER = 256 << 10
# A file is synced when its run commits it, in the run's tail: 26 MB of output and 62 MB of removed.jsonl for 40 MB
# of web text were written back to disk there, the run waiting. Every WRITE_BACK_BYTES written, the file's write-back
# is started (``start_write_back``, not waited for): the commit's sync then has little left to wait for.
WRITE_BACK_BYTES = 8 << 20


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux), which Python's os module lacks; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # (numpy imports it anyway)

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call  # type: ignore[no-any-return]


_SYNC_FILE_RANGE_WRITE = 2  # (start writing the dirty pages out; do not wait for them)


def start_write_back(fd: int) -> None:
    """Start writing the file's data that is in the page cache out to disk, without waiting (nothing where the
    system cannot): a hint, which changes nothing of what a later ``fsync`` guarantees, only its wait."""
    call = _sync_file_range()
    if call is not None:
        call(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # (an error, e.g. a file system without it, is ignored)


@dataclass(frozen=True)
class InputFile:
    path: Path
    rel: str  # path relative to its input root: the document source and the output name
    format: str
    compression: str | None
    stdio: bool = False  # read from stdin (spooled to ``path``), write to stdout

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
    named: set[tuple[Path, str]] = set()  # (file, name relative to its input) of the inputs so far
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(spool_stdin(), STDIN, "jsonl", None, stdio=True))
            continue
        root = Path(raw)
        if not root.exists():
            # a cron job's working directory is its user's home: say where a relative path was looked for
            where = "" if root.is_absolute() else f" (relative to the current directory, {Path.cwd()})"
            raise ConfigError(f"input not found: {raw}{where}")
        if not root.is_dir() and (kind := _special_file(root)):
            # os.walk would list nothing in it: the run would end at once, 'successfully', on no input
            raise ConfigError(
                f"input is a {kind}, not a file or folder: {raw} (use - to read JSONL from standard input)"
            )
        if root.is_file():
            candidates = [(root, root.name)]
        else:
            candidates = []
            # Symlinked folders are followed, as symlinked files are; a folder reached again (a link
            # loop, a second link to it) is read once.
            visited: dict[Path, Path] = {}

            def unreadable(err: OSError) -> None:  # os.walk leaves such a folder out without a word
                skipped.append((str(err.filename), f"unreadable folder: {err.strerror or err}"))

            for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
                here = Path(dirpath)
                real = here.resolve()
                if exclude and (real == exclude or exclude in real.parents):
                    dirnames[:] = []
                    continue
                if real in visited:
                    skipped.append((str(here), f"same folder as {visited[real]}, read once"))
                    dirnames[:] = []
                    continue
                visited[real] = here
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
            if path is not root and (kind := _special_file(path)):  # reading a FIFO waits for a writer for ever
                skipped.append((str(path), f"not a regular file: a {kind}"))
                continue
            if not _utf8_name(str(path)):
                # Python holds its undecodable bytes as lone surrogates, which neither the state database nor
                # JSON can store: the whole run failed on it (exit 1), and every later cron run again
                why = "file name is not valid UTF-8 (rename it to read it)"
                if root.is_file():
                    raise ConfigError(f"{why}: {_shown(raw)}")
                skipped.append((str(path), why))
                continue
            if len(paths) > 1:  # `a.jsonl a.jsonl`, `in/ in/a.jsonl`: one file, one output (one input: no resolve())
                seen = (path.resolve(), rel)
                if seen in named:
                    skipped.append((str(path), "named twice, read once"))
                    continue
                named.add(seen)
            files.append(InputFile(path, rel, *fmt))
    # (two inputs of one name, from two folders: the runner refuses their one output)
    return files, [(_shown(path), _shown(why)) for path, why in skipped]


def _utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """``name`` with the bytes of a path that is not UTF-8 (lone surrogates in Python) as ``\\xNN`` escapes,
    which report.json and report.html can hold."""
    return name if _utf8_name(name) else name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _special_file(path: Path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder ('FIFO', 'socket', 'device'), after
    symlinks; None otherwise, also when it cannot be looked at (a broken link is quarantined when read)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO"
    return "socket" if stat.S_ISSOCK(mode) else "device"


# ---------------------------------------------------------------- decoding


# C0 controls that never occur in text files (tab, line feed, form feed, CR and ESC do).
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


# Encodings found in web text, in order of preference when charset-normalizer scores several
# equally: leaving out rare code pages (hp_roman8, mac_iceland, cp1258 ...) that it otherwise picks
# for short latin-1 text took correct decodings of 12-sentence samples from 342/440 to 400/440.
WEB_ENCODINGS = [
    "cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "koi8_u", "cp1253",
    "iso8859_7", "cp1254", "iso8859_9", "cp1255", "iso8859_8", "cp1256", "cp1257", "iso8859_13", "cp874",
    "gb18030", "big5", "cp932", "shift_jis", "euc_jp", "iso2022_jp", "cp949", "euc_kr", "utf_16", "utf_32",
]  # fmt: skip


# Candidates within this much of charset-normalizer's best "chaos" are compared by their words (_known_words).
KNOWN_WORDS_CHAOS = 0.05
KNOWN_WORDS_BYTES = 1 << 16
_WORD_RE = re.compile(r"\w+")


def _detect(data: bytes) -> tuple[str, str] | None:
    """charset-normalizer's best guess among web encodings; ties go to the more common encoding. In short
    texts its candidates often score alike and differ in a few letters (Turkish ş read as þ in cp1252,
    Lithuanian š as ð, Polish ą as ¹): among those close to the best, the one whose words with non-ASCII
    letters are most often frequent words of some language (the language stage's word profiles) is taken.
    Random samples of 2 / 4 / 12 lingua sentences (the half the profiles were not built from) in 30
    languages' code pages: 98 / 102 / 94 decoded exactly before, 108 / 113 / 99 now, of 127 / 127 / 105."""
    from charset_normalizer import from_bytes  # (only for input that is not UTF-8: ~6 ms of every start)

    matches = list(from_bytes(data, cp_isolation=WEB_ENCODINGS))
    if not matches:
        return None
    best = matches[0]
    tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence - 0.01]

    def common(m: Any) -> int:
        return WEB_ENCODINGS.index(m.encoding) if m.encoding in WEB_ENCODINGS else 99

    pick = min(tied, key=common)
    close = [m for m in matches if m.chaos <= best.chaos + KNOWN_WORDS_CHAOS]
    if len(close) > 1:
        # (words of the first KNOWN_WORDS_BYTES: a large file is not decoded once per candidate)
        head = data[:KNOWN_WORDS_BYTES]
        pick = max(close, key=lambda m: (_known_words(head.decode(m.encoding, "ignore")), m is pick, -common(m)))
    return str(pick), pick.encoding


def _known_words(text: str) -> int:
    """How many words of ``text`` holding a non-ASCII letter are listed frequent words of a language."""
    listed = _frequent_words()
    return sum(1 for w in _WORD_RE.findall(text.lower()) if not w.isascii() and w in listed)


@functools.lru_cache(maxsize=1)
def _frequent_words() -> frozenset[str]:
    """The words of every language's profile (``data/language/profiles.json``), read at the first text that
    needs them (~15 ms)."""
    profiles = json.loads((Path(__file__).parent / "data" / "language" / "profiles.json").read_text("utf-8"))
    return frozenset(word for profile in profiles.values() for word in profile["words"])


def _binary_reason(text: str, what: str = "file") -> str | None:
    """Why decoded text is really binary data: a NUL, or many control characters near the start."""
    if "\x00" in text:
        return f"binary {what} (NUL bytes)"
    head = text[:65536]
    if len(_BINARY_CONTROLS.findall(head)) > max(8, len(head) // 100):
        return f"binary {what} (control bytes)"
    return None


# How much of the data the test for UTF-16 without a BOM looks at (characters' high bytes), and its thresholds.
_UTF16_PROBE = 4096
_UTF16_MIN_CHARS = 8


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """(text, codec) for UTF-16 without a BOM, only on strong evidence, in the first 4 KB: NUL as the low byte
    of at most 1% of the characters (even bytes little-endian, odd bytes big-endian); as the high byte, NUL
    (ASCII spaces, digits, punctuation: at least 5% of the characters) or one alphabet's block (Latin-1, Greek,
    Cyrillic, Arabic ...) for at least 90%; the whole decodes strictly; and at most 1% control characters other
    than whitespace (or unassigned ones). CJK without a BOM (high bytes of many blocks) stays binary, as does other
    data with NULs (16-bit numbers have NUL low bytes or decode to control characters)."""
    head = data[:_UTF16_PROBE]
    chars = len(head) // 2
    if len(data) % 2 or chars < _UTF16_MIN_CHARS:
        return None
    for high_at, codec in ((1, "utf_16_le"), (0, "utf_16_be")):
        highs, lows = head[high_at::2], head[1 - high_at :: 2]
        nuls = highs.count(0)
        if lows.count(0) > chars // 100 or nuls < chars // 20:  # (U+4E00, U+0300, an emoji's surrogate: low NUL)
            continue
        block = max((highs.count(b) for b in set(highs) - {0}), default=0)
        if nuls + block < 0.9 * chars:
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            return None
        odd_ones = sum(c not in "\t\n\r\f\v" and unicodedata.category(c) in ("Cc", "Cn", "Cs") for c in text[:chars])
        if odd_ones > chars // 100:  # (a few C1 controls occur in text: cp1252 quotes read as Latin-1)
            return None
        return text, codec
    return None


def decode_bytes(
    data: bytes, known: str | None = None, what: str = "file"
) -> tuple[str | None, str | None, str | None]:
    """(text, encoding if not UTF-8, error). A UTF-32 or UTF-16 BOM, UTF-16 without a BOM on strong evidence
    (_utf16_without_bom), then UTF-8, then ``known`` (an encoding found
    before, e.g. for an earlier line of the file), then charset-normalizer; binary data (NUL or control
    bytes) is refused whole, with the reason (``what``: how it names the data)."""
    text: str | None = None
    encoding: str | None = None
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # first: UTF-32 LE's BOM starts as UTF-16 LE's
        with contextlib.suppress(UnicodeDecodeError):
            text, encoding = data.decode("utf-32"), "utf_32"
    if text is None and data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM
        with contextlib.suppress(UnicodeDecodeError):
            text, encoding = data.decode("utf-16"), "utf_16"
    if text is None and data.find(b"\x00", 0, _UTF16_PROBE) >= 0:  # (UTF-8 text holds no NUL: binary unless so)
        found = _utf16_without_bom(data)
        if found is not None:
            text, encoding = found
    if text is None:
        try:
            text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        except UnicodeDecodeError as err:
            utf8_error = f"invalid UTF-8 at byte {err.start}"
            if b"\x00" in data:  # legacy 8-bit and CJK text never contains NUL
                return None, None, f"binary {what} (NUL bytes)"
            if known:
                with contextlib.suppress(UnicodeDecodeError):
                    text, encoding = data.decode(known), known
            if text is None:
                detected = _detect(data)
                if detected is None:
                    return None, None, f"undecodable bytes ({utf8_error}; no charset fits)"
                text, encoding = detected
    reason = _binary_reason(text, what)
    if reason:
        return None, None, reason
    return text, encoding, None


def decompressed(f: InputFile) -> IO[bytes]:
    """An input file's bytes as its reader sees them (decompressed)."""
    return _open_binary(f.path, f.compression)


def _open_binary(path: Path, compression: str | None, buffering: int = -1) -> IO[bytes]:
    raw = open(path, "rb", buffering=buffering)  # noqa: SIM115 - handed to the caller
    if compression == "gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if compression == "zst":
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw


def spool_stdin() -> Path:
    """Copy stdin to a temporary file (streaming), so that a first pass and the run can both read it;
    removed when the process exits."""
    fd, name = tempfile.mkstemp(prefix="cleancorpus-stdin-", suffix=".jsonl")
    atexit.register(os.unlink, name)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return Path(name)


def read_documents(f: InputFile, cfg: InputConfig, wanted: Callable[[bytes], bool] | None = None) -> Iterator[Document]:
    """The documents of ``f``. ``wanted`` (JSONL only): a test of each line's bytes; the lines it refuses are
    not parsed (a search for a few documents by id in a large file: parsing every line cost ~0.05 s on 40 MB)."""
    try:
        if f.format == "txt":
            yield from _read_txt(f, cfg)
        elif f.format == "warc":
            yield from formats.read_archive(f, cfg)
        elif f.format == "parquet":
            yield from formats.read_parquet(f, cfg)
        elif f.format == "html":
            if f.compression and (problem := _miscompressed(f)):  # (else the decompressor's "Not a gzipped file")
                yield quarantined(f.rel, f.rel, problem)
                return
            with _open_binary(f.path, f.compression) as fh:
                yield from formats.read_html(f, cfg, fh)
        else:
            yield from _read_jsonl(f, cfg, wanted)
    except OSError as err:  # unreadable, vanished, truncated archive, ...
        yield quarantined(f.rel, f.rel, f"cannot read file: {err.strerror or err}")
    except (EOFError, zstandard.ZstdError, gzip.BadGzipFile) as err:
        yield quarantined(f.rel, f.rel, f"corrupt compressed file: {err}")


def _read_txt(f: InputFile, cfg: InputConfig) -> Iterator[Document]:
    with _open_binary(f.path, f.compression) as fh:
        data = fh.read(cfg.max_doc_chars * 4 + 1)
    if len(data) > cfg.max_doc_chars * 4:
        yield quarantined(f.rel, f.rel, f"document too large (over {cfg.max_doc_chars * 4:,} bytes)")
        return
    text, encoding, error = decode_bytes(data)
    if text is None:
        yield quarantined(f.rel, f.rel, error or "undecodable")
        return
    doc = Document(id=f.rel, text=text, source=f.rel)
    if encoding:
        doc.meta["encoding"] = encoding
    yield check_size(doc, cfg)


# What a file named .jsonl (or JSONL on stdin) may really be: data every line of which would be
# quarantined as undecodable, one record each, while the file is simply misnamed.
_MISNAMED = (
    (b"\x1f\x8b", "gzip-compressed data", ".jsonl.gz", "zcat"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", ".jsonl.zst", "zstdcat"),
    (b"PAR1", "a Parquet file", ".parquet", None),
)


def _misnamed(f: InputFile, head: bytes) -> str | None:
    """Why a JSONL input is not JSONL text, from its first bytes (None: it may be)."""
    for magic, what, suffix, tool in _MISNAMED:
        if head.startswith(magic):
            if f.stdio:
                return f"{what} on standard input, not JSONL" + (f": decompress it ({tool} FILE | ...)" if tool else "")
            return f"{what} in a file named {f.path.name}: name it *{suffix} to read it"
    return None


def _miscompressed(f: InputFile) -> str | None:
    """Why a .jsonl.gz/.jsonl.zst/.html.gz holds something else (the other compressor, Parquet, plain JSONL or
    HTML), from its first bytes; None if it starts as its name says (or is empty, or unknown data: the
    decompressor reports that)."""
    with open(f.path, "rb") as fh:
        head = fh.read(64)  # (HTML may start with some whitespace; JSONL is judged on 4 bytes, as before)
    expected = b"\x1f\x8b" if f.compression == "gz" else ZSTD_MAGIC
    if not head or head.startswith(expected):
        return None
    if f.compression == "zst" and len(head) >= 4 and int.from_bytes(head[:4], "little") in ZSTD_SKIPPABLE:
        return None
    for magic, what, suffix, _ in _MISNAMED:
        if head.startswith(magic):
            if f.format == "html" and suffix != ".parquet":  # (no .html.zst: zstd HTML pages are not read)
                return f"{what} in a file named {f.path.name}: decompress it to *.html to read it"
            return f"{what} in a file named {f.path.name}: name it *{suffix} to read it"
    text = head.removeprefix(codecs.BOM_UTF8)
    if f.format == "html":
        if text.lstrip()[:1] == b"<":
            return f"uncompressed HTML in a file named {f.path.name}: name it *.html to read it"
    elif head[:4].startswith(codecs.BOM_UTF8) or head[:4].lstrip()[:1] == b"{":
        return f"uncompressed JSONL in a file named {f.path.name}: name it *.jsonl to read it"
    return None


def _wide_lines(fh: IO[bytes], encoding: str) -> Iterator[bytes]:
    """The lines of a UTF-16/32 text (a BOM says which byte order; Windows tools write it), as UTF-8."""
    for line in io.TextIOWrapper(fh, encoding=encoding, errors="replace", newline=""):  # type: ignore[arg-type]
        yield line.encode("utf-8", "surrogatepass")


# The starts of a JSONL file in UTF-16/32 (a BOM and "{", not a BOM-like start of binary data; without a BOM,
# '{"' in UTF-16: no UTF-8 file starts with "{" and a NUL) -> the codec its lines are read with.
_WIDE_STARTS = (
    (codecs.BOM_UTF32_LE + "{".encode("utf-32-le"), "utf-32"),
    (codecs.BOM_UTF32_BE + "{".encode("utf-32-be"), "utf-32"),
    (codecs.BOM_UTF16_LE + "{".encode("utf-16-le"), "utf-16"),
    (codecs.BOM_UTF16_BE + "{".encode("utf-16-be"), "utf-16"),
    ('{"'.encode("utf-16-le"), "utf-16-le"),
    ('{"'.encode("utf-16-be"), "utf-16-be"),
)
# (the names the report counts, as decode_bytes gives them for .txt files)
_WIDE_NAMES = {"utf-32": "utf_32", "utf-16": "utf_16", "utf-16-le": "utf_16_le", "utf-16-be": "utf_16_be"}


def _wide_jsonl(head: bytes) -> str | None:
    """The codec of a JSONL file in UTF-16/32 from its first 8 bytes (None: not UTF-16/32)."""
    return next((codec for start, codec in _WIDE_STARTS if head.startswith(start)), None)


_LINE_BUFFER = 1 << 20


def line_document(raw: bytes | memoryview, record: Any, line_no: int, f: InputFile, cfg: InputConfig) -> Document:
    """The document of JSONL line ``line_no`` of ``f`` (``raw``, with or without its line break) that orjson
    parsed as ``record``: quarantined if not an object; integers beyond 64 bits read exactly."""
    fallback_id = f"{f.rel}:{line_no}"
    if not isinstance(record, dict):
        shown = bytes(raw).rstrip(b"\r\n").decode()
        return quarantined(fallback_id, f.rel, f"not a JSON object at line {line_no}", shown, line_no)
    if _has_float(record) and _LONG_NUMBER.search(raw) is not None:
        record = json.loads(bytes(raw))  # integers beyond 64 bits: exact (orjson made them floats)
    return record_document(record, f.rel, cfg, line_no, fallback_id, "line")


def _read_jsonl(f: InputFile, cfg: InputConfig, wanted: Callable[[bytes], bool] | None = None) -> Iterator[Document]:
    known: str | None = None  # the encoding of the file's earlier lines that are not UTF-8
    wide: str | None = None  # the file's encoding if UTF-16/32 (read as text, not split at b"\n")
    if f.compression is None:
        with open(f.path, "rb") as fh:
            head = fh.read(8)
        problem = _misnamed(f, head)
        if problem:  # one record for the file, not one per "line" of binary data
            yield quarantined(f.rel, f.rel, problem)
            return
        wide = _wide_jsonl(head)
    elif problem := _miscompressed(f):  # the decompressor's own words ("Unknown frame descriptor") do not say it
        yield quarantined(f.rel, f.rel, problem)
        return
    # The zstd reader ends quietly where the file is cut short: its frames are checked at the end, or
    # at a last line without its newline (which the cut may have made: it is not parsed then).
    unchecked = f.compression == "zst"
    # Lines of web text are ~10 kB: read through the default 8 kB buffer, each took several reads and joins
    # (iterating the lines of 40 MB: 18 ms of CPU; 3 ms with 1 MB).
    with _open_binary(f.path, f.compression, _LINE_BUFFER) as fh:
        lines: Iterable[bytes] = (
            io.BufferedReader(fh, _LINE_BUFFER) if f.compression == "zst" else fh  # type: ignore[arg-type]
        )
        if wide:
            lines = _wide_lines(fh, wide)
        line_no = 0
        # (No enumerate(): its reused result tuple would keep the line read last alive while the document
        # made of it is processed, one more copy of a document of up to max_doc_chars.)
        for raw in lines:
            line_no += 1
            if unchecked and not raw.endswith(b"\n"):
                unchecked = False
                problem = _zstd_problem(f.path)
                if problem:
                    reason = f"corrupt compressed file: {problem}, line {line_no} is cut short{_ZSTD_CUT_BLOCK}"
                    shown = _decode_line(raw, known)[0] or _escaped(raw)
                    yield quarantined(f"{f.rel}:{line_no}", f.rel, reason, shown, line_no)
                    return
            # The line break stays: JSON allows whitespace after the value, so orjson reads the line as it is
            # (``rstrip`` copied every line: 40 MB of fresh memory a pass), and a blank line is found without a copy.
            # Where the line itself is shown or parsed otherwise, it is without its line break.
            if not raw or raw.isspace():
                continue
            if wanted is not None:
                raw = raw.rstrip(b"\r\n")
                if not wanted(raw):
                    continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raw = raw.rstrip(b"\r\n")
                try:  # (again without the line break, whose position orjson's message would count)
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError as err:
                    doc, known = _reread_line(raw, line_no, err, known, f, cfg)
                    if doc is not None:
                        yield doc
                    continue
            doc = line_document(raw, record, line_no, f, cfg)
            if wide and isinstance(record, dict):  # (not a line quarantined as no object)
                doc.meta["encoding"] = _WIDE_NAMES[wide]
            del raw, record  # not kept while the document is processed (the record is the document's)
            yield doc
    if unchecked and (problem := _zstd_problem(f.path)):
        if problem.startswith("truncated"):  # what was lost, and why not more was read
            problem += f", after line {line_no}{_ZSTD_CUT_BLOCK}" if line_no else _ZSTD_NO_BLOCK
        yield quarantined(f.rel, f.rel, f"corrupt compressed file: {problem}")


# zstd decodes a block (up to 128 KB of text) only whole, unlike gzip's stream, which yields every byte before a cut:
# the lines in the block the cut falls in cannot be read, so the reason says so (a file under 128 KB gives nothing).
_ZSTD_CUT_BLOCK = "; the lines after it are in the block the file ends in, which zstd cannot decompress"
_ZSTD_NO_BLOCK = (
    "; no line could be read: zstd decompresses only whole blocks (up to 128 KB of text) and the file ends in its first"
)


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)  # magic numbers of skippable frames (metadata)


# A number of 19 digits or more after a key, in a list or after a comma: orjson reads an integer beyond 64 bits as a
# float (12345678901234567890123 -> 1.2345678901234568e+22), so a record holding a float whose line has one is read
# again with the json module, which keeps it exact; the output writes it back as it was (_big_integers_line).
_LONG_NUMBER = re.compile(rb"[:\[,]\s*-?\d{19}")


def _has_float(value: Any) -> bool:
    """Whether a parsed JSON value holds a float anywhere: the cheap test before _LONG_NUMBER's scan of the
    line (most records hold strings and small integers only). The types of a dict's or list's values are
    gathered by a C loop (``set(map(type, ...))``); only nested dicts and lists are looked into."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return type(value) is float
    kinds = set(map(type, value))
    if float in kinds:
        return True
    if dict in kinds or list in kinds:
        return any(_has_float(v) for v in value if type(v) is dict or type(v) is list)
    return False


def _zstd_problem(path: Path) -> str | None:
    """Why a zstd file ends early (a frame cut short, data that is no frame), or None.

    python-zstandard's stream reader just stops at a truncated frame, so the frames are walked
    through their headers and block headers (nothing is decompressed) to the end of the file."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos < size:
            fh.seek(pos)
            head = fh.read(18)  # a magic number and the longest frame header
            frame = pos
            truncated = f"truncated zstd stream (the file ends at byte {size:,}, inside the frame that starts at byte "
            truncated += f"{frame:,})"
            if int.from_bytes(head[:4], "little") in ZSTD_SKIPPABLE:
                pos += 8 + int.from_bytes(head[4:8], "little")
                if len(head) < 8 or pos > size:
                    return truncated
                continue
            if head[:4] != ZSTD_MAGIC:
                return f"data that is not a zstd frame at byte {pos:,}"
            try:
                header = zstandard.frame_header_size(head)
                checksum = zstandard.get_frame_parameters(head[:header]).has_checksum
            except zstandard.ZstdError:
                return truncated
            pos += header
            last = False
            while not last and pos < size:
                fh.seek(pos)
                bits = int.from_bytes(fh.read(3), "little")
                last, kind, length = bool(bits & 1), bits >> 1 & 3, bits >> 3
                if kind == 3:
                    return f"corrupt zstd stream (reserved block type in the frame at byte {frame:,})"
                pos += 3 + (1 if kind == 1 else length)  # an RLE block holds one byte
            pos += 4 if checksum else 0
            if not last or pos > size:
                return truncated
    return None


def _ascii_compatible(encoding: str) -> bool:
    """Whether ``encoding`` writes ASCII as ASCII, so that a file in it splits into lines at b"\\n"
    (not UTF-16/32)."""
    return '\n{}"'.encode(encoding) == b'\n{}"'


def _decode_line(raw: bytes, known: str | None) -> tuple[str | None, str | None, str | None]:
    """decode_bytes for one JSONL line: ``known`` is the encoding found for an earlier line of the file;
    a NUL (valid UTF-8, but no JSON line holds one raw) and an encoding that does not write ASCII as ASCII
    (UTF-16/32: a file in it does not split into lines at b"\\n") are refused too."""
    if b"\x00" in raw:
        return None, None, "binary data (NUL bytes)"
    text, encoding, error = decode_bytes(raw, known, "data")
    if encoding is not None and not _ascii_compatible(encoding):  # (found after UTF-8 failed)
        at = 0
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            at = err.start
        return None, None, f"undecodable bytes (invalid UTF-8 at byte {at}; no charset fits)"
    return text, encoding, error


def _escaped(raw: bytes) -> str:
    """Binary or undecodable bytes as rejected.jsonl shows them: escaped as in a Python bytes literal
    (\\x00 ...), since any decoding of them is garbled (e.g. UTF-16 CJK)."""
    return repr(raw)[2:-1]


# A JSON string escape: a high and low surrogate escaped as a pair (one character), a lone surrogate
# escaped, or any other escape (``\\`` among them, so that ``\\ud800`` is not taken for one).
_JSON_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\.", re.S
)


def _replace_lone_surrogates(text: str) -> tuple[str, int]:
    """``text`` (a JSON line) with each escaped lone surrogate (``\\ud800``: Python's json.dumps writes
    them for broken strings, and orjson refuses them) escaped as U+FFFD instead, and how many there were.
    A pair (``\\ud83d\\ude00``) is one character and stays. Applied to the escapes, not to the parsed
    strings, so that every string of the record is repaired (its keys too) and the line is still read by
    orjson, as every other line is."""
    count = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal count
        if len(m[0]) == 6:  # (a pair is 12 characters, other escapes 2)
            count += 1
            return "\\ufffd"
        return m[0]

    repaired = _JSON_ESCAPE.sub(replace, text) if "\\u" in text else text
    return repaired, count


def _reread_line(
    raw: bytes, line_no: int, err: orjson.JSONDecodeError, known: str | None, f: InputFile, cfg: InputConfig
) -> tuple[Document | None, str | None]:
    """The document of a JSONL line orjson refused as bytes (the slow path): without the UTF-8 BOM that
    may open the file, decoded if it is not UTF-8, its lone surrogate escapes replaced by U+FFFD
    (counted in ``doc.meta["lone_surrogates"]``), then parsed again (None: only a BOM). Also returns
    the encoding to try first on the file's later lines: a file in a legacy encoding has many such
    lines, and detecting each one's would cost ~1 ms a line."""
    fallback_id = f"{f.rel}:{line_no}"
    bom = line_no == 1 and raw.startswith(codecs.BOM_UTF8)  # the start of the file, and only there
    if bom:
        raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            return None, known
    text, encoding, error = _decode_line(raw, known)
    if text is None:
        reason = f"{error} at line {line_no}"
        return quarantined(fallback_id, f.rel, reason, _escaped(raw), line_no), known
    parsed, surrogates = _replace_lone_surrogates(text)
    if encoding is None and not bom and not surrogates:  # UTF-8 already: orjson's error stands
        return quarantined(fallback_id, f.rel, f"malformed JSON at line {line_no}: {err}", text, line_no), known
    try:
        record = orjson.loads(parsed)
    except orjson.JSONDecodeError as text_err:
        reason = f"malformed JSON at line {line_no}: {text_err}"
        return quarantined(fallback_id, f.rel, reason, text, line_no), known
    if not isinstance(record, dict):
        return quarantined(fallback_id, f.rel, f"not a JSON object at line {line_no}", text, line_no), encoding
    doc = record_document(record, f.rel, cfg, line_no, fallback_id, "line")
    if encoding:
        doc.meta["encoding"] = encoding
    if surrogates:
        doc.meta["lone_surrogates"] = surrogates
    return doc, encoding or known


# ---------------------------------------------------------------- writing


class AtomicFile:
    """Writes to ``NAME.partial`` and renames to NAME on commit, so a killed run leaves no
    complete-looking file behind. ``if_written``: the file is only created at the first write, and
    a commit without any removes NAME (e.g. an audit part from an earlier run) instead of writing an
    empty file: most input files have nothing rejected, and creating, syncing and renaming an empty
    part cost ~0.5 ms each on the benchmark machine's disk (more where fsync is slow)."""

    def __init__(
        self,
        path: Path,
        compression: str | None = None,
        if_written: bool = False,
        level: int | zstandard.ZstdCompressionParameters = 3,
        tmp: Path | None = None,
    ) -> None:
        self.path = path
        self.tmp = tmp if tmp is not None else path.with_name(path.name + PARTIAL)
        self.compression = compression
        self.level = level  # (zstd's: a level, or the parameters themselves)
        self._raw: IO[bytes] | None = None
        self._stream: Any = None
        self.empty = True
        self._unsynced = 0  # bytes given since the file's write-back was last started
        if not if_written:
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = self._stream = open(self.tmp, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115 - closed in commit/abort
        if self.compression == "gz":
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        elif self.compression == "zst":
            compressor = (
                zstandard.ZstdCompressor(compression_params=self.level)
                if isinstance(self.level, zstandard.ZstdCompressionParameters)
                else zstandard.ZstdCompressor(level=self.level)
            )
            self._stream = compressor.stream_writer(self._raw, closefd=False)

    @property
    def handle(self) -> IO[bytes]:
        """The raw file being written, for writers that format it themselves (Parquet)."""
        if self._raw is None:
            self._open()
        self.empty = False
        return self._raw  # type: ignore[return-value]

    def write(self, data: bytes) -> None:
        if self._raw is None:
            self._open()
        self.empty = False
        try:
            self._stream.write(data)
        except OSError as err:
            raise self._named(err) from None
        self._unsynced += len(data)
        if self._unsynced >= WRITE_BACK_BYTES:  # (bytes given: a compressed file's written are fewer)
            self._unsynced = 0
            start_write_back(self._raw.fileno())  # type: ignore[union-attr]

    def _named(self, err: OSError) -> OSError:
        """``err`` naming the file: a full disk said only "[Errno 28] No space left on device"."""
        if err.filename is not None or err.errno is None:
            return err
        return type(err)(err.errno, err.strerror, str(self.tmp))

    def close(self) -> None:
        """End the content (the compressed stream's last frame) and hand it to the OS, not yet synced nor
        renamed: ``commit`` does that, later, so that a run can sync several files' outputs in a row."""
        raw = self._raw
        if raw is None or self._stream is None:  # nothing written, or closed already
            return
        try:
            if self._stream is not raw:
                self._stream.close()
            self._stream = None
            raw.flush()
        except OSError as err:
            raise self._named(err) from None

    def commit(self) -> None:
        raw = self._raw
        if raw is None:  # if_written, and nothing was
            self.path.unlink(missing_ok=True)
            return
        self.close()
        try:
            os.fsync(raw.fileno())
            raw.close()
        except OSError as err:
            raise self._named(err) from None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Remove the partial file. Closing may fail where writing did (a full disk: the buffered rest cannot
        be flushed): the file is removed all the same, else a full disk left a ``.partial`` file behind."""
        if self._raw is not None:
            with contextlib.suppress(OSError):
                self._raw.close()
            self.tmp.unlink(missing_ok=True)


class StdoutClosed(Exception):
    """The reader of stdout (the output of stdin input) closed it before the run finished: ``| head``."""


class _StdoutFile:
    """Output of stdin input: written to stdout as it comes (there is nothing to rename)."""

    def __init__(self) -> None:
        self.empty = True

    def write(self, data: bytes) -> None:
        self.empty = False
        try:
            sys.stdout.buffer.write(data)
        except BrokenPipeError:
            raise StdoutClosed from None

    def close(self) -> None:
        self.commit()

    def commit(self) -> None:
        try:
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def abort(self) -> None:
        with contextlib.suppress(BrokenPipeError):  # (the run failed, or stdout's reader left)
            sys.stdout.buffer.flush()


def output_format(f: InputFile, requested: str | None) -> str:
    """The output format of an input file: ``output.format`` if set, else the input's; archives
    and HTML pages cannot be written back, so their documents go to JSONL."""
    if f.stdio:
        return requested if requested in ("jsonl", "txt") else "jsonl"
    if requested:
        return requested
    return f.format if f.format in ("txt", "jsonl", "parquet") else "jsonl"


def output_rel(f: InputFile, requested: str | None) -> str:
    """Where the cleaned counterpart of an input file goes, relative to the output folder: the input's
    relative path, or ``<relative path>.<format>`` when the format differs (archives, HTML, ``output.format``)."""
    fmt = output_format(f, requested)
    return f.rel if fmt == f.format else f"{f.rel}.{fmt}"


def anchored_meta(meta: dict[str, Any], text: str) -> dict[str, Any]:
    """``meta`` with each listed span (a dict with ``start``, ``end`` and ``text``, as language's
    ``action: tag`` lists fragments) pointing into ``text``, the output text: a stage gives offsets in the
    text as it saw it, which later stages (dedup, normalize) shorten. A span no longer in the output (in a
    paragraph dedup removed) is left out."""
    fixed: dict[str, Any] | None = None
    for key, value in meta.items():
        if isinstance(value, list) and value and all(_is_span(v) for v in value):
            fixed = fixed if fixed is not None else dict(meta)
            fixed[key] = _anchored_spans(value, text)
    return meta if fixed is None else fixed


def _is_span(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("text"), str) and isinstance(value.get("start"), int)


def _anchored_spans(spans: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Each span at its first occurrence in ``text`` after the span before it (the spans are in text order,
    and the text only lost parts since: the earliest match keeps the most of them); spaces may have been
    squeezed inside it (normalize)."""
    out, pos = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        words = span["text"].split()
        found = re.compile(r"\s+".join(map(re.escape, words))).search(text, pos) if words else None
        if found is None:
            continue
        out.append({**span, "start": found.start(), "end": found.end(), "text": found.group()})
        pos = found.end()
    return out


# Between two documents of a txt output that holds several (of a JSONL, Parquet or archive input, or
# stdin): a line holding only a form feed, the ASCII page break. Normalize turns form feeds into line
# breaks, so with its defaults no document has such a line of its own.
TXT_SEPARATOR = "\f\n"
_TXT_SEPARATOR_LINE = re.compile(r"(?:^|\n)\f(?:\r?\n|$)")


def split_txt_documents(data: str) -> list[str]:
    """The document texts of a txt output that holds several documents (what ``OutputWriter`` wrote:
    each text and a newline, a form-feed line between two)."""
    if not data:
        return []
    return data.removesuffix("\n").split("\n" + TXT_SEPARATOR)


def _rejected_lines(path: Path, source: str) -> set[int]:
    """The lines (JSONL) or rows (Parquet) of ``source`` that a rejected.jsonl at ``path`` lists."""
    found: set[int] = set()
    if not path.is_file():
        return found
    key = orjson.dumps(source)
    with open(path, "rb") as fh:
        for raw in fh:
            if key in raw:  # cheap filter before parsing
                record = orjson.loads(raw)
                line = record.get("line")
                if record.get("source") == source and isinstance(line, int):
                    found.add(line)
    return found


def txt_output_texts(
    outdir: Path, output: Path, input_path: str | None, source: str, cfg: InputConfig, lines: set[int]
) -> dict[int, str]:
    """The texts, by line, of the documents at ``lines`` of an input of several documents, from its txt
    output (``split_txt_documents``). The output holds the input's documents in order, but those rejected
    when read or listed (by line) in ``outdir``'s rejected.jsonl; an input no longer there finds none."""
    fmt = input_format(Path(input_path)) if input_path else None
    if not lines or input_path is None or fmt is None or not Path(input_path).is_file():
        return {}
    rejected = _rejected_lines(outdir / "rejected.jsonl", source)
    places: dict[int, int] = {}
    place, last = 0, max(lines)
    for doc in read_documents(InputFile(Path(input_path), source, *fmt), cfg):
        line = doc.line_no or 0
        if line in lines:
            places[line] = place
        if line >= last:
            break
        if not doc.rejected and line not in rejected:
            place += 1
    if not places:
        return {}
    texts = split_txt_documents(output.read_text(encoding="utf-8"))
    return {line: texts[at] for line, at in places.items() if at < len(texts)}


class OutputWriter:
    """The cleaned counterpart of one input file (``output_rel``), in its output format."""

    def __init__(
        self, f: InputFile, outdir: Path, cfg: InputConfig, metadata_field: str | None, fmt: str | None = None
    ) -> None:
        self.input = f
        self.cfg = cfg
        self.metadata_field = metadata_field
        self.format = output_format(f, fmt)
        same = self.format == f.format
        self.path = outdir / output_rel(f, fmt)
        self.file: AtomicFile | _StdoutFile = (
            _StdoutFile() if f.stdio else AtomicFile(self.path, f.compression if same else None)
        )
        self.parquet: formats.ParquetOutput | None = None
        self.closed = False  # close() was called
        self.dropped = False  # and found no output to write (a rejected .txt document)
        if self.format == "parquet":
            schema = None
            if f.format == "parquet":
                import pyarrow.parquet as pq

                try:
                    schema = pq.read_schema(f.path)
                except Exception:  # unreadable input: the reader quarantines it; nothing is written
                    schema = None
            assert isinstance(self.file, AtomicFile)
            fields = [metadata_field] if metadata_field else []
            columns = (cfg.id_field, cfg.text_field)
            self.parquet = formats.ParquetOutput(self.file.handle, schema, json_fields=fields, columns=columns)

    def write(self, doc: Document) -> None:
        if self.format == "txt":
            # A .txt or .html input is one document, written as it is; the documents of any other input
            # are separated by a form-feed line (a blank line separates paragraphs inside a document).
            several = self.input.format not in ("txt", "html") or self.input.stdio
            if several and _TXT_SEPARATOR_LINE.search(doc.text):  # nothing written: quarantined
                raise UnwritableRecord(
                    "cannot be written as txt: its text has a line holding only a form feed, "
                    "which separates documents in txt output"
                )
            sep = TXT_SEPARATOR.encode("ascii") if several and not self.file.empty else b""
            self.file.write(sep + doc.text.encode("utf-8") + (b"\n" if doc.text else b""))
            return
        record = dict(doc.record or {self.cfg.id_field: doc.id})
        record[self.cfg.text_field] = doc.text
        if self.metadata_field and doc.meta:
            record[self.metadata_field] = anchored_meta(doc.meta, doc.text)
        if self.parquet is not None:
            self.parquet.write(record)
            return
        try:  # (the newline by orjson: ``line + b"\n"`` copied every output line once more)
            line = orjson.dumps(record, default=json_default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as err:  # nothing written: the runner quarantines the document
            line = _big_integers_line(record, err)
            if line is None:
                raise UnwritableRecord(
                    f"cannot be written as JSON: {field_problem(record, err, json_default)}"
                ) from None
            line += b"\n"
        self.file.write(line)

    def close(self) -> None:
        """Complete the output's content (``AtomicFile.close``); ``commit`` makes it durable under its name."""
        if self.closed:
            return
        self.closed = True
        if self.input.format == "txt" and self.format == "txt" and self.file.empty:
            # The document was rejected: no output file, and no stale one from an earlier run.
            self.file.abort()
            self.path.unlink(missing_ok=True)
            self.dropped = True
            return
        if self.parquet is not None:
            self.parquet.close()
        self.file.close()

    def commit(self) -> None:
        self.close()
        if not self.dropped:
            self.file.commit()

    def abort(self) -> None:
        """Leave no output (the run failed): nothing is renamed, and a Parquet writer is closed first, so
        that it does not write to the closed file when it is collected (a traceback on stderr)."""
        if self.parquet is not None and self.parquet.writer is not None:
            with contextlib.suppress(Exception):  # the file is abandoned: its state does not matter
                self.parquet.writer.close()
        self.file.abort()


def _big_integers_line(record: dict[str, Any], err: Exception) -> bytes | None:
    """The record as one JSON line written by the json module when orjson failed on an integer beyond 64 bits
    (read exactly from the input: _LONG_NUMBER); None for any other failure."""
    if "64-bit" not in str(err):
        return None
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=json_default, allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError):
        return None


# How every JSONL line is written: non-string keys allowed, the newline appended by orjson.
JSONL_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def jsonl_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=JSONL_OPTIONS)


def json_default(value: Any) -> Any:
    """JSON for the carried values JSON has no type for (Parquet columns read by ``read_parquet``), as
    orjson's ``default`` hook: binary as base64 (standard alphabet, padded), decimals as strings (exact,
    scale kept), pandas' nanosecond timestamps in ISO 8601 and durations as ISO 8601 ``PT<seconds>S``
    (``-PT..`` when negative). Anything else raises TypeError, which orjson reports with its type."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):  # subclasses: pandas.Timestamp
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return _iso_duration(value)
    raise TypeError


def _iso_duration(value: datetime.timedelta) -> str:
    """An exact ISO 8601 duration in seconds; pandas.Timedelta (a subclass) adds its nanoseconds."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    nanos = micros * 1000 + int(getattr(value, "nanoseconds", 0))
    seconds, fraction = divmod(abs(nanos), 1_000_000_000)
    digits = f".{fraction:09d}".rstrip("0") if fraction else ""
    return f"{'-' if nanos < 0 else ''}PT{seconds}{digits}S"
