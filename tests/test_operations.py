"""Operations and failure modes, as a nightly cron job meets them: a file system that stops taking writes,
a run started from another directory, inputs that change between runs, a damaged state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from conftest import CORPORA, REPO
from conftest import run_cli as _cli

from pipeline.document import Document
from pipeline.stages.base import Stage
from pipeline.state import FileRecord, StateStore

NORMALIZE_ONLY = "stages:\n  - stage: normalize\n"  # no first pass nor index: the state stays a few KB


def _cc_records(n: int) -> list[dict]:
    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


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


def test_a_new_state_database_has_larger_pages_and_an_earlier_one_keeps_its_own(tmp_path: Path) -> None:
    # 16 kB pages: a large payload (dedup's index) is recorded with a quarter of the page writes. A database
    # made by an earlier version (4 kB pages) is used as it is.
    from pipeline.state import PAGE_SIZE

    store = StateStore(tmp_path / "new")
    record = FileRecord("a.jsonl", str(tmp_path / "a.jsonl"), 1, "hash", "config")
    store.commit_files([(record, [("4:dedup", os.urandom(300_000))])])
    assert store.db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    store.close()
    (tmp_path / "old").mkdir()
    old = sqlite3.connect(tmp_path / "old" / "state.sqlite")
    old.execute("PRAGMA journal_mode=WAL")
    old.close()
    store = StateStore(tmp_path / "old")
    payload = os.urandom(300_000)
    store.commit_files([(record, [("4:dedup", payload)])])
    assert store.db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert [p for _, p in store.stage_rows("4:dedup", set())] == [payload]
    store.close()


def test_a_new_state_database_is_made_unsynced_then_synced_once_before_it_is_linked_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite synced it 14 times while it was made (the switch to WAL, each table and index, the checkpoint);
    # it is not seen under its name until linked, so one sync of the whole file before that does.
    import pipeline.state as state

    events: list[str] = []
    fsync, link = os.fsync, os.link

    def noting_fsync(fd: int) -> None:
        events.append(f"fsync {Path(os.readlink(f'/proc/self/fd/{fd}')).name}")
        fsync(fd)

    def noting_link(src: Path, dst: Path) -> None:
        events.append(f"link {Path(dst).name}")
        link(src, dst)

    monkeypatch.setattr(state.os, "fsync", noting_fsync)
    monkeypatch.setattr(state.os, "link", noting_link)
    store = StateStore(tmp_path / "s")
    assert events == [f"fsync state.sqlite.new-{os.getpid()}", "link state.sqlite"]
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if "new" in p.name) == []
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
    assert {"meta", "files", "stage_rows", "first_pass", "stage_rows_by_source", "stage_rows_by_file"} <= tables
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # (FULL: the run's own commits are synced)
    store.close()


def test_the_runs_last_state_record_is_copied_from_the_wal_in_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The WAL's copy into the database (~26 MB for a 40 MB input's dedup index) is made by the thread that
    # records the last file, beside the audit assembly and report.html, not by closing the store at the end.
    from pipeline.config import default_config
    from pipeline.runner import run

    calls: list[tuple[str, str]] = []
    commit, checkpoint = StateStore.commit_files, StateStore.checkpoint

    def noting_commit(self: StateStore, *args: object, **kwargs: object) -> None:
        calls.append(("commit", threading.current_thread().name))
        commit(self, *args, **kwargs)  # type: ignore[arg-type]

    def noting_checkpoint(self: StateStore) -> None:
        calls.append(("checkpoint", threading.current_thread().name))
        checkpoint(self)

    monkeypatch.setattr(StateStore, "commit_files", noting_commit)
    monkeypatch.setattr(StateStore, "checkpoint", noting_checkpoint)
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_records(30))
    result = run(default_config(), [str(tmp_path / "in")], tmp_path / "out")
    assert result.documents_in == 30
    assert calls == [("commit", "cleancorpus-record"), ("checkpoint", "cleancorpus-record")]
    store = StateStore(tmp_path / "out" / ".cleancorpus")
    assert [f.source for f in store.files()] == ["a.jsonl"]
    store.close()


def _relative_run(tmp_path: Path) -> tuple[Path, str]:
    """A run in ``tmp_path`` naming its input, output and state by relative paths (as a cron line after
    ``cd /srv/cleaning`` does); the id of a document it removed spans from."""
    _write_jsonl(tmp_path / "data" / "a.jsonl", _cc_records(40))
    (tmp_path / "c.yaml").write_text("state: st\n", encoding="utf-8")
    done = _cli("run", "data", "-o", "out", "-c", "c.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first = orjson.loads((tmp_path / "out" / "removed.jsonl").read_bytes().splitlines()[0])
    return tmp_path / "elsewhere", first["id"]


def test_explain_and_state_info_from_another_directory_than_the_runs(tmp_path: Path) -> None:
    # The input path and `state:` were recorded relative to the directory of the run: explain run from elsewhere
    # said "(input not found: it was moved or deleted)" for an input that was there, and state info said
    # "No state in st".
    elsewhere, doc_id = _relative_run(tmp_path)
    elsewhere.mkdir()
    out = str(tmp_path / "out")
    shown = _cli("explain", doc_id, "-o", out, cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    assert "input not found" not in shown.stdout
    before = shown.stdout.split("--- before")[1].split("--- after ---")[0]
    assert "[-boilerplate/" in before, shown.stdout
    info = _cli("state", "info", "-o", out, cwd=elsewhere)
    assert info.returncode == 0, info.stderr
    assert f"folder: {tmp_path / 'st'}" in info.stdout and "files: 1" in info.stdout, info.stdout


def test_explain_of_a_state_with_relative_paths_says_where_it_looked(tmp_path: Path) -> None:
    # A state and report of a version before this one: the path relative, no directory of the run in
    # report.json. explain cannot know where the run started: it says where it looked and what to do.
    elsewhere, doc_id = _relative_run(tmp_path)
    elsewhere.mkdir()
    with sqlite3.connect(tmp_path / "st" / "state.sqlite") as db:
        db.execute("UPDATE files SET path = 'data/a.jsonl'")
    db.close()
    report = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    del report["cwd"]
    report["config"]["state"] = str(tmp_path / "st")
    (tmp_path / "out" / "report.json").write_bytes(orjson.dumps(report))
    shown = _cli("explain", doc_id, "-o", str(tmp_path / "out"), cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    assert f"(input not found at data/a.jsonl from {elsewhere}: it was moved or deleted, or the run was " in (
        shown.stdout
    ), shown.stdout
    assert "run explain from there" in shown.stdout
    from_there = _cli("explain", doc_id, "-o", "out", cwd=tmp_path)  # from the run's directory it is found
    assert "input not found" not in from_there.stdout and "[-boilerplate/" in from_there.stdout, from_there.stdout


class SignalFromWorker(Stage):
    """At the document named by CLEANCORPUS_TEST_SIGNAL_AT, a worker sends SIGTERM to itself (``worker``) or to
    the run's whole process group (``group``: what timeout(1) and systemd do), or SIGKILL to itself (``kill``), as
    CLEANCORPUS_TEST_SIGNAL says."""

    name = "signal"

    def process(self, doc: Document) -> None:
        import multiprocessing

        if doc.id != os.environ.get("CLEANCORPUS_TEST_SIGNAL_AT") or multiprocessing.parent_process() is None:
            return
        if os.environ["CLEANCORPUS_TEST_SIGNAL"] == "group":
            os.killpg(os.getpgid(0), signal.SIGTERM)
        elif os.environ["CLEANCORPUS_TEST_SIGNAL"] == "kill":  # (the OOM killer)
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # (the signal is handled before the document is done)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and fork")
@pytest.mark.parametrize("to", ["worker", "group", "kill"])
def test_sigterm_to_the_workers_does_not_break_the_run(tmp_path: Path, to: str) -> None:
    # timeout(1), systemd and a terminal signal the whole process group: the workers died of SIGTERM at once,
    # and the run failed with "BrokenProcessPool: A process in the process pool was terminated abruptly"
    # (exit 1) or, when a worker died half-way through sending its result, hung for ever in the pool's shutdown
    # holding the lock. Workers now leave a stop to the run: SIGTERM to a worker alone changes nothing, SIGTERM
    # to the group ends the run with 143, and the next run gives what an uninterrupted one gives.
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": f"a{i}", "text": f"First file, document {i}."} for i in range(40)])
    _write_jsonl(src / "b.jsonl", [{"id": f"b{i}", "text": f"Second file, document {i}."} for i in range(40)])
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: test_operations:SignalFromWorker\n  - stage: normalize\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("run", str(src), "-o", str(out), "-c", str(config), "-q", "--workers", "2")
    env = {"CLEANCORPUS_TEST_SIGNAL_AT": "a3", "CLEANCORPUS_TEST_SIGNAL": to}
    ended = _cli(*args, env=env, new_session=True, timeout=120)
    if to == "worker":
        assert ended.returncode == 0, ended.stderr
    elif to == "kill":  # a worker killed (out of memory): said so, in one line, and the next run redoes it
        assert ended.returncode == 1, ended.stderr
        assert ended.stderr.startswith("cleancorpus: error: run failed: a worker process died (killed: out of memory?")
        assert ended.stderr.count("\n") == 1, ended.stderr
        assert [p.name for p in out.rglob("*.partial")] == []
        assert _cli(*args).returncode == 0
    else:
        assert ended.returncode == 143, ended.stderr
        assert ended.stderr.startswith("cleancorpus: error: terminated (SIGTERM)"), ended.stderr
        assert [p.name for p in out.rglob("*.partial")] == []
        assert _cli(*args).returncode == 0
    reference = tmp_path / "reference"
    assert _cli("run", str(src), "-o", str(reference), "-c", str(config), "-q").returncode == 0
    assert _outputs(out) == _outputs(reference)


class SignalLostAt(Stage):
    """At the document named by CLEANCORPUS_TEST_SIGNAL_AT, what the SIGTERM handler does when Python then drops
    the exception it raises (code called back from C: a ``__del__``, a kernel's callback): the stop flag is set,
    and nothing is raised."""

    name = "signal-lost"

    def process(self, doc: Document) -> None:
        from pipeline import runner

        if doc.id == os.environ.get("CLEANCORPUS_TEST_SIGNAL_AT"):
            runner.stop_requested.set()


class SignalWrappedAt(Stage):
    """At the document named by CLEANCORPUS_TEST_SIGNAL_AT, in its batch's ``process_ahead`` (outside the per-document
    quarantine): SIGTERM's handler ran inside code called back from C, which wrapped its exception in SystemError."""

    name = "signal-wrapped"

    def process_ahead(self, docs: list[Document]) -> None:
        from pipeline import runner
        from pipeline.cli import Terminated

        if any(doc.id == os.environ.get("CLEANCORPUS_TEST_SIGNAL_AT") for doc in docs):
            runner.stop_requested.set()
            raise SystemError("<built-in function kernel> returned a result with an exception set") from Terminated()

    def process(self, doc: Document) -> None:
        return None


