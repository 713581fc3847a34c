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

An address is checked before ``ray.init`` (``check_address``): Ray itself retries an address where
nothing answers for many minutes (and takes no SIGTERM meanwhile), so an unreachable cluster would
hang a cron job; here it ends the run within ``CONNECT_TIMEOUT`` seconds as a usage error.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from pipeline.config import ConfigError

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = 10.0  # seconds for the cluster's address to answer before the run gives up
GCS_TRIES = "RAY_gcs_server_port_wait_time_s"  # how many times ray.init tries to reach the GCS (1 s apart)
RAY_CLIENT_PORT = 10001  # Ray Client's port, when ray://HOST names none
ADDRESS_FORMS = "HOST:PORT (the head node's GCS port, e.g. head:6379), ray://HOST:PORT or auto"


class RayAddressError(ConfigError):
    """``--ray-address`` is not the address of a Ray cluster this machine reaches (the CLI exits 2)."""


def _host_port(address: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as (host, port); ValueError if it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port:  # no port, or only an IPv6 host's colons
        host, port = address, ""
    host = host.strip("[]")
    if host and not port and default_port is not None:
        return host, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(address)
    return host, int(port)


def _parse(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` and ``ray://HOST[:PORT]`` (Ray Client); None for ``auto``, ``local``
    and another ``scheme://`` (Ray resolves those); ValueError for anything else. Nothing is looked up."""
    if address in ("auto", "local"):
        return None
    if address.startswith("ray://"):
        return _host_port(address[len("ray://") :].rstrip("/"), RAY_CLIENT_PORT)
    if "://" in address:
        return None
    return _host_port(address)


def check_address_form(address: str) -> None:
    """Raise RayAddressError unless ``address`` has a form Ray accepts (nothing is looked up)."""
    try:
        _parse(address)
    except ValueError:
        raise RayAddressError(f"--ray-address {address!r} is not a Ray address: use {ADDRESS_FORMS}") from None


def _target(address: str) -> tuple[str, int] | None:
    """Where ``ray.init(address=address)`` connects, as Ray finds it: (host, port), or None if Ray starts
    one of its own (``local``) or resolves the address otherwise."""
    if address == "auto" and os.environ.get("RAY_ADDRESS"):  # as ray.init reads it
        env = os.environ["RAY_ADDRESS"]
        try:
            return _parse(env)
        except ValueError:
            raise RayAddressError(f"--ray-address auto: RAY_ADDRESS={env!r} is not a Ray address") from None
    if address != "auto":
        return _parse(address)
    # The cluster `ray start` last started on this machine (a file it leaves behind when killed, so
    # the address may be stale), else a running GCS process.
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # Ray's internals moved: leave it to ray.init
        return None
    try:
        found = canonicalize_bootstrap_address("auto")
        return None if found is None else _host_port(found)
    except (ConnectionError, ValueError):
        raise RayAddressError(
            "--ray-address auto: no running Ray cluster found on this machine "
            "(start one with `ray start --head`, or name its address)"
        ) from None


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise RayAddressError unless ``address`` is a Ray address (``HOST:PORT``, ``ray://HOST:PORT``,
    ``auto``, ``local``) whose port takes a connection within ``timeout`` seconds. (What answers there
    is not checked: a port that takes connections but is not Ray's is left to Ray.)"""
    check_address_form(address)
    target = _target(address)
    if target is None:
        return
    host, port = target
    host_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    where = f"--ray-address {address}" + ("" if address.endswith(host_port) else f" ({host_port})")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        problem = f"no answer within {timeout:g} s"
    except socket.gaierror as err:
        problem = f"unknown host {host!r} ({err.strerror or err})"
    except OSError as err:
        problem = (err.strerror or str(err)).lower()
    else:
        return
    raise RayAddressError(
        f"cannot reach the Ray cluster at {where}: {problem}; is the cluster up "
        "(`ray start --head` on its head node) and the address right?"
    )


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
            self._init(ray, address, workers)
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.in_flight = in_flight or 3 * max(1, cpus)
        self.key = uuid.uuid4().hex
        self.setup = [ray.put(initargs)]
        self.initializer = initializer
        self.task = ray.remote(num_cpus=1)(_call)

    @staticmethod
    def _init(ray: Any, address: str | None, workers: int | None) -> None:
        """``ray.init``, then this process's SIGTERM handler again: ray.init installs its own, in Python and in
        C++ (a stack dump, then abort: exit 134), and a run stopped by SIGTERM (cron's ``timeout``, systemd)
        must end as it does without Ray (exit 143, nothing unfinished kept)."""
        sigterm = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        try:
            if address:
                check_address(address)
                # Ray tries to join 20 times (each try up to ~40 s when a port answers that is not
                # Ray's): once, unless its operator says otherwise.
                ours = GCS_TRIES not in os.environ
                if ours:
                    os.environ[GCS_TRIES] = "1"
                try:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                except ConnectionError as err:
                    raise RayAddressError(f"cannot join the Ray cluster at --ray-address {address}: {err}") from None
                finally:
                    if ours:  # leave the environment as it was
                        os.environ.pop(GCS_TRIES, None)
            else:
                # A local Ray sized for this machine (or --workers), small object store: batches are small.
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    object_store_memory=200 * 1024 * 1024,
                    log_to_driver=False,
                    configure_logging=False,
                )
        finally:
            if sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)  # (also replaces the C++ handler: one sigaction per signal)

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
