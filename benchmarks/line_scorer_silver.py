"""Silver labels for the boilerplate line scorer: trafilatura (HTML-aware) run on the raw HTML of the
trafilatura test pages that may be used for training.

    python benchmarks/line_scorer_silver.py OUT.jsonl [--no-favor-precision]

Allowed pages: those with dev gold (``gold_snippets.dev.jsonl``) and the pages without any gold
(``has_gold`` false). Pages with gold outside the dev file belong to the held-back acceptance set and
are never read. One record per page: ``{"id", "extracted"}`` (trafilatura's main text, comments excluded).

trafilatura runs in its precision mode (``favor_precision``): it keeps less of the teasers, captions and
boxes around an article, which the gold counts as boilerplate; the line scorer trained on those labels
scores better in cross-validation (session 4). ``--no-favor-precision`` gives the earlier labels.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import trafilatura

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO.parent / "shared" / "corpora" / "trafilatura-testpages"


def training_pages() -> list[dict]:
    """docs.jsonl records of the pages a line scorer may learn from (dev gold or no gold at all)."""
    with open(PAGES / "text" / "gold_snippets.dev.jsonl", encoding="utf-8") as f:
        dev = {json.loads(line)["id"] for line in f}
    with open(PAGES / "text" / "docs.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    return [d for d in docs if d["id"] in dev or not d["has_gold"]]


def extract(doc: dict, **options: bool) -> str:
    raw = gzip.decompress((PAGES / doc["html_file"]).read_bytes())
    html = raw.decode(doc.get("decoded_as") or "utf-8", errors="replace")
    return trafilatura.extract(html, include_comments=False, include_tables=True, url=doc.get("url"), **options) or ""


def main() -> None:
    out = Path(sys.argv[1])
    options = {} if "--no-favor-precision" in sys.argv[2:] else {"favor_precision": True}
    pages = training_pages()
    with open(out, "w", encoding="utf-8") as f:
        for n, doc in enumerate(pages, 1):
            f.write(json.dumps({"id": doc["id"], "extracted": extract(doc, **options)}, ensure_ascii=False) + "\n")
            if n % 100 == 0:
                print(f"{n}/{len(pages)}", file=sys.stderr)


if __name__ == "__main__":
    main()
