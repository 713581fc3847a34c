"""The compiled kernels module (pipeline/stages/aot_kernels.py, aot_build.py): a small build (the kernels of
text_kernels and normalize_kernels) made once for the session in a folder of its own, then used by child
processes: same results as numba's dispatchers on the seeds, numba never imported, other argument types
handed to numba, a stale or damaged build never used."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SEEDS

# Kernels of these modules are built (fewer than a run's: the build takes ~3-6 s, not ~40)
MODULES = ("text_kernels.py", "normalize_kernels.py")

# In a child: numba's dispatchers called (the JIT cache holds their signatures), then the module built
BUILD = """
import sys
from pathlib import Path
from pipeline.stages import aot_build, aot_kernels
from pipeline.stages.normalize_kernels import normalize_text, squeeze_strip_text
from pipeline.stages.text_kernels import code_points, fnv1a
text = Path(sys.argv[1]).read_text(encoding="utf-8")
normalize_text(text, True, True, True, 2, True)
squeeze_strip_text(text, True, True)
fnv1a(code_points(text), 0, 5)
print(aot_build.build(aot_kernels.build_key(), modules=tuple(sys.argv[2:])))
"""

# In a child: the kernels over every seed, with the options varied; what it found printed as JSON
USE = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from pipeline.stages import aot_kernels
from pipeline.stages.normalize_kernels import normalize_text, squeeze_strip_text
from pipeline.stages.text_kernels import code_points, fnv1a, table_size
digest = hashlib.sha256()
for path in sorted(Path(sys.argv[1]).glob("*.txt")):
    text = path.read_text(encoding="utf-8")
    for flags in [(True, True, True, 2, True), (False, True, False, 1, False), (True, False, True, 0, True)]:
        digest.update(normalize_text(text, *flags).encode("utf-8", "surrogatepass"))
    for collapse, strip in [(True, True), (True, False), (False, True)]:
        digest.update(squeeze_strip_text(text, collapse, strip).encode("utf-8", "surrogatepass"))
    points = code_points(text)
    digest.update(str([int(fnv1a(points, i, min(i + 40, points.size))) for i in range(0, points.size, 97)]).encode())
found = {"active": aot_kernels.active(), "digest": digest.hexdigest(), "numba": "numba" in sys.modules,
         "fallbacks": sum(aot_kernels.fallbacks.values())}
if "--other-types" in sys.argv:  # (what the build has no function for: numba's dispatcher)
    points = code_points("a few words, then some more")
    calls = [(table_size, (np.int8(100),)), (fnv1a, (points[::2], 1, 9)), (fnv1a, (points, np.int32(1), 9))]
    other = [kernel(*args) for kernel, args in calls] + [fnv1a(points, 1, end=9)]  # (keywords: numba's always)
    found["other"] = [int(x) for x in other]
    if aot_kernels.active():  # (a call goes to numba if the build has no function for its argument types)
        missing = [aot_kernels._guard.args_key(*args) not in kernel.table for kernel, args in calls]
        found["fallbacks_expected"] = sum(missing) + 1
    found["fallbacks_after"] = sum(aot_kernels.fallbacks.values())
    found["numba_after"] = "numba" in sys.modules
print(json.dumps(found))
"""


