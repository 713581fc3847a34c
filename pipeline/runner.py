"""The run: read inputs -> stages (batches; per-document stages may run in workers, cross-document
stages in this process, in input order) -> output files, audit files and report.json.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from itertools import chain, groupby, islice
from pathlib import Path
from typing import IO, Any, ClassVar, NamedTuple, TypeVar

import orjson
import zstandard

from pipeline import __version__, jsonl_ranges
from pipeline.config import ConfigError, InputConfig, RunConfig, StageConfig
from pipeline.document import Document, Rejection, Removal
from pipeline.executors import Executor, ProcessExecutor, Shared, make_executor, share
from pipeline.io import (
    FORMATS,
    JSONL_OPTIONS,
    STDIN,
    ZSTD_MAGIC,
    AtomicFile,
    InputFile,
    OutputWriter,
    UnwritableRecord,
    decompressed,
    discover,
    holds_html,
    jsonl_line,
    output_rel,
    read_documents,
)
from pipeline.offsets import after_stage
from pipeline.records import quarantined
from pipeline.report import StageStats, reason_kind
from pipeline.stages import Stage, stage_class
from pipeline.state import (
    STATE_DIRNAME,
    FileRecord,
    StageRows,
    StateCorrupt,
    StateStore,
    check_writable,
    config_changes,
    config_hash,
    file_hash,
    result_config,
    stream_hash,
    trusted_mtime,
)

log = logging.getLogger("cleancorpus")
BATCH_DOCS = 64
BATCH_CHARS = 2_000_000


def build_stages(specs: Iterable[StageConfig]) -> list[Stage]:
    stages = [stage_class(spec.stage)(spec.options) for spec in specs]
    # Nothing after the last stage removes anything, nor after a stage followed only by text-only stages (dedup
    # before normalize): offsets.after_stage need not follow their changes of the text (~0.04 s of CPU for
    # dedup's on 40 MB, in the main process, where dedup runs).
    for stage in reversed(stages):
        stage.offsets_followed = False
        if not stage.text_only:
            break
    return stages


@dataclass
class Batch:
    docs: list[Document]
    stats: dict[int, StageStats] = field(default_factory=dict)  # stage position -> stats
    # removed.jsonl lines of each document rendered so far (``render_removed``, at the end of each
    # worker's run of stages): the Removals themselves are then dropped from the documents, which
    # travel on without them (a page can have hundreds; 300k on 40 MB of web text).
    removed_lines: list[bytes] | None = None
    # Per document, what the text-only stages after the cross-document stage made of it in the worker, ahead
    # (``_run_ahead``; None: not run); kept in this process only, until ``_run_cross_ahead`` uses it.
    ahead: list[Ahead | None] | None = None

    # Batches travel to the workers and back, up to four times: as plain tuples they pickle about
    # 3x faster than slotted dataclasses.
    def __getstate__(self) -> tuple[Any, ...]:
        return [_pack(doc) for doc in self.docs], self.stats, self.removed_lines

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        docs, self.stats, self.removed_lines = state
        self.docs = [_unpack(packed) for packed in docs]


def _pack(doc: Document) -> tuple[Any, ...]:
    rejected = doc.rejected
    return (
        doc.id,
        doc.text,
        doc.source,
        doc.original,
        doc.record,
        doc.meta,
        _removal_tuples(doc.removed),
        None if rejected is None else _rejection_tuple(rejected),
        doc.line_no,
        doc.scratch,
    )


def _unpack(packed: tuple[Any, ...]) -> Document:
    doc_id, text, source, original, record, meta, removed, rejected, line_no, scratch = packed
    doc = Document(doc_id, text, source, original, record, meta, [Removal(*r) for r in removed], None, line_no, scratch)
    doc.original = original  # as it was, even if empty
    if rejected is not None:
        doc.rejected = Rejection(*rejected)
    return doc


# Local worker processes get and return less than a whole Batch (``_outgoing``, ``_changes``): the
# documents not rejected, without what stays here (the text as read, the record's text field, the
# removed.jsonl lines so far), and back only what the stages change. On 40 MB of web text at 2
# workers the main process unpickles 145 MB instead of 270 and pickles 106 instead of 190 (pickling
# CPU in all processes: 1.64 -> 1.19 s). Ray tasks and the serial run keep whole Batches (Ray's
# dedup reads them where they are).


def _outgoing(doc: Document, text_field: str) -> tuple[Any, ...]:
    """A document as a local worker gets it: in the worker, ``original`` is the text as sent and the
    record lacks its text field when that is the text as read (stages read other fields, e.g. url)."""
    record = doc.record
    if record is not None and record.get(text_field) is doc.original:
        record = record.copy()  # (a copy in C, then one key out: ~3x faster than a comprehension)
        del record[text_field]
    removed = _removal_tuples(doc.removed)
    return doc.id, doc.text, doc.source, record, doc.meta, removed, doc.line_no, doc.scratch


def _incoming(packed: tuple[Any, ...]) -> Document:
    doc_id, text, source, record, meta, removed, line_no, scratch = packed
    return Document(doc_id, text, source, text, record, meta, [Removal(*r) for r in removed], None, line_no, scratch)


# What the text-only stages run ahead made of a document (``_run_ahead``): its text (None: the one they got)
# and, per stage, the characters it left, its counters (items; None: none) and its rejection (None: none).
Step = tuple[int, tuple[tuple[str, Any], ...] | None, tuple[Any, ...] | None]
Ahead = tuple[str | None, tuple[Step, ...]]
Changes = tuple[list[tuple[Any, ...]], dict[int, StageStats], list[bytes] | None, list[Ahead | None] | None]


def _changes(batch: Batch, sent_texts: list[str], sent_records: list[bytes]) -> Changes:
    """What a worker's stages changed in each document (the text only if it is a new string, the record
    only if it changed: ``_snapshot``), the batch's statistics, its removed.jsonl lines and what the stages
    run ahead made of each document (``Batch.ahead``)."""
    changed = [
        (
            None if doc.text is sent else doc.text,
            doc.meta,
            None if doc.rejected is None else _rejection_tuple(doc.rejected),
            _scratch_out(doc.scratch, sent),
            False if _snapshot(doc.record) == record else doc.record,  # (False: unchanged)
        )
        for doc, sent, record in zip(batch.docs, sent_texts, sent_records, strict=True)
    ]
    lines = batch.removed_lines if batch.removed_lines and any(batch.removed_lines) else None
    return changed, batch.stats, lines, batch.ahead


class _SentText:
    """In a worker's ``_changes``: the text the worker got, where a stage's scratch holds it (dedup's ``(text,
    sketch)``, kept to tell whether the text changed before ``process``). This process has that text: a document
    the stages left as it was sent its text back only there (CC: 0.28 of 2.7 MB of texts; all of an input that
    needs no cleaning). Pickled by name, so it unpickles as this very object."""

    def __reduce__(self) -> str:
        return "SENT_TEXT"


SENT_TEXT = _SentText()


def _scratch_out(scratch: dict[str, Any], sent: str) -> dict[str, Any] | None:
    """``scratch`` as a worker sends it back: None if empty; ``SENT_TEXT`` in its tuples for the text sent."""
    if not scratch:
        return None
    if not any(type(value) is tuple and any(item is sent for item in value) for value in scratch.values()):
        return scratch
    return {
        key: tuple(SENT_TEXT if item is sent else item for item in value) if type(value) is tuple else value
        for key, value in scratch.items()
    }


def _scratch_in(scratch: dict[str, Any] | None, sent: str) -> dict[str, Any]:
    """A worker's ``_scratch_out`` here, with ``sent`` (this process's copy of the text it got) in its place."""
    if not scratch:
        return {}
    if not any(type(value) is tuple and any(item is SENT_TEXT for item in value) for value in scratch.values()):
        return scratch
    return {
        key: tuple(sent if item is SENT_TEXT else item for item in value) if type(value) is tuple else value
        for key, value in scratch.items()
    }


def _with_text_field(
    record: dict[str, Any] | None, before: dict[str, Any] | None, text_field: str
) -> dict[str, Any] | None:
    """A record a worker's stage changed, with the text field it went without (``_outgoing``) back in its
    place, as the stage would have left it here."""
    if record is None or before is None or text_field not in before or text_field in record:
        return record
    items = list(record.items())
    items.insert(min(list(before).index(text_field), len(items)), (text_field, before[text_field]))
    return dict(items)


def _rejection_tuple(rejected: Rejection) -> tuple[Any, ...]:
    return rejected.stage, rejected.reason, rejected.extra, rejected.quarantined


def _removal_tuples(removed: list[Removal]) -> list[tuple[Any, ...]]:
    """A document's removals as plain tuples (``Removal(*t)`` rebuilds each): cheaper to pickle."""
    return [(r.stage, r.rule, r.text, r.lines, r.extra, r.start, r.end) for r in removed]


def _apply_changes(batch: Batch, live: list[int], changes: Changes, text_field: str = "text") -> None:
    """Bring a worker's ``_changes`` to the batch's documents at positions ``live`` (those sent)."""
    changed, stats, lines, ahead = changes
    docs = batch.docs
    for i, (text, meta, rejected, scratch, record) in zip(live, changed, strict=True):
        doc = docs[i]
        doc.scratch = _scratch_in(scratch, doc.text)
        if text is not None:
            doc.text = text
        if record is not False:
            doc.record = _with_text_field(record, doc.record, text_field)
        doc.meta = meta
        if rejected is not None:
            doc.rejected = Rejection(*rejected)
        doc.removed.clear()  # sent, and rendered in the worker
    for position, st in stats.items():
        if position in batch.stats:
            batch.stats[position].merge(st)
        else:
            batch.stats[position] = st
    if lines is not None:
        done = batch.removed_lines or [b""] * len(docs)
        for i, line in zip(live, lines, strict=True):
            if line:
                done[i] += line
        batch.removed_lines = done
    if ahead is not None:
        made: list[Ahead | None] = [None] * len(docs)
        for i, result in zip(live, ahead, strict=True):
            made[i] = result
        batch.ahead = made


def _in_workers(
    executor: Executor,
    fn: Callable[[Any], Any],
    batches: Iterable[Batch | _StreamRange],
    text_field: str,
    ranges: _StreamRangesRead | None = None,
) -> Iterator[Batch]:
    """``fn`` over the batches' live documents in local workers; the batches, changed, in order. A
    ``_StreamRange`` (only with ``ranges``) goes as it is: the worker reads its documents itself, and its
    batch is made here of what comes back (``_StreamRangesRead.batch``)."""
    sent: deque[tuple[Batch, list[int]] | _StreamRange] = deque()

    def outgoing() -> Iterator[list[tuple[Any, ...]] | _StreamRange]:
        for batch in batches:
            if isinstance(batch, _StreamRange):
                sent.append(batch)
                yield batch
                continue
            live = [i for i, doc in enumerate(batch.docs) if doc.rejected is None]
            sent.append((batch, live))
            yield [_outgoing(batch.docs[i], text_field) for i in live]

    for changes in executor.map(fn, outgoing()):  # results in submission order
        task = sent.popleft()
        if isinstance(task, _StreamRange):
            assert ranges is not None
            yield ranges.batch(task, changes)
            continue
        batch, live = task
        _apply_changes(batch, live, changes, text_field)
        yield batch


def apply_stage(stage: Stage, position: int, batch: Batch) -> None:
    """Run one stage over a batch, keeping its statistics; one failing document is quarantined.
    A document the first pass saw this stage leave exactly as it was (``_UNCHANGED``) is only counted."""
    st = batch.stats.setdefault(position, StageStats(stage.name))
    started = time.perf_counter()
    bit = 1 << position
    ahead = getattr(stage, "process_ahead", None)
    if ahead is not None:  # a stage that does part of its work for the batch at once (boilerplate)
        ahead([d for d in batch.docs if not d.rejected and not (d.scratch and d.scratch.get(_UNCHANGED, 0) & bit)])
    for doc in batch.docs:
        if doc.rejected:
            continue
        if doc.scratch and doc.scratch.get(_UNCHANGED, 0) & bit:
            chars = len(doc.text)
            st.documents_in += 1
            st.documents_out += 1
            st.characters_in += chars
            st.characters_out += chars
            continue
        _apply_one(stage, st, doc)
    st.seconds += time.perf_counter() - started
    st.counters.update(stage.take_stats())


def _apply_one(stage: Stage, st: StageStats, doc: Document, offsets: bool = True) -> None:
    st.documents_in += 1
    st.characters_in += len(doc.text)
    seen = len(doc.removed)
    text = doc.text
    try:
        stage.process(doc)
    except Exception as err:  # a bug or a pathological document: quarantine it, go on
        if isinstance(err.__cause__, KeyboardInterrupt):
            # SIGTERM's or Ctrl-C's exception, raised in Python code a kernel called (numba unpickling a
            # constant) and wrapped by C in SystemError: the run stops, the document is not quarantined
            raise err.__cause__ from None
        st.counters["errors"] += 1
        doc.reject(stage.name, f"stage error: {type(err).__name__}: {err}", quarantine=True)
    if len(doc.removed) > seen:
        st.count_removals(doc.removed[seen:])
        if offsets:
            after_stage(doc, text, doc.removed[seen:], not stage.offsets_followed)
    elif offsets and doc.text is not text and not stage.extracts_html:
        after_stage(doc, text, [], not stage.offsets_followed)  # where the removed spans were: offsets.py
    if not doc.rejected and (not doc.text or doc.text.isspace()):  # (strip() copied a text with a blank end)
        doc.reject(stage.name, f"empty after {stage.name}")
    if doc.rejected:
        st.documents_rejected += 1
        st.rejections[reason_kind(doc.rejected.reason)] += 1
    else:
        st.documents_out += 1
        st.characters_out += len(doc.text)


# The first pass runs the per-document stages before a first-pass stage (boilerplate: extract,
# encoding) over every document, and the real pass runs them again on the same input. Where a stage
# left a document exactly as it was (same text, no removal, metadata or counter), the first pass says
# so (a bit per stage position, one byte per document and input file: ``Unchanged``) and the real pass
# only counts it: encoding leaves most web pages as they are, and its scan cost ~0.7 s of CPU per run
# on 40 MB. Only stages before the first cross-document stage qualify: the first pass does not run
# that one, so the stages after it may get other text in the real pass.
_UNCHANGED = "runner:unchanged"  # doc.scratch key in the real pass: the positions' bits
Unchanged = dict[str, bytearray]  # input file -> per document (in reading order): the positions' bits


def _apply_noting(stage: Stage, position: int, batch: Batch, masks: list[int]) -> None:
    """``apply_stage`` (first pass), setting the position's bit in ``masks[i]`` if the stage left the
    batch's i-th document exactly as it was."""
    st = batch.stats.setdefault(position, StageStats(stage.name))
    bit = 1 << position
    for i, doc in enumerate(batch.docs):
        if doc.rejected:
            continue
        text, removed, counted = doc.text, len(doc.removed), dict(stage.stats)
        meta, scratch, record = _snapshot(doc.meta), _snapshot(doc.scratch), _record_snapshot(doc)
        _apply_one(stage, st, doc, offsets=False)  # (the real pass places the removed spans)
        if (
            doc.rejected is None
            and len(doc.removed) == removed
            and doc.text == text
            and dict(stage.stats) == counted
            and _snapshot(doc.meta) == meta
            and _snapshot(doc.scratch) == scratch
            and _record_snapshot(doc) == record
        ):
            masks[i] |= bit
    st.counters.update(stage.take_stats())


