"""cleancorpus's default pipeline and a datatrove job side by side, on the same JSONL input, in one run.

    python -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'datatrove[processing]' spacy orjson
    python benchmarks/bench_datatrove.py [--corpus cc|trafilatura|both] [--workers N] [--repeat R]
                                         [--datatrove-python /tmp/dtvenv/bin/python]

datatrove is not a dependency, and it cannot share the project's environment (it pins xxhash < 4
and trafilatura < 1.12), so it runs in its own virtual environment, as a subprocess of this script
(``--datatrove-python``; default: this Python). cleancorpus runs as users run it, ``cleancorpus run`` in a
subprocess of this Python. Both times include their interpreter's start-up and imports.

datatrove job (one process, ``LocalPipelineExecutor(tasks=1, workers=1)`` per step): JsonlReader ->
FTFYFormatter -> C4QualityFilter (its defaults: the C4 line filter and document rules) -> JsonlWriter,
and MinhashDedupSignature; then MinhashDedupBuckets, MinhashDedupCluster, and MinhashDedupFilter over
the filtered documents (its default MinhashConfig: 5-grams, 14 buckets x 8 hashes). No language
filter. cleancorpus: the default config (extract, encoding, boilerplate, language fragments,
paragraph and document dedup, normalize). Prints wall seconds, CPU seconds (this process and its
children), MB/s and docs/s for each: the medians of ``--repeat`` rounds (default 3), each a datatrove run
then a cleancorpus run in fresh folders (alternated, so a drift of the machine's speed touches both), and
the speed-up, the ratio of the median walls, with every round's walls (a single run of a job under a second
moves by ~10 % between runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CORPORA = REPO.parent / "shared" / "corpora"
INPUTS = {
    "cc": CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), _cpu()
    kept = fn()
    return time.perf_counter() - wall, _cpu() - cpu, kept


def datatrove_job(path: Path, work: Path) -> int:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.pipeline.filters import C4QualityFilter
    from datatrove.pipeline.formatters import FTFYFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig()
    filtered, sigs, buckets, clusters = (work / n for n in ("filtered", "sigs", "buckets", "clusters"))
    steps = [
        [
            JsonlReader(str(path.parent), glob_pattern=path.name, text_key="text", id_key="id"),
            FTFYFormatter(),
            C4QualityFilter(),
            JsonlWriter(str(filtered), compression=None),
            MinhashDedupSignature(output_folder=str(sigs), config=config),
        ],
        [MinhashDedupBuckets(input_folder=str(sigs), output_folder=str(buckets), config=config)],
        [MinhashDedupCluster(input_folder=str(buckets), output_folder=str(clusters), config=config)],
        [
            JsonlReader(str(filtered), text_key="text", id_key="id"),
            MinhashDedupFilter(input_folder=str(clusters)),
            JsonlWriter(str(work / "out"), compression=None),
        ],
    ]
    for i, step in enumerate(steps):
        tasks = config.num_buckets if i == 1 else 1  # the bucket step runs one task per bucket (in turn)
        LocalPipelineExecutor(pipeline=step, tasks=tasks, workers=1, logging_dir=str(work / f"logs{i}")).run()
    return sum(sum(1 for _ in f.open()) for f in (work / "out").glob("*.jsonl"))


def run_datatrove(python: str, path: Path, work: Path) -> int:
    cmd = [python, __file__, "--datatrove-child", str(path), str(work)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1])


def run_cleancorpus(path: Path, work: Path, workers: int) -> int:
    """``cleancorpus run`` (default config) in a subprocess; the documents it kept."""
    out = work / "cc"
    cmd = [sys.executable, "-c", "from pipeline.cli import main; main()", "run", str(path), "-o", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*cmd, "--workers", str(workers)], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: done, with some input quarantined
        raise RuntimeError(f"cleancorpus run failed ({done.returncode}): {done.stderr}")
    return int(json.loads((out / "report.json").read_text(encoding="utf-8"))["documents"]["out"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=[*INPUTS, "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="cleancorpus workers (datatrove: 1 process)")
    parser.add_argument("--datatrove-python", default=sys.executable, help="a Python with datatrove installed")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (datatrove, then cleancorpus); medians")
    parser.add_argument("--datatrove-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_child:
        print(datatrove_job(Path(args.datatrove_child[0]), Path(args.datatrove_child[1])))
        return
    names = list(INPUTS) if args.corpus == "both" else [args.corpus]
    print(
        f"# {platform.machine()}, Python {platform.python_version()}, cleancorpus workers={args.workers}, "
        f"medians of {args.repeat} alternated rounds"
    )
    print("| corpus | MB | docs | tool | wall s | CPU s | MB/s | docs/s | docs kept |")
    print("|---|---|---|---|---|---|---|---|---|")
    speedups = []
    for name in names:
        path = INPUTS[name]
        mb = path.stat().st_size / 1e6
        docs = sum(1 for _ in path.open("rb"))
        rounds: dict[str, list[tuple[float, float, int]]] = {"datatrove": [], "cleancorpus": []}
        for _ in range(args.repeat):
            work = Path(tempfile.mkdtemp(prefix="cc-dt-"))  # (fresh: a second run into one output is incremental)
            try:
                rounds["datatrove"].append(timed(lambda: run_datatrove(args.datatrove_python, path, work)))  # noqa: B023
                rounds["cleancorpus"].append(timed(lambda: run_cleancorpus(path, work, args.workers)))  # noqa: B023
            finally:
                shutil.rmtree(work, ignore_errors=True)
        walls = {}
        for tool, runs in rounds.items():
            wall = walls[tool] = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(
                f"| {name} | {mb:.1f} | {docs} | {tool} | {wall:.2f} | {cpu:.2f} | {mb / wall:.2f} | "
                f"{docs / wall:.0f} | {runs[-1][2]} |",
                flush=True,
            )
        each = ", ".join(f"{d[0]:.2f} / {c[0]:.2f}" for d, c in zip(*rounds.values(), strict=True))
        speedups.append(
            f"{name}: {walls['datatrove'] / walls['cleancorpus']:.1f}x (walls datatrove / cleancorpus: {each} s)"
        )
    print()
    for line in speedups:
        print(f"speed-up, {line}")


if __name__ == "__main__":
    main()
