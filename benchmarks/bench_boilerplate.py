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
import gc
import hashlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import recording  # noqa: E402
from benchmarks.snippet_metric import Score, fold, score_page  # noqa: E402
from pipeline import runner  # noqa: E402
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


def cleaning_pass(
    stage: BoilerplateStage,
    items: list[Document],
    clock: Callable[[], float],
    runner_gc: bool = False,
    paused: list[bool] | None = None,
    ahead: bool = True,
) -> float:
    """Seconds (by ``clock``) of stage.process over ``items``, one after the other. By default every
    document keeps its removal records to the end, so the collector's full passes walk more and more of
    them (~140k). With ``runner_gc`` the pass is timed as the runner runs it: before it and after each
    batch (runner.BATCH_DOCS documents or BATCH_CHARS characters), not timed, what the runner does there:
    the batch's removal records handed on (dropped here: render_removed turns them into bytes) and
    settle_garbage() (a collection, the survivors frozen); each batch runs with the collector's automatic
    passes paused (runner._collector_paused, as the runner runs a batch's task) and goes through the stage's
    process_ahead() first (``ahead``), as runner.apply_stage does. ``paused[0]`` is True during the untimed
    part."""
    if not runner_gc:
        started = clock()
        for doc in items:
            stage.process(doc)
        return clock() - started

    def settle(batch: list[Document]) -> None:
        if paused is not None:
            paused[0] = True
        for doc in batch:
            doc.removed.clear()
        runner.settle_garbage()
        if paused is not None:
            paused[0] = False

    # The runner's batches: BATCH_DOCS documents, or fewer holding BATCH_CHARS characters.
    batches: list[list[Document]] = [[]]
    chars = 0
    for doc in items:
        if len(batches[-1]) >= runner.BATCH_DOCS or chars >= runner.BATCH_CHARS:
            batches.append([])
            chars = 0
        batches[-1].append(doc)
        chars += len(doc.text)
    settle([])
    total = 0.0
    for batch in batches:
        # (The collector's automatic passes paused during the batch, as the runner pauses them for a batch's
        # task: what the batch left is collected by settle(), untimed, as by the runner after the task.)
        with runner._collector_paused():
            started = clock()
            if ahead:
                stage.process_ahead(batch)  # as runner.apply_stage does
            for doc in batch:
                stage.process(doc)
            total += clock() - started
        settle(batch)
    return total


def speed(docs: list[dict], repeat: int, runner_gc: bool = False) -> tuple[float, float, float]:
    """Median seconds of prepare() and of process() over every page (cleaning_pass), and MB of UTF-8 text."""
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    prep, proc = [], []
    for _ in range(repeat):
        forget_lines(sys.modules[BoilerplateStage.__module__])
        stage = BoilerplateStage()
        items = [make_doc(d) for d in docs]
        started = time.perf_counter()
        stage.prepare(items)
        prep.append(time.perf_counter() - started)
        proc.append(cleaning_pass(stage, items, time.perf_counter, runner_gc))
    return statistics.median(prep), statistics.median(proc), mb


# What phases() times: the compiled calls (numba kernels, the hyperscan scan), then the stage's Python steps
# (each inclusive of what it calls), as (owner's name in the stage module or None for the class, attribute).
PHASE_KERNELS = (
    ("kernels", "line_index"),
    ("kernels", "line_facts"),
    ("kernels", "info_marks"),
    ("kernels", "phrase_lines"),
    ("kernels", "scorer_inputs"),
    ("kernels", "score_log_odds"),
    ("kernels", "context_features"),
    ("kernels", "_tree_log_odds"),
    ("kernels", "scorer_removals"),
    ("prefilter.Prefilter", "scan"),
)
PHASE_STEPS = (
    (None, "_line_rows"),
    (None, "_new_line_infos"),
    (None, "_pattern_rules"),
    (None, "_crumbs"),
    (None, "_rule_verdicts"),
    (None, "_mark_scored_lines"),
    ("", "_scorer_inputs"),
    (None, "_compiled_log_odds"),
    (None, "_scored_group"),
    ("", "_url_title_line"),
    (None, "_write_out"),
)


