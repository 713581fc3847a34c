"""Boilerplate stage on the 697 Common Crawl documents: which lines a line-scorer model removes that
an older one kept, and the other way round (there is no gold: read the samples).

    git show REV:pipeline/data/boilerplate/line_scorer.json > /tmp/old_scorer.json
    python benchmarks/bench_boilerplate_cc.py /tmp/old_scorer.json [--old-threshold 0.08] [--threshold 0.08]
    git show REV:pipeline/stages/boilerplate.py > /tmp/old_boilerplate.py   # when the model's features changed
    python benchmarks/bench_boilerplate_cc.py /tmp/old_scorer.json --old-stage /tmp/old_boilerplate.py
    python benchmarks/bench_boilerplate_cc.py /tmp/old_scorer.json --counts-at 0.05,0.08,0.115   # counts only

Both stages use default options except the line scorer's model and threshold; each is prepared on the
whole CC set first (as the runner does). Removed lines are compared per document as multisets.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_boilerplate import CC  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402


def removed_lines(
    docs: list[dict], model: dict | None, threshold: float, stage_class: type = BoilerplateStage
) -> dict[str, Counter[str]]:
    stage = stage_class(stage_class.Options(line_scorer_threshold=threshold), scorer_model=model)

    def make(d: dict) -> Document:
        return Document(d["id"], d["text"], "cc.jsonl", record={"url": d.get("url")})

    stage.prepare(make(d) for d in docs)
    out = {}
    for d in docs:
        doc = make(d)
        stage.process(doc)
        out[d["id"]] = Counter(r.text for r in doc.removed if r.lines)
    return out


def old_stage_class(path: Path) -> type:
    """BoilerplateStage of an older boilerplate.py (loaded as its own module)."""
    spec = importlib.util.spec_from_file_location("old_boilerplate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BoilerplateStage


def print_counts(docs: list[dict], old: dict[str, Counter[str]], thresholds: list[float]) -> None:
    """Lines newly removed / kept again / removed in all, for the current model at each threshold."""
    before = sum(sum(c.values()) for c in old.values())
    for threshold in thresholds:
        new = removed_lines(docs, None, threshold)
        added = sum(sum((new[d["id"]] - old[d["id"]]).values()) for d in docs)
        kept = sum(sum((old[d["id"]] - new[d["id"]]).values()) for d in docs)
        after = sum(sum(c.values()) for c in new.values())
        print(f"threshold {threshold}: newly removed {added}, kept again {kept}, lines removed {before} -> {after}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old_model", type=Path, help="line_scorer.json of the version to compare with")
    parser.add_argument("--old-threshold", type=float, default=0.08)
    parser.add_argument("--threshold", type=float, default=0.08, help="threshold of the current (shipped) model")
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument(
        "--counts-at", help="thresholds of the current model: print only the line counts at each (no samples)"
    )
    parser.add_argument(
        "--old-stage", type=Path, help="an older boilerplate.py to run the old model with (its features may differ)"
    )
    args = parser.parse_args()
    with open(CC, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    old_class = old_stage_class(args.old_stage) if args.old_stage else BoilerplateStage
    old = removed_lines(docs, json.loads(args.old_model.read_text(encoding="utf-8")), args.old_threshold, old_class)
    if args.counts_at:
        print_counts(docs, old, [float(t) for t in args.counts_at.split(",")])
        return
    new = removed_lines(docs, None, args.threshold)
    total = sum(len(d["text"]) for d in docs)
    rnd = random.Random(0)
    for label, a, b in (("newly removed", new, old), ("restored (kept now)", old, new)):
        lines = [(d.get("url"), t) for d in docs for t, c in (a[d["id"]] - b[d["id"]]).items() for _ in range(c)]
        chars = sum(len(t) for _, t in lines)
        in_docs = len({d["id"] for d in docs if a[d["id"]] - b[d["id"]]})
        share = f"{chars / total:.1%} of {total}"
        print(f"{label}: {len(lines)} lines, {chars} characters ({share}) in {in_docs} documents")
        for url, text in rnd.sample(lines, min(args.sample, len(lines))):
            print(f"  {text[:110]!r} | {url}")


if __name__ == "__main__":
    main()
