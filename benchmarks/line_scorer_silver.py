"""Silver labels for the boilerplate line scorer: trafilatura (HTML-aware) run on the raw HTML of the
trafilatura test pages that may be used for training.

    python benchmarks/line_scorer_silver.py OUT.jsonl [--no-favor-precision] [--extractors] [--workers N]

Allowed pages: those with dev gold (``gold_snippets.dev.jsonl``) and the pages without any gold
(``has_gold`` false). Pages with gold outside the dev file belong to the held-back acceptance set and
are never read. One record per page: ``{"id", "extracted"}`` (trafilatura's main text, comments excluded).

trafilatura runs in its precision mode (``favor_precision``): it keeps less of the teasers, captions and
boxes around an article, which the gold counts as boilerplate; the line scorer trained on those labels
scores better in cross-validation (session 4). ``--no-favor-precision`` gives the earlier labels.

``--extractors`` adds ``"votes"``: the main text of each of several HTML extractors (``EXTRACTORS``:
trafilatura in both modes, jusText, trafilatura's readability port, boilerpy3, goose3), for labels by
vote (``train_line_scorer.py --silver-vote``). boilerpy3 and goose3 are benchmark-only tools (``pip
install boilerpy3 goose3``, the ``train`` extra); an extractor that fails on a page gives "".
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


def page_html(doc: dict) -> str:
    raw = gzip.decompress((PAGES / doc["html_file"]).read_bytes())
    return raw.decode(doc.get("decoded_as") or "utf-8", errors="replace")


# jusText needs the page language's stop words; pages of other languages use all stop lists at once.
JUSTEXT_LANGUAGES = {
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "pl": "Polish",
    "pt": "Portuguese",
    "it": "Italian",
    "fi": "Finnish",
    "ru": "Russian",
    "hu": "Hungarian",
    "no": "Norwegian_Bokmal",
    "ar": "Arabic",
    "bn": "Bengali",
    "an": "Aragonese",
    "nl": "Dutch",
}


def justext_text(doc: dict, html: str) -> str:
    import justext

    name = JUSTEXT_LANGUAGES.get(doc.get("lang_guess") or "")
    if name:
        stop = justext.get_stoplist(name)
    else:
        stop = frozenset().union(*(justext.get_stoplist(n) for n in justext.get_stoplists()))
    paragraphs = justext.justext(html.encode("utf-8"), stop, encoding="utf-8")
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def readability_text(doc: dict, html: str) -> str:
    from inscriptis import get_text
    from trafilatura.readability_lxml import Document
    from trafilatura.utils import load_html

    tree = load_html(html)
    return get_text(Document(tree).summary()) if tree is not None else ""


def boilerpy3_text(doc: dict, html: str) -> str:
    from boilerpy3 import extractors

    return extractors.ArticleExtractor(raise_on_failure=False).get_content(html)


def goose3_text(doc: dict, html: str) -> str:
    from goose3 import Goose

    with Goose() as g:
        return g.extract(raw_html=html).cleaned_text


def trafilatura_text(doc: dict, html: str, **options: bool) -> str:
    return trafilatura.extract(html, include_comments=False, include_tables=True, url=doc.get("url"), **options) or ""


EXTRACTORS = {
    "trafilatura_precision": lambda doc, html: trafilatura_text(doc, html, favor_precision=True),
    "trafilatura": trafilatura_text,
    "justext": justext_text,
    "readability": readability_text,
    "boilerpy3": boilerpy3_text,
    "goose3": goose3_text,
}


def all_votes(doc: dict) -> dict[str, str]:
    """Main text of every extractor on the page ("" where one fails: its vote is then "not content")."""
    html = page_html(doc)
    votes = {}
    for name, fn in EXTRACTORS.items():
        try:
            votes[name] = fn(doc, html) or ""
        except Exception as e:  # noqa: BLE001 - a third-party extractor failing on one page is a "no"
            print(f"{doc['id']}: {name} failed: {type(e).__name__}", file=sys.stderr)
            votes[name] = ""
    return votes


def record(doc: dict, options: dict, votes: bool) -> dict:
    rec = {"id": doc["id"], "extracted": extract(doc, **options)}
    if votes:
        rec["votes"] = all_votes(doc)
    return rec


def main() -> None:
    out = Path(sys.argv[1])
    args = sys.argv[2:]
    options = {} if "--no-favor-precision" in args else {"favor_precision": True}
    votes = "--extractors" in args
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    pages = training_pages()
    with open(out, "w", encoding="utf-8") as f:
        if workers > 1:
            from concurrent.futures import ProcessPoolExecutor
            from functools import partial

            with ProcessPoolExecutor(workers) as pool:  # map keeps the page order: same file
                results = pool.map(partial(record, options=options, votes=votes), pages, chunksize=4)
                for n, rec in enumerate(results, 1):
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    if n % 100 == 0:
                        print(f"{n}/{len(pages)}", file=sys.stderr)
            return
        for n, doc in enumerate(pages, 1):
            f.write(json.dumps(record(doc, options, votes), ensure_ascii=False) + "\n")
            if n % 100 == 0:
                print(f"{n}/{len(pages)}", file=sys.stderr)


if __name__ == "__main__":
    main()
