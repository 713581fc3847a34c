"""benchmarks/scale_phases.py: a task's own thread CPU is told apart from its process's."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from conftest import REPO

sys.path.insert(0, str(REPO))  # (plain `pytest`, as CI runs it, puts tests/ on the path, not the repo)
from benchmarks import scale_phases  # noqa: E402
from pipeline import runner  # noqa: E402


def test_a_tasks_thread_cpu_leaves_out_what_other_threads_of_its_process_did(tmp_path, monkeypatch):
    # The main process runs tasks itself while its pool's threads receive and unpickle the workers' results:
    # its process CPU during a task is not the task's cost.
    def busy() -> None:
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass

    def task(n: int) -> int:
        other = threading.Thread(target=busy)
        other.start()
        other.join()  # (this thread waits: next to no CPU of its own)
        return n + 1

    monkeypatch.setattr(runner, "_run_in_worker", task)
    monkeypatch.setattr(scale_phases, "_log", tmp_path / "log.jsonl")
    scale_phases._task("_run_in_worker")
    scale_phases._mark("start-up")
    assert runner._run_in_worker(1) == 2
    scale_phases._mark("end")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    (record,) = [r for r in records if "task" in r]
    assert record["cpu"] - record["c0"] >= 0.2
    assert record["thread"] - record["th0"] < 0.1
    assert record["faults"] >= 0
    table = scale_phases.summary(records, os.getpid())
    assert "thread  faults" in table
    row = next(line for line in table.splitlines() if "_run_in_worker" in line)
    task_cpu, thread = (float(x) for x in row.split()[6:8])
    assert task_cpu >= 0.2 and thread < 0.1
