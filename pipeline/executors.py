"""Executors run the per-document stages on batches: in-process, or in worker processes.

Both return results in submission order, so output never depends on the worker count. The process
executor keeps a bounded number of batches in flight, so memory stays bounded on large inputs.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Everything in this process (workers=1): no pickling, easiest to profile."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of worker processes; each is set up once by ``initializer`` (e.g. builds its stages)."""

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
        in_flight: int | None = None,
    ) -> None:
        self.in_flight = in_flight or workers * 3
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=initializer,
            initargs=initargs,
        )

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(self.pool.submit(fn, item))
            if len(pending) >= self.in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


EXECUTORS = ("local", "ray")


def make_executor(
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
    kind: str = "local",
    ray_address: str | None = None,
) -> Executor:
    """Worker processes set up by ``initializer(*initargs)``, or this process (which needs no setup);
    ``kind="ray"``: Ray tasks on a local Ray (``workers`` CPUs, or all of them when 1) or on the
    cluster at ``ray_address``."""
    if kind == "ray":
        from pipeline.ray_executor import RayExecutor

        return RayExecutor(initializer, initargs, address=ray_address, workers=workers if workers > 1 else None)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if workers <= 1:
        return SerialExecutor()
    return ProcessExecutor(workers, initializer, initargs)
