"""dedup speed on the real corpora, side by side in one run.

1. Signatures: datasketch's fastest path, ``MinHash.bulk(shingle_lists, num_perm=128,
   hashfunc=xxhash.xxh32_intdigest)`` over pre-shingled paragraphs (shingling not timed), against this
   stage's vectorized path from the raw paragraph text (normalization, tokens, hashes and
   signatures all timed), one document's paragraphs per call. datasketch given our ``ShingleHash``
   gives signatures equal to ours (checked here on a sample; pure Python, so not timed).
2. The whole dedup stage (default options) over the CC and trafilatura documents: MB/s per core, with
   the CPU time of its two parts (``prepare_document``: signatures, in the workers; ``process``:
   the index, serial in the main process).

Run from the repo root: ``python benchmarks/bench_dedup_speed.py [--repeat 3]``. Reports medians
of CPU time (process_time: the machine may be shared) and wall time. ``--record FILE`` saves the
stage's results on both corpora (texts, removals, rejections, counters, saved index payloads);
``--check-against FILE`` compares a later run with them (a speed change must not change results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import datasketch  # noqa: E402
import numpy as np  # noqa: E402
import xxhash  # noqa: E402

from benchmarks.corpora import TEXT_CORPORA  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.stages.dedup import DedupOptions, DedupStage, _char_tables  # noqa: E402

CORPORA = TEXT_CORPORA


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


def run_stage(
    docs: list[tuple[str, str]], name: str, options: DedupOptions | None = None, record: bool = False
) -> list[Document]:
    stage = DedupStage(options)
    out = [Document(doc_id, text, name) for doc_id, text in docs]
    for doc in out:
        if record:  # the runner's path: signatures prepared first (in a worker), then the index
            stage.prepare_document(doc)
        stage.process(doc)
    stage.close()
    if not record:  # timed runs: the stage alone
        return out
    out[0].meta["stats"] = dict(stage.take_stats())
    out[0].meta["state"] = hashlib.sha256(b"".join(stage.pop_state(name))).hexdigest()
    return out


def results(variants: dict[str, DedupOptions]) -> dict[str, list[Any]]:
    """The stage's whole output per corpus and option set, in a JSON-comparable form."""
    got: dict[str, list[Any]] = {}
    for name, path in CORPORA.items():
        for label, options in variants.items():
            docs = run_stage(load(path), name, options, record=True)
            got[f"{name}/{label}"] = [docs[0].meta["stats"], docs[0].meta["state"]] + [
                [
                    d.id,
                    d.text,
                    [[r.rule, r.text, r.lines, r.extra] for r in d.removed],
                    None if d.rejected is None else [d.rejected.reason, d.rejected.extra],
                ]
                for d in docs
            ]
    return json.loads(json.dumps(got))


# Defaults, plus options that take the other code paths (estimate verification, char shingles,
# paragraph units without document checks).
VARIANTS = {
    "defaults": DedupOptions(),
    "estimate": DedupOptions(verify="estimate"),
    "char-paragraph": DedupOptions(shingle="char", ngram=12, unit="paragraph", documents=False),
}


def record_or_check(record: Path | None, check: Path | None) -> None:
    got = results(VARIANTS)
    if record is not None:
        record.write_text(json.dumps(got))
        print(f"recorded the stage's results in {record}")
    if check is not None:
        want = json.loads(check.read_text())
        for key in want:
            same = got[key] == want[key]
            diff = sum(a != b for a, b in zip(got[key], want[key], strict=True))
            print(f"{key}: {'identical' if same else f'DIFFERENT ({diff} entries)'}")
        if got != want:
            raise SystemExit(1)


def split_stage(docs: list[tuple[str, str]], name: str) -> tuple[float, float]:
    """CPU seconds of the two parts, as the runner splits them: ``prepare_document`` (signatures: in
    the worker processes) over all documents, then ``process`` (the index: in input order, in the
    main process, so it bounds how far more workers help)."""
    stage = DedupStage()
    out = [Document(doc_id, text, name) for doc_id, text in docs]
    size = sum(len(t.encode("utf-8")) for _, t in docs)  # (what the runner tells the stage: the input's bytes)
    c = time.process_time()
    for doc in out:
        stage.prepare_document(doc)
    prepared = time.process_time()
    stage.expect_input(size)
    for doc in out:
        stage.process(doc)
    stage.close()
    return prepared - c, time.process_time() - prepared


def bench_stage(repeat: int) -> None:
    print(
        "\n| corpus | MB | documents | prepare_document CPU s | process CPU s | total CPU s | MB/s per core (CPU) "
        "| process alone MB/s | total wall s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path in CORPORA.items():
        docs = load(path)
        mb = sum(len(t.encode("utf-8")) for _, t in docs) / 1e6
        parts, walls = [], []
        for _ in range(repeat):
            w = time.perf_counter()
            parts.append(split_stage(docs, name))
            walls.append(time.perf_counter() - w)
        prep = statistics.median(p for p, _ in parts)
        proc = statistics.median(q for _, q in parts)
        total = statistics.median(p + q for p, q in parts)
        print(
            f"| {name} | {mb:.2f} | {len(docs)} | {prep:.2f} | {proc:.2f} | {total:.2f} | {mb / total:.2f} "
            f"| {mb / proc:.2f} | {statistics.median(walls):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--record", type=Path, help="save the stage's results on the corpora to this file")
    parser.add_argument("--check-against", type=Path, help="compare the stage's results with a --record file")
    parser.add_argument("--only-results", action="store_true", help="record/check only, no timing")
    parser.add_argument("--only-stage", action="store_true", help="time the whole stage only")
    args = parser.parse_args()
    t = time.perf_counter()
    _char_tables(True, True)  # one-time table build (~0.3 s per process), not part of throughput
    DedupStage().sketch("one-time warm-up of the compiled kernels " * 3)  # load (or compile) them
    print(f"one-time setup (tables, loading the cached numba kernels): {time.perf_counter() - t:.2f} s wall")
    if args.record or args.check_against:
        record_or_check(args.record, args.check_against)
        if args.only_results:
            return
    print(f"datasketch {datasketch.__version__}, numpy {np.__version__}, repeat {args.repeat}\n")
    if not args.only_stage:
        bench_signatures(args.repeat)
    bench_stage(args.repeat)


if __name__ == "__main__":
    main()