def test_a_sigterm_wrapped_on_its_way_outside_a_document_still_ends_the_run_as_terminated(tmp_path: Path) -> None:
    # It failed the run with exit 1 and "run failed: SystemError: ..." (seen by session 18's QA as possible in
    # boilerplate's process_ahead); a stop is a stop: exit 143, nothing half-written.
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": f"a{i}", "text": f"First file, document {i}."} for i in range(200)])
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: test_operations:SignalWrappedAt\n  - stage: normalize\n", encoding="utf-8")
    out = tmp_path / "out"
    ended = _cli("run", str(src), "-o", str(out), "-c", str(config), "-q", env={"CLEANCORPUS_TEST_SIGNAL_AT": "a70"})
    assert ended.returncode == 143, ended.stderr
    assert ended.stderr.startswith("cleancorpus: error: terminated (SIGTERM)"), ended.stderr
    assert not (out / "a.jsonl").exists() and not list(out.rglob("*.partial"))


def test_a_sigterm_whose_exception_was_lost_still_stops_the_run(tmp_path: Path) -> None:
    # The run went on to the end and exited 0 (3 of 14 SIGTERMs in session 18's QA); it now stops after the batch.
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": f"a{i}", "text": f"First file, document {i}."} for i in range(200)])
    _write_jsonl(src / "b.jsonl", [{"id": f"b{i}", "text": f"Second file, document {i}."} for i in range(40)])
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: test_operations:SignalLostAt\n  - stage: normalize\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("run", str(src), "-o", str(out), "-c", str(config), "-q")
    ended = _cli(*args, env={"CLEANCORPUS_TEST_SIGNAL_AT": "a3"})
    assert ended.returncode == 143, ended.stderr
    assert ended.stderr.startswith("cleancorpus: error: terminated (SIGTERM)"), ended.stderr
    assert not (out / "a.jsonl").exists() and not list(out.rglob("*.partial"))
    assert _cli(*args).returncode == 0  # (and the next run does it all)
    reference = tmp_path / "reference"
    assert _cli("run", str(src), "-o", str(reference), "-c", str(config), "-q").returncode == 0
    assert _outputs(out) == _outputs(reference)


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="fork callbacks")
def test_sigterm_while_a_worker_is_forked_ends_the_run(tmp_path: Path) -> None:
    # Python ran the SIGTERM handler inside a fork callback (logging's lock release), where the exception it
    # raises is printed as "Exception ignored ... Terminated" and dropped: the run went on to the end and exited
    # 0 (seen with `timeout -s TERM 1.9` at --workers 2). Here a fork callback sends the signal at every fork.
    src = tmp_path / "in"
    _write_jsonl(src / "a.jsonl", [{"id": f"a{i}", "text": f"A document, number {i}."} for i in range(20)])
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n", encoding="utf-8")
    out = tmp_path / "out"
    code = (
        "import os, signal, sys\n"
        "os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
        "from pipeline.cli import main\n"
        "main()\n"
    )
    args = ("run", str(src), "-o", str(out), "-c", str(config), "-q", "--workers", "2")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    ended = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert ended.returncode == 143, ended.stderr
    assert ended.stderr.startswith("cleancorpus: error: terminated (SIGTERM)"), ended.stderr
    assert "Exception ignored" not in ended.stderr
    assert not (out / "a.jsonl").exists() and not list(out.rglob("*.partial"))


