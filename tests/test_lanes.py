"""--workers N as N lanes: N - 1 worker processes and the main process, which runs a task itself while the result
it needs next is not ready (``ProcessExecutor(helps=True)``, what ``make_executor`` gives for N >= 2)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPORA
from conftest import run_cli as _cli

from pipeline import executors
from pipeline.document import Document
from pipeline.stages.base import Stage

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes forked")

_MAIN = os.getpid()  # (this test process: forked workers see it too)


def _slow_in_workers(item: int) -> tuple[int, int]:
    """``item`` and the process that ran it: a worker takes its time, so that this process runs the tasks after."""
    if os.getpid() != _MAIN:
        time.sleep(0.3)
    return item, os.getpid()


def _fails_at_six(item: int) -> int:
    if item == 6:
        raise ValueError(f"bad item {item} in {'this process' if os.getpid() == _MAIN else 'a worker'}")
    if os.getpid() != _MAIN:
        time.sleep(0.3)
    return item


def _interrupted_at_five(item: int) -> int:
    if os.getpid() != _MAIN:
        time.sleep(0.3)
    elif item == 5:
        raise KeyboardInterrupt  # (what the SIGTERM handler raises: cli.Terminated)
    return item


def test_make_executor_gives_n_lanes_of_which_this_process_is_one() -> None:
    pool = executors.make_executor(3, int)
    try:
        assert isinstance(pool, executors.ProcessExecutor)
        assert pool.helps and pool.lanes == 3 and pool.pool._max_workers == 2  # type: ignore[attr-defined]
    finally:
        pool.close()
    assert isinstance(executors.make_executor(1, int), executors.SerialExecutor)


def test_a_helping_pool_runs_tasks_here_while_the_next_result_is_not_ready_in_order_and_bounded() -> None:
    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=2, held=5)
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(20):
            pulled += 1
            yield i

    try:
        results = []
        for result in pool.map(_slow_in_workers, items()):
            assert pulled - len(results) <= 5  # (at most ``held`` results waiting, the one given included)
            results.append(result)
    finally:
        pool.close()
    assert [item for item, _ in results] == list(range(20))
    here = [item for item, pid in results if pid == _MAIN]
    assert here and len(here) < 20  # both lanes ran tasks
    assert results[0][1] != _MAIN  # (the pool's tasks go first: this process's own work comes first)


def test_at_the_end_of_the_items_a_helping_pool_takes_back_the_tasks_no_worker_started() -> None:
    # The last tasks given to the pool waited for its busy worker while this process, with nothing more to run,
    # waited for them (~0.1 s of a core idle at the end of each pass on 40 MB at 2 workers).
    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=4)
    try:
        results = list(pool.map(_slow_in_workers, range(4)))
    finally:
        pool.close()
    assert [item for item, _ in results] == [0, 1, 2, 3]
    assert results[0][1] != _MAIN and results[-1][1] == _MAIN  # (the pool's queue to its worker holds the next one)


def test_a_worker_that_dies_while_a_task_this_process_cancelled_waits_prints_no_thread_traceback() -> None:
    # Python 3.11's pool thread, failing every pending task when a worker died, raised InvalidStateError at one
    # that _take_back had just cancelled: "Exception in thread" and a traceback above the run's one-line error
    # (seen once in ~12 runs of the kill test of test_operations under load), and the pool's clean-up skipped.
    from concurrent.futures.process import BrokenProcessPool

    raised: list[BaseException | None] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: raised.append(args.exc_value)
    pool = executors.ProcessExecutor(1, int)
    try:
        # One worker: two tasks go into the pool's queue to it, the third waits in the pool's own list.
        tasks = [pool._submit(time.sleep, 30) for _ in range(3)]
        assert tasks[2].cancel()
        for process in list(pool.pool._processes.values()):  # type: ignore[union-attr]
            process.kill()  # (the OOM killer)
        pool.pool._executor_manager_thread.join(timeout=20)  # type: ignore[union-attr]
        assert raised == []
        assert tasks[2].cancelled()
        for task in tasks[:2]:
            assert isinstance(task.exception(timeout=20), BrokenProcessPool)
    finally:
        threading.excepthook = hook
        pool.close()


def _slow_in_workers_noted(item: tuple[int, str]) -> tuple[int, int]:
    """``_slow_in_workers``, noting in a file every time a process runs the item (once, wherever it runs)."""
    with open(item[1], "a") as fh:
        fh.write(f"{item[0]}\n")
    return _slow_in_workers(item[0])


def _three_noted_then_a_pause(noted: Path) -> Iterator[tuple[int, str]]:
    """Items 0-1-2 for ``_slow_in_workers_noted``, then a pause before the end: the pool's thread moves the tasks
    into its queue to the worker meanwhile (where ``Future.cancel`` cannot reach them)."""
    for i in range(3):
        yield i, str(noted)
    time.sleep(0.2)


def test_at_the_end_of_the_items_a_helping_pool_takes_back_even_the_tasks_queued_to_its_worker(tmp_path: Path) -> None:
    # At 1 worker the pool's queue to it held all ``in_flight`` tasks (where ``Future.cancel`` cannot reach): at the
    # end of each pass this process waited for the worker's last 2-3 tasks (~0.1 s of a 40 MB stream's end). They
    # are claimed now (``_Claims``): the worker skips them, and each task runs once.
    noted = tmp_path / "ran"

    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=3)
    try:
        results = list(pool.map(_slow_in_workers_noted, _three_noted_then_a_pause(noted)))
    finally:
        pool.close()
    assert [item for item, _ in results] == [0, 1, 2]
    assert [pid == _MAIN for _, pid in results] == [False, True, True]
    assert sorted(noted.read_text().split()) == ["0", "1", "2"]  # (the worker ran the others' wrapper, not them)
    assert not executors._claims  # (let go with the pool)


def test_a_helping_pool_takes_nothing_back_while_this_process_is_busy_with_work_of_its_own(tmp_path: Path) -> None:
    # (the first pass, with the later stages' warm-up in a thread here: a task taken back slowed it, while the worker's
    # core went idle; on CC the warm-up ended later, and the stream started later)
    noted = tmp_path / "ran"

    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=3)
    pool.busy = lambda: True
    try:
        results = list(pool.map(_slow_in_workers_noted, _three_noted_then_a_pause(noted)))
    finally:
        pool.close()
    assert [item for item, _ in results] == [0, 1, 2]
    assert all(pid != _MAIN for _, pid in results)


def test_a_claims_lock_that_cannot_be_had_takes_nothing_back_and_hangs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (held by a process killed at that instant: the worker runs its tasks, this process takes none back)
    monkeypatch.setattr(executors._Claims, "PATIENCE", 0.05)
    noted = tmp_path / "ran"

    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=3)
    assert pool.claims_key is not None
    lock = executors._claims[pool.claims_key].lock
    try:
        assert lock.acquire(timeout=1)
        results = list(pool.map(_slow_in_workers_noted, _three_noted_then_a_pause(noted)))
    finally:
        lock.release()
        pool.close()
    assert results[:2] == [(0, results[0][1]), (1, results[0][1])] and results[0][1] != _MAIN
    assert [item for item, _ in results] == [0, 1, 2]
    assert sorted(noted.read_text().split()) == ["0", "1", "2"]


def test_work_given_meanwhile_is_done_once_the_pool_has_its_first_tasks_and_before_a_result_is_given() -> None:
    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=2)
    events: list[object] = []
    pool.meanwhile(lambda: events.append("meanwhile"))

    def items() -> Iterator[int]:
        for i in range(4):
            events.append(f"item {i}")
            yield i

    try:
        for item, _ in pool.map(_slow_in_workers, items()):
            events.append(item)
        pool.meanwhile(lambda: events.append("at the end"))  # (a map of no items still does it)
        assert list(pool.map(_slow_in_workers, [])) == []
    finally:
        pool.close()
    assert events[:3] == ["item 0", "item 1", "meanwhile"]  # (the pool's tasks first: the worker starts)
    assert [e for e in events if isinstance(e, int)] == [0, 1, 2, 3] and events[-1] == "at the end"
    serial = executors.ProcessExecutor(1, int)  # (not helping: no map of its own to do it in, so now)
    try:
        serial.meanwhile(lambda: events.append("now"))
        assert events[-1] == "now"
    finally:
        serial.close()


@pytest.mark.parametrize("where", ["serial", "worker", "here"])
def test_an_error_in_a_task_run_here_surfaces_in_order_as_a_workers_does(where: str) -> None:
    pool: executors.Executor
    if where == "serial":
        pool = executors.SerialExecutor()
    elif where == "worker":
        pool = executors.ProcessExecutor(2, int, in_flight=10)
    else:
        pool = executors.ProcessExecutor(1, int, helps=True, in_flight=2)
    results: list[int] = []
    try:
        with pytest.raises(ValueError, match="bad item 6") as raised:
            for result in pool.map(_fails_at_six, range(12)):
                results.append(result)
    finally:
        pool.close()
    assert results == [0, 1, 2, 3, 4, 5]  # every result before it, none after
    ran = "a worker" if where == "worker" else "this process"
    assert str(raised.value) == f"bad item 6 in {ran}"


def test_a_stop_signal_during_a_task_run_here_ends_the_map_at_once() -> None:
    # As a stop ends a wait for a worker's result: not held until the task's turn (a run told to stop goes on).
    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=2)
    results: list[int] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            for result in pool.map(_interrupted_at_five, range(12)):
                results.append(result)
        assert results == []  # (items 0 and 1 are still with the worker)
    finally:
        pool.close()


def _get_shared(shared: executors.Shared) -> tuple[int, bool, int]:
    if os.getpid() != _MAIN:
        time.sleep(0.3)
    return id(shared.get()), bool(executors._loaded), os.getpid()


def test_a_task_run_here_gets_the_shared_object_itself_inherited_or_not() -> None:
    # An object shared once the pool had forked goes to the workers through an in-memory file: a task run here
    # loaded it again from there, a copy, and cleared what the process kept for workers still to fork (and froze
    # the collector's objects): it now gets the object itself.
    pool = executors.ProcessExecutor(1, int, helps=True, in_flight=1)
    before, after = {"n": list(range(100))}, {"m": list(range(100))}
    try:
        inherited = executors.share(pool, before)
        pool.start()
        later = executors.share(pool, after)
        assert inherited.inherited and later.path is not None
        results = list(pool.map(_get_shared, [inherited, later] * 4))
        assert inherited.key in executors._loaded  # (not cleared)
    finally:
        pool.close()
    here = [(i, value) for i, (value, _, pid) in enumerate(results) if pid == _MAIN]
    assert here and all(value == id(before if i % 2 == 0 else after) for i, value in here)
    assert all(loaded for _, loaded, pid in results if pid == _MAIN)


class SlowInWorkers(Stage):
    """Takes its time in worker processes (so that the main process runs the later tasks itself) and notes which
    process ran each document, in which pass, in the file CLEANCORPUS_TEST_LANES. With CLEANCORPUS_TEST_LANE_DO set:
    ``quarantine`` fails every document small-7, small-17, ... (quarantined); in the main process only, at the stream's
    first page of the small file, ``fail`` fails its batch (outside the per-document quarantine) and
    ``term`` sends SIGTERM to the process."""

    name = "slow_in_workers"

    def __init__(self, options: Stage.Options | None = None) -> None:
        super().__init__(options)
        self.batch: set[str] = set()  # (the stream runs process_ahead first; the first pass only process)
        self.seen = 0

    def _note(self, doc_id: str, when: str, here: bool) -> None:
        with open(os.environ["CLEANCORPUS_TEST_LANES"], "a", encoding="utf-8") as fh:
            fh.write(f"{doc_id} {when} {'main' if here else 'worker'}\n")

    def process_ahead(self, docs: list[Document]) -> None:
        here = multiprocessing.parent_process() is None
        if not here:
            time.sleep(0.15)
        self.batch = {doc.id for doc in docs}
        small = [doc.id for doc in docs if doc.id.startswith("small-")]
        if small and here and os.environ.get("CLEANCORPUS_TEST_LANE_DO") == "fail":
            self._note(small[0], "failed", here)
            raise RuntimeError("batch failed in the main process")

    def process(self, doc: Document) -> None:
        here = multiprocessing.parent_process() is None
        stream = doc.id in self.batch
        self.seen += 1
        self.stat_update("seen")  # (so that the first pass does not find the document unchanged: run in the stream)
        if not here and not stream and self.seen % 32 == 0:
            time.sleep(0.1)
        self._note(doc.id, "stream" if stream else "first", here)
        what = os.environ.get("CLEANCORPUS_TEST_LANE_DO")
        if what == "quarantine" and doc.id.startswith("small-") and doc.id.endswith("7"):
            raise ValueError(f"cannot handle {doc.id}")
        if what == "term" and here and stream and doc.id.startswith("small-"):
            self._note(doc.id, "terminated", here)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # (the signal is handled before the document is done)


def _lane_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A plain JSONL file of web pages large enough to be read by ranges in the workers (and so in the main
    process's lane), a small file of many short pages sent in batches (64 documents each), and the config: this
    module's stage first, then the default ones (boilerplate's first pass, dedup, normalize)."""
    src = tmp_path / "in"
    src.mkdir()
    lines = (CORPORA / "cc-2019-30-dolma" / "docs.jsonl").read_bytes().splitlines(keepends=True)
    (src / "a.jsonl").write_bytes(b"".join(lines[:260]))
    short = [
        {"id": f"small-{i}", "text": f"Page {i % 37} of the small site.\nSome words here, number {i}."}
        for i in range(700)
    ]
    (src / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in short), encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(
        "stages:\n  - stage: test_lanes:SlowInWorkers\n  - stage: encoding\n  - stage: boilerplate\n"
        "  - stage: language\n  - stage: dedup\n  - stage: normalize\n",
        encoding="utf-8",
    )
    return src, config


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of a run but its reports (they carry timings) and the state folder."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("report.") and ".cleancorpus" not in p.parts
    }


