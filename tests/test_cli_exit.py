"""The program's exit: handlers run, streams flushed, the exit code kept, the interpreter not torn down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import __version__

REPO = Path(__file__).resolve().parents[1]

# The program (`python -m pipeline` and the command call main() from a __main__ module), with an exit
# handler, a thread still finishing, and an object that says when the interpreter takes it apart.
_PROGRAM = """
import atexit, sys, threading, time
from pipeline.cli import main

class Torn:
    def __del__(self):
        print("torn down", flush=True)

kept = Torn()
atexit.register(lambda: print("exit handler", flush=True))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
sys.argv = ["cleancorpus", *sys.argv[1:]]
main()
"""


def _program(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", _PROGRAM, *args], capture_output=True, text=True, env=env)


def test_the_program_exits_after_its_threads_and_exit_handlers_without_tearing_down() -> None:
    done = _program("--version")  # (done before the thread is)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"cleancorpus, version {__version__}", "thread done", "exit handler"]
    # (without the skip, the interpreter's teardown prints "torn down" after the exit handler)
    done = _program("stages")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # (the thread's line comes before or after the listing's end, as fast as the listing is)
    assert lines[-1] == "exit handler" and lines.count("thread done") == 1
    assert (
        "Your own stage: `stage: package.module:ClassName` (a class with an Options model and process(doc))." in lines
    )
    assert "torn down" not in done.stdout


def test_the_program_keeps_its_exit_code() -> None:
    done = _program("check", "/no/such/config.yaml")
    assert done.returncode == 2
    assert "exit handler" in done.stdout and "torn down" not in done.stdout


def test_main_called_from_other_code_raises_system_exit_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cli import main

    monkeypatch.setattr(sys, "argv", ["cleancorpus", "--version"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
