"""Peak memory of a run on large inputs, and bytes of dedup index per paragraph.

    python benchmarks/bench_memory.py [--sizes 100,1000] [--config default|light] [--workers N]
                                      [--data DIR] [--keep]

Builds JSONL inputs of the given sizes (MB) by repeating the shared corpora, every copy after the
first perturbed so dedup does not just drop it: ids get the copy number and every 4th word of a line
(offset by the copy) gets a copy tag, so no 5-word shingle repeats across copies (short lines may).
Each size runs in its own subprocess (``--child``); peak RSS is ``os.wait4``'s ``ru_maxrss`` of that
process (the largest of it and its waited-for workers), and the child samples its own RSS as it goes
(to show what grows) and measures the dedup index object by object at the end.

``--config light`` runs encoding + dedup + normalize (the stages that are fast enough for 1 GB here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPORA = REPO.parent / "shared" / "corpora"
SOURCES = [
    CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
]
LIGHT = "stages:\n  - stage: encoding\n  - stage: dedup\n  - stage: normalize\n"


def _tag(k: int) -> str:
    letters = ""
    while True:
        letters = chr(ord("a") + k % 26) + letters
        k //= 26
        if not k:
            return "qz" + letters


def _perturb(text: str, k: int) -> str:
    tag = _tag(k)
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        for i in range(k % 4, len(words), 4):
            if words[i]:
                words[i] += tag
        lines.append(" ".join(words))
    return "\n".join(lines)


def build_input(path: Path, megabytes: int) -> tuple[int, int]:
    """Write about ``megabytes`` MB of JSONL; returns (bytes, documents)."""
    records = [json.loads(line) for src in SOURCES for line in src.open(encoding="utf-8")]
    target = megabytes * 1_000_000
    written = docs = 0
    k = 0
    with path.open("wb") as fh:
        while written < target:
            for rec in records:
                out = dict(rec, id=f"{rec['id']}-{k}") if k else rec
                if k:
                    out["text"] = _perturb(rec["text"], k)
                line = (json.dumps(out, ensure_ascii=False) + "\n").encode("utf-8")
                fh.write(line)
                written += len(line)
                docs += 1
                if written >= target:
                    break
            k += 1
    return written, docs


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def deep_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by an object graph (containers, numpy arrays, plain objects), each object once."""
    seen = set() if seen is None else seen
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            total += sys.getsizeof(o) if o.base is None else o.nbytes + 112
            continue
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            stack.extend(vars(o).values())
        elif hasattr(o, "__slots__"):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
    return total


def child(args: argparse.Namespace) -> None:
    import pipeline.runner as runner
    from pipeline.config import default_config, load_config
    from pipeline.stages.dedup import DedupStage

    built: list[Any] = []
    original = runner.build_stages

    def capture(specs: Any) -> list[Any]:
        stages = original(specs)
        built.extend(stages)
        return stages

    runner.build_stages = capture  # type: ignore[assignment]
    config = default_config() if args.config == "default" else load_config(args.config)
    samples: list[tuple[int, int]] = []
    total_bytes = os.path.getsize(args.child)
    next_at = [0]

    def progress(docs: int, chars: int, _bytes: int, details: dict[str, Any]) -> None:
        if chars >= next_at[0]:
            samples.append((chars, _rss()))
            next_at[0] = chars + total_bytes // 20

    started = time.perf_counter()
    cpu = time.process_time()
    result = runner.run(config, [args.child], args.out, workers=args.workers, on_progress=progress)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    samples.append((result.report["characters"]["in"], _rss()))
    dedup = next((s for s in built if isinstance(s, DedupStage)), None)
    index: dict[str, Any] = {}
    if dedup is not None:
        parts = {
            "exact": dedup.exact,
            "units": dedup.units,
            "documents": (dedup.docs, dedup.doc_exact),
            "doc_ids": dedup.doc_ids,
        }
        seen: set[int] = set()
        index = {name: deep_bytes(obj, seen) for name, obj in parts.items()}
        index["exact_keys"] = len(dedup.exact)
        index["unit_entries"] = len(dedup.units)
        index["index_bytes"] = dedup.index_bytes()
    out = {
        "seconds": seconds,
        "cpu_seconds_main": cpu,
        "documents": result.documents_in,
        "kept": result.documents_out,
        "rss_samples": samples,
        "index": index,
        "stage_seconds": {s.get("stage", str(i)): s.get("seconds") for i, s in enumerate(result.report["stages"])},
    }
    print("RESULT " + json.dumps(out))


def measure(path: Path, config: str, workers: int, outdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(path), "--config", config, "--out", str(outdir)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}): {output[-2000:]}")
    result = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    result["peak_rss"] = usage.ru_maxrss * 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000", help="input sizes in MB, comma-separated")
    parser.add_argument("--config", default="default", help="default, light, or a YAML file")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data", help="folder for the generated inputs (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    data = Path(args.data or tempfile.mkdtemp(prefix="cc-mem-"))
    data.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config == "light":
        config = str(data / "light.yaml")
        Path(config).write_text(LIGHT)
    print(f"# config={args.config} workers={args.workers} data={data}")
    print(
        "| input MB | docs | seconds | MB/s | peak RSS MB | RSS at 25/50/75/100% MB | index MB | exact keys | "
        "unit entries | index bytes / paragraph |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        path = data / f"input-{size}mb.jsonl"
        if not path.exists():
            build_input(path, size)
        with tempfile.TemporaryDirectory() as out:
            r = measure(path, config, args.workers, Path(out))
        mb = path.stat().st_size / 1e6
        samples = r["rss_samples"]
        total_chars = samples[-1][0] or 1
        marks = []
        for q in (0.25, 0.5, 0.75, 1.0):
            rss = next((s for c, s in samples if c >= q * total_chars), samples[-1][1])
            marks.append(f"{rss / 1e6:.0f}")
        idx = r["index"]
        index_total = sum(idx.get(k, 0) for k in ("exact", "units", "documents", "doc_ids"))
        paragraphs = max(1, idx.get("exact_keys", 0))
        print(
            f"| {mb:.0f} | {r['documents']} | {r['seconds']:.0f} | {mb / r['seconds']:.2f} | "
            f"{r['peak_rss'] / 1e6:.0f} | {'/'.join(marks)} | {index_total / 1e6:.1f} | {idx.get('exact_keys')} | "
            f"{idx.get('unit_entries')} | {index_total / paragraphs:.0f} |",
            flush=True,
        )
        print("  detail: " + json.dumps({k: v for k, v in r.items() if k != "rss_samples"}), flush=True)
    if not args.keep and not args.data:
        for p in data.iterdir():
            p.unlink()
        data.rmdir()


if __name__ == "__main__":
    main()