def _on_a_read_only_mount(folder: Path, *command: str) -> subprocess.CompletedProcess:
    """``python -m pipeline COMMAND`` with ``folder`` mounted read-only (a backup, a snapshot, an NFS export):
    in a mount namespace of its own (unshare), so nothing changes outside; skipped where that is not allowed."""
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder}"
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", f"{mount} && ! touch {folder}/.probe"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"no read-only mount here (unshare: {probe.stderr.decode().strip()[:80]})")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    python = f"{sys.executable} -m pipeline {' '.join(command)}"
    return subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", f"{mount} && {python}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not shutil.which("unshare"), reason="unshare(1) makes the read-only mount")
def test_explain_and_state_info_read_an_output_folder_on_a_read_only_file_system(tmp_path: Path) -> None:
    # Both failed with "cannot write to the state database .../state.sqlite: Permission denied" (exit 2): SQLite
    # makes a -shm file to read a WAL database, even read-only. The state is now opened read-only (immutable).
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_records(30))
    out = tmp_path / "out"
    assert _cli("run", str(tmp_path / "in"), "-o", str(out), "-q").returncode == 0
    doc_id = orjson.loads((out / "removed.jsonl").read_bytes().splitlines()[0])["id"]
    info = _on_a_read_only_mount(out, "state", "info", "-o", str(out))
    assert info.returncode == 0, info.stderr
    assert "files: 1" in info.stdout and "documents: 30" in info.stdout, info.stdout
    shown = _on_a_read_only_mount(out, "explain", doc_id, "-o", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "[-boilerplate/" in shown.stdout and "input not found" not in shown.stdout, shown.stdout
    ran = _on_a_read_only_mount(out, "run", str(tmp_path / "in"), "-o", str(out), "-q")
    assert ran.returncode == 2 and "Read-only file system" in ran.stderr, ran.stderr


def test_a_deleted_audit_folder_does_not_empty_the_audit_files(tmp_path: Path) -> None:
    # removed.jsonl and rejected.jsonl are assembled from each file's part in the state folder. With the parts
    # gone (.cleancorpus/audit deleted: a clean-up script, a partial restore), the next run that processed a
    # file wrote both anew from what was left: every earlier record lost (their last copy), exit 0, not a word.
    records = _cc_records(80)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:40])
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-q")
    assert _cli(*args).returncode == 0
    before = {kind: (out / f"{kind}.jsonl").read_bytes() for kind in ("removed", "rejected")}
    assert before["removed"].count(b"\n") > 100
    shutil.rmtree(out / ".cleancorpus" / "audit")
    _write_jsonl(tmp_path / "in" / "b.jsonl", records[40:])
    warned = _cli(*args)
    assert warned.returncode == 0, warned.stderr
    assert "warning: the audit parts of 1 file (a.jsonl) are missing from" in warned.stderr, warned.stderr
    assert "Run with --rebuild" in warned.stderr
    for kind, old in before.items():
        now = (out / f"{kind}.jsonl").read_bytes()
        assert now.startswith(old), kind  # the earlier records kept, this run's after them
    assert b'"source":"b.jsonl"' in (out / "removed.jsonl").read_bytes()
    report = orjson.loads((out / "report.json").read_bytes())
    assert len(report["warnings"]) == 1
    kept = {kind: (out / f"{kind}.jsonl").read_bytes() for kind in ("removed", "rejected")}
    again = _cli(*args)  # nothing new: said again (until --rebuild), nothing appended twice
    assert again.returncode == 0 and "are missing from" in again.stderr, again.stderr
    assert {kind: (out / f"{kind}.jsonl").read_bytes() for kind in ("removed", "rejected")} == kept
    rebuilt = _cli(*args, "--rebuild")
    assert rebuilt.returncode == 0 and rebuilt.stderr == "", rebuilt.stderr
    fresh = tmp_path / "fresh"
    assert _cli("run", str(tmp_path / "in"), "-o", str(fresh), "-q").returncode == 0
    assert _outputs(out) == _outputs(fresh)


