"""OUTDIR/report.html: contents, numbers equal report.json, escaping, no network, bounded reading; the
page rendered in headless Chromium; the live progress display of interactive runs."""

from __future__ import annotations

import io
import json
import logging
import re
import shlex
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SEEDS

import pipeline.report_html as report_html
from pipeline.cli import _progress_display, cli
from pipeline.config import default_config, load_config_data
from pipeline.report import StageStats
from pipeline.report_html import render_html, write_html_report
from pipeline.runner import run

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
SECTIONS = ("stages", "rules", "languages", "duplicates", "samples", "time", "config")


# ---------------------------------------------------------------- a small DOM for the checks


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Any:
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        def match(n: Node) -> bool:
            if tag and n.tag != tag:
                return False
            for k, v in attrs.items():
                key = k.rstrip("_").replace("_", "-")
                if key == "class":
                    if v not in n.attrs.get("class", "").split():
                        return False
                elif n.attrs.get(key) != v:
                    return False
            return True

        return [n for n in self.iter() if match(n)]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]


class _TreeBuilder(HTMLParser):
    VOID = {"br", "meta", "img", "input", "link", "hr", "wbr", "source", "col"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def parse(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


# ---------------------------------------------------------------- checks shared by the unit and browser tests


def check_numbers(dom: Node, report: dict[str, Any]) -> None:
    """Every number the page shows for the run equals report.json."""
    data = json.loads(dom.find("script", id="report-data").text())
    assert data == report
    for key, value in (
        ("documents.in", report["documents"]["in"]),
        ("documents.out", report["documents"]["out"]),
        ("documents.rejected", report["documents"]["rejected"]),
        ("characters.in", report["characters"]["in"]),
        ("characters.out", report["characters"]["out"]),
        ("characters.removed", report["characters"]["removed"]),
        ("inputs.files", report["inputs"]["files"]),
    ):
        span = dom.find(data_key=key)
        assert number(span.attrs["data-value"]) == value and number(span.text()) == value, key
    rows = dom.find("table", id="stage-table").find_all("tr")
    rows = [r for r in rows if "data-stage" in r.attrs]
    assert [r.attrs["data-stage"] for r in rows] == [s["stage"] for s in report["stages"]]
    for row, stage in zip(rows, report["stages"], strict=True):
        cells = {c.attrs["data-key"]: c for c in row.find_all("td")}
        for key in ("documents_in", "documents_out", "documents_rejected", "characters_in", "characters_out"):
            assert number(cells[key].text()) == stage[key], (stage["stage"], key)
        assert number(cells["characters_removed"].text()) == stage["characters_removed"]
        assert number(cells["lines_removed"].text()) == stage["lines_removed"]
    # the bars carry the numbers they are drawn from
    docs_chart = dom.find("svg", data_chart="documents")
    by_stage = {g.attrs["data-stage"]: g for g in docs_chart.find_all("g", class_="row")}
    for stage in report["stages"]:
        g = by_stage[stage["stage"]]
        assert number(g.attrs["data-in"]) == stage["documents_in"]
        assert number(g.attrs["data-value"]) == stage["documents_out"]
        assert number(g.attrs["data-rest"]) == stage["documents_rejected"]
        assert f"{stage['documents_in']:,} → {stage['documents_out']:,}" in g.text()
    rules = {(s["stage"], r): c for s in report["stages"] for r, c in s["rules"].items()}
    rule_charts = dom.find_all("svg", data_chart="rules")
    assert len(rule_charts) == (1 if rules else 0)  # no chart when nothing was removed
    rule_rows = rule_charts[0].find_all("g", class_="row") if rules else []
    assert len(rule_rows) == min(len(rules), report_html.TOP_RULES)
    for g in rule_rows:
        counts = rules[(g.attrs["data-stage"], g.attrs["data-rule"])]
        assert number(g.attrs["data-value"]) == counts["characters"]
        assert number(g.attrs["data-spans"]) == counts["spans"]
        assert f"{counts['characters']:,} chars" in g.text()
    shown = sorted((number(g.attrs["data-value"]) for g in rule_rows), reverse=True)
    top = sorted((c["characters"] for c in rules.values()), reverse=True)[: len(shown)]
    assert shown == top  # the largest rules, none left out
    time_rows = dom.find("svg", data_chart="time").find_all("g", class_="row")
    assert [number(g.attrs["data-value"]) for g in time_rows] == [s["seconds"] for s in report["stages"]]


def check_charts(dom: Node, report: dict[str, Any]) -> None:
    """The charts are there, labelled, with one bar per row, sized in proportion to their values."""
    charts = {svg.attrs["data-chart"]: svg for svg in dom.find_all("svg", class_="bars")}
    assert {"documents", "characters", "time"} <= set(charts)
    for name, svg in charts.items():
        assert svg.attrs.get("role") == "img" and svg.find("title").text(), name
        rows = svg.find_all("g", class_="row")
        assert rows, name
        widths = []
        for g in rows:
            bar = g.find("rect", class_="bar")
            widths.append((number(g.attrs["data-value"]), float(bar.attrs["width"])))
            assert g.find("text", class_="lbl").text() and g.find("text", class_="num").text()
        biggest = max(widths)
        for value, width in widths:
            if value > 0:
                assert width > 0, name
                assert abs(width / biggest[1] - value / biggest[0]) < 0.02 or width == 1.5, name


# ---------------------------------------------------------------- a synthetic run with hostile text


def _synthetic(tmp_path: Path) -> tuple[dict[str, Any], Path, dict[str, str]]:
    """report.json's dict, audit files, an input and an output file, with hostile ids and text."""
    out = tmp_path / "out dir"
    out.mkdir()
    evil_id = f"doc {HOSTILE}"
    before = f"Home » News\nA first paragraph.\n{HOSTILE} stays in the text.\nShare {HOSTILE}\nThe end."
    after = f"A first paragraph.\n{HOSTILE} stays in the text.\nThe end."
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": evil_id, "text": before}) + "\n", encoding="utf-8")
    (out / "in.jsonl").write_text(json.dumps({"id": evil_id, "text": after}) + "\n", encoding="utf-8")
    removed = [
        {"id": evil_id, "source": "in.jsonl", "stage": "boilerplate", "rule": "breadcrumb", "text": "Home » News"},
        {"id": evil_id, "source": "in.jsonl", "stage": "boilerplate", "rule": "share", "text": f"Share {HOSTILE}"},
    ] + [
        {
            "id": f"copy-{i}",
            "source": "in.jsonl",
            "stage": "dedup",
            "rule": "exact-paragraph",
            "text": f"{HOSTILE} repeated paragraph",
            "duplicate_of": evil_id,
            "jaccard": 1.0,
        }
        for i in range(3)
    ]
    rejected = [
        {
            "id": "dup-1",
            "source": "in.jsonl",
            "line": 2,
            "stage": "dedup",
            "reason": f"exact duplicate of document {evil_id}",
            "duplicate_of": evil_id,
            "text": before,
        },
        {"id": "bad", "source": "in.jsonl", "stage": "language", "reason": f"language {HOSTILE}", "text": HOSTILE},
    ]
    (out / "removed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in removed), encoding="utf-8")
    (out / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejected), encoding="utf-8")

    def stage(name: str, d: tuple[int, int], c: tuple[int, int], **extra: Any) -> dict[str, Any]:
        rules = extra.get("rules", {})
        return {
            "stage": name,
            "documents_in": d[0],
            "documents_out": d[1],
            "documents_rejected": d[0] - d[1],
            "characters_in": c[0],
            "characters_out": c[1],
            "characters_removed": c[0] - c[1],
            "lines_removed": sum(r["lines"] for r in rules.values()),
            "seconds": extra.get("seconds", 0.5),
            "rules": rules,
            "rejections": extra.get("rejections", {}),
            "counters": extra.get("counters", {}),
        }

    report = {
        "cleancorpus": "0.1.0",
        "started": "2025-01-01T00:00:00+00:00",
        "seconds": 3.25,
        "workers": 1,
        "inputs": {"files": 1, "processed": 1, "unchanged_skipped": 0, "changed": 0, "bytes": 9000, "skipped": []},
        "documents": {"in": 12, "out": 9, "rejected": 3, "quarantined": 0, "rejected_at_input": {"empty": 1}},
        "characters": {"in": 9000, "out": 7000, "removed": 2000},
        "stages": [
            stage(
                "boilerplate",
                (11, 11),
                (8900, 8400),
                rules={
                    "breadcrumb": {"spans": 4, "characters": 300, "lines": 4},
                    f"share {HOSTILE}": {"spans": 2, "characters": 200, "lines": 2},
                },
                seconds=1.25,
            ),
            stage(
                "language",
                (11, 10),
                (8400, 8000),
                rules={"fragment-en": {"spans": 3, "characters": 250, "lines": 0}},
                rejections={"language": 1},
                counters={
                    "main-language-de": 7,
                    "main-language-en": 3,
                    "main-language-fr": 1,
                    "main-language-by-profile": 11,
                    "fragment-script-han": 2,
                    "fragment-same-script-en": 3,
                    "fragment-chars": 250,
                },
            ),
            stage(
                "dedup",
                (10, 9),
                (8000, 7000),
                rules={"exact-paragraph": {"spans": 3, "characters": 150, "lines": 3}},
                rejections={"exact duplicate": 1},
                counters={"clusters": 3, "clusters-with-1-copies": 2, "clusters-with-3-copies": 1},
            ),
        ],
        "state": {"folder": str(out / ".cleancorpus"), "config_hash": "abc", "recorded": True},
        "config": {"input": {"paths": [], "id_field": "id", "text_field": "text", "max_doc_chars": 20000000}},
    }
    return report, out, {"in.jsonl": str(src)}


def test_page_has_every_section_and_numbers_equal_the_report(tmp_path: Path) -> None:
    report, out, sources = _synthetic(tmp_path)
    path = write_html_report(report, out, sources)
    assert path == out / "report.html" and not list(out.glob("*.partial"))
    dom = parse(path.read_text(encoding="utf-8"))
    for section in SECTIONS:
        assert dom.find("section", id=section).find("h2").text()
    check_numbers(dom, report)
    check_charts(dom, report)
    languages = {g.attrs["data-label"]: number(g.attrs["data-value"]) for g in dom.find_all("g", class_="row")}
    assert languages["de"] == 7 and languages["en"] == 3 and "by-profile" not in languages
    assert languages["han script"] == 2 and languages["en (same script)"] == 3
    clusters = {
        g.attrs["data-label"]: number(g.attrs["data-value"])
        for g in dom.find("svg", data_chart="clusters").find_all("g")
    }
    assert clusters["1 removed copy"] == 2 and clusters["3 removed copies"] == 1 and clusters["2 removed copies"] == 0


def test_hostile_text_is_escaped_everywhere(tmp_path: Path) -> None:
    report, out, sources = _synthetic(tmp_path)
    page = render_html(report, out, sources)
    dom = parse(page)
    scripts = dom.find_all("script")
    assert len(scripts) == 2 and scripts[0].attrs["type"] == "application/json" and "code.cmd" in scripts[1].text()
    assert not dom.find_all("img")
    assert 'alert("pwned")' not in page.replace(json.dumps(HOSTILE)[1:-1], "")  # only escaped copies remain
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    # the sample shows the document with its removed spans marked, and the cleaned text
    sample = dom.find("article", class_="sample")
    assert sample.attrs["data-id"] == f"doc {HOSTILE}"
    marked = [d.text() for d in sample.find_all("del", class_="rm")]
    assert marked == ["Home » News", f"Share {HOSTILE}"]
    assert f"{HOSTILE} stays in the text." in sample.text()
    # copyable explain commands, quoted for the shell
    commands = [c.text() for c in dom.find_all("code", class_="cmd")]
    expected = f"cleancorpus explain {shlex.quote(f'doc {HOSTILE}')} -o {shlex.quote(str(out.absolute()))}"
    assert expected in commands
    assert shlex.split(expected)[2] == f"doc {HOSTILE}"
    # the duplicates: the paragraph cluster and the duplicate document
    duplicates = dom.find("section", id="duplicates").text()
    assert f"{HOSTILE} repeated paragraph" in duplicates and "3 copies removed" in duplicates and "dup-1" in duplicates


def test_page_loads_nothing_from_the_network(tmp_path: Path) -> None:
    report, out, sources = _synthetic(tmp_path)
    report["inputs"]["skipped"] = [{"path": "https://example.org/x.txt", "reason": "see http://example.org"}]
    page = render_html(report, out, sources)
    assert "https://example.org/x.txt" in page  # text content may mention URLs...
    for tag in parse(page).iter():  # ...but no attribute loads or links anything outside the page
        for name, value in tag.attrs.items():
            if name in ("src", "href", "action", "xlink:href", "poster", "data", "srcset"):
                assert value.startswith("#"), (tag.tag, name, value)
    assert not re.search(r"url\(|@import|<link|<iframe|<object|<embed", page, re.IGNORECASE)


def test_audit_reading_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "MAX_AUDIT_LINES", 50)
    out = tmp_path / "out"
    out.mkdir()
    line = json.dumps({"id": "d", "source": "s", "stage": "dedup", "rule": "r", "text": "t", "duplicate_of": "o"})
    (out / "removed.jsonl").write_text((line + "\n") * 500, encoding="utf-8")
    audit = report_html.read_audit(out)
    assert audit.removed_read == 50 and len(audit.clusters[("o", None, None, "t")].copies) == 50


def test_missing_audit_and_inputs_still_give_a_page(tmp_path: Path) -> None:
    report, out, _ = _synthetic(tmp_path)
    (out / "in.jsonl").unlink()
    page = render_html(report, out, sources={})
    assert "Input not found" in page and "Output not found" in page
    report["config"]["output"] = {"audit": False}
    assert "Audit files are off" in render_html(report, out)


# ---------------------------------------------------------------- written by a real run


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("corpus")
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, corpus / seed.name)
    # a document whose id (file name) and text are hostile, sharing a paragraph with another
    paragraph = max((SEEDS / sorted(p.name for p in SEEDS.glob("000_*.txt"))[0]).read_text().split("\n"), key=len)
    (corpus / "zz <img src=x onerror=alert(1)>.txt").write_text(
        f"{HOSTILE} A report about nothing in particular, written for this test only.\n\n{paragraph}\n",
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("run") / "out"
    run(default_config(), [str(corpus)], out)
    return out


def test_a_run_writes_report_html_equal_to_report_json(seed_run: Path) -> None:
    report = json.loads((seed_run / "report.json").read_text(encoding="utf-8"))
    page = (seed_run / "report.html").read_text(encoding="utf-8")
    dom = parse(page)
    check_numbers(dom, report)
    check_charts(dom, report)
    assert not dom.find_all("img") and len(dom.find_all("script")) == 2
    assert dom.find_all("article", class_="sample") and dom.find_all("del", class_="rm")


def test_a_failing_html_report_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Path:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_html, "write_html_report", broken)
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    logger = logging.getLogger("cleancorpus")
    monkeypatch.setattr(logger, "propagate", True)
    with caplog.at_level(logging.WARNING, logger="cleancorpus"):
        result = run(load_config_data({"stages": [{"stage": "normalize"}]}), [str(tmp_path / "a.txt")], tmp_path / "o")
    assert result.documents_out == 1 and (tmp_path / "o" / "report.json").exists()
    assert not (tmp_path / "o" / "report.html").exists()
    assert any("report.html" in r.getMessage() and "disk full" in r.getMessage() for r in caplog.records)