def _phase_owner(module: Any, owner: str | None) -> Any:
    if owner is None:
        return BoilerplateStage
    target = module
    for part in filter(None, owner.split(".")):
        target = getattr(target, part)
    return target


def _timed(fn: Callable[..., Any], into: dict[str, float], label: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into[label] = into.get(label, 0.0) + time.process_time() - start

    return timed


def phases(docs: list[dict], repeat: int, runner_gc: bool = False) -> dict[str, float]:
    """CPU seconds of the cleaning pass by part, medians of ``repeat`` runs (set up as speed() does): each
    compiled call (numba kernels, the hyperscan scan), the stage's Python steps (inclusive: a step's time
    holds the kernels and steps it calls) and the garbage collector's passes (gc.callbacks; a pass runs
    inside whichever call allocated last, so it is in that call's time too). "python" is the pass minus
    the compiled calls and the collector: the interpreted work. The timing wrappers add ~1 µs a call.
    ``runner_gc``: the pass timed as the runner runs it (cleaning_pass)."""
    module = sys.modules[BoilerplateStage.__module__]
    targets = [(owner, name, f"kernel {name}") for owner, name in PHASE_KERNELS]
    targets += [(owner, name, f"step {name}") for owner, name in PHASE_STEPS]
    runs: list[dict[str, float]] = []
    gc_start = [0.0]
    paused = [False]  # the runner's collections between batches are not part of the pass

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if paused[0]:
            return
        if phase == "start":
            gc_start[0] = time.process_time()
        else:
            now[label_gc] = now.get(label_gc, 0.0) + time.process_time() - gc_start[0]

    label_gc = "garbage collector"
    originals = []
    now: dict[str, float] = {}
    for owner, name, label in targets:
        where = _phase_owner(module, owner)
        fn = where.__dict__[name] if isinstance(where, type) else getattr(where, name)
        originals.append((where, name, fn))
        setattr(where, name, _timed(fn, now, label))
    gc.callbacks.append(on_gc)
    try:
        for _ in range(repeat):
            forget_lines(module)
            stage = BoilerplateStage()
            items = [make_doc(d) for d in docs]
            stage.prepare(items)
            now.clear()
            now["cleaning pass"] = cleaning_pass(stage, items, time.process_time, runner_gc, paused)
            compiled = sum(v for k, v in now.items() if k.startswith("kernel "))
            now["compiled (kernels + scan)"] = compiled
            now["python"] = now["cleaning pass"] - compiled - now.get(label_gc, 0.0)
            runs.append(dict(now))
    finally:
        gc.callbacks.remove(on_gc)
        for where, name, fn in originals:
            setattr(where, name, fn)
    order = ["cleaning pass", "compiled (kernels + scan)", label_gc, "python"] + [label for *_, label in targets]
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in order}


def ahead_ab(docs: list[dict], repeat: int) -> dict[str, list[float]]:
    """CPU seconds of the cleaning pass as the runner runs it (cleaning_pass with runner_gc), without and with
    process_ahead, alternated in this process ``repeat`` times (the same load for both), after an untimed
    round of each whose outputs (texts and removals) are compared."""
    module = sys.modules[BoilerplateStage.__module__]
    times: dict[str, list[float]] = {"per document": [], "process_ahead": []}
    outputs: list[list[Any]] = []
    for round_ in range(repeat + 1):
        for label, ahead in (("per document", False), ("process_ahead", True)):
            forget_lines(module)
            stage = BoilerplateStage()
            items = [make_doc(d) for d in docs]
            stage.prepare(items)
            if round_:
                times[label].append(cleaning_pass(stage, items, time.process_time, runner_gc=True, ahead=ahead))
                continue
            seen: list[Any] = []
            process = stage.process

            def keep(doc: Document, _process: Callable[[Document], None] = process, _seen: list[Any] = seen) -> None:
                _process(doc)  # (the records are dropped between batches: keep what the check compares)
                _seen.append((doc.text, [(r.rule, r.text) for r in doc.removed]))

            stage.process = keep  # type: ignore[method-assign]
            cleaning_pass(stage, items, time.process_time, runner_gc=True, ahead=ahead)
            outputs.append(seen)
        if not round_ and outputs[0] != outputs[1]:
            raise SystemExit("outputs differ with process_ahead")
    return times