def _snapshot(values: dict[str, Any] | None) -> bytes:
    """A dict's contents as bytes: a copy would miss a change made inside one of its values."""
    return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL) if values else b""


def _record_snapshot(doc: Document) -> bytes:
    """``_snapshot`` of the record but for its text as read (the document's ``original``: the whole page,
    which no stage changes there), which would be pickled twice per stage and document for nothing."""
    record = doc.record
    if not record:
        return b""
    return _snapshot({key: value for key, value in record.items() if value is not doc.original})


def _note_unchanged(unchanged: Unchanged, source: str, ordinal: int, mask: int) -> None:
    masks = unchanged.setdefault(source, bytearray())
    if len(masks) <= ordinal:
        masks.extend(bytes(ordinal + 1 - len(masks)))
    masks[ordinal] = mask


def _marked(docs: Iterable[Document], unchanged: Unchanged) -> Iterator[Document]:
    """The documents of the real pass, each with the bits the first pass noted for it (if any)."""
    counts: dict[str, int] = {}
    for doc in docs:
        ordinal = counts.get(doc.source, 0)
        counts[doc.source] = ordinal + 1
        masks = unchanged.get(doc.source)
        if masks is not None and ordinal < len(masks) and masks[ordinal] and doc.rejected is None:
            doc.scratch[_UNCHANGED] = masks[ordinal]
        yield doc


def _run_positions(stages: list[Stage], positions: list[int], batch: Batch, ahead: int | None = None) -> Batch:
    """Run the stages at ``positions``; then, if ``ahead`` is given, the per-document part of the
    cross-document stage at that position (so it runs in a worker, in parallel, not in the main process)."""
    for position in positions:
        apply_stage(stages[position], position, batch)
    for doc in batch.docs:
        if doc.scratch:
            doc.scratch.pop(_UNCHANGED, None)  # all its positions are in the first segment
    if ahead is not None:
        stage = stages[ahead]
        st = batch.stats.setdefault(ahead, StageStats(stage.name))
        started = time.perf_counter()
        for doc in batch.docs:
            if not doc.rejected:
                try:
                    stage.prepare_document(doc)
                except Exception:  # the in-order pass computes it again and reports the error
                    continue
        st.seconds += time.perf_counter() - started
    return batch


# Set by the command's SIGTERM handler (cli._catch_sigterm) before it raises Terminated. Where Python drops that
# exception (raised in code called back from C: a ``__del__``, a kernel's callback; 3 of 14 SIGTERMs in a QA
# run), the run went on to the end and exited 0; it now stops at the end of the batch under way.
stop_requested = threading.Event()


class StopRequested(KeyboardInterrupt):
    """A stop signal whose exception was lost, found between batches: ends the run as the signal would have."""


# In worker processes: the stages as they were when the executor started (before any first pass), for
# tasks that need only their options (Ray dedup's tasks read runner._stages); the runner's own tasks
# get the current stages through a Shared handle.
_stages: list[Stage | None] = []


def _init_worker(stages: list[Stage | None]) -> None:
    global _stages
    _stages = stages


# Enough of a web page (navigation, paragraphs, a quote in German and one in French) for each stage
# to load on its first document what it loads lazily: numba's cached machine code, tables, caches.
_WARM_UP_TEXT = """Home | News | About us | Contact
Welcome to our small town library

The library opens every weekday from nine in the morning until six in the evening, and on Saturdays
until noon. Members can borrow up to ten books, four magazines and two films at a time for three weeks.
Our reading room has quiet desks, free wireless internet and a shelf of daily newspapers from the region.

Last month the reading club discussed a novel about a family that moves from the coast to the mountains,
and the evening ended with a long and friendly argument about its surprising last chapter.
Der Verein trifft sich jeden ersten Dienstag im Monat im Lesesaal, und Gäste sind immer willkommen.
Nous organisons aussi des ateliers d'écriture pour les enfants pendant les vacances scolaires.

Children's corner: story time on Wednesdays at four, with songs, puppets and a short craft activity.
Copyright 2024 Town Library. All rights reserved. Privacy policy | Terms of use"""
# A short page (the language stage asks langdetect, which loads its profiles) and text in other
# scripts (the script table): loaded here, they are loaded once instead of once per worker.
_WARM_UP_TEXTS = (
    _WARM_UP_TEXT,
    # A word whose capital lower-cases to two characters (İ): boilerplate's line scorer finds the page's
    # words in Python then, with six kernels of its own that each stream worker loaded (~0.1 s apiece).
    _WARM_UP_TEXT.replace("Our reading room", "Our reading room in İzmir"),
    "Der Verein trifft sich jeden Dienstag.",
    "Новости дня: в городе открылась новая библиотека. 图书馆每天开放。 The library is open every day.",
    # A page in two languages, sentence by sentence: the language stage scores its sentences for both
    # (``_bilingual``, a kernel of its own that each stream worker loaded on its first such page).
    "The museum opens a new exhibition about the history of the river and its bridges this spring.\n"
    "Das Museum eröffnet im Frühling eine neue Ausstellung über die Geschichte des Flusses und seiner Brücken.\n"
    "Visitors can see old maps, paintings and photographs of the town from the last two hundred years.\n"
    "Die Besucher können alte Karten, Gemälde und Fotografien der Stadt aus den letzten zweihundert Jahren sehen.\n"
    "Guided tours in both languages start every Saturday and Sunday at eleven in the morning.\n"
    "Führungen in beiden Sprachen beginnen jeden Samstag und Sonntag um elf Uhr am Vormittag.",
)


def _first_pass_stages(stages: list[Stage]) -> int:
    """How many stages the first pass's workers run: up to the last stage with a first pass (0: none).

    At 2 workers the run waited ~1 s (of ~13 s on 40 MB) for the warm-up of all stages before the
    first task. Now only these stages warm up before the first pass's workers fork; the later ones
    (language, dedup: ~1 s, mostly langdetect's profiles, tables and numba's cached code) warm up in
    a thread of this process during the first pass, whose workers do not need them, and the stream
    runs on a second pool forked after that: the run's serial start-up is ~1 s shorter."""
    return max((i + 1 for i, stage in enumerate(stages) if stage.needs_prepare), default=0)


def _warm_up(stages: list[Stage | None], first_pass: bool = False) -> None:
    """Run sample documents through ``stages`` (copies: what they learn is thrown away) before the
    workers fork, so that what stages load on their first document is loaded once, here, and every
    worker inherits it (about 0.7 s of CPU per worker with the default stages, mostly numba's cache).
    ``first_pass``: only what the first pass's workers run, the last stage's part (not its run)."""
    for position, stage in enumerate(stages):
        if stage is None:
            continue
        for text in _WARM_UP_TEXTS:
            doc = Document("warm-up", text, "warm-up")
            try:
                if stage.needs_prepare:
                    stage.prepare_part(doc)
                if first_pass and position == len(stages) - 1:
                    continue
                if stage.cross_document and _prepares_documents(stage):
                    stage.prepare_document(doc)
                ahead = getattr(stage, "process_ahead", None)
                if ahead is not None:  # (the runner's batch path calls kernels of its own: loaded here too)
                    ahead([doc])
                stage.process(doc)
            except Exception as err:  # only a warm-up: the run itself reports real errors
                log.debug("warm-up of %s failed: %s: %s", stage.name, type(err).__name__, err)


# Set to "0" to compile a cold kernel cache in this process only (no second process: `_compile_ahead`).
COMPILE_AHEAD_ENV = "CLEANCORPUS_COMPILE_AHEAD"


def _kernels_marker() -> Path:
    """The file that says the stages' kernels were compiled into numba's cache (by a `_compile_ahead` process)
    for these sources: its name holds a hash of numba's version and every stage module's size and mtime (what
    numba's own cache index is keyed by), so an edited or upgraded package counts as cold again."""
    import hashlib

    import numba

    from pipeline.stages.base import CACHE_DIR

    folder = Path(stage_class.__code__.co_filename).parent
    stamps = sorted((p.name, p.stat().st_size, p.stat().st_mtime) for p in folder.glob("*.py"))
    key = repr((numba.__version__, stamps)).encode()
    return CACHE_DIR / f"kernels_compiled-{hashlib.sha256(key).hexdigest()[:16]}"


def _compile_ahead(specs: list[StageConfig], stages: list[Stage]) -> int | None:
    """On a cold kernel cache (the first run after installing: ~70 s of compiling on 2 cores, one kernel after
    another), fork a process that compiles the kernels of the stages after the first pass (language, dedup,
    normalize), the last stage first, while this process compiles the first stages' (boilerplate: the most) as
    it goes. A kernel this process then needs is loaded from the cache if the other wrote it already (numba
    looks the cache up at each new signature; its writes are atomic renames); where both compile the same one,
    both write the same code. The compiled code, and so the output, is that of a serial compile. Returns the
    process id (`_compiled_ahead` waits for it); None when the cache is warm (a marker the process leaves,
    `_kernels_marker`), there is nothing to split, no fork, or ``CLEANCORPUS_COMPILE_AHEAD=0``."""
    from pipeline.stages import aot_kernels

    if aot_kernels.active():  # (the kernels are compiled: numba is not even imported)
        return None
    split = _first_pass_stages(stages) or 1
    later = specs[split:]
    if not later or os.environ.get(COMPILE_AHEAD_ENV, "") == "0" or not hasattr(os, "fork"):
        return None
    try:
        marker = _kernels_marker()
        # (where the package's folder is read-only, no marker could say so next time: not every run forks)
        if marker.exists() or not os.access(marker.parent.parent, os.W_OK):
            return None
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    code = 1
    try:  # (the child: warm-up failures are only logged at debug level; the run compiles what is missing)
        _warm_up(list(reversed(build_stages(later))))
        from pipeline.stages.base import save_cache_file

        save_cache_file(marker, b"")
        code = 0
    finally:
        os._exit(code)  # (nothing of the parent's: no flushing of its files, no atexit handlers)


def _compiled_ahead(pid: int | None) -> None:
    """Wait for the `_compile_ahead` process (by the end of a run it has compiled what this one needed); then,
    with numba's cache warm, start building the compiled kernels module if there is none yet (in the
    background: `aot_kernels.build_in_background`)."""
    if pid is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    from pipeline.stages import aot_kernels

    aot_kernels.build_in_background()


