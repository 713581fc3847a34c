"""A run on Ray stopped by SIGTERM ends as without Ray: ray.init installed its own SIGTERM handlers (Python and
C++: a stack dump, then abort, exit 134, seen by s20-qa with `timeout -s TERM` on `--executor ray`); the
executor puts the run's handler back after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]

# In a fresh process (no Ray started by another test): the command's handler, a local one-CPU Ray, SIGTERM.
SCRIPT = """
import os, signal, threading, time
from pipeline import cli
from pipeline.ray_executor import RayExecutor

cli._catch_sigterm(threading.Event())
executor = RayExecutor(int, workers=1)
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    print("not stopped")
except cli.Terminated:
    print("terminated")
finally:
    executor.close()
"""


def test_sigterm_during_a_ray_run_reaches_the_commands_handler() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this tree's pipeline, also under plain pytest
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert (p.returncode, p.stdout.strip()) == (0, "terminated"), p.stderr[-2000:]
