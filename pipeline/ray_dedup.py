"""Dedup distributed on Ray, with the local executor's results (byte-identical outputs, audit files,
counters and state rows).

**Why components can be deduplicated apart.** Dedup's decisions are sequential: the first occurrence
in input order wins, and a document rejected as mostly duplicate takes its units back out of the
index. But ``DedupStage.process`` reads and writes the index only through the document's own keys:

* reads: the whole-document key (``doc_exact``) and document band keys (``docs`` buckets), the
  exact keys of its candidate units (at least ``min_words`` words, or matched as near-duplicates:
  ``exact``) and the band keys of its near-matched units (``units`` buckets). A hit names an
  earlier document holding that same key; verification (shingle sets or signatures) only reads the
  entries found that way, and messages and the "mostly duplicate of" owner only name those
  documents. Which of its short units stay (copied runs) depends only on those hits.
* writes: it inserts its own keys that are absent (first value wins), appends its own entries, and a
  roll-back deletes only what it has just added. Its state rows (``_learn``) are what it added.
* ordinals and cluster labels (an exact key, an LSH entry number) differ between a run over part of
  the corpus and the whole run, but they are only mapped back to document ids or counted.

So, by induction over the documents in input order, the index restricted to the keys of a
connected component of the document–key graph (documents joined when they share any key) holds
the same entries at each of its documents whether the other components were processed in between
or not: nothing outside the component writes, deletes or reads one of its keys. Each component
can run in its own task, in input order within it, and gives each of its documents the decision
the sequential pass gives. The index saved by earlier runs (state) is read the same way: a
component touching one of its keys is run on a copy of it (other saved entries are never found).

Steps:

1. **map** (Ray tasks, one per batch): the per-document stages and dedup's sketches (signatures,
   keys) run as before (``RayExecutor.map``); one more task per batch lists every key of every
   document, hash-partitioned into one part per reducer. The batches stay in the object store.
2. **shuffle** (one Ray task per partition): group the keys; join the documents sharing a key
   into a spanning forest (union-find; at most one link per document that shares a key), and list
   the documents holding a key of the saved index.
3. **components** (driver, small): union-find over the forests' links gives the components; they
   are packed into one group per CPU, largest first, onto the least loaded group.
4. **filter** (Ray tasks, one per batch): a document that shares no key is deduplicated alone,
   against an empty index (only its own repeats can go); the documents that share keys are sent
   on, with their sketches, to their group.
5. **groups** (one Ray task per group): the real stage over the group's documents in input order
   (a group is a union of components, so that is each component in input order), on a copy of the
   saved index if one of its components touches it. Each document's result comes back: its text,
   removals, rejection, counters, state rows, and the group's cluster sizes.
6. **driver** (in input order): each document takes its result; the state rows are appended in
   input order, so a later incremental run loads the same index. Only a document whose keys could
   not be computed goes through the real stage here (and meets the same error).

The cost: one barrier (all batches sketched before the first is decided), the batches kept in the
object store meanwhile (Ray spills it to disk when full), and one component per task: a giant
component (a line most documents share) is deduplicated by one task, sequentially.
"""

from __future__ import annotations

import heapq
import logging
import pickle
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from pipeline import runner
from pipeline.document import Document, Rejection, Removal
from pipeline.runner import Batch, apply_stage
from pipeline.stages import dedup_kernels
from pipeline.stages.base import Stage
from pipeline.stages.dedup import DedupOptions, DedupStage, KeyTable

if TYPE_CHECKING:
    from pipeline.ray_executor import RayExecutor

log = logging.getLogger("cleancorpus")
MAX_PARTITIONS = 64
RESULT = "dedup:result"  # doc.scratch key of a document's result, computed in a Ray task
_LOW = 0xFFFFFFFF  # a document's code: batch number << 32 | position in the batch


@dataclass
class DocResult:
    """What dedup did to one document (computed in a Ray task)."""

    text: str | None  # None: unchanged
    removed: list[Removal]
    rejected: Rejection | None
    stats: Counter[str]
    learnt: list[dict[str, Any]]  # its rows of the index state (none if rejected)
    clusters: list[tuple[tuple[str, int], int]] = field(default_factory=list)  # (label, copies) of its clusters (solo)
    error: Exception | None = None  # what the stage raised (the driver raises it again)