def _run(tmp_path: Path, name: str, workers: str, **env: str) -> tuple[Any, Path, list[tuple[str, str, str]]]:
    src, config = tmp_path / "in", tmp_path / "c.yaml"
    out, lanes = tmp_path / name, tmp_path / f"{name}.lanes"
    args = ("run", str(src), "-o", str(out), "-c", str(config), "-q", "--workers", workers)
    ended = _cli(*args, env={"CLEANCORPUS_TEST_LANES": str(lanes), **env})
    noted = [tuple(line.split()) for line in lanes.read_text(encoding="utf-8").splitlines()] if lanes.exists() else []
    return ended, out, noted  # type: ignore[return-value]


def test_runs_at_2_and_3_workers_with_tasks_run_in_the_main_process_give_the_outputs_of_1(tmp_path: Path) -> None:
    # Both passes (boilerplate's first pass, the stream), both kinds of tasks (ranges read by the lane, documents
    # sent), a document quarantined in the main process's lane: the outputs and the report's figures are those
    # of --workers 1.
    _lane_inputs(tmp_path)
    last_of_a = json.loads((tmp_path / "in" / "a.jsonl").read_bytes().splitlines()[-1])["id"]
    env = {"CLEANCORPUS_TEST_LANE_DO": "quarantine"}
    one, out1, _ = _run(tmp_path, "w1", "1", **env)
    assert one.returncode == 3, one.stderr  # (quarantined)
    report1 = json.loads((out1 / "report.json").read_text())
    for workers in ("2", "3"):
        ended, out, noted = _run(tmp_path, f"w{workers}", workers, **env)
        assert ended.returncode == 3, ended.stderr
        assert ended.stderr == one.stderr
        assert _outputs(out) == _outputs(out1)
        report = json.loads((out / "report.json").read_text())
        assert report["documents"] == report1["documents"] and report["workers"] == int(workers)
        assert [s["documents_out"] for s in report["stages"]] == [s["documents_out"] for s in report1["stages"]]
        stream = {doc_id: lane for doc_id, when, lane in noted if when == "stream"}
        first = {doc_id: lane for doc_id, when, lane in noted if when == "first"}
        assert stream.keys() >= {"small-0", "small-699", last_of_a} <= first.keys()
        assert ran_in_both(stream) and ran_in_both(first)
        sent = {doc_id: lane for doc_id, lane in stream.items() if doc_id.startswith("small-")}
        assert "main" in sent.values() and "main" in {v for k, v in stream.items() if k not in sent}  # (and ranges)
        quarantined = {doc_id for doc_id in sent if doc_id.endswith("7")}
        assert "main" in {stream[doc_id] for doc_id in quarantined}
    assert (out1 / "rejected.jsonl").read_text().count("cannot handle small-") == 70


