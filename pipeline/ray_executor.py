"""Per-document stages on Ray (``--executor ray [--ray-address ADDR]``; ``pip install 'cleancorpus[ray]'``).

The driver (this process) still reads the inputs, runs the cross-document stages (dedup) in input
order and writes the outputs, so results equal the local executors'. Batches go to Ray remote tasks,
a bounded number in flight, and come back in submission order. The (prepared) stages are put in
the object store once; each Ray worker process unpickles them once, on its first batch.

With no address a local Ray is started (and stopped at close); with one, the driver joins that
cluster (``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others). Input
and output paths are only opened by the driver; the workers need cleancorpus installed (the same
version), nothing else.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(self.task.remote(self.key, self.initializer, self.setup, fn, item))
            if len(pending) >= self.in_flight:
                yield self.ray.get(pending.popleft())
        while pending:
            yield self.ray.get(pending.popleft())

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False
