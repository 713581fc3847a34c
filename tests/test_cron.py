"""Cron operation: incremental runs, persistent dedup state, locking, crash safety, bad input, manners."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from click.testing import CliRunner
from conftest import CORPORA, REPO, SEEDS
from conftest import run_cli as _cli

from pipeline.cli import cli
from pipeline.config import load_config_data
from pipeline.document import Document
from pipeline.runner import run
from pipeline.stages.base import Stage

LIGHT = {"stages": [{"stage": "encoding"}, {"stage": "boilerplate"}, {"stage": "dedup"}, {"stage": "normalize"}]}


def _cc_docs(n: int, start: int = 0) -> list[dict]:
    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[start : start + n]]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output file but the per-run reports (they carry timings) and the state folder."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("report.") and ".cleancorpus" not in p.parts
    }


def _files_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The input files the runner reads from now on (each time it opens one), in order."""
    import pipeline.runner as runner_module

    read: list[str] = []
    original = runner_module.read_documents

    def recording(f: Any, cfg: Any) -> Any:
        read.append(f.rel)
        return original(f, cfg)

    monkeypatch.setattr(runner_module, "read_documents", recording)
    return read


# ---------------------------------------------------------------- incremental runs and dedup state


def test_second_run_processes_only_new_files_and_dedups_against_earlier_runs(tmp_path: Path) -> None:
    config = load_config_data(LIGHT)
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    first = _cc_docs(40)
    _write_jsonl(corpus / "a.jsonl", first[:20])
    _write_jsonl(corpus / "b.jsonl", first[20:])
    result = run(config, [str(corpus)], out)
    assert result.report["inputs"]["processed"] == 2
    kept_a = (out / "a.jsonl").read_bytes()

    # a new file: one exact copy of a kept document, one document sharing a paragraph, fresh ones
    kept_doc = json.loads((out / "a.jsonl").read_text().splitlines()[3])
    paragraph = max(kept_doc["text"].split("\n"), key=len)
    new = [
        {"id": "copy", "text": kept_doc["text"]},
        {"id": "shares-paragraph", "text": paragraph + "\n\n" + _cc_docs(1, start=200)[0]["text"]},
        *_cc_docs(5, start=100),
    ]
    _write_jsonl(corpus / "c.jsonl", new)
    result = run(config, [str(corpus)], out)
    assert result.report["inputs"] == result.report["inputs"] | {"processed": 1, "unchanged_skipped": 2}
    assert (out / "a.jsonl").read_bytes() == kept_a
    rejected = {r["id"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert rejected["copy"]["duplicate_of"] == kept_doc["id"]
    shares = json.loads((out / "c.jsonl").read_text().splitlines()[0])
    assert shares["id"] == "shares-paragraph" and paragraph not in shares["text"]
    removed = [json.loads(x) for x in (out / "removed.jsonl").read_text().splitlines()]
    assert any(r["id"] == "shares-paragraph" and r["duplicate_of"] == kept_doc["id"] for r in removed)

    # the audit files hold every run's records, once
    ids = [r["id"] for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())]
    assert len(ids) == len(set(ids))


def test_incremental_result_equals_one_run_over_everything(tmp_path: Path) -> None:
    config = load_config_data(LIGHT)
    docs = _cc_docs(60)
    for i in range(3):
        _write_jsonl(tmp_path / "all" / f"part{i}.jsonl", docs[i * 20 : (i + 1) * 20])
        _write_jsonl(tmp_path / "grow" / f"part{i}.jsonl", docs[i * 20 : (i + 1) * 20])
        run(config, [str(tmp_path / "grow")], tmp_path / "out-grow")  # one new file per run
    run(config, [str(tmp_path / "all")], tmp_path / "out-all")
    assert _outputs(tmp_path / "out-grow") == _outputs(tmp_path / "out-all")


def _add_and_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Any, name: str, records: list[dict]
) -> tuple[list[str], Any]:
    """Add input file ``name`` to tmp_path/in and run again into tmp_path/out: the files read (``_files_read``)
    and the result. The outputs must equal those of one run over every file."""
    _write_jsonl(tmp_path / "in" / name, records)
    read = _files_read(monkeypatch)
    result = run(config, [str(tmp_path / "in")], tmp_path / "out")
    monkeypatch.undo()
    run(config, [str(tmp_path / "in")], tmp_path / "out-all")
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "out-all")
    return read, result


def test_unchanged_files_are_not_read_again_for_the_first_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Boilerplate's first pass counts lines over every input file; an earlier run kept what it learnt
    # from each file (its line hashes), so a cron run reads only what is new, and learns the same.
    config = load_config_data(LIGHT)
    docs = _cc_docs(40)
    for i in range(3):
        _write_jsonl(tmp_path / "in" / f"part{i}.jsonl", docs[i * 10 : (i + 1) * 10])
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    read, result = _add_and_run_again(tmp_path, monkeypatch, config, "part3.jsonl", docs[30:])
    assert read == ["part3.jsonl", "part3.jsonl"]  # the first pass and the real pass: only the new file
    assert result.report["inputs"]["unchanged_skipped"] == 3


# Run in a fresh process: the compiled kernels (numba dispatchers) that have code loaded at exit.
_LOADED_KERNELS = """
import atexit, sys
from numba.core.dispatcher import Dispatcher

def loaded():
    mods = [m for n, m in list(sys.modules.items()) if n.startswith("pipeline.stages.") and n.endswith("kernels")]
    found = sorted(
        f"{m.__name__}.{k}" for m in mods for k, v in vars(m).items() if isinstance(v, Dispatcher) and v.overloads
    )
    print("loaded:", ",".join(found))
    heavy = ("charset_normalizer", "pyarrow", "pandas", "trafilatura", "lxml", "rich", "ray", "datasketch", "fastwarc")
    print("imported:", ",".join(sorted(m for m in heavy if m in sys.modules)))

atexit.register(loaded)
from pipeline.cli import main
sys.argv[0] = "cleancorpus"
main()
"""