def test_the_page_is_prepared_while_the_last_file_is_recorded_and_shows_the_runs_final_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner reads the audit records and samples back for report.html while its thread writes the last
    file's state record, and gives the page the run's time once that is done: the page's time and data are
    report.json's, and the page equals render_html of the final report."""
    from pipeline.runner import _Outputs

    events: list[str] = []
    prepare, wait = report_html.prepare_html, _Outputs.wait_recorded

    def noting_prepare(*args: Any, **kwargs: Any) -> Any:
        events.append("prepare")
        return prepare(*args, **kwargs)

    def noting_wait(self: _Outputs, *args: Any, **kwargs: Any) -> None:
        if self._recording is not None:
            events.append("recording")
        wait(self, *args, **kwargs)
        events.append("recorded")

    monkeypatch.setattr(report_html, "prepare_html", noting_prepare)
    monkeypatch.setattr(_Outputs, "wait_recorded", noting_wait)
    (tmp_path / "in").mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, tmp_path / "in")
    names = sorted(p.name for p in (tmp_path / "in").iterdir())
    result = run(default_config(), [str(tmp_path / "in")], tmp_path / "o")
    assert events == ["prepare", "recording", "recorded"]
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert data and json.loads(data.group(1)) == report == result.report and report["seconds"] > 0
    assert f'data-key="seconds" data-value="{report["seconds"]}"' in page
    audit = tmp_path / "o" / ".cleancorpus" / "audit"
    run_audit = tuple([audit / f"{name}.{kind}.jsonl" for name in names] for kind in ("removed", "rejected"))
    sources = {name: str(tmp_path / "in" / name) for name in names}
    assert render_html(report, tmp_path / "o", sources, run_audit) == page  # type: ignore[arg-type]


