"""What every stage shares: typed options, counters, and the per-document hook.

A stage is a small class with a nested pydantic ``Options`` model (validated from YAML, listed by
``cleancorpus stages``) and a ``process(doc)`` method that edits ``doc.text`` in place, records each
removed span with ``doc.remove(...)`` and drops a document with ``doc.reject(...)``.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, ClassVar, TypeVar

from pipeline import lean_imports

lean_imports.import_pydantic()  # (without asyncio)

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from pipeline.document import Document  # noqa: E402


def yaml_error(err: Exception) -> str:
    """What a PyYAML error says, for a one-line message: "invalid YAML at line L, column C: problem"
    (the config file's and a pattern pack's)."""
    mark = getattr(err, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"invalid YAML{at}: {getattr(err, 'problem', None) or err}"


class OptionError(ValueError):
    """A stage option its model cannot check (a rule name, a regex), named by its key path inside the stage
    (``disable_rules[1]``): the config error then reads ``stages[2].disable_rules[1]: unknown rule ...``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class StageOptions(BaseModel):
    """Options every stage accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run this stage (false keeps it in the config but skips it).")

    def with_paths_from(self, folder: Path) -> StageOptions:
        """These options with the relative file paths they hold found from ``folder`` (the config file's)
        where the current directory does not have them."""
        return self

    def file_digests(self) -> dict[str, Any]:
        """Options that name files, with what of the files changes results instead (e.g. each pattern file's
        content hash for its path): hashed with the config, so that editing such a file is a config change
        like editing the config."""
        return {}


class Stage:
    name: ClassVar[str] = ""
    Options: ClassVar[type[StageOptions]] = StageOptions
    # A cross-document stage sees every document in input order in one process (e.g. dedup);
    # the others may run in parallel workers.
    cross_document: ClassVar[bool] = False
    # A stage that learns from the whole input before cleaning it (e.g. lines recurring across many
    # pages) sets this; the runner then first calls prepare_merge() (by default: prepare()) with the
    # prepare_part() of every input document, computed in the workers.
    needs_prepare: ClassVar[bool] = False
    # A stage that turns HTML documents (doc.meta["content_type"] == "text/html": .html and WARC inputs)
    # into text sets this (extract; a user's own extractor): without one such inputs are refused. The text it
    # makes is the one removed.jsonl's offsets index.
    extracts_html: ClassVar[bool] = False
    # A stage whose process() reads nothing but doc.text (and its options) and changes nothing but doc.text,
    # recording no removal (normalize) sets this: the runner may then run it on a copy of a document in a
    # worker before the cross-document stage before it has seen the document, and keep that result when the
    # cross-document stage leaves the document as it was (one round trip to the workers instead of two).
    text_only: ClassVar[bool] = False
    # False for the last stage (set by the runner): no later stage removes anything, so the offsets
    # module need not follow this stage's change of the text (normalize's spaces).
    offsets_followed: bool = True

    def __init__(self, options: StageOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.stats: Counter[str] = Counter()

    def stat_update(self, key: str, value: int | float = 1) -> None:
        self.stats[key] += value

    def process(self, doc: Document) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def prepare_document(self, doc: Document) -> None:
        """Per-document work of a cross-document stage that does not depend on other documents (e.g.
        dedup's signatures): the runner calls it in the worker processes, before the in-order pass,
        and the stage keeps the result in ``doc.scratch``. Called only if a stage overrides it."""

    def load(self) -> None:
        """Load the tables the stage's first document would load (module-level caches), before a run at 1 worker
        freezes what lives as long as it: made during the first batch, they were walked by the collection that
        ends it (``settle_garbage``). Default: nothing."""

    def expect_input(self, size: int) -> None:
        """Told before the stream how many bytes of input files this run reads (not with ``--limit``): a
        stage may size what it fills as the run goes on for them. Default: nothing."""

    def prepare(self, docs: Iterable[Document]) -> None:
        """First pass over the input (only called when ``needs_prepare``); keep what process() needs."""

    def prepare_part(self, doc: Document) -> object:
        """Runs in worker processes on each document (after the earlier stages): return a small,
        picklable summary of what prepare needs from this document. Default: the document."""
        return doc

    def prepare_merge(self, parts: Iterable[object]) -> None:
        """Main process: every document's prepare_part result, in input order. Default: prepare(parts)."""
        self.prepare(parts)  # type: ignore[arg-type]  # the default parts are the documents

    def pack_parts(self, parts: list[object]) -> bytes | None:
        """The prepare_part results of one input file's documents as bytes the state keeps, so that a
        later run takes them (``unpack_parts``) instead of reading the file again while it is unchanged;
        None: nothing is kept (the default)."""
        return None

    def unpack_parts(self, payload: bytes) -> list[object]:
        """The parts ``pack_parts`` packed, equal to those prepare_part gave."""
        raise NotImplementedError

    def part_bytes(self, part: object) -> int:
        """About how much memory a prepare_part result holds (the runner bounds what it keeps of a file)."""
        return sys.getsizeof(part)

    # Persistent state between runs (e.g. the dedup index). Rows are saved per input file once the
    # file's outputs are durable, and loaded, oldest first, by the next run.
    def load_state(self, rows: Iterable[tuple[str, bytes]]) -> None:
        """Take back the (source, payload) rows earlier runs saved."""

    def pop_state(self, source: str) -> Iterable[bytes]:
        """Rows learnt from the documents of input file ``source`` (finished); forget them here (the
        rows may be built lazily, as the caller iterates)."""
        return []

    def ready_state(self, source: str) -> Iterable[bytes]:
        """The first of ``pop_state``'s rows for input file ``source`` while its documents are still coming:
        rows no later document changes, forgotten here as ``pop_state`` forgets them (which then gives the rest:
        the same rows in all, in the same order). The runner writes them into the state's open transaction
        while the run goes on, rather than all of a large file's at its end. Default: none."""
        return []

    def close(self) -> None:
        """Called once after the last document (cross-document stages add final counters here)."""

    def take_stats(self) -> Counter[str]:
        """Return the counters gathered since the last call and start afresh (workers ship these)."""
        stats, self.stats = self.stats, Counter()
        return stats


T = TypeVar("T")

# Where the stages keep what they cache between processes (tables, databases, parsed profiles): beside the
# package, like numba's cache.
CACHE_DIR = Path(__file__).parent / "__pycache__"


def save_cache_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path``, a cache a stage keeps beside the package (``__pycache__``, like
    numba's), atomically: a reader sees the old file or the whole new one, and processes writing at
    once each use their own temporary file. False, with nothing written, where the place is not
    writable: the caller then rebuilds what it caches in every process."""
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def cached_table(
    folder: Path,
    name: str,
    build: Callable[[], Any],
    constants: ModuleType,
    *patterns: Any,
    size: int | None = None,
    inputs: Any = None,
) -> Any:
    """``build()``, a numpy table by code point, read from the copy an earlier process saved in ``folder``
    (`cached_build`). The file name holds a hash of what the table depends on (the builder's source, the
    ``patterns`` it matches, ``inputs`` (JSON: the values a closure ``build`` uses), this Python (its ``str``
    predicates), its Unicode data, ``regex``, the integer constants of the ``constants`` module (a kernels
    module's class bits)), so a change to any builds and saves a new one. The copy carries a SHA-256 of its
    bytes: a damaged one is rebuilt; ``size``: its length."""
    import hashlib
    import json
    import unicodedata

    import regex

    source = source_of(build.__code__)
    if not source:  # no source (a bytecode-only install): no key to trust a copy by
        return build()
    bits = sorted((k, int(v)) for k, v in vars(constants).items() if k.isupper() and isinstance(v, int))
    depends = [(p.pattern, int(p.flags)) for p in patterns]
    key = [source, depends, sys.version, unicodedata.unidata_version, regex.__version__, bits]
    if inputs is not None:
        key.append(inputs)
    digest = hashlib.sha256(json.dumps(key).encode("utf-8")).hexdigest()[:16]
    return cached_build(folder / f"{name}-{digest}.npy", partial(read_table, size=size), build, table_bytes)


def source_of(code: CodeType) -> str:
    """The source lines of a function's code, from its first line to the last line of its own or its
    nested code's (``inspect.getsource`` tokenizes: ~6 ms to compile its tokenizer in a fresh process)."""
    lines = linecache.getlines(code.co_filename)
    last = max(_last_line(code), code.co_firstlineno)
    return "".join(lines[code.co_firstlineno - 1 : last])


def _last_line(code: CodeType) -> int:
    nested = [_last_line(c) for c in code.co_consts if isinstance(c, CodeType)]
    return max([line for _, _, line in code.co_lines() if line is not None] + nested)


def with_digest(payload: bytes) -> bytes:
    """``payload`` as a cache file holds it: after a SHA-256 of it, so that a copy damaged on disk (a flipped
    bit, a block lost in a crash) is found by `without_digest` and built again, never used."""
    import hashlib

    return hashlib.sha256(payload).digest() + payload


def without_digest(data: bytes) -> memoryview | None:
    """The payload `with_digest` saved, or None if its bytes are not the ones it hashed."""
    import hashlib

    payload = memoryview(data)[32:]
    return payload if hashlib.sha256(payload).digest() == data[:32] else None


def read_table(data: bytes, size: int | None = None) -> Any:
    """The table `table_bytes` saved, or None if its bytes are not the ones it hashed (or not ``size`` long)."""
    import io

    import numpy as np

    body = without_digest(data)
    if body is None:
        return None
    table = np.load(io.BytesIO(body), allow_pickle=False)
    if table.ndim != 1 or (size is not None and table.size != size):
        return None
    # writable like a built one: the kernels were compiled for writable arrays (a read-only one is
    # another numba type, which would compile them again)
    return table.copy()


def table_bytes(table: Any) -> bytes:
    """A table as `read_table` reads it: a SHA-256 of the rest, then the array as ``np.save`` writes it."""
    import io

    import numpy as np

    saved = io.BytesIO()
    np.save(saved, table, allow_pickle=False)
    return with_digest(saved.getvalue())


def cached_build(
    path: Path,
    read: Callable[[Any], T | None],
    build: Callable[[], T],
    write: Callable[[T], bytes | None],
    by_path: bool = False,
) -> T:
    """``build()``, or what an earlier process saved of it at ``path`` (``save_cache_file``): ``read(data)`` gives
    it back, or None for a copy that is not one (another shape, other inputs). Any error while reading means a
    missing, truncated or foreign copy, never a reason to fail: the value is built again and saved (``write``;
    None: not saved). ``by_path``: ``read`` is given the path instead of the file's bytes (a reader that copies
    the file's parts straight into their arrays, not the whole file into a bytes object first)."""
    try:
        value = read(path if by_path else path.read_bytes())
        if value is not None:
            return value
    except Exception:  # noqa: BLE001 - a cache: whatever is wrong with the copy, building is the answer
        pass
    value = build()
    data = write(value)
    if data is not None:
        save_cache_file(path, data)
    return value