def test_a_renamed_input_file_is_named_in_a_warning(tmp_path: Path) -> None:
    # A file renamed between two runs (moved to a folder, a new naming scheme) is a new file whose documents are
    # all exact copies of the old name's, which stay recorded: every one was rejected as a duplicate, and the
    # run said "0 kept, 40 rejected" and nothing else (exit 0).
    records = _cc_records(80)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:40])
    _write_jsonl(tmp_path / "in" / "b.jsonl", records[40:])
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-q")
    assert _cli(*args).returncode == 0
    (tmp_path / "in" / "b.jsonl").rename(tmp_path / "in" / "c.jsonl")
    renamed = _cli(*args)
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stderr.startswith(
        "cleancorpus: warning: c.jsonl has the content of b.jsonl, processed before and no longer an input"
    ), renamed.stderr
    assert "--rebuild" in renamed.stderr
    assert (out / "c.jsonl").read_bytes() == b""  # (what the warning is about)
    assert _cli(*args).stderr == ""  # said once
    assert _cli(*args, "--rebuild").stderr == ""
    assert (out / "c.jsonl").read_bytes() == (out / "b.jsonl").read_bytes() != b""


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="the lock's holder is read from /proc/locks")
def test_state_info_during_the_first_run_says_a_run_is_under_way(tmp_path: Path) -> None:
    # While the first run on an output folder works through its first files (hours on a large corpus), state
    # info said "no state in OUT/.cleancorpus (no file recorded: a --limit trial run records nothing)".
    folder = tmp_path / "out" / ".cleancorpus"
    store = StateStore(folder)  # (what a run has made before it records its first file)
    store.lock()
    try:
        info = _cli("state", "info", "-o", str(tmp_path / "out"))
    finally:
        store.close()
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith(f"no file recorded in {folder} yet: a run (pid {os.getpid()}, started "), info.stdout
    assert "under way" in info.stdout
    after = _cli("state", "info", "-o", str(tmp_path / "out"))
    assert "a --limit trial run records nothing" in after.stdout, after.stdout


