"""Dedup distributed on Ray, with the local executor's results (byte-identical outputs, audit files
and state rows).

Dedup's decisions are sequential (the first occurrence in input order wins, a document rejected as
mostly duplicate takes its units back out of the index), but two documents only ever interact
through a key they share: an exact unit key, a unit's LSH band key, the document's exact key or one
of its band keys. So:

1. **map** (Ray tasks, one per batch): the per-document stages and dedup's sketches (signatures,
   keys) run as before (``RayExecutor.map``); one more task per batch lists every key of every
   document, hash-partitioned into one part per reducer. The batches stay in the object store.
2. **shuffle** (one Ray task per partition): group the keys, and mark every document holding a key
   that another document also holds, or that the index loaded from earlier runs (state) holds.
3. **filter** (Ray tasks, one per batch, in order): a document that shares no key is deduplicated
   alone, in the task, against an empty index (only its own repeats can go): that is exactly what
   the sequential pass would do with it, since nothing before or after it can find it or be found
   by it. The result travels back with the document.
4. **driver** (in input order): the documents that share keys go through the real stage, whose
   index then only holds them (and the state); the others take their result from step 3, and what
   they added to the index is appended to the state rows in their place in the input order.

Documents rejected as duplicates, and every document whose fate depends on another, are decided by
the same code as in a local run; the cost is one barrier (all batches sketched before the first is
decided) and the batches kept in the object store meanwhile (Ray spills it to disk when full).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import runner
from pipeline.document import Document, Rejection, Removal
from pipeline.runner import Batch, apply_stage
from pipeline.stages import dedup_kernels
from pipeline.stages.base import Stage
from pipeline.stages.dedup import DedupStage, KeyTable

if TYPE_CHECKING:
    from pipeline.ray_executor import RayExecutor

log = logging.getLogger("cleancorpus")
MAX_PARTITIONS = 64
SOLO = "dedup:solo"  # doc.scratch key of a document deduplicated alone in a Ray task


@dataclass
class SoloResult:
    """What dedup did to a document that shares no key (computed in a Ray task)."""

    text: str | None  # None: unchanged
    removed: list[Removal]
    rejected: Rejection | None
    stats: Counter[str]
    clusters: list[tuple[str, int]]  # (rule, removed copies) of each cluster it made
    learnt: list[dict[str, Any]]  # its rows of the index state (none if rejected)


# ---------------------------------------------------------------- keys (map side, in Ray tasks)


def document_keys(stage: DedupStage, sketch: dict[str, Any]) -> np.ndarray:
    """Every key by which the document can find, or be found by, another one in ``stage``'s index.
    Kinds are not told apart: an equal key of two kinds only sends both documents to the driver."""
    o = stage.options
    parts = [sketch["keys"][sketch["words"] >= o.min_words]]
    if o.documents:
        parts.append(np.array([sketch["doc_key"]], dtype=np.uint64))
        if sketch["doc_signature"] is not None:
            parts.append(sketch["doc_band_keys"])
    if sketch["near"].size:
        parts.append(sketch["band_keys"].ravel())
    return np.concatenate(parts).astype(np.uint64, copy=False)


def _sketch_of(stage: DedupStage, doc: Document) -> dict[str, Any]:
    cached = doc.scratch.get(stage.name)
    if cached is None or cached[0] != doc.text:  # not sketched ahead (no per-document stage before dedup)
        stage.prepare_document(doc)
        cached = doc.scratch[stage.name]
    return cached[1]


def partition_keys(position: int, parts: int, batch_no: int, batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """The keys of a batch's documents, split by ``key % parts``: (keys, document codes) per part.
    A document's code is ``batch_no << 32 | its position in the batch``."""
    stage = runner._stages[position]
    assert isinstance(stage, DedupStage)
    keys: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for i, doc in enumerate(batch.docs):
        if doc.rejected is not None:
            continue
        try:
            k = document_keys(stage, _sketch_of(stage, doc))
        except Exception:  # the driver meets the same error in process() and quarantines the document
            continue
        keys.append(k)
        codes.append(np.full(k.size, (batch_no << 32) | i, dtype=np.int64))
    all_keys = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    all_codes = np.concatenate(codes) if codes else np.empty(0, np.int64)
    part = all_keys % np.uint64(parts)
    return [(all_keys[part == p], all_codes[part == p]) for p in range(parts)]


