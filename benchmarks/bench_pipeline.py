"""End-to-end throughput of the default pipeline, per stage, on the shared real corpora.

    python benchmarks/bench_pipeline.py [--workers N] [--corpus cc|trafilatura|both] [--input FILE ...]
                                        [--repeat R]

Prints one Markdown table row per input and run: input MB, wall seconds, CPU seconds (this process
and its worker processes, once they have exited), CPU seconds of this process alone (the part that
does not scale with workers), MB/s and docs/s (wall), seconds per stage (from report.json; summed
over workers) and the load average when the run ended. ``--input`` adds other
JSONL files (e.g. the 40 MB one ``bench_memory.py --sizes 40 --keep`` builds).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.config import default_config  # noqa: E402
from pipeline.runner import run  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora"
INPUTS = {
    "cc": CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
}


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and its exited children (the worker pool, after the run); of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    main = own.ru_utime + own.ru_stime
    return main + kids.ru_utime + kids.ru_stime, main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--corpus", choices=[*INPUTS, "both", "none"], default="both")
    parser.add_argument("--input", nargs="*", default=[], help="other JSONL inputs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each input")
    args = parser.parse_args()
    names = {"both": list(INPUTS), "none": []}.get(args.corpus, [args.corpus])
    inputs = [(n, INPUTS[n]) for n in names] + [(Path(p).name, Path(p)) for p in args.input]
    print(f"# {platform.processor() or platform.machine()}, {platform.python_version()}, workers={args.workers}")
    stage_names = [s.stage for s in default_config().enabled_stages()]
    print(
        "| input | MB | docs | wall s | CPU s | main CPU s | MB/s | docs/s | "
        + " | ".join(f"{s} s" for s in stage_names)
        + " | load 1 min |"
    )
    print("|---" * (9 + len(stage_names)) + "|")
    for _ in range(args.repeat):
        for name, path in inputs:
            with tempfile.TemporaryDirectory() as out:
                wall, (cpu, main) = time.perf_counter(), cpu_seconds()
                result = run(default_config(), [str(path)], out, workers=args.workers)
                wall = time.perf_counter() - wall
                cpu, main = (after - before for after, before in zip(cpu_seconds(), (cpu, main), strict=True))
            report = result.report
            mb = path.stat().st_size / 1e6
            per_stage = " | ".join(f"{s['seconds']:.2f}" for s in report["stages"])
            print(
                f"| {name} | {mb:.1f} | {result.documents_in} | {wall:.1f} | {cpu:.1f} | {main:.1f} | "
                f"{mb / wall:.2f} | "
                f"{result.documents_in / wall:.0f} | {per_stage} | {os.getloadavg()[0]:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
