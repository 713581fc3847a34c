"""Where a run's time goes, phase by phase, in the main process and in each worker (issue 10's scaling).

    python benchmarks/scale_phases.py INPUT [--workers N] [-o OUT]   (from the repository root)

Runs ``cleancorpus run INPUT -o OUT -q --workers N`` in this process with marks around its phases (start-up,
first pass, stream, tail): for each, the wall time and the main process's CPU (all its threads, the main
thread alone, and system time); for each worker process, its tasks' wall and CPU and its whole CPU (user,
system) at its last task. A task's CPU is given twice: its process's (``taskCPU``) and its own thread's
(``thread``, with its minor page faults ``faults``): in the main process, which runs tasks itself at
``--workers 2`` and more, the first also holds its pool's threads (the workers' results received and
unpickled, the tasks pickled: ~0.002 s a stream task of 40 MB), which are not the task's cost.
Compare ``--workers 1`` and ``2``: the ideal 2-worker phase is half the 1-worker one. The marks wrap runner
functions (``_first_pass``, ``_stream``, the worker tasks), so they follow the runner as it is; the run itself
is the same (``main()`` turns the collector off as the CLI does). Last, each stream worker's waits between its
tasks (``_idle``): why (no task submitted, or one in transit), and how long it sat sending its results ("blocked":
the write's wall beyond its CPU, the main process not reading). ``--tree PATH`` runs another tree's pipeline
(e.g. a base worktree, for before/after with the same marks).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# this tree's pipeline, not an installed one (or another tree's: --tree, e.g. a base worktree for before/after)
_tree = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1] else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_tree))

from pipeline import runner  # noqa: E402

# in workers (or here, at 1 worker); _prepare_item runs _prepare_sent or _prepare_range (the first pass's local
# workers), _run_item _run_sent or _run_range (the stream's local workers, when they read ranges); each is shown at
# its outermost level in a process (LEVELS), not counted twice
TASKS = (
    "_prepare_item",
    "_prepare_sent",
    "_prepare_range",
    "_run_item",
    "_run_sent",
    "_run_range",
    "_prepare_parts",
    "_run_in_worker",
)
LEVELS = {"_prepare_item": 0, "_run_item": 0, "_prepare_sent": 1, "_prepare_range": 1, "_run_sent": 1, "_run_range": 1}
_log: Path | None = None


def _write(record: dict[str, Any]) -> None:
    assert _log is not None
    with _log.open("a") as fh:  # (appends from several processes: one short line each)
        fh.write(json.dumps(record) + "\n")


def _mark(name: str) -> None:
    user, system = os.times()[:2]
    _write(
        {
            "pid": os.getpid(),
            "mark": name,
            "t": time.time(),
            "cpu": time.process_time(),
            "thread": time.thread_time(),
            "sys": system,
        }
    )


def _thread_faults() -> int:
    """This thread's minor page faults so far (Linux; elsewhere the process's)."""
    return resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)).ru_minflt


def _task(name: str) -> None:
    """Wrap the worker task ``runner.<name>``; forked workers inherit the wrapper, and pickling finds it by name."""
    inner = getattr(runner, name)

    def task(*args: Any, **kwargs: Any) -> Any:
        started, cpu, thread, faults = time.time(), time.process_time(), time.thread_time(), _thread_faults()
        result = inner(*args, **kwargs)
        user, system = os.times()[:2]
        _write(
            {
                "pid": os.getpid(),
                "task": name,
                "t0": started,
                "t": time.time(),
                "c0": cpu,
                "cpu": time.process_time(),
                "th0": thread,
                "thread": time.thread_time(),
                "faults": _thread_faults() - faults,
                "user": user,
                "sys": system,
            }
        )
        return result

    task.__name__ = task.__qualname__ = name
    task.__module__ = runner.__name__
    setattr(runner, name, task)


def _instrument() -> None:
    for name in TASKS:
        _task(name)
    first_pass = runner._first_pass

    def marked_first_pass(*args: Any, **kwargs: Any) -> Any:
        _mark("first pass")
        try:
            return first_pass(*args, **kwargs)
        finally:
            _mark("between passes")

    stream = runner._stream

    def marked_stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        _mark("stream: to the first batch")
        first = True
        for batch in stream(*args, **kwargs):
            if first:
                _mark("stream")
                first = False
            yield batch
        _mark("tail")

    from pipeline import executors

    submit = executors.ProcessExecutor._submit

    def marked_submit(self: Any, fn: Callable[..., Any], *args: Any) -> Any:
        _write({"pid": os.getpid(), "submit": getattr(fn, "__name__", "?"), "t": time.time()})
        return submit(self, fn, *args)

    executors.ProcessExecutor._submit = marked_submit  # type: ignore[method-assign]
    import concurrent.futures.process as pool_process

    sendback = pool_process._sendback_result  # (a worker's result pickled and written to the pipe)

    def marked_sendback(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.time(), time.process_time()
        try:
            return sendback(*args, **kwargs)
        finally:
            now = {"t": time.time(), "cpu": time.process_time()}
            _write({"pid": os.getpid(), "sent": 1, "t0": started, "c0": cpu, **now})

    pool_process._sendback_result = marked_sendback
    runner._first_pass = marked_first_pass  # type: ignore[assignment]
    runner._stream = marked_stream  # type: ignore[assignment]


def summary(records: list[dict[str, Any]], main_pid: int) -> str:
    marks = [r for r in records if "mark" in r and r["pid"] == main_pid]
    t0 = marks[0]["t"]
    rows = [f"{'phase':28s} {'wall':>7s} {'CPU':>7s} {'thread':>7s} {'sys':>6s}   (main process)"]
    for before, after in zip(marks, marks[1:], strict=False):
        rows.append(
            f"{before['mark']:28s} {after['t'] - before['t']:7.3f} {after['cpu'] - before['cpu']:7.3f} "
            f"{after['thread'] - before['thread']:7.3f} {after['sys'] - before['sys']:6.3f}"
        )
    rows.append(f"{'whole run':28s} {marks[-1]['t'] - t0:7.3f} {marks[-1]['cpu'] - marks[0]['cpu']:7.3f}")
    tasks: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if "task" in r:
            tasks[(r["pid"], r["task"])].append(r)
    outermost: dict[int, int] = {}  # process -> the outermost level of its tasks
    for pid, name in tasks:
        outermost[pid] = min(outermost.get(pid, 2), LEVELS.get(name, 2))
    head = ("process", "task", "n", "from", "to", "busy", "taskCPU", "thread", "faults", "user", "sys")
    rows.append("\n{:>8s} {:15s} {:>4s} {:>7s} {:>7s} {:>7s} {:>7s} {:>7s} {:>7s} {:>6s} {:>5s}".format(*head))
    for (pid, name), rs in sorted(tasks.items()):
        if LEVELS.get(name, 2) > outermost[pid]:
            continue
        last = max(rs, key=lambda r: r["t"])
        rows.append(
            f"{pid:8d} {name:15s} {len(rs):4d} {min(r['t0'] for r in rs) - t0:7.3f} {last['t'] - t0:7.3f} "
            f"{sum(r['t'] - r['t0'] for r in rs):7.3f} {sum(r['cpu'] - r['c0'] for r in rs):7.3f} "
            f"{sum(r['thread'] - r['th0'] for r in rs):7.3f} {sum(r['faults'] for r in rs):7d} "
            f"{last['user']:6.2f} {last['sys']:5.2f}"
        )
    rows.extend(_idle(records, main_pid, marks))
    return "\n".join(rows)


def _idle(records: list[dict[str, Any]], main_pid: int, marks: list[dict[str, Any]]) -> list[str]:
    """Each stream worker's waits between its tasks during the stream (from its first task to its last), and
    why: no task of its own submitted and not started (``empty``: the main process has not submitted the next), or
    one submitted (``in transit``: pickled, in the pipe, or read); and whether the main process was running a
    task of its own when the wait began."""
    t0 = marks[0]["t"]
    stream = [m["t"] for m in marks if m["mark"] in ("stream: to the first batch", "tail")]
    if len(stream) < 2:
        return []
    start, end = stream[0], stream[-1]
    submits = sorted(r["t"] for r in records if r.get("submit") and r["pid"] == main_pid and start <= r["t"] <= end)
    here = sorted((r["t0"], r["t"]) for r in records if r.get("task") == "_run_item" and r["pid"] == main_pid)
    rows = [f"\n{'process':>8s} waits    idle  empty(n/s) transit(n/s)  main-in-task(n/s)   (stream workers)"]
    for pid in sorted({r["pid"] for r in records if r.get("task") == "_run_item" and r["pid"] != main_pid}):
        own = sorted((r for r in records if r.get("task") == "_run_item" and r["pid"] == pid), key=lambda r: r["t0"])
        tasks = [(r["t0"], r["t"]) for r in own]
        # the worker's own CPU between its tasks (the result pickled and sent, the next task read and unpickled)
        between = sum(b["c0"] - a["cpu"] for a, b in zip(own, own[1:], strict=False))
        sent = [r for r in records if r.get("sent") and r["pid"] == pid and tasks[0][0] <= r["t0"] <= tasks[-1][1]]
        sending = sum(r["t"] - r["t0"] for r in sent)
        sending_cpu = sum(r["cpu"] - r["c0"] for r in sent)
        empty, transit, in_task = [0, 0.0], [0, 0.0], [0, 0.0]
        total = 0.0
        for k, ((_, done), (begun, _)) in enumerate(zip(tasks, tasks[1:], strict=False)):
            wait = begun - done
            total += wait
            # tasks submitted by the time it finished task k, beyond the k + 1 it had started (all workers' in
            # the count: exact at one worker)
            queued = sum(1 for t in submits if t <= done) - (k + 1)
            which = empty if queued <= 0 else transit
            which[0] += 1
            which[1] += wait
            if any(a <= done <= b for a, b in here):
                in_task[0] += 1
                in_task[1] += wait
        rows.append(
            f"{pid:8d} {len(tasks) - 1:5d} {total:7.3f} {empty[0]:4d}/{empty[1]:.3f} {transit[0]:5d}/{transit[1]:.3f}"
            f" {in_task[0]:9d}/{in_task[1]:.3f}  CPU between {between:.3f}, sending {sending:.3f}"
            f" (CPU {sending_cpu:.3f},"
            f" blocked {sending - sending_cpu:.3f})  (first task {tasks[0][0] - t0:.3f}, last {tasks[-1][1] - t0:.3f})"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    global _log
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("-o", "--out", help="output folder (default: a temporary one, removed after)")
    parser.add_argument("--tree", help="the repository whose pipeline runs (default: this script's)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scale-phases-")) / "out"
    with tempfile.NamedTemporaryFile(prefix="scale-phases-", suffix=".jsonl", delete=False) as fh:
        _log = Path(fh.name)
    _instrument()
    from pipeline.cli import cli

    run: Callable[..., Any] = cli.main
    gc.disable()  # as pipeline.cli.main does
    _mark("start-up")
    try:
        run(["run", args.input, "-o", str(out), "-q", "--workers", str(args.workers)], standalone_mode=False)
    finally:
        _mark("end")
        records = [json.loads(line) for line in _log.read_text().splitlines()]
        _log.unlink()
        if not args.out:
            shutil.rmtree(out.parent, ignore_errors=True)
    print(summary(records, os.getpid()))


if __name__ == "__main__":
    main()
