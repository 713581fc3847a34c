"""dedup speed on the real corpora, side by side in one run.

1. Signatures: datasketch's fastest path, ``MinHash.bulk(shingle_lists, num_perm=128,
   hashfunc=xxhash.xxh32_intdigest)`` over pre-shingled paragraphs (shingling not timed), against this
   stage's vectorized path from the raw paragraph text (normalization, tokens, hashes and
   signatures all timed), one document's paragraphs per call. datasketch given our ``ShingleHash``
   gives signatures equal to ours (checked here on a sample; pure Python, so not timed).
2. The whole dedup stage (default options) over the CC and trafilatura documents: MB/s per core.

Run from the repo root: ``python benchmarks/bench_dedup_speed.py [--repeat 3]``. Reports medians
of CPU time (process_time: the machine may be shared) and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import datasketch  # noqa: E402
import numpy as np  # noqa: E402
import xxhash  # noqa: E402

from pipeline.document import Document  # noqa: E402
from pipeline.stages.dedup import DedupOptions, DedupStage, _char_tables  # noqa: E402

SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", REPO.parent / "shared"))
CORPORA = {
    "cc-2019-30-dolma": SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": SHARED / "corpora" / "trafilatura-testpages" / "text" / "docs.jsonl",
}


def load(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [(r["id"], r["text"]) for r in map(json.loads, fh)]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Median CPU and wall seconds over ``repeat`` runs, and the last result."""
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall), result


def paragraph_groups(docs: list[tuple[str, str]], stage: DedupStage) -> list[list[str]]:
    """Per document, its lines with at least 10 normalized words (the units MinHash is computed for)."""
    groups = []
    for _, text in docs:
        paras = [line for line in text.split("\n") if len(stage.normalize(line).split()) >= 10]
        if paras:
            groups.append(paras)
    return groups


def bench_signatures(repeat: int) -> None:
    stage = DedupStage(DedupOptions(unit="line", documents=False, verify="estimate"))
    groups = [g for path in CORPORA.values() for g in paragraph_groups(load(path), stage)]
    paras = [p for g in groups for p in g]
    shingle_lists = [[s.encode("utf-8") for s in stage.shingles(stage.normalize(p))] for p in paras]
    n_shingles = sum(map(len, shingle_lists))
    mb = sum(len(p.encode("utf-8")) for p in paras) / 1e6
    print(f"paragraphs: {len(paras)} in {len(groups)} documents, {mb:.2f} MB, {n_shingles} shingles (5-grams)")

    def theirs_xxh() -> list[datasketch.MinHash]:
        return datasketch.MinHash.bulk(shingle_lists, num_perm=128, hashfunc=xxhash.xxh32_intdigest)

    def ours() -> list[np.ndarray]:
        return [stage.sketch("\n".join(g))["signatures"] for g in groups]

    def ours_one_call() -> np.ndarray:
        return stage.sketch("\n".join(paras))["signatures"]

    rows = []
    for name, fn in [
        ("datasketch MinHash.bulk, hashfunc=xxh32_intdigest (pre-shingled)", theirs_xxh),
        ("cleancorpus vectorized, from raw text, one call per document", ours),
        ("cleancorpus vectorized, from raw text, one call for all", ours_one_call),
    ]:
        cpu, wall, result = timed(fn, repeat)
        rows.append((name, cpu, wall))
        if fn is ours:
            mine = np.concatenate(result)  # type: ignore[arg-type]
    # Same hash function (ShingleHash, pure Python: slow, so on a sample): equal signatures.
    sample = 3000
    same = datasketch.MinHash.bulk(shingle_lists[:sample], num_perm=128, hashfunc=stage.shingle_hash)
    equal = all(np.array_equal(a, m.hashvalues) for a, m in zip(mine[:sample], same, strict=True))
    base = rows[0][1]
    print("\n| path | CPU s (median) | wall s | paragraphs/s (CPU) | MB/s (CPU) | speed-up vs datasketch xxh32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, cpu, wall in rows:
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {len(paras) / cpu:,.0f} | {mb / cpu:.2f} | {base / cpu:.1f}x |")
    print(f"\nsignatures equal to datasketch MinHash(hashfunc=ShingleHash) on the first {sample} paragraphs: {equal}")


def bench_stage(repeat: int) -> None:
    print("\n| corpus | MB | documents | CPU s (median) | wall s (median) | MB/s per core (CPU) | MB/s (wall) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path in CORPORA.items():
        docs = load(path)
        mb = sum(len(t.encode("utf-8")) for _, t in docs) / 1e6

        def run(docs: list[tuple[str, str]] = docs, name: str = name) -> DedupStage:
            stage = DedupStage()
            for doc_id, text in docs:
                stage.process(Document(doc_id, text, name))
            stage.close()
            return stage

        cpu, wall, _ = timed(run, repeat)
        print(f"| {name} | {mb:.2f} | {len(docs)} | {cpu:.2f} | {wall:.2f} | {mb / cpu:.2f} | {mb / wall:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _char_tables(True, True)  # one-time table build (~0.3 s per process), not part of throughput
    print(f"datasketch {datasketch.__version__}, numpy {np.__version__}, repeat {args.repeat}\n")
    bench_signatures(args.repeat)
    bench_stage(args.repeat)


if __name__ == "__main__":
    main()
