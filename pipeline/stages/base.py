"""What every stage shares: typed options, counters, and the per-document hook.

A stage is a small class with a nested pydantic ``Options`` model (validated from YAML, listed by
``cleancorpus stages``) and a ``process(doc)`` method that edits ``doc.text`` in place, records each
removed span with ``doc.remove(...)`` and drops a document with ``doc.reject(...)``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from pipeline.document import Document


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


def cached_build(
    path: Path, read: Callable[[bytes], T | None], build: Callable[[], T], write: Callable[[T], bytes | None]
) -> T:
    """``build()``, or what an earlier process saved of it at ``path`` (``save_cache_file``): ``read(data)`` gives
    it back, or None for a copy that is not one (another shape, other inputs). Any error while reading means a
    missing, truncated or foreign copy, never a reason to fail: the value is built again and saved (``write``;
    None: not saved)."""
    try:
        value = read(path.read_bytes())
        if value is not None:
            return value
    except Exception:  # noqa: BLE001 - a cache: whatever is wrong with the copy, building is the answer
        pass
    value = build()
    data = write(value)
    if data is not None:
        save_cache_file(path, data)
    return value