@dataclass
class Split:
    """Where the last distributed dedup decided its documents (for logs, tests and benchmarks)."""

    alone: int = 0  # documents deduplicated alone in the filter tasks
    grouped: int = 0  # documents deduplicated in group tasks (components of 2+ or touching the state)
    driver: int = 0  # documents left to the driver's real stage (their keys failed)
    components: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sizes (documents)
    tasks: list[int] = field(default_factory=list)  # documents per group task
    spanning: int = 0  # components with documents in more than one batch
    with_state: int = 0  # group tasks given the saved index
    task_seconds: list[float] = field(default_factory=list)  # CPU seconds of each group task
    driver_seconds: float = 0.0  # CPU seconds of the driver's union-find and packing

    def summary(self) -> str:
        largest = int(self.components.max()) if self.components.size else 0
        return (
            f"distributed dedup: {self.alone} documents deduplicated alone in Ray tasks, {self.grouped} in "
            f"{self.components.size} components (largest {largest}) in {len(self.tasks)} group tasks "
            f"(largest {max(self.tasks, default=0)}), {self.driver} in the driver"
        )


last_split = Split()  # set by each distributed dedup of this (driver) process


# ---------------------------------------------------------------- keys (map side, in Ray tasks)


def document_keys(stage: DedupStage, sketch: dict[str, Any]) -> np.ndarray:
    """Every key by which the document can find, or be found by, another one in ``stage``'s index.
    Kinds are not told apart: an equal key of two kinds only joins two components."""
    o = stage.options
    parts = [sketch["keys"][sketch["candidates"][0]]]  # the units process decides on (see unit_plan)
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
    """The keys of a batch's documents, split by ``key % parts``: (keys, document codes) per part."""
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


