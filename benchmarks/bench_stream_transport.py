"""What the worker pool's transport costs inside a run: the main process's CPU receiving and unpickling the
results, its feeder thread's (pickling and writing the tasks), the workers' time sending their results, and the
context switches and faults of all processes (issue 10's scaling).

    python benchmarks/bench_stream_transport.py INPUT [--workers 2]   (from the repository root)

Runs ``cleancorpus run INPUT -o TMP -q --workers N`` in this process with the pool's threads timed (thread CPU):
the executor's manager thread (``Connection._recv_bytes``, the receive; ``ForkingPickler.loads``, the unpickling),
the queue's feeder thread, and in each worker ``_sendback_result`` (wall and CPU: a worker waits there while the
main process drains the pipe). Both passes' pools are counted. One run: alternate trees and repeat on a busy
machine (``bench_stream_ipc.py`` times the pickling alone, best of N).
"""

from __future__ import annotations

import argparse
import concurrent.futures.process as cfp
import multiprocessing.connection as mpc
import multiprocessing.queues as mpq
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one


def _in_manager() -> bool:
    return isinstance(threading.current_thread(), cfp._ExecutorManagerThread)


def measure(input_path: str, workers: int) -> dict[str, Any]:
    """One run's figures (seconds, counts; ``sendback``: per worker, (wall, CPU, results sent))."""
    times = {"manager": 0.0, "receive": 0.0, "unpickle": 0.0, "feeder": 0.0}
    lock = threading.Lock()
    sent_dir = tempfile.mkdtemp(prefix="bench-transport-")

    def timed(kind: str, fn: Callable[..., Any], only_manager: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted = not only_manager or _in_manager()
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                if counted:
                    with lock:
                        times[kind] += time.thread_time() - started

        return wrapper

    sent = {"wall": 0.0, "cpu": 0.0, "n": 0}
    sendback = cfp._sendback_result

    def timed_sendback(*args: Any, **kwargs: Any) -> Any:  # (in a worker)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return sendback(*args, **kwargs)
        finally:
            sent["wall"] += time.perf_counter() - wall
            sent["cpu"] += time.thread_time() - cpu
            sent["n"] += 1
            with open(os.path.join(sent_dir, str(os.getpid())), "w") as fh:
                fh.write(f"{sent['wall']} {sent['cpu']} {sent['n']}")

    class Pickler:  # multiprocessing.connection's, its loads timed in the manager thread
        dumps = mpc._ForkingPickler.dumps  # type: ignore[attr-defined]
        loads = staticmethod(timed("unpickle", mpc._ForkingPickler.loads, only_manager=True))  # type: ignore[attr-defined]

    saved = (
        cfp._ExecutorManagerThread.run,
        mpq.Queue._feed,
        cfp._sendback_result,
        mpc._ForkingPickler,  # type: ignore[attr-defined]
        mpc.Connection._recv_bytes,
    )
    cfp._ExecutorManagerThread.run = timed("manager", cfp._ExecutorManagerThread.run)  # type: ignore[method-assign]
    mpq.Queue._feed = staticmethod(timed("feeder", mpq.Queue._feed))  # type: ignore[assignment]
    cfp._sendback_result = timed_sendback
    mpc._ForkingPickler = Pickler  # type: ignore[attr-defined]
    mpc.Connection._recv_bytes = timed("receive", mpc.Connection._recv_bytes, only_manager=True)  # type: ignore[method-assign]
    from pipeline.cli import cli

    out = Path(tempfile.mkdtemp(prefix="bench-transport-out-"))
    started = time.perf_counter()
    try:
        cli.main(["run", input_path, "-o", str(out / "out"), "-q", "--workers", str(workers)], standalone_mode=False)
    finally:
        wall = time.perf_counter() - started
        (
            cfp._ExecutorManagerThread.run,
            mpq.Queue._feed,
            cfp._sendback_result,
            mpc._ForkingPickler,
            mpc.Connection._recv_bytes,
        ) = saved  # type: ignore[method-assign, assignment, attr-defined]
        shutil.rmtree(out, ignore_errors=True)
    here, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    senders = []
    for name in sorted(os.listdir(sent_dir)):
        wall_s, cpu_s, n = Path(sent_dir, name).read_text().split()
        senders.append((float(wall_s), float(cpu_s), int(n)))
    shutil.rmtree(sent_dir, ignore_errors=True)
    return {
        "wall": wall,
        "main_cpu": here.ru_utime + here.ru_stime,
        "main_sys": here.ru_stime,
        "workers_cpu": children.ru_utime + children.ru_stime,
        "workers_sys": children.ru_stime,
        **times,
        "sendback": senders,
        "switches": (here.ru_nvcsw, children.ru_nvcsw),
        "faults": (here.ru_minflt, children.ru_minflt),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be 2 or more: one worker runs in this process, with nothing sent")
    m = measure(args.input, args.workers)
    print(
        f"wall {m['wall']:.2f} s; CPU main {m['main_cpu']:.2f} (sys {m['main_sys']:.2f}), "
        f"workers {m['workers_cpu']:.2f} (sys {m['workers_sys']:.2f}), all {m['main_cpu'] + m['workers_cpu']:.2f} s"
    )
    print(
        f"main: manager thread {m['manager']:.3f} s (receiving {m['receive']:.3f}, unpickling {m['unpickle']:.3f}); "
        f"feeder thread {m['feeder']:.3f} s"
    )
    print(
        "workers sending results (wall / CPU s, results): "
        + ", ".join(f"{w:.3f} / {c:.3f}, {n}" for w, c, n in m["sendback"])
    )
    print(
        f"voluntary switches main {m['switches'][0]:,} workers {m['switches'][1]:,}; "
        f"minor faults main {m['faults'][0]:,} workers {m['faults'][1]:,} (load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