def replay(docs: list[dict], repeat: int) -> dict[str, dict[str, float]]:
    """CPU seconds of the cleaning pass's compiled calls (PHASE_KERNELS) made again with the same arguments,
    medians of ``repeat`` rounds: "interleaved" in the pass's order (each document's calls one after the
    other, as process() makes them) and "grouped" (each kernel's calls of every document in a row). The
    difference is what the kernels lose to each other's tables leaving the caches (the hyperscan database
    is ~2.3 MB, the lexicon ~0.7 MB), not counting what the Python work between them evicts too."""
    module = sys.modules[BoilerplateStage.__module__]
    calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
    originals = []

    def recorder(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def record(*args: Any) -> Any:
            calls.append((label, fn, args))
            return fn(*args)

        return record

    for owner, name in PHASE_KERNELS:
        where = _phase_owner(module, owner)
        fn = where.__dict__[name] if isinstance(where, type) else getattr(where, name)
        originals.append((where, name, fn))
        setattr(where, name, recorder(fn, name))
    try:
        stage = BoilerplateStage()
        items = [make_doc(d) for d in docs]
        stage.prepare(items)
        for doc in items:
            stage.process(doc)
    finally:
        for where, name, fn in originals:
            setattr(where, name, fn)
    labels = [name for _owner, name in PHASE_KERNELS]
    rounds: dict[str, list[dict[str, float]]] = {"interleaved": [], "grouped": []}
    for _ in range(repeat):
        spent = dict.fromkeys(labels, 0.0)
        for label, fn, args in calls:  # (the calls write the same values into their output arrays again)
            start = time.process_time()
            fn(*args)
            spent[label] += time.process_time() - start
        rounds["interleaved"].append(spent)
        spent = dict.fromkeys(labels, 0.0)
        for kernel in labels:
            start = time.process_time()
            for label, fn, args in calls:
                if label == kernel:
                    fn(*args)
            spent[kernel] = time.process_time() - start
        rounds["grouped"].append(spent)
    return {order: {k: statistics.median(r[k] for r in runs) for k in labels} for order, runs in rounds.items()}


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
    parser.add_argument("--phases", action="store_true", help="CPU seconds of the cleaning pass by part")
    parser.add_argument(
        "--ahead-ab", action="store_true", help="runner-like passes without and with process_ahead, alternated"
    )
    parser.add_argument(
        "--replay", action="store_true", help="the pass's compiled calls again: per document vs per kernel"
    )
    parser.add_argument(
        "--runner-gc",
        action="store_true",
        help="time the cleaning pass as the runner runs it: removal records dropped and garbage settled "
        "(collected, frozen) between batches, not timed",
    )
    args = parser.parse_args()
    if recording.run_requested(args, stage_outputs, ("variant", "set", "id")):
        return
    docs, gold = load()
    if args.compare_with:
        compare_speed(args.compare_with, docs, args.repeat)
        return
    if args.ahead_ab:
        for label, spent in ahead_ab(docs, args.repeat).items():
            runs = " ".join(f"{t:.3f}" for t in spent)
            print(f"{label}: median {statistics.median(spent):.3f} s CPU ({runs})")
        return
    if args.replay:
        for order, spent in replay(docs, args.repeat).items():
            parts = ", ".join(f"{k} {v:.3f}" for k, v in spent.items())
            print(f"compiled calls {order}: {sum(spent.values()):.3f} s CPU ({parts})")
        return
    if args.phases:
        mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
        print(f"cleaning pass by part, CPU seconds, median of {args.repeat} runs, {mb:.1f} MB:")
        for label, seconds in phases(docs, args.repeat, args.runner_gc).items():
            print(f"  {label:34s} {seconds:6.3f}")
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
        prep, proc, mb = speed(docs, args.repeat, args.runner_gc)
        print(
            f"\nspeed (median of {args.repeat}): {mb:.1f} MB, prepare {prep:.2f} s ({mb / prep:.1f} MB/s), "
            f"process {proc:.2f} s ({mb / proc:.1f} MB/s), both {mb / (prep + proc):.1f} MB/s"
        )


if __name__ == "__main__":
    main()
