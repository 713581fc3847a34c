"""removed.jsonl's offsets against a JSONL input: each record's text at its ``start:end``, and the documents
where placing the spans by their text alone (as explain did before offsets) marks another copy.

    python benchmarks/check_offsets.py INPUT.jsonl -o OUTDIR      # exit 0: every record explained

A record whose text differs from the input at its offsets is explained when an earlier stage's record lies
inside it, or when the encoding stage repaired the document (the offsets cover the input as it was).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

from pipeline.document import Document
from pipeline.report import place_removals
from pipeline.stages.encoding import EncodingStage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args(argv)
    texts: dict[int, tuple[str, str]] = {}
    for i, line in enumerate(args.input.read_bytes().splitlines(), 1):
        record = orjson.loads(line)
        texts[i] = (str(record.get("id")), record["text"])
    spans: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in (args.output / "removed.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        spans[record["line"]].append(record)
    rejected = {orjson.loads(x)["line"] for x in (args.output / "rejected.jsonl").read_bytes().splitlines()}
    repair = EncodingStage()
    kinds: Counter[str] = Counter()
    by_text = by_offsets = documents = 0
    for line, records in spans.items():
        doc_id, text = texts[line]
        work = Document(doc_id, text, "x")
        repair.process(work)
        exact = {}
        for k, r in enumerate(records):
            start, end = r.get("start"), r.get("end")
            if not isinstance(start, int) or not isinstance(end, int):
                kinds["no offsets"] += 1
            elif text[start:end] == r["text"]:
                kinds["text at its offsets"] += 1
                exact[id(r)] = (start, end)
            elif any(start <= q["start"] and q["end"] <= end for q in records[:k] if q["stage"] != r["stage"]):
                kinds["an earlier stage's span inside"] += 1
            elif work.text != text:
                kinds["encoding repaired the document"] += 1
            else:
                kinds["UNEXPLAINED"] += 1
                print(f"line {line} [{r['stage']}/{r['rule']}] {r['text'][:80]!r}: {text[start:end][:80]!r}")
        if line in rejected:
            continue
        documents += 1
        plain = [{k: v for k, v in r.items() if k not in ("start", "end")} for r in records]
        original = {id(p): id(r) for p, r in zip(plain, records, strict=True)}
        placed, _ = place_removals(text, plain, doc_id)
        by_text += any(exact.get(original[id(r)], (s, e)) != (s, e) for s, e, r in placed)
        placed, _ = place_removals(text, records, doc_id)
        by_offsets += any(exact.get(id(r), (s, e)) != (s, e) for s, e, r in placed)
    print(f"records: {dict(kinds)}")
    print(
        f"{documents} kept documents with removals; another copy than the offsets' marked: by text search "
        f"{by_text}, by explain/report.html now {by_offsets}"
    )
    return 1 if kinds["UNEXPLAINED"] or by_offsets else 0


if __name__ == "__main__":
    sys.exit(main())