# ---------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium_run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=60, check=False)


def _png_busy_rows(png: bytes) -> tuple[int, int]:
    """(rows with content, rows): a row is busy when it has more than a few distinct byte values
    after PNG filtering; a blank page has none. Stdlib only (zlib, struct)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    stride = 1 + width * channels * depth // 8
    raw = zlib.decompress(idat)
    busy = sum(len(set(raw[y * stride + 1 : (y + 1) * stride])) > 8 for y in range(height))
    return busy, height


# Measures what the browser laid out, into data- attributes that --dump-dom shows.
_MEASURE = """<script>
addEventListener("load", function () {
  document.querySelectorAll("svg.bars rect.bar").forEach(function (r) {
    var box = r.getBoundingClientRect();
    r.setAttribute("data-rendered", box.width.toFixed(1) + "x" + box.height.toFixed(1));
  });
  document.body.setAttribute("data-measured", "yes");
});
</script>"""


def test_page_renders_in_headless_chromium(seed_run: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed: apt-get install chromium")
    report = json.loads((seed_run / "report.json").read_text(encoding="utf-8"))
    page = (seed_run / "report.html").read_text(encoding="utf-8")
    measured = tmp_path / "measured.html"  # a copy: the product page stays untouched
    measured.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")

    done = _chromium_run(browser, tmp_path / "profile", "--dump-dom", measured.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = parse(done.stdout)
    assert dom.find("body").attrs.get("data-measured") == "yes", "the page's scripts did not run"
    check_numbers(dom, report)
    check_charts(dom, report)
    assert len(dom.find_all("button", class_="copy")) == len(dom.find_all("code", class_="cmd")) > 0
    for svg in dom.find_all("svg", class_="bars"):
        for g in svg.find_all("g", class_="row"):
            w, h = map(float, g.find("rect", class_="bar").attrs["data-rendered"].split("x"))
            assert h > 8, svg.attrs["data-chart"]  # laid out at a readable size
            assert (w > 0) == (number(g.attrs["data-value"]) > 0), (svg.attrs["data-chart"], g.attrs["data-label"])

    shot = tmp_path / "page.png"
    done = _chromium_run(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        (seed_run / "report.html").as_uri(),
    )
    assert shot.is_file(), done.stderr[-2000:]
    busy, height = _png_busy_rows(shot.read_bytes())
    assert height == 2400 and busy > height * 0.3, (busy, height)


# ---------------------------------------------------------------- progress display


class _File:
    def __init__(self, size: int) -> None:
        self.size = size


def test_progress_display_shows_files_documents_speed_and_stage_counts() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    progress, update = _progress_display(console)
    stats = StageStats("dedup", documents_in=100, documents_out=90, documents_rejected=10)
    stats.characters_in, stats.characters_out = 1000, 800
    files = [_File(1_000_000), _File(3_000_000)]
    update(50, 500_000, 4_000_000, {"file": 0, "files": files, "stages": {0: stats}})
    update(120, 2_000_000, 4_000_000, {"file": 1, "files": files, "stages": {0: stats}})
    task = progress.tasks[0]
    assert task.total == 4_000_000 and task.completed == 1_000_000 + 1_500_000
    console.print(progress.get_renderable())
    shown = buffer.getvalue()
    assert "file 2/2" in shown and "120 docs" in shown and "dedup −20.0% 10 rejected" in shown
    assert "2.5/4.0 MB" in shown


def test_the_progress_display_runs_no_thread_so_the_workers_can_be_forked() -> None:
    from rich.console import Console

    from pipeline.executors import start_method

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    progress, update = _progress_display(console)
    before = threading.active_count()
    progress.start()
    try:
        assert threading.active_count() == before  # (rich's auto-refresh would start a thread here)
        if before == 1:
            assert start_method() == "fork" or sys.platform != "linux"
        update(50, 500_000, 4_000_000, {"file": 0, "files": [_File(4_000_000)], "stages": {}})
        assert "50 docs" in buffer.getvalue()  # update() redraws the display itself
    finally:
        progress.stop()


def test_no_progress_display_without_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "a.txt"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("cleancorpus: 1 file,")
    assert (tmp_path / "o" / "report.html").is_file()


def test_an_incremental_runs_page_shows_its_own_documents(tmp_path: Path) -> None:
    """The samples come from the run's audit records, not from the start of the audit files every run
    appends to: the second run's page shows the new file's removals; a run with nothing new leaves the page
    as it was (an hourly cron job's page would otherwise be empty nearly always)."""
    (tmp_path / "in").mkdir()
    shutil.copy(next(SEEDS.glob("003_*.txt")), tmp_path / "in" / "a.txt")
    out = tmp_path / "out"
    config = default_config()
    run(config, [str(tmp_path / "in")], out)
    first = (out / "report.html").read_text(encoding="utf-8")
    assert "a.txt" in first and "this run's audit records" in first
    shutil.copy(next(SEEDS.glob("004_*.txt")), tmp_path / "in" / "b.txt")
    run(config, [str(tmp_path / "in")], out)
    second = (out / "report.html").read_text(encoding="utf-8")
    assert "b.txt" in second and "a.txt" not in second
    assert len((out / "removed.jsonl").read_bytes().splitlines()) > 10  # both files' records
    run(config, [str(tmp_path / "in")], out)
    assert (out / "report.html").read_text(encoding="utf-8") == second


def test_explain_commands_lead_to_their_document_when_ids_are_shared(tmp_path: Path) -> None:
    """Ids numbered per file: each sample's command names its file and line, and explain shows that document."""
    harbour = "The harbour authority approved a plan to dredge the main shipping channel next spring."
    trees = "Volunteers planted three hundred trees along the riverbank on Saturday morning despite the rain."
    choir = "The town choir rehearsed new songs for the winter concert in the old church hall."
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text(json.dumps({"id": "1", "text": f"Share on Facebook\n{harbour}"}) + "\n")
    (inputs / "b.jsonl").write_text(
        "".join(json.dumps({"id": "1", "text": t}) + "\n" for t in (trees, f"Share on Twitter\n{choir}", trees))
    )
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(inputs), "-o", str(out), "-q"]).exit_code == 0
    dom = parse((out / "report.html").read_text(encoding="utf-8"))
    shown = {}
    for article in dom.find_all("article"):
        (cmd,) = [c.text() for c in article.find_all("code", class_="cmd")]
        place = article.find("small").text().split("from ", 1)[1].split(":", 1)[0]
        shown[place] = cmd
    assert set(shown) == {"a.jsonl line 1", "b.jsonl line 2"}, shown
    # the rejected copy (its kept original is named by id alone: that command shows each document with it)
    (copy,) = dom.find("section", id="duplicates").find_all("li")
    shown["b.jsonl line 3"] = [c.text() for c in copy.find_all("code", class_="cmd")][1]
    for place, cmd in shown.items():
        args = shlex.split(cmd)
        assert args[:2] == ["cleancorpus", "explain"] and "--source" in args, cmd
        result = runner.invoke(cli, args[1:])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"document 1 from {place}\n"), (cmd, result.output)
    assert "REJECTED at stage dedup" in runner.invoke(cli, shlex.split(shown["b.jsonl line 3"])[1:]).output
    b2 = runner.invoke(cli, shlex.split(shown["b.jsonl line 2"])[1:]).output
    assert "[-boilerplate/share: Share on Twitter-]" in b2 and b2.endswith(f"--- after ---\n{choir}\n")