def _env(folder: Path, aot: bool, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLEANCORPUS_AOT": "1" if aot else "0", **extra}
    env["CLEANCORPUS_AOT_DIR"] = str(folder)
    return env


def _run(script: str, folder: Path, aot: bool, *args: str, **extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(SEEDS), *args],
        env=_env(folder, aot, **extra),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def aot_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a build of MODULES' kernels (the build's own folder inside it)."""
    pytest.importorskip("numba.pycc")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (numba.pycc needs one)")
    folder = tmp_path_factory.mktemp("aot")
    seed = sorted(SEEDS.glob("*.txt"))[0]
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(seed), *MODULES],
        env=_env(folder, aot=False),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    built = Path(done.stdout.strip().splitlines()[-1])
    assert built.parent == folder and (built / "manifest").is_file()
    return folder


def test_compiled_kernels_give_numbas_results_without_numba(aot_folder: Path) -> None:
    jit = _run(USE, aot_folder, False)
    aot = _run(USE, aot_folder, True)
    assert not jit["active"] and jit["numba"]
    assert aot["active"] and not aot["numba"] and aot["fallbacks"] == 0
    assert aot["digest"] == jit["digest"]


def test_other_argument_types_go_to_numba(aot_folder: Path) -> None:
    jit = _run(USE, aot_folder, False, "--other-types")
    aot = _run(USE, aot_folder, True, "--other-types")
    assert aot["active"] and not aot["numba"]
    assert aot["other"] == jit["other"]
    assert aot["fallbacks_after"] == aot["fallbacks_expected"] and aot["numba_after"]


def test_a_stale_build_is_not_used(aot_folder: Path) -> None:
    # Another setting of numba's (as another numba, Python, CPU or edited kernels would): another build key
    found = _run(USE, aot_folder, True, NUMBA_OPT="2")
    assert not found["active"] and found["numba"]


def test_a_damaged_build_is_not_used(aot_folder: Path, tmp_path: Path) -> None:
    (built,) = [p for p in aot_folder.iterdir() if p.is_dir()]
    copy = tmp_path / built.name
    shutil.copytree(built, copy)
    (so,) = copy.glob("cc_aot_kernels*")
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0x10
    so.write_bytes(bytes(data))
    found = _run(USE, tmp_path, True)
    assert not found["active"] and found["numba"]
    assert found["digest"] == _run(USE, aot_folder, True)["digest"]


def test_compiled_kernels_release_the_gil_as_numbas_do(aot_folder: Path) -> None:
    # (every kernel here is declared nogil=True: the exported functions' wrappers release the GIL around the call)
    from pipeline.stages.kernel_cache import elf_symbols

    (built,) = [p for p in aot_folder.iterdir() if p.is_dir()]
    (so,) = built.glob("cc_aot_kernels*")
    symbols = elf_symbols(so.read_bytes())
    assert symbols is not None
    assert {"PyEval_SaveThread", "PyEval_RestoreThread"} <= symbols[1]


def test_a_build_that_does_not_load_is_not_built_again(aot_folder: Path, tmp_path: Path) -> None:
    # (its files are the ones its manifest names, but the extension cannot be loaded: the next run would build the
    # same again, and again; it is marked failed instead)
    import marshal

    from pipeline.stages.base import with_digest, without_digest

    (built,) = [p for p in aot_folder.iterdir() if p.is_dir()]
    copy = tmp_path / built.name
    shutil.copytree(built, copy)
    (so,) = copy.glob("cc_aot_kernels*")
    so.write_bytes(b"not an ELF file")
    manifest = marshal.loads(without_digest((copy / "manifest").read_bytes()))
    manifest["files"][so.name] = hashlib.sha256(so.read_bytes()).hexdigest()
    (copy / "manifest").write_bytes(with_digest(marshal.dumps(manifest)))
    script = (
        "from pipeline.stages import aot_kernels as a, text_kernels; import json; "
        "print(json.dumps([a.active(), a._load_failed, a.build_in_background()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(tmp_path, True), capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, True, None]
    assert copy.with_suffix(".failed").is_file() and not copy.with_suffix(".building").exists()


def _guard(aot_folder: Path):  # noqa: ANN202 - the built guard module
    from pipeline.stages import aot_kernels

    (built,) = [p for p in aot_folder.iterdir() if p.is_dir()]
    (path,) = built.glob("aot_guard*")
    return aot_kernels._load_extension("aot_guard", path)


def test_the_guard_tells_apart_what_numba_types_apart(aot_folder: Path) -> None:
    """Two calls get the same exported function only if numba's typeof gives their arguments the same types."""
    import numba

    guard = _guard(aot_folder)
    base = np.arange(12, dtype=np.int64)
    readonly = np.frombuffer(b"\0" * 32, np.uint32)
    values = [
        base,
        base[::2],
        base.reshape(3, 4),
        base.reshape(3, 4).T,
        base.reshape(3, 4)[:, ::2],
        base.astype(np.int32),
        base.astype(np.uint32),
        base.astype(np.float64),
        base.astype(np.uint8),
        base.astype(bool),
        readonly,
        np.frombuffer(b"\0" * 33, np.uint8)[1:].view(np.uint32),  # (not aligned)
        np.zeros(0, np.int64),
        np.zeros(1, np.int64),
        3,
        -(2**63),
        True,
        2.5,
        np.int64(3),
        np.int32(3),
        np.uint64(3),
        np.float32(1),
        np.bool_(False),
        None,
        (base, 1),
        (base, 1.0),
        (1, 2),
        (1, (base, True)),
    ]
    keyed = []
    for value in values:
        key = guard.args_key(value)
        assert key is not None, value
        keyed.append((key, numba.typeof(value)))
    for (key_a, type_a), (key_b, type_b) in itertools.combinations(keyed, 2):
        if key_a == key_b:
            assert type_a == type_b
    # Values whose key is not made here (their calls go to numba)
    for value in ["text", 2**64, [1, 2], np.zeros(3, "M8[s]"), np.datetime64(1, "ms"), np.zeros(2, "i8,f8")]:
        assert guard.args_key(value) is None, value
    assert guard.args_key(base, 1) == guard.args_key(base) + guard.args_key(1)
    swapped = base.astype(base.dtype.newbyteorder())  # (numba cannot type it: its calls go to numba, which says so)
    assert guard.args_key(swapped) != guard.args_key(base)


def test_the_guard_calls_the_function_for_the_key_and_the_fallback_otherwise(aot_folder: Path) -> None:
    guard = _guard(aot_folder)
    calls = []
    kernel = guard.Kernel({guard.args_key(1, 2.0): lambda *a: ("exported", a)}, lambda *a, **k: ("fallback", a, k))
    assert kernel(1, 2.0) == ("exported", (1, 2.0))
    assert kernel(1, 2) == ("fallback", (1, 2), {})
    assert kernel(1, 2.0, x=1) == ("fallback", (1, 2.0), {"x": 1})
    assert kernel("no key") == ("fallback", ("no key",), {})
    kernel.py_func = calls.append  # (attributes, as a dispatcher's)
    assert kernel.py_func is not None


def test_python_level_names_are_the_kernels_python_calls() -> None:
    from pipeline.stages.aot_build import python_level_names

    names = python_level_names(str(REPO / "pipeline"))
    assert {"normalize_points", "squeeze_strip", "lead_scan", "table_size"} <= names
    assert "_is_odd_space" not in names  # (only kernels call it)


def test_build_key_follows_the_kernel_sources_and_the_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.stages import aot_kernels
    from pipeline.stages.kernel_cache import KERNEL_MODULES

    for name in (*KERNEL_MODULES, "aot_build.py"):
        shutil.copy(REPO / "pipeline" / "stages" / name, tmp_path / name)
    monkeypatch.setattr(aot_kernels, "_STAGES", str(tmp_path))
    keys = [aot_kernels.build_key()]
    for name in ("language_kernels.py", "aot_build.py"):
        with open(tmp_path / name, "a") as f:
            f.write("\n")
        keys.append(aot_kernels.build_key())
    monkeypatch.setenv("NUMBA_OPT", "1")
    keys.append(aot_kernels.build_key())
    assert len(set(keys)) == len(keys)