# A child that runs the CLI with one of the run's last writes failing as on a full disk (ENOSPC, naming the file):
# the audit assembly, or report.json. Everything before (every file's outputs and state) is as in a real run.
_FAIL_LATE = """
import errno, sys
import pipeline.runner as runner
from pipeline.cli import main

def full(path):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))

if sys.argv[1] == "audit":
    runner._assemble_audit = lambda outdir, *a, **k: full(outdir / "removed.jsonl.partial")
else:
    class Report(runner.AtomicFile):
        def write(self, data):
            if self.path.name == "report.json":
                full(self.tmp)
            super().write(data)
    runner.AtomicFile = Report
sys.argv[1:2] = []
main()
"""


@pytest.mark.parametrize("late", ["audit", "report"])
def test_a_failure_after_every_file_was_committed_says_so(tmp_path: Path, late: str) -> None:
    # A run failing after the last file was committed (removed.jsonl or report.json on a full disk) said "files
    # not finished were not committed and will be processed next time": true, but there were none.
    records = _cc_records(60)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:30])
    _write_jsonl(tmp_path / "in" / "b.jsonl", records[30:])
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-q")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    failed = subprocess.run(
        [sys.executable, "-c", _FAIL_LATE, late, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert failed.returncode == 1, failed.stderr
    message = failed.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert "files not finished" not in message, message
    if late == "audit":
        assert message.endswith(
            "No space left on device; every file was committed; removed.jsonl and rejected.jsonl were not finished "
            "(the next run writes them)"
        ), message
    else:
        assert message.endswith(
            "No space left on device; every file was committed; report.json was not written (report.json and "
            "report.html describe an earlier run)"
        ), message
    assert not list(out.rglob("*.partial")), list(out.rglob("*.partial"))
    assert "2 files" in _cli("state", "info", "-o", str(out)).stdout  # (both recorded)
    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "report.json").read_bytes())["inputs"]["processed"] == 0  # nothing to do again
    assert _cli("run", str(tmp_path / "in"), "-o", str(tmp_path / "fresh"), "-q").returncode == 0
    assert _outputs(out) == _outputs(tmp_path / "fresh")
    assert (out / "removed.jsonl").stat().st_size > 0