def settle_garbage() -> None:
    """After a batch: collect the cyclic garbage it left and freeze what survives. A full collection
    then scans only the objects made since the last call (a batch's survivors: stage caches, the
    index's growth), never the same long-lived ones again; without this, full collections that walk
    the stages' caches cost ~5% of the run (more with 2 workers: each has its own caches)."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A batch's task runs with the collector's automatic passes paused, and ends with settle_garbage,
    which collects what the batch left in one pass. The automatic ones (a young pass every 700 new
    containers: ~800 a run of 40 MB, each walking the batch's live documents, lines and records again)
    cost 0.14-0.16 s of CPU a run (all workers, or the process at 1 worker) and found little: the cyclic
    garbage of one batch (at most BATCH_DOCS documents, BATCH_CHARS characters) is small. Nested: the
    outermost restores the collector."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _run_in_worker(
    stages: Shared, positions: list[int], ahead: int | None, batch: Batch, after: list[int] | None = None
) -> Batch:
    """The stages at ``positions`` (and the per-document part of the one at ``ahead``); then, if ``after`` is
    given, the text-only stages there on copies of the documents (``_run_ahead``)."""
    with _collector_paused():
        here = stages.get()
        _run_positions(here, positions, batch, ahead)
        render_removed(batch)  # here, in parallel, and so that the Removals need not travel on
        if after:
            batch.ahead = _run_ahead(here, after, batch)
        settle_garbage()
    return batch


def _run_sent(
    stages: Shared, positions: list[int], ahead: int | None, sent: list[tuple[Any, ...]], after: list[int] | None = None
) -> Changes:
    """``_run_in_worker`` for documents sent by ``_in_workers``: returns their ``_changes``."""
    with _collector_paused():  # (from the documents' rebuilding on)
        batch = Batch([_incoming(packed) for packed in sent])
        texts = [doc.text for doc in batch.docs]
        records = [_snapshot(doc.record) for doc in batch.docs]
        _run_in_worker(stages, positions, ahead, batch, after)
        return _changes(batch, texts, records)


# Plain JSONL files of some size (``jsonl_ranges.splittable``) at local workers: the stream's workers read their
# documents themselves, by ranges of whole lines, as the first pass's do (``_Range``). The main process parsed
# every line (~0.2 s of its CPU on 40 MB at 2 workers) and pickled each text to a worker; now it only cuts the
# file into ranges and gets back, per document, what it needs to go on (id, texts, record, ...: ``_ranged``).


class _StreamRange(NamedTuple):
    """A stream task of local workers: the whole lines of a plain JSONL file from ``start`` to ``end``, the first
    one line ``line_no``, read by the worker and run through the stages there; ``masks``: the first pass's unchanged
    bits of its lines (``masks[i]``: line ``line_no + i``; see ``_UNCHANGED``); ``error``: why the file could not
    be cut into ranges here."""

    file: InputFile
    start: int
    end: int
    line_no: int
    masks: bytes = b""
    error: str | None = None


# A stream range's result: per document ``_ranged``, then as ``_changes`` the batch's statistics, removed.jsonl
# lines and what was run ahead, the lines refused (``jsonl_ranges.Refused``) with their places among the range's
# documents, and the kinds of the documents rejected as they were read (the report's ``rejected_at_input``); or
# why the range could not be read.
RangeResult = (
    tuple[
        list[tuple[Any, ...]],
        dict[int, StageStats],
        list[bytes] | None,
        list["Ahead | None"] | None,
        list[tuple[int, jsonl_ranges.Refused]],
        dict[str, int],
    ]
    | str
)


def _ranged(doc: Document, span: tuple[int, int], text_field: str | None) -> tuple[Any, ...]:
    """What the main process needs of a document a worker read and ran: pickled with the whole result, the texts
    it holds more than once (the text the stages left as it was, the record's text, dedup's scratch) go once.
    With ``text_field`` (see ``_lazy_originals``), the text as read of a live document the stages changed stays
    here: its line's ``span`` in the file and its length go instead (``Unread``), the record's text as None."""
    rejected = doc.rejected
    original: str | Unread = doc.original
    record = doc.record
    if (
        text_field is not None
        and rejected is None
        and doc.text is not original
        and record is not None
        and record.get(text_field) is original
    ):
        original = Unread(*span, len(doc.original))
        record = record.copy()
        record[text_field] = None
    return (
        doc.id,
        doc.text,
        original,
        record,
        doc.meta,
        None if rejected is None else _rejection_tuple(rejected),
        doc.scratch or None,
        doc.line_no,
    )


class Unread(NamedTuple):
    """Where the text as read of a document a stream worker read is (its line's bytes in the file) and its length:
    the main process needs it only where that document is rejected there (``original_text``)."""

    start: int
    end: int
    chars: int


_UNREAD = "runner:unread"  # doc.scratch key in the main process: the document's Unread


def _from_ranged(packed: tuple[Any, ...], source: str) -> Document:
    doc_id, text, original, record, meta, rejected, scratch, line_no = packed
    doc = Document(doc_id, text, source, "", record, meta, [], None, line_no, scratch or {})
    if type(original) is Unread:
        doc.scratch[_UNREAD] = original
    else:
        doc.original = original  # as it was, even if empty
    if rejected is not None:
        doc.rejected = Rejection(*rejected)
    return doc


def original_chars(doc: Document) -> int:
    """The length of the document's text as read (``Unread``: not here)."""
    unread = doc.scratch.get(_UNREAD) if doc.scratch else None
    return len(doc.original) if unread is None else unread.chars


def original_text(doc: Document, f: InputFile, cfg: InputConfig) -> str:
    """The document's text as read; an ``Unread`` one read again from its line in ``f``."""
    unread = doc.scratch.get(_UNREAD) if doc.scratch else None
    if unread is None:
        return doc.original
    try:
        data = jsonl_ranges.read_range(f, unread.start, unread.end)
        entries = jsonl_ranges.range_documents(data, doc.line_no, f, cfg)
    except OSError as err:
        entries = []
        log.warning("could not read line %d of %s again: %s", doc.line_no, f.rel, err, extra={"source": f.rel})
    text = entries[0].original if len(entries) == 1 and isinstance(entries[0], Document) else ""
    if len(text) != unread.chars:  # (the file changed during the run)
        log.warning("line %d of %s changed during the run", doc.line_no, f.rel, extra={"source": f.rel})
    return text


def _read_rejections(docs: Iterable[Document], counts: dict[str, int]) -> None:
    """Count the documents rejected as they were read, by kind (as ``_run_locked``'s ``read_all`` does)."""
    for doc in docs:
        if doc.rejected is not None:
            kind = reason_kind(doc.rejected.reason)
            counts[kind] = counts.get(kind, 0) + 1


def _mark_lines(docs: Iterable[Document], line_no: int, masks: bytes) -> None:
    """``_marked`` for the documents of a range whose first line is ``line_no``, by their lines."""
    if not masks:
        return
    for doc in docs:
        at = doc.line_no - line_no
        if doc.rejected is None and 0 <= at < len(masks) and masks[at]:
            doc.scratch[_UNCHANGED] = masks[at]


def _run_range(
    stages: Shared,
    positions: list[int],
    ahead: int | None,
    cfg: InputConfig,
    task: _StreamRange,
    after: list[int] | None = None,
    unread: bool = False,
) -> RangeResult:
    """``_run_sent`` of the documents a worker reads itself: a ``_StreamRange`` of a JSONL file. ``unread``: the
    texts as read the main process does not need stay here (``_ranged``, ``_lazy_originals``)."""
    if task.error is not None:
        return task.error
    with _collector_paused():
        try:
            data = jsonl_ranges.read_range(task.file, task.start, task.end)
        except OSError as err:  # (as io.read_documents says it)
            return f"cannot read file: {err.strerror or err}"
        spans: list[tuple[int, int]] = []
        entries = jsonl_ranges.range_documents(data, task.line_no, task.file, cfg, spans)
        del data
        docs: list[Document] = []
        at: list[tuple[int, int]] = []  # the documents' lines in the file
        refused: list[tuple[int, jsonl_ranges.Refused]] = []
        for i, (entry, (start, end)) in enumerate(zip(entries, spans, strict=True)):
            if isinstance(entry, Document):
                docs.append(entry)
                at.append((task.start + start, task.start + end))
            else:
                refused.append((i, entry))
        del entries
        kinds: dict[str, int] = {}
        _read_rejections(docs, kinds)
        _mark_lines(docs, task.line_no, task.masks)
        batch = Batch(docs)
        _run_in_worker(stages, positions, ahead, batch, after)
        lines = batch.removed_lines if batch.removed_lines and any(batch.removed_lines) else None
        text_field = cfg.text_field if unread else None
        made = [_ranged(doc, span, text_field) for doc, span in zip(batch.docs, at, strict=True)]
        return made, batch.stats, lines, batch.ahead, refused, kinds


def _run_item(
    stages: Shared,
    positions: list[int],
    ahead: int | None,
    cfg: InputConfig,
    item: list[tuple[Any, ...]] | _StreamRange,
    after: list[int] | None = None,
    unread: bool = False,
) -> Changes | RangeResult:
    """A stream task of local workers: documents sent (``_run_sent``) or a range to read (``_run_range``)."""
    if isinstance(item, _StreamRange):
        return _run_range(stages, positions, ahead, cfg, item, after, unread)
    return _run_sent(stages, positions, ahead, item, after)


def _lazy_originals(stages: list[Stage], segments: list[tuple[bool, list[int]]], last: int | None) -> bool:
    """Whether the stream's range workers may keep the texts as read (``Unread``): where the stages this process
    runs are cleancorpus's own, dedup then text-only ones (run ahead: ``_runs_ahead``), which read neither the
    text as read nor the record's text. ~37 of 188 MB of results on 40 MB of web text; rejected.jsonl reads the
    lines of the few documents rejected here again (``original_text``)."""
    if last != 2:  # (the first segment is the one run ahead: this process runs no worker's segment again)
        return False
    here = [p for _, positions in segments[1:] for p in positions]
    return all(type(stages[p]).__module__.startswith("pipeline.stages.") for p in here)


_T = TypeVar("_T")


def _with_refused(
    made: Iterator[_T],
    count: int,
    refused: list[tuple[int, jsonl_ranges.Refused]],
    f: InputFile,
    cfg: InputConfig | None,
    known: dict[str, str | None],
) -> Iterator[_T | Document]:
    """A range's ``count`` items a worker made, with the documents of the lines it refused (not UTF-8; at
    their places among the range's documents) read here, in the range's order: each with the encoding the
    file's earlier lines found (``known``, updated), as ``io._read_jsonl`` reads them in order."""
    at = dict(refused)
    for i in range(count + len(refused)):
        line = at.get(i)
        if line is None:
            yield next(made)
            continue
        assert cfg is not None  # (ranges are read with the input's settings)
        doc, known[f.rel] = jsonl_ranges.refused_document(line, known.get(f.rel), f, cfg)
        if doc is not None:
            yield doc


class _StreamRangesRead:
    """The main process's side of the ``_StreamRange`` tasks: each range's batch, made of what its worker sent back,
    with the lines it refused (not UTF-8) read here, in order, with the encoding the file's earlier lines found
    (as ``_RangesRead``), and run here through the stages the worker ran (rare: legacy encodings)."""

    def __init__(
        self,
        specs: list[StageConfig],
        stages: list[Stage],
        positions: list[int],
        ahead: int | None,
        cfg: InputConfig,
        rejections: dict[str, int],
    ) -> None:
        self.specs, self.stages, self.positions, self.ahead, self.cfg = specs, stages, positions, ahead, cfg
        self.rejections = rejections  # the documents rejected as they were read, by kind (the report's)
        self.known: dict[str, str | None] = {}
        self.broken: set[str] = set()  # files whose reading failed: their later ranges give nothing
        self.here: list[Stage | None] | None = None  # the stages for the refused lines (made at the first)

    def batch(self, task: _StreamRange, result: RangeResult) -> Batch:
        f = task.file
        if f.rel in self.broken:
            return Batch([])
        if isinstance(result, str):  # a quarantined record for the file, and nothing more of it
            self.broken.add(f.rel)
            doc = quarantined(f.rel, f.rel, result)
            _read_rejections([doc], self.rejections)
            return Batch([doc])
        packed, stats, lines, ahead, refused, kinds = result
        for kind, n in kinds.items():
            self.rejections[kind] = self.rejections.get(kind, 0) + n
        batch = Batch([_from_ranged(p, f.rel) for p in packed], stats, lines, ahead)
        if refused:
            self._read_refused(batch, task, refused)
        return batch

    def _read_refused(self, batch: Batch, task: _StreamRange, refused: list[tuple[int, jsonl_ranges.Refused]]) -> None:
        f = task.file
        n = len(batch.docs)
        made = zip(batch.docs, batch.removed_lines or [b""] * n, batch.ahead or [None] * n, strict=True)
        docs: list[Document] = []
        lines: list[bytes] = []
        ahead: list[Ahead | None] = []
        for item in _with_refused(made, n, refused, f, self.cfg, self.known):
            if isinstance(item, Document):
                doc, rendered, result = item, self._run_here(batch, task, item), None  # (run ahead: not here)
            else:
                doc, rendered, result = item
            docs.append(doc)
            lines.append(rendered)
            ahead.append(result)
        batch.docs = docs
        batch.removed_lines = lines if batch.removed_lines is not None or any(lines) else None
        batch.ahead = ahead if batch.ahead is not None else None

    def _run_here(self, batch: Batch, task: _StreamRange, doc: Document) -> bytes:
        """The worker's stages on a refused line's document here; its removed.jsonl lines."""
        if doc.rejected is not None:
            _read_rejections([doc], self.rejections)
            return b""
        _mark_lines([doc], task.line_no, task.masks)
        if self.here is None:
            self.here = _worker_stages(self.specs, self.stages)
        one = _run_positions(self.here, self.positions, Batch([doc]), self.ahead)  # type: ignore[arg-type]
        for position, st in one.stats.items():
            if position in batch.stats:
                batch.stats[position].merge(st)
            else:
                batch.stats[position] = st
        rendered = removed_lines(doc) if doc.removed else b""
        doc.removed.clear()
        return rendered


def _stream_input(
    files: list[InputFile],
    read: Callable[[list[InputFile]], Iterable[Document]],
    unchanged: Unchanged,
    by_line: Unchanged,
) -> Iterator[Document | _StreamRange]:
    """The stream's input when its local workers read ranges: the plain JSONL files' ranges
    (``jsonl_ranges.splittable``), the other files' documents read here (``read``), in order."""
    for split, group in groupby(files, key=jsonl_ranges.splittable):
        if not split:
            docs = read(list(group))
            yield from _marked(docs, unchanged) if unchanged else docs
            continue
        for f in group:
            yield from _stream_ranges_of(f, by_line.get(f.rel, b""))


def _stream_ranges_of(f: InputFile, masks: bytes | bytearray) -> Iterator[_StreamRange]:
    """The ``_StreamRange`` tasks of a plain JSONL file, with the unchanged bits of their lines (``masks`` by
    line number); a file that cannot be cut ends with one (``error``)."""
    held: tuple[int, int, int] | None = None  # (a range's masks end at the next range's first line)
    try:
        for piece in jsonl_ranges.ranges(f, jsonl_ranges.stream_range_bytes(f)):
            if held is not None:
                yield _StreamRange(f, *held, bytes(masks[held[2] : piece[2]]))
            held = piece
    except OSError as err:  # (the file's documents end there, as io.read_documents ends them)
        if held is not None:
            yield _StreamRange(f, *held, bytes(masks[held[2] :]))
        yield _StreamRange(f, 0, 0, 0, error=f"cannot read file: {err.strerror or err}")
        return
    if held is not None:
        yield _StreamRange(f, *held, bytes(masks[held[2] :]))


def stream_reads_ranges(executor: Executor, stages: list[Stage]) -> bool:
    """Whether the stream's workers can read plain JSONL files themselves: local workers run its first
    stages (not a cross-document stage, which runs here on documents read here)."""
    return isinstance(executor, ProcessExecutor) and bool(stages) and not stages[0].cross_document


# Local workers at 2 or more: the stream sent each text out and back twice, for the stages before dedup and
# for normalize after it, and the main process (which also runs dedup and writes) spent ~1.3 s of CPU on
# 40 MB there at 2 workers, on the same cores as the workers. Normalize needs only the text, and dedup
# leaves most documents as they are (~73% on 40 MB of web text): the first round trip normalizes a copy of
# each document too, and this process keeps that result where dedup changed nothing, and normalizes the
# others itself (``_run_cross_ahead``). Results, statistics and records are those of the two round trips.


def _run_ahead(stages: list[Stage], after: list[int], batch: Batch) -> list[Ahead | None]:
    """The text-only stages at ``after`` (``Stage.text_only``) on a copy of each live document of the batch
    (whose stages up to the cross-document stage before them have run): per document, what they made of it
    (``Ahead``; None: a stage did more than change the text, so it is to run on the document itself). Their
    time goes to the batch's statistics; the rest of their statistics is counted where a result is used."""
    made: list[Ahead | None] = []
    totals = [StageStats(stages[position].name) for position in after]  # (of which only errors and seconds are read)
    for doc in batch.docs:
        if doc.rejected is not None:
            made.append(None)
            continue
        copy = Document(doc.id, doc.text, doc.source, line_no=doc.line_no)
        steps: list[Step] | None = []
        for position, st in zip(after, totals, strict=True):
            stage = stages[position]
            errors = st.counters["errors"]
            started = time.perf_counter()
            _apply_one(stage, st, copy, offsets=False)  # (no removal: nothing to place)
            st.seconds += time.perf_counter() - started
            counts = stage.take_stats()
            if st.counters["errors"] != errors:
                counts["errors"] += 1
            if copy.removed or copy.meta or copy.scratch or copy.record is not None:
                steps = None  # not text-only after all
                break
            rejected = copy.rejected
            steps.append(
                (
                    len(copy.text),
                    tuple(counts.items()) or None,
                    None if rejected is None else _rejection_tuple(rejected),
                )
            )
            if rejected is not None:
                break
        made.append(None if steps is None else (None if copy.text is doc.text else copy.text, tuple(steps)))
    for position, st in zip(after, totals, strict=True):
        batch.stats.setdefault(position, StageStats(st.stage)).seconds += st.seconds
    return made


def _keep_ahead(stages: list[Stage], after: list[int], batch: Batch, doc: Document, made: Ahead) -> None:
    """Give ``doc`` what the stages at ``after`` made of it ahead, counted as ``apply_stage`` counts a run."""
    text, steps = made
    chars = len(doc.text)
    for position, (chars_out, counters, rejection) in zip(after, steps, strict=False):
        st = batch.stats.get(position)
        if st is None:
            st = batch.stats[position] = StageStats(stages[position].name)
        st.documents_in += 1
        st.characters_in += chars
        if counters is not None:
            st.counters.update(dict(counters))
        if rejection is not None:
            doc.rejected = Rejection(*rejection)
            st.documents_rejected += 1
            st.rejections[reason_kind(rejection[1])] += 1
        else:
            st.documents_out += 1
            st.characters_out += chars_out
            chars = chars_out
    if text is not None:
        doc.text = text


def _run_cross_ahead(stages: list[Stage], positions: list[int], after: list[int], batch: Batch) -> Batch:
    """The cross-document stage at ``positions`` here, then the text-only stages at ``after``: for a document
    it left as it was, what they made of it ahead in the worker (``Batch.ahead``); for the others, run here."""
    before = [doc.text for doc in batch.docs]
    _run_positions(stages, positions, batch)
    made, batch.ahead = batch.ahead or [None] * len(batch.docs), None
    again: list[Document] = []
    for doc, text, result in zip(batch.docs, before, made, strict=True):
        if doc.rejected is not None:
            continue
        if result is not None and doc.text is text and not doc.removed:
            _keep_ahead(stages, after, batch, doc, result)
        else:
            again.append(doc)
    if again:
        rest = _run_positions(stages, after, Batch(again))
        for position, st in rest.stats.items():
            if position in batch.stats:
                batch.stats[position].merge(st)
            else:
                batch.stats[position] = st
    return batch


def render_removed(batch: Batch) -> None:
    """Move the documents' Removals into ``batch.removed_lines``, after the lines rendered before."""
    done = batch.removed_lines or [b""] * len(batch.docs)
    batch.removed_lines = [
        before + removed_lines(doc) if doc.removed else before for before, doc in zip(done, batch.docs, strict=True)
    ]
    for doc in batch.docs:
        doc.removed.clear()


def removed_lines(doc: Document) -> bytes:
    """The document's lines of removed.jsonl (``jsonl_line`` of each record, built inline). A record of a
    JSONL line or Parquet row names it (``line``), as rejected.jsonl does: ids are often shared by several
    documents, even of one file. A plain record (integer offsets, no extra fields: ~97% of them) is its
    (stage, rule)'s start, the same for the document's records of that rule, made once by orjson, then its
    offsets and its text (orjson's string): ~20% less CPU than a dict and an orjson call per record (0.17 ->
    0.135 s for the 345k lines of 40 MB of web text). Each line is a bytes object of its size until the
    join (orjson's own result of a short line takes ~4 kB while it lives: held for one join, a document
    with 400k removed lines cost 1.6 GB so)."""
    dumps, doc_id, src, line = orjson.dumps, doc.id, doc.source, doc.line_no
    heads: dict[tuple[str, str], bytes] = {}  # (stage, rule) -> b'{"id":..,"rule":..,"start":'
    head = b""
    parts: list[bytes] = []
    add = parts.append
    for r in doc.removed:
        start, end = r.start, r.end
        if r.extra or type(start) is not int or type(end) is not int:
            record = (
                {"id": doc_id, "source": src, "line": line, "stage": r.stage, "rule": r.rule}
                if line
                else {"id": doc_id, "source": src, "stage": r.stage, "rule": r.rule}
            )
            record["start"], record["end"], record["text"] = start, end, r.text
            if r.extra:
                record.update(r.extra)  # (after "text", where a key it repeats keeps its place)
            add(dumps(record, option=JSONL_OPTIONS))
            continue
        rule_head = heads.get((r.stage, r.rule))
        if rule_head is None:
            if not head:
                head = dumps({"id": doc_id, "source": src, "line": line} if line else {"id": doc_id, "source": src})
            rule_head = heads[r.stage, r.rule] = b'%b,"stage":%b,"rule":%b,"start":' % (
                head[:-1],
                dumps(r.stage),
                dumps(r.rule),
            )
        add(rule_head)
        add(b'%d,"end":%d,"text":%b}\n' % (start, end, dumps(r.text)))
    return b"".join(parts)


Parts = tuple[list[object], list[int], list[bool]]
PackedParts = tuple[bytes, list[int], list[bool]]  # (the live documents' parts as Stage.pack_parts packs them)


def _prepare_parts(stages: Shared, position: int, batch: Batch) -> Parts:
    """First pass, in a worker: the documents as they reach the stage at ``position`` (the per-document
    stages before it applied with ``apply_stage``, as in the real pass, so a first pass over HTML input
    learns from extracted text, not markup), then that stage's ``prepare_part`` of each. Their
    statistics are dropped: the real pass counts. Per document of the batch: its part (None if it was
    rejected), the bits of the stages that left it unchanged (see ``_UNCHANGED``), and whether it lives."""
    here = stages.get()
    prepared = _prepare_docs(here, position, batch)
    here[position].take_stats()
    settle_garbage()
    return prepared


def _prepare_docs(here: list[Stage | None], position: int, batch: Batch) -> Parts:
    """``_prepare_parts`` with the stages themselves (and no garbage settled: also in the main process)."""
    from pipeline.stages.text_kernels import keeping_code_points  # (numba: not at the runner's import)

    masks = [0] * len(batch.docs)
    before_cross = True
    with keeping_code_points():  # (the encoding stage's and the part's, of a text encoding left as it was)
        for i, stage in enumerate(here[:position]):
            if stage is None or stage.cross_document:
                before_cross = False
            elif before_cross and i < 8:
                _apply_noting(stage, i, batch, masks)
            else:
                apply_stage(stage, i, batch)
        stage = here[position]
        assert stage is not None
        live = [doc.rejected is None for doc in batch.docs]
        parts = [stage.prepare_part(doc) if alive else None for doc, alive in zip(batch.docs, live, strict=True)]
    return parts, masks, live


def _packed(stage: Stage, prepared: Parts) -> Parts | PackedParts:
    """``prepared`` with the live documents' parts packed by the stage's ``pack_parts`` where it packs them:
    one bytes object instead of two small arrays a document to pickle in the worker and unpickle in the main
    process, where it held the GIL (~0.01 s each side on 40 MB; boilerplate's parts, ~3.8 MB)."""
    parts, masks, live = prepared
    payload = stage.pack_parts([part for part, alive in zip(parts, live, strict=True) if alive])
    return prepared if payload is None else (payload, masks, live)


def _prepare_sent(stages: Shared, position: int, sent: list[tuple[Any, ...]]) -> Parts | PackedParts:
    """``_prepare_parts`` of documents sent as ``_outgoing`` tuples (local workers), packed (``_packed``;
    ``_unpacked`` in the main process)."""
    prepared = _prepare_parts(stages, position, Batch([_incoming(packed) for packed in sent]))
    return _packed(stages.get()[position], prepared)


class _Range(NamedTuple):
    """A first-pass task of local workers: the whole lines of a JSONL file from ``start`` to ``end``, the first
    one line ``line_no`` (``jsonl_ranges``); ``error``: the main process could not cut the file (why)."""

    file: InputFile
    start: int
    end: int
    line_no: int
    error: str | None = None


# A range's result: its documents' (packed) parts as _prepare_sent gives them, the lines refused there with
# their places among the range's documents, and the documents' line numbers (the stream's ranges find the unchanged
# bits by line: ``_StreamRange``); or why the file could not be read.
RangeParts = tuple[Parts | PackedParts, list[tuple[int, jsonl_ranges.Refused]], list[int]] | str


def _prepare_range(stages: Shared, position: int, cfg: InputConfig, task: _Range) -> RangeParts:
    """``_prepare_sent`` of the documents a worker reads itself: a ``_Range`` of a JSONL file (``jsonl_ranges``).
    The main process only cuts the file into ranges (at 2 workers it spent ~0.15 s of CPU reading, parsing and
    pickling the texts, while it held the GIL its warm-up thread needed too)."""
    if task.error is not None:
        return task.error
    try:
        data = jsonl_ranges.read_range(task.file, task.start, task.end)
    except OSError as err:  # (as io.read_documents says it)
        return f"cannot read file: {err.strerror or err}"
    entries = jsonl_ranges.range_documents(data, task.line_no, task.file, cfg)
    del data
    docs = [entry for entry in entries if isinstance(entry, Document)]
    refused = [(i, entry) for i, entry in enumerate(entries) if isinstance(entry, jsonl_ranges.Refused)]
    del entries
    line_nos = [doc.line_no for doc in docs]
    prepared = _prepare_parts(stages, position, Batch(docs))
    return _packed(stages.get()[position], prepared), refused, line_nos


def _prepare_item(
    stages: Shared, position: int, cfg: InputConfig | None, item: list[tuple[Any, ...]] | _Range
) -> Parts | PackedParts | RangeParts:
    """A first-pass task of local workers: documents sent (``_prepare_sent``) or a range to read
    (``_prepare_range``)."""
    if isinstance(item, _Range):
        assert cfg is not None
        return _prepare_range(stages, position, cfg, item)
    return _prepare_sent(stages, position, item)


def _unpacked(stage: Stage, payload: bytes, live: list[bool]) -> list[object]:
    """The parts ``_prepare_sent`` packed, with None for the documents that did not live."""
    unpacked = iter(stage.unpack_parts(payload))
    return [next(unpacked) if alive else None for alive in live]


def _prepares_documents(stage: Stage) -> bool:
    return type(stage).prepare_document is not Stage.prepare_document


def _worker_stages(specs: list[StageConfig], stages: list[Stage], also: int | None = None) -> list[Stage | None]:
    """What the workers get: the per-document stages (as prepared so far), and fresh copies (no index)
    of the cross-document stages whose per-document part they run (``prepare_document``, or
    ``prepare_part`` for the stage at ``also``); None for the other cross-document stages."""
    return [
        stage
        if not stage.cross_document
        else (stage_class(spec.stage)(spec.options) if _prepares_documents(stage) or i == also else None)
        for i, (spec, stage) in enumerate(zip(specs, stages, strict=True))
    ]


@dataclass
class FirstPassCache:
    """What earlier first passes learnt from each input file (``Stage.pack_parts``, kept in the state),
    standing in for reading the files this run does not process again (``skip``) while their content
    (``hashes``) and the config are the same; the files read are kept for later runs."""

    store: StateStore
    config_hash: str
    hashes: dict[str, str]  # input file -> content hash (none: never kept, e.g. stdin)
    skip: set[str]
    batch_rows: ClassVar[int] = 256  # rows saved in one transaction (a killed run loses at most these) ...
    batch_bytes: ClassVar[int] = 64 << 20  # ... or this many bytes of them
    # The parts of a file are held until its end: a file whose parts outgrow this (~700 MB of web text for
    # boilerplate) is not kept, so memory stays bounded however large one input file is (it is read again).
    max_file_bytes: ClassVar[int] = 64 << 20

    def cached(self, key: str, files: list[InputFile]) -> set[int]:
        """Positions in ``files`` of the files whose parts ``load`` gives."""
        kept = self.store.first_pass_files(key, self.config_hash)
        return {
            i
            for i, f in enumerate(files)
            if f.rel in self.skip and f.rel in self.hashes and kept.get(f.rel) == self.hashes[f.rel]
        }

    def load(self, key: str, f: InputFile) -> bytes:
        payload = self.store.first_pass_parts(key, f.rel, self.hashes[f.rel], self.config_hash)
        assert payload is not None
        return payload


def _first_pass(
    executor: Executor,
    specs: list[StageConfig],
    stages: list[Stage],
    files: list[InputFile],
    read: Callable[[list[InputFile]], Iterable[Document]],
    text_field: str = "text",
    cache: FirstPassCache | None = None,
    ranges: InputConfig | None = None,
    by_line: Unchanged | None = None,
    shared_before: dict[int, Shared] | None = None,
    let_go: Callable[[], None] | None = None,
    keep_later: list[Callable[[], None]] | None = None,
) -> Unchanged:
    """Prepare the stages that learn from the whole input: the workers compute each document's part
    (``_prepare_parts``), this process merges them in input order, with the parts of the files the
    ``cache`` holds read from it instead, and keeps the parts of the files read there. Returns what the
    last first pass found the stages before it to leave unchanged. ``ranges``: local workers read the plain
    JSONL files themselves, by ranges of lines (``_prepare_range``; the input config they read them with),
    and ``read`` gives the other files' documents; ``by_line`` (if given) gets the unchanged bits of the files
    read so by line number instead of by document (the stream's ranges: ``_StreamRange``). ``shared_before``: by
    position, what the workers of a stage's first pass get (``_worker_stages(..., also=position)``), shared before
    they forked (else shared here). ``let_go``: called once the last task's result is in (the executor's workers
    are done with: they can exit while the last parts are merged). ``keep_later``: the rows of packed parts the last
    first pass has not saved at its end (the last files') are not saved then, on the run's serial path (~0.01 s
    on 40 MB), but given there as a function to call later (before the stream writes any state)."""
    unchanged: Unchanged = {}
    last = max((i for i, stage in enumerate(stages) if stage.needs_prepare), default=-1)
    compact = isinstance(executor, ProcessExecutor)  # only the live documents, as _outgoing tuples
    by_ranges = ranges if compact else None
    order = {f.rel: i for i, f in enumerate(files)}
    for position, stage in enumerate(stages):
        if not stage.needs_prepare:
            continue
        key = _state_key(position, stage)
        cached = cache.cached(key, files) if cache is not None else set()
        shared = (shared_before or {}).get(position) or share(executor, _worker_stages(specs, stages, also=position))
        # Per task: the (file, ordinal) of each document sent, or the file a _Range reads (its documents are
        # numbered here, as their parts come back).
        sent: deque[list[tuple[str, int]] | InputFile] = deque()

        def items(sent: deque[list[tuple[str, int]] | InputFile] = sent, cached: set[int] = cached) -> Iterator[Any]:
            counts: dict[str, int] = {}
            todo = [f for i, f in enumerate(files) if i not in cached]
            for split, group in groupby(todo, key=lambda f: by_ranges is not None and jsonl_ranges.splittable(f)):
                if split:
                    for f in group:
                        yield from _ranges_of(f, sent)
                    continue
                for batch in _batches(read(list(group))):
                    numbered = []
                    for doc in batch.docs:
                        ordinal = counts.get(doc.source, 0)
                        counts[doc.source] = ordinal + 1
                        if not compact or doc.rejected is None:
                            numbered.append((doc, ordinal))
                    sent.append([(doc.source, ordinal) for doc, ordinal in numbered])
                    yield [_outgoing(doc, text_field) for doc, _ in numbered] if compact else batch

        def parts(
            results: Iterable[Parts | PackedParts | RangeParts],
            sent: deque[list[tuple[str, int]] | InputFile] = sent,
            stage: Stage = stage,
            key: str = key,
            cached: set[int] = cached,
            position: int = position,
        ) -> Iterator[object]:
            unchanged.clear()  # the last first pass's (it ran every stage before it)
            if by_line is not None:
                by_line.clear()
            current, following = -1, 0  # the file being read; the first file not given yet
            file_parts: list[object] | None = None  # the current file's, while they are to be kept
            file_bytes = 0
            keep: list[tuple[str, str, str, str, bytes]] = []
            keep_bytes = 0
            read_ranges = _RangesRead(stage, position, specs, stages, by_ranges, by_line)

            def done(i: int) -> None:  # the file at i was read whole: keep its parts for later runs
                nonlocal keep_bytes
                f = files[i]
                if cache is None or file_parts is None or f.rel not in cache.hashes:
                    return
                payload = stage.pack_parts(file_parts)
                if payload is not None:
                    keep.append((key, f.rel, cache.hashes[f.rel], cache.config_hash, payload))
                    keep_bytes += len(payload)
                if len(keep) >= cache.batch_rows or keep_bytes >= cache.batch_bytes:
                    cache.store.save_first_pass(keep)
                    keep.clear()
                    keep_bytes = 0

            def from_cache(until: int) -> Iterator[object]:  # the cached files before position ``until``
                nonlocal following
                for i in range(following, until):
                    if i in cached:
                        yield from stage.unpack_parts(cache.load(key, files[i]))  # type: ignore[union-attr]
                following = max(following, until)

            for result in results:
                task = sent.popleft()
                if isinstance(task, InputFile):
                    entries = read_ranges.entries(task, result)  # type: ignore[arg-type]
                else:
                    doc_parts, masks, live = result  # type: ignore[misc]
                    if isinstance(doc_parts, bytes):
                        doc_parts = _unpacked(stage, doc_parts, live)
                    entries = zip(task, masks, doc_parts, live, strict=True)  # type: ignore[assignment]
                for (source, ordinal), mask, part, alive in entries:
                    if mask:
                        _note_unchanged(unchanged, source, ordinal, mask)
                    i = order[source]
                    if i != current:
                        if current >= 0:
                            done(current)
                        yield from from_cache(i)
                        current, following = i, i + 1
                        file_parts, file_bytes = ([] if cache is not None else None), 0
                    if alive:
                        if file_parts is not None:
                            file_parts.append(part)
                            file_bytes += stage.part_bytes(part)
                            if file_bytes > cache.max_file_bytes:  # type: ignore[union-attr]
                                file_parts = None
                        yield part
            if current >= 0:
                done(current)
            yield from from_cache(len(files))
            if keep and keep_later is not None and position == last:
                keep_later.append(partial(cache.store.save_first_pass, keep))  # type: ignore[union-attr]
            elif keep:
                cache.store.save_first_pass(keep)  # type: ignore[union-attr]

        fn = (
            partial(_prepare_item, shared, position, by_ranges)
            if compact
            else partial(_prepare_parts, shared, position)
        )
        results = executor.map(fn, items())
        if let_go is not None and position == last:
            results = _then(results, let_go)
        stage.prepare_merge(parts(results))
    return unchanged


def _then(items: Iterable[_T], after: Callable[[], None]) -> Iterator[_T]:
    """``items``, then ``after()`` once they are all given."""
    yield from items
    after()


def _ranges_of(f: InputFile, sent: deque[list[tuple[str, int]] | InputFile]) -> Iterator[_Range]:
    """The ``_Range`` tasks of a plain JSONL file, each noted in ``sent``."""
    try:
        for start, end, line_no in jsonl_ranges.ranges(f):
            sent.append(f)
            yield _Range(f, start, end, line_no)
    except OSError as err:  # (the file's documents end there, as io.read_documents ends them)
        sent.append(f)
        yield _Range(f, 0, 0, 0, f"cannot read file: {err.strerror or err}")


class _RangesRead:
    """The main process's side of the ``_Range`` tasks: each document's (file, ordinal) in reading order, and the
    lines a worker refused (``jsonl_ranges.Refused``: not UTF-8) read here, in order, with the encoding the
    file's earlier lines found (``io._read_jsonl``'s ``known``), and prepared here (rare: legacy encodings)."""

    def __init__(
        self,
        stage: Stage,
        position: int,
        specs: list[StageConfig],
        stages: list[Stage],
        cfg: InputConfig | None,
        by_line: Unchanged | None = None,
    ) -> None:
        self.stage, self.position, self.specs, self.stages, self.cfg = stage, position, specs, stages, cfg
        self.by_line = by_line  # file -> the unchanged bits by line number (``_first_pass``)
        self.counts: dict[str, int] = {}  # documents numbered so far, per file
        self.known: dict[str, str | None] = {}
        self.broken: set[str] = set()  # files whose reading failed: their later ranges give nothing
        self.here: list[Stage | None] | None = None  # the stages for the refused lines (made at the first)

    def entries(self, f: InputFile, result: RangeParts) -> Iterator[tuple[tuple[str, int], int, object, bool]]:
        """((file, ordinal), unchanged bits, part, lives) of each document of the range in order."""
        if f.rel in self.broken:
            return
        if isinstance(result, str):  # a quarantined record for the file, and nothing more of it
            self.broken.add(f.rel)
            yield self._numbered(f), 0, None, False
            return
        (doc_parts, masks, live), refused, line_nos = result
        if isinstance(doc_parts, bytes):
            doc_parts = _unpacked(self.stage, doc_parts, live)
        if self.by_line is not None:
            for line_no, mask in zip(line_nos, masks, strict=True):
                if mask:
                    _note_unchanged(self.by_line, f.rel, line_no, mask)
        made = zip(masks, doc_parts, live, strict=True)
        for item in _with_refused(made, len(live), refused, f, self.cfg, self.known):
            if not isinstance(item, Document):
                mask, part, alive = item
                yield self._numbered(f), mask, part, alive
                continue
            doc = item
            if doc.rejected is not None:
                yield self._numbered(f), 0, None, False
                continue
            if self.here is None:
                self.here = _worker_stages(self.specs, self.stages, also=self.position)
            [part], [mask], [alive] = _prepare_docs(self.here, self.position, Batch([doc]))
            if mask and self.by_line is not None:
                _note_unchanged(self.by_line, f.rel, doc.line_no, mask)
            yield self._numbered(f), mask, part, alive

    def _numbered(self, f: InputFile) -> tuple[str, int]:
        ordinal = self.counts.get(f.rel, 0)
        self.counts[f.rel] = ordinal + 1
        return f.rel, ordinal


def _stream(
    executor: Executor,
    specs: list[StageConfig],
    stages: list[Stage],
    docs: Iterable[Document | _StreamRange],
    text_field: str = "text",
    ranges: InputConfig | None = None,
    rejections: dict[str, int] | None = None,
) -> Iterator[Batch]:
    """The batches through every stage: per-document runs in the workers (with the per-document part
    of the cross-document stage that follows, if it has one), cross-document stages here, in order.
    ``docs`` may hold ``_StreamRange`` tasks (only where ``stream_reads_ranges``: ``ranges`` is the input
    config the workers read them with; ``rejections`` gets the kinds of their documents rejected as read)."""
    shared = share(executor, _worker_stages(specs, stages))
    stream: Iterator[Any] = _batches(docs)
    segments = plan_segments(stages)
    local = isinstance(executor, ProcessExecutor)
    last = _runs_ahead(stages, segments) if local else None  # (see _run_ahead)
    for i, (cross, positions) in enumerate(segments):
        if i == last:
            break  # run ahead in the workers, kept or run again by _run_cross_ahead
        if cross:
            # An executor may run a cross-document stage itself (Ray: distributed dedup).
            distributed = getattr(executor, "cross_document", None)
            handled = distributed(stages, positions, stream) if distributed is not None else None
            if handled is not None:
                stream = handled
            elif last is not None and i == last - 1:
                stream = map(partial(_run_cross_ahead, stages, positions, segments[last][1]), stream)
            else:
                stream = map(partial(_run_positions, stages, positions), stream)
        else:
            following = segments[i + 1][1][0] if i + 1 < len(segments) else None
            ahead = following if following is not None and _prepares_documents(stages[following]) else None
            if local:
                after = segments[last][1] if last is not None and i == last - 2 else None
                if i == 0 and ranges is not None:  # (the first segment: the documents are read there)
                    unread = _lazy_originals(stages, segments, last)
                    task = partial(_run_item, shared, positions, ahead, ranges, after=after, unread=unread)
                    read = _StreamRangesRead(specs, stages, positions, ahead, ranges, rejections)
                    stream = _in_workers(executor, task, stream, text_field, read)
                else:
                    task = partial(_run_sent, shared, positions, ahead, after=after)
                    stream = _in_workers(executor, task, stream, text_field)
            else:
                stream = executor.map(partial(_run_in_worker, shared, positions, ahead), stream)
    return stream


def _runs_ahead(stages: list[Stage], segments: list[tuple[bool, list[int]]]) -> int | None:
    """The index of the last segment if the first round trip to local workers can run it ahead
    (``_run_ahead``): per-document, text-only stages after one cross-document stage after per-document
    stages (the default stages: normalize after dedup after the others); else None."""
    if len(segments) < 3:
        return None
    (cross_before, _), (cross, _), (cross_after, after) = segments[-3:]
    if cross_before or not cross or cross_after:
        return None
    if all(stages[p].text_only and getattr(stages[p], "process_ahead", None) is None for p in after):
        return len(segments) - 1
    return None


def plan_segments(stages: list[Stage]) -> list[tuple[bool, list[int]]]:
    """Group stage positions into runs: (cross_document, positions). Per-document runs go to workers."""
    segments: list[tuple[bool, list[int]]] = []
    for i, stage in enumerate(stages):
        cross = stage.cross_document
        if segments and not cross and not segments[-1][0]:
            segments[-1][1].append(i)
        else:
            segments.append((cross, [i]))
    return segments


def _batches(docs: Iterable[Document | _StreamRange]) -> Iterator[Batch | _StreamRange]:
    """The documents in batches (``BATCH_DOCS``, ``BATCH_CHARS``); a ``_StreamRange`` as it is, in its place."""
    batch: list[Document] = []
    chars = 0
    for doc in docs:
        if isinstance(doc, _StreamRange):
            if batch:
                yield Batch(batch)
                batch, chars = [], 0
            yield doc
            continue
        batch.append(doc)
        chars += len(doc.text)
        if len(batch) >= BATCH_DOCS or chars >= BATCH_CHARS:
            yield Batch(batch)
            batch, chars = [], 0
    if batch:
        yield Batch(batch)


@dataclass
class RunResult:
    outdir: Path
    report: dict[str, Any]

    @property
    def documents_in(self) -> int:
        return self.report["documents"]["in"]

    @property
    def documents_out(self) -> int:
        return self.report["documents"]["out"]

    @property
    def documents_rejected(self) -> int:
        return self.report["documents"]["rejected"]

    @property
    def quarantined(self) -> int:
        return self.report["documents"]["quarantined"]


def _crash_point(name: str) -> None:
    """Fault injection for the crash-safety tests: CLEANCORPUS_CRASH_AT=name:N kills the process the
    N-th time it passes this point."""
    target = os.environ.get("CLEANCORPUS_CRASH_AT")
    if target and target.rsplit(":", 1)[0] == name:
        _crash_counts[name] = _crash_counts.get(name, 0) + 1
        if _crash_counts[name] == int(target.rsplit(":", 1)[1]):
            os.kill(os.getpid(), signal.SIGKILL)


_crash_counts: dict[str, int] = {}


@dataclass
class _FileTally:
    documents: int = 0
    kept: int = 0
    rejected: int = 0


# Files whose outputs are made durable and recorded in the state together (see _Outputs): a small file's
# fsyncs and SQLite commit cost more than its cleaning (1,000 .txt files: ~3,000 fsyncs). A group ends at
# whichever limit comes first, so that a killed run loses little work (the next run redoes it).
GROUP_FILES = 64
GROUP_BYTES = 16 << 20  # of input
GROUP_SECONDS = 2.0


@dataclass
class _Finished:
    """A file whose outputs are complete (``close``d, not yet synced nor renamed), awaiting its group's commit."""

    input: InputFile
    tally: _FileTally
    writer: OutputWriter
    parts: tuple[AtomicFile, AtomicFile] | None


class _Outputs:
    """Output files in input order and their audit parts, committed in groups of files (``GROUP_*``): a group's
    outputs are made durable (fsync, rename) first, then its files and what stages learnt from them are
    recorded in the state in one transaction. A kill loses the files of the group under way only."""

    def __init__(
        self,
        config: RunConfig,
        files: list[InputFile],
        outdir: Path,
        store: StateStore,
        stages: list[Stage],
        hashes: dict[str, str],
        mtimes: dict[str, int],
        record_state: bool,
    ) -> None:
        self.config = config
        self.files = files
        self.outdir = outdir
        self.store = store
        self.stages = stages
        self.hashes = hashes
        self.mtimes = mtimes
        self.record_state = record_state
        dump = config.result_dump()  # (reads and hashes the stages' pattern files)
        self.config_hash = config_hash(dump)
        self.result_config = result_config(dump)
        self.index = {f.rel: i for i, f in enumerate(files)}
        self.next_file = 0  # files before this one are complete
        self.writer: OutputWriter | None = None
        self.parts: tuple[AtomicFile, AtomicFile] | None = None
        self.tally = _FileTally()
        self.pending: list[_Finished] = []  # the group under way
        self.pending_bytes = 0
        self.group_started = 0.0
        self.committed: list[str] = []
        self.ahead = _ahead_stage(stages) if record_state else None  # (see record_ahead)
        self.added: set[str] = set()  # complete files whose rows record_ahead wrote (all of them)
        self._recording: threading.Thread | None = None  # the last group's state record (finish)
        self._recorded = threading.Event()  # (its commit is done: the thread goes on with the WAL's copy)
        self._recording_error: BaseException | None = None
        # removed.jsonl and rejected.jsonl as this run writes their parts, and the files of those parts in order:
        # where these are all the parts, _assemble_audit commits them instead of decompressing the parts again
        # (~0.05 s for the 62 MB of removed.jsonl of 40 MB of web text). (One left by a killed run is removed.)
        self.streams: dict[str, tuple[AtomicFile, list[str]]] = {}
        if config.output.audit:
            for kind in _AUDIT_KINDS:
                tmp = outdir / f"{kind}.jsonl{STREAM_PARTIAL}"
                tmp.unlink(missing_ok=True)
                self.streams[kind] = (AtomicFile(outdir / f"{kind}.jsonl", if_written=True, tmp=tmp), [])

    def _part(self, source: str, kind: str) -> AtomicFile:
        # zstd: the parts hold a second copy of removed.jsonl (kept to assemble it again when a file changes), ~8x
        # smaller so (62 -> 8 MB for 40 MB of input), for ~0.06 s of CPU there (_REMOVED_PART_ZSTD); rejected.jsonl's
        # are small (0.5 MB), whole pages repeating each other far apart: level 1's larger table finds more there.
        level = _REMOVED_PART_ZSTD if kind == "removed" else 1
        return AtomicFile(audit_part(self.store.folder, source, kind), compression="zst", if_written=True, level=level)

    def _close_current(self, commit: bool = True) -> None:
        """The current file is complete: its outputs join the group under way, which is committed when full
        (if ``commit``: ``finish`` commits the last group itself, its record in the background)."""
        if self.writer is None:
            return
        self.writer.close()
        for kind, part in zip(_AUDIT_KINDS, self.parts, strict=True) if self.parts else ():
            part.close()
            if not part.empty:
                self.streams[kind][1].append(self.writer.input.rel)
        if not self.pending:
            self.group_started = time.monotonic()
        self.pending.append(_Finished(self.writer.input, self.tally, self.writer, self.parts))
        self.pending_bytes += self.writer.input.size
        self.writer, self.parts = None, None
        if commit and (
            len(self.pending) >= GROUP_FILES
            or self.pending_bytes >= GROUP_BYTES
            or time.monotonic() - self.group_started >= GROUP_SECONDS
        ):
            self._commit_group()

    def _commit_group(self, in_background: bool = False) -> None:
        """Make the group's outputs durable (all synced, then renamed), then record its files in the state: here,
        or (``in_background``, for the last group, whose stages are done) in a thread that ``wait_recorded`` joins."""
        group = self.pending  # (left in place until it is durable: abort() removes what is left of it)
        if not group:
            return
        # Synced in a row, not file by file between the writes: a file created while the filesystem commits
        # its journal for an fsync waits for it (ext4: creating an output took 0.25-0.75 ms so, and 1,000
        # .txt files spent ~1 s there). (Starting every file's write-back first, fadvise DONTNEED, was slower.)
        for done in group:
            done.writer.commit()
            for part in done.parts or ():
                part.commit()
            _crash_point("file-outputs-durable")
            self.committed.append(done.input.rel)
        self.pending, self.pending_bytes = [], 0
        if in_background:
            self._recording = threading.Thread(
                target=self._record_noting_error, args=(group,), name="cleancorpus-record"
            )
            self._recording.start()
        else:
            self._record(group)

    def _record(self, group: list[_Finished]) -> None:
        # Taken even when not recorded (a --limit trial), so stages do not hold it for the whole run.
        entries = []
        for done in group:
            f = done.input
            popped = [(_state_key(i, s), s.pop_state(f.rel)) for i, s in enumerate(self.stages)]
            rows = ((key, payload) for key, payloads in popped for payload in payloads)  # built as they are saved
            record = FileRecord(
                f.rel,
                # absolute: explain and report.html, run from another directory than the run, read it there
                str(f.path) if f.stdio else os.path.abspath(f.path),
                f.size,
                self.hashes.get(f.rel, ""),
                self.config_hash,
                **vars(done.tally),
                mtime_ns=self.mtimes.get(f.rel, 0),
                output="" if f.stdio else output_rel(f, self.config.output.format),
            )
            entries.append((record, rows))
        if self.record_state:
            self.store.commit_files(entries, self.result_config)
        for done in group:
            tally = done.tally
            noun = "document" if tally.documents == 1 else "documents"
            log.info("finished %s: %d %s, %d kept", done.input.rel, tally.documents, noun, tally.kept)
            _crash_point("file-committed")

    def record_ahead(self) -> None:
        """Write the state rows of the file under way that are final already (``Stage.ready_state``: dedup's
        full chunks of its documents) into the state's open transaction (``StateStore.add_rows``), which its
        group's record commits once the group's outputs are durable, as before; the group's earlier files' rows
        go first (they are all there: those files are complete). After each batch: the record after the last
        one (the run's serial tail at 2 workers, ~0.2 s on 40 MB) is left with the last chunk and the commit."""
        if self.ahead is None or self.writer is None:
            return
        position, stage = self.ahead
        source = self.writer.input.rel
        ready = iter(stage.ready_state(source))
        first = next(ready, None)
        if first is None:
            return
        key = _state_key(position, stage)
        for done in self.pending:
            if done.input.rel not in self.added:
                self.added.add(done.input.rel)
                self.store.add_rows(done.input.rel, ((key, payload) for payload in stage.pop_state(done.input.rel)))
        self.store.add_rows(source, ((key, payload) for payload in chain((first,), ready)))

    def _record_noting_error(self, group: list[_Finished]) -> None:
        try:
            if self.record_state:
                self.store.defer_checkpoint()
            self._record(group)
        except BaseException as err:  # raised in the main thread by wait_recorded()
            self._recording_error = err
            return
        finally:
            self._recorded.set()
        # The record is durable (in the WAL, synced): the run goes on (report.json, report.html) while the WAL is
        # copied into the database (~0.03-0.05 s for 26 MB on 40 MB of web text) here, beside it, not in the run's
        # closing of the store; the connection is closed here too (removing the WAL file: ~0.01 s).
        if self.record_state:
            try:
                self.store.checkpoint()
                self.store.close_database()
            except Exception as err:  # (the record is whole in the WAL, which SQLite copies at the next opening)
                log.warning("the state database's log was not copied into it: %s: %s", type(err).__name__, err)

    def wait_recorded(self, raise_error: bool = True) -> None:
        """Wait for the commit of the state record ``finish(..., in_background=True)`` started; raise what it
        raised. (Its thread then copies the WAL into the database: ``join_recording`` waits for that.)"""
        if self._recording is not None:
            # (a stop signal while waiting: the record goes on using the state connection, which the caller
            # closes next, so it is let end first; SQLite keeps it whole either way)
            _wait_through_signal(self._recorded.wait)
        if self._recording_error is not None and raise_error:
            error, self._recording_error = self._recording_error, None
            raise error

    def join_recording(self) -> None:
        """Wait for the thread of the state record to end (the WAL copied, the connection closed): before the
        state is closed."""
        if self._recording is not None:
            _wait_through_signal(self._recording.join)

    def _advance_to(self, file_index: int) -> None:
        while self.next_file <= file_index:
            self._close_current()
            f = self.files[self.next_file]
            self.writer = OutputWriter(
                f, self.outdir, self.config.input, self.config.output.metadata_field, self.config.output.format
            )
            if self.config.output.audit:
                self.parts = tuple(self._part(f.rel, kind) for kind in _AUDIT_KINDS)  # type: ignore[assignment]
            self.tally = _FileTally()
            self.next_file += 1

    def write(self, doc: Document, rendered: bytes = b"") -> None:
        """Write the document, or its rejection, and its removed.jsonl lines: ``rendered`` (see
        ``Batch.removed_lines``), then those of the Removals it still holds."""
        self._advance_to(self.index[doc.source])
        self.tally.documents += 1
        if doc.rejected is None:
            assert self.writer is not None
            try:
                self.writer.write(doc)
            except UnwritableRecord as err:  # one record the output format cannot hold: quarantined
                doc.reject("output", str(err), quarantine=True)
        if self.parts is not None:
            removed_part, rejected_part = self.parts
            removed = rendered + removed_lines(doc) if doc.removed else rendered
            if removed:  # one write per document: pages can have hundreds of removed lines
                removed_part.write(removed)
                self.streams["removed"][0].write(removed)
            if doc.rejected is not None:
                record: dict[str, Any] = {"id": doc.id, "source": doc.source}
                if doc.line_no:
                    record["line"] = doc.line_no
                record.update(stage=doc.rejected.stage, reason=doc.rejected.reason, **(doc.rejected.extra or {}))
                record["text"] = original_text(doc, self.files[self.index[doc.source]], self.config.input)
                line = jsonl_line(record)
                rejected_part.write(line)
                self.streams["rejected"][0].write(line)
        if doc.rejected is not None:
            self.tally.rejected += 1
        else:
            self.tally.kept += 1

    def finish(self, last_file: int, in_background: bool = False) -> None:
        """Commit the files up to ``last_file``; the last one's state record in a thread if ``in_background``
        (the state database is not to be used until ``wait_recorded``)."""
        self._advance_to(last_file)
        # (Not committed by _close_current when full: a last file of GROUP_BYTES or more, e.g. one large JSONL,
        # had its state record, ~0.3 s, written here before the audit assembly rather than beside it.)
        self._close_current(commit=False)
        self._commit_group(in_background)

    def abort(self) -> None:
        """Leave no output of the files not committed: the current one and the group under way (the next run
        processes them again; aborting one already committed removes nothing)."""
        group, self.pending = self.pending, []
        current = [_Finished(self.writer.input, self.tally, self.writer, self.parts)] if self.writer else []
        for done in group + current:
            done.writer.abort()
            for part in done.parts or ():
                part.abort()
        self.writer, self.parts = None, None
        self.drop_streams()
        if self._recording is None:  # (else the record's thread has the transaction: it commits or rolls back)
            self.store.discard_rows()

    def drop_streams(self) -> None:
        """Remove what is left of the audit files as written (those ``_assemble_audit`` did not commit)."""
        for written, _ in self.streams.values():
            written.abort()


# The removed parts' zstd: level 1 with a hash table of 2^11 entries instead of 2^14 (8 kB instead of 64 kB) and
# matches from 6 bytes, not 7: the 62 MB of removed.jsonl of 40 MB of web text compress in 0.059 s instead of 0.068
# alone, ~0.075 instead of ~0.094 in a run (where the stages' work between two documents' writes evicts the larger
# table, likely), to the same size (8.01 MB, +0.07 %; trafilatura's 24 MB: +0.3 %). A standard zstd frame as before.
_REMOVED_PART_ZSTD = zstandard.ZstdCompressionParameters.from_level(1, hash_log=11, min_match=6)


def _ahead_stage(stages: list[Stage]) -> tuple[int, Stage] | None:
    """(position, stage) of the stage whose state rows ``_Outputs.record_ahead`` writes while their file is under
    way: the one stage that keeps any (``pop_state``; dedup's index), if it gives them early (``ready_state``).
    None if another stage keeps rows too: a file's rows are recorded in the stages' order."""
    keeping = [(i, stage) for i, stage in enumerate(stages) if type(stage).pop_state is not Stage.pop_state]
    if len(keeping) == 1 and type(keeping[0][1]).ready_state is not Stage.ready_state:
        return keeping[0]
    return None


def _renamed_files(store: StateStore, files: list[InputFile], hashes: dict[str, str], inputs: set[str]) -> list[str]:
    """Warnings for new input files with the content of a recorded file that is no longer an input (renamed or
    moved): dedup rejects each of their documents as a copy of the old file's, which stays recorded, so the run
    kept nothing of them and said only "0 kept"."""
    new = [f for f in files if not f.stdio and f.rel in hashes and store.file(f.rel) is None]
    if not new:
        return []
    gone = {r.content_hash: r.source for r in store.files() if r.source not in inputs and r.source != STDIN}
    if not gone:
        return []
    names = set(gone.values())
    warnings = []
    for f in new:
        if hashes[f.rel] in gone:
            old, how = gone[hashes[f.rel]], ""
        elif f.compression and _without_compression(f.rel) in names:
            # Compressed in place (a.jsonl -> a.jsonl.zst): other bytes, the same documents. Decompressed and
            # hashed only where the old name is gone, once: the cost of reading the file once more.
            old, how = _without_compression(f.rel), " compressed"
            try:
                if gone.get(_decompressed_hash(f)) != old:
                    continue
            except (OSError, EOFError, zstandard.ZstdError):
                continue  # (a damaged file: the reader says so)
        else:
            continue
        warnings.append(
            f"{f.rel} has the content of {old}{how}, processed before and no longer an input (renamed?): "
            f"its documents are copies of those recorded from {old}, which are kept, so they are "
            "rejected as duplicates; run with --rebuild to process the inputs as they are now"
        )
    return warnings


def _without_compression(rel: str) -> str:
    """``a.jsonl.zst`` -> ``a.jsonl``."""
    for suffix in (".gz", ".zst"):
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def _decompressed_hash(f: InputFile) -> str:
    """The content hash (``file_hash``'s) of a compressed input's decompressed bytes."""
    with decompressed(f) as fh:
        return stream_hash(fh)


def _state_key(position: int, stage: Stage) -> str:
    return f"{position}:{stage.name}"


def audit_part(state_folder: Path, source: str, kind: str) -> Path:
    """Where the audit records of one input file are kept between runs (zstd-compressed JSONL; plain JSONL
    from earlier versions)."""
    return state_folder / "audit" / f"{source}.{kind}.jsonl"


def copy_audit_part(path: Path, out: IO[bytes]) -> None:
    """Write the records of one audit part to ``out``, decompressed."""
    with open(path, "rb") as fh:
        if fh.read(4) != ZSTD_MAGIC:  # a part written before they were compressed
            fh.seek(0)
            shutil.copyfileobj(fh, out)
            return
        fh.seek(0)
        # Frame by frame, checking each one ends (a stream reader stops quietly where a cut-short file does).
        frame = zstandard.ZstdDecompressor().decompressobj()
        try:
            while chunk := fh.read(1 << 20):
                while chunk:
                    if frame.eof:  # another frame follows
                        frame = zstandard.ZstdDecompressor().decompressobj()
                    out.write(frame.decompress(chunk))
                    chunk = frame.unused_data if frame.eof else b""
        except zstandard.ZstdError as err:
            raise StateCorrupt(path, str(err), "audit part") from err
        if not frame.eof:
            raise StateCorrupt(path, "cut short", "audit part")


def _assemble_audit(
    outdir: Path,
    state_folder: Path,
    sources: Iterable[str],
    reuse: bool = False,
    fresh: Iterable[str] = (),
    streams: dict[str, tuple[AtomicFile, list[str]]] | None = None,
    rejected_done: threading.Event | None = None,
) -> list[str]:
    """rejected.jsonl and removed.jsonl: the parts of every processed file, in input-name order.

    What the last assembly made is recorded (``AUDIT_MANIFEST``: each part's size and time, the outputs'
    size and time). While the two files are as it left them: a run that processed nothing (``reuse``) leaves
    them alone when the parts are the same too, and a run whose new parts all come after the recorded ones
    (a cron job's new files, named by date) appends them. Else a file is written anew, whole (rewriting a
    large archive's audit each run took ~1 s and wrote all of it again: 250 MB for a 200 MB archive).

    Returns warnings: parts the last assembly used that are gone, of files not processed again (``fresh``) by
    this run (the audit folder deleted or damaged). Then
    the two files are not written anew from what is left, which lost the records of every earlier run (the
    only copy left): this run's parts are appended to them.

    ``streams`` (``_Outputs.streams``): per kind, the file as this run wrote its parts, and their input files in
    order; committed as the kind's file when those are the parts to assemble, in that order, or appended to it
    when they are the parts to append. ``rejected_done`` (if given) is set once rejected.jsonl is as this assembly
    leaves it (report.html's samples of a txt output read it: the caller sets it too when the assembly ends)."""
    names = sorted(set(sources))
    listing = _audit_listing(state_folder, names)
    manifest = state_folder / AUDIT_MANIFEST  # (beside the audit folder, which holds the parts only)
    try:
        recorded = orjson.loads(manifest.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        recorded = None
    # (A run killed while appending leaves a file whose size and time are not the recorded ones.)
    outputs = _audit_outputs(outdir)
    intact = isinstance(recorded, dict) and outputs is not None and recorded.get("outputs") == outputs
    if reuse and intact and recorded["parts"] == listing:  # type: ignore[index]
        return []
    lost = _lost_parts(recorded, listing, set(names) - set(fresh)) if outputs is not None else []
    if lost:
        used = [e for e in recorded["parts"] if isinstance(e, list)]  # type: ignore[index]
        new_parts = [e for e in listing if e not in used]
        for kind in ("rejected", "removed"):
            _append_parts(outdir / f"{kind}.jsonl", state_folder, [e for e in new_parts if e[1] == kind])
        written = AtomicFile(manifest)  # (the parts gone stay listed: later runs append too, until --rebuild)
        written.write(orjson.dumps({"parts": used + new_parts, "outputs": _audit_outputs(outdir), "lost": lost}))
        written.commit()
        return [
            f"the audit parts of {len(lost)} file{'s' * (len(lost) != 1)} ({', '.join(lost[:3])}"
            f"{', ...' if len(lost) > 3 else ''}) are missing from {state_folder / 'audit'}: removed.jsonl and "
            "rejected.jsonl were not written anew from the parts left, which would lose their records; this run's "
            "were appended. Run with --rebuild to write both anew"
        ]
    for kind in ("rejected", "removed"):
        parts = [entry for entry in listing if entry[1] == kind]
        before = [entry for entry in recorded["parts"] if entry[1] == kind] if intact else None  # type: ignore[index]
        if before is not None and parts[: len(before)] == before:
            new = parts[len(before) :]
            if streams and new and [entry[0] for entry in new] == streams[kind][1]:
                _append_written(outdir / f"{kind}.jsonl", streams[kind][0])  # (a cron run's new files)
            else:
                _append_parts(outdir / f"{kind}.jsonl", state_folder, new)
        elif streams and parts and [entry[0] for entry in parts] == streams[kind][1]:
            streams[kind][0].commit()  # (the parts' records as written, in the same order)
        else:
            _write_parts(outdir / f"{kind}.jsonl", state_folder, parts)
        if kind == "rejected" and rejected_done is not None:
            rejected_done.set()
    written = AtomicFile(manifest)
    written.write(orjson.dumps({"parts": listing, "outputs": _audit_outputs(outdir)}))
    written.commit()
    return []


def _lost_parts(recorded: Any, listing: list[list[object]], sources: set[str]) -> list[str]:
    """The input files (still recorded) whose audit parts the last assembly used and that are gone now."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("parts"), list):
        return []
    present = {(e[0], e[1]) for e in listing}
    lost = {str(s) for s in recorded.get("lost", []) if s in sources}
    for entry in recorded["parts"]:
        if isinstance(entry, list) and len(entry) == 4 and entry[0] in sources and (entry[0], entry[1]) not in present:
            lost.add(str(entry[0]))
    return sorted(lost)


def _write_parts(path: Path, state_folder: Path, parts: list[list[object]]) -> None:
    out = AtomicFile(path)
    try:
        for source, kind, _, _ in parts:
            copy_audit_part(audit_part(state_folder, str(source), str(kind)), out)  # type: ignore[arg-type]
        out.commit()
    except BaseException:
        out.abort()
        raise


def _append_parts(path: Path, state_folder: Path, parts: list[list[object]]) -> None:
    if not parts:
        return  # (nor is its time changed)
    with open(path, "r+b") as out:
        out.seek(0, os.SEEK_END)
        for source, kind, _, _ in parts:
            copy_audit_part(audit_part(state_folder, str(source), str(kind)), out)
            _crash_point("audit-appended")
        out.flush()
        os.fsync(out.fileno())


def _append_written(path: Path, written: AtomicFile) -> None:
    """``_append_parts`` of the parts this run wrote, from the file it wrote beside them (``_Outputs.streams``)."""
    written.close()
    with open(written.tmp, "rb") as records, open(path, "r+b") as out:
        out.seek(0, os.SEEK_END)
        shutil.copyfileobj(records, out, 1 << 20)
        _crash_point("audit-appended")
        out.flush()
        os.fsync(out.fileno())
    written.abort()  # (removed)


AUDIT_MANIFEST = "audit-assembled.json"
_AUDIT_KINDS = ("removed", "rejected")  # (the order of _Outputs.parts)
STREAM_PARTIAL = ".stream.partial"  # suffix of an audit file while this run writes it beside the parts


def _audit_listing(state_folder: Path, names: list[str]) -> list[list[object]]:
    """[source, kind, size, time] of each audit part that exists, in assembly order."""
    listing: list[list[object]] = []
    for source in names:
        for kind in ("rejected", "removed"):
            try:
                st = audit_part(state_folder, source, kind).stat()
            except OSError:
                continue
            listing.append([source, kind, st.st_size, st.st_mtime_ns])
    return listing


def _audit_outputs(outdir: Path) -> list[list[int]] | None:
    """[size, time] of rejected.jsonl and removed.jsonl, None when one is missing."""
    try:
        return [
            [st.st_size, st.st_mtime_ns]
            for st in (outdir.joinpath(f"{k}.jsonl").stat() for k in ("rejected", "removed"))
        ]
    except OSError:
        return None


def state_folder(config: RunConfig, outdir: Path) -> Path:
    return Path(config.state) if config.state else outdir / STATE_DIRNAME


def run(
    config: RunConfig,
    inputs: list[str] | None = None,
    outdir: str | Path | None = None,
    workers: int | None = None,
    limit: int | None = None,
    on_progress: Callable[[int, int, int, dict[str, Any]], None] | None = None,
    rebuild: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
) -> RunResult:
    """Run the pipeline over new and changed input files.

    ``on_progress(documents_done, characters_done, bytes_total, details)``, details: ``file`` (index
    of the file being read), ``files`` (the input files processed), ``stages`` (position -> StageStats
    so far; read only). A run with ``limit`` is a trial: it writes outputs but records nothing in the state.
    ``executor``: "local" (``workers`` processes, this one included: ``make_executor``; None: 1) or "ray" (Ray
    tasks; ``ray_address`` names a cluster, none starts a local Ray of ``workers`` CPUs, None: all);
    cross-document stages run in this process either way.
    """
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    if limit is not None and rebuild:
        # A trial must not touch what earlier runs recorded, and --rebuild forgets all of it.
        raise ConfigError(
            "--limit makes a trial run that leaves the state alone, --rebuild forgets the state: use one or "
            "the other (try a new config with --limit on another output folder, -o)"
        )
    out = Path(outdir if outdir is not None else config.output.dir)
    paths = list(inputs) if inputs else list(config.input.paths)
    if not paths:
        raise ConfigError("no input: name files or folders on the command line or in the config's input:")
    if STDIN in paths and config.output.format == "parquet":  # (before stdin is read)
        raise ConfigError(
            "output.format parquet cannot be written to stdout (input -): use jsonl or txt, "
            "or write the input to a file first"
        )
    for p in paths:
        if not Path(p).is_dir():
            continue
        if Path(p).resolve() == out.resolve():
            raise ConfigError(f"the output folder {out} is the input folder {p}: choose another with -o")
        if out.resolve() in Path(p).resolve().parents:
            # the output folder is left out of the inputs, so its subfolders were: a run read nothing, exit 0
            raise ConfigError(f"the input folder {p} is inside the output folder {out}: choose another with -o")
    folder = state_folder(config, out)
    files, skipped = discover(paths, exclude=out)
    files = [f for f in files if folder.resolve() not in f.path.resolve().parents]
    page = next((f for f in files if holds_html(f)), None)
    if page is not None and not any(
        getattr(stage_class(s.stage), "extracts_html", False) for s in config.enabled_stages()
    ):
        # else its markup would be "cleaned" as text and written as the documents' text
        raise ConfigError(
            f"{page.path} holds HTML pages, but the config runs no extract stage to turn them into text: "
            "add '- stage: extract' first under stages: (or enable it)"
        )
    # Output names, not input names, must differ: x.html is written to x.html.jsonl, which may be an input too.
    written: dict[str, InputFile] = {}
    for f in files:
        if f.stdio:
            continue
        rel = output_rel(f, config.output.format)
        if rel in written:
            raise ConfigError(
                f"two inputs would write the same output file {out / rel}: {written[rel].path} and {f.path}"
            )
        written[rel] = f
        if (out / rel).resolve() == f.path.resolve():
            raise ConfigError(f"output would overwrite the input file {f.path}: choose another output folder")
    if not files:  # an empty folder: in a cron job, nothing arrived; a missing one was refused above
        log.warning(
            "no input files found in %s (supported: %s, or - for stdin): nothing to do",
            ", ".join(paths),
            ", ".join(FORMATS),
        )
    # An output or state folder that cannot be written is a usage error found before anything is done
    # (Inaccessible), not a run failing half-way, when it writes its first output or records its first file.
    check_writable(out, "output folder")
    check_writable(folder, "state folder")
    store = StateStore(folder)
    collector_on = gc.isenabled()  # _run_locked pauses it while it sets up
    ending: list[Callable[[], None]] = []  # (waits _run_locked leaves to the run's end: its workers' exit)
    try:
        store.lock()
        store.check_writable()
        return _run_locked(
            config,
            files,
            skipped,
            out,
            store,
            workers,
            limit,
            on_progress,
            rebuild,
            started_at,
            started,
            executor,
            ray_address,
            ending,
        )
    finally:
        try:
            for wait in ending:
                wait()
        finally:
            store.close()
        if collector_on:
            gc.enable()


class _LetGo:
    """A pool let go of (``ProcessExecutor.close_soon``) once it has no more work, and closed later: ``close``
    waits for what ``let_go`` started (or closes it as usual if it was not let go)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.wait: Callable[[], None] | None = None

    def let_go(self) -> None:
        self.wait = self.executor.close_soon()  # type: ignore[attr-defined]

    def close(self, executor: Executor) -> None:
        if self.wait is not None and executor is self.executor:
            self.wait()
        else:
            executor.close()


def _wait_through_signal(wait: Callable[[], object]) -> None:
    """``wait()``; if a stop signal's exception (SIGTERM, Ctrl-C) interrupts it, wait again before letting the
    exception go on, so that no thread of the run is still writing when it leaves."""
    try:
        wait()
    except BaseException:
        wait()
        raise


class _Beside:
    """``fn(*args)`` in a thread beside what this one does next: ``result()`` waits for it and returns what it
    returned, or raises what it raised; ``wait()`` only waits (a stop signal while waiting: it waits again, so
    that nothing of the run is still writing when the signal's exception leaves it)."""

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as err:  # raised by result()
            self._error = err

    def wait(self) -> None:
        _wait_through_signal(self._thread.join)

    def result(self) -> Any:
        self.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._value


def _prepare_html(
    report: dict[str, Any], out: Path, state_folder: Path, all_files: list[InputFile], committed: list[str]
) -> Callable[[dict[str, Any]], str] | None:
    """``report_html.prepare_html`` for this run (None, logged, if it fails: report.html is then not written)."""
    try:
        from pipeline.report_html import prepare_html

        # The samples come from this run's own audit records (an incremental run shows its documents).
        run_audit = (
            [audit_part(state_folder, source, "removed") for source in committed],
            [audit_part(state_folder, source, "rejected") for source in committed],
        )
        return prepare_html(report, out, sources={f.rel: str(f.path) for f in all_files}, audit_files=run_audit)
    except Exception as err:
        log.warning("could not write %s: %s: %s", out / "report.html", type(err).__name__, err, exc_info=True)
        return None


def _remove_stale_outputs(store: StateStore, files: list[InputFile], out: Path, fmt: str | None) -> list[str]:
    """For --rebuild, before the state is forgotten: remove the outputs that earlier runs wrote for the input
    files about to be processed again, where these now go to another name (a changed ``output.format``),
    so that no output of the old format is left beside the new ones. Outputs of files that are no longer
    inputs stay, as in any run; input files are never touched (none is in the output folder). Returns the
    names removed, relative to the output folder."""
    current = {f.rel: f for f in files if not f.stdio}
    new_names = {output_rel(f, fmt) for f in current.values()}
    inputs = {f.path.resolve() for f in current.values()}
    recorded = store.files()
    own_names = {r.source for r in recorded}  # outputs in an input's own format are named as the input
    removed: list[str] = []
    for record in recorded:
        f = current.get(record.source)
        if f is None:
            continue
        if record.output:
            candidates = [record.output]
        else:  # recorded by an earlier version, which did not keep the name: the names it could have written
            candidates = [output_rel(f, other) for other in (None, "jsonl", "parquet", "txt")]
            candidates = [c for c in candidates if c == record.source or c not in own_names]
        for name in dict.fromkeys(candidates):
            if name in new_names:  # written again by this run
                continue
            path = out / name
            if path.is_file() and path.resolve() not in inputs:
                path.unlink()
                removed.append(name)
                log.warning(
                    "removed %s: the output of %s is now %s (--rebuild with another output format)",
                    path,
                    f.rel,
                    output_rel(f, fmt),
                    extra={"source": f.rel},
                )
    return removed


class _StateLoader:
    """Loads what the stages learnt from earlier runs (``Stage.load_state``: the dedup index, ~1 s of a cron
    run on a 200 MB archive) in a thread with its own database connection, while the first pass reads the
    new files and merges the others' parts (~0.6 s there): the first pass never uses these stages (its
    workers get fresh copies, ``_worker_stages``). ``join`` before the stages run; it raises what the
    loading raised."""

    def __init__(self, store: StateStore, stages: list[Stage], exclude: set[str]) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._load, args=(store, stages, exclude), name="cleancorpus-load-state", daemon=True
        )

    def _load(self, store: StateStore, stages: list[Stage], exclude: set[str]) -> None:
        try:
            db = store.reader()
            try:
                for position, stage in enumerate(stages):
                    stage.load_state(StageRows(db, _state_key(position, stage), exclude))
            finally:
                db.close()
        except BaseException as err:  # raised in the main thread by join()
            self._error = err

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        if self._thread.ident is not None:  # (started)
            self._thread.join()

    def join(self) -> None:
        self.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _run_locked(
    config: RunConfig,
    all_files: list[InputFile],
    skipped: list[tuple[str, str]],
    out: Path,
    store: StateStore,
    workers: int | None,
    limit: int | None,
    on_progress: Callable[[int, int, int, dict[str, Any]], None] | None,
    rebuild: bool,
    started_at: datetime,
    started: float,
    executor_kind: str = "local",
    ray_address: str | None = None,
    ending: list[Callable[[], None]] | None = None,
) -> RunResult:
    dump = config.result_dump()
    current_hash = config_hash(dump)
    previous_hash = store.meta("config_hash")
    stale_outputs: list[str] = []
    if rebuild:
        stale_outputs = _remove_stale_outputs(store, all_files, out, config.output.format)
        store.reset()
        shutil.rmtree(store.folder / "audit", ignore_errors=True)
    elif previous_hash is not None and previous_hash != current_hash:
        before = store.meta("config")  # (earlier versions recorded the hash only)
        changes, upgraded = config_changes(orjson.loads(before), result_config(dump)) if before else ([], False)
        what = f" ({', '.join(changes)})" if changes else ""
        if upgraded:  # the user's config is as it was: a newer cleancorpus added options that change results
            change, other = "this version of cleancorpus has options that change results", "go on with the earlier one"
        else:
            change, other = "the config changed", "use the earlier config"
        raise ConfigError(
            f"{change}{what} since the files recorded in {store.folder} were processed (config hash "
            f"{previous_hash} -> {current_hash}): run with --rebuild to reprocess everything with "
            f"{'this version' if upgraded else 'the new config'}, or {other}"
        )

    # Only new or changed files are processed; unchanged ones were done by an earlier run. A file with the
    # size and modification time recorded when it was hashed is not read again (as make and git do).
    files: list[InputFile] = []
    hashes: dict[str, str] = {}
    mtimes: dict[str, int] = {}  # modification time to record with the hash (0: not to be trusted)
    retimed: list[tuple[int, str, str]] = []  # recorded files found unchanged by content, with their new times
    unchanged = changed = 0
    replaced: list[dict[str, str]] = []  # recorded files whose output now comes from another path
    for f in all_files:
        if f.stdio:  # stdin is never unchanged; recorded as file '-', replacing the previous stdin run
            files.append(f)
            continue
        previous = store.file(f.rel)
        try:
            st = f.path.stat()
            same_time = previous is not None and previous.mtime_ns != 0 and previous.mtime_ns == st.st_mtime_ns
            if same_time and previous.size == st.st_size:  # type: ignore[union-attr]
                hashes[f.rel] = previous.content_hash  # type: ignore[union-attr]
            else:
                hashes[f.rel] = file_hash(f.path)
            mtimes[f.rel] = trusted_mtime(st.st_mtime_ns, time.time_ns())
        except OSError:
            files.append(f)  # the reader reports it and quarantines the file
            continue
        if previous is None:
            files.append(f)
        elif previous.size == st.st_size and previous.content_hash == hashes[f.rel]:
            unchanged += 1
            if previous.mtime_ns != mtimes[f.rel] and limit is None:
                retimed.append((mtimes[f.rel], f.rel, previous.content_hash))
        else:
            changed += 1
            files.append(f)
            # (another input folder with the same file names; recorded relative to the run's directory before)
            if os.path.abspath(previous.path) != os.path.abspath(f.path):
                replaced.append({"file": f.rel, "before": previous.path, "now": str(f.path)})
                log.warning(
                    "%s was processed from %s before; its output is replaced with that of %s",
                    f.rel,
                    previous.path,
                    f.path,
                    extra={"source": f.rel},
                )
    if retimed:
        store.note_mtimes(retimed)
    renamed = _renamed_files(store, files, hashes, {f.rel for f in all_files})

    # Setting up makes the run's long-lived objects (stages, tables, caches, the loaded state): the collector's
    # automatic full passes on the way would walk them again and again (one took 48 ms in a fresh run here); it
    # is back on once they are frozen below (and in run() whatever happens).
    collector_on = gc.isenabled()
    gc.disable()
    specs = config.enabled_stages()
    stages = build_stages(specs)
    # Nothing new or changed (a cron run that finds nothing to do): what the stages learnt from earlier runs
    # (the dedup index, which grows with the archive) and the first pass's parts are not loaded, and no worker
    # process or Ray cluster is started; the stages only give the report its (empty) rows.
    idle = not files
    loader = None if idle else _StateLoader(store, stages, exclude={f.rel for f in files})
    input_rejections: dict[str, int] = {}

    def read_all(files: list[InputFile], count: bool = True) -> Iterator[Document]:
        docs = (doc for f in files for doc in read_documents(f, config.input))
        for doc in docs if limit is None else islice(docs, limit):
            if count and doc.rejected:
                kind = reason_kind(doc.rejected.reason)
                input_rejections[kind] = input_rejections.get(kind, 0) + 1
            yield doc

    totals: dict[int, StageStats] = {i: StageStats(s.name) for i, s in enumerate(stages)}
    outputs = _Outputs(config, files, out, store, stages, hashes, mtimes, record_state=limit is None)
    if ending is not None:
        ending.append(outputs.join_recording)  # (its thread may go on after the run's tail: run() waits for it)
    kept = rejected = quarantined = chars_in = chars_out = done = 0
    last_file = -1
    total_bytes = sum(f.size for f in files)
    worker_stages = _worker_stages(specs, stages)
    compiling = None if idle else _compile_ahead(specs, stages)
    executor = (
        make_executor(1, _init_worker, (worker_stages,), "local")
        if idle
        else make_executor(workers, _init_worker, (worker_stages,), executor_kind, ray_address)
    )
    warming: threading.Thread | None = None
    finished = False  # (the stream ran to its end: its workers are let go without waiting for them)
    if getattr(executor, "forks", False):  # before the first task starts the workers
        copies = pickle.loads(pickle.dumps(worker_stages, protocol=pickle.HIGHEST_PROTOCOL))  # warm copies
        split = _first_pass_stages(stages) or len(copies)  # no first pass: all of them now
        if split < len(copies):
            _warm_up(copies[:split], first_pass=True)  # what the first pass's workers run
            # The rest warms up in this process while the workers run the first pass (the later stages,
            # and the first-pass stage's own run: boilerplate's line scorer, ~0.06 s off the serial
            # start-up); the stream then gets new workers, forked once that is done (see _first_pass_stages).
            later = copies[split - 1 :]
            warming = threading.Thread(target=_warm_up, args=(later,), name="cleancorpus-warm-up")
        else:
            _warm_up(copies)
    elif not idle and executor_kind == "local":  # (this process runs the stages; forked workers: _warm_up)
        for stage in stages:
            stage.load()
    # What exists now (modules, stages, the loaded state) lives as long as the run: the garbage
    # collector's full passes need not walk it again and again, here nor in forked workers.
    gc.freeze()
    if collector_on:
        gc.enable()
    try:
        # A first pass sees every input file, also the unchanged ones, so that a run killed and run
        # again learns exactly what the uninterrupted run learnt; what it learns from a file is kept in
        # the state, so that a later run need not read the file again while it is unchanged.
        first_shared: dict[int, Shared] = {}
        first_pool = _LetGo(executor)
        if (warming is not None or loader is not None) and getattr(executor, "forks", False):
            # The first pass's (first) stages reach its workers as they fork, not pickled to them after it (~0.02
            # s of this process's time before the first task, and as much in each worker): _first_pass uses them.
            first = next((i for i, stage in enumerate(stages) if stage.needs_prepare), None)
            if first is not None and not idle:
                first_shared[first] = share(executor, _worker_stages(specs, stages, also=first))
            executor.start()  # the first pass's workers fork before the threads exist
        if warming is not None:
            warming.start()
            if isinstance(executor, ProcessExecutor):  # (the first pass's end: see ProcessExecutor.busy)
                executor.busy = warming.is_alive
        if loader is not None:
            loader.start()
        # (Not with --limit: a trial reads what it reads.)
        cache = (
            FirstPassCache(store, current_hash, hashes, {f.rel for f in all_files} - {f.rel for f in files})
            if limit is None
            else None
        )
        by_line: Unchanged = {}  # (the unchanged bits of the files the first pass's workers read by ranges)
        new_pool = warming is not None and isinstance(executor, ProcessExecutor)  # (for the stream: below)
        keep_later: list[Callable[[], None]] = []
        skippable = (
            _first_pass(
                executor,
                specs,
                stages,
                all_files,
                lambda chosen: read_all(chosen, count=False),
                config.input.text_field,
                cache,
                config.input if limit is None else None,  # (a --limit trial reads what it reads)
                by_line,
                first_shared,
                # (its workers exit while the last parts are merged, the stream getting a pool of its own)
                first_pool.let_go if new_pool else None,
                keep_later if new_pool else None,  # (kept while the stream's pool starts: below)
            )
            if not idle
            else {}
        )
        if loader is not None:
            loader.join()
            gc.freeze()  # (what it loaded lives as long as the run)
        if warming is not None:
            warming.join()
            first_pool.close(executor)  # its workers were forked before the later stages were warm
            executor = make_executor(workers, _init_worker, (worker_stages,), executor_kind, ray_address)
            gc.freeze()
        for work in keep_later:  # (this process does it once the stream's worker has its first tasks)
            if isinstance(executor, ProcessExecutor):
                executor.meanwhile(work)
            else:
                work()
        # The stream's local workers read the plain JSONL files themselves (not with --limit: a trial reads what
        # it reads), the other files are read here.
        ranges = config.input if limit is None and stream_reads_ranges(executor, stages) else None
        docs: Iterable[Document | _StreamRange]
        if ranges is not None:
            docs = _stream_input(files, read_all, skippable, by_line)
        else:
            docs = _marked(read_all(files), skippable) if skippable else read_all(files)
        if limit is None and getattr(executor, "cross_document", None) is None:  # (Ray's driver sends its index)
            # A cross-document stage's tables are this process's alone (its workers' copies have none: _worker_stages).
            # Sized before the stream's workers forked (dedup's index: 16 MB of its slots written for 40 MB), they were
            # shared with them, and each page this process wrote then was copied first (~4,000 pages); sized once the
            # workers have forked (``meanwhile``: before any result is used), they are not.
            mapped = not all(cross for cross, _ in plan_segments(stages))  # (the pool is used: its map does it)
            pool = executor if isinstance(executor, ProcessExecutor) and mapped else None
            for stage in stages:
                if pool is not None and stage.cross_document:
                    pool.meanwhile(partial(stage.expect_input, total_bytes))
                else:
                    stage.expect_input(total_bytes)
        for batch in _stream(executor, specs, stages, docs, config.input.text_field, ranges, input_rejections):
            for position, st in batch.stats.items():
                totals[position].merge(st)
            for j, doc in enumerate(batch.docs):
                done += 1
                chars_in += original_chars(doc)
                last_file = outputs.index[doc.source]
                outputs.write(doc, b"" if batch.removed_lines is None else batch.removed_lines[j])
                if doc.rejected:
                    rejected += 1
                    if doc.rejected.quarantined:
                        quarantined += 1
                        log.warning(
                            "quarantined %s from %s: %s",
                            doc.id,
                            doc.source,
                            doc.rejected.reason,
                            extra={"document": doc.id, "source": doc.source, "reason": doc.rejected.reason},
                        )
                else:
                    kept += 1
                    chars_out += len(doc.text)
            outputs.record_ahead()
            if on_progress:
                on_progress(done, chars_in, total_bytes, {"file": last_file, "files": files, "stages": totals})
            settle_garbage()
            if stop_requested.is_set():
                raise StopRequested
        for position, stage in enumerate(stages):
            if stage.cross_document:
                stage.close()
                totals[position].counters.update(stage.take_stats())
        # (Read before the last file is recorded, below: the database is the recording thread's until then.)
        recorded = [r.source for r in store.files()] if config.output.audit else []
        # The last file's state record (the stages' rows, SQLite's fsync: ~0.4 s on 40 MB of input) is
        # written in a thread while the audit files are assembled.
        outputs.finish(last_file if limit is not None else len(files) - 1, in_background=True)
        finished = True
    except BaseException:
        outputs.abort()
        outputs.wait_recorded(raise_error=False)  # (e.g. interrupted just after it started)
        raise
    finally:
        if loader is not None:
            loader.wait()  # (a run that failed in its first pass: the thread ends before the process goes on)
        if finished and ending is not None and isinstance(executor, ProcessExecutor):
            ending.append(executor.close_soon())  # (the workers exit beside the tail: ~0.03 s of it at 2 workers)
        else:
            executor.close()
        _compiled_ahead(compiling)
        gc.unfreeze()  # a library call: leave the process's collector as it was
    warnings = list(renamed)  # for the operator: printed even by a --quiet run, and logged (assembly's: below)
    # A --limit trial reads the files up to the one its last document came from (when it stopped early).
    read = len(files) if limit is None or done < limit else last_file + 1

    report = {
        "cleancorpus": __version__,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": 0.0,  # (set once the last file is recorded, below)
        "workers": workers or 1,
        # where relative paths of the run (inputs, output, state) start: explain run elsewhere resolves them
        "cwd": os.getcwd(),
        "inputs": {
            "files": len(all_files),
            "processed": read,
            "unchanged_skipped": unchanged,
            "changed": changed,
            "replaced": replaced,
            "removed_outputs": stale_outputs,
            "bytes": sum(f.size for f in files[:read]),
            "limit": limit,
            # a --limit trial records no state: explain finds the inputs it read here
            "read_files": None
            if limit is None
            else {f.rel: str(f.path.resolve()) for f in files[:read] if not f.stdio},
            "skipped": [{"path": p, "reason": r} for p, r in skipped],
        },
        "documents": {
            "in": done,
            "out": kept,
            "rejected": rejected,
            "quarantined": quarantined,
            "rejected_at_input": dict(sorted(input_rejections.items())),
        },
        "characters": {"in": chars_in, "out": chars_out, "removed": chars_in - chars_out},
        "stages": [totals[i].to_json() for i in range(len(stages))],
        "state": {"folder": str(store.folder), "config_hash": current_hash, "recorded": limit is None},
        "warnings": warnings,
        "config": config.dump(),
    }
    # Nothing processed: report.html keeps showing the last run that did work (an hourly cron job's page was
    # otherwise almost always empty); report.json describes this run.
    keep_html = idle and (out / "report.html").exists()
    # report.html's sections (this run's audit records read back from their parts, the samples' texts: ~0.03-0.05
    # s) are made while the last file's state record is written (its thread, mostly in SQLite, ~0.1-0.3 s of the
    # tail) and the audit files are assembled (another, mostly their fsync: 62 MB of removed.jsonl on 40 MB of web
    # text, 0.03-0.06 s; its warnings are the report's once it ends); the page gets the run's time after them.
    # (report.html is for people to look at: failing to write it must never fail the run.)
    rejected_done = threading.Event()  # (a txt output's samples are found by the documents rejected.jsonl lists)

    def assemble() -> list[str]:
        try:
            return _assemble_audit(
                out,
                store.folder,
                recorded + outputs.committed,
                reuse=idle,
                fresh=outputs.committed,
                streams=outputs.streams,
                rejected_done=rejected_done,
            )
        finally:
            rejected_done.set()

    assembly = _Beside("cleancorpus-audit", assemble) if config.output.audit else None
    try:
        if assembly is not None and config.output.format == "txt":  # (only then report.html reads rejected.jsonl)
            rejected_done.wait()
        html_page = None if keep_html else _prepare_html(report, out, store.folder, all_files, outputs.committed)
        if assembly is not None:
            try:
                warnings += assembly.result()
            except BaseException as err:
                outputs.wait_recorded()  # (a failure to record the last file is the one to report: not committed)
                # The assembly starts again from the parts next time (the manifest is written last).
                err.unfinished = "removed.jsonl and rejected.jsonl were not finished (the next run writes them)"  # type: ignore[attr-defined]
                raise
    except BaseException:
        if assembly is not None:
            assembly.wait()  # (a stop signal here: the files are left as a killed assembly leaves them, or done)
        outputs.wait_recorded(raise_error=False)  # (the record ends before the state closes)
        raise
    finally:
        outputs.drop_streams()
    outputs.wait_recorded()
    report["seconds"] = round(time.perf_counter() - started, 3)
    for warning in warnings:
        log.warning("%s", warning)
    report_file = None
    try:
        report_file = AtomicFile(out / "report.json")
        report_file.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
        report_file.commit()
    except BaseException as err:
        if report_file is not None:
            report_file.abort()  # (a full disk left report.json.partial)
        err.unfinished = "report.json was not written (report.json and report.html describe an earlier run)"  # type: ignore[attr-defined]
        raise
    if keep_html or html_page is None:
        return RunResult(out, report)
    try:
        from pipeline.report_html import write_html_report

        write_html_report(report, out, prepared=html_page)
    except Exception as err:
        log.warning("could not write %s: %s: %s", out / "report.html", type(err).__name__, err, exc_info=True)
    return RunResult(out, report)
