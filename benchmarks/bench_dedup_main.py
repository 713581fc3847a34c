"""dedup's share of the main process, alone: what a worker does for it and what the main process does.

    python benchmarks/bench_dedup_main.py INPUT [--rounds 3] [--texts FILE]   (from the repository root)

The texts dedup sees are taken from a ``--workers 1`` run of INPUT in this process (the stages before
dedup applied; ``--texts FILE`` saves them as JSONL, or reads them back if FILE exists). Then, per round,
with the collector off as in a run: the worker's part (``prepare_document`` on each batch of 64 documents,
then their scratches pickled as ``runner._changes`` sends them) and the main process's part (unpickling
them, then ``process`` in input order). CPU seconds (``time.process_time``), best of the rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from pipeline.document import Document  # noqa: E402
from pipeline.stages import dedup  # noqa: E402

BATCH = 64  # runner.BATCH_DOCS


def dedup_texts(path: str) -> list[dict[str, Any]]:
    """The documents as dedup's ``process`` gets them in a 1-worker run of ``path``."""
    from pipeline.cli import cli

    seen: list[dict[str, Any]] = []
    process = dedup.DedupStage.process

    def noting(self: dedup.DedupStage, doc: Document) -> None:
        seen.append({"id": doc.id, "text": doc.text, "source": doc.source, "line": doc.line_no})
        process(self, doc)

    out = tempfile.mkdtemp(prefix="bench-dedup-main-")
    dedup.DedupStage.process = noting  # type: ignore[method-assign]
    try:
        cli.main(["run", path, "-o", out, "-q", "--workers", "1"], standalone_mode=False)
    finally:
        dedup.DedupStage.process = process  # type: ignore[method-assign]
        shutil.rmtree(out, ignore_errors=True)
    return seen


def one_round(rows: list[dict[str, Any]], size: int) -> dict[str, float]:
    stage = dedup.DedupStage()
    docs = [Document(r["id"], r["text"], r["source"], line_no=r["line"]) for r in rows]
    t = {"prepare": 0.0, "pickle": 0.0}
    blobs = []
    for i in range(0, len(docs), BATCH):  # as a worker: a batch prepared, then its results pickled
        c = time.process_time()
        for doc in docs[i : i + BATCH]:
            stage.prepare_document(doc)
        c2 = time.process_time()
        blobs.append(pickle.dumps([(None, d.scratch) for d in docs[i : i + BATCH]], protocol=pickle.HIGHEST_PROTOCOL))
        t["prepare"] += c2 - c
        t["pickle"] += time.process_time() - c2
    c = time.process_time()
    back = [scratch for blob in blobs for _, scratch in pickle.loads(blob)]
    t["unpickle"] = time.process_time() - c
    for doc, scratch in zip(docs, back, strict=True):
        doc.scratch = scratch
    c = time.process_time()
    stage.expect_input(size)  # (as the runner does before the stream: the input's bytes)
    for doc in docs:
        stage.process(doc)
    stage.close()
    t["process"] = time.process_time() - c
    t["MB sent"] = sum(map(len, blobs)) / 1e6
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=Path, help="JSONL of dedup's texts: written if absent, else read")
    args = parser.parse_args()
    if args.texts is not None and args.texts.exists():
        rows = [json.loads(line) for line in args.texts.open(encoding="utf-8")]
    else:
        rows = dedup_texts(args.input)
        if args.texts is not None:
            args.texts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    gc.disable()
    dedup.DedupStage().process(Document("warm-up", "the kernels loaded before timing " * 20, "warm-up"))
    best: dict[str, float] = {}
    for r in range(args.rounds):
        t = one_round(rows, Path(args.input).stat().st_size)
        print(f"round {r}: " + " ".join(f"{k} {v:.3f}" for k, v in t.items()), flush=True)
        best = {k: min(best.get(k, v), v) for k, v in t.items()}
    print(
        f"{len(rows)} documents, best of {args.rounds}: worker prepare {best['prepare']:.3f}"
        f" + pickle {best['pickle']:.3f} s; main unpickle {best['unpickle']:.3f} + process {best['process']:.3f}"
        f" = {best['unpickle'] + best['process']:.3f} s; {best['MB sent']:.1f} MB sent"
    )


if __name__ == "__main__":
    main()
