"""removed.jsonl's ``start`` / ``end``: offsets into the input text, through every stage's edits."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import orjson
from click.testing import CliRunner
from conftest import CORPORA, SEEDS

from pipeline import offsets
from pipeline.cli import cli
from pipeline.document import Document, Removal
from pipeline.stages.encoding import EncodingStage


def _check_map(source: str, current: str, edits: offsets.Edits | None) -> None:
    """The text between the map's edits is the input's, in both texts."""
    if edits is None:
        assert source == current
        return
    a, b, n = edits
    was = now = 0
    for start, end, size, at in zip(a, b, n, offsets._where(edits)[0], strict=True):
        assert start >= was and end >= start
        assert source[was:start] == current[now:at]
        was, now = end, at + size
    assert source[was:] == current[now:]


def test_offsets_follow_random_edits_of_three_kinds() -> None:
    """Stages cutting at random (cuts noted, found from the spans, or a change without removals aligned):
    every span's offsets index its text in the input, unless an earlier edit lies inside it."""
    for seed in range(400):
        rnd = random.Random(seed)
        source = "".join(rnd.choice("ab \né") for _ in range(rnd.randint(0, 60)))
        doc = Document("x", source, "s")
        for _ in range(rnd.randint(1, 4)):
            before = doc.text
            points = sorted(rnd.sample(range(len(before) + 1), k=min(len(before) + 1, 2 * rnd.randint(0, 3))))
            cuts = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
            kind = rnd.choice(["noted", "spans", "diff"])
            sizes = [0 if kind == "spans" else rnd.choice([0, 1, 2]) for _ in cuts]
            pieces, pos, spans = [], 0, []
            for (s, e), m in zip(cuts, sizes, strict=True):
                pieces += [before[pos:s], "ü" * m]
                pos = e
                if kind != "diff" and e > s:
                    spans.append(Removal("st", "r", before[s:e], 0, None, s, e))
            doc.text = "".join([*pieces, before[pos:]])
            if kind == "noted":
                offsets.note_cuts(doc, [s for s, _ in cuts], [e for _, e in cuts], sizes)
            earlier = doc.scratch.get(offsets.MAP)
            offsets.after_stage(doc, before, spans)
            assert offsets.LOST not in doc.scratch
            _check_map(source, doc.text, doc.scratch.get(offsets.MAP))
            for r in spans:
                assert r.start is not None and r.end is not None
                if source[r.start : r.end] != r.text:  # an earlier edit inside: it holds more
                    assert earlier is not None
                    assert any(r.start <= x and y <= r.end for x, y in zip(earlier[0], earlier[1], strict=True))


def _words(text: str) -> list[str]:
    """The words as normalize leaves them (Unicode form NFC, zero-width characters dropped)."""
    return unicodedata.normalize("NFC", re.sub("[\u200b\u2060\ufeff\u00ad]", "", text)).split()


def _lines(path: Path, n: int) -> list[bytes]:
    return path.read_bytes().splitlines()[:n]


