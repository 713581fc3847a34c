"""Check that a run lost nothing: each input document is accounted for by the output and the audit.

For every document of the inputs (read as the run read them) this checks that

* it is either in the output or in ``rejected.jsonl`` (exactly one of the two), and a rejection names its
  stage and reason and carries the original text;
* every removal in ``removed.jsonl`` names its stage and rule, and its text is the input's at its offsets
  (``start``, ``end``; records of versions before session 16 have none: they are placed by their text,
  stage after stage, as ``explain`` places them);
* the text before cleaning, with the audited spans cut out, equals the output text up to what the
  encoding and normalize stages change (ftfy repairs, Unicode form, whitespace, zero-width characters).
  What is left over is shown: words gone without an audit record (lost) and words the output has that
  the input had not.

    python benchmarks/check_nothing_lost.py INPUT... -o OUTDIR [-c CONFIG] [--show 5]

Exit 0 when every document is accounted for, 1 otherwise. HTML and WARC inputs are checked from their
extracted text (the markup extraction takes away is not audited, by design).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import RunConfig, default_config, load_config
from pipeline.document import Document
from pipeline.io import InputFile, discover, input_format, read_documents, split_txt_documents
from pipeline.offsets import offsets_of
from pipeline.report import place_removals
from pipeline.runner import build_stages

Key = tuple[str, int]  # (source, line); line 0 for a .txt document
_ZERO_WIDTH = re.compile(r"[\u200b\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")


@dataclass
class Problems:
    """What the check found, by kind, with a few examples each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lost_words: int = 0
    added_words: int = 0

    def add(self, kind: str, example: str, show: int) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < show:
            self.examples[kind].append(example)


def comparable(text: str, form: str) -> str:
    """The text as normalize would leave it, whitespace collapsed: what 'equal' means here."""
    if form != "none":
        text = unicodedata.normalize(form, text)
    return _SPACES.sub(" ", _ZERO_WIDTH.sub("", text)).strip()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _key(record: dict[str, Any]) -> Key:
    line = record.get("line")
    return str(record.get("source")), line if isinstance(line, int) and not isinstance(line, bool) else 0


def _output_file(outdir: Path, f: InputFile, config: RunConfig) -> Path | None:
    requested = config.output.format
    native = {"txt": "txt", "jsonl": "jsonl", "parquet": "parquet"}.get(f.format)
    names = [f.rel] if requested in (None, native) and native else []
    names.append(f"{f.rel}.{requested or 'jsonl'}")
    return next((outdir / n for n in names if (outdir / n).is_file()), None)


def _output_texts(path: Path, config: RunConfig) -> list[str]:
    fmt = input_format(path)
    if fmt is None:
        return []
    return [d.text for d in read_documents(InputFile(path, path.name, *fmt), config.input)]


def _before_stages(doc: Document, config: RunConfig) -> tuple[str, str]:
    """(text as read, text as the stage after encoding saw it): extract and encoding applied, no audit."""
    pre = [s for s in config.enabled_stages() if s.stage in ("extract", "encoding")]
    work = Document(doc.id, doc.text, doc.source, record=doc.record, meta=dict(doc.meta))
    for stage in build_stages(pre):
        stage.process(work)
        if work.rejected:
            break
    read = work.text if any(s.stage == "extract" for s in pre) and doc.meta.get("content_type") else doc.text
    return read, work.text


def _word_diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """Runs of words in ``before`` missing from ``after``, and runs added, by a word-level diff."""
    a, b = before.split(" "), after.split(" ")
    lost, added = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            lost.append(" ".join(a[i1:i2]))
        if op in ("insert", "replace"):
            added.append(" ".join(b[j1:j2]))
    return lost, added