def test_a_run_with_nothing_new_loads_no_compiled_code_and_no_run_imports_what_it_does_not_need(tmp_path: Path) -> None:
    # A cron run that finds nothing new builds its stages (checking the config file's) but runs them on nothing:
    # numba's cached code (its first load ~70 ms of a ~0.5 s run) is loaded when a document needs it, not then.
    config = tmp_path / "c.yaml"
    config.write_text(orjson.dumps(LIGHT).decode(), encoding="utf-8")  # (JSON is YAML)
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(3))
    args = [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-c", str(config)]

    def kernels_loaded() -> list[str]:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
        done = subprocess.run(
            [sys.executable, "-c", _LOADED_KERNELS, "run", *args, "-q"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        # (Nor does either run import what only some inputs, outputs or options need: UTF-8 JSONL in and out.)
        assert done.stdout.split("imported:", 1)[1].strip() == ""
        return done.stdout.split("loaded:", 1)[1].split("imported:")[0].strip().split(",")

    assert "pipeline.stages.boilerplate_kernels.leaf_of_tests" in kernels_loaded()  # a run with something to do
    assert kernels_loaded() == [""]  # the same again: nothing new


def test_a_run_with_nothing_new_loads_no_state_and_leaves_the_audit_files_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cron run that finds nothing new or changed: the dedup index (it grows with the archive) and the first
    # pass's parts are not loaded, no input is read, and rejected.jsonl / removed.jsonl are not copied again
    # from their parts; a missing audit file or a part changed since the last assembly is assembled again.
    import pipeline.runner as runner_module
    from pipeline.stages.boilerplate import BoilerplateStage
    from pipeline.stages.dedup import DedupStage

    config = load_config_data(LIGHT)
    docs = _cc_docs(30)
    for i in range(3):
        _write_jsonl(tmp_path / "in" / f"part{i}.jsonl", docs[i * 10 : (i + 1) * 10])
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    before = _outputs(tmp_path / "out")
    audit = {k: tmp_path / "out" / f"{k}.jsonl" for k in ("rejected", "removed")}
    times = {k: p.stat().st_mtime_ns for k, p in audit.items()}
    assert audit["removed"].stat().st_size > 0
    page = (tmp_path / "out" / "report.html").read_bytes()

    loaded: list[str] = []
    monkeypatch.setattr(DedupStage, "load_state", lambda self, rows: loaded.append("dedup"))
    monkeypatch.setattr(BoilerplateStage, "unpack_parts", lambda self, payload: loaded.append("parts") or [])
    read = _files_read(monkeypatch)
    assembled: list[bool] = []
    assemble = runner_module._assemble_audit
    monkeypatch.setattr(
        runner_module, "_assemble_audit", lambda *a, **k: assembled.append(k.get("reuse", False)) or assemble(*a, **k)
    )
    result = run(config, [str(tmp_path / "in")], tmp_path / "out")
    assert result.report["inputs"] == result.report["inputs"] | {"processed": 0, "unchanged_skipped": 3}
    assert loaded == [] and read == [] and assembled == [True]
    assert {k: p.stat().st_mtime_ns for k, p in audit.items()} == times  # not written again
    assert _outputs(tmp_path / "out") == before
    # report.html still shows the run that did work (an hourly cron job's page was otherwise empty)
    assert (tmp_path / "out" / "report.html").read_bytes() == page

    audit["removed"].unlink()  # a missing audit file comes back, the same
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    assert _outputs(tmp_path / "out") == before
    part = next((tmp_path / "out" / ".cleancorpus" / "audit").glob("*.removed.jsonl"))
    records = zstandard.ZstdDecompressor().stream_reader(part.read_bytes(), read_across_frames=True).read()
    part.write_bytes(zstandard.compress(records + b"{}\n"))  # a part newer than the assembly (a killed run's)
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    assert audit["removed"].read_bytes().count(b"{}\n") == 1


def test_audit_parts_are_compressed_and_plain_parts_of_earlier_versions_still_assemble(tmp_path: Path) -> None:
    # The state folder's audit parts (a second copy of removed.jsonl, to assemble it again when a file changes)
    # are zstd-compressed; a folder whose parts were written plain by an earlier version assembles the same
    # files; a damaged part is a clear error naming it (exit 2), not a traceback.
    config = load_config_data(LIGHT)
    docs = _cc_docs(30)
    for i in range(3):
        _write_jsonl(tmp_path / "in" / f"part{i}.jsonl", docs[i * 10 : (i + 1) * 10])
    out = tmp_path / "out"
    run(config, [str(tmp_path / "in")], out)
    removed = (out / "removed.jsonl").read_bytes()
    parts = sorted((out / ".cleancorpus" / "audit").glob("*.removed.jsonl"))
    assert len(parts) == 3 and all(p.read_bytes()[:4] == b"\x28\xb5\x2f\xfd" for p in parts)
    plain = [zstandard.ZstdDecompressor().stream_reader(p.read_bytes()).read() for p in parts]
    assert b"".join(plain) == removed and sum(p.stat().st_size for p in parts) * 3 < len(removed)
    for part, records in zip(parts, plain, strict=True):
        part.write_bytes(records)  # as an earlier version left them
    (out / "removed.jsonl").unlink()
    run(config, [str(tmp_path / "in")], out)
    assert (out / "removed.jsonl").read_bytes() == removed
    parts[1].write_bytes(zstandard.compress(plain[1])[:-9])  # cut short
    (out / "removed.jsonl").unlink()
    (tmp_path / "light.yaml").write_text(json.dumps(LIGHT))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-c", str(tmp_path / "light.yaml")])
    assert result.exit_code == 2, result.output
    assert "audit part" in result.output and parts[1].name in result.output and "Traceback" not in result.output


def test_removed_parts_are_compressed_with_their_own_zstd_parameters(tmp_path: Path) -> None:
    # The removed parts are compressed with runner._REMOVED_PART_ZSTD (level 1's parameters with a smaller hash
    # table, for speed): the part is the stream of exactly those parameters over the file's removed records,
    # which it gives back whole, and not what level 1 makes of them (so the parameters are the ones used).
    from pipeline import runner as runner_module

    # (rejected.jsonl's parts, small, stay at level 1)
    config = load_config_data(LIGHT)
    docs = _cc_docs(60)
    docs[7]["text"] = ""  # rejected: a rejected part too
    _write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    out = tmp_path / "out"
    run(config, [str(tmp_path / "in")], out)
    removed, rejected = ((out / f"{kind}.jsonl").read_bytes() for kind in ("removed", "rejected"))
    part = (out / ".cleancorpus" / "audit" / "a.jsonl.removed.jsonl").read_bytes()
    assert len(removed) > 100_000 and zstandard.ZstdDecompressor().stream_reader(part).read() == removed

    def streamed(compressor: zstandard.ZstdCompressor, records: bytes) -> bytes:
        buffer = io.BytesIO()
        with compressor.stream_writer(buffer, closefd=False) as writer:
            writer.write(records)
        return buffer.getvalue()

    assert streamed(zstandard.ZstdCompressor(compression_params=runner_module._REMOVED_PART_ZSTD), removed) == part
    assert streamed(zstandard.ZstdCompressor(level=1), removed) != part
    rejected_part = (out / ".cleancorpus" / "audit" / "a.jsonl.rejected.jsonl").read_bytes()
    assert rejected and streamed(zstandard.ZstdCompressor(level=1), rejected) == rejected_part


def test_new_files_named_after_the_recorded_ones_are_appended_to_the_audit_files(tmp_path: Path) -> None:
    # A cron job's new files (named by date) come after the recorded ones: their audit records are appended
    # to removed.jsonl and rejected.jsonl, which are not written again whole; the result is that of one run.
    config = load_config_data(LIGHT)
    docs = _cc_docs(40)
    docs[31]["text"] = ""  # rejected: the new file has rejected.jsonl records too
    src, out, every = tmp_path / "in", tmp_path / "out", tmp_path / "every"
    for i in range(3):
        _write_jsonl(src / f"2026-11-0{i + 1}.jsonl", docs[i * 10 : (i + 1) * 10])
    run(config, [str(src)], out)
    audit = {k: out / f"{k}.jsonl" for k in ("rejected", "removed")}
    before = {k: (p.stat().st_ino, p.read_bytes()) for k, p in audit.items()}
    _write_jsonl(src / "2026-11-04.jsonl", docs[30:])
    run(config, [str(src)], out)
    run(config, [str(src)], every)
    assert _outputs(out) == _outputs(every)
    for kind, path in audit.items():
        inode, old = before[kind]
        assert path.stat().st_ino == inode and path.read_bytes().startswith(old)  # appended in place
        assert len(path.read_bytes()) > len(old), kind

    # a new file named before the others: its records go in the middle, so the files are written anew
    _write_jsonl(src / "2026-10-31.jsonl", [{**d, "id": f"early-{d['id']}"} for d in _cc_docs(8, start=50)])
    run(config, [str(src)], out)
    run(config, [str(src)], every)
    assert _outputs(out) == _outputs(every)
    assert audit["removed"].stat().st_ino != before["removed"][0]


def test_a_run_killed_while_appending_to_the_audit_files_is_mended_by_the_next(tmp_path: Path) -> None:
    src, out, every, config = tmp_path / "in", tmp_path / "out", tmp_path / "every", tmp_path / "light.yaml"
    config.write_text(json.dumps(LIGHT))
    docs = _cc_docs(40)
    for i in range(3):
        _write_jsonl(src / f"part{i}.jsonl", docs[i * 10 : (i + 1) * 10])
    assert _cli("run", str(src), "-o", str(out), "-c", str(config), "-q").returncode == 0
    _write_jsonl(src / "part3.jsonl", docs[30:])
    killed = _cli(
        "run", str(src), "-o", str(out), "-c", str(config), "-q", env={"CLEANCORPUS_CRASH_AT": "audit-appended:1"}
    )
    assert killed.returncode == -signal.SIGKILL
    assert _cli("run", str(src), "-o", str(out), "-c", str(config), "-q").returncode == 0  # nothing new to process
    assert _cli("run", str(src), "-o", str(every), "-c", str(config), "-q").returncode == 0
    assert _outputs(out) == _outputs(every)


def test_a_file_whose_first_pass_parts_are_too_large_to_hold_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Memory stays bounded however large one input file is: its parts are not held (nor kept) past the cap.
    import pipeline.runner as runner_module

    monkeypatch.setattr(runner_module.FirstPassCache, "max_file_bytes", 20_000)
    config = load_config_data(LIGHT)
    docs = _cc_docs(40)
    _write_jsonl(tmp_path / "in" / "big.jsonl", docs[:30])  # parts above the cap
    _write_jsonl(tmp_path / "in" / "small.jsonl", docs[30:32])  # below it
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    read, _ = _add_and_run_again(tmp_path, monkeypatch, config, "zzz.jsonl", docs[32:])
    assert read == ["big.jsonl", "zzz.jsonl", "zzz.jsonl"]  # small.jsonl's parts came from the state


def test_a_file_with_the_recorded_size_and_time_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.runner as runner_module

    config = load_config_data(LIGHT)
    docs = _cc_docs(25)
    src, out = tmp_path / "in", tmp_path / "out"
    _write_jsonl(src / "a.jsonl", docs[:10])
    _write_jsonl(src / "b.jsonl", docs[10:20])
    hour_ago = time.time() - 3600

    def age(*names: str, when: float = hour_ago) -> None:
        for name in names:
            os.utime(src / name, (when, when))

    age("a.jsonl", "b.jsonl")
    run(config, [str(src)], out)
    hashed: list[str] = []
    original = runner_module.file_hash

    def recording(path: Path) -> str:
        hashed.append(path.name)
        return original(path)

    monkeypatch.setattr(runner_module, "file_hash", recording)
    _write_jsonl(src / "a.jsonl", docs[:9])  # edited now: a new time
    _write_jsonl(src / "c.jsonl", docs[20:])  # new
    result = run(config, [str(src)], out)
    assert sorted(hashed) == ["a.jsonl", "c.jsonl"]  # b was not read: same size and time as recorded
    assert (result.report["inputs"]["changed"], result.report["inputs"]["unchanged_skipped"]) == (1, 1)
    # a and c were modified moments before they were hashed: their times are not trusted, they are read again
    hashed.clear()
    run(config, [str(src)], out)
    assert sorted(hashed) == ["a.jsonl", "c.jsonl"]
    # Touched, same content: read once, found unchanged, the new time kept; then not read again.
    age("a.jsonl", "b.jsonl", "c.jsonl", when=hour_ago + 60)
    hashed.clear()
    result = run(config, [str(src)], out)
    assert sorted(hashed) == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert result.report["inputs"]["unchanged_skipped"] == 3
    hashed.clear()
    run(config, [str(src)], out)
    assert hashed == []


def test_changed_file_is_processed_again_without_deduping_against_its_old_self(tmp_path: Path) -> None:
    config = load_config_data(LIGHT)
    docs = _cc_docs(10)
    _write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    run(config, [str(tmp_path / "in")], tmp_path / "out")
    before = _ids(tmp_path / "out" / "a.jsonl")
    _write_jsonl(tmp_path / "in" / "a.jsonl", [*docs, {"id": "added", "text": "A brand new document text here."}])
    result = run(config, [str(tmp_path / "in")], tmp_path / "out")
    assert result.report["inputs"]["changed"] == 1
    assert _ids(tmp_path / "out" / "a.jsonl") == [*before, "added"]


def test_config_change_needs_rebuild(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Some text   here.", encoding="utf-8")
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n    collapse_spaces: false\n")
    result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-c", str(config)])
    assert result.exit_code == 2
    assert "config changed" in result.output and "--rebuild" in result.output
    result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-c", str(config), "--rebuild"])
    assert result.exit_code == 0, result.output
    assert (out / "a.txt").read_text(encoding="utf-8") == "Some text   here.\n"


def test_a_changed_output_format_is_a_config_change_named_in_the_error(tmp_path: Path) -> None:
    from pipeline.config import ConfigError

    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(3))
    out = tmp_path / "out"
    run(load_config_data({"stages": [{"stage": "normalize"}]}), [str(tmp_path / "in")], out)
    _write_jsonl(tmp_path / "in" / "b.jsonl", _cc_docs(3, start=3))
    for changed, key in (
        ({"output": {"format": "parquet"}}, "output.format"),
        ({"output": {"metadata_field": "meta"}}, "output.metadata_field"),
        ({"input": {"max_doc_chars": 1000}}, "input.max_doc_chars"),
        ({"stages": [{"stage": "normalize", "max_blank_lines": 0}]}, "stages[0].max_blank_lines (normalize)"),
    ):
        with pytest.raises(ConfigError, match=rf"config changed \({re.escape(key)}\).*--rebuild"):
            run(load_config_data({"stages": [{"stage": "normalize"}], **changed}), [str(tmp_path / "in")], out)
    assert sorted(p.name for p in out.glob("*.jsonl*")) == ["a.jsonl", "rejected.jsonl", "removed.jsonl"]
    # What does not change results is no config change: where files are, whether audit files are written.
    run(load_config_data({"stages": [{"stage": "normalize"}], "output": {"audit": False}}), [str(tmp_path / "in")], out)


def test_options_a_new_version_added_are_named_as_such_not_as_a_config_change(tmp_path: Path) -> None:
    """A cron job's config did not change, but the new version's dedup has options that change results (as
    short_words came in session 15): the stop said "the config changed", which the user had not touched."""
    import sqlite3

    from pipeline.config import ConfigError

    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(3))
    out = tmp_path / "out"
    config = load_config_data({"stages": [{"stage": "dedup"}]})
    run(config, [str(tmp_path / "in")], out)
    db = sqlite3.connect(out / ".cleancorpus" / "state.sqlite")
    (recorded,) = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    older = json.loads(recorded)
    del older["stages"][0]["short_words"]  # as recorded by a version without the option
    db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(older),))
    db.execute("UPDATE meta SET value = 'older' WHERE key = 'config_hash'")
    db.commit()
    db.close()
    _write_jsonl(tmp_path / "in" / "b.jsonl", _cc_docs(3, start=3))
    key = "stages[0].short_words (dedup, new in this version)"
    with pytest.raises(
        ConfigError,
        match=rf"^this version of cleancorpus has options that change results \({re.escape(key)}\).*--rebuild",
    ):
        run(config, [str(tmp_path / "in")], out)


