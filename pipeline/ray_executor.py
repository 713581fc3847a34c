"""Per-document stages on Ray (``--executor ray [--ray-address ADDR]``; ``pip install 'cleancorpus[ray]'``).

The driver (this process) reads the inputs and writes the outputs. Batches go to Ray remote tasks,
a bounded number in flight, and come back in submission order. Dedup runs distributed
(``pipeline/ray_dedup.py``): the connected components of the documents sharing keys are
deduplicated in Ray tasks, each in input order, so results equal the local executors'. The
(prepared) stages are put in the object store once; each Ray worker process unpickles them once,
on its first batch.

With no address a local Ray is started (and stopped at close); with one, the driver joins that
cluster (``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others). Input
and output paths are only opened by the driver; the workers need cleancorpus installed (the same
version), nothing else.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Set-up done in this (worker) process, by the executor's key: initializer(*initargs) runs once.
_ready: set[str] = set()


def _call(key: str, initializer: Callable[..., None], setup: list[Any], fn: Callable[[T], R], item: T) -> R:
    """A Ray task: set the worker up on its first batch, then run ``fn(item)``."""
    if key not in _ready:
        import ray

        initializer(*ray.get(setup[0]))  # wrapped in a list: Ray passes the reference, not a copy per task
        _ready.add(key)
    return fn(item)


class RayExecutor:
    """Batches on Ray tasks, ``in_flight`` at a time, results in submission order."""

    def __init__(
        self,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
        address: str | None = None,
        workers: int | None = None,
        in_flight: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as err:  # an optional dependency
            raise RuntimeError("--executor ray needs Ray: pip install 'cleancorpus[ray]'") from err
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                # A local Ray sized for this machine (or --workers), small object store: batches are small.
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    object_store_memory=200 * 1024 * 1024,
                    log_to_driver=False,
                    configure_logging=False,
                )
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.in_flight = in_flight or 3 * max(1, cpus)
        self.key = uuid.uuid4().hex
        self.setup = [ray.put(initargs)]
        self.initializer = initializer
        self.task = ray.remote(num_cpus=1)(_call)

    def submit(self, fn: Callable[[Any], Any], item: Any, num_returns: int = 1) -> Any:
        """``fn(item)`` as a task on a set-up worker; ``item`` may be an object reference (resolved
        by Ray). Returns the result's reference, or a list of ``num_returns`` references."""
        task = self.task.options(num_returns=num_returns) if num_returns != 1 else self.task
        return task.remote(self.key, self.initializer, self.setup, fn, item)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> RayStream[R]:
        return RayStream(self, fn, items)

    def cross_document(self, stages: list[Any], positions: list[int], stream: Iterable[Any]) -> Iterator[Any] | None:
        """Run a cross-document stage on the cluster, or None to leave it to the caller (in order, here)."""
        from pipeline.ray_dedup import distributed_dedup
        from pipeline.stages.dedup import DedupStage

        if len(positions) == 1 and isinstance(stages[positions[0]], DedupStage):
            return distributed_dedup(self, stages[positions[0]], positions[0], stream)
        return None

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


class RayStream(Iterator[R]):
    """The results of ``RayExecutor.map``, in order (a bounded number of tasks in flight); or, with
    ``refs()``, the tasks' result references, so that a following Ray step (distributed dedup) takes
    the batches where they are instead of through the driver."""

    def __init__(self, executor: RayExecutor, fn: Callable[[Any], R], items: Iterable[Any]) -> None:
        self.submit = partial(executor.submit, fn)
        self.get = executor.ray.get
        self.in_flight = executor.in_flight
        self.items = items
        self._results: Iterator[R] | None = None

    def refs(self) -> Iterator[Any]:
        """Submit the tasks as the caller takes their references (none is waited for)."""
        for item in self.items:
            yield self.submit(item)

    def _in_order(self) -> Iterator[R]:
        pending: deque[Any] = deque()
        for ref in self.refs():
            pending.append(ref)
            if len(pending) >= self.in_flight:
                yield self.get(pending.popleft())
        while pending:
            yield self.get(pending.popleft())

    def __iter__(self) -> RayStream[R]:
        return self

    def __next__(self) -> R:
        if self._results is None:
            self._results = self._in_order()
        return next(self._results)
