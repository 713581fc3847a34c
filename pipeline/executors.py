"""Executors run the per-document stages on batches: in-process, or in worker processes.

Both return results in submission order, so output never depends on the worker count. The process
executor keeps a bounded number of batches in flight, so memory stays bounded on large inputs.
``share(executor, obj)`` hands a large object (the prepared stages) to the workers once, not with
every batch.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import mmap
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import multiprocessing.reduction
import os
import pickle
import signal
import sys
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


def start_method() -> str:
    """How worker processes start: "fork" where it is safe (Linux, and no other thread in this process,
    e.g. no live progress display), so they inherit the imported stage modules and compiled patterns
    (about 0.8 s less CPU per worker than "spawn", which imports everything again); else "spawn"."""
    return "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"


class Shared:
    """An object the workers need, sent once: kept in this process (serial run), in a file the worker
    processes load once each (same machine), in Ray's object store (``ref``), or else pickled (sent
    with every task)."""

    def __init__(
        self,
        value: Any = None,
        path: str | None = None,
        ref: Any = None,
        blob: bytes | None = None,
        inherited: bool = False,
    ) -> None:
        self.key = uuid.uuid4().hex
        self.value, self.path, self.ref, self.blob = value, path, ref, blob
        self.inherited = inherited  # in ``_loaded`` of the process that forks the workers (ProcessExecutor.share)

    def __getstate__(self) -> dict[str, Any]:
        # (never the value)
        return {"key": self.key, "path": self.path, "ref": self.ref, "blob": self.blob, "inherited": self.inherited}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, value=None)

    def get(self) -> Any:
        if self.value is None:
            cached = _loaded.get(self.key)
            if cached is None:
                if self.inherited:
                    raise RuntimeError("a shared object meant to be inherited at the fork is not in this process")
                if self.path is not None:
                    with open(self.path, "rb") as fh:
                        cached = pickle.load(fh)
                elif self.ref is not None:
                    import ray

                    cached = ray.get(self.ref)
                else:
                    cached = pickle.loads(self.blob)  # type: ignore[arg-type]
                _loaded.clear()  # a worker needs only the latest one
                _loaded[self.key] = cached
                # The stages live as long as the worker: keep the garbage collector's full passes,
                # which the per-document work triggers, from walking their objects again and again.
                gc.freeze()
            self.value = cached
        return self.value


_loaded: dict[str, Any] = {}  # shared objects already loaded (workers) or to be inherited at the fork, by key


def share(executor: Executor, obj: Any) -> Shared:
    """``obj`` as the executor's workers receive it best (see ``Shared``)."""
    if isinstance(executor, SerialExecutor):
        return Shared(value=obj)
    if isinstance(executor, ProcessExecutor):
        return executor.share(obj)
    ray = getattr(executor, "ray", None)  # RayExecutor: the object store, once
    if ray is not None:
        return Shared(ref=ray.put(obj))
    return Shared(blob=pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class SerialExecutor:
    """Everything in this process (workers=1): no pickling, easiest to profile."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def close(self) -> None:
        pass


def _start_worker(parent: int, initializer: Callable[..., None], *initargs: Any) -> None:
    """A local worker dies with the run: a run killed (SIGKILL, the OOM killer) left its workers alive
    for ever, holding its memory and stdout, blocked on a pipe nobody writes (Linux: PR_SET_PDEATHSIG;
    the run lock they inherited is closed at the fork, ``state.close_lock_in_child``)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # (no prctl: nothing to do)
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the run died before the line above
            os._exit(1)
    # A stop is the run's to handle: timeout(1), systemd and a terminal's Ctrl-C signal the whole process group.
    # A worker that died of it, maybe half-way through sending a result, made the run fail with BrokenProcessPool
    # (exit 1, not 143) or hang for ever in the pool's shutdown (its thread waiting for the rest of the result),
    # holding the lock. Ignoring them, a worker ends when the run closes the pool, or dies with the run (above).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # (forked while they were held: _submit)
    initializer(*initargs)


_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class _RunHere(NamedTuple):
    """A task this process ran itself (``ProcessExecutor.map`` with ``helps``): its result, or the exception it
    raised (raised where its result is consumed, in order, as a worker's would be)."""

    value: Any
    error: Exception | None = None


_END = object()  # (no more items)


def _run_here(fn: Callable[[T], R], item: T) -> _RunHere:
    try:
        return _RunHere(fn(item))
    except Exception as err:  # (not a stop signal: that ends the run now)
        return _RunHere(None, err)


class _PoolFuture(Future):  # type: ignore[type-arg]
    """A pool task's future that a failure set after this process cancelled it leaves cancelled. When a worker
    dies, Python 3.10/3.11's pool thread fails every pending future, and one that ``_take_back`` had just
    cancelled raised InvalidStateError there: a thread's traceback printed above the run's one-line error, and
    the pool's clean-up skipped (3.12's pool ignores it so). Checked and set under the future's own lock, which
    ``cancel`` takes too."""

    def set_exception(self, exception: BaseException | None) -> None:
        with self._condition:  # type: ignore[attr-defined]
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):  # type: ignore[attr-defined]
                return
            super().set_exception(exception)