def only_partition(position: int, batch_no: int, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """``partition_keys`` with one partition (a one-CPU Ray): its one part, which a task with one
    return value must return as itself, not in a list."""
    return partition_keys(position, 1, batch_no, batch)[0]


# ---------------------------------------------------------------- components (union-find)


@numba.njit(cache=True, nogil=True)
def _root(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        up = parent[x]
        parent[x] = root
        x = up
    return root


@numba.njit(cache=True, nogil=True)
def _union_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root of each of nodes 0..n-1 once every a[i] is joined to b[i]: the smallest node of its component."""
    parent = np.arange(n)
    for i in range(a.size):
        ra, rb = _root(parent, a[i]), _root(parent, b[i])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
    for x in range(n):
        parent[x] = _root(parent, x)
    return parent


def spanning_forest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The components of the graph with edges a[i]–b[i] (int64 codes): every node (sorted) and its
    component's smallest node, i.e. its earliest document."""
    nodes = np.unique(np.concatenate([a, b]))
    roots = _union_roots(nodes.size, np.searchsorted(nodes, a), np.searchsorted(nodes, b))
    return nodes, nodes[roots]


def shared_links(known: np.ndarray, *parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reducer: of the documents holding a key that another one holds, a spanning forest (each
    node and its root), and the documents holding a key that ``known`` (the sorted keys of the index
    loaded from earlier runs) holds."""
    keys = np.concatenate([k for k, _ in parts]) if parts else np.empty(0, np.uint64)
    codes = np.concatenate([c for _, c in parts]) if parts else np.empty(0, np.int64)
    order = np.lexsort((codes, keys))
    keys, codes = keys[order], codes[order]
    distinct = np.ones(keys.size, dtype=bool)  # one (key, document) pair each
    distinct[1:] = (keys[1:] != keys[:-1]) | (codes[1:] != codes[:-1])
    keys, codes = keys[distinct], codes[distinct]
    first = np.ones(keys.size, dtype=bool)  # the first document of each key
    first[1:] = keys[1:] != keys[:-1]
    head = np.maximum.accumulate(np.where(first, np.arange(keys.size), 0))
    nodes, roots = spanning_forest(codes[~first], codes[head[~first]])  # later holders -> first holder
    touching = np.empty(0, np.int64)
    if known.size and keys.size:
        at = np.minimum(np.searchsorted(known, keys), known.size - 1)
        touching = np.unique(codes[known[at] == keys])
    return nodes, roots, touching


def index_keys(stage: DedupStage) -> np.ndarray:
    """Sorted keys of the stage's index (what earlier runs saved and this run loaded)."""
    tables: list[KeyTable] = [stage.exact, stage.short_counts, stage.units.buckets, stage.docs.buckets]
    parts = []
    for table in tables:
        slot_keys, slot_values = table.tables()
        parts.append(slot_keys[slot_values != dedup_kernels.NO_VALUE])
    parts.append(np.fromiter(stage.doc_exact, np.uint64, len(stage.doc_exact)))
    return np.unique(np.concatenate(parts))


@dataclass
class Plan:
    """Which group task decides each document that shares a key, and which groups need the saved index."""

    routes: dict[int, dict[int, int]]  # batch number -> {position in the batch: group}
    groups: int
    with_state: list[bool]  # per group: one of its components touches the saved index
    sizes: np.ndarray  # documents per component
    tasks: list[int]  # documents per group
    spanning: int = 0  # components with documents in more than one batch


def plan_groups(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]], groups: int) -> Plan:
    """The components of the reducers' forests, packed into at most ``groups`` groups: largest
    first, each onto the group with the fewest documents so far (ties: the lowest group)."""
    touching = np.concatenate([t for _, _, t in found])
    a = np.concatenate([n for n, _, _ in found] + [touching])
    b = np.concatenate([r for _, r, _ in found] + [touching])
    nodes, labels = spanning_forest(a, b)
    components, component_of, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    with_state_c = np.zeros(components.size, dtype=bool)
    with_state_c[np.unique(component_of[np.searchsorted(nodes, touching)])] = True
    groups = min(groups, components.size)  # none when no document shares a key
    load = [(0, g) for g in range(groups)]
    group_of = np.empty(components.size, np.int64)
    for c in np.argsort(-sizes, kind="stable").tolist():
        docs, g = heapq.heappop(load)
        group_of[c] = g
        heapq.heappush(load, (docs + int(sizes[c]), g))
    tasks = np.bincount(group_of, weights=sizes, minlength=groups).astype(int).tolist()
    with_state = np.zeros(groups, dtype=bool)
    with_state[group_of[with_state_c]] = True
    routes: dict[int, dict[int, int]] = {}
    for code, g in zip(nodes.tolist(), group_of[component_of].tolist(), strict=True):
        routes.setdefault(code >> 32, {})[code & _LOW] = g
    spanning = np.unique(labels[(nodes >> 32) != (labels >> 32)]).size  # the label is the earliest document
    return Plan(routes, groups, with_state.tolist(), sizes, tasks, spanning)


# ---------------------------------------------------------------- deciding documents (in Ray tasks)


def _writable(value: Any) -> Any:
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_writable(v) for v in value)
    return value


def _own_sketch(stage: DedupStage, doc: Document) -> None:
    """Arrays Ray takes from its object store are read-only; dedup's compiled pass is typed for
    writable ones (a read-only sketch array failed numba's typing with ``verify: estimate``)."""
    cached = doc.scratch.get(stage.name)
    if cached is not None:
        doc.scratch[stage.name] = (cached[0], {k: _writable(v) for k, v in cached[1].items()})


def decide(stage: DedupStage, doc: Document) -> DocResult:
    """Run ``stage`` on ``doc``; what it did (the document is left changed)."""
    text, seen = doc.text, len(doc.removed)
    _own_sketch(stage, doc)
    error = None
    try:
        stage.process(doc)
    except Exception as err:  # as apply_stage would: counters so far stay, the driver quarantines it
        error = err
    return DocResult(
        None if doc.text == text else doc.text,
        doc.removed[seen:],
        doc.rejected,
        stage.take_stats(),
        stage.take_learnt(doc.source),
        error=error,
    )