def test_an_edited_pattern_file_is_a_config_change(tmp_path: Path) -> None:
    """The config names a pattern pack by path; editing the pack changes what is removed. It went unnoticed:
    an incremental run cleaned the new file with the new pack and kept the old file's output of the old one."""
    from pipeline.config import ConfigError

    (tmp_path / "in").mkdir()
    text = "Sponsored content\nThe harbour authority approved a plan to dredge the channel.\nSpecial offer today\n"
    (tmp_path / "in" / "a.txt").write_text(text, encoding="utf-8")
    pack = tmp_path / "pack.yaml"
    pack.write_text("rules:\n  sponsor:\n    lines: [sponsored content]\n", encoding="utf-8")
    config = {"stages": [{"stage": "boilerplate", "pattern_files": [str(pack)]}]}
    out = tmp_path / "out"
    run(load_config_data(config), [str(tmp_path / "in")], out)
    assert "Special offer today" in (out / "a.txt").read_text(encoding="utf-8")
    pack.write_text("rules:\n  sponsor:\n    lines: [sponsored content, special offer today]\n", encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_text(text, encoding="utf-8")
    key = "stages[0].pattern_files (boilerplate)"
    with pytest.raises(ConfigError, match=rf"config changed \({re.escape(key)}\).*--rebuild"):
        run(load_config_data(config), [str(tmp_path / "in")], out)
    run(load_config_data(config), [str(tmp_path / "in")], out, rebuild=True)
    for name in ("a.txt", "b.txt"):
        assert (out / name).read_text(encoding="utf-8").strip() == text.splitlines()[1]


def test_config_hash_of_a_config_without_output_format_is_the_one_earlier_versions_recorded() -> None:
    import hashlib

    from pipeline.config import default_config
    from pipeline.state import config_hash

    dump = default_config().dump()
    earlier = {
        "input": {k: v for k, v in dump["input"].items() if k != "paths"},
        "metadata_field": None,
        "stages": [s for s in dump["stages"] if s.get("enabled", True)],
    }
    digest = hashlib.sha256(orjson.dumps(earlier, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    assert config_hash(dump) == digest  # a state made before output.format was hashed is not taken for changed


@pytest.mark.parametrize("recorded_by", ["this version", "an earlier version"])
def test_rebuild_with_another_output_format_removes_the_outputs_of_the_old_one(
    tmp_path: Path, recorded_by: str
) -> None:
    import sqlite3

    docs = _cc_docs(6)
    _write_jsonl(tmp_path / "in" / "a.jsonl", docs[:3])
    _write_jsonl(tmp_path / "in" / "b.jsonl", docs[3:])
    inputs = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    out = tmp_path / "out"
    stages = {"stages": [{"stage": "normalize"}]}
    run(load_config_data(stages), [str(tmp_path / "in")], out)
    (out / "notes.jsonl.parquet").write_bytes(b"not ours")  # a file of the user's, named like an output
    if recorded_by == "an earlier version":  # which kept no output names
        con = sqlite3.connect(out / ".cleancorpus" / "state.sqlite")
        con.execute("UPDATE files SET output = ''")
        con.commit()
        con.close()
    for fmt in ("parquet", "txt"):
        result = run(load_config_data({**stages, "output": {"format": fmt}}), [str(tmp_path / "in")], out, rebuild=True)
        assert sorted(p.name for p in out.iterdir() if p.name.startswith(("a.", "b."))) == [
            f"a.jsonl.{fmt}",
            f"b.jsonl.{fmt}",
        ]
        before = "" if fmt == "parquet" else ".parquet"
        assert result.report["inputs"]["removed_outputs"] == [f"a.jsonl{before}", f"b.jsonl{before}"]
    assert (out / "notes.jsonl.parquet").read_bytes() == b"not ours"
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == inputs  # never touched
    # Back to the input's format: the outputs of the run before go, the new ones are those of a first run.
    run(load_config_data(stages), [str(tmp_path / "in")], out, rebuild=True)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("a.", "b."))) == ["a.jsonl", "b.jsonl"]
    assert _ids(out / "a.jsonl") == [d["id"] for d in docs[:3]]


def test_a_limit_trial_reports_only_the_files_it_read(tmp_path: Path) -> None:
    docs = _cc_docs(25)
    for i in range(5):
        _write_jsonl(tmp_path / "in" / f"part{i}.jsonl", docs[i * 5 : i * 5 + 5])
    sizes = [(tmp_path / "in" / f"part{i}.jsonl").stat().st_size for i in range(5)]
    (tmp_path / "c.yaml").write_text("stages:\n  - stage: normalize\n")
    runner = CliRunner()
    for limit, read in ((7, 2), (10, 2), (0, 0), (100, 5)):
        out = tmp_path / f"out{limit}"
        result = runner.invoke(
            cli, ["run", str(tmp_path / "in"), "-o", str(out), "--limit", str(limit), "-c", str(tmp_path / "c.yaml")]
        )
        assert result.exit_code == 0, result.output
        inputs = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"]
        assert (inputs["files"], inputs["processed"], inputs["bytes"]) == (5, read, sum(sizes[:read]))  # (before: 5)
        summary = f"{read} of 5 files read (--limit {limit})" if read < 5 else "5 files,"
        assert result.output.startswith(f"cleancorpus: {summary}"), result.output
        assert sorted(p.name for p in out.glob("part*")) == [f"part{i}.jsonl" for i in range(read)]


def test_state_info_and_reset(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(8))
    out = tmp_path / "out"
    runner = CliRunner()
    runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"])
    info = runner.invoke(cli, ["state", "info", "-o", str(out)])
    assert info.exit_code == 0 and "files: 1" in info.output and "documents: 8" in info.output
    # The dedup index's size, as the help says (it printed a Python dict of row counts), and the database's.
    assert re.search(r"^dedup_index: 1 file, \d+\.\d MB$", info.output, re.M), info.output
    assert re.search(r"^bytes: \d+ \(\d+\.\d MB of state database\)$", info.output, re.M), info.output
    for answer in ("n\n", ""):  # declined, or no answer (end of input): before, exit 1 (and "Aborted!")
        result = runner.invoke(cli, ["state", "reset", "-o", str(out)], input=answer)
        assert result.exit_code == 0 and "nothing reset" in result.output, result.output
        assert "files: 1" in runner.invoke(cli, ["state", "info", "-o", str(out)]).output
    assert runner.invoke(cli, ["state", "reset", "-o", str(out), "--yes"]).exit_code == 0
    assert "no state" in runner.invoke(cli, ["state", "info", "-o", str(out)]).output
    result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out)])
    assert "1 file, 8 documents" in result.output  # processed again from scratch