def test_samples_of_a_txt_output_of_many_documents_show_their_cleaned_text(tmp_path: Path) -> None:
    """A txt output holds the input's kept documents, a form-feed line between two: a sample's "after" is the
    one at its place (the rejected copy before it is not there); the page said "Output not found"."""
    harbour = "The harbour authority approved a plan to dredge the main shipping channel next spring."
    choir = "The town choir rehearsed new songs for the winter concert in the old church hall."
    records = [
        {"id": "a", "text": harbour},
        {"id": "b", "text": harbour},  # an exact duplicate: rejected
        {"id": "c", "text": f"Share on Twitter\n{choir}"},
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = load_config_data({"output": {"format": "txt"}})
    run(config, [str(tmp_path / "a.jsonl")], tmp_path / "out")
    dom = parse((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    (article,) = [a for a in dom.find_all("article") if "sample" in a.attrs.get("class", "")]
    assert [pre.text() for pre in article.find_all("pre")][-1] == choir


def test_before_after_places_spans_as_explain_does() -> None:
    """A removed line "n" is highlighted on its own line, not in the first word with an "n" (the page and
    `explain` place spans alike); a paragraph dedup removed as a repeat of its own document is marked at
    the second copy, the kept first one left plain."""
    from pipeline.explain import mark_spans

    para = "The council will vote on the new budget for the harbour next Tuesday evening."
    before = f"http://bibfra.me/vocab/relation/continuedBy\nMedia type code\nn\n{para}\n\n{para}"
    removals = [
        {"stage": "boilerplate", "rule": "navigation", "text": "Media type code"},
        {"stage": "boilerplate", "rule": "navigation", "text": "n"},
        {"stage": "dedup", "rule": "exact-paragraph", "text": para, "duplicate_of": "d1"},
    ]
    page = report_html.marked_html(before, removals, ["boilerplate", "dedup"], doc_id="d1")
    dom = parse(f"<pre>{page}</pre>")
    assert [d.text() for d in dom.find_all("del")] == ["Media type code", "n", para]
    assert "relation/continuedBy" in dom.text()
    after_n = page.index(">n</del>")
    assert para in page[after_n : page.index("<del", after_n)]  # the kept first copy, plain
    explained, unplaced = mark_spans(before, removals, color=False, doc_id="d1")
    assert unplaced == [] and "[-boilerplate/navigation: n-]\n" in explained
    assert explained.endswith(f"{para}\n\n[-dedup/exact-paragraph: {para}-]")


def test_language_mix_counts_only_main_languages_and_foreign_fragments(tmp_path: Path) -> None:
    """The language stage also counts bilingual texts (main-language-bilingual) and Latin it kept as code,
    a citation or a name (fragment-kept-*): neither is a main language nor a fragment removed or tagged.
    The page said "4 main languages across 12 documents; 8 foreign fragments removed or tagged"."""
    report, out, sources = _synthetic(tmp_path)
    (language,) = [s for s in report["stages"] if s["stage"] == "language"]
    language["counters"].update(
        {"main-language-bilingual": 1, "fragment-kept-code": 2, "fragment-kept-citation": 1, "fragment-kept-name": 0}
    )
    dom = parse(render_html(report, out, sources))
    section = dom.find("section", id="languages")
    assert "3 main languages across 11 documents; 5 foreign fragments removed or tagged" in section.text()
    labels = {g.attrs["data-label"] for g in section.find_all("g", class_="row")}
    assert labels == {"de", "en", "fr", "han script", "en (same script)"}


def test_the_samples_input_is_read_only_up_to_the_last_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The samples come from the start of the audit: the input is read up to the last sample's line, not
    to its end, and the page is the one a whole read gives."""
    from conftest import CORPORA

    docs = CORPORA / "cc-2019-30-dolma" / "docs.jsonl"
    src = tmp_path / "in.jsonl"
    with docs.open(encoding="utf-8") as fh:
        src.write_text("".join(line for _, line in zip(range(120), fh, strict=False)), encoding="utf-8")
    out = tmp_path / "out"
    run(default_config(), [str(src)], out)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    read_lines: list[int] = []
    reader = report_html.read_documents

    def counting(f: Any, cfg: Any, wanted: Any = None) -> Any:
        for doc in reader(f, cfg, wanted):
            if Path(f.path) == src:
                read_lines.append(doc.line_no)
            yield doc

    monkeypatch.setattr(report_html, "read_documents", counting)
    page = render_html(report, out, sources={"in.jsonl": str(src)})
    picked = report_html.pick_samples(report_html.read_audit(out))
    assert picked and read_lines == list(range(1, max(line for _, _, line in picked) + 1))  # type: ignore[type-var]
    assert max(read_lines) < 120
    monkeypatch.setattr(report_html, "_find_texts", _whole_read(report_html._find_texts))
    assert render_html(report, out, sources={"in.jsonl": str(src)}) == page


def _whole_read(find: Any) -> Any:
    def whole(
        path: Path, source: str, ids: set[str], cfg: Any, last_line: int | None = None, output: bool = False
    ) -> Any:
        return find(path, source, ids, cfg)  # (every line parsed)

    return whole


def test_an_output_is_searched_for_sample_ids_parsing_only_the_lines_that_can_hold_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The samples' texts after cleaning come from the output, read whole (an id several documents have shows
    none): only its lines that can hold a wanted id are parsed, and what is found is what parsing every line
    finds, for ids read from strings, integers, floats, booleans, lists, none (the reader's "file:line") and
    ids JSON escapes."""
    from pipeline.config import InputConfig
    from pipeline.io import OutputWriter, discover

    records: list[dict[str, Any]] = [
        {"id": "a", "text": "first a"},
        {"id": "b", "text": 'quotes the key: "id":"a" and {"id":"a"}'},
        {"id": 7, "text": "integer seven"},
        {"id": "7", "text": "string seven"},
        {"id": 77, "text": "seventy-seven"},
        {"id": -3, "text": "minus three"},
        {"id": 1.5, "text": "a float id"},
        {"id": True, "text": "a boolean id"},
        {"id": [1, "x"], "text": "a list id"},
        {"url": "no id here", "text": "fallback id"},
        {"id": 'q"uote\\d', "text": "escaped id"},
        {"id": "é", "text": "non-ASCII id"},
        {"id": "a", "text": "second a"},
        *({"id": f"filler-{i}", "text": f"filler {i}"} for i in range(40)),
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    out = tmp_path / "out"
    out.mkdir()
    cfg = InputConfig()
    (f,), _ = discover([str(src)])
    writer = OutputWriter(f, out, cfg, None)
    for doc in report_html.read_documents(f, cfg):
        writer.write(doc)
    writer.commit()
    output = out / "in.jsonl"
    parsed: list[int] = []
    import pipeline.io as pio

    real = pio.record_document

    def counting(*args: Any) -> Any:
        parsed.append(args[3])
        return real(*args)

    monkeypatch.setattr(pio, "record_document", counting)
    all_ids = ["a", "7", "-3", "77", "é", 'q"uote\\d', "1.5", "True", '[1,"x"]', "in.jsonl:10", "filler-39", "zz"]
    for wanted in [{i} for i in all_ids] + [{"a", "7", "filler-3"}]:
        parsed.clear()
        found = report_html._find_texts(output, "in.jsonl", wanted, cfg, output=True)
        filtered = len(parsed)
        parsed.clear()
        assert found == report_html._find_texts(output, "in.jsonl", wanted, cfg), wanted
        assert len(parsed) == len(records)
        odd = wanted & {'q"uote\\d', "1.5", "True", '[1,"x"]', "in.jsonl:10"}
        assert filtered == len(records) if odd else filtered <= 6, (wanted, filtered)  # ("id":7 also finds 77)
    assert set(report_html._find_texts(output, "in.jsonl", {"a"}, cfg, output=True)) == {("a", 1), ("a", 13)}
    assert report_html._find_texts(output, "in.jsonl", {"7"}, cfg, output=True) == {
        ("7", 3): "integer seven",
        ("7", 4): "string seven",
    }


def test_audit_records_are_kept_as_read_and_one_lacking_stage_or_rule_gets_them_as_none(tmp_path: Path) -> None:
    # read_audit keeps each removed.jsonl record as it was read (no copy of the fields the page reads), but a
    # record without "stage" or "rule" (not written by this program), which the page reads by [], gets them
    # as None, as the copy did: the page shows "None" for it instead of failing
    records = [
        {
            "id": "a",
            "source": "in.jsonl",
            "line": 1,
            "stage": "boilerplate",
            "rule": "nav",
            "start": 0,
            "end": 4,
            "text": "Home",
            "lines": 1,
        },
        {"id": "b", "source": "in.jsonl", "line": 2, "stage": "language", "text": "hola"},
    ]
    (tmp_path / "removed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "rejected.jsonl").write_text("", encoding="utf-8")
    audit = report_html.read_audit(tmp_path)
    assert audit.removals[("in.jsonl", "a", 1)] == [records[0]]
    slim = audit.removals[("in.jsonl", "b", 2)][0]
    assert slim["rule"] is None and slim["stage"] == "language" and slim["text"] == "hola"
    assert set(slim) == {"stage", "rule", "start", "end", "text", "language", "duplicate_of"}


def test_config_yaml_is_what_pyyaml_writes() -> None:
    """The config section's YAML (libyaml's emitter where it writes the same) equals yaml.safe_dump's, also for
    configs with paths libyaml writes otherwise: an emoji, control characters, accented letters."""
    import yaml

    options: dict[str, Any] = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False}
    configs = [default_config().dump()]
    for path in ["/data/crawl 😀/out", "/data/tab\there/\x07bell", "/data/café/corpus", 'say "hi": yes', "x" * 200]:
        config = default_config().dump()
        config["input"]["paths"] = [path]
        configs.append(config)
    for config in configs:
        assert report_html._config_yaml(config) == yaml.safe_dump(config, **options)