def dedup_alone(stage: DedupStage, doc: Document) -> DocResult:
    """Dedup ``doc`` with ``stage`` (whose index holds no key of it), keeping the result, and undo
    it on the document (the driver's apply_stage applies it again, counting it as for the real stage)."""
    text, seen = doc.text, len(doc.removed)
    result = decide(stage, doc)
    result.clusters = list(stage.cluster_sizes.items())  # all its own: none of its keys is elsewhere
    stage.cluster_sizes.clear()
    doc.text = text
    del doc.removed[seen:]
    doc.rejected = None
    return result


def filter_batch(position: int, groups: int, routes: dict[int, int], batch: Batch) -> Any:
    """Dedup alone the documents of the batch that share no key; the others (``routes``: position
    -> group) go, with their sketches, to their group: [batch, part of group 0, part of group 1, ...]
    (the batch alone when there are no groups)."""
    model = runner._stages[position]
    stage = DedupStage(model.options)  # an empty index; documents sharing no key never meet in it
    parts: list[list[tuple[int, Document]]] = [[] for _ in range(groups)]
    for i, doc in enumerate(batch.docs):
        if doc.rejected is not None:
            continue
        g = routes.get(i)
        if g is None:
            doc.scratch[RESULT] = dedup_alone(stage, doc)
            continue
        # What the stage reads of a document: the group needs no more (the batch keeps the rest).
        cached = doc.scratch.pop(stage.name, None)
        scratch = {stage.name: cached} if cached else {}
        parts[g].append((i, Document(doc.id, doc.text, doc.source, line_no=doc.line_no, scratch=scratch)))
    return [batch, *parts] if groups else batch


def dedup_group(
    options: DedupOptions, saved: bytes | None, batch_numbers: list[int], *parts: list[tuple[int, Document]]
) -> tuple[dict[int, DocResult], list[tuple[tuple[str, int], int]], float]:
    """A group task: the real stage, on a copy of the saved index (``saved``: the driver's stage,
    pickled) or an empty one, over the group's documents in input order. Returns each document's
    result by code, the copies of each cluster the group made, and the task's CPU seconds."""
    started = time.process_time()
    stage: DedupStage = pickle.loads(saved) if saved is not None else DedupStage(options)
    results: dict[int, DocResult] = {}
    for batch_no, part in zip(batch_numbers, parts, strict=True):
        for i, doc in part:
            results[(batch_no << 32) | i] = decide(stage, doc)
    return results, list(stage.cluster_sizes.items()), time.process_time() - started


# ---------------------------------------------------------------- driver


class DriverDedup(Stage):
    """The dedup stage as the driver's ``apply_stage`` runs it: each document takes the result
    computed for it in a Ray task; one without (its keys failed) goes through the real stage."""

    name = DedupStage.name

    def __init__(self, stage: DedupStage) -> None:
        super().__init__(stage.options)
        self.stage = stage
        self.driven = 0
        self._clusters = 0

    def add_clusters(self, clusters: Iterable[tuple[tuple[str, int], int]]) -> None:
        """Clusters made in a task. Across the corpus each is its own (its copies share a key with
        its original only there). With ``scope: document`` the local stage starts each document's
        index afresh, and clusters of equal labels (a key, an entry number) in two documents add up
        in its counts: so they do here."""
        sizes = self.stage.cluster_sizes
        for label, copies in clusters:
            if self.stage.options.scope == "document":
                sizes[label] += copies
            else:
                self._clusters += 1
                sizes[("ray", -self._clusters)] = copies

    def process(self, doc: Document) -> None:
        result: DocResult | None = doc.scratch.pop(RESULT, None)
        if result is None:
            self.driven += 1
            self.stage.process(doc)
            return
        stage = self.stage
        stage.stats.update(result.stats)
        self.add_clusters(result.clusters)
        if result.learnt:  # in input order among the others' rows: the state rows are the same
            stage._learnt.setdefault(doc.source, []).extend(result.learnt)
        if result.text is not None:
            doc.text = result.text
        doc.removed.extend(result.removed)
        doc.rejected = result.rejected
        if result.error is not None:  # after what the stage did before it failed, as in a local run
            raise result.error

    def take_stats(self) -> Counter[str]:
        return self.stage.take_stats()


def _batch_refs(executor: RayExecutor, stream: Iterable[Batch]) -> Iterator[Any]:
    from pipeline.ray_executor import RayStream

    if isinstance(stream, RayStream):
        yield from stream.refs()  # the batches stay in the object store
    else:
        for batch in stream:
            yield executor.ray.put(batch)