def _damage(db: Path, kind: str) -> None:
    """Damage a state database as a crash, a full disk or a stray write would."""
    if kind == "garbage":
        db.write_bytes(b"x\n")
    elif kind == "empty":
        db.write_bytes(b"")
    elif kind == "truncated":
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    else:  # a page of the files table overwritten: the header and the schema are sound
        (root,) = sqlite3_rows(db, "SELECT rootpage FROM sqlite_master WHERE name = 'files'")
        with open(db, "r+b") as fh:
            fh.seek((root[0] - 1) * 4096)
            fh.write(b"\xff" * 4096)


def _lock_holder(folder: Path, take: str, name: str) -> subprocess.Popen:
    """Another process holding the state folder's lock (``take``: statements that take it and keep what
    holds it in a variable, with ``name`` imported from pipeline.state); it prints 'locked' once it holds
    it, then sleeps."""
    code = (
        f"import sys, time; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        f"from pipeline.state import {name}; {take}; print('locked', flush=True); time.sleep(60)"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(REPO), str(folder)], stdout=subprocess.PIPE, text=True)


def sqlite3_rows(db: Path, query: str) -> list[tuple]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("recovery", ["state reset", "run --rebuild"])
@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "bad page"])
def test_a_damaged_state_database_is_named_and_set_aside_by_reset_or_rebuild(
    tmp_path: Path, kind: str, recovery: str
) -> None:
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(8))
    out = tmp_path / "out"
    db = out / ".cleancorpus" / "state.sqlite"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    _damage(db, kind)
    damaged = db.read_bytes()
    for args in (
        ["run", str(tmp_path / "in"), "-o", str(out), "-q"],
        ["state", "info", "-o", str(out)],
        ["explain", "some-id", "-o", str(out)],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert f"the state database {db} is damaged" in result.output
        assert f"cleancorpus state reset -o {out}" in result.output and "--rebuild" in result.output
    assert db.read_bytes() == damaged  # reported, not touched

    if recovery == "state reset":
        result = runner.invoke(cli, ["state", "reset", "-o", str(out), "--yes"])
        assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
        assert "the damaged state database was kept as" in result.output
        result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"])
        assert result.exit_code == 0 and result.output == "", result.output
    else:
        result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q", "--rebuild"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"cleancorpus: the damaged state database {db} was set aside as ")
        assert result.output.count("\n") == 1  # quiet but for that
    (aside,) = db.parent.glob("state.sqlite.corrupt-*")
    assert aside.read_bytes() == damaged
    info = runner.invoke(cli, ["state", "info", "-o", str(out)])
    assert info.exit_code == 0 and "files: 1" in info.output and "documents: 8" in info.output


def test_a_dedup_index_hashed_another_way_is_a_clear_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A state written by a version that hashed exact keys otherwise (an upgrade): the next run with a new file
    # said "run failed: ValueError: ..." with the whole parameter dict, exit 1.
    from pipeline.stages import dedup as dedup_module

    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(8))
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    monkeypatch.setattr(dedup_module, "HASH_SCHEME", {**dedup_module.HASH_SCHEME, "exact_key": "another"})
    _write_jsonl(tmp_path / "in" / "b.jsonl", _cc_docs(4, start=8))
    result = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"])
    assert result.exit_code == 2, result.output
    assert "other hashing (exact_key:" in result.output and "--rebuild" in result.output
    assert "ValueError" not in result.output and "Traceback" not in result.output
    rebuilt = runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output


def test_state_info_after_a_limit_trial_says_there_is_no_state(tmp_path: Path) -> None:
    # A --limit trial records nothing: state info printed "config_hash: None" and zeros.
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(8))
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q", "--limit", "3"]).exit_code == 0
    info = runner.invoke(cli, ["state", "info", "-o", str(out)])
    assert info.exit_code == 0 and info.output.startswith("no state in ") and "None" not in info.output


def test_setting_a_damaged_database_aside_takes_its_side_files_and_waits_for_the_lock(tmp_path: Path) -> None:
    # SQLite's -wal and -shm files belong to the database: left under their names, a new database would
    # read the old one's log. And no run may find its database moved from under it: a reset or a rebuild
    # moves it only while holding the run lock.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Hello there.", encoding="utf-8")
    out = tmp_path / "out"
    folder = out / ".cleancorpus"
    assert _cli("run", str(tmp_path / "in"), "-o", str(out), "-q").returncode == 0
    files = {
        name: f"{name} of a damaged database".encode()
        for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm")
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    holder = _lock_holder(folder, "held = run_lock(Path(sys.argv[2])); held.__enter__()", "run_lock")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for args in (
            ("state", "reset", "-o", str(out), "--yes"),
            ("run", str(tmp_path / "in"), "-o", str(out), "--rebuild"),
        ):
            busy = _cli(*args)
            assert busy.returncode == 75 and f"pid {holder.pid}" in busy.stderr, busy.stderr
        assert {p.name: p.read_bytes() for p in folder.glob("state.sqlite*")} == files
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    reset = _cli("state", "reset", "-o", str(out), "--yes")
    assert reset.returncode == 0, reset.stderr
    (aside,) = folder.glob("state.sqlite.corrupt-*[0-9Z]")
    assert {p.name.replace(aside.name, "state.sqlite"): p.read_bytes() for p in folder.glob("state.sqlite*")} == files
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["lock", *(f"{aside.name}{s}" for s in ("", "-wal", "-shm"))]
    )


def test_a_new_state_database_is_never_seen_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty state.sqlite counts as damage, so a database being made must not be visible before it has
    # its header: it is made under another name and linked into place.
    import pipeline.state as state_module

    seen: list[bool] = []
    original = state_module.sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((tmp_path / "state" / "state.sqlite").exists())
        return original(path, *args, **kwargs)

    monkeypatch.setattr(state_module.sqlite3, "connect", connect)
    state_module.StateStore(tmp_path / "state").close()
    assert seen == [False, True]  # made elsewhere, then opened where it belongs
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["state.sqlite"]
    state_module.StateStore(tmp_path / "state").close()  # and opened again as it is


# ---------------------------------------------------------------- locking


def test_replacing_a_files_state_rows_finds_them_by_index_also_in_an_older_state_folder(tmp_path: Path) -> None:
    # commit_file deletes a file's rows of every stage; by a table scan, recording a folder of many
    # files was quadratic (20 ms a file once 20,000 were recorded). A state folder made before the
    # index existed gets it when opened.
    import sqlite3

    from pipeline.state import StateStore

    folder = tmp_path / "state"
    StateStore(folder).close()
    old = sqlite3.connect(folder / "state.sqlite")
    old.execute("DROP INDEX stage_rows_by_file")
    old.commit()
    old.close()
    store = StateStore(folder)
    plan = store.db.execute("EXPLAIN QUERY PLAN DELETE FROM stage_rows WHERE source = ?", ("a.txt",)).fetchall()
    assert "USING INDEX stage_rows_by_file" in " ".join(str(row[-1]) for row in plan)
    store.close()


def test_stage_rows_come_oldest_first_without_sorting_their_payloads(tmp_path: Path) -> None:
    """A stage's rows, in the order they were saved (also across files recorded again), the left-out
    sources' payloads not returned; the payloads themselves are never sorted (a temporary copy of the
    whole dedup index) nor read for left-out sources."""
    from pipeline.state import FileRecord, StateStore

    store = StateStore(tmp_path / "state")
    for source in ("b.txt", "a.txt", "c.txt", "a.txt"):  # a.txt again: its rows replaced, now the newest
        rows = [("4:dedup", f"{source}-{i}".encode()) for i in range(2)] + [("1:other", b"x")]
        store.commit_file(FileRecord(source, source, 1, "h", "c"), rows)
    got = [(source, payload.decode()) for source, payload in store.stage_rows("4:dedup", {"c.txt"})]
    assert got == [("b.txt", "b.txt-0"), ("b.txt", "b.txt-1"), ("a.txt", "a.txt-0"), ("a.txt", "a.txt-1")]
    plans = []
    store.db.set_trace_callback(plans.append)
    list(store.stage_rows("4:dedup", {"c.txt"}))
    store.db.set_trace_callback(None)
    for query in {q for q in plans if "ORDER BY" in q}:
        plan = " ".join(str(row[-1]) for row in store.db.execute(f"EXPLAIN QUERY PLAN {query}").fetchall())
        assert "COVERING INDEX" in plan, plan  # ordered from the index alone, not the rows
    assert sum("WHERE id" in q for q in plans) == 4  # the payloads of b.txt and a.txt only
    store.close()


def test_the_dedup_tables_are_sized_from_the_saved_rows_headers_alone(tmp_path: Path) -> None:
    # Sizing the tables read every payload whole from the database (127 MB for a 200 MB archive) for the
    # few bytes of their headers; StageRows.blobs lets it read just those, for rows of either format.
    from test_dedup import _as_npz

    from pipeline.stages.dedup import DedupStage, array_shapes
    from pipeline.state import FileRecord, StateStore

    stage = DedupStage()
    for i, record in enumerate(_cc_docs(30)):
        stage.process(Document(record["id"], record["text"], "a.jsonl" if i < 20 else "b.jsonl"))
    store = StateStore(tmp_path / "state")
    store.commit_file(
        FileRecord("a.jsonl", "a.jsonl", 1, "h", "c"), [("4:dedup", p) for p in stage.pop_state("a.jsonl")]
    )
    old = [("4:dedup", _as_npz(p)) for p in stage.pop_state("b.jsonl")]  # saved by an earlier version
    store.commit_file(FileRecord("b.jsonl", "b.jsonl", 1, "h", "c"), old)
    rows = store.stage_rows("4:dedup", set())
    assert [blob.read() for blob in rows.blobs()] == [payload for _, payload in rows]
    read: list[int] = []
    sized, listed = DedupStage(), DedupStage()
    sized._reserve_for(rows)
    listed._reserve_for(list(rows))  # (a list of payloads has no blobs: read whole)
    for a, b in ((sized.exact, listed.exact), (sized.units.buckets, listed.units.buckets)):
        assert a.slot_keys.size == b.slot_keys.size > 1024
    payload_bytes = sum(len(p) for _, p in rows)
    for blob in rows.blobs():  # what sizing reads of a row in the current format: its header
        if blob.read(2) != b"PK":
            blob.seek(0)
            array_shapes(blob, ["keys"])
            read.append(blob.tell())
    assert read and sum(read) < payload_bytes / 4
    store.close()


