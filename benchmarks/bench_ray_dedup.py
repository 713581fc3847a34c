"""Distributed dedup on Ray against the local executor, on the same input: wall time, driver CPU,
where dedup's decisions were made, and a check that every output file is byte-identical.

    python benchmarks/bench_ray_dedup.py [--config default|light] [--corpus cc|trafilatura]
                                         [--repeats 3] [--cpus 2] [--copies 0]

A local Ray with ``--cpus`` CPUs is started once, before the timed runs (its start-up is printed
apart). ``light`` = encoding + dedup + normalize, where dedup is most of the work. ``--copies K``
adds K edited copies of the corpus (every 4th word of each line tagged, as in bench_memory.py), plus
one exact copy of every 10th document, so that the input is larger and has real duplicates.
Runs alternate between executors; medians are printed, then where the Ray run decided its
documents (alone in the filter tasks, in group tasks, in the driver) and the sizes of the connected
components of the document-key graph.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import ray  # noqa: E402

from pipeline import ray_dedup  # noqa: E402
from pipeline.config import RunConfig, default_config, load_config_data  # noqa: E402
from pipeline.runner import run  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora"
CORPUS = {
    "cc": CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
}
EXECUTORS = {"local, 1 worker": ("local", 1), "local, 2 workers": ("local", 2), "ray": ("ray", 2)}


def _tagged(line: str, k: int) -> str:
    words = line.split(" ")
    return " ".join(f"{w}{k}" if i % 4 == k % 4 else w for i, w in enumerate(words))


def make_input(folder: Path, corpus: Path, copies: int) -> Path:
    records = [json.loads(line) for line in corpus.open(encoding="utf-8")]
    out = list(records)
    for k in range(1, copies + 1):
        out += [
            dict(r, id=f"{r['id']}-{k}", text="\n".join(_tagged(x, k) for x in r["text"].split("\n"))) for r in records
        ]
    out += [dict(r, id=f"{r['id']}-again") for r in records[::10]] if copies else []
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return path


def config(name: str) -> RunConfig:
    if name == "default":
        return default_config()
    return load_config_data({"stages": [{"stage": "encoding"}, {"stage": "dedup"}, {"stage": "normalize"}]})


def one_run(cfg: RunConfig, src: Path, out: Path, executor: str, workers: int) -> dict[str, Any]:
    ray_dedup.last_split = ray_dedup.Split()
    wall, cpu = time.perf_counter(), time.process_time()
    report = run(cfg, [str(src)], out, workers=workers, executor=executor).report
    (dedup,) = [s for s in report["stages"] if s["stage"] == "dedup"]
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "dedup": dedup["seconds"],
        "split": ray_dedup.last_split if executor == "ray" else None,
        "files": {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=["default", "light"], default="light")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--copies", type=int, default=0)
    parser.add_argument("--corpus", choices=sorted(CORPUS), default="cc")
    args = parser.parse_args()
    cfg = config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_input(Path(tmp), CORPUS[args.corpus], args.copies)
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, object_store_memory=500 << 20)
        print(f"# ray.init: {time.perf_counter() - started:.1f} s; load average {os.getloadavg()}")
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in EXECUTORS}
        for r in range(args.repeats + 1):  # the first round warms up (numba caches, Ray workers)
            for name, (executor, workers) in EXECUTORS.items():
                res = one_run(cfg, src, Path(tmp) / f"{r}-{name}", executor, workers)
                if r:
                    results[name].append(res)
        ray.shutdown()
        mb = src.stat().st_size / 1e6
    reference = results["local, 1 worker"][0]["files"]
    runs = f"{args.repeats} runs each (median)"
    print(f"# {args.corpus} input {mb:.1f} MB, config {args.config}, {runs}; load {os.getloadavg()}")
    print("| executor | wall s | MB/s (wall) | driver CPU s | dedup s | outputs = local |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(x["wall"] for x in runs)
        same = all(x["files"] == reference for x in runs)
        print(
            f"| {name} | {wall:.2f} | {mb / wall:.2f} | {statistics.median(x['cpu'] for x in runs):.2f} | "
            f"{statistics.median(x['dedup'] for x in runs):.2f} | {same} |"
        )
    print_split([x["split"] for x in results["ray"]])


def print_split(splits: list[ray_dedup.Split]) -> None:
    """Where the Ray runs decided their documents (the same in every run) and the group tasks' CPU."""
    split = splits[0]
    total = split.alone + split.grouped + split.driver
    sizes = split.components
    tasks = sorted(split.tasks, reverse=True)
    task_cpu = statistics.median(max(s.task_seconds, default=0.0) for s in splits)
    print(
        f"# ray: {total} documents: {split.alone} alone in filter tasks, {split.grouped} in "
        f"{sizes.size} components in {len(tasks)} group tasks {tasks}, {split.driver} in the driver; largest "
        f"component {int(sizes.max()) if sizes.size else 0} ({(sizes.max() if sizes.size else 0) / total:.1%}), "
        f"largest task {tasks[0] if tasks else 0} ({(tasks[0] if tasks else 0) / total:.1%}); "
        f"{split.spanning} components span batches; slowest group task {task_cpu:.2f} s CPU, "
        f"driver's union-find {statistics.median(s.driver_seconds for s in splits):.3f} s CPU (medians)"
    )
    edges = [1, 2, 3, 5, 10, 100, 1000, 10**9]
    counts = np.histogram(sizes, bins=edges)[0] if sizes.size else np.zeros(len(edges) - 1, int)
    labels = ["1 (saved index)", "2", "3-4", "5-9", "10-99", "100-999", "1000+"]
    print("# component sizes (documents): " + ", ".join(f"{lab}: {c}" for lab, c in zip(labels, counts, strict=True)))
    print(
        "# documents in components of each size: "
        + ", ".join(
            f"{lab}: {int(sizes[(sizes >= lo) & (sizes < hi)].sum())}"
            for lab, lo, hi in zip(labels, edges[:-1], edges[1:], strict=True)
        )
    )


if __name__ == "__main__":
    main()