def check(inputs: list[str], outdir: Path, config: RunConfig, show: int = 5) -> tuple[Problems, Counter[str]]:
    problems, seen = Problems(), Counter[str]()
    removed: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for r in _jsonl(outdir / "removed.jsonl"):
        removed[_key(r)].append(r)
        if not r.get("stage") or not r.get("rule"):
            problems.add("removal without stage or rule", str(r)[:200], show)
    rejected: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for r in _jsonl(outdir / "rejected.jsonl"):
        rejected[_key(r)].append(r)
        if not r.get("stage") or not r.get("reason"):
            problems.add("rejection without stage or reason", str(r)[:200], show)
    form = next(
        (str(s.options.unicode_form) for s in config.enabled_stages() if s.stage == "normalize"),  # type: ignore[attr-defined]
        "none",
    )
    files, _ = discover(inputs, exclude=outdir)
    for f in files:
        docs = list(read_documents(f, config.input))
        kept = [d for d in docs if not d.rejected and not rejected.get((d.source, d.line_no))]
        out_path = _output_file(outdir, f, config)
        out_texts = _output_texts(out_path, config) if out_path else []
        if out_path is not None and out_path.suffix == ".txt" and f.format != "txt":  # documents by form feeds
            out_texts = split_txt_documents(out_path.read_text(encoding="utf-8")) if out_path.exists() else []
        if len(out_texts) != len(kept):
            problems.add(
                "output count differs from documents not rejected",
                f"{f.rel}: {len(kept)} not rejected, {len(out_texts)} in {out_path}",
                show,
            )
        expected: list[str] = []
        places: list[str] = []
        for doc in docs:
            seen["documents"] += 1
            key = (doc.source, doc.line_no)
            if doc.rejected or rejected.get(key):
                seen["rejected"] += 1
                _check_rejection(doc, rejected.get(key, []), removed.get(key, []), problems, show)
                continue
            seen["kept"] += 1
            expected.append(_rebuilt_output(doc, config, removed.get(key, []), problems, show))
            places.append(f"{doc.source} line {doc.line_no}" if doc.line_no else doc.source)
        for place, want, got in zip(places, expected, out_texts, strict=False):
            _compare(place, comparable(want, form), comparable(got, form), problems, show)
    return problems, seen


def _check_rejection(
    doc: Document, records: list[dict[str, Any]], spans: list[dict[str, Any]], problems: Problems, show: int
) -> None:
    where = f"{doc.source} line {doc.line_no}" if doc.line_no else doc.source
    if len(records) != 1:
        problems.add("rejected document with not exactly one rejected.jsonl record", f"{where}: {len(records)}", show)
        return
    if (records[0].get("text") or "") != doc.original and records[0].get("stage") != "input":
        problems.add("rejected record text differs from the input", where, show)


def _rebuilt_output(
    doc: Document, config: RunConfig, spans: list[dict[str, Any]], problems: Problems, show: int
) -> str:
    """The text as read with every audited span cut out at its offsets, encoding repaired; for records
    without offsets (an earlier version), each stage's spans placed by their text, in stage order."""
    read, text = _before_stages(doc, config)
    where = f"{doc.source} line {doc.line_no}" if doc.line_no else doc.source
    if spans and all(offsets_of(r) is not None for r in spans):
        return _cut_at_offsets(doc, config, read, text, spans, where, problems, show)
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for r in spans:
        by_stage.setdefault(str(r.get("stage")), []).append(r)
    for stage, records in by_stage.items():
        taken, unplaced = place_removals(text, records, doc.id)
        taken, unplaced = _place_loosely(text, taken, unplaced)
        for r in unplaced:
            problems.add(
                "removed span not found in the text its stage saw",
                f"{where} [{stage}/{r.get('rule')}] {r.get('text')!r}"[:300],
                show,
            )
        out, pos = [], 0
        for start, end, _ in taken:
            start, end = _with_line_break(text, start, end, pos)
            out.append(text[pos:start])
            pos = end
        out.append(text[pos:])
        text = "".join(out)
    return text


