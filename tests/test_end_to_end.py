"""The default run on the five real seed articles, through the CLI, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPORA, REPO, SEEDS, seed_text

from pipeline.cli import cli


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "out"
    result = CliRunner().invoke(cli, ["run", str(SEEDS), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet: nothing unless something is wrong
    return out


def _out(out: Path, prefix: str) -> str:
    (path,) = out.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def _removed(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "removed.jsonl").read_text(encoding="utf-8").splitlines()]


def test_000_and_002_keep_their_text(seed_run: Path) -> None:
    for prefix in ("000", "002"):
        original = seed_text(prefix)
        cleaned = _out(seed_run, prefix)
        assert cleaned == original.strip() + "\n"  # only the trailing blank lines go
    assert not [r for r in _removed(seed_run) if r["id"].startswith(("000", "002"))]


def test_001_drops_related_posts(seed_run: Path) -> None:
    cleaned = _out(seed_run, "001")
    assert "Related Posts" not in cleaned
    assert cleaned.rstrip().endswith("in an increasingly complex security environment.")
    for paragraph in seed_text("001").split("\n\n")[:-1]:
        assert paragraph.strip() in cleaned


def test_003_drops_chinese_fragment_and_repeated_paragraph(seed_run: Path) -> None:
    cleaned = _out(seed_run, "003")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in cleaned)
    assert cleaned.count("China and Russia are committed to sticking to the principle") == 1
    assert cleaned.startswith("China and Russia are committed")  # the breadcrumb prefix went too
    assert "activities.”He said that Russia and China are both" in cleaned
    assert "please visit the ABC Chinese website." in cleaned
    rules = {(r["stage"], r["rule"]) for r in _removed(seed_run) if r["id"].startswith("003")}
    assert ("language", "fragment-han") in rules and ("dedup", "exact-paragraph") in rules


def test_004_drops_comment_form_widgets_source_and_syndication(seed_run: Path) -> None:
    cleaned = _out(seed_run, "004")
    for gone in [
        "Please enter your comment!",
        "Please enter your name here",
        "Most Popular",
        "Recent Comments",
        "Source :",
        "syndicated feed",
        "From the Desk of",
        "Akismet",
        "HomeWorld",
    ]:
        assert gone not in cleaned, gone
    assert cleaned.startswith("Putin in Beijing to Bolster Sino-Russian Strategic Alliance with Xi Jinping\n\n")
    assert cleaned.rstrip().endswith("combine to counter perceived Western decline.")


def test_report_counts_per_stage_and_rule(seed_run: Path) -> None:
    report = json.loads((seed_run / "report.json").read_text(encoding="utf-8"))
    assert [s["stage"] for s in report["stages"]] == [
        "extract",
        "encoding",
        "boilerplate",
        "language",
        "dedup",
        "normalize",
    ]
    assert report["documents"] == {"in": 5, "out": 5, "rejected": 0, "quarantined": 0, "rejected_at_input": {}}
    removed = _removed(seed_run)
    for stage in report["stages"]:
        mine = [r for r in removed if r["stage"] == stage["stage"]]
        assert sum(rule["spans"] for rule in stage["rules"].values()) == len(mine)
        assert sum(rule["characters"] for rule in stage["rules"].values()) == sum(len(r["text"]) for r in mine)
        assert stage["seconds"] >= 0
    boilerplate = report["stages"][2]
    assert boilerplate["rules"]["comment-form"]["lines"] == 3
    assert boilerplate["lines_removed"] >= 10
    assert report["characters"]["in"] - report["characters"]["out"] == report["characters"]["removed"] > 0


def test_output_is_byte_identical_with_two_workers(seed_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out2"
    result = CliRunner().invoke(cli, ["run", str(SEEDS), "-o", str(out), "--workers", "2", "-q"])
    assert result.exit_code == 0, result.output
    for path in sorted(seed_run.iterdir()):
        if path.is_file() and not path.name.startswith("report."):  # reports carry timings
            assert (out / path.name).read_bytes() == path.read_bytes(), path.name


def test_jsonl_corpus_with_workers_matches_serial(tmp_path: Path) -> None:

    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_text(encoding="utf-8").splitlines()[:150]
    src = tmp_path / "cc.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "--workers", str(workers), "-q"])
        assert result.exit_code == 0, result.output
        outs.append({p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith("report.")})
    assert outs[0] == outs[1]
    kept = outs[0]["cc.jsonl"].decode().splitlines()
    assert 0 < len(kept) < 150  # empty and duplicate documents were rejected
    rejected = [json.loads(line) for line in outs[0]["rejected.jsonl"].decode().splitlines()]
    assert len(kept) + len(rejected) == 150
    assert {r["stage"] for r in rejected} >= {"input", "dedup"}


def test_user_stage_runs_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: example_stage:MinWords\n    min_words: 600\n  - stage: normalize\n")
    result = CliRunner().invoke(cli, ["run", str(SEEDS), "-c", str(config), "-o", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 0, result.output
    rejected = [json.loads(line) for line in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert rejected and all(r["stage"] == "min_words" and r["text"] for r in rejected)
    assert len(list((tmp_path / "o").glob("*.txt"))) == 5 - len(rejected)


def test_exit_codes_and_messages(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "input not found" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - stage: boilerplate\n    max_phrase_line_word: 3\n")
    result = runner.invoke(cli, ["run", str(SEEDS), "-c", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "stages[0].max_phrase_line_word: unknown option" in result.output
    assert "did you mean 'max_phrase_line_words'" in result.output
    assert runner.invoke(cli, ["run", "--workers", "0", str(SEEDS)]).exit_code == 2


def test_ray_address_without_the_ray_executor_is_a_usage_error(tmp_path: Path) -> None:
    # It used to be ignored: the run happened on this machine, not on the cluster named.
    result = CliRunner().invoke(cli, ["run", str(SEEDS), "-o", str(tmp_path / "o"), "--ray-address", "auto"])
    assert result.exit_code == 2
    assert (
        result.output == "cleancorpus: error: --ray-address auto needs --executor ray (add it to run on that cluster)\n"
    )
    assert not (tmp_path / "o").exists()


def test_config_input_and_output_are_used_without_arguments(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    out = tmp_path / "from-config"
    config.write_text(f"input: [{SEEDS}]\noutput: {{dir: {out}}}\nstages:\n  - stage: normalize\n")
    result = CliRunner().invoke(cli, ["run", "-c", str(config), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.txt"))) == 2
    assert "2 documents: 2 kept" in result.output


def test_the_summary_says_files_of_the_folder_were_skipped(tmp_path: Path) -> None:
    # A folder of .ndjson / .json.gz exports read nothing and said only "0 files, 0 documents" (exit 0):
    # the skipped files were listed in report.json alone.
    src = tmp_path / "in"
    src.mkdir()
    line = json.dumps({"id": "a", "text": seed_text("000")}) + "\n"
    (src / "a.ndjson").write_text(line, encoding="utf-8")
    (src / "b.json").write_text(line, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"0 files (2 skipped, e.g. {src}/a.ndjson: unsupported file type), 0 documents" in result.output
    (src / "c.jsonl").write_text(line, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "out2")])
    assert "cleancorpus: 1 file (2 skipped, e.g." in result.output and "1 document: 1 kept" in result.output


def test_python_dash_m_is_the_same_app(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "stages"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "dedup: " in proc.stdout


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_user_stage_that_changes_the_record_gives_the_same_output_with_any_worker_count(
    tmp_path: Path, where: str
) -> None:
    # Edits to doc.record came back from worker processes only when... never: a field a stage added was
    # missing with --workers 2. And before boilerplate's first pass, the real pass skipped the stage for
    # documents whose text and metadata it left as they were, losing the field with --workers 1 too.
    src = tmp_path / "in.jsonl"
    with open(CORPORA / "cc-2019-30-dolma" / "docs.jsonl", encoding="utf-8") as fh:
        records = [json.loads(line) for _, line in zip(range(40), fh, strict=False)]
    src.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "url": "u"}) + "\n" for r in records))
    stages = ["encoding", "boilerplate", "dedup", "normalize"]
    stages.insert(0 if where == "first" else len(stages), "example_stage:WordCountField")
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n" + "".join(f"  - stage: {name}\n" for name in stages))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"o{workers}"
        args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", str(workers)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outs.append((out / "in.jsonl").read_bytes())
    assert outs[0] == outs[1]
    kept = [json.loads(line) for line in outs[0].decode().splitlines()]
    assert kept and all(list(r)[:4] == ["id", "text", "url", "words"] for r in kept)
    if where == "last":
        assert all(r["words"] == len(r["text"].split()) for r in kept)


@pytest.mark.parametrize("workers", [1, 2])
def test_stage_with_a_first_pass_sees_the_whole_input(tmp_path: Path, workers: int) -> None:
    src = tmp_path / "in.jsonl"
    texts = ["My Site Header\nFirst article body.", "My Site Header\nSecond body.", "Unique start\nThird."]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: example_stage:RecurringFirstLine\n")
    out = tmp_path / "o"
    args = ["run", str(src), "-c", str(config), "-o", str(out), "-q", "--workers", str(workers)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    got = [json.loads(line)["text"] for line in (out / "in.jsonl").read_text().splitlines()]
    assert got == ["First article body.", "Second body.", "Unique start\nThird."]


def test_nothing_is_lost_on_the_seeds(seed_run: Path) -> None:
    """benchmarks/check_nothing_lost.py: each seed article, its audited spans cut out stage by stage, is its
    output (spaces and Unicode form aside); every span is found where its stage removed it."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "check_nothing_lost.py"), str(SEEDS), "-o", str(seed_run)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["5 documents: 5 kept, 0 rejected", "every document accounted for"]


def test_the_cleancorpus_command_is_the_cli_with_the_collector_paused_for_its_imports() -> None:
    # The console script enters through pipeline.__main__ (as `python -m pipeline` does), which pauses the
    # collector before the CLI's imports; main() keeps it paused while a command sets up.
    import importlib
    import re

    from pipeline import cli as cli_module

    [target] = re.findall(r'(?m)^cleancorpus = "(.+)"$', (REPO / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, name = target.partition(":")
    done = subprocess.run(
        [sys.executable, "-c", f"import gc, {module}; print(gc.isenabled())"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "False", done.stderr
    assert getattr(importlib.import_module(module), name) is cli_module.main