def test_the_index_loads_beside_the_first_pass_and_its_errors_end_the_run(tmp_path: Path) -> None:
    # What earlier runs learnt loads in a thread while the first pass goes on: a row it cannot read still
    # ends the run with one line (not a hang, not a run without the index).
    import sqlite3

    src, out = tmp_path / "in", tmp_path / "out"
    docs = _cc_docs(30)
    _write_jsonl(src / "a.jsonl", docs[:20])
    assert _cli("run", str(src), "-o", str(out), "-q").returncode == 0
    _write_jsonl(src / "b.jsonl", docs[:3] + docs[20:])  # three copies of a.jsonl's documents
    good = tmp_path / "good"
    shutil.copytree(out, good)
    assert _cli("run", str(src), "-o", str(good), "-q").returncode == 0
    rejected = [json.loads(line) for line in (good / "rejected.jsonl").read_text().splitlines()]
    assert sum(r["source"] == "b.jsonl" and r["stage"] == "dedup" for r in rejected) >= 3  # the index was there
    db = sqlite3.connect(out / ".cleancorpus" / "state.sqlite")
    db.execute("UPDATE stage_rows SET payload = x'00112233' WHERE stage LIKE '%dedup'")
    db.commit()
    db.close()
    failed = _cli("run", str(src), "-o", str(out), "-q")
    assert failed.returncode == 1 and "not a dedup state row" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr and not (out / "b.jsonl").exists()


def test_a_state_folder_recorded_before_file_times_were_kept_opens_and_reads_its_files(tmp_path: Path) -> None:
    import sqlite3

    from pipeline.state import StateStore

    folder = tmp_path / "state"
    folder.mkdir()
    old = sqlite3.connect(folder / "state.sqlite")
    old.execute(
        "CREATE TABLE files (source TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, content_hash TEXT"
        " NOT NULL, config_hash TEXT NOT NULL, documents INTEGER NOT NULL, kept INTEGER NOT NULL, rejected INTEGER"
        " NOT NULL, finished TEXT NOT NULL)"
    )
    old.execute("INSERT INTO files VALUES ('a.txt', '/x/a.txt', 5, 'h', 'c', 1, 1, 0, '2026-11-01T00:00:00+00:00')")
    old.commit()
    old.close()
    store = StateStore(folder)
    record = store.file("a.txt")
    assert record is not None and (record.content_hash, record.mtime_ns) == ("h", 0)  # 0: hash it again
    assert record.output == ""  # (not kept then)
    store.close()