def test_quiet_runs_print_the_config_warnings(tmp_path: Path) -> None:
    # --quiet hid the config's warnings (an option that does nothing as set): a cron run did not do what its
    # config said, and its owner was never told. Each means that, so each is printed, one line, every run.
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_records(5))
    config = tmp_path / "c.yaml"
    config.write_text("output: {format: txt, metadata_field: meta}\n" + NORMALIZE_ONLY, encoding="utf-8")
    args = ("run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-c", str(config), "-q")
    for _ in range(2):
        quiet = _cli(*args)
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stderr == (
            f"cleancorpus: warning: {config}: output.metadata_field: txt output holds the text only, so the field "
            "'meta' is written nowhere (output.format: jsonl or parquet has it)\n"
        ), quiet.stderr
    config.write_text("output: {format: txt}\n" + NORMALIZE_ONLY, encoding="utf-8")
    assert _cli(*args, "--rebuild").stderr == ""


@pytest.mark.parametrize("compression", ["zst", "gz"])
def test_an_input_file_compressed_in_place_is_named_in_a_warning(tmp_path: Path, compression: str) -> None:
    # b.jsonl compressed in place (b.jsonl.zst): a new file whose documents are all copies of b.jsonl's, rejected
    # as duplicates; the rename warning compared the files' bytes, which differ, so the run said only "0 kept".
    import gzip

    import zstandard

    records = _cc_records(80)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:40])
    _write_jsonl(tmp_path / "in" / "b.jsonl", records[40:])
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-q", "-c", str(tmp_path / "n.yaml"))
    (tmp_path / "n.yaml").write_text("stages:\n  - stage: dedup\n", encoding="utf-8")
    assert _cli(*args).returncode == 0

    def compress(name: str) -> None:
        plain = tmp_path / "in" / name
        data = plain.read_bytes()
        packed = zstandard.ZstdCompressor().compress(data) if compression == "zst" else gzip.compress(data)
        (tmp_path / "in" / f"{name}.{compression}").write_bytes(packed)
        plain.unlink()

    compress("b.jsonl")
    run = _cli(*args)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith(
        f"cleancorpus: warning: b.jsonl.{compression} has the content of b.jsonl compressed, processed before and "
        "no longer an input (renamed?)"
    ), run.stderr
    assert run.stderr.count("\n") == 1 and "--rebuild" in run.stderr
    assert _cli(*args).stderr == ""  # said once
    # Under the old name's name compressed but not its content (one document fewer): no warning
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:39])
    compress("a.jsonl")
    other = _cli(*args)
    assert other.returncode == 0 and other.stderr == "", other.stderr


