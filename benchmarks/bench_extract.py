"""HTML -> extract (trafilatura) alone vs extract + our text stages, on the trafilatura test pages.

    python benchmarks/bench_extract.py [--workers 2] [--limit N] [--favor balanced|precision|recall]

The 486 pages of the dev gold (``text/gold_snippets.dev.jsonl``) are run through the real pipeline
(``pipeline.runner.run``: readers, charset decoding, workers, the boilerplate first pass) with three
stage lists: extract alone; extract + encoding + boilerplate + normalize; the default config (which
adds language and dedup). Scoring is the boilerplate benchmark's snippet metric: a ``with`` snippet
found in the output is a true positive (missing: false negative); a ``without`` snippet found is a
false positive (absent: true negative). Only snippets present in the page text of ``docs.jsonl``
count; whitespace is folded on both sides. A page rejected by a stage counts as an empty output.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.corpora import TRAFILATURA_PAGES as PAGES  # noqa: E402
from benchmarks.snippet_metric import Score, fold, score_page  # noqa: E402
from pipeline.config import default_config, load_config_data  # noqa: E402
from pipeline.runner import run  # noqa: E402


def variants(favor: str) -> dict[str, list[dict]]:
    extract = {"stage": "extract", "favor": favor}
    full = [s.dump() for s in default_config().stages]
    full[0] = {**full[0], **extract}
    return {
        "extract": [extract],
        "extract+encoding+boilerplate+normalize": [
            extract,
            {"stage": "encoding"},
            {"stage": "boilerplate"},
            {"stage": "normalize"},
        ],
        "extract+all stages (default config)": full,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N gold pages only")
    ap.add_argument("--favor", default="balanced", choices=["balanced", "precision", "recall"])
    ap.add_argument(
        "--show-lost", action="store_true", help="list the content snippets each pipeline loses that extract kept"
    )
    args = ap.parse_args()

    gold = [json.loads(line) for line in (PAGES / "text" / "gold_snippets.dev.jsonl").open(encoding="utf-8")]
    gold = gold[: args.limit] if args.limit else gold
    page_text = {}
    for line in (PAGES / "text" / "docs.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        page_text[rec["id"]] = (fold(rec["text"]), rec["html_file"])

    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp) / "pages"
        pages.mkdir()
        for g in gold:  # symlinks: the reader sees the real .html.gz files
            (pages / f"{g['id']}.html.gz").symlink_to(PAGES / page_text[g["id"]][1])
        rows = []
        outputs: dict[str, dict[str, str]] = {}
        removals: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for name, stages in variants(args.favor).items():
            out = Path(tmp) / f"out-{len(outputs)}"
            started = time.perf_counter()
            result = run(load_config_data({"stages": stages}), [str(pages)], out, workers=args.workers)
            seconds = time.perf_counter() - started
            texts: dict[str, str] = {}
            for path in out.glob("*.html.gz.jsonl"):
                for line in path.open(encoding="utf-8"):
                    texts[path.name.split(".")[0]] = fold(json.loads(line)["text"])
            outputs[name] = texts
            removals[name] = removed_by_page(out)
            score = Score()
            for g in gold:
                score.add(score_page(g, page_text[g["id"]][0], texts.get(g["id"], ""))[0])
            rows.append((name, score, result.documents_out, len(gold), seconds))

    print(f"pages: {len(gold)}; workers: {args.workers}; favor: {args.favor}")
    print("| pipeline | pages kept | TP | FN | FP | TN | precision | recall | F1 | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s, kept, total, seconds in rows:
        print(
            f"| {name} | {kept}/{total} | {s.tp} | {s.fn} | {s.fp} | {s.tn} | {s.precision:.3f} | {s.recall:.3f} "
            f"| {s.f1:.3f} | {seconds:.1f} |"
        )
    if args.show_lost:
        first = next(iter(outputs))
        for name in list(outputs)[1:]:
            print(f"\ncontent snippets lost by {name} (kept by {first}): page, stage/rule, snippet")
            for g in gold:
                kept_before = score_page(g, page_text[g["id"]][0], outputs[first].get(g["id"], ""))[1]
                for snippet in score_page(g, page_text[g["id"]][0], outputs[name].get(g["id"], ""))[1]:
                    if snippet in kept_before:
                        continue
                    rules = {r for text, r in removals[name].get(g["id"], []) if snippet[:40] in text} or {"?"}
                    print(f"- {g['id']} {'/'.join(sorted(rules))}: {snippet[:100]}")
    base = rows[0][1]
    for name, s, *_ in rows[1:]:
        print(
            f"{name} vs extract alone: boilerplate snippets removed {base.fp - s.fp} of {base.fp} left by trafilatura; "
            f"content snippets lost {base.tp - s.tp} of {base.tp}"
        )


def removed_by_page(out: Path) -> dict[str, list[tuple[str, str]]]:
    """Page id -> (folded removed text, "stage/rule") from the run's removed.jsonl (and rejected pages)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for kind in ("removed", "rejected"):
        path = out / f"{kind}.jsonl"
        if not path.exists():
            continue
        for line in path.open(encoding="utf-8"):
            rec = json.loads(line)
            page = str(rec.get("id", "")).split(".")[0].split(":")[0]
            text = fold(rec.get("text") or rec.get("original") or "")
            found.setdefault(page, []).append((text, f"{rec.get('stage')}/{rec.get('rule') or rec.get('reason', '')}"))
    return found


if __name__ == "__main__":
    main()
