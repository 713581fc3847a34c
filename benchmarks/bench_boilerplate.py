"""Boilerplate stage on the trafilatura evaluation pages: F1 / recall against the gold snippets,
an ablation (each part switched off), and throughput.

    python benchmarks/bench_boilerplate.py [--repeat 3] [--no-speed] [--show-errors A|B|all]
    python benchmarks/bench_boilerplate.py --record OUT.jsonl          # outputs of the current stage
    python benchmarks/bench_boilerplate.py --check-against OUT.jsonl   # same outputs, byte for byte?
    python benchmarks/bench_boilerplate.py --compare-with /tmp/old_boilerplate.py  # speed side by side

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
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import recording  # noqa: E402
from benchmarks.snippet_metric import Score, fold, score_page  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402

SHARED = REPO.parent / "shared"
TEXT = SHARED / "corpora" / "trafilatura-testpages" / "text"
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"
SEEDS = SHARED / "seeds"
# Option sets the output check runs with: the defaults, and one that moves every threshold so that
# code paths the defaults rarely reach (longer phrase lines, wider menus, looser body test) run too.
CHECK_VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "loose": {
        "max_phrase_line_words": 20,
        "nav_min_run": 3,
        "nav_max_words": 5,
        "trailing_max_words": 25,
        "recurring_min_documents": 3,
        "recurring_min_words": 1,
        "recurring_site_min_documents": 2,
        "content_min_words": 5,
        "content_line_penalty": 20,
        "content_margin": 1,
    },
}


def half(doc_id: str) -> str:
    return "A" if hashlib.sha1(doc_id.encode()).digest()[0] % 2 == 0 else "B"


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
        s, lost, left = score_page(g, fold(d["text"]), fold(doc.text))
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


def ablations(stage: BoilerplateStage) -> dict[str, dict[str, object]]:
    """Option sets that switch off one part of the stage (``disable_rules`` lists, or the article
    stretch's separators set to zero)."""
    groups = stage.rule_groups()
    return {
        "all parts": {},
        "without pattern packs": {"disable_rules": groups["packs"]},
        "without structure rules": {"disable_rules": groups["structure"]},
        "without recurring lines": {"disable_rules": groups["recurring"]},
        "without main-content localisation": {"disable_rules": groups["content"]},
        "without line scorer": {"disable_rules": groups["scorer"]},
        "stretch: removed lines cost nothing": {"content_removed_penalty": 0},
        "stretch: widget/comment headings cost nothing": {"content_marker_penalty": 0},
        "stretch: neither separator (previous localisation)": {
            "content_removed_penalty": 0,
            "content_marker_penalty": 0,
        },
    }


def speed(docs: list[dict], repeat: int) -> tuple[float, float, float]:
    """Median seconds of prepare() and of process() over every page, and MB of UTF-8 text."""
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    prep, proc = [], []
    for _ in range(repeat):
        forget_lines(sys.modules[BoilerplateStage.__module__])
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


def forget_lines(module: object) -> None:
    """Empty a stage module's module-level per-line caches, so that every timed run sees the lines for
    the first time, as a real run does (a stage instance's own cache starts empty anyway)."""
    for name in ("_line_shape", "line_words"):
        cached = getattr(module, name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def check_sets() -> dict[str, list[Document]]:
    """Every input the output check covers: trafilatura pages, Common Crawl documents, the seeds."""
    sets: dict[str, list[Document]] = {}
    with open(TEXT / "docs.jsonl", encoding="utf-8") as f:
        sets["trafilatura"] = [make_doc(json.loads(line)) for line in f]
    if CC.exists():
        with open(CC, encoding="utf-8") as f:
            sets["cc"] = [
                Document(d["id"], d["text"], "cc.jsonl", record={"url": d.get("url")}) for d in map(json.loads, f)
            ]
    sets["seeds"] = [Document(p.name, p.read_text(encoding="utf-8"), p.name) for p in sorted(SEEDS.glob("*.txt"))]
    return sets


def stage_outputs() -> Iterator[dict]:
    """One record per (variant, set, document): the cleaned text and every removal; then the counters."""
    sets = check_sets()
    for variant, options in CHECK_VARIANTS.items():
        for name, docs in sets.items():
            stage = BoilerplateStage(BoilerplateStage.Options(**options))
            stage.prepare(Document(d.id, d.text, d.source, record=d.record) for d in docs)
            yield {
                "variant": variant,
                "set": name,
                "id": "#learnt",
                "recurring": sorted(stage.recurring),
                "by_site": {s: sorted(k) for s, k in sorted(stage.recurring_by_site.items())},
            }
            for d in docs:
                doc = Document(d.id, d.text, d.source, record=d.record)
                stage.process(doc)
                removed = [[r.rule, r.text, r.lines] for r in doc.removed]
                yield {"variant": variant, "set": name, "id": doc.id, "text": doc.text, "removed": removed}
            yield {"variant": variant, "set": name, "id": "#stats", "stats": dict(sorted(stage.stats.items()))}


def compare_speed(old_path: Path, docs: list[dict], repeat: int) -> None:
    """Old and current stage timed alternately in this process (same load), median of `repeat` runs each."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("old_boilerplate", old_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = {"old": module.BoilerplateStage, "new": BoilerplateStage}
    modules = {"old": module, "new": sys.modules[BoilerplateStage.__module__]}
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    # Wall-clock and CPU seconds (the CPU figure is less disturbed by other jobs on a shared machine).
    parts = ("prepare", "process", "prepare-cpu", "process-cpu")
    times: dict[str, dict[str, list[float]]] = {k: {p: [] for p in parts} for k in classes}
    for _ in range(repeat):
        for label, cls in classes.items():
            forget_lines(modules[label])
            stage = cls()
            items = [make_doc(d) for d in docs]
            started, cpu = time.perf_counter(), time.process_time()
            stage.prepare(items)
            times[label]["prepare"].append(time.perf_counter() - started)
            times[label]["prepare-cpu"].append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            for doc in items:
                stage.process(doc)
            times[label]["process"].append(time.perf_counter() - started)
            times[label]["process-cpu"].append(time.process_time() - cpu)
    print(f"\nside by side, median of {repeat} alternating runs, {mb:.1f} MB:")
    med = {k: {p: statistics.median(v) for p, v in t.items()} for k, t in times.items()}
    for label in classes:
        print(f"  {label}: " + ", ".join(f"{p} {med[label][p]:.2f} s ({mb / med[label][p]:.1f} MB/s)" for p in parts))
    for part in parts:
        print(f"  speed-up {part}: {med['old'][part] / med['new'][part]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--show-errors", choices=["A", "B", "all"], default=None)
    recording.add_options(parser)
    parser.add_argument("--compare-with", type=Path, help="an older boilerplate.py: time both side by side")
    args = parser.parse_args()
    if recording.run_requested(args, stage_outputs, ("variant", "set", "id")):
        return
    docs, gold = load()
    if args.compare_with:
        compare_speed(args.compare_with, docs, args.repeat)
        return
    print(f"# {platform.python_version()}, {len(docs)} pages, {len(gold)} with dev gold")

    full = prepared_stage(docs)
    print("| configuration | half | TP | FN | FP | TN | precision | recall (with) | F1 |")
    print("|---" * 9 + "|")
    base = evaluate(None, docs, gold)
    for h in ("A", "B", "all"):
        print(f"| keep everything | {h} | {base[h].row()} |")
    runs = {"all parts": full}
    if not args.no_ablation:
        for label, options in ablations(full).items():
            if options:
                runs[label] = prepared_stage(docs, **options)
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