def test_second_run_exits_at_once_while_the_lock_is_held_and_takes_over_a_stale_lock(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Hello there.", encoding="utf-8")
    out = tmp_path / "out"
    folder = out / ".cleancorpus"
    folder.mkdir(parents=True)
    holder = _lock_holder(folder, "held = StateStore(Path(sys.argv[2])); held.lock()", "StateStore")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        busy = _cli("run", str(tmp_path / "in"), "-o", str(out))
        assert busy.returncode == 75
        assert "another cleancorpus run" in busy.stderr and f"pid {holder.pid}" in busy.stderr
        assert time.monotonic() - started < 30
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: a stale lock file stays behind
        holder.wait()
    assert (folder / "lock").exists()
    done = _cli("run", str(tmp_path / "in"), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert (out / "a.txt").read_text(encoding="utf-8") == "Hello there.\n"


# ---------------------------------------------------------------- folders that cannot be written


def _one_line_error(output: str, message: str) -> None:
    assert output == f"cleancorpus: error: {message}\n", output  # one line, no traceback


def _state_run(tmp_path: Path) -> tuple[Path, Path]:
    """An input folder and the output folder of a finished run over it (with its state)."""
    (tmp_path / "in").mkdir(parents=True)
    (tmp_path / "in" / "a.txt").write_text("Hello there.", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return tmp_path / "in", out


def _without_permission_override(tmp_path: Path) -> list[str]:
    """The command prefix that makes file permissions apply to a command: none for a user; for root (CI),
    which writes wherever it likes, setpriv without the capabilities that override them, if it can."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o500)
    try:
        denied = subprocess.run([*prefix, "sh", "-c", f"! touch {probe}/x"], capture_output=True).returncode == 0
    except OSError:
        denied = False
    if not denied:
        pytest.skip("running as root, which chmod does not stop, without setpriv to drop that power")
    return prefix


def test_folders_that_cannot_be_written_are_a_usage_error_named_in_one_line(tmp_path: Path) -> None:
    # Real permissions (chmod), as cron's user meets them; a run, state info and state reset alike.
    prefix = _without_permission_override(tmp_path)
    src, out = _state_run(tmp_path / "done")
    folder = out / ".cleancorpus"

    def cli_as_user(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
        return subprocess.run(
            [*prefix, sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, env=env, timeout=120
        )

    def expect(args: tuple[str, ...], message: str) -> None:
        result = cli_as_user(*args)
        assert result.returncode == 2, result.stderr
        _one_line_error(result.stderr, message)

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        expect(("run", str(src), "-o", str(locked)), f"cannot write to the output folder {locked}: Permission denied")
        expect(
            ("run", str(src), "-o", str(locked / "out")),
            f"cannot create the output folder {locked / 'out'}: Permission denied",
        )
    finally:
        locked.chmod(0o700)

    (folder / "lock").chmod(0o444)
    try:
        expect(("run", str(src), "-o", str(out)), f"cannot open the lock file {folder / 'lock'}: Permission denied")
        reset = f"cannot open the lock file {folder / 'lock'}: Permission denied; not resetting"
        expect(("state", "reset", "-o", str(out), "--yes"), reset)
    finally:
        (folder / "lock").chmod(0o644)
    (folder / "lock").unlink()  # and the folder: the lock file cannot be made either
    folder.chmod(0o500)
    try:
        expect(("run", str(src), "-o", str(out)), f"cannot write to the state folder {folder}: Permission denied")
        expect(
            ("state", "info", "-o", str(out)),
            f"cannot write to the state folder {folder}: SQLite must make its -wal and -shm files there, even to "
            "read (attempt to write a readonly database)",
        )
        reset = f"cannot write to the state folder {folder}: Permission denied; not resetting"
        expect(("state", "reset", "-o", str(out), "--yes"), reset)
    finally:
        folder.chmod(0o700)
    (folder / "state.sqlite").chmod(0o444)
    try:
        db = folder / "state.sqlite"
        message = f"cannot write to the state database {db}: Permission denied"
        for args in (("run", str(src), "-o", str(out)), ("run", str(src), "-o", str(out), "--rebuild")):
            expect(args, message)
        expect(("state", "info", "-o", str(out)), message)
        expect(("state", "reset", "-o", str(out), "--yes"), f"{message}; not resetting")
        # not opened at all: SQLite would have made its -wal and -shm files read-only too, in the way once fixed
        assert sorted(p.name for p in folder.glob("state.sqlite*")) == ["state.sqlite"]
    finally:
        (folder / "state.sqlite").chmod(0o644)
    assert (folder / "state.sqlite").exists()  # nothing was reset
    done = cli_as_user("run", str(src), "-o", str(out), "-q")  # and all is well again
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_an_output_or_state_folder_that_cannot_be_made_is_a_usage_error(tmp_path: Path) -> None:
    # Where chmod stops no one (root), a path through a regular file fails the same way, for everyone.
    src, _ = _state_run(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(src), "-o", str(a_file / "out"), "-q"])
    assert result.exit_code == 2
    _one_line_error(result.output, f"cannot create the output folder {a_file / 'out'}: Not a directory")
    config = tmp_path / "state.yaml"
    config.write_text(f"state: {a_file / 'state'}\n")
    result = runner.invoke(cli, ["run", str(src), "-o", str(tmp_path / "out2"), "-c", str(config), "-q"])
    assert result.exit_code == 2
    _one_line_error(result.output, f"cannot create the state folder {a_file / 'state'}: Not a directory")
    assert not list((tmp_path / "out2").iterdir())  # nothing written


def test_permission_denied_on_the_output_state_database_or_lock_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operating system's refusals, as chmod gives them to a user, made here for root too: each path of
    # test_folders_that_cannot_be_written_are_a_usage_error_named_in_one_line, whoever runs the tests.
    import sqlite3
    import tempfile

    import pipeline.state as state_module

    src, out = _state_run(tmp_path)
    folder = out / ".cleancorpus"
    (src / "b.txt").write_text("Something new.", encoding="utf-8")
    runner = CliRunner()
    denied: set[Path] = set()
    real_mkstemp, real_open, real_connect = tempfile.mkstemp, open, sqlite3.connect

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:  # noqa: A002 - mkstemp's own name
        if Path(dir) in denied:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def open_(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(state_module, "open", open_, raising=False)
    run_args = ["run", str(src), "-o", str(out), "-q"]
    for path, message in (
        (out, f"cannot write to the output folder {out}: Permission denied"),
        (folder, f"cannot write to the state folder {folder}: Permission denied"),
        (folder / "lock", f"cannot open the lock file {folder / 'lock'}: Permission denied"),
    ):
        denied = {path}
        result = runner.invoke(cli, run_args)
        assert result.exit_code == 2
        _one_line_error(result.output, message)
        if path != out:
            result = runner.invoke(cli, ["state", "reset", "-o", str(out), "--yes"])
            assert result.exit_code == 2
            _one_line_error(result.output, f"{message}; not resetting")
    denied = set()

    # A read-only database file (SQLite opens it read-only without a word): found before any file is done.
    def read_only(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if not kwargs.pop("uri", False):
            path = f"{Path(path).resolve().as_uri()}?mode=ro"
        return real_connect(path, *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    result = runner.invoke(cli, run_args)
    assert result.exit_code == 2
    db = folder / "state.sqlite"
    _one_line_error(result.output, f"cannot write to the state database {db}: attempt to write a readonly database")
    assert not (out / "b.txt").exists()  # stopped before it wrote an output it could not record

    # A state folder SQLite cannot make its -wal and -shm files in: even state info cannot read the database.
    def no_folder(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        err = sqlite3.OperationalError("attempt to write a readonly database")
        err.sqlite_errorcode, err.sqlite_errorname = 1544, "SQLITE_READONLY_DIRECTORY"  # type: ignore[attr-defined]
        raise err

    monkeypatch.setattr(sqlite3, "connect", no_folder)
    for args in (["state", "info", "-o", str(out)], ["explain", "a.txt", "-o", str(out)], run_args):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        _one_line_error(
            result.output,
            f"cannot write to the state folder {folder}: SQLite must make its -wal and -shm files there, even to "
            "read (attempt to write a readonly database)",
        )
    monkeypatch.undo()
    result = runner.invoke(cli, run_args)
    assert result.exit_code == 0 and (out / "b.txt").exists(), result.output


# ---------------------------------------------------------------- crash safety


@pytest.fixture(scope="module")
def crash_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("crash")
    corpus = base / "corpus"
    docs = _cc_docs(120)
    for i in range(4):
        _write_jsonl(corpus / f"part{i}.jsonl", docs[i * 30 : (i + 1) * 30])
    for seed in sorted(SEEDS.glob("*.txt"))[:2]:
        (corpus / "txt").mkdir(exist_ok=True)
        (corpus / "txt" / seed.name).write_bytes(seed.read_bytes())
    config = base / "light.yaml"
    config.write_text(json.dumps(LIGHT))
    reference = base / "reference"
    result = _cli("run", str(corpus), "-o", str(reference), "-c", str(config), "-q")
    assert result.returncode == 0, result.stderr
    return corpus, config, reference


@pytest.mark.parametrize(
    "crash_at",
    ["file-outputs-durable:1", "file-committed:1", "file-outputs-durable:3", "file-committed:4", "file-committed:6"],
)
def test_killed_run_then_rerun_equals_an_uninterrupted_run(
    crash_corpus: tuple[Path, Path, Path], tmp_path: Path, crash_at: str
) -> None:
    corpus, config, reference = crash_corpus
    out = tmp_path / "out"
    killed = _cli("run", str(corpus), "-o", str(out), "-c", str(config), "-q", env={"CLEANCORPUS_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    rerun = _cli("run", str(corpus), "-o", str(out), "-c", str(config), "-q")
    assert rerun.returncode == 0, rerun.stderr
    assert _outputs(out) == _outputs(reference)
    assert not list(out.rglob("*.partial")) or all(".cleancorpus" not in p.parts for p in out.rglob("*.partial"))


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds ``text`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and b"pytest" not in cmdline:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG")
def test_the_workers_of_a_killed_run_end_with_it_and_leave_no_lock(tmp_path: Path) -> None:
    # The workers of a run killed with SIGKILL lived on for ever (reparented, blocked on a pipe), and
    # held the run lock they inherited: every later run exited 75, naming the dead run.
    src, out = tmp_path / "in", tmp_path / "out-killed-workers"
    docs = _cc_docs(120)
    _write_jsonl(src / "a.jsonl", docs[:60])
    _write_jsonl(src / "b.jsonl", docs[60:])
    env = {"CLEANCORPUS_CRASH_AT": "file-committed:1"}
    killed = _cli("run", str(src), "-o", str(out), "-q", "--workers", "2", env=env)
    assert killed.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _processes_naming(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_naming(str(out)) == []
    rerun = _cli("run", str(src), "-o", str(out), "-q", "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr


def _small_files(folder: Path, n: int) -> None:
    """n one-document .txt files (CC pages), as a folder of scraped articles."""
    folder.mkdir(parents=True)
    for i, doc in enumerate(_cc_docs(n, start=300)):
        (folder / f"article{i:02d}.txt").write_text(doc["text"], encoding="utf-8")


def test_small_files_are_committed_in_groups_each_group_durable_before_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each file had its outputs synced and its state record committed before the next one was written
    # (~3 fsyncs and a SQLite commit per file: a folder of 1,000 articles spent more time there than
    # cleaning). Files are now committed in groups: the group's outputs under their names, then one record.
    import pipeline.runner as runner_module
    from pipeline.state import StateStore

    config = load_config_data(LIGHT)
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    _small_files(corpus, 5)
    monkeypatch.setattr(runner_module, "GROUP_FILES", 2)
    monkeypatch.setattr(runner_module, "GROUP_SECONDS", 1e9)
    groups: list[list[str]] = []
    original = StateStore.commit_files

    def recording(self: StateStore, entries: Any, config: Any = None) -> None:
        entries = list(entries)
        for record, _ in entries:  # the outputs are durable, under their names, before the record
            assert not (out / f"{record.source}.partial").exists()
            assert (out / record.output).exists() == (record.kept > 0)
            assert not (out / ".cleancorpus" / "audit" / f"{record.source}.removed.jsonl.partial").exists()
        groups.append([record.source for record, _ in entries])
        original(self, entries, config)

    monkeypatch.setattr(StateStore, "commit_files", recording)
    result = run(config, [str(corpus)], out)
    names = [f"article{i:02d}.txt" for i in range(5)]
    assert groups == [names[:2], names[2:4], names[4:]]
    assert result.report["inputs"]["processed"] == 5
    one_by_one = tmp_path / "one-by-one"
    monkeypatch.setattr(runner_module, "GROUP_FILES", 1)
    run(config, [str(corpus)], one_by_one)
    assert len(groups) == 3 + 5
    assert _outputs(out) == _outputs(one_by_one)


@pytest.mark.parametrize("crash_at", ["file-outputs-durable:3", "file-committed:1"])
def test_killed_in_a_group_of_small_files_records_all_of_it_or_none(tmp_path: Path, crash_at: str) -> None:
    # A group's files are recorded in one transaction: killed while its outputs were made durable, the
    # state holds none of them (the next run writes them again); killed after, all of them.
    corpus, out, reference = tmp_path / "corpus", tmp_path / "out", tmp_path / "reference"
    _small_files(corpus, 5)
    config = tmp_path / "light.yaml"
    config.write_text(json.dumps(LIGHT))
    assert _cli("run", str(corpus), "-o", str(reference), "-c", str(config), "-q").returncode == 0
    killed = _cli("run", str(corpus), "-o", str(out), "-c", str(config), "-q", env={"CLEANCORPUS_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL
    db = sqlite3.connect(out / ".cleancorpus" / "state.sqlite")
    recorded = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    db.close()
    assert recorded == (0 if crash_at.startswith("file-outputs-durable") else 5)
    rerun = _cli("run", str(corpus), "-o", str(out), "-c", str(config), "-q")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["processed"] == 5 - recorded
    assert _outputs(out) == _outputs(reference)
    assert not list(out.rglob("*.partial"))


def test_run_killed_at_a_random_moment_then_rerun_equals_an_uninterrupted_run(
    crash_corpus: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    corpus, config, reference = crash_corpus
    for i, delay in enumerate((0.8, 1.6, 2.4)):
        out = tmp_path / f"out{i}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", str(corpus), "-o", str(out), "-c", str(config), "-q"], env=env
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rerun = _cli("run", str(corpus), "-o", str(out), "-c", str(config), "-q")
        assert rerun.returncode == 0, rerun.stderr
        assert _outputs(out) == _outputs(reference)


class TerminateRun(Stage):
    """Sends SIGTERM to the run (its main process, also from a worker) at the document named by
    CLEANCORPUS_TEST_TERM_AT: cron's `timeout` or systemd stopping the job."""

    name = "terminate"

    def process(self, doc: Document) -> None:
        if doc.id == os.environ.get("CLEANCORPUS_TEST_TERM_AT"):
            import multiprocessing

            os.kill(os.getppid() if multiprocessing.parent_process() else os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_the_run_like_an_interrupt_logged_with_no_partial_files(tmp_path: Path, workers: str) -> None:
    """SIGTERM killed the run on the spot (status -15, nothing logged, NAME.partial files left in the
    output folder and temporary files behind): it ends it as Ctrl-C does, exit 143 (128 + 15)."""
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": f"a{i}", "text": f"First file, document {i}."} for i in range(5)])
    _write_jsonl(src / "b.jsonl", [{"id": f"b{i}", "text": f"Second file, document {i}."} for i in range(5)])
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: test_cron:TerminateRun\n  - stage: normalize\n", encoding="utf-8")
    out, log = tmp_path / "out", tmp_path / "run.log"
    args = ("run", str(src), "-o", str(out), "-c", str(config), "-q", "--workers", workers)
    ended = _cli(*args, "--log-file", str(log), env={"CLEANCORPUS_TEST_TERM_AT": "b2"})
    assert ended.returncode == 143, ended.stderr
    assert "terminated (SIGTERM)" in ended.stderr and "terminated (SIGTERM)" in log.read_text(encoding="utf-8")
    assert [p.name for p in out.rglob("*.partial")] == []
    rerun = _cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    reference = tmp_path / "reference"
    assert _cli("run", str(src), "-o", str(reference), "-c", str(config), "-q").returncode == 0
    assert _outputs(out) == _outputs(reference)


# ---------------------------------------------------------------- bad input


class VanishNextFile(Stage):
    """Deletes another input file while the run is going (a file vanishing mid-run)."""

    name = "vanish"

    def process(self, doc: Document) -> None:
        target = Path(os.environ["CLEANCORPUS_TEST_VANISH"])
        if target.exists():
            target.unlink()


def test_every_kind_of_bad_input_is_quarantined_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = [{"id": f"g{i}", "text": f"Good document number {i} with some text."} for i in range(100)]
    _write_jsonl(src / "a-good.jsonl", good)
    lines = [
        orjson.dumps({"id": "ok", "text": "Fine."}),
        b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}',
        b'{"id": "truncated", "te',
        orjson.dumps({"id": "no-text", "body": "x"}),
    ]
    (src / "b-mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (src / "c-binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    (src / "d-empty.txt").write_bytes(b"")
    (src / "e-empty.jsonl").write_bytes(b"")
    (src / "f-huge.txt").write_bytes(b"word " * 10_500_000)  # 52 MB: one huge document
    (src / "g-locked.txt").write_text("You may not read me.", encoding="utf-8")
    (src / "h-vanishes.txt").write_text("Gone before it is read.", encoding="utf-8")
    if os.geteuid() == 0:  # root reads anything: simulate the permission error
        import pipeline.io as pio
        import pipeline.runner as prun

        real_open, real_hash = pio._open_binary, prun.file_hash

        def deny(path: Path, *args: object) -> object:
            if path.name == "g-locked.txt":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args) if args else real_hash(path)

        monkeypatch.setattr(pio, "_open_binary", deny)
        monkeypatch.setattr(prun, "file_hash", deny)
    else:
        (src / "g-locked.txt").chmod(0)
    monkeypatch.setenv("CLEANCORPUS_TEST_VANISH", str(src / "h-vanishes.txt"))
    config = load_config_data(
        {
            "input": {"max_doc_chars": 50_000_000},
            "stages": [{"stage": "test_cron:VanishNextFile"}, {"stage": "normalize"}],
        }
    )
    result = run(config, [str(src)], tmp_path / "out")
    out = tmp_path / "out"
    assert len(_ids(out / "a-good.jsonl")) == 100
    assert _ids(out / "b-mixed.jsonl") == ["ok", "bad-utf8"]  # not UTF-8: decoded (test_io)
    assert (out / "e-empty.jsonl").read_bytes() == b""
    reasons = {r["id"]: r["reason"] for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert reasons["b-mixed.jsonl:3"].startswith("malformed JSON at line 3")
    assert reasons["no-text"] == "field 'text' missing at line 4"
    assert reasons["c-binary.txt"] == "binary file (NUL bytes)"
    assert reasons["d-empty.txt"] == "empty document"
    assert reasons["f-huge.txt"].startswith("document too large")
    assert reasons["g-locked.txt"] == "cannot read file: Permission denied"
    assert reasons["h-vanishes.txt"] == "cannot read file: No such file or directory"
    assert result.quarantined == 6  # all but the empty document, an ordinary rejection


def test_exit_status_says_whether_input_was_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": "1", "text": "Fine text."}])
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(src), "-o", str(tmp_path / "o1"), "-q"]).exit_code == 0
    (src / "b.jsonl").write_bytes(b'{"id": "2", "text": \n')
    result = runner.invoke(cli, ["run", str(src), "-o", str(tmp_path / "o2")])
    assert result.exit_code == 3 and "(1 quarantined)" in result.output
    result = runner.invoke(cli, ["run", str(src), "-o", str(tmp_path / "o3"), "--strict"])
    assert result.exit_code == 1 and "error: 1 document quarantined (--strict)" in result.output


# ---------------------------------------------------------------- cron manners and audit


def test_cron_run_is_quiet_and_logs_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    result = _cli("run", str(SEEDS), "-o", str(tmp_path / "out"), "--quiet", "--log-file", str(log), "--log-json")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries[0]["message"].startswith("run started")
    assert entries[-1]["report"]["documents"]["in"] == 5
    assert any(e["message"].endswith(": 1 document, 1 kept") for e in entries)  # a .txt file: one document
    # not quiet, not a terminal: one summary line, no progress bar
    result = _cli("run", str(SEEDS), "-o", str(tmp_path / "out2"))
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cleancorpus: 5 files, 5 documents")


def test_a_log_file_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    for log, reason in (
        (tmp_path / "missing" / "x.log", "No such file or directory"),
        (not_a_folder / "x.log", "Not a directory"),
    ):
        result = runner.invoke(cli, ["run", str(SEEDS), "-o", str(tmp_path / "out"), "-q", "--log-file", str(log)])
        assert result.exit_code == 2, result.output
        assert result.output == f"cleancorpus: error: cannot open the log file {log}: {reason}\n"
    assert not (tmp_path / "out").exists()  # stopped before anything was written


def test_log_json_without_a_log_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(SEEDS), "-o", str(tmp_path / "out"), "-q", "--log-json"])
    assert result.exit_code == 2  # (before: 0, and no log anywhere)
    assert result.output == "cleancorpus: error: --log-json sets the format of the log file: add --log-file FILE\n"
    assert not (tmp_path / "out").exists()


