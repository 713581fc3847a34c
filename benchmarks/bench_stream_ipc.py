"""What the stream's round trips to local workers cost in pickling: bytes sent each way, and the CPU of pickling and
unpickling them, on the main process's side and on the workers' (issue 10's scaling).

    python benchmarks/bench_stream_ipc.py INPUT [--workers 2] [--rounds 5] [--parts]   (from the repository root)

Runs ``cleancorpus run INPUT -o TMP -q --workers N`` in this process, keeping every stream task as the pool pickles
it and every result as a worker pickles it (the first pass's are left out); then times, best of ``--rounds``, the
main process's share (pickling the tasks, unpickling the results) and the workers' (unpickling the tasks,
pickling the results). The best of several rounds of one process's work: steadier than whole runs on a busy
machine. The sending itself (pipe copies) and the tasks' own work are not counted.

A result is pickled, and timed, in the worker that made it: dedup's sketches of a batch pickle as one pack there
(``dedup._SketchPack``), while a sketch unpickled here pickles as a pack of its own, ~40x as many, so results
pickled again here cost ~1.5x (0.27 s instead of 0.18 s on 40 MB) and unpickle ~2x slower than the real ones.

``--parts``: also the results by part (``runner._changes``: the texts the stages changed, the texts normalize made
ahead, removed.jsonl's lines, dedup's sketches, the rest of the scratch, the rest), each part's bytes and the CPU of
pickling and unpickling it alone (best of ``--rounds``; a batch's sketches packed again as the worker packs them,
``dedup._pack_sketches``, its CPU in "sketch packing", their unpacking in the whole results' figure only).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from multiprocessing.reduction import ForkingPickler  # noqa: E402

from pipeline import executors, runner  # noqa: E402
from pipeline.stages import dedup  # noqa: E402


def _pickled(rounds: int, fn: Callable[[Any], Any], item: Any) -> tuple[bytes, float]:
    """In a worker: ``fn(item)`` pickled as the pool pickles it, and the best CPU time of ``rounds`` picklings."""
    result = fn(item)
    times = []
    for _ in range(rounds):
        started = time.process_time()
        data = ForkingPickler.dumps(result)
        times.append(time.process_time() - started)
    return bytes(data), min(times)


def capture(input_path: str, workers: int, rounds: int = 1) -> tuple[list[bytes], list[bytes], float]:
    """The stream's tasks and results of a run, pickled as the pool pickles them (the results in the workers),
    and the workers' CPU of pickling the results (per result, the best of ``rounds``)."""
    tasks: list[bytes] = []
    results: list[bytes] = []
    given: list[float] = []
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

        for data, seconds in pool_map(self, partial(_pickled, rounds, fn), kept()):
            results.append(data)
            given.append(seconds)
            yield ForkingPickler.loads(data)

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
    return tasks, results, sum(given)


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


PARTS = ("texts", "texts as read", "ahead", "lines", "sketches", "scratch", "meta+rejected+records", "stats")


def parts(results: list[bytes]) -> dict[str, list[Any]]:
    """The captured results (``runner._changes``, one a batch, or ``runner.RangeResult``, one a range the worker
    read) split by part, a list per part, an item per batch. "texts as read": those a range's worker sent back
    (the documents' text as read where the stages changed it: ``runner._ranged``)."""
    split: dict[str, list[Any]] = {name: [] for name in PARTS}
    for data in results:
        result = ForkingPickler.loads(data)
        if isinstance(result, str):  # (a range that could not be read)
            continue
        if len(result) == 6:  # a range's: per document (id, text, original, record, meta, rejected, scratch, line)
            made, stats, lines, ahead, refused, kinds = result
            changed = [(d[1], d[4], d[5], d[6], (d[0], d[3], d[7])) for d in made]
            originals = [d[2] if type(d[2]) is str and d[2] is not d[1] else None for d in made]
            stats = (stats, refused, kinds)
        else:
            changed, stats, lines, ahead = result
            originals = []
        split["texts as read"].append(originals)
        sketches, scratch = [], []
        for text, _, _, kept, _ in changed:
            kept = dict(kept or {})
            made = kept.pop("dedup", None)
            if made is not None:
                sketches.append(made[-1])
                # its text: the changed one (pickled once, with "texts"), runner.SENT_TEXT, or another text
                kept["dedup"] = tuple(None if item is text and text is not None else item for item in made[:-1])
            scratch.append(kept)
        split["texts"].append([c[0] for c in changed])
        split["ahead"].append(ahead)
        split["lines"].append(lines)
        split["sketches"].append(sketches)
        split["scratch"].append(scratch)
        split["meta+rejected+records"].append([(c[1], c[2], c[4]) for c in changed])
        split["stats"].append(stats)
    return split


def report_parts(results: list[bytes], rounds: int) -> None:
    split = parts(results)
    sketches = split.pop("sketches")
    gc.disable()
    packing = best(rounds, lambda: [dedup._pack_sketches(batch) for batch in sketches if batch])
    split["sketches"] = [dedup._pack_sketches(batch) if batch else None for batch in sketches]
    print(f"{'part':24s} {'MB':>7s} {'pickling':>9s} {'unpickling':>11s}")
    for name, items in split.items():
        data = [ForkingPickler.dumps(item) for item in items]
        dump = best(rounds, lambda items=items: [ForkingPickler.dumps(item) for item in items])
        load = best(rounds, lambda data=data: [ForkingPickler.loads(d) for d in data])
        print(f"{name:24s} {sum(map(len, data)) / 1e6:7.1f} {dump:9.3f} {load:11.3f}")
    print(f"{'(sketch packing)':24s} {'':7s} {packing:9.3f}")
    gc.enable()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", action="store_true", help="also the results' bytes and CPU by part")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be 2 or more: one worker runs in this process, with nothing sent")
    tasks, results, give = capture(args.input, args.workers, args.rounds)
    task_objects = [ForkingPickler.loads(t) for t in tasks]
    gc.disable()
    send = best(args.rounds, lambda: [ForkingPickler.dumps(t) for t in task_objects])
    receive = best(args.rounds, lambda: [ForkingPickler.loads(r) for r in results])
    get = best(args.rounds, lambda: [ForkingPickler.loads(t) for t in tasks])
    gc.enable()
    print(
        f"{len(tasks)} tasks, {sum(map(len, tasks)) / 1e6:.1f} MB out; "
        f"{len(results)} results, {sum(map(len, results)) / 1e6:.1f} MB back"
    )
    print(f"main process: pickling tasks {send:.3f} s + unpickling results {receive:.3f} s = {send + receive:.3f} s")
    print(f"workers:      unpickling tasks {get:.3f} s + pickling results {give:.3f} s = {get + give:.3f} s")
    print(f"all:          {send + receive + get + give:.3f} s (best of {args.rounds})")
    if args.parts:
        report_parts(results, args.rounds)


if __name__ == "__main__":
    main()