def _plan(executor: RayExecutor, stage: DedupStage, keyed: list[list[Any]], parts: int) -> Plan:
    """The shuffle (one reduce task per partition), then the components, in the driver."""
    ray = executor.ray
    known = ray.put(index_keys(stage))
    reduce = ray.remote(num_cpus=1)(shared_links)
    found = ray.get([reduce.remote(known, *(k[p] for k in keyed)) for p in range(parts)])
    started = time.process_time()
    plan = plan_groups(found, parts)
    last_split.driver_seconds = time.process_time() - started
    return plan


def _run_groups(executor: RayExecutor, stage: DedupStage, plan: Plan, parts: list[list[Any]]) -> list[Any]:
    """One task per group, given its part of every batch that has one (references, in batch order)."""
    ray = executor.ray
    saved = ray.put(pickle.dumps(stage, protocol=pickle.HIGHEST_PROTOCOL)) if any(plan.with_state) else None
    task = ray.remote(num_cpus=1)(dedup_group)
    present = {n: set(positions.values()) for n, positions in sorted(plan.routes.items())}  # groups per batch
    pending = []
    for g in range(plan.groups):
        numbers = [n for n, groups in present.items() if g in groups]
        refs = [parts[n][g] for n in numbers]
        pending.append(task.remote(stage.options, saved if plan.with_state[g] else None, numbers, *refs))
    return pending


def distributed_dedup(
    executor: RayExecutor, stage: DedupStage, position: int, stream: Iterable[Batch]
) -> Iterator[Batch]:
    """The batches after dedup at ``position``, in input order, as a local run gives them."""
    global last_split
    ray = executor.ray
    # One key partition (and at most one group) per CPU; capped, as every batch makes one object per partition.
    parts = max(1, min(MAX_PARTITIONS, int(ray.cluster_resources().get("CPU", 1))))
    corpus = stage.options.scope == "corpus"
    last_split = Split()
    batches: list[Any] = []
    keyed: list[list[Any]] = []
    for batch_no, ref in enumerate(_batch_refs(executor, stream)):  # map
        batches.append(ref)
        if corpus:
            if parts > 1:
                keyed.append(
                    executor.submit(partial(partition_keys, position, parts, batch_no), ref, num_returns=parts)
                )
            else:  # one return value is the task's whole result: return the one part itself
                keyed.append([executor.submit(partial(only_partition, position, batch_no), ref)])
    plan = _plan(executor, stage, keyed, parts) if corpus and batches else Plan({}, 0, [], np.empty(0, np.int64), [])
    del keyed
    filtered: list[Any] = []
    group_parts: dict[int, list[Any]] = {}
    for batch_no, ref in enumerate(batches):  # filter: solo documents decided, the others sent on
        routes = plan.routes.get(batch_no, {})
        task = partial(filter_batch, position, plan.groups, routes)
        out = executor.submit(task, ref, num_returns=plan.groups + 1)
        out = out if plan.groups else [out]
        filtered.append(out[0])
        if routes:
            group_parts[batch_no] = out[1:]
    del batches
    driver = DriverDedup(stage)
    results: dict[int, DocResult] = {}
    for group_results, clusters, seconds in ray.get(_run_groups(executor, stage, plan, group_parts)):
        results.update(group_results)
        driver.add_clusters(clusters)
        last_split.task_seconds.append(seconds)
    del group_parts
    for batch_no, ref in enumerate(filtered):  # decide in order
        batch: Batch = ray.get(ref)
        filtered[batch_no] = None
        for i, doc in enumerate(batch.docs):
            result = results.pop((batch_no << 32) | i, None)
            if result is not None:
                doc.scratch[RESULT] = result
            elif RESULT in doc.scratch:
                last_split.alone += 1
        apply_stage(driver, position, batch)
        yield batch
    last_split.grouped = int(plan.sizes.sum())
    last_split.components, last_split.tasks, last_split.driver = plan.sizes, plan.tasks, driver.driven
    last_split.spanning, last_split.with_state = plan.spanning, sum(plan.with_state)
    log.info(last_split.summary())