def test_explain_marks_the_occurrence_that_was_removed() -> None:
    """A span found several times is marked where it was removed: a whole line before the start of a
    longer kept line, and for a repeat of the document's own paragraph not the first copy, which dedup kept."""
    from pipeline.explain import mark_spans

    para = "The quick brown fox jumps over the lazy dog near the river bank."
    before = f"{para}\n\nSaludos! from the team\n\n{para}\nSaludos"
    removals = [
        {"stage": "dedup", "rule": "exact-paragraph", "text": para, "duplicate_of": "rep"},
        {"stage": "boilerplate", "rule": "greeting", "text": "Saludos"},
    ]
    marked, unplaced = mark_spans(before, removals, color=False, doc_id="rep")
    assert unplaced == []
    assert marked == (
        f"{para}\n\nSaludos! from the team\n\n[-dedup/exact-paragraph: {para}-]\n[-boilerplate/greeting: Saludos-]"
    )
    # a paragraph repeated from another document: every copy here was removed, the first is marked first
    other = [{"stage": "dedup", "rule": "exact-paragraph", "text": para, "duplicate_of": "other"}]
    assert mark_spans(before, other, color=False, doc_id="rep")[0].startswith(f"[-dedup/exact-paragraph: {para}-]")


def test_explain_marks_the_copy_of_a_line_removed_after_the_spans_its_stage_removed_before() -> None:
    """The audit names a span's text, not its place, and a stage records its spans in text order: a line
    repeated at the foot of a real CC page (the line scorer kept its copy at the top) is marked at the
    foot, after the line the stage removed before it (it was marked at the top)."""
    from pipeline.report import place_removals

    (doc,) = _cc_docs(1, 12)
    text, line = doc["text"], "1 result found Page 1 of 1"
    removals = [
        {"stage": "boilerplate", "rule": "line-scorer", "text": "Click images to view larger"},
        {"stage": "boilerplate", "rule": "line-scorer", "text": line},
        {"stage": "boilerplate", "rule": "cookie", "text": "Cookie Policy"},
    ]
    taken, unplaced = place_removals(text, removals)
    assert unplaced == [] and text.count(line) == 2
    (start,) = [s for s, _, r in taken if r["text"] == line]
    assert start == text.rindex(line)


def test_explain_marks_repeats_whose_kept_copy_differs_in_punctuation() -> None:
    """Dedup keys ignore case and punctuation: in a real forum page of SQL, the copy kept of
    ":c_discount, :c_balance, :c_since" is the earlier "c_discount, c_balance, c_since", so the first
    verbatim copy is a removed one (it was skipped as the kept copy, and the line ending with ";" that
    starts with the same text was marked instead, leaving that line's own removal unplaced)."""
    from pipeline.report import place_removals

    (doc,) = _cc_docs(1, 194)
    text = doc["text"]
    repeats = [
        ":c_street_1, :c_street_2, :c_city, :c_state, :c_zip,",
        ":c_phone, :c_credit, :c_credit_lim,",
        ":c_discount, :c_balance, :c_since",
        "c_street_1, c_street_2, c_city, c_state, c_zip,",
        "c_phone, c_credit, c_credit_lim,",
        "c_discount, c_balance, c_since",
        ":c_street_1, :c_street_2, :c_city, :c_state, :c_zip,",
        ":c_phone, :c_credit, :c_credit_lim,",
        ":c_discount, :c_balance, :c_since;",
    ]
    removals = [{"stage": "dedup", "rule": "exact-paragraph", "text": t, "duplicate_of": doc["id"]} for t in repeats]
    taken, unplaced = place_removals(text, removals, doc["id"])
    assert unplaced == []
    lines = [text[:s].count("\n") for s, _, _ in taken]
    assert len(set(lines)) == len(repeats)  # each on a line of its own: whole lines, no line twice
    assert all(text.split("\n")[n] == r["text"] for n, (_, _, r) in zip(lines, taken, strict=True))


