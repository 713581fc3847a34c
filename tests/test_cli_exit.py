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
    # (the thread ends before or after the command's output, as the machine goes: either way before the handler)
    lines = [line for line in done.stdout.splitlines() if line != "thread done"]
    assert "thread done" in done.stdout
    assert lines[-2:] == [
        "Your own stage: `stage: package.module:ClassName` (a class with an Options model and process(doc)).",
        "exit handler",
    ]
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


# A script of the user's that catches SystemExit around main(), and a shell (IPython, Jupyter) that runs a
# cell's code in __main__ from its own frames: both get SystemExit back and go on (ending the process
# skipped the script's handler and killed the shell's kernel).
_WRAPPER = """
import sys
from pipeline.cli import main
sys.argv = ["cleancorpus", "check", "/no/such/config.yaml"]
try:
    main()
except SystemExit as done:
    print("caught", done.code, flush=True)
print("went on", flush=True)
"""
_SHELL = """
import sys, __main__
cell = "from pipeline.cli import main\\ntry:\\n    main()\\nexcept SystemExit as e:\\n    print('cell got', e.code)"
def run_cell():
    exec(compile(cell, "<cell>", "exec"), __main__.__dict__)
sys.argv = ["cleancorpus", "--version"]
run_cell()
sys.argv = ["cleancorpus", "check", "/no/such/config.yaml"]
def bare_cell():
    exec(compile("main()", "<cell>", "exec"), __main__.__dict__)
try:
    bare_cell()
except SystemExit as done:
    print("shell got", done.code)
print("shell goes on", flush=True)
"""


def test_main_in_a_try_block_or_under_a_shell_raises_system_exit() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _WRAPPER], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["caught 2", "went on"]
    done = subprocess.run([sys.executable, "-c", _SHELL], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"cleancorpus, version {__version__}",
        "cell got 0",
        "shell got 2",
        "shell goes on",
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["stages"], ["--version"]])  # (written at once, and left buffered until exit)
def test_output_that_cannot_be_written_is_one_line_and_exit_1_not_a_traceback(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *args], stdout=full, stderr=subprocess.PIPE, text=True, env=env
        )
    assert done.returncode == 1
    assert done.stderr == "cleancorpus: cannot write the output: No space left on device\n"


# The program, saying at exit what it left OpenBLAS (numpy's) to start: the variable and the process's threads.
_BLAS_PROGRAM = """
import atexit, os, sys
from pipeline.cli import main

def said():
    import numpy  # (imported by the command: its stage modules)
    print(os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task")), flush=True)

atexit.register(said)
sys.argv = ["cleancorpus", "stages"]
main()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts the process's threads in /proc")
def test_the_program_has_openblas_start_no_threads_unless_the_user_set_their_number() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    }
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", _BLAS_PROGRAM], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 1"  # (OpenBLAS's threads would be one per core beside the main one)
    # the user's own setting is theirs
    done = subprocess.run(
        [sys.executable, "-c", _BLAS_PROGRAM], capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "2"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split()[0] == "None"


def test_main_called_from_other_code_leaves_the_environment_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cli import main

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setattr(sys, "argv", ["cleancorpus", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert "OPENBLAS_NUM_THREADS" not in os.environ