def ran_in_both(lanes: dict[str, str]) -> bool:
    return set(lanes.values()) == {"main", "worker"}


def test_an_error_in_a_batch_run_in_the_main_process_fails_the_run_as_in_a_worker(tmp_path: Path) -> None:
    _lane_inputs(tmp_path)
    one, _, _ = _run(tmp_path, "w1", "1", CLEANCORPUS_TEST_LANE_DO="fail")
    two, out, noted = _run(tmp_path, "w2", "2", CLEANCORPUS_TEST_LANE_DO="fail")
    assert "failed" in [when for _, when, _ in noted]  # (in the main process: see the stage)
    assert one.returncode == two.returncode == 1
    message = "cleancorpus: error: run failed: RuntimeError: batch failed in the main process"
    assert one.stderr.startswith(message) and two.stderr.startswith(message), (one.stderr, two.stderr)
    assert not list(out.rglob("*.partial")) and not (out / "b.jsonl").exists()


def test_sigterm_during_a_task_run_in_the_main_process_ends_the_run_and_the_next_run_completes_it(
    tmp_path: Path,
) -> None:
    _lane_inputs(tmp_path)
    ended, out, noted = _run(tmp_path, "w2", "2", CLEANCORPUS_TEST_LANE_DO="term")
    assert [when for _, when, _ in noted].count("terminated") == 1
    assert ended.returncode == 143, ended.stderr
    assert ended.stderr.startswith("cleancorpus: error: terminated (SIGTERM)"), ended.stderr
    assert not list(out.rglob("*.partial")) and not (out / "b.jsonl").exists()
    again, _, _ = _run(tmp_path, "w2", "2")
    assert again.returncode == 0, again.stderr
    reference, out1, _ = _run(tmp_path, "w1", "1")
    assert reference.returncode == 0 and _outputs(out) == _outputs(out1)