class _Claims:
    """Which of a fork pool's tasks were started, and by whom: a byte a task (a ring of them) in memory shared with
    the workers forked after it was made, set under a lock (a semaphore) by whichever starts the task first: a
    worker (``_run_claimed``), or this process taking it back at the end of a map (``ProcessExecutor._take_back``).
    The pool moves a task into its queue to the workers as soon as there is room, and from there ``Future.cancel``
    cannot take it back: at 1 worker all ``in_flight`` tasks were there, and at the end of each pass this process
    waited for the worker's last 2-3 tasks with nothing to do (~0.1 s of the stream's end on 40 MB)."""

    FREE, WORKER, HERE = 0, 1, 2

    def __init__(self, size: int) -> None:
        self.lock = multiprocessing.get_context("fork").Lock()
        self.flags = mmap.mmap(-1, size)  # (anonymous and shared: the forked workers see this process's writes)
        self.size = size
        self.given = 0  # (tasks given a slot so far)

    def slot(self) -> int:
        """A slot for the next task, free (the ring is larger than the tasks that can be pending at once)."""
        slot = self.given % self.size
        self.given += 1
        self.flags[slot] = self.FREE
        return slot

    def take(self, slot: int, who: int) -> bool | None:
        """Whether ``who`` starts the task (nobody has); None if the lock could not be had (a process killed
        while it held it: held for a few instructions at a time, but nothing may hang on it)."""
        if not self.lock.acquire(timeout=self.PATIENCE):
            return None
        try:
            if self.flags[slot] != self.FREE:
                return False
            self.flags[slot] = who
            return True
        finally:
            self.lock.release()

    PATIENCE = 1.0  # seconds


_claims: dict[str, _Claims] = {}  # by key: made before the workers fork, so that they inherit them


class _NotRun:
    """What a worker returns for a task this process took back (its result is not used)."""


def _run_claimed(key: str, slot: int, fn: Callable[[T], R], item: T) -> R | _NotRun:
    """In a worker: ``fn(item)``, unless this process took the task back before the worker came to it (without the
    lock it runs: a task run twice gives the same result, and only the one this process takes is used)."""
    if _claims[key].take(slot, _Claims.WORKER) is False:
        return _NotRun()
    return fn(item)


