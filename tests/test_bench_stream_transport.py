"""benchmarks/bench_stream_transport.py times the pool's transport inside a run and puts the pool back as it was."""

from __future__ import annotations

import concurrent.futures.process as cfp
import json
import multiprocessing.connection as mpc
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))  # (plain `pytest`, as CI runs it, puts tests/ on the path, not the repo)
from benchmarks.bench_stream_transport import measure  # noqa: E402


def test_a_two_worker_runs_transport_is_timed_in_the_run(tmp_path):
    lines = [{"id": str(i), "text": f"Article {i} about the town library.\nIt opens at {i % 9}."} for i in range(30)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = (cfp._sendback_result, mpc._ForkingPickler, mpc.Connection._recv_bytes, cfp._ExecutorManagerThread.run)
    figures = measure(str(path), 2)
    assert (cfp._sendback_result, mpc._ForkingPickler, mpc.Connection._recv_bytes) == before[:3]
    assert cfp._ExecutorManagerThread.run is before[3]
    assert 0 < figures["receive"] + figures["unpickle"] <= figures["manager"]
    assert figures["sendback"] and all(n > 0 and wall >= 0 and cpu >= 0 for wall, cpu, n in figures["sendback"])
    assert figures["workers_cpu"] > 0 and figures["switches"][0] > 0