# ---------------------------------------------------------------- shuffle (reduce side)


def shared_documents(known: np.ndarray, *parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Codes of the documents holding a key that another document holds, or that ``known`` (the
    sorted keys of the index loaded from earlier runs) holds."""
    keys = np.concatenate([k for k, _ in parts]) if parts else np.empty(0, np.uint64)
    codes = np.concatenate([c for _, c in parts]) if parts else np.empty(0, np.int64)
    if not keys.size:
        return np.empty(0, np.int64)
    order = np.lexsort((codes, keys))
    keys, codes = keys[order], codes[order]
    distinct = np.ones(keys.size, dtype=bool)  # one (key, document) pair each
    distinct[1:] = (keys[1:] != keys[:-1]) | (codes[1:] != codes[:-1])
    keys, codes = keys[distinct], codes[distinct]
    repeated = keys[1:] == keys[:-1]  # sorted by key: the same key in two documents is adjacent
    shared = np.zeros(keys.size, dtype=bool)
    shared[1:] |= repeated
    shared[:-1] |= repeated
    if known.size:
        at = np.minimum(np.searchsorted(known, keys), known.size - 1)
        shared |= known[at] == keys
    return np.unique(codes[shared])


def index_keys(stage: DedupStage) -> np.ndarray:
    """Sorted keys of the stage's index (what earlier runs saved and this run loaded)."""
    tables: list[KeyTable] = [stage.exact, stage.units.buckets, stage.docs.buckets]
    parts = []
    for table in tables:
        slot_keys, slot_values, recent_keys, recent_values = table.tables()
        parts.append(slot_keys[slot_values != dedup_kernels.NO_VALUE])
        parts.append(recent_keys[recent_values != dedup_kernels.NO_VALUE])
    parts.append(np.fromiter(stage.doc_exact, np.uint64, len(stage.doc_exact)))
    return np.unique(np.concatenate(parts))


# ---------------------------------------------------------------- filter (in Ray tasks)


def dedup_alone(stage: DedupStage, doc: Document) -> SoloResult | None:
    """Dedup ``doc`` with ``stage`` (whose index holds no key of it) and undo it on the document,
    keeping the result; None if the stage fails on it (the driver then meets the same error)."""
    text, seen, sketch = doc.text, len(doc.removed), doc.scratch.get(stage.name)
    try:
        stage.process(doc)
    except Exception:
        result = None
    else:
        result = SoloResult(
            None if doc.text == text else doc.text,
            doc.removed[seen:],
            doc.rejected,
            stage.take_stats(),
            [(rule, copies) for (rule, _), copies in stage.cluster_sizes.items()],
            stage.take_learnt(doc.source),
        )
    stage.take_stats()
    stage.cluster_sizes.clear()
    stage._learnt.pop(doc.source, None)
    # The driver's apply_stage re-applies the result, counting it as it counts the real stage's.
    doc.text = text
    del doc.removed[seen:]
    doc.rejected = None
    if result is None and sketch is not None:
        doc.scratch[stage.name] = sketch
    return result


def filter_batch(position: int, shared: frozenset[int], batch: Batch) -> Batch:
    """Dedup alone the documents of the batch that share no key (positions not in ``shared``)."""
    model = runner._stages[position]
    stage = DedupStage(model.options)  # an empty index; documents sharing no key never meet in it
    for i, doc in enumerate(batch.docs):
        if doc.rejected is None and i not in shared:
            result = dedup_alone(stage, doc)
            if result is not None:
                doc.scratch[SOLO] = result
    return batch


# ---------------------------------------------------------------- driver


class DriverDedup(Stage):
    """The dedup stage as the driver's ``apply_stage`` runs it: documents that share keys go
    through the real stage, in input order; the others take the result computed for them alone."""

    name = DedupStage.name

    def __init__(self, stage: DedupStage) -> None:
        super().__init__(stage.options)
        self.stage = stage
        self.alone = self.driven = 0
        self.driven_seconds = 0.0  # in the real stage (the sequential part)
        self._clusters = 0

    def process(self, doc: Document) -> None:
        result: SoloResult | None = doc.scratch.pop(SOLO, None)
        if result is None:
            self.driven += 1
            started = time.perf_counter()
            try:
                self.stage.process(doc)
            finally:
                self.driven_seconds += time.perf_counter() - started
            return
        self.alone += 1
        if result.text is not None:
            doc.text = result.text
        doc.removed.extend(result.removed)
        doc.rejected = result.rejected
        stage = self.stage
        stage.stats.update(result.stats)
        for rule, copies in result.clusters:
            self._clusters += 1  # its own cluster: no key of it is anywhere else
            stage.cluster_sizes[(rule, -self._clusters)] = copies
        if result.learnt:  # in input order among the real stage's own rows: the state rows are the same
            stage._learnt.setdefault(doc.source, []).extend(result.learnt)

    def take_stats(self) -> Counter[str]:
        return self.stage.take_stats()


def _batch_refs(executor: RayExecutor, stream: Iterable[Batch]) -> Iterator[Any]:
    from pipeline.ray_executor import RayStream

    if isinstance(stream, RayStream):
        yield from stream.refs()  # the batches stay in the object store
    else:
        for batch in stream:
            yield executor.ray.put(batch)


def _shuffle(executor: RayExecutor, stage: DedupStage, keyed: list[list[Any]], parts: int) -> dict[int, set[int]]:
    """Batch number -> positions of its documents that share a key (one reduce task per partition)."""
    ray = executor.ray
    known = ray.put(index_keys(stage))
    reduce = ray.remote(num_cpus=1)(shared_documents)
    found = ray.get([reduce.remote(known, *(k[p] for k in keyed)) for p in range(parts)])
    shared: dict[int, set[int]] = {}
    for code in np.concatenate(found).tolist():
        shared.setdefault(code >> 32, set()).add(code & 0xFFFFFFFF)
    return shared


def distributed_dedup(
    executor: RayExecutor, stage: DedupStage, position: int, stream: Iterable[Batch]
) -> Iterator[Batch]:
    """The batches after dedup at ``position``, in input order, as a local run gives them."""
    ray = executor.ray
    # One key partition per CPU; capped, as every batch makes one object per partition.
    parts = max(1, min(MAX_PARTITIONS, int(ray.cluster_resources().get("CPU", 1))))
    corpus = stage.options.scope == "corpus"
    batches: list[Any] = []
    keyed: list[list[Any]] = []
    for batch_no, ref in enumerate(_batch_refs(executor, stream)):  # map
        batches.append(ref)
        if corpus:
            out = executor.submit(partial(partition_keys, position, parts, batch_no), ref, num_returns=parts)
            keyed.append(out if parts > 1 else [out])
    shared = _shuffle(executor, stage, keyed, parts) if corpus and batches else {}
    del keyed
    driver = DriverDedup(stage)
    pending: list[Any] = []
    for batch_no in range(len(batches) + executor.in_flight):  # filter, then decide in order
        if batch_no < len(batches):
            task = partial(filter_batch, position, frozenset(shared.get(batch_no, ())))
            pending.append(executor.submit(task, batches[batch_no]))
            batches[batch_no] = None  # the filtered batch replaces it in the object store
        done = batch_no - executor.in_flight
        if done >= 0:
            batch: Batch = ray.get(pending[done])
            pending[done] = None
            apply_stage(driver, position, batch)
            yield batch
    log.info(
        "distributed dedup: %d documents deduplicated alone in Ray tasks, %d in input order in the driver (%.2f s)",
        driver.alone,
        driver.driven,
        driver.driven_seconds,
    )