class ProcessExecutor:
    """A pool of worker processes (started as ``start_method()`` says), each set up once by
    ``initializer``; large objects reach them through ``share``. ``helps``: this process is one more lane,
    running a task itself whenever the result it needs next is not ready (``map``)."""

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
        in_flight: int | None = None,
        helps: bool = False,
        held: int | None = None,
    ) -> None:
        self.helps = helps
        self.lanes = workers + helps  # (the worker processes, and this process if it helps)
        # Tasks in the pool at a time: at 1 worker (--workers 2) its running task and the two in the pool's queue to
        # it, which a worker takes without waiting for this process (busy with a task of its own, or the results).
        self.in_flight = in_flight or workers * 3
        # Results held at a time (the pool's tasks and those run here), so that memory stays bounded.
        self.held = held or self.in_flight * 4
        self.forks = start_method() == "fork"  # the workers start (at the first task) as copies of this process
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork" if self.forks else "spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), initializer, *initargs),
        )
        self.files: list[str] = []  # temporary files of shared objects
        self.memory_files: list[int] = []  # in-memory ones (their descriptors)
        self.inherited: list[str] = []  # keys of shared objects the workers inherit (in _loaded here until close)
        self._forked = False  # (the first submit forks the workers: _submit)
        self._ending: Callable[[], None] | None = None  # (close_soon's wait)
        self._meanwhile: deque[Callable[[], None]] = deque()  # (``meanwhile``)
        # Whether this process has work of its own beside the map (a thread's): then it takes no task back at the
        # end of a map (``_take_back``): the task would slow that work down while the worker's core went idle.
        self.busy: Callable[[], bool] | None = None
        # (a helping pool's tasks can be taken back from its workers' queue: forked workers share the claims)
        self.claims_key: str | None = None
        if helps and self.forks:
            self.claims_key = uuid.uuid4().hex
            _claims[self.claims_key] = _Claims(max(4096, 2 * (self.in_flight + self.held)))
        _faster_pipes(self.pool)
        results = getattr(self.pool, "_result_queue", None)
        if self.forks and type(results) is multiprocessing.queues.SimpleQueue:  # (the workers inherit the class)
            results.__class__ = _BackgroundPuts

    def start(self) -> None:
        """Start the workers now (a fork pool starts all of them at its first task), e.g. before this
        process starts a thread: a worker forked while a thread holds a lock would never see it released.
        (A fork pool has forked them when its ``submit`` returns: the task's result is not waited for.)"""
        self._submit(int)

    def _submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        """``pool.submit``; the first, which forks the workers, with SIGTERM and SIGINT held. Python runs a
        signal's handler at the next line of Python, and at a fork that was a fork callback (logging's lock
        release), where the exception it raises (cli.Terminated, KeyboardInterrupt) is printed as "Exception
        ignored" and dropped: a run told to stop went on to the end and exited 0. Held, the signal is handled
        here once the workers are started."""
        if self._forked or not self.forks:
            task = self.pool.submit(fn, *args)
        else:
            self._forked = True
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                task = self.pool.submit(fn, *args)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        task.__class__ = _PoolFuture  # (only this thread cancels a task: nothing to race before it is set)
        return task

    def share(self, obj: Any) -> Shared:
        """``obj`` for the workers. Workers not forked yet (a fork pool starts all of them at its first task)
        inherit it: it waits in ``_loaded`` here, where their ``Shared.get`` finds it as it was at the fork,
        without the pickling here and the unpickling in each of them (the stream's stages at 2 workers: 0.01 s
        and ~2,500 page faults a worker, 0.01 s here). Otherwise ``obj`` is pickled to a file that each worker
        loads once: on Linux an anonymous in-memory file (``memfd_create``) the workers open through /proc,
        which vanishes with this process however it ends (a temporary file in /tmp outlived a run killed by
        SIGKILL or the OOM killer: 1.2 MB a run); elsewhere a temporary file, removed at close or exit."""
        if self.forks and not self._forked:
            shared = Shared(inherited=True)
            _loaded[shared.key] = obj
            self.inherited.append(shared.key)
            return shared
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        # (``value``: this process's tasks, ``helps``, use the object itself, not a copy loaded from the file, which
        # would also clear ``_loaded`` of the objects its later workers are to inherit)
        memory = _memory_file(data)
        if memory is not None:
            self.memory_files.append(memory[0])
            return Shared(obj, path=memory[1])
        fd, path = tempfile.mkstemp(prefix="cleancorpus-shared-", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self.files.append(path)
        atexit.register(_unlink, path)  # also when the run dies before close
        return Shared(obj, path=path)

    def meanwhile(self, work: Callable[[], None]) -> None:
        """Do ``work`` in this process during the next ``map`` of a helping pool, once the pool has its first
        tasks and before this process runs one itself or gives a result (serial work moved beside the workers':
        e.g. what the run kept of its first pass, saved while the stream's new worker starts). An exception it
        raises ends the map. Elsewhere (no helping) it is done now."""
        if not self.helps:
            work()
            return
        self._meanwhile.append(work)

    def _work_meanwhile(self, all_of_it: bool = True) -> bool:
        """Do the next work ``meanwhile`` was given (all of it); whether there was any."""
        did = False
        while self._meanwhile:
            self._meanwhile.popleft()()
            did = True
            if not all_of_it:
                break
        return did

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.helps:
            yield from self._map_helping(fn, items)
            return
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(self._submit(fn, item))
            if len(pending) >= self.in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _map_helping(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``map`` with this process as one of the lanes. On 2 cores, 2 worker processes and this one (reading
        the results in order, dedup's decisions, the outputs) were three busy processes, every task and result
        pickled and unpickled on the way; now the pool keeps ``in_flight`` tasks, and while the result needed
        next is not ready this process runs the next task itself (its own work, on the results, comes first:
        it never idles while the workers are busy), at most ``held`` results waiting. A task run here gets what
        a worker's gets: the same shared stages (``share``: the object itself here), a result that nothing else
        holds (what a task returns is made by it), its exception raised when its result is consumed, in order;
        a stop signal (KeyboardInterrupt) during it ends the map at once, as it ends a wait for a worker."""
        # (with the item of a task in the pool and its slot in the claims, if any)
        pending: deque[tuple[Future[R] | _RunHere, Any, int]] = deque()
        claims = _claims.get(self.claims_key) if self.claims_key is not None else None
        in_pool = 0
        it = iter(items)
        more = True
        while True:
            while more and in_pool < self.in_flight:
                item = next(it, _END)
                if item is _END:
                    more = False
                    break
                if claims is not None:
                    slot = claims.slot()
                    pending.append((self._submit(_run_claimed, self.claims_key, slot, fn, item), item, slot))
                else:
                    pending.append((self._submit(fn, item), item, -1))
                in_pool += 1
            if not pending:
                self._work_meanwhile()
                return
            head = pending[0][0]
            if type(head) is not _RunHere and not head.done():
                if self._work_meanwhile(all_of_it=False):
                    continue
                if more and len(pending) < self.held:
                    item = next(it, _END)
                    if item is _END:
                        more = False
                        continue
                    pending.append((_run_here(fn, item), None, -1))
                    continue
                if not more and not (self.busy is not None and self.busy()) and self._take_back(fn, pending, claims):
                    in_pool -= 1
                    continue
            self._work_meanwhile()  # (before any result is given)
            pending.popleft()
            if type(head) is _RunHere:
                if head.error is not None:
                    raise head.error
                yield head.value
            else:
                in_pool -= 1
                yield head.result()  # type: ignore[union-attr]

    @staticmethod
    def _take_back(
        fn: Callable[[T], R], pending: deque[tuple[Future[R] | _RunHere, Any, int]], claims: _Claims | None = None
    ) -> bool:
        """At the end of the items: run here the last task no worker has started (a worker would run it after
        the others, while this process waited), if there is one; whether there was. A task still in the pool's
        own list is cancelled; one in its queue to the workers is claimed (``_Claims``: the worker that comes
        to it then skips it). The workers take their tasks in order: if the last has started, all have."""
        for i in range(len(pending) - 1, 0, -1):
            task, item, slot = pending[i]
            if type(task) is _RunHere:
                continue
            if not task.cancel() and (claims is None or claims.take(slot, _Claims.HERE) is not True):
                return False
            pending[i] = (_run_here(fn, item), None, -1)
            return True
        return False

    def close(self) -> None:
        if getattr(self.pool, "_broken", False):
            # A worker died (the OOM killer): the pool's thread terminates the others and waits for them, but
            # they ignore SIGTERM (_start_worker)
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError):
                    process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self._ending is not None:  # (let go by close_soon: its workers may still be exiting)
            self._ending()
        self._let_go()

    def close_soon(self) -> Callable[[], None]:
        """``close`` without waiting for the workers to exit, which they do beside what this process does next (a
        worker forked from a large process takes ~0.03 s of the system's time to exit, and the run's tail waited
        for both); returns the function that waits for them and the pool's thread (call it before this process
        forks again, or starts another pool: not with a thread of this pool left, see ``start_method``)."""
        if getattr(getattr(self, "pool", None), "_broken", True):  # (no pool, or a worker died: as close does)
            self.close()
            return lambda: None
        thread = getattr(self.pool, "_executor_manager_thread", None)
        results = getattr(self.pool, "_result_queue", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._let_go()

        def wait() -> None:
            if thread is not None:
                thread.join()
            if results is not None:
                results.close()

        self._ending = wait
        return wait

    def _let_go(self) -> None:
        if self.claims_key is not None:  # (forked workers keep their copy of the entry)
            _claims.pop(self.claims_key, None)
        for path in self.files:
            _unlink(path)
        for fd in self.memory_files:
            os.close(fd)
        self.memory_files.clear()
        for key in self.inherited:
            _loaded.pop(key, None)
        self.inherited.clear()


# The pool's two pipes carry each task (~0.5 MB of text) to a worker and its result (~2 MB: texts, dedup's sketches,
# removed.jsonl's lines) back: 190 MB a run of 40 MB of web text at 2 workers. multiprocessing's Connection reads
# a message from a 64 kB pipe 64 kB at a time, each piece a new bytes object copied again into a growing BytesIO:
# 0.065 s of the main process's CPU (its pool thread) for the 150 MB of results, and a wakeup of the blocked
# writer for every 64 kB (~4,200 voluntary switches in the main process, ~3,000 in the workers). Read whole from
# 1 MB pipes: 0.04 s, ~1,400 and ~240.
_PIPE_BYTES = 1 << 20  # (Linux's default /proc/sys/fs/pipe-max-size)
_F_SETPIPE_SZ = 1031


class _Received(bytearray):
    """A message as ``_WholeReads._recv`` reads it, with the two methods of the BytesIO that Connection reads
    a message from (``getbuffer`` for ``recv``'s unpickling, without a copy)."""

    def getbuffer(self) -> memoryview:
        return memoryview(self)

    def getvalue(self) -> bytes:
        return bytes(self)


class _WholeReads(Connection):
    """A Connection that reads a message straight into one buffer of its size (the size comes first)."""

    def _recv(self, size: int, read: Any = None) -> _Received:  # type: ignore[override]
        buf = _Received(size)
        view = memoryview(buf)
        handle, at = self._handle, 0  # type: ignore[attr-defined]
        while at < size:
            n = os.readv(handle, [view[at:]])
            if n == 0:
                if at == 0:
                    raise EOFError
                raise OSError("got end of file during message")
            at += n
        return buf


with contextlib.suppress(AttributeError):  # (sent to a spawned worker: a plain Connection there, as before)
    multiprocessing.reduction.register(_WholeReads, multiprocessing.connection.reduce_connection)  # type: ignore[attr-defined]


class _BackgroundPuts(multiprocessing.queues.SimpleQueue):  # type: ignore[type-arg]
    """The pool's result queue, whose ``put`` in a forked worker pickles a task's result (as before: an error
    in it is the task's) and leaves its writing to a thread of the worker, which goes on to its next task. A result
    (~2 MB at 40 MB of web text) is larger than the pipe (1 MB): the worker's write waited until the main process's
    pool thread read it, and that thread waits for the GIL while the main process runs a task of its own (a
    shorter switch interval did not help): the worker sat 0.06-0.07 s of the stream of 40 MB in these writes at
    load 1.8, 0.13-0.18 s at load 3 (``benchmarks/scale_phases.py``'s "blocked"; ~0.00 s now).
    One result is written at a time and none waits: the next waits for it (one pickled result more in memory, ~2
    MB; with one more waiting, the w2 40 MB run's system CPU rose ~0.1 s over 11 rounds). Anything else put (a
    failed task's exception, the worker's exit) is written by the worker itself once the last result is, so nothing
    is lost or reordered before the worker exits."""

    _writes: Any = None  # (this worker's queue to its writing thread, and that thread's pid)
    _writer_pid = 0

    def put(self, obj: Any) -> None:
        result = (  # (a task's result, not its exception nor the worker's exit: exit_pid is Python 3.11's)
            type(obj).__name__ == "_ResultItem" and obj.exception is None and getattr(obj, "exit_pid", None) is None
        )
        data = multiprocessing.reduction.ForkingPickler.dumps(obj)
        if not result:
            self._drain()
            self._send(data)
            return
        if self._writer_pid != os.getpid():  # (first result in this process: its thread)
            import queue

            self._writes = queue.Queue(maxsize=1)
            self._writer_pid = os.getpid()
            threading.Thread(target=self._write_all, daemon=True, name="cleancorpus-results").start()
        self._drain()  # (the last result written first: one at a time, none waiting)
        self._writes.put(data)

    def _send(self, data: Any) -> None:
        with self._wlock:  # (other workers write to the same pipe)
            self._writer.send_bytes(data)

    def _write_all(self) -> None:
        while True:
            data = self._writes.get()
            try:
                self._send(data)
            except OSError:  # (the main process is gone: nobody reads)
                pass
            finally:
                del data
                self._writes.task_done()

    def _drain(self) -> None:
        if self._writer_pid == os.getpid():
            self._writes.join()


def _faster_pipes(pool: ProcessPoolExecutor) -> None:
    """The pool's task and result pipes read whole messages at once (``_WholeReads``; in forked workers too,
    which inherit the class) and, on Linux, hold 1 MB instead of 64 kB (fewer wakeups). Only
    where the pool's queues are the plain pipes of a POSIX system; anything else is left as it is."""
    for queue in (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None)):
        reader, writer = getattr(queue, "_reader", None), getattr(queue, "_writer", None)
        if type(reader) is not Connection or type(writer) is not Connection or not hasattr(os, "readv"):
            continue
        reader.__class__ = _WholeReads
        if sys.platform.startswith("linux"):
            import fcntl  # (POSIX only)

            with contextlib.suppress(OSError):  # (a lower pipe-max-size, or the user's pipe pages used up)
                fcntl.fcntl(writer.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)


def _memory_file(data: bytes) -> tuple[int, str] | None:
    """``data`` in an anonymous in-memory file of this process: its descriptor and a path other processes of
    this user can open (/proc/PID/fd/N), or None where there is no such file (not Linux, no /proc)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd = create("cleancorpus-shared", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    path = f"/proc/{os.getpid()}/fd/{fd}"
    try:
        with open(fd, "wb", closefd=False) as fh:
            fh.write(data)
        with open(path, "rb") as fh:  # (a /proc that hides fds: fall back to a temporary file)
            ok = fh.read(1) == data[:1]
    except OSError:
        ok = False
    if not ok:
        os.close(fd)
        return None
    return fd, path


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


EXECUTORS = ("local", "ray")


def make_executor(
    workers: int | None,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
    kind: str = "local",
    ray_address: str | None = None,
) -> Executor:
    """Worker processes set up by ``initializer(*initargs)``, or this process (which needs no setup);
    ``workers`` None: not given, 1 process here. ``kind="ray"``: Ray tasks on a local Ray (``workers`` CPUs,
    all of them when None; an explicit 1 is one CPU) or on the cluster at ``ray_address``."""
    if kind == "ray":
        from pipeline.ray_executor import RayExecutor

        return RayExecutor(initializer, initargs, address=ray_address, workers=workers)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if workers is None or workers <= 1:
        return SerialExecutor()
    # N lanes: N - 1 worker processes and this process, which runs tasks itself while it waits (``map``).
    return ProcessExecutor(workers - 1, initializer, initargs, helps=True)