def test_a_stop_while_the_state_database_is_made_leaves_no_stray_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGTERM 1 s into a first --workers 2 run once left state.sqlite.new-PID beside the database (s18-qa).
    from pipeline import state

    def stopped(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # (the stop signal's exception, raised just as the database is put in place)

    monkeypatch.setattr(state.os, "link", stopped)
    with pytest.raises(KeyboardInterrupt):
        state._create_database(tmp_path / "state.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _state_rows(folder: Path) -> list[tuple[int, str, str, bytes]]:
    db = sqlite3.connect(folder / "state.sqlite")
    try:
        return db.execute("SELECT id, stage, source, payload FROM stage_rows ORDER BY id").fetchall()
    finally:
        db.close()


def test_state_rows_written_ahead_are_committed_with_their_files_record_in_the_same_order(tmp_path: Path) -> None:
    # add_rows writes a file's rows before its record, into a transaction commit_files goes on with: the state is
    # what commit_files alone makes of the same rows (ids, order, a file's rows of an earlier run replaced), and
    # nothing of it is there for a reader until then, nor after discard_rows.
    def record(source: str) -> FileRecord:
        return FileRecord(source, source, 1, "h", "c")

    rows = {name: [("4:dedup", f"{name}{i}".encode() * 1000) for i in range(5)] for name in ("a", "b", "c")}
    whole, ahead = StateStore(tmp_path / "whole"), StateStore(tmp_path / "ahead")
    try:
        for store in (whole, ahead):
            store.commit_files([(record("b"), [("4:dedup", b"old")]), (record("z"), [("4:dedup", b"z")])])
        whole.commit_files([(record(name), rows[name]) for name in ("a", "b", "c")])
        ahead.add_rows("a", rows["a"])
        ahead.add_rows("b", rows["b"][:2])
        ahead.add_rows("b", rows["b"][2:4])
        reader = ahead.reader()
        assert reader.execute("SELECT COUNT(*) FROM stage_rows").fetchone()[0] == 2  # (not committed yet)
        reader.close()
        with pytest.raises(RuntimeError, match="not recorded yet"):  # nothing else may commit them
            ahead.save_first_pass([("0:boilerplate", "x", "h", "c", b"")])
        ahead.commit_files([(record("a"), []), (record("b"), rows["b"][4:]), (record("c"), rows["c"])])
        assert _state_rows(tmp_path / "ahead") == _state_rows(tmp_path / "whole")
        assert [r.source for r in ahead.files()] == ["a", "b", "c", "z"]
        ahead.add_rows("d", rows["a"])
        ahead.discard_rows()  # (a run that stopped before the file was recorded)
        assert _state_rows(tmp_path / "ahead") == _state_rows(tmp_path / "whole")
        ahead.commit_files([(record("d"), [])])  # usable again: a transaction of its own
        assert "d" in [r.source for r in ahead.files()] and len(_state_rows(tmp_path / "ahead")) == 16
    finally:
        whole.close()
        ahead.close()


def test_the_first_pass_cache_is_committed_without_waiting_for_its_sync_and_later_commits_wait(tmp_path: Path) -> None:
    # save_first_pass commits with synchronous=NORMAL (no sync of the WAL at its commit: a cache, which the run's
    # next commit syncs with its own rows); every other commit stays synchronous=FULL; the rows are kept
    store = StateStore(tmp_path / "state")
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        store.save_first_pass([("0:boilerplate", "a", "h", "c", b"parts" * 1000)])
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
        store.commit_files([(FileRecord("a", "a", 1, "h", "c"), [])])
    finally:
        store.db.set_trace_callback(None)
        store.close()
    insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT OR REPLACE INTO first_pass"))
    settings = [(i, s) for i, s in enumerate(statements) if s.startswith("PRAGMA synchronous=")]
    assert [s for i, s in settings if i < insert][-1] == "PRAGMA synchronous=NORMAL"
    assert [s for i, s in settings if i > insert][0] == "PRAGMA synchronous=FULL"
    commit_files = next(i for i, s in enumerate(statements) if s.startswith("INSERT OR REPLACE INTO files"))
    assert [s for i, s in settings if i < commit_files][-1] == "PRAGMA synchronous=FULL"
    again = StateStore(tmp_path / "state")
    try:
        assert again.first_pass_parts("0:boilerplate", "a", "h", "c") == b"parts" * 1000
    finally:
        again.close()


def test_the_state_logs_write_back_is_started_after_rows_are_written_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # add_rows' pages go to SQLite's WAL before the commit: their write-back to disk is started then
    # (io.start_write_back), so that the commit's sync, in the run's tail, has little left to wait for
    from pipeline import io as io_module

    started: list[str] = []
    real = io_module.start_write_back

    def noting(fd: int) -> None:
        started.append(os.readlink(f"/proc/self/fd/{fd}") if sys.platform.startswith("linux") else "state.sqlite-wal")
        real(fd)

    monkeypatch.setattr(io_module, "start_write_back", noting)
    store = StateStore(tmp_path / "state")
    try:
        store.add_rows("a", [("4:dedup", bytes(range(256)) * 4000)])
        assert len(started) == 1 and started[0].endswith("state.sqlite-wal")
        store.commit_files([(FileRecord("a", "a", 1, "h", "c"), [])])
        assert len(_state_rows(tmp_path / "state")) == 1
    finally:
        store.close()


def test_a_files_state_rows_are_written_while_the_run_goes_on_and_recorded_as_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dedup's full chunks of a file's index entries are written after the batch that completes them (add_rows, in
    # the run's thread), not all in the last file's record at the end: the state is the same, row for row.
    import pipeline.runner as runner
    from pipeline.config import default_config

    monkeypatch.setattr("pipeline.stages.dedup.STATE_CHUNK_DOCUMENTS", 6)
    monkeypatch.setattr(runner, "BATCH_DOCS", 8)
    records = _cc_records(80)
    _write_jsonl(tmp_path / "in" / "a.jsonl", records[:20])
    _write_jsonl(tmp_path / "in" / "b.jsonl", records[20:80])
    added: list[tuple[str, str, int]] = []
    add_rows = StateStore.add_rows

    def noting(self: StateStore, source: str, rows: object) -> None:
        rows = list(rows)  # type: ignore[call-overload]
        added.append((threading.current_thread().name, source, len(rows)))
        add_rows(self, source, rows)

    monkeypatch.setattr(StateStore, "add_rows", noting)
    runner.run(default_config(), [str(tmp_path / "in")], tmp_path / "ahead")
    assert {thread for thread, _, _ in added} == {"MainThread"}
    # a.jsonl's as it went on, then its last (when b.jsonl's first were ready: they go first), then b.jsonl's
    sources = [source for _, source, _ in added]
    assert sources == sorted(sources) and sources.count("a.jsonl") >= 3 and sources.count("b.jsonl") >= 3, added
    monkeypatch.setattr(runner, "_ahead_stage", lambda stages: None)
    runner.run(default_config(), [str(tmp_path / "in")], tmp_path / "at-end")
    assert _state_rows(tmp_path / "ahead" / ".cleancorpus") == _state_rows(tmp_path / "at-end" / ".cleancorpus")
    assert len(_state_rows(tmp_path / "ahead" / ".cleancorpus")) > 5
    assert _outputs(tmp_path / "ahead") == _outputs(tmp_path / "at-end")


_SMALL_CHUNKS = """
import sys
import pipeline.stages.dedup as dedup
from pipeline.cli import main

dedup.STATE_CHUNK_DOCUMENTS = 5
main()
"""


@pytest.mark.parametrize("crash_at", ["file-outputs-durable:1", "stop"])
def test_a_run_killed_or_stopped_after_writing_rows_ahead_records_none_of_them(tmp_path: Path, crash_at: str) -> None:
    # The rows written while the run went on are committed with their file's record or not at all: killed before
    # (SIGKILL once the outputs are durable, before the record) or stopped (an error in the stream), the state
    # holds no file and no row, and the next run writes what an uninterrupted run writes.
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_records(40))
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "-o", str(out), "-q")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    # (add_rows says when it is called; "stop": the stream fails once rows were added, as on an error)
    noting = "import pipeline.state as s\nadd = s.StateStore.add_rows\n"
    noting += "s.StateStore.add_rows = lambda *a: print('added', file=sys.stderr) or add(*a)\n"
    if crash_at == "stop":
        noting += "import pipeline.runner as r\nahead = r._Outputs.record_ahead\n"
        noting += "r._Outputs.record_ahead = lambda self: ahead(self) or (self.store._adding and 1 / 0)\n"
    script = _SMALL_CHUNKS.replace("main()", noting + "main()")
    crash = {"CLEANCORPUS_CRASH_AT": crash_at} if crash_at != "stop" else {}
    stopped = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env={**env, **crash}, timeout=300
    )
    assert stopped.returncode == (-signal.SIGKILL if crash_at != "stop" else 1), stopped.stderr
    assert "added" in stopped.stderr  # (rows were written before the run ended)
    db = sqlite3.connect(out / ".cleancorpus" / "state.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM stage_rows").fetchone()[0] == 0
    finally:
        db.close()
    again = subprocess.run([sys.executable, "-c", _SMALL_CHUNKS, *args], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    fresh = subprocess.run(
        [sys.executable, "-c", _SMALL_CHUNKS, *args[:2], "-o", str(tmp_path / "fresh"), "-q"],
        capture_output=True,
        env=env,
    )
    assert fresh.returncode == 0
    assert _outputs(out) == _outputs(tmp_path / "fresh")
    assert _state_rows(out / ".cleancorpus") == _state_rows(tmp_path / "fresh" / ".cleancorpus") != []


def test_the_run_goes_on_once_its_last_record_is_committed_while_the_wal_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last record is durable once committed (the WAL synced): report.json is written while the record's thread
    # copies the WAL into the database (not waited for before it), and the run waits for that thread before the
    # state is closed: the database holds the record, no WAL is left.
    from pipeline.config import default_config
    from pipeline.runner import run

    seen: list[bool] = []
    checkpoint = StateStore.checkpoint

    def waiting_checkpoint(self: StateStore) -> None:
        deadline = time.monotonic() + 10
        while not (tmp_path / "out" / "report.json").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append((tmp_path / "out" / "report.json").exists())
        checkpoint(self)

    monkeypatch.setattr(StateStore, "checkpoint", waiting_checkpoint)
    _write_jsonl(tmp_path / "in" / "a.jsonl", _cc_records(30))
    result = run(default_config(), [str(tmp_path / "in")], tmp_path / "out")
    assert result.documents_in == 30 and seen == [True]
    folder = tmp_path / "out" / ".cleancorpus"
    assert not (folder / "state.sqlite-wal").exists()
    store = StateStore(folder)
    try:
        assert [f.source for f in store.files()] == ["a.jsonl"] and len(_state_rows(folder)) == 1
    finally:
        store.close()
