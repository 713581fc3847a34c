"""The run's own CPU outside the stages and the first pass (issue 10): one run in this process with the runner's
record, output and input functions timed (thread CPU of the thread that runs each), at ``--workers 1`` by default.

    python benchmarks/bench_run_own.py INPUT [--workers N] [-o OUT]   (from the repository root)

Prints each piece, then "own": the main thread's CPU less the stages' (``_run_positions``), the first pass and
the start-up before it, i.e. rendering removed.jsonl's lines, writing outputs and audit parts, reading the
input for the stream, the audit assembly, the report and the loop; and the same plus the last file's state
record (a thread). The wrappers find the functions by name, so the script runs against any worktree of the
runner of session 19 or later (``PYTHONPATH=TREE`` or a copy in the tree); compare two alternated.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from pipeline import report_html, runner, state  # noqa: E402

spent: Counter[str] = Counter()
_inside = [0]  # the pieces below do not nest: an inner one is counted in the outer


def _timed(owner: Any, name: str, label: str, nested: bool = False) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        if _inside[0] and not nested:
            return inner(*args, **kwargs)
        _inside[0] += not nested
        started = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started
            _inside[0] -= not nested

    setattr(owner, name, timed)


def _timed_reader(owner: Any, name: str, label: str) -> None:
    inner: Callable[..., Iterator[Any]] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        documents = inner(*args, **kwargs)
        while True:
            started = time.thread_time()
            try:
                doc = next(documents)
            except StopIteration:
                return
            finally:
                if not _inside[0]:  # (the first pass's reading is the first pass's)
                    spent[label] += time.thread_time() - started
            yield doc

    setattr(owner, name, timed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("-o", "--out", help="output folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="run-own-")) / "out"
    shutil.rmtree(out, ignore_errors=True)
    start = time.thread_time()
    first_pass = runner._first_pass

    def marked_first_pass(*a: Any, **k: Any) -> Any:
        spent["start-up (before the first pass)"] = time.thread_time() - start
        return first_pass(*a, **k)

    runner._first_pass = marked_first_pass
    _timed(runner, "_first_pass", "first pass")
    _timed(runner, "_run_positions", "stages (_run_positions)")
    _timed(runner, "render_removed", "render_removed")
    _timed(runner._Outputs, "write", "_Outputs.write")
    _timed(runner._Outputs, "_commit_group", "_Outputs._commit_group")
    _timed(runner, "_assemble_audit", "_assemble_audit")
    _timed(runner, "settle_garbage", "settle_garbage")
    _timed(report_html, "write_html_report", "report.html")
    _timed(runner._Outputs, "_record_noting_error", "(thread) last file's state record", nested=True)
    _timed(state.StateStore, "commit_files", "(any thread) StateStore.commit_files", nested=True)
    _timed_reader(runner, "read_documents", "reading the input (stream)")
    from pipeline.cli import cli

    gc.disable()  # as pipeline.cli.main does
    try:
        cli.main(["run", args.input, "-o", str(out), "-q", "--workers", str(args.workers)], standalone_mode=False)
        total = time.thread_time() - start
        report = json.loads((out / "report.json").read_text())
    finally:
        if not args.out:
            shutil.rmtree(out.parent, ignore_errors=True)
    print(f"main thread CPU {total:.3f} s; report seconds {report['seconds']}")
    for label, seconds in spent.most_common():
        print(f"  {label:40s} {seconds:.3f}")
    own = total - spent["stages (_run_positions)"] - spent["first pass"] - spent["start-up (before the first pass)"]
    record = spent["(thread) last file's state record"]
    print(f"own (main thread less stages, first pass, start-up) {own:.3f} s; with the state record {own + record:.3f}")


if __name__ == "__main__":
    main()
