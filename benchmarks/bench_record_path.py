"""CPU (time.process_time, best of ``--rounds``) of the per-document work outside boilerplate's cleaning pass
and the language stage, each alone over every document of a JSONL input as read (not as the stages before
would leave it): reading, encoding's fixer, normalize, boilerplate's first-pass part, dedup's sketch, and
removed.jsonl's lines of an earlier run's removals (``--removed OUTDIR/removed.jsonl``).

    python benchmarks/bench_record_path.py /tmp/scale/input-40mb.jsonl [--removed OUT/removed.jsonl]

Run it from two worktrees to compare them (session 17: /tmp/s17/base-io and /work/wt-io): it imports the
pipeline beside it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import RunConfig  # noqa: E402
from pipeline.document import Document, Removal  # noqa: E402
from pipeline.io import discover, read_documents  # noqa: E402
from pipeline.runner import removed_lines  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402
from pipeline.stages.dedup import DedupStage  # noqa: E402
from pipeline.stages.encoding import EncodingStage  # noqa: E402
from pipeline.stages.normalize import NormalizeStage  # noqa: E402

_RECORD_KEYS = ("id", "source", "line", "stage", "rule", "start", "end", "text")


def best_of(rounds: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def _removed_documents(path: Path) -> list[Document]:
    """Documents holding the removals of a removed.jsonl (one per input line), to render again."""
    docs: dict[tuple[str, int], Document] = {}
    for line in path.open("rb"):
        r = orjson.loads(line)
        doc = docs.get((r["source"], r.get("line", 0)))
        if doc is None:
            doc = docs[(r["source"], r.get("line", 0))] = Document(r["id"], "x", r["source"], line_no=r.get("line", 0))
        extra = {key: value for key, value in r.items() if key not in _RECORD_KEYS} or None
        doc.removed.append(Removal(r["stage"], r["rule"], r["text"], 0, extra, r["start"], r["end"]))
    return list(docs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("--removed", type=Path, help="an earlier run's removed.jsonl: time rendering its lines")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = RunConfig()
    files, _ = discover([str(args.input)])
    docs = [doc for f in files for doc in read_documents(f, config.input)]
    texts = [doc.text for doc in docs]
    fixer, normalize, boilerplate = EncodingStage().fixer, NormalizeStage(), BoilerplateStage()

    def normalize_all() -> None:
        for text in texts:
            normalize.process(Document("d", text, "s"))

    def sketch_all() -> None:
        dedup = DedupStage()
        for text in texts:
            dedup.prepare_document(Document("d", text, "s"))

    timings: dict[str, Callable[[], Any]] = {
        "read": lambda: [doc for f in files for doc in read_documents(f, config.input)],
        "encoding fix": lambda: [fixer.fix(text) for text in texts],
        "normalize": normalize_all,
        "boilerplate prepare_part": lambda: [boilerplate.prepare_part(doc) for doc in docs],
        "dedup prepare_document": sketch_all,
    }
    if args.removed:
        removed = _removed_documents(args.removed)
        timings["removed_lines"] = lambda: [removed_lines(doc) for doc in removed]
    for fn in timings.values():  # loads what each loads lazily (numba's cached code, tables)
        fn()
    print(f"{len(docs)} documents, {sum(map(len, texts)):,} characters; CPU s, best of {args.rounds}")
    for name, fn in timings.items():
        print(f"{name:26s} {best_of(args.rounds, fn):.3f}")


if __name__ == "__main__":
    main()