def test_every_span_is_at_its_offsets_and_the_input_without_them_is_the_output(tmp_path: Path) -> None:
    """Real text (the seeds, CC pages, trafilatura's test pages), two workers: each record's text is the
    input's at its offsets (but where an earlier stage removed something inside it, or encoding repaired
    the page), and the input with every span cut out is the output, word for word (a space a language
    fragment took beside it is in its span: CJK text and list items are not glued)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "cc.jsonl").write_bytes(b"\n".join(_lines(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", 260)) + b"\n")
    traf = CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl"
    (src / "traf.jsonl").write_bytes(b"\n".join(_lines(traf, 120)) + b"\n")
    for path in sorted(SEEDS.glob("*.txt")):
        (src / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "-q", "--workers", "2"])
    assert result.exit_code in (0, 3), result.output
    inputs: dict[tuple[str, int], str] = {}
    lines_of: dict[tuple[str, str], int] = {}  # (file, id) -> line (the ids of these files are unique)
    for name in ("cc.jsonl", "traf.jsonl"):
        for i, line in enumerate((src / name).read_bytes().splitlines(), 1):
            record = orjson.loads(line)
            inputs[(name, i)] = record["text"]
            lines_of[(name, record["id"])] = i
    for path in SEEDS.glob("*.txt"):
        inputs[(path.name, 0)] = path.read_text(encoding="utf-8")
    outputs = {(path.name, 0): (out / path.name).read_text(encoding="utf-8") for path in SEEDS.glob("*.txt")}
    for name in ("cc.jsonl", "traf.jsonl"):
        for line in (out / name).read_bytes().splitlines():
            record = orjson.loads(line)
            outputs[(name, lines_of[(name, record["id"])])] = record["text"]
    spans: dict[tuple[str, int], list[dict]] = {}
    for line in (out / "removed.jsonl").read_bytes().splitlines():
        r = orjson.loads(line)
        spans.setdefault((r["source"], r.get("line", 0)), []).append(r)
    repair = EncodingStage()
    checked = language = 0
    for key, records in spans.items():
        text = inputs[key]
        work = Document("x", text, "s")
        repair.process(work)
        for k, r in enumerate(records):
            assert isinstance(r["start"], int) and isinstance(r["end"], int)
            earlier = [q for q in records[:k] if q["stage"] != r["stage"]]
            inside = any(r["start"] <= q["start"] and q["end"] <= r["end"] for q in earlier)
            assert text[r["start"] : r["end"]] == r["text"] or inside or work.text != text, (key, r)
            language += r["stage"] == "language"
        if key not in outputs or work.text != text:
            continue  # rejected, or repaired: the output has the repairs
        cut, pos = [], 0
        for r in sorted(records, key=lambda r: r["start"]):
            cut.append(text[pos : max(pos, r["start"])] + r.get("replaced_by", ""))
            pos = max(pos, r["end"])
        cut.append(text[pos:])
        assert _words("".join(cut)) == _words(outputs[key]), key
        checked += 1
    assert checked > 250 and language > 20, (checked, language)


def test_explain_marks_the_copy_removed_and_reads_audits_without_offsets(tmp_path: Path) -> None:
    """A title repeated at the foot, the foot's copy removed: explain marks the foot (by the offsets; the
    text alone names the first copy), and on a removed.jsonl of an earlier version, without offsets, still
    marks a copy (by its text, as it did)."""
    title, body = "A Walk in the Hills", "We set off at dawn and reached the ridge by noon.\nThe view was wide."
    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps({"id": "d", "text": f"{title}\n{body}\n{title}"}) + b"\n")
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: example_stage:RepeatedTitleAtFoot\n")
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(src), "-c", str(config), "-o", str(out), "-q"]).exit_code == 0
    (record,) = map(orjson.loads, (out / "removed.jsonl").read_bytes().splitlines())
    assert (record["start"], record["end"]) == (len(title) + len(body) + 2, 2 * len(title) + len(body) + 2)
    result = runner.invoke(cli, ["explain", "d", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{title}\n{body}\n[-repeated_title/title-at-foot: {title}-]" in result.output
    record.pop("start"), record.pop("end")
    (out / "removed.jsonl").write_bytes(orjson.dumps(record) + b"\n")
    result = runner.invoke(cli, ["explain", "d", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"[-repeated_title/title-at-foot: {title}-]\n{body}\n{title}" in result.output


def test_a_stage_without_offsets_has_its_spans_found_by_text() -> None:
    """A user stage that records no offsets: the runner finds each span after the one before it."""
    doc = Document("x", "head\nbody\nfoot", "s")
    before = doc.text
    doc.remove("mine", "r", "head", 1)
    doc.remove("mine", "r", "foot", 1)
    doc.text = "body"
    offsets.after_stage(doc, before, doc.removed)
    assert [(r.start, r.end) for r in doc.removed] == [(0, 4), (10, 14)]
    assert doc.scratch[offsets.MAP] == ([0, 9], [5, 14], [0, 0])


def test_removed_lines_are_cut_with_the_newline_after_them() -> None:
    """Boilerplate's removed lines: each record at its line, and the noted cuts make the kept lines joined by
    newlines (with a newline at the end where the last line went), "\\r" of a CRLF line included."""
    from itertools import compress, repeat

    for seed in range(500):
        rnd = random.Random(seed)
        lines = ["".join(rnd.choice("ab\r") for _ in range(rnd.randint(0, 4))) for _ in range(rnd.randint(1, 8))]
        verdict = [rnd.choice([None, "nav"]) for _ in lines]
        if not any(verdict):
            continue
        text = "\n".join(lines)
        doc = Document("x", text, "s")
        texts = list(map(str.rstrip, compress(lines, verdict), repeat("\r")))
        starts, ends = offsets.removed_lines_at(doc, lines, verdict, texts)
        assert [text[s:e] for s, e in zip(starts, ends, strict=True)] == texts
        kept = [line for line, v in zip(lines, verdict, strict=True) if v is None]
        want = "\n".join(kept) + ("\n" if kept and verdict[-1] else "")
        a, b, _ = doc.scratch[offsets.CUTS]
        pieces, pos = [], 0
        for x, y in zip(a, b, strict=True):
            pieces.append(text[pos:x])
            pos = y
        assert "".join([*pieces, text[pos:]]) == want
