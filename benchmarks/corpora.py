"""Where the benchmarks find the shared corpora (``../shared`` beside the repo, or ``CLEANCORPUS_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", REPO.parent / "shared"))
CORPORA = SHARED / "corpora"
CC_DOCS = CORPORA / "cc-2019-30-dolma" / "docs.jsonl"
TRAFILATURA_PAGES = CORPORA / "trafilatura-testpages"
TRAFILATURA_DOCS = TRAFILATURA_PAGES / "text" / "docs.jsonl"
# The two real corpora the stage benchmarks run on, by name.
TEXT_CORPORA = {"cc-2019-30-dolma": CC_DOCS, "trafilatura": TRAFILATURA_DOCS}
