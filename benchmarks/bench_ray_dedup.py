"""Distributed dedup on Ray against the local executor, on the same input: wall time, driver CPU,
where dedup's decisions were made, and a check that every output file is byte-identical.

    python benchmarks/bench_ray_dedup.py [--config default|light] [--repeats 3] [--cpus 2] [--copies 0]

A local Ray with ``--cpus`` CPUs is started once, before the timed runs (its start-up is printed
apart). ``light`` = encoding + dedup + normalize, where dedup is most of the work. ``--copies K``
adds K edited copies of the corpus (every 4th word of each line tagged, as in bench_memory.py), plus
one exact copy of every 10th document, so that the input is larger and has real duplicates.
Runs alternate between executors; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from pipeline.config import RunConfig, default_config, load_config_data  # noqa: E402
from pipeline.runner import run  # noqa: E402

CC = REPO.parent / "shared" / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"
EXECUTORS = {"local, 1 worker": ("local", 1), "local, 2 workers": ("local", 2), "ray": ("ray", 2)}


class _Split(logging.Handler):
    """Catches the distributed dedup's count of documents decided alone / in the driver."""

    def __init__(self) -> None:
        super().__init__()
        self.split: tuple[int, int, float] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("distributed dedup"):
            alone, driven = (int(w) for w in message.split() if w.isdigit())
            self.split = (alone, driven, float(message.rsplit("(", 1)[1].split()[0]))


def _tagged(line: str, k: int) -> str:
    words = line.split(" ")
    return " ".join(f"{w}{k}" if i % 4 == k % 4 else w for i, w in enumerate(words))


def make_input(folder: Path, copies: int) -> Path:
    records = [json.loads(line) for line in CC.open(encoding="utf-8")]
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


def one_run(cfg: RunConfig, src: Path, out: Path, executor: str, workers: int, split: _Split) -> dict[str, Any]:
    split.split = None
    wall, cpu = time.perf_counter(), time.process_time()
    report = run(cfg, [str(src)], out, workers=workers, executor=executor).report
    (dedup,) = [s for s in report["stages"] if s["stage"] == "dedup"]
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "dedup": dedup["seconds"],
        "split": split.split,
        "files": {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=["default", "light"], default="light")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--copies", type=int, default=0)
    args = parser.parse_args()
    split = _Split()
    logging.getLogger("cleancorpus").addHandler(split)
    logging.getLogger("cleancorpus").setLevel(logging.INFO)
    cfg = config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_input(Path(tmp), args.copies)
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, object_store_memory=500 << 20)
        print(f"# ray.init: {time.perf_counter() - started:.1f} s; load average {os.getloadavg()}")
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in EXECUTORS}
        for r in range(args.repeats + 1):  # the first round warms up (numba caches, Ray workers)
            for name, (executor, workers) in EXECUTORS.items():
                res = one_run(cfg, src, Path(tmp) / f"{r}-{name}", executor, workers, split)
                if r:
                    results[name].append(res)
        ray.shutdown()
        mb = src.stat().st_size / 1e6
    reference = results["local, 1 worker"][0]["files"]
    print(f"# input {mb:.1f} MB, config {args.config}, {args.repeats} runs each (median); load {os.getloadavg()}")
    print("| executor | wall s | MB/s (wall) | driver CPU s | dedup s | alone / driver (driver s) | outputs = local |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(x["wall"] for x in runs)
        same = all(x["files"] == reference for x in runs)
        split_text = "{} / {} ({:.2f} s)".format(*runs[0]["split"]) if runs[0]["split"] else "-"
        print(
            f"| {name} | {wall:.2f} | {mb / wall:.2f} | {statistics.median(x['cpu'] for x in runs):.2f} | "
            f"{statistics.median(x['dedup'] for x in runs):.2f} | {split_text} | {same} |"
        )


if __name__ == "__main__":
    main()
