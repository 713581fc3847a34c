"""Boilerplate stage on the trafilatura evaluation pages: F1 / recall against the gold snippets,
an ablation (each part switched off), and throughput.

    python benchmarks/bench_boilerplate.py [--repeat 3] [--no-speed] [--show-errors A|B|all]

Scoring follows trafilatura's own evaluation: a ``with`` snippet found in the output is a true
positive (missing: false negative); a ``without`` snippet found in the output is a false positive
(absent: true negative). Only snippets present in the input count (whitespace folded on both sides).
The stage is prepared on every page of ``docs.jsonl`` first (as the runner does), so the recurring-line
rule sees the whole input. The dev gold is split in two halves by a hash of the page id (half A was
used for development, half B only for checking); both halves and the whole dev set are reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.document import Document  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402

TEXT = REPO.parent / "shared" / "corpora" / "trafilatura-testpages" / "text"


def fold(s: str) -> str:
    return " ".join(s.split())


def half(doc_id: str) -> str:
    return "A" if hashlib.sha1(doc_id.encode()).digest()[0] % 2 == 0 else "B"


@dataclass
class Score:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fn += other.fn
        self.fp += other.fp
        self.tn += other.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self) -> str:
        return (
            f"{self.tp} | {self.fn} | {self.fp} | {self.tn} | "
            f"{self.precision:.3f} | {self.recall:.4f} | **{self.f1:.3f}**"
        )


def load() -> tuple[list[dict], dict[str, dict]]:
    with open(TEXT / "docs.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    with open(TEXT / "gold_snippets.dev.jsonl", encoding="utf-8") as f:
        gold = {g["id"]: g for g in map(json.loads, f)}
    return docs, gold


def make_doc(d: dict) -> Document:
    return Document(d["id"], d["text"], "docs.jsonl", record={"url": d.get("url")})


def prepared_stage(docs: list[dict], **options: object) -> BoilerplateStage:
    stage = BoilerplateStage(BoilerplateStage.Options(**options))
    if stage.needs_prepare:
        stage.prepare(make_doc(d) for d in docs)
    return stage


def evaluate(
    stage: BoilerplateStage | None, docs: list[dict], gold: dict[str, dict], errors: str | None = None
) -> dict[str, Score]:
    scores = {"A": Score(), "B": Score(), "all": Score()}
    for d in docs:
        g = gold.get(d["id"])
        if g is None:
            continue
        doc = make_doc(d)
        if stage is not None:
            stage.process(doc)
        before, after = fold(d["text"]), fold(doc.text)
        s = Score()
        lost, left = [], []
        for snippet in map(fold, g["with"]):
            if snippet and snippet in before:
                if snippet in after:
                    s.tp += 1
                else:
                    s.fn += 1
                    lost.append(snippet)
        for snippet in map(fold, g["without"]):
            if snippet and snippet in before:
                if snippet in after:
                    s.fp += 1
                    left.append(snippet)
                else:
                    s.tn += 1
        h = half(d["id"])
        scores[h].add(s)
        scores["all"].add(s)
        if errors in (h, "all") and (lost or left):
            print(f"## {d['id']} {d.get('url')}")
            for snippet in lost:
                rules = [r.rule for r in doc.removed if snippet[:30] in fold(r.text)]
                print(f"  LOST {snippet[:100]!r} {rules}")
            for snippet in left:
                print(f"  LEFT {snippet[:100]!r}")
    return scores


def ablations(stage: BoilerplateStage) -> dict[str, list[str]]:
    """disable_rules lists that switch off one part of the stage."""
    groups = stage.rule_groups()
    return {
        "all parts": [],
        "without pattern packs": groups["packs"],
        "without structure rules": groups["structure"],
        "without recurring lines": groups["recurring"],
        "without main-content localisation": groups["content"],
    }


def speed(docs: list[dict], repeat: int) -> tuple[float, float, float]:
    """Median seconds of prepare() and of process() over every page, and MB of UTF-8 text."""
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    prep, proc = [], []
    for _ in range(repeat):
        stage = BoilerplateStage()
        items = [make_doc(d) for d in docs]
        started = time.perf_counter()
        stage.prepare(items)
        prep.append(time.perf_counter() - started)
        started = time.perf_counter()
        for doc in items:
            stage.process(doc)
        proc.append(time.perf_counter() - started)
    return statistics.median(prep), statistics.median(proc), mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--show-errors", choices=["A", "B", "all"], default=None)
    args = parser.parse_args()
    docs, gold = load()
    print(f"# {platform.python_version()}, {len(docs)} pages, {len(gold)} with dev gold")

    full = prepared_stage(docs)
    print("| configuration | half | TP | FN | FP | TN | precision | recall (with) | F1 |")
    print("|---" * 9 + "|")
    base = evaluate(None, docs, gold)
    for h in ("A", "B", "all"):
        print(f"| keep everything | {h} | {base[h].row()} |")
    runs = {"all parts": full}
    if not args.no_ablation:
        for label, disabled in ablations(full).items():
            if disabled:
                runs[label] = prepared_stage(docs, disable_rules=disabled)
    for label, stage in runs.items():
        scores = evaluate(stage, docs, gold, args.show_errors if label == "all parts" else None)
        for h in ("A", "B", "all"):
            print(f"| {label} | {h} | {scores[h].row()} |")

    if not args.no_speed:
        prep, proc, mb = speed(docs, args.repeat)
        print(
            f"\nspeed (median of {args.repeat}): {mb:.1f} MB, prepare {prep:.2f} s ({mb / prep:.1f} MB/s), "
            f"process {proc:.2f} s ({mb / proc:.1f} MB/s), both {mb / (prep + proc):.1f} MB/s"
        )


if __name__ == "__main__":
    main()