def test_explain_before_without_its_marked_spans_is_the_output(tmp_path: Path) -> None:
    """Nothing lost, as explain shows it: on a real CC page with lines repeated, the text before with the
    marked spans cut out is the text after (spaces aside)."""
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_docs(1, 12))
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    result = runner.invoke(cli, ["explain", _cc_docs(1, 12)[0]["id"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    before = result.output.split("--- before (removed spans marked [-stage/rule: text-]) ---\n", 1)[1]
    before, after = before.split("\n--- after ---\n", 1)
    assert "--- removed spans not found verbatim" not in before and "[-boilerplate/" in before
    cut = re.sub(r"\[-[a-z]+/[a-z0-9-]+: .*?-\]", "", before, flags=re.S)
    assert cut.split() == after.split()


def test_explain_marks_each_removed_span(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(SEEDS), "-o", str(out), "-q"]).exit_code == 0
    (doc_id,) = [p.name for p in SEEDS.glob("004_*.txt")]
    result = runner.invoke(cli, ["explain", doc_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "[-boilerplate/comment-form: Please enter your comment!-]" in result.output
    assert "[-boilerplate/widget-heading: Most Popular-]" in result.output
    after = result.output.split("--- after ---", 1)[1]
    assert "Please enter your comment!" not in after and "Putin in Beijing" in after
    missing = runner.invoke(cli, ["explain", "no-such-doc", "-o", str(out)])
    assert missing.exit_code == 2 and "no document 'no-such-doc'" in missing.output
    # a mistyped output folder is named as such, not as a document missing from it
    typo = runner.invoke(cli, ["explain", doc_id, "-o", str(tmp_path / "ot")])
    assert typo.exit_code == 2 and f"no output folder {tmp_path / 'ot'}" in typo.output


def _explain_sections(output: str) -> dict[str, str]:
    """explain's output for several documents: each document's section, by its heading."""
    parts = output.split("\n===== ")[1:]
    return {part.split(" =====\n", 1)[0].split(": ", 1)[1]: part.split(" =====\n", 1)[1] for part in parts}


SHARE = "Share on Facebook"
HARBOUR = (
    "The harbour authority approved a plan to dredge the main shipping channel next spring to allow bigger vessels."
)
TREES = "Volunteers planted three hundred trees along the riverbank on Saturday morning despite the rain and cold wind."


def test_explain_keeps_apart_documents_that_share_an_id(tmp_path: Path) -> None:
    """Ids numbered per file: id 1 of a.jsonl (kept, a span removed) is not b.jsonl's line 2 (a rejected
    duplicate) nor its line 1 (kept untouched); each is shown with its own verdict, or picked by --source/--line."""
    _write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "1", "text": f"{SHARE}\n{HARBOUR}"}])
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "1", "text": TREES}, {"id": "1", "text": TREES}])
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    removed = [json.loads(x) for x in (out / "removed.jsonl").read_text().splitlines()]
    assert [(r["source"], r["line"], r["rule"]) for r in removed] == [("a.jsonl", 1, "share")]

    result = runner.invoke(cli, ["explain", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "3 documents have the id '1': a.jsonl line 1, b.jsonl line 1, b.jsonl line 2; each is shown below"
    )
    sections = _explain_sections(result.output)
    assert list(sections) == ["a.jsonl line 1", "b.jsonl line 1", "b.jsonl line 2"]
    a, b1, b2 = sections.values()
    assert "\nKEPT\n1 span removed\n" in a and f"[-boilerplate/share: {SHARE}-]" in a and "REJECTED" not in a
    assert a.endswith(f"--- after ---\n{HARBOUR}\n")
    assert "\nKEPT\n0 spans removed\n" in b1 and b1.endswith(f"--- after ---\n{TREES}\n")
    assert "REJECTED at stage dedup: exact duplicate of document 1 (b.jsonl line 1)" in b2 and "Share" not in b2
    assert b2.endswith("--- after ---\n(rejected: no output)\n\n") or b2.endswith("(rejected: no output)\n")

    one = runner.invoke(cli, ["explain", "1", "-o", str(out), "--source", "b.jsonl", "--line", "2"])
    assert one.exit_code == 0, one.output
    assert one.output.startswith("document 1 from b.jsonl line 2\nREJECTED at stage dedup")
    assert "=====" not in one.output
    first = runner.invoke(cli, ["explain", "1", "-o", str(out), "--source", "a.jsonl"])
    assert first.exit_code == 0 and first.output.startswith("document 1 from a.jsonl line 1\nKEPT\n1 span removed")
    none = runner.invoke(cli, ["explain", "1", "-o", str(out), "--source", "b.jsonl", "--line", "3"])
    assert none.exit_code == 2 and none.output.count("\n") == 1
    assert "no document '1' (b.jsonl line 3)" in none.output
    assert "documents with this id: a.jsonl line 1, b.jsonl line 1, b.jsonl line 2" in none.output

    # Too many to show: they are named, and the user picks one.
    words = HARBOUR.split() + TREES.split()
    texts = [" ".join(words[i::7] + words[: i + 3]) for i in range(12)]
    texts[4] = texts[3]  # line 5 is rejected: line 7's output is the 5th document of c.jsonl with id 1
    _write_jsonl(tmp_path / "in" / "c.jsonl", [{"id": "1", "text": t} for t in texts])
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    many = runner.invoke(cli, ["explain", "1", "-o", str(out)])
    assert many.exit_code == 2 and many.output.count("\n") == 1, many.output
    assert (
        "15 documents have the id '1' in " in many.output
        and "(a.jsonl line 1, b.jsonl line 1, b.jsonl line 2, c.jsonl line 1, c.jsonl line 2 and 10 more): "
        "choose one with --source FILE (and --line N)"
        in many.output
    )
    picked = runner.invoke(cli, ["explain", "1", "-o", str(out), "--source", "c.jsonl", "--line", "7"])
    assert picked.exit_code == 0, picked.output
    assert picked.output.startswith("document 1 from c.jsonl line 7\nKEPT\n")
    assert picked.output.endswith(f"--- after ---\n{texts[6]}\n")


def test_explain_says_the_audit_was_off_instead_of_showing_an_untouched_document(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "1", "text": TREES}, {"id": "2", "text": TREES}])
    config = tmp_path / "c.yaml"
    config.write_text("output: {audit: false}\n")
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q", "-c", str(config)]).exit_code == 0
    result = runner.invoke(cli, ["explain", "2", "-o", str(out)])
    assert result.exit_code == 2
    assert result.output == (
        f"cleancorpus: error: cannot explain '2': the last run on {out} had output.audit: false, so the spans it "
        "removed and the documents it rejected are unknown (set output.audit: true and run again)\n"
    )


def test_explain_names_standard_input_and_output(tmp_path: Path) -> None:
    data = "".join(
        json.dumps(r) + "\n"
        for r in ({"id": "1", "text": f"{SHARE}\n{HARBOUR}"}, {"id": "2", "text": TREES}, {"id": "3", "text": TREES})
    )
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "-", "-o", str(out), "-q"], input=data).exit_code == 0
    kept = runner.invoke(cli, ["explain", "1", "-o", str(out)])
    assert kept.exit_code == 0, kept.output
    assert kept.output == (
        "document 1 from standard input line 1\nKEPT\n1 span removed\n"
        "--- before (removed spans marked [-stage/rule: text-]) ---\n"
        "(read from standard input, which was not kept: the audit holds the text of rejected documents only)\n"
        f"--- removed spans ---\n[boilerplate/share] {SHARE}\n--- after ---\n(written to standard output, not kept)\n"
    )
    rejected = runner.invoke(cli, ["explain", "3", "-o", str(out)])
    assert rejected.exit_code == 0, rejected.output
    assert rejected.output.startswith("document 3 from standard input line 3\nREJECTED at stage dedup")
    assert f"---\n{TREES}\n--- after ---\n(rejected: no output)\n" in rejected.output
    untouched = runner.invoke(cli, ["explain", "2", "-o", str(out)])
    assert (
        untouched.exit_code == 2 and "known only if something of it was removed or it was rejected" in untouched.output
    )


def test_explain_and_state_info_without_config_use_the_last_runs(tmp_path: Path) -> None:
    """After a run with -c setting input.id_field/text_field and state:, `explain ID -o OUT` (no -c) read the
    input with the default field names ("input not found: it was moved ...") and `state info` looked in
    OUT/.cleancorpus ("no state"): both take the config the last run recorded in report.json."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(
        json.dumps({"doc": "x1", "body": f"Share on Facebook\n{TREES}"}) + "\n", encoding="utf-8"
    )
    config = tmp_path / "c.yaml"
    config.write_text(f"state: {tmp_path / 'st'}\ninput: {{id_field: doc, text_field: body}}\n", encoding="utf-8")
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-c", str(config), "-q"]).exit_code == 0
    result = runner.invoke(cli, ["explain", "x1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"[-boilerplate/share: Share on Facebook-]\n{TREES}\n--- after ---\n{TREES}\n" in result.output
    info = runner.invoke(cli, ["state", "info", "-o", str(out)]).output
    assert f"folder: {tmp_path / 'st'}\n" in info and "files: 1\n" in info
    assert runner.invoke(cli, ["explain", "x1", "-o", str(out), "-c", str(config)]).output == result.output


def test_explain_after_a_limit_trial_shows_the_text_before(tmp_path: Path) -> None:
    """A --limit trial records no state, so explain could not find the input it read ("input not found"):
    report.json names the files the trial read."""
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        (tmp_path / "in" / f"{name}.jsonl").write_text(
            json.dumps({"id": name, "text": f"Share on Facebook\n{TREES}"}) + "\n", encoding="utf-8"
        )
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "--limit", "1", "-q"]).exit_code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["read_files"] == {"a.jsonl": str((tmp_path / "in" / "a.jsonl").resolve())}
    result = runner.invoke(cli, ["explain", "a", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"[-boilerplate/share: Share on Facebook-]\n{TREES}\n--- after ---\n{TREES}\n" in result.output
    assert runner.invoke(cli, ["run", str(tmp_path / "in"), "-o", str(out), "-q"]).exit_code == 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"]["read_files"] is None
