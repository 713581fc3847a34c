"""CPU (time.process_time) the offsets of removed.jsonl cost in a run: the runner's ``after_stage`` and
boilerplate's ``removed_lines_at``, timed by wrapping them, beside the whole run's CPU (``--workers 1``,
this process only). The per-call timing adds ~1 us a call.

    python benchmarks/bench_offsets_cpu.py INPUT -o OUTDIR
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pipeline.runner as runner
import pipeline.stages.boilerplate as boilerplate
from pipeline.cli import cli

spent: dict[str, float] = {}
calls: dict[str, int] = {}


def _timed(module: Any, name: str) -> None:
    fn: Callable[..., Any] = getattr(module, name)
    spent[name], calls[name] = 0.0, 0

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - started
            calls[name] += 1

    setattr(module, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    _timed(runner, "after_stage")
    _timed(boilerplate, "removed_lines_at")
    started = time.process_time()
    with contextlib.suppress(SystemExit):
        cli(["run", args.input, "-o", args.output, "--quiet", "--workers", "1"])
    total = time.process_time() - started
    parts = ", ".join(f"{name} {spent[name]:.3f} s ({calls[name]} calls)" for name in spent)
    print(f"run CPU {total:.2f} s; {parts}; together {100 * sum(spent.values()) / total:.1f}% of the run")


if __name__ == "__main__":
    main()