def _cut_at_offsets(
    doc: Document,
    config: RunConfig,
    read: str,
    repaired: str,
    spans: list[dict[str, Any]],
    where: str,
    problems: Problems,
    show: int,
) -> str:
    """``read`` with every span (its ``start:end``) cut out, a space put where a record says ``replaced_by``,
    then encoding applied. Each span's text is checked against the input at its offsets: it differs only
    where an earlier stage removed something inside it (a record of its own) or encoding repaired it."""
    placed = sorted((*offsets_of(r), k) for k, r in enumerate(spans))  # type: ignore[misc]
    for start, end, k in placed:
        r = spans[k]
        if end > len(read) or (read[start:end] != r.get("text") and read == repaired and not _holds_earlier(spans, k)):
            problems.add(
                "span text differs from the input at its offsets",
                f"{where} [{r.get('stage')}/{r.get('rule')}] {start}:{end} {r.get('text')!r} vs {read[start:end]!r}"[
                    :300
                ],
                show,
            )
    out, pos = [], 0
    for start, end, k in placed:
        if start >= pos:
            out.append(read[pos:start])
        out.append(str(spans[k].get("replaced_by") or ""))
        pos = max(pos, end)
    out.append(read[pos:])
    text = "".join(out)
    if read != repaired:  # the encoding stage repaired the document: repair the rest as it did
        work = Document(doc.id, text, doc.source, record=doc.record, meta=dict(doc.meta))
        for stage in build_stages([s for s in config.enabled_stages() if s.stage == "encoding"]):
            stage.process(work)
        text = work.text
    return text


def _holds_earlier(spans: list[dict[str, Any]], k: int) -> bool:
    """Whether an earlier stage's span lies inside span ``k`` (a paragraph dedup removed after the language
    stage took a fragment out of it: its text is the paragraph as dedup saw it)."""
    s, e = offsets_of(spans[k]) or (0, 0)
    stage = spans[k].get("stage")
    return any(
        (at := offsets_of(r)) is not None and s <= at[0] and at[1] <= e and r.get("stage") != stage for r in spans[:k]
    )


def _place_loosely(
    text: str, taken: list[tuple[int, int, dict[str, Any]]], unplaced: list[dict[str, Any]]
) -> tuple[list[tuple[int, int, dict[str, Any]]], list[dict[str, Any]]]:
    """Spans not found verbatim placed with any run of spaces where the span has one: an earlier stage
    that cut a fragment out of a line took a space beside it, which its audit record does not show."""
    still = []
    for r in unplaced:
        words = str(r.get("text") or "").split()
        pattern = re.compile(r"\s*".join(map(re.escape, words))) if words else None
        spot = None
        for m in pattern.finditer(text) if pattern else ():
            if not any(s < m.end() and m.start() < e for s, e, _ in taken):
                spot = (m.start(), m.end(), r)
                if r.get("duplicate_of") is None:
                    break  # a repeat of the document's own text: the last free copy (the first is kept)
        if spot is None:
            still.append(r)
        else:
            taken.append(spot)
    return sorted(taken, key=lambda t: t[0]), still


def _with_line_break(text: str, start: int, end: int, pos: int) -> tuple[int, int]:
    """A span of whole lines goes with its line break, as stages remove lines (the audit names no offsets
    and no line count, so this is read from where the span stands)."""
    if (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end] == "\n"):
        if end < len(text):
            return start, end + 1
        if start > pos:
            return start - 1, end
    return start, end


def _compare(where: str, want: str, got: str, problems: Problems, show: int) -> None:
    """Words of the input (spans cut) missing from the output: lost, unless the output has the same words
    elsewhere (a span that occurs twice placed at the other occurrence: the audit has no offsets)."""
    if want == got:
        return
    lost, added = _word_diff(want, got)
    missing = Counter(w for run in lost for w in run.split()) - Counter(w for run in added for w in run.split())
    extra = Counter(w for run in added for w in run.split()) - Counter(w for run in lost for w in run.split())
    problems.lost_words += sum(missing.values())
    problems.added_words += sum(extra.values())
    if missing:
        problems.add("text lost without an audit record", f"{where}: {' | '.join(lost)[:300]!r}", show)
    if extra:
        problems.add("output text not in the input", f"{where}: {' | '.join(added)[:300]!r}", show)
    if not missing and not extra:
        problems.add("span placed at another occurrence (no offsets in the audit)", f"{where}: {lost[0][:120]!r}", show)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("-c", "--config")
    parser.add_argument("--show", type=int, default=5, help="examples shown per kind of problem")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else default_config()
    problems, seen = check(args.inputs, args.output, config, args.show)
    print(f"{seen['documents']} documents: {seen['kept']} kept, {seen['rejected']} rejected")
    if not problems.counts:
        print("every document accounted for")
        return 0
    print(f"words lost without audit: {problems.lost_words}, words added: {problems.added_words}")
    for kind, n in problems.counts.most_common():
        print(f"\n{kind}: {n}")
        for example in problems.examples[kind]:
            print(f"  {example}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
