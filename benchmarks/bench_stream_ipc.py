"""What the stream's round trips to local workers cost in pickling: bytes sent each way, and the CPU of pickling and
unpickling them, on the main process's side and on the workers' (issue 10's scaling).

    python benchmarks/bench_stream_ipc.py INPUT [--workers 2] [--rounds 5]   (from the repository root)

Runs ``cleancorpus run INPUT -o TMP -q --workers N`` in this process, keeping every stream task as the pool pickles
it and every result as a worker pickles it (the first pass's are left out); then times, best of ``--rounds``, the
main process's share (pickling the tasks, unpickling the results) and the workers' (unpickling the tasks,
pickling the results). The best of several rounds of one process's work: steadier than whole runs on a busy
machine. The sending itself (pipe copies) and the tasks' own work are not counted.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from multiprocessing.reduction import ForkingPickler  # noqa: E402

from pipeline import executors, runner  # noqa: E402


def capture(input_path: str, workers: int) -> tuple[list[bytes], list[bytes]]:
    """The stream's tasks and results of a run, pickled as the pool pickles them."""
    tasks: list[bytes] = []
    results: list[bytes] = []
    in_stream = False
    pool_map = executors.ProcessExecutor.map

    def recording_map(self: executors.ProcessExecutor, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        if not in_stream:
            yield from pool_map(self, fn, items)
            return

        def kept(items: Iterable[Any] = items) -> Iterator[Any]:
            for item in items:
                tasks.append(bytes(ForkingPickler.dumps((fn, item))))
                yield item

        for result in pool_map(self, fn, kept()):
            results.append(bytes(ForkingPickler.dumps(result)))
            yield result

    stream = runner._stream

    def marked_stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal in_stream
        in_stream = True
        yield from stream(*args, **kwargs)

    executors.ProcessExecutor.map = recording_map  # type: ignore[method-assign]
    runner._stream = marked_stream  # type: ignore[assignment]
    from pipeline.cli import cli

    out = Path(tempfile.mkdtemp(prefix="bench-stream-ipc-"))
    gc.disable()  # as pipeline.cli.main does
    try:
        cli.main(["run", input_path, "-o", str(out / "out"), "-q", "--workers", str(workers)], standalone_mode=False)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        executors.ProcessExecutor.map = pool_map  # type: ignore[method-assign]
        runner._stream = stream  # type: ignore[assignment]
        gc.enable()
    return tasks, results


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be 2 or more: one worker runs in this process, with nothing sent")
    tasks, results = capture(args.input, args.workers)
    task_objects = [ForkingPickler.loads(t) for t in tasks]
    result_objects = [ForkingPickler.loads(r) for r in results]
    gc.disable()
    send = best(args.rounds, lambda: [ForkingPickler.dumps(t) for t in task_objects])
    receive = best(args.rounds, lambda: [ForkingPickler.loads(r) for r in results])
    get = best(args.rounds, lambda: [ForkingPickler.loads(t) for t in tasks])
    give = best(args.rounds, lambda: [ForkingPickler.dumps(r) for r in result_objects])
    gc.enable()
    print(
        f"{len(tasks)} tasks, {sum(map(len, tasks)) / 1e6:.1f} MB out; "
        f"{len(results)} results, {sum(map(len, results)) / 1e6:.1f} MB back"
    )
    print(f"main process: pickling tasks {send:.3f} s + unpickling results {receive:.3f} s = {send + receive:.3f} s")
    print(f"workers:      unpickling tasks {get:.3f} s + pickling results {give:.3f} s = {get + give:.3f} s")
    print(f"all:          {send + receive + get + give:.3f} s (best of {args.rounds})")


if __name__ == "__main__":
    main()
