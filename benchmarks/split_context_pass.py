"""CPU time of each step of the line scorer's second pass on the trafilatura pages, this tree's code
against an older boilerplate.py (median of --repeat runs, steps timed one after another over all pages).

    PYTHONPATH=$PWD python benchmarks/split_context_pass.py --old /tmp/bpctx-old.py --repeat 3
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_boilerplate as bench  # noqa: E402

from pipeline.stages import boilerplate as new  # noqa: E402


def load_old(path: Path):
    spec = importlib.util.spec_from_file_location("old_boilerplate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu(step: Callable[[], object]) -> float:
    started = time.process_time()
    step()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    old = load_old(args.old)
    docs, _ = bench.load()
    stage = bench.prepared_stage(docs)
    pages = []
    for d in docs:
        doc = bench.make_doc(d)
        lines = doc.text.split("\n")
        v = stage.rule_verdicts(doc, lines)
        cand = new.scorer_candidates(lines, v)
        if cand:
            x = new.line_features(lines, v, cand)
            pages.append((lines, v, cand, x, stage._scorer.log_odds(x)))
    ctx_new, ctx_old = new._shipped_context(), old._shipped_context()
    lexicon = ctx_new.lexicon

    def old_words():
        old.line_words.cache_clear()
        return [(w := old.candidate_words(p[0], p[2]), old.lexicon_weights(w, lexicon)) for p in pages]

    def new_words():
        new.line_words.cache_clear()  # used by the documents left to the Python path
        return [ctx_new.compiled.candidate_words(p[0], p[2]) for p in pages]

    ow, nw = old_words(), new_words()
    stacked = [
        np.hstack(
            (
                p[3],
                new.context_features(p[0], p[1], p[2], p[4]),
                new.lexical_features(w),
                new.document_features(w, p[1], p[2]),
            )
        )
        for p, w in zip(pages, nw, strict=True)
    ]
    steps = {
        "words+lexicon": (old_words, new_words),
        "context_features": (
            lambda: [old.context_features(p[0], p[1], p[2], p[4]) for p in pages],
            lambda: [new.context_features(p[0], p[1], p[2], p[4]) for p in pages],
        ),
        "lexical_features": (
            lambda: [old.lexical_features(w, wt) for w, wt in ow],
            lambda: [new.lexical_features(w) for w in nw],
        ),
        "document_features": (
            lambda: [old.document_features(w, p[1], p[2]) for p, (w, _) in zip(pages, ow, strict=True)],
            lambda: [new.document_features(w, p[1], p[2]) for p, w in zip(pages, nw, strict=True)],
        ),
        "context trees": (
            lambda: [ctx_old.log_odds(s) for s in stacked],
            lambda: [ctx_new.log_odds(s) for s in stacked],
        ),
    }
    print(f"{len(pages)} pages with candidate lines, median CPU s of {args.repeat} runs")
    total = {"old": 0.0, "new": 0.0}
    for name, (o, n) in steps.items():
        to = statistics.median(cpu(o) for _ in range(args.repeat))
        tn = statistics.median(cpu(n) for _ in range(args.repeat))
        total["old"] += to
        total["new"] += tn
        print(f"  {name:18s} old {to:.3f}  new {tn:.3f}")
    print(f"  {'sum':18s} old {total['old']:.3f}  new {total['new']:.3f}")


if __name__ == "__main__":
    main()
