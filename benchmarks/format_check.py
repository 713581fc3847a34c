"""Differential check of two trees of cleancorpus across input formats, executors and cron runs.

``diff_check.py``'s sibling: where that one aims adversarial text at the kernels through JSONL, this one
builds one seeded, deterministic input folder of every kind of input the README lists, from real text
(``shared/corpora``, ``shared/seeds``): a folder of ``.txt`` files (UTF-8, UTF-8 with a BOM, cp1252,
latin-1, UTF-16 with its BOM, broken UTF-8, binary, empty), ``.jsonl.gz``, ``.jsonl.zst``, ``.parquet``
(row groups of 16, extra columns), WARC (``.warc.gz``, WET, a truncated and a corrupt one), ``.html.gz``
pages, JSONL with malformed lines, JSONL in UTF-16 and cp1252, gzip data named ``.jsonl``, documents
copied across formats (dedup across files). Then it runs scenarios in both trees and compares every
output: ``OUT/**`` (compressed outputs also decompressed, Parquet also as rows), ``removed.jsonl``,
``rejected.jsonl``, ``report.json`` without times and paths, the state's file records; and the exit
status and any traceback in stderr.

Scenarios (``--scenarios``):

- ``full``: one run on the whole folder at each ``--workers``; base against new, and w1 against w2 in
  each tree.
- ``incremental``: three runs on one output folder: part of the input; then one new file and one
  changed file whose names sort last (audit files appended); then a changed file in the middle and a new
  file sorting first (audit files rewritten from their parts).
- ``ops``: an audit part lost from the state folder, ``--rebuild``, ``output.audit: false``, ``--limit``.
- ``ray``: ``--executor ray --workers 2`` on a small part of the input, against the same tree's local run.
- ``kill``: a run stopped by ``timeout -s INT`` / ``-s KILL`` after ``--kill-after`` seconds, then run
  again to the end: its outputs against an uninterrupted run's.

``python benchmarks/format_check.py BASE NEW [--seed N] [--work DIR] [--workers 1 2] [--scenarios ...]``;
exit status 1 if anything differs or crashes.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import hashlib
import io
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import diff_check  # noqa: E402

SHARED = diff_check.SHARED
CORPORA = SHARED / "corpora"
CC = CORPORA / "cc-2019-30-dolma" / "docs.jsonl"
TP = CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl"
HTML = CORPORA / "trafilatura-testpages" / "html" / "eval"
WARCS = [
    CORPORA / "cc-2019-30-dolma" / "warc_samples" / "sample-0000.warc.gz",
    CORPORA / "cc-wet-format-sample" / "whirlwind.warc.gz",
    CORPORA / "cc-wet-format-sample" / "whirlwind.warc.wet",
]
BROKEN_WARC = CORPORA / "cc-2019-30-dolma" / "warc_samples" / "sample-0001.warc.gz"
SEEDS = SHARED / "seeds"

# report.json keys that hold times or where the run happened, not what it did
_VOLATILE = {"seconds", "started", "cwd", "folder", "workers"}


def _records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _jsonl(recs: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode("utf-8")


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def write_inputs(folder: Path, seed: int, scale: int = 1) -> dict[str, Path]:
    """The input folder (deterministic for a seed); returns named files the scenarios change."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    r = random.Random(seed)
    g = diff_check.Gen(seed, diff_check.load_sentences())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cc, tp = _records(CC), _records(TP)
    cc_pick = r.sample(cc, 60 * scale)
    tp_pick = r.sample(tp, 30 * scale)
    # 1. compressed JSONL (gzip without a timestamp, so the input bytes are the same every time)
    (folder / "b_cc.jsonl.gz").write_bytes(gzip.compress(_jsonl(cc_pick[: 40 * scale]), mtime=0))
    (folder / "c_tp.jsonl.zst").write_bytes(_zstd(_jsonl(tp_pick[: 20 * scale])))
    # 2. a folder of .txt files in several encodings, some copies of the JSONL documents above
    txt = folder / "d_txt"
    txt.mkdir()
    for i, rec in enumerate(cc_pick[40 * scale : 52 * scale]):
        text = rec["text"]
        kind = i % 6
        if kind == 0:
            data = text.encode("utf-8")
        elif kind == 1:
            data = b"\xef\xbb\xbf" + text.encode("utf-8")
        elif kind == 2:
            data = text.encode("cp1252", "replace")
        elif kind == 3:
            data = text.encode("latin-1", "replace")
        elif kind == 4:
            data = text.encode("utf-16")  # with its BOM
        else:
            data = text.replace("\n", "\r\n").encode("utf-8")
        (txt / f"cc{i:02d}.txt").write_bytes(data)
    for lang, enc in [("de", "cp1252"), ("fr", "latin-1"), ("tr", "cp1254"), ("pl", "cp1250"), ("ru", "cp1251")]:
        (txt / f"lang-{lang}.txt").write_bytes("\n\n".join(g.para(lang, 4) for _ in range(3)).encode(enc, "replace"))
    (txt / "utf16le-nobom.txt").write_bytes(g.para("el", 5).encode("utf-16-le"))
    (txt / "utf16be.txt").write_bytes(b"\xfe\xff" + g.para("de", 5).encode("utf-16-be"))
    (txt / "broken-utf8.txt").write_bytes(g.para("es", 5).encode("utf-8") + b"\xff\xfe\xc3\x28 tail\n")
    (txt / "copy-of-cc.txt").write_bytes(cc_pick[0]["text"].encode("utf-8"))  # an exact duplicate
    (txt / "empty.txt").write_bytes(b"")
    (txt / "binary.txt").write_bytes(bytes(r.randrange(256) for _ in range(3000)))
    (txt / "png.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(r.randrange(256) for _ in range(500)))
    (txt / "nul.txt").write_bytes(b"\x00" * 200)
    sub = txt / "sub"
    sub.mkdir()
    for name in sorted(p.name for p in SEEDS.glob("*.txt")):
        (sub / name).write_bytes((SEEDS / name).read_bytes())
    (txt / ".hidden").mkdir()
    (txt / ".hidden" / "skip.txt").write_text("left out: a dot folder", encoding="utf-8")
    (txt / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # listed as skipped
    # a folder of many small files: more than one commit group (64 files) and small batches
    many = folder / "n_many"
    many.mkdir()
    for i in range(90 * scale):
        lang = r.choice(["en", "de", "fr", "es", "ru", "el", "tr", "pl"])
        text = "\n".join(g.sent(lang) for _ in range(r.randint(1, 6)))
        if i % 9 == 0:
            text = "Home | News | Contact\n" + text + "\nShare this article on Facebook"
        (many / f"p{i:04d}.txt").write_text(text, encoding="utf-8")
    # 3. Parquet, small row groups, extra columns of several types (and a null text)
    rows = cc_pick[52 * scale :] + tp_pick[20 * scale : 26 * scale]
    table = pa.table(
        {
            "id": [str(x.get("id", i)) for i, x in enumerate(rows)] + ["pq-null", "pq-dup"],
            "text": [x["text"] for x in rows] + [None, tp_pick[0]["text"]],
            "n": list(range(len(rows) + 2)),
            "score": [r.random() for _ in range(len(rows) + 2)],
            "tags": [[f"t{j}" for j in range(i % 3)] for i in range(len(rows) + 2)],
            "blob": [bytes([i % 256]) * (i % 5) for i in range(len(rows) + 2)],
        }
    )
    pq.write_table(table, folder / "e_rows.parquet", row_group_size=16)
    # 4. web archives and HTML pages (extract stage)
    web = folder / "f_web"
    web.mkdir()
    for src in WARCS:
        shutil.copyfile(src, web / src.name)
    broken = BROKEN_WARC.read_bytes()
    (web / "truncated.warc.gz").write_bytes(broken[: len(broken) * 3 // 5])
    bad = bytearray(broken)
    for k in range(8):
        bad[len(bad) // 3 + 97 * k] ^= 0x5A
    (web / "corrupt.warc.gz").write_bytes(bytes(bad))
    pages = sorted(HTML.glob("*.html.gz"))
    for p in r.sample(pages, 8 * scale):
        shutil.copyfile(p, web / p.name)
    page = gzip.decompress(r.choice(pages).read_bytes())
    (web / "plain.html").write_bytes(page)
    # 5. JSONL the reader must take apart
    odd = [json.dumps(x, ensure_ascii=False) for x in tp_pick[26 * scale :]]
    odd[1:1] = ["{broken json", "", '{"id": "notext"}', '{"id": "num", "text": 5}', "[1, 2]", '"just a string"']
    odd.append(json.dumps({"id": "lone", "text": "lone \ud800 surrogate " + g.sent("en")}))
    odd.append(json.dumps({"id": "copy", "text": cc_pick[1]["text"]}))  # a duplicate across files
    (folder / "g_odd.jsonl").write_bytes(("\n".join(odd) + "\n").encode("utf-8"))
    utf16 = [{"id": f"u{i}", "text": g.mixed()} for i in range(4)]
    (folder / "h_utf16.jsonl").write_bytes(_jsonl(utf16).decode("utf-8").encode("utf-16"))
    cp = [{"id": f"w{i}", "text": g.para("de", 3) + " – “€”"} for i in range(4)]
    (folder / "i_cp1252.jsonl").write_bytes(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in cp).encode("cp1252", "replace")
    )
    (folder / "j_gzip-named.jsonl").write_bytes(gzip.compress(_jsonl(cp), mtime=0))
    (folder / "k_binary.jsonl").write_bytes(bytes(r.randrange(256) for _ in range(2000)))
    gen = diff_check.generate(seed, 40 * scale)
    (folder / "l_kinds.jsonl").write_bytes(_jsonl(gen["a_kinds.jsonl"]))
    (folder / "m_dedup.jsonl").write_bytes(_jsonl(gen["c_dedup.jsonl"]))
    # 6. damaged and misnamed compressed inputs (session 20; no draws from r, so the files above stay as they were):
    # zstd cut inside its only block and inside its second, gzip cut; a plain WET named .warc.gz; JSONL behind the
    # wrong compressed suffix
    # (documents no other file holds, so that what is read before each cut shows in the output, not as duplicates)
    unused = {id(x) for x in cc_pick + tp_pick}
    cc_rest, tp_rest = [x for x in cc if id(x) not in unused], [x for x in tp if id(x) not in unused]
    small = _jsonl(cc_rest[: 10 * scale])
    (folder / "n_cut-small.jsonl.zst").write_bytes(_zstd(small)[: len(_zstd(small)) // 2])
    (folder / "n_cut-small.jsonl.gz").write_bytes(gzip.compress(small, mtime=0)[: len(gzip.compress(small)) // 2])
    blocks = _zstd(_jsonl(tp_rest[: 20 * scale]))
    (folder / "n_cut-blocks.jsonl.zst").write_bytes(blocks[: len(blocks) * 3 // 5])
    shutil.copyfile(next(p for p in WARCS if p.suffix == ".wet"), web / "plain-wet.warc.gz")
    (folder / "o_plain.jsonl.gz").write_bytes(_jsonl(cp))
    (folder / "o_gzip.jsonl.zst").write_bytes(gzip.compress(_jsonl(cp), mtime=0))
    (folder / "o_zstd.jsonl.gz").write_bytes(_zstd(_jsonl(cp)))
    return {
        "new_last": folder / "z_new.jsonl",
        "changed_last": folder / "y_last.jsonl",
        "middle": folder / "m_dedup.jsonl",
    }


def extra_recs(seed: int, n: int, tag: str) -> list[dict]:
    g = diff_check.Gen(seed, diff_check.load_sentences())
    return [{"id": f"{tag}{i}", "text": g.mixed()} for i in range(n)]


# ---------------------------------------------------------------- comparison


def _scrub(x: object) -> object:
    if isinstance(x, dict):
        return {k: _scrub(v) for k, v in x.items() if k not in _VOLATILE}
    if isinstance(x, list):
        return [_scrub(v) for v in x]
    return x


def _report(out: Path) -> object:
    path = out / "report.json"
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8").replace(str(out), "OUT")
    return _scrub(json.loads(text))


def _decoded(path: Path) -> bytes:
    """A compressed output's content (its bytes may differ by compressor settings alone)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=repr).encode()
    return data


def _state(out: Path) -> list[tuple]:
    db = out / ".cleancorpus" / "state.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows: list[tuple] = [
            ("file", *row)
            for row in con.execute(
                "SELECT source, size, content_hash, config_hash, documents, kept, rejected, output"
                " FROM files ORDER BY source"
            )
        ]
        for stage, source, n in con.execute(
            "SELECT stage, source, count(*) FROM stage_rows GROUP BY stage, source ORDER BY stage, source"
        ):
            rows.append(("stage_rows", stage, source, n))
    finally:
        con.close()
    return rows


def outputs(out: Path) -> list[Path]:
    keep = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and rel.parts[0] != ".cleancorpus" and rel.name not in ("report.json", "report.html"):
            keep.append(rel)
    return keep


def compare(a_out: Path, b_out: Path, state: bool = True, report: bool = True) -> list[str]:
    """How two output folders differ (empty: they do not); ``report``: report.json too (it describes the
    last run only: not comparable between a run and a rerun after a kill)."""
    diffs = []
    for name in sorted(set(outputs(a_out)) | set(outputs(b_out))):
        a, b = a_out / name, b_out / name
        if not a.exists() or not b.exists():
            diffs.append(f"{name}: only in {'second' if b.exists() else 'first'}")
        elif a.read_bytes() != b.read_bytes():
            if _decoded(a) == _decoded(b):
                diffs.append(f"{name}: bytes differ, content equal")
            elif name.suffix in (".jsonl", ".txt"):
                diffs.append(f"{name}: {diff_check.first_difference(a, b)}")
            else:
                diffs.append(f"{name}: content differs")
    ra, rb = (_report(a_out), _report(b_out)) if report else (None, None)
    if ra != rb:
        diffs.append(f"report.json: {_first_json_difference(ra, rb)}")
    if state and _state(a_out) != _state(b_out):
        sa, sb = _state(a_out), _state(b_out)
        only = sorted(set(sa) ^ set(sb))[:4]
        diffs.append(f"state: {len(set(sa) ^ set(sb))} rows differ, e.g. {only}")
    return diffs


def _first_json_difference(a: object, b: object, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_json_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_json_difference(x, y, f"{path}[{i}]")
    return f"{path}: {json.dumps(a, ensure_ascii=False)[:300]} vs {json.dumps(b, ensure_ascii=False)[:300]}"


# ---------------------------------------------------------------- running


def run(tree: Path, inp: Path, out: Path, args: list[str], timeout: tuple[str, float] | None = None) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pipeline", "run", str(inp), "-o", str(out), "-q", *args]
    if timeout is not None:
        cmd = ["timeout", "--preserve-status", "-s", timeout[0], str(timeout[1]), *cmd]
    p = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    return p.returncode, p.stderr


class Checker:
    def __init__(self, base: Path, new: Path, work: Path) -> None:
        self.trees = {"base": base.resolve(), "new": new.resolve()}
        self.work = work
        self.failed = False
        self.count = 0
        self.stderr: dict[str, str] = {}
        self.run_args: list[str] = []  # added to every run (--run-args)

    def note(self, tag: str, diffs: list[str], out: Path | None = None) -> None:
        self.count += 1
        if out is not None:
            tag += f" [{len(outputs(out))} files]"
        if diffs:
            self.failed = True
            print(f"{tag}: {len(diffs)} difference(s)")
            for d in diffs:
                print("  " + d)
        else:
            print(f"{tag}: identical")
        sys.stdout.flush()

    def run(self, label: str, inp: Path, out: Path, args: list[str], tag: str, ok=(0, 3)) -> int:
        code, err = run(self.trees[label], inp, out, [*args, *self.run_args])
        self.stderr[label] = err.replace(str(out), "OUT")
        if code not in ok or "Traceback" in err:
            self.failed = True
            print(f"{tag} {label}: exit {code}\n{err[-3000:]}")
        return code

    def both(self, inp: Path, name: str, args: list[str], tag: str) -> dict[str, Path]:
        outs = {label: self.work / f"out-{name}-{label}" for label in self.trees}
        codes = {}
        for label, out in outs.items():
            if out.exists():
                shutil.rmtree(out)
            codes[label] = self.run(label, inp, out, args, tag)
        diffs = compare(outs["base"], outs["new"])
        if self.stderr["base"] != self.stderr["new"]:
            diffs.append(f"stderr: base {self.stderr['base'][-500:]!r} new {self.stderr['new'][-500:]!r}")
        if codes["base"] != codes["new"]:
            diffs.insert(0, f"exit status base {codes['base']} new {codes['new']}")
        self.note(f"{tag} (exit {codes['new']})", diffs, outs["new"])
        return outs


def scenario_full(c: Checker, inp: Path, workers: list[int], extra: list[str], name: str = "full") -> None:
    per_w = {}
    for w in workers:
        per_w[w] = c.both(inp, f"{name}-w{w}", ["--workers", str(w), *extra], f"{name} w{w} base/new")
    for label in c.trees:
        for w in workers[1:]:
            c.note(f"{name} {label} w{workers[0]}/w{w}", compare(per_w[workers[0]][label], per_w[w][label]))


INCREMENTAL_STEPS = [
    "1 (first run)",
    "2 (a new file, last name)",
    "3 (a new file + a changed file, last names)",
    "4 (a changed file in the middle + a new first file)",
    "5 (nothing new)",
]


def _change(step: int, folder: Path, files: dict[str, Path], seed: int) -> None:
    """The input as a cron job would find it before incremental step ``step`` (0-based)."""
    if step == 0:
        files["changed_last"].write_bytes(_jsonl(extra_recs(seed + 1, 5, "y")))
    elif step == 1:  # a copy of two of y_last's documents too: dedup against the saved index
        files["new_last"].write_bytes(_jsonl(extra_recs(seed + 2, 6, "z") + extra_recs(seed + 1, 2, "y")))
    elif step == 2:
        (folder / "zz_new.jsonl").write_bytes(_jsonl(extra_recs(seed + 5, 3, "zz")))
        files["changed_last"].write_bytes(_jsonl(extra_recs(seed + 1, 7, "y")))
    elif step == 3:
        files["middle"].write_bytes(files["middle"].read_bytes() + _jsonl(extra_recs(seed + 3, 3, "m")))
        (folder / "a_new.txt").write_text(extra_recs(seed + 4, 1, "a")[0]["text"], encoding="utf-8")


def explain_targets(out: Path, per_source: int = 2) -> list[tuple[str, str, int | None]]:
    """(id, source, line) of a few documents of each input file the audit names: removed spans first."""
    picked: dict[str, list[tuple[str, str, int | None]]] = {}
    for name in ("removed.jsonl", "rejected.jsonl"):
        path = out / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").split("\n")[:-1]:  # (texts hold U+2028)
            rec = json.loads(line)
            key = (str(rec["id"]), rec["source"], rec.get("line"))
            got = picked.setdefault(rec["source"], [])
            if key not in got and len(got) < per_source:
                got.append(key)
    return [k for src in sorted(picked) for k in picked[src]]


def scenario_explain(c: Checker, outs: dict[str, Path]) -> None:
    """``explain`` of documents of every input kind, in both trees on their own output."""
    targets = explain_targets(outs["new"])
    same = 0
    for doc_id, source, line in targets:
        shown = {}
        for label, tree in c.trees.items():
            cmd = [sys.executable, "-m", "pipeline", "explain", doc_id, "-o", str(outs[label]), "--source", source]
            if line is not None:
                cmd += ["--line", str(line)]
            p = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
            shown[label] = (p.returncode, p.stdout.replace(str(outs[label]), "OUT"), p.stderr)
            if p.returncode != 0 or "Traceback" in p.stderr:
                c.failed = True
                print(f"explain {doc_id} {source} {line} {label}: exit {p.returncode}\n{p.stderr[-2000:]}")
        if shown["base"] != shown["new"]:
            a, b = (f"exit {x[0]}\n{x[1]}{x[2]}".splitlines() for x in (shown["base"], shown["new"]))
            delta = [d for d in difflib.unified_diff(a, b, "base", "new", n=0, lineterm="")][:12]
            c.note(f"explain {doc_id} ({source} line {line}) base/new", ["\n    ".join(delta)])
        else:
            same += 1
    c.note(
        f"explain of {len(targets)} documents base/new ({same} equal)", [] if same == len(targets) else ["see above"]
    )


def scenario_incremental(c: Checker, inp: Path, files: dict[str, Path], seed: int, workers: list[int]) -> None:
    step_in = c.work / "in-incr"
    for w in workers:
        if step_in.exists():
            shutil.rmtree(step_in)
        shutil.copytree(inp, step_in)
        rel = {k: step_in / v.relative_to(inp) for k, v in files.items()}
        outs = {label: c.work / f"out-incr-w{w}-{label}" for label in c.trees}
        for out in outs.values():
            if out.exists():
                shutil.rmtree(out)
        for step, tag in enumerate(INCREMENTAL_STEPS):
            _change(step, step_in, rel, seed)
            before = _audit_ids(outs["new"])
            codes = {
                label: c.run(label, step_in, outs[label], ["--workers", str(w)], f"incr {tag}") for label in c.trees
            }
            tag += f", {_processed(outs['new'])} processed, audit {_how_written(before, _audit_ids(outs['new']))}"
            diffs = compare(outs["base"], outs["new"])
            if codes["base"] != codes["new"]:
                diffs.insert(0, f"exit status base {codes['base']} new {codes['new']}")
            c.note(f"incr w{w} step {tag} base/new (exit {codes['new']})", diffs, outs["new"])
    for label in c.trees:  # the last step's outputs at each worker count
        for w in workers[1:]:
            a, b = (c.work / f"out-incr-w{x}-{label}" for x in (workers[0], w))
            c.note(f"incr {label} after step 5 w{workers[0]}/w{w}", compare(a, b))


def _audit_ids(out: Path) -> tuple[int, ...]:
    """removed.jsonl's and rejected.jsonl's inode and size (appended to: same inode, larger)."""
    ids: list[int] = []
    for name in ("removed.jsonl", "rejected.jsonl"):
        p = out / name
        st = p.stat() if p.exists() else None
        ids += [st.st_ino, st.st_size] if st else [0, 0]
    return tuple(ids)


def _how_written(before: tuple[int, ...], after: tuple[int, ...]) -> str:
    if before == after:
        return "untouched"
    if not before[0]:
        return "written"
    same = [before[i] == after[i] and before[i + 1] <= after[i + 1] for i in (0, 2)]
    return "appended" if all(same) else "rewritten"


def _processed(out: Path) -> object:
    try:
        return json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"]["processed"]
    except (OSError, ValueError, KeyError):
        return "?"


def _drop_audit_part(out: Path) -> None:
    parts = sorted((out / ".cleancorpus" / "audit").glob("*"))
    if parts:
        parts[len(parts) // 2].unlink()


def scenario_ops(c: Checker, inp: Path, files: dict[str, Path], seed: int, workers: list[int]) -> None:
    """Operator paths on one output folder: an audit part lost from the state folder then a changed file,
    ``--rebuild``, a run with ``output.audit: false`` then one with it on; and ``--limit`` on a fresh folder."""
    no_audit = c.work / "no-audit.yaml"
    no_audit.write_text("output: {audit: false}\n", encoding="utf-8")
    step_in = c.work / "in-ops"
    for w in workers:
        if step_in.exists():
            shutil.rmtree(step_in)
        shutil.copytree(inp, step_in)
        middle = step_in / files["middle"].relative_to(inp)
        outs = {label: c.work / f"out-ops-w{w}-{label}" for label in c.trees}
        for out in outs.values():
            if out.exists():
                shutil.rmtree(out)
        steps: list[tuple[str, list[str], object]] = [
            ("first run", [], None),
            ("an audit part lost + a changed file", [], "drop"),
            ("--rebuild", ["--rebuild"], None),
            ("output.audit false + a new file", ["-c", str(no_audit)], "new"),
            ("audit on again + a changed file", [], "change"),
        ]
        for tag, extra, change in steps:
            if change == "drop":
                for out in outs.values():
                    _drop_audit_part(out)
                middle.write_bytes(middle.read_bytes() + _jsonl(extra_recs(seed + 7, 2, "o")))
            elif change == "new":
                (step_in / "zzz_ops.jsonl").write_bytes(_jsonl(extra_recs(seed + 8, 3, "q")))
            elif change == "change":
                middle.write_bytes(middle.read_bytes() + _jsonl(extra_recs(seed + 9, 2, "r")))
            codes = {}
            for label in c.trees:
                codes[label] = c.run(label, step_in, outs[label], ["--workers", str(w), *extra], f"ops {tag}")
            diffs = compare(outs["base"], outs["new"])
            if codes["base"] != codes["new"]:
                diffs.insert(0, f"exit status base {codes['base']} new {codes['new']}")
            if c.stderr["base"] != c.stderr["new"]:
                diffs.append(f"stderr: base {c.stderr['base'][-400:]!r} new {c.stderr['new'][-400:]!r}")
            c.note(f"ops w{w} {tag}, {_processed(outs['new'])} processed (exit {codes['new']})", diffs, outs["new"])
        c.both(inp, f"limit-w{w}", ["--workers", str(w), "--limit", "150"], f"ops w{w} --limit 150 base/new")


def scenario_ray(c: Checker, inp: Path, workers: list[int]) -> None:
    small = c.work / "in-ray"
    if small.exists():
        shutil.rmtree(small)
    small.mkdir()
    for name in ("b_cc.jsonl.gz", "c_tp.jsonl.zst", "d_txt", "e_rows.parquet", "f_web", "g_odd.jsonl", "m_dedup.jsonl"):
        src = inp / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, small / name)
    outs = c.both(small, "ray", ["--executor", "ray", "--workers", "2"], "ray w2 base/new")
    local = c.both(small, "ray-local", ["--workers", "1"], "ray-input local w1 base/new")
    for label in c.trees:
        c.note(f"ray {label} ray/local", compare(outs[label], local[label], state=True))


def _finished_outputs(out: Path) -> int:
    """Output files renamed into place so far (not ``.partial``, not the state's)."""
    try:
        return sum(
            1
            for p in out.rglob("*")
            if p.suffix != ".partial" and ".cleancorpus" not in p.relative_to(out).parts and p.is_file()
        )
    except OSError:  # a file renamed while listed
        return -1


def run_stopped(tree: Path, inp: Path, out: Path, args: list[str], sig: str, when: str) -> tuple[int, str, str]:
    """A run sent ``SIG<sig>`` (to its process group, as ``timeout`` and systemd do) ``when``: after that many
    seconds, or ``oN`` once N output files are in place (a commit group renamed, maybe not yet recorded)."""
    cmd = [sys.executable, "-m", "pipeline", "run", str(inp), "-o", str(out), "-q", *args]
    p = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()), daemon=True)
    reader.start()
    started, at = time.monotonic(), "never"
    while p.poll() is None:
        elapsed = time.monotonic() - started
        hit = elapsed >= float(when) if not when.startswith("o") else _finished_outputs(out) >= int(when[1:])
        if hit:
            at = f"{elapsed:.1f}s, {max(_finished_outputs(out), 0)} outputs"
            os.killpg(p.pid, getattr(signal, f"SIG{sig}"))
            break
        time.sleep(0.02)
    code = p.wait()
    reader.join()
    return code, b"".join(err_chunks).decode("utf-8", "replace"), at


def scenario_kill(c: Checker, inp: Path, workers: list[int], when: list[str], sigs: list[str]) -> None:
    for w in workers:
        ref = {label: c.work / f"out-kill-ref-w{w}-{label}" for label in c.trees}
        for label, out in ref.items():
            if out.exists():
                shutil.rmtree(out)
            c.run(label, inp, out, ["--workers", str(w)], f"kill ref w{w}")
        for sig in sigs:
            for t in when:
                for label in c.trees:
                    out = c.work / f"out-kill-w{w}-{sig}-{t}-{label}"
                    if out.exists():
                        shutil.rmtree(out)
                    code, err, at = run_stopped(c.trees[label], inp, out, ["--workers", str(w)], sig, t)
                    if "Traceback" in err:
                        c.failed = True
                        print(f"kill w{w} {sig} {t} {label}: traceback\n{err[-3000:]}")
                    recorded = sum(1 for row in _state(out) if row[0] == "file")
                    again = c.run(label, inp, out, ["--workers", str(w)], f"kill w{w} {sig} {t} rerun")
                    left = [p.name for p in out.rglob("*.partial")]
                    diffs = compare(ref[label], out, report=False)
                    if left:
                        diffs.append(f".partial files left: {left}")
                    c.note(
                        f"kill w{w} {sig} at {t} ({at}) {label} (exit {code}, {recorded} files recorded;"
                        f" rerun exit {again}) vs uninterrupted",
                        diffs,
                    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=int, default=1, help="input size multiplier")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--run-args", default="", help="options added to every run, e.g. '--executor ray'")
    ap.add_argument("--input", type=Path, help="an input folder to use instead of generating one (full, kill)")
    ap.add_argument("--work", type=Path, help="folder for inputs and outputs (kept); default a temp dir")
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=["full"],
        choices=["full", "explain", "formats", "incremental", "ops", "ray", "kill"],
    )
    ap.add_argument(
        "--kill-at",
        nargs="+",
        default=["2", "o1", "o40"],
        help="when the kill scenario stops a run: seconds, or oN once N output files are in place",
    )
    ap.add_argument("--kill-signals", nargs="+", default=["INT", "KILL"], choices=["INT", "TERM", "KILL"])
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="formatcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    inp = args.input or work / f"in-{args.seed}"
    files = {} if args.input else write_inputs(inp, args.seed, args.scale)
    digest = hashlib.sha256()
    for p in sorted(inp.rglob("*")):
        if p.is_file():
            digest.update(str(p.relative_to(inp)).encode() + p.read_bytes())
    print(f"input {inp}: {sum(1 for p in inp.rglob('*') if p.is_file())} files, sha256 {digest.hexdigest()[:16]}")
    c = Checker(args.base, args.new, work)
    c.run_args = shlex.split(args.run_args)
    for s in args.scenarios:
        if s == "full":
            scenario_full(c, inp, args.workers, [])
        elif s == "explain":
            w = args.workers[0]
            outs = {label: work / f"out-full-w{w}-{label}" for label in c.trees}
            if not all(o.exists() for o in outs.values()):
                outs = c.both(inp, f"full-w{w}", ["--workers", str(w)], f"full w{w} base/new")
            scenario_explain(c, outs)
        elif s == "formats":
            for fmt in ("jsonl", "txt", "parquet"):
                cfg = work / f"format-{fmt}.yaml"
                cfg.write_text(f"output: {{format: {fmt}}}\n", encoding="utf-8")
                scenario_full(c, inp, args.workers, ["-c", str(cfg)], name=f"format-{fmt}")
        elif s == "incremental":
            scenario_incremental(c, inp, files, args.seed, args.workers)
        elif s == "ops":
            scenario_ops(c, inp, files, args.seed, args.workers)
        elif s == "ray":
            scenario_ray(c, inp, args.workers)
        elif s == "kill":
            scenario_kill(c, inp, args.workers, args.kill_at, args.kill_signals)
    print(f"{c.count} comparisons; work folder: {work}")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
