"""Where a short run's CPU goes, phase by phase: a fresh `python -m pipeline run INPUT -o OUT -q` per round.

    python benchmarks/startup_phases.py [--input PATH] [--rounds 5] [--base DIR] [--min-ms 1.5]

Each round runs the CLI in a fresh process (as ``python -m pipeline`` runs it: collector off, re_cache
installed) with CPU timers (``time.process_time``, ms) around: the interpreter's start, the imports of the CLI,
the config models and the runner, ``default_config`` (every stage module: numpy, numba, ftfy, pydantic's
option models), ``build_stages``, each cached kernel's load (numba's ``Dispatcher.compile``, by kernel module),
the first call of each set-up function the stages cache (``lru_cache``: tables, profiles, patterns; later calls
are charged to their caller), the first pass, the stream (the stages' work), the output writes, the audit
assembly, report.html, and the rest of the command ("main": state, input listing, report.json). Times are
exclusive (a phase inside another is not counted twice); the timers add ~5 % to the whole.

With ``--base DIR`` (a worktree of an earlier commit) the rounds alternate between the two trees (order flipped
every round) and the medians are printed side by side.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", REPO.parent / "shared"))
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"


def child(argv: list[str], out: str) -> None:
    """Run the CLI with ``argv`` in this process, timed; append one JSON line of ms per phase to ``out``."""
    import gc

    gc.disable()  # (as pipeline/__main__.py)
    started = time.process_time()
    own: collections.Counter[str] = collections.Counter()
    stack: list[list[Any]] = []  # [name, start, time of phases inside]

    def enter(name: str) -> None:
        stack.append([name, time.process_time(), 0.0])

    def leave(count: bool = True) -> None:
        name, start, inside = stack.pop()
        if not count:  # (a cache hit: its time is its caller's)
            return
        spent = time.process_time() - start
        own[name] += spent - inside
        if stack:
            stack[-1][2] += spent

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            enter(name)
            try:
                return function(*args, **kwargs)
            finally:
                leave()

        return wrapper

    class FirstCall:
        """An ``lru_cache`` function whose misses are timed (as ``setup MODULE.NAME``); attributes are its own."""

        def __init__(self, name: str, function: Any) -> None:
            self._name, self._function = name, function

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            hits = self._function.cache_info().hits
            enter(self._name)
            try:
                return self._function(*args, **kwargs)
            finally:
                leave(count=self._function.cache_info().hits == hits)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._function, name)

    def timed_generator(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            items = function(*args, **kwargs)
            while True:
                enter(name)
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    leave()
                yield item

        return wrapper

    enter("main")
    from pipeline import re_cache

    enter("re_cache install")
    re_cache.install()
    leave()
    enter("import cli")
    import pipeline.cli as cli

    getattr(cli, "_one_blas_thread", lambda: None)()  # (as main() does for the program; trees before it: none)
    leave()
    enter("import config")
    import pipeline.config as config

    leave()
    enter("import runner")
    import pipeline.runner as runner

    leave()
    default_config = config.default_config

    def timed_default_config() -> Any:
        enter("default_config (stage imports)")
        try:
            made = default_config()
        finally:
            leave()
        if getattr(timed_default_config, "_wrapped", False):
            return made
        timed_default_config._wrapped = True  # type: ignore[attr-defined]
        # (with the compiled kernels module numba is not imported: no kernel loads to time)
        if "numba" in sys.modules:
            from numba.core.dispatcher import Dispatcher

            compile_ = Dispatcher.compile

            def compile(self: Any, sig: Any) -> Any:
                return timed("kernels " + self.py_func.__module__.rsplit(".", 1)[-1], compile_)(self, sig)

            Dispatcher.compile = compile
        for name, module in list(sys.modules.items()):
            if name.startswith("pipeline"):
                for attr, value in list(vars(module).items()):
                    if callable(value) and hasattr(value, "cache_info") and value.__module__ == name:
                        setattr(module, attr, FirstCall(f"setup {name.rsplit('.', 1)[-1]}.{attr}", value))
        return made

    config.default_config = timed_default_config
    cli.default_config = timed_default_config  # type: ignore[attr-defined]
    runner.build_stages = timed("build_stages", runner.build_stages)
    runner._first_pass = timed("first pass", runner._first_pass)
    runner._stream = timed_generator("stream", runner._stream)
    runner._assemble_audit = timed("assemble audit", runner._assemble_audit)
    runner._Outputs.write = timed("outputs.write", runner._Outputs.write)
    import pipeline.report_html as report_html

    report_html.write_html_report = timed("report.html", report_html.write_html_report)
    if hasattr(report_html, "prepare_html"):  # (its sections, made while the last file is recorded)
        report_html.prepare_html = timed("report.html", report_html.prepare_html)
    import atexit

    def report() -> None:
        while stack:
            leave()
        phases = {"interpreter": started * 1000, **{k: v * 1000 for k, v in own.items()}}
        phases["TOTAL"] = time.process_time() * 1000
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(phases) + "\n")

    atexit.register(report)
    sys.argv = ["cleancorpus", *argv]
    cli.main()


def rounds(trees: dict[str, Path], input_path: Path, count: int) -> dict[str, list[dict[str, float]]]:
    """``count`` runs per tree, alternated (order flipped every round): each run's phases."""
    got: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # (.pyc files count)
    with tempfile.TemporaryDirectory(prefix="startup_phases-") as tmp:
        for i in range(count):
            order = list(trees.items()) if i % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                out, lines = Path(tmp) / "out", Path(tmp) / f"{name}.jsonl"
                shutil.rmtree(out, ignore_errors=True)
                args = [sys.executable, __file__, "--child", str(lines), "run", str(input_path), "-o", str(out), "-q"]
                subprocess.run(args, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, check=True)
            for name in trees:
                got[name] = [json.loads(line) for line in (Path(tmp) / f"{name}.jsonl").read_text().splitlines()]
    return got


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[3:], sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, default=CC)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", type=Path, help="a worktree of an earlier commit, run alternately with this one")
    parser.add_argument("--min-ms", type=float, default=1.5, help="phases below this (in every tree) not shown")
    args = parser.parse_args()
    trees = {"this": REPO, **({"base": args.base.resolve()} if args.base else {})}
    got = rounds(trees, args.input.resolve(), args.rounds)
    names: list[str] = []
    for runs in got.values():
        for run in runs:
            names += [k for k in run if k not in names]
    medians = {t: {k: statistics.median([run.get(k, 0.0) for run in runs]) for k in names} for t, runs in got.items()}
    names.sort(key=lambda k: -max(m[k] for m in medians.values()))
    print(f"CPU ms, median of {args.rounds} runs per tree; load average at the end: {os.getloadavg()}")
    print(f"{'phase':46s}" + "".join(f"{t:>10s}" for t in trees))
    for k in names:
        if max(m[k] for m in medians.values()) >= args.min_ms:
            print(f"{k[:46]:46s}" + "".join(f"{medians[t][k]:10.1f}" for t in trees))


if __name__ == "__main__":
    main()
