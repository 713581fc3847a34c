"""Operations and failure modes, as a nightly cron job meets them: a file system that stops taking writes,
a run started from another directory, inputs that change between runs, a damaged state."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import CORPORA, REPO

from pipeline.state import FileRecord, StateStore

NORMALIZE_ONLY = "stages:\n  - stage: normalize\n"  # no first pass nor index: the state stays a few KB


def _cc_records(n: int) -> list[dict]:
    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _cli(*args: str, cwd: Path | None = None, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a child; ``file_size_limit``: no file it writes may grow beyond so many
    bytes (RLIMIT_FSIZE, with SIGXFSZ ignored, so that the write fails with EFBIG as on a full disk)."""

    def limited() -> None:
        if file_size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (an ignored signal stays ignored across exec)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
        preexec_fn=limited,
    )


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of a run but its reports (they carry timings) and the state folder."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("report.") and ".cleancorpus" not in p.parts
    }


def test_a_file_system_that_stops_taking_writes_leaves_no_partial_file_and_names_the_file(tmp_path: Path) -> None:
    # A full disk (or a quota, or a file size limit) mid-run: the run failed with "OSError: [Errno 28] No space
    # left on device", naming no file, and left the .partial output behind (closing it failed too, before it
    # was removed). Now: one line naming the file, no .partial file, nothing recorded; once there is room, the
    # next run gives what a run that never failed gives.
    records = _cc_records(120)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records)
    config = tmp_path / "n.yaml"
    config.write_text(NORMALIZE_ONLY, encoding="utf-8")
    size = (tmp_path / "in" / "a.jsonl").stat().st_size
    assert size > 300_000
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-c", str(config), "-q")
    failed = _cli(*args, file_size_limit=size // 2)
    assert failed.returncode == 1, failed.stderr
    message = failed.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert f"cannot write {out / 'a.jsonl.partial'}: File too large" in message, message
    assert "will be processed next time" in message
    assert not list(out.rglob("*.partial")), list(out.rglob("*.partial"))
    assert not (out / "a.jsonl").exists()
    info = _cli("state", "info", "-o", str(out))
    assert "no file recorded" in info.stdout + info.stderr, info.stdout + info.stderr

    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    fresh = _cli("run", str(tmp_path / "in"), "-o", str(tmp_path / "fresh"), "-c", str(config), "-q")
    assert fresh.returncode == 0, fresh.stderr
    assert _outputs(out) == _outputs(tmp_path / "fresh")


def test_a_full_state_database_says_so_rather_than_cannot_rollback(tmp_path: Path) -> None:
    # SQLite rolls a transaction back by itself when the disk is full; the state's ROLLBACK then failed with
    # "cannot rollback - no transaction is active", and that was the run's error line. (A database at its
    # max_page_count fails as a full disk does: SQLITE_FULL.)
    store = StateStore(tmp_path / "state")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count={pages + 2}")
    record = FileRecord("a.jsonl", str(tmp_path / "a.jsonl"), 1, "hash", "config")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        store.commit_files([(record, [("4:dedup", b"x" * 200_000)])])
    assert store.files() == []
    store.db.execute(f"PRAGMA max_page_count={1 << 30}")
    store.commit_files([(record, [("4:dedup", b"x" * 200_000)])])  # the store is usable again
    assert [f.source for f in store.files()] == ["a.jsonl"]
    store.close()

