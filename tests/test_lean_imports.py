"""lean_imports: pydantic, numba and ftfy imported without the modules they would pull in only to look at
once (asyncio, scipy, wcwidth), and what those libraries do with them unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # (this checkout's package in the fresh processes)


def _fresh(code: str) -> list[str]:
    """The lines a fresh interpreter prints running ``code``."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def test_a_command_imports_no_asyncio_scipy_or_wcwidth_and_its_libraries_still_work() -> None:
    code = """
import sys
import pipeline.cli
from pipeline.config import ConfigError, default_config, load_config_data
print("asyncio" in sys.modules)
config = default_config()  # every built-in stage imported: numba, ftfy
print("asyncio" in sys.modules, "scipy" in sys.modules, "wcwidth" in sys.modules, "numba" in sys.modules)
try:
    load_config_data({"stages": [{"stage": "dedup", "threshold": 7}]}, "x.yaml")
except ConfigError as err:
    print("rejected")
import numpy as np
from pipeline.stages import text_kernels
print(text_kernels.table_size(20))
import ftfy.formatting
print(ftfy.formatting.display_ljust("ｗ", 4, "*"), ftfy.formatting.character_width("ｗ"), "wcwidth" in sys.modules)
import scipy
print(scipy.__name__)
"""
    assert _fresh(code) == ["False", "False", "False", "False", "True", "rejected", "64", "ｗ**", "2", "True", "scipy"]


def test_the_asyncio_stand_in_answers_as_asyncio_and_hands_coroutines_to_it() -> None:
    # typing_extensions.deprecated asks asyncio whether a function is a coroutine function: the same answers
    # with the stand-ins in place as without (a plain function: no; a coroutine function: the real asyncio's
    # marker, which asyncio then recognizes)
    check = """
import inspect, sys
import typing_extensions
from pipeline import lean_imports

def plain():
    return 1

async def coroutine():
    return 2

with lean_imports._standing_in(lean_imports.asyncio_stand_ins()):
    wrapped_plain = typing_extensions.deprecated("old")(plain)
    print("asyncio" in sys.modules and type(sys.modules["asyncio"]).__name__)
    wrapped_coroutine = typing_extensions.deprecated("old")(coroutine)
print(type(sys.modules["asyncio"]).__name__, "asyncio.coroutines" in sys.modules)
import asyncio
print(asyncio.iscoroutinefunction(wrapped_plain), asyncio.iscoroutinefunction(wrapped_coroutine))
print(wrapped_plain.__deprecated__, wrapped_coroutine.__deprecated__)
"""
    assert _fresh(check) == ["_Deferred", "module", "True", "False", "True", "old", "old"]


def test_nothing_is_stood_in_for_when_the_module_is_there_or_another_thread_runs() -> None:
    code = """
import sys, threading
import asyncio
from pipeline import lean_imports
lean_imports.import_pydantic()
print(type(sys.modules["asyncio"]).__name__)
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
lean_imports.import_ftfy()
print("ftfy" in sys.modules)
stop.set()
thread.join()
lean_imports.import_ftfy()
print("ftfy" in sys.modules, "wcwidth" in sys.modules)
"""
    assert _fresh(code) == ["module", "False", "True", "False"]


def test_help_and_usage_errors_do_not_import_the_config_models() -> None:
    code = """
import sys
from pipeline.cli import cli
for args in (["--help"], ["run", "--help"], ["bogus"]):
    try:
        cli(args, prog_name="cleancorpus")
    except SystemExit as done:
        print(done.code, file=sys.stderr)
before = ("pydantic" in sys.modules, "yaml" in sys.modules, "pipeline.config" in sys.modules)
cli(["stages"], prog_name="cleancorpus", standalone_mode=False)
print("RESULT", *before, "pipeline.config" in sys.modules)
"""
    assert _fresh(code)[-5:] == ["RESULT", "False", "False", "False", "True"]


def test_stock_imports_env_turns_off_the_stand_ins_and_the_saved_patterns() -> None:
    """CLEANCORPUS_STOCK_IMPORTS=1: the libraries import as they are (nothing stood in for while they import)
    and ``re`` keeps its own compiler (re_cache not installed), the escape hatch should a library's release not
    import cleanly the lean way."""
    code = """
from re import _compiler
from pipeline import lean_imports, re_cache
stood_in = []
standing_in = lean_imports._standing_in
def recorded(stand_ins):
    stood_in.extend(stand_ins)
    return standing_in(stand_ins)
lean_imports._standing_in = recorded
import pipeline.cli
from pipeline.config import default_config
default_config()  # every built-in stage imported: pydantic, numba, ftfy
re_cache.install()
print(len(stood_in) > 0, getattr(_compiler.compile, "_saved_patterns", False))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**_ENV, "CLEANCORPUS_STOCK_IMPORTS": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert _fresh(code) == ["True", "True"]  # (and without it: stand-ins while importing, saved patterns)


def test_a_run_asks_numpy_ma_and_numpy_random_for_nothing(tmp_path: Path) -> None:
    # np.unique imported numpy.ma (~4 ms) to ask whether an array was masked; dedup's fixed draws imported
    # numpy.random (~4-7 ms) and are now saved beside the package once drawn. (numba, which the tests use instead
    # of the compiled kernels module, imports both itself: what is checked is who asked for them.)
    code = f"""
import sys
asked = []
def hook(event, args):
    if event == "import" and args[0] in ("numpy.ma", "numpy.random") and args[0] not in sys.modules:
        frame = sys._getframe(1)
        while frame is not None and ("importlib" in frame.f_code.co_filename or "/numpy/" in frame.f_code.co_filename):
            frame = frame.f_back  # (to the code that asked)
        asked.append((args[0], frame.f_code.co_filename if frame is not None else "?"))
sys.addaudithook(hook)
from pipeline.cli import main
sys.argv = ["cleancorpus", "run", {str(REPO / "samples")!r}, "-o", sys.argv[1], "-q"]
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
print(*(name for name, asker in asked if "/pipeline/" in asker))
print("done")
"""
    for out in ("first", "second"):  # (the first may draw dedup's numbers, and save them)
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / out)], capture_output=True, text=True, check=False, env=_ENV
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["done"]
    assert (tmp_path / "second" / "report.json").is_file()
