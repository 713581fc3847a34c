"""Which gold snippets does the dedup stage remove? The dev-gold trafilatura pages through the real
runner with the default config, with and without dedup, and the snippets that differ.

    python benchmarks/bench_dedup_content.py [--raw] [--workers 2]

Default: the HTML pages (``extract`` is the default config's first stage, as in ``bench_extract.py``). ``--raw``: the
raw page text of ``text/docs.jsonl`` (all 1,033 pages, so that duplicates of dev pages are seen),
scored on the dev pages. Prints the snippet scores of both runs, then every ``with`` snippet that
only the run with dedup loses (content dedup removed), every ``without`` snippet that only it
removes (chrome), and the dev pages dedup rejects, with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.corpora import TRAFILATURA_PAGES as PAGES  # noqa: E402
from benchmarks.snippet_metric import Score, fold, score_page  # noqa: E402
from pipeline.config import default_config, load_config_data  # noqa: E402
from pipeline.runner import run  # noqa: E402


def outputs(out: Path) -> dict[str, str]:
    texts = {}
    for path in out.glob("*.jsonl"):
        if path.name in ("removed.jsonl", "rejected.jsonl"):
            continue
        for line in path.open(encoding="utf-8"):
            record = json.loads(line)
            texts[record["id"].split(".")[0]] = fold(record["text"])
    return texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", action="store_true", help="raw page text instead of HTML + extract")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    gold = [json.loads(line) for line in (PAGES / "text" / "gold_snippets.dev.jsonl").open(encoding="utf-8")]
    page_text, html = {}, {}
    for line in (PAGES / "text" / "docs.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        page_text[record["id"]], html[record["id"]] = fold(record["text"]), record["html_file"]
    stages = [s.dump() for s in default_config().stages]  # extract first (text input passes through)
    variants = {"without dedup": [s for s in stages if s["stage"] != "dedup"], "default": stages}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        if args.raw:
            (src / "docs.jsonl").symlink_to(PAGES / "text" / "docs.jsonl")
        else:
            for g in gold:
                (src / f"{g['id']}.html.gz").symlink_to(PAGES / html[g["id"]])
        results = {}
        for name, config in variants.items():
            out = Path(tmp) / name.replace(" ", "-")
            run(load_config_data({"stages": config}), [str(src)], out, workers=args.workers)
            rejected = [json.loads(line) for line in (out / "rejected.jsonl").open(encoding="utf-8")]
            results[name] = (outputs(out), [r for r in rejected if r.get("stage") == "dedup"])
    scored = {}
    for name, (texts, _) in results.items():
        total, per_page = Score(), {}
        for g in gold:
            score, lost, left = score_page(g, page_text[g["id"]], texts.get(g["id"], ""))
            total.add(score)
            per_page[g["id"]] = (set(lost), set(left))
        scored[name] = per_page
        print(f"{name}: TP {total.tp} FN {total.fn} FP {total.fp} TN {total.tn} F1 {total.f1:.4f}")
    before, after = scored["without dedup"], scored["default"]
    for page in before:
        for snippet in sorted(after[page][0] - before[page][0]):
            print(f"content lost by dedup  {page}  {snippet[:100]!r}")
        for snippet in sorted(before[page][1] - after[page][1]):
            print(f"chrome removed by dedup  {page}  {snippet[:100]!r}")
    dev = {g["id"] for g in gold}
    for r in results["default"][1]:
        if r["id"].split(".")[0] in dev:
            print(f"dev page rejected by dedup  {r['id']}  {r.get('reason')}")


if __name__ == "__main__":
    main()
