"""kernel_cache: cached kernels load without parsing their linking bitcode, and still link and answer
symbol questions as numba's own loading does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as ll
from numba.core.dispatcher import Dispatcher
from numba.core.registry import cpu_target

from pipeline.stages import boilerplate_kernels, dedup_kernels, kernel_cache, language_kernels, text_kernels
from pipeline.stages.kernel_cache import elf_defined_globals

REPO = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # (this checkout's package in the fresh processes)


def _external_definitions(bitcode: bytes) -> tuple[set[str], set[str]]:
    """The names the bitcode defines that are not internal or private, and those that are."""
    module = ll.parse_bitcode(bitcode)
    outside, inside = set(), set()
    for values in (module.functions, module.global_variables):
        for v in values:
            if not v.is_declaration:
                local = v.linkage in (ll.Linkage.internal, ll.Linkage.private)
                (inside if local else outside).add(v.name)
    return outside, inside


def test_the_machine_codes_symbols_are_the_bitcodes_external_definitions_for_every_cached_kernel() -> None:
    # what numba would read from the bitcode (`_load_defined_symbols`), less the internal names, for each
    # kernel the cache holds (the cache entry's library: name, "object", (machine code, bitcode))
    text_kernels.table_size(10)  # (a cache entry at least, in a fresh clone)
    checked = 0
    for module in (text_kernels, boilerplate_kernels, language_kernels, dedup_kernels):
        for kernel in vars(module).values():
            if not isinstance(kernel, Dispatcher) or kernel._cache is None:
                continue
            cache_file = kernel._cache._cache_file
            for data_name in cache_file._load_index().values():
                try:
                    _, kind, (object_code, bitcode) = cache_file._load_data(data_name)[0]
                except OSError:  # (written before the checksum, or damaged: a miss, compiled again when used)
                    continue
                outside, inside = _external_definitions(bitcode)
                assert kind == "object"
                assert elf_defined_globals(object_code) == outside, kernel
                assert outside and inside.isdisjoint(outside)
                checked += 1
    assert checked >= 1


def test_what_is_not_a_64_bit_elf_object_is_loaded_numbas_way() -> None:
    assert elf_defined_globals(b"") is None
    assert elf_defined_globals(b"\xcf\xfa\xed\xfe" + bytes(60)) is None  # Mach-O
    assert elf_defined_globals(b"\x7fELF\x01\x01" + bytes(60)) is None  # 32-bit
    assert elf_defined_globals(b"\x7fELF\x02\x01" + bytes(20)) is None  # cut short


# A fresh process (twice: the first may compile and cache): kernels come from the cache unparsed and
# without numba's registries, a kernel compiled here links one of them (and gets the registries from
# numba's compiler), and the engine knows their internal names when asked.
_FRESH = """
import sys, llvmlite.binding as ll, numba, numpy as np
from numba.core.registry import cpu_target
from pipeline.stages import text_kernels
cps = np.array([104, 105, 33], dtype=np.uint32)
h = text_kernels.fnv1a(cps, 0, 3)
[library] = [o.library for o in text_kernels.fnv1a.overloads.values()]
unparsed = library._shared_module is None and "_unparsed_bitcode" in vars(library)
engine = cpu_target.target_context.codegen()._engine
internal = [g.name for g in ll.parse_bitcode(vars(library).get("_unparsed_bitcode", b"")).global_variables
            if not g.is_declaration and g.linkage.name in ("internal", "private")]
functions = {g.name for g in ll.parse_bitcode(vars(library).get("_unparsed_bitcode", b"")).functions
                if not g.is_declaration}
# numba's implementation registries (what compiling needs) are not imported to load cached code
registries = ("numba.np.polynomial.polynomial_functions", "numba.typed.typeddict", "numba.cpython.cmathimpl")
light = not any(m in sys.modules for m in registries)
knows = bool(internal) and all(map(engine.is_symbol_defined, internal)) and not engine.is_symbol_defined("none")

@numba.njit
def twice(a):
    return text_kernels.fnv1a(a, 0, 3) ^ text_kernels.fnv1a(a, 0, 2)

linked = {f.name for f in library._get_module_for_linking().functions if not f.is_declaration}
with np.errstate(over="ignore"):
    print(unparsed, light, knows, h == text_kernels.fnv1a.py_func(cps, 0, 3),
          twice(cps) == h ^ text_kernels.fnv1a.py_func(cps, 0, 2), linked >= functions)
"""


def test_a_fresh_process_loads_cached_kernels_unparsed_and_they_still_link() -> None:
    # The first process may compile fnv1a for this signature (a fresh clone where no test called it yet: CI),
    # and then has no bitcode kept unparsed to look at; it caches the kernel, which the second loads.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import numpy as np\nfrom pipeline.stages import text_kernels\n"
            "text_kernels.fnv1a(np.array([104, 105, 33], dtype=np.uint32), 0, 3)",
        ],
        check=True,
        env=_ENV,
    )
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, check=False, env=_ENV)
    assert done.returncode == 0 and done.stdout.split() == ["True"] * 6, done.stdout + done.stderr


def test_only_tested_numba_releases_are_patched_and_the_environment_can_opt_out() -> None:
    assert kernel_cache.applies("0.68.1", {})
    assert not kernel_cache.applies("0.69.0", {})  # (untested: numba loads its own way, only slower)
    assert not kernel_cache.applies("0.59.1", {})
    assert not kernel_cache.applies("weird", {})
    assert not kernel_cache.applies("0.68.1", {kernel_cache.STOCK_LOADING_ENV: "1"})
    assert kernel_cache.applies("0.68.1", {kernel_cache.STOCK_LOADING_ENV: "0"})


_STOCK = """
import numpy as np
from numba.core.codegen import CPUCodeLibrary
from pipeline.stages import text_kernels
cps = np.array([104, 105, 33], dtype=np.uint32)
patched = getattr(CPUCodeLibrary.__dict__["_get_module_for_linking"], "_lazy_bitcode", False)
with np.errstate(over="ignore"):
    print(patched, text_kernels.fnv1a(cps, 0, 3) == text_kernels.fnv1a.py_func(cps, 0, 3))
"""


def test_with_the_opt_out_a_fresh_process_loads_kernels_numbas_way_and_they_give_the_same_results() -> None:
    for opt_out, patched in (("1", "False"), ("", "True")):
        env = {**_ENV, kernel_cache.STOCK_LOADING_ENV: opt_out}
        done = subprocess.run([sys.executable, "-c", _STOCK], capture_output=True, text=True, check=True, env=env)
        assert done.stdout.split() == [patched, "True"], done.stdout + done.stderr


class _Context:
    refreshed = 0

    def refresh(self) -> None:
        self.refreshed += 1


def test_a_load_refreshes_numbas_context_first_when_its_code_calls_a_symbol_llvm_cannot_resolve() -> None:
    text_kernels.table_size(10)  # (numba's context made: LLVM looks symbols up in the process too)
    engine = cpu_target.target_context.codegen()._engine
    context = _Context()
    kernel_cache._loading.append(context)
    try:
        # the Python API, numba's runtime and helpers (set up before any load): no refresh
        resolved = {"PyArg_UnpackTuple", "NRT_MemInfo_call_dtor", "numba_gil_ensure", "memset"}
        assert not kernel_cache._refresh_if_unresolved(resolved, engine, ll.address_of_symbol)
        # one a registry's import might add (hashing's secrets are such): refreshed first
        assert kernel_cache._refresh_if_unresolved({"memset", "no_such_symbol_here"}, engine, ll.address_of_symbol)
        assert context.refreshed == 1
    finally:
        kernel_cache._loading.pop()
    # outside a load (numba unpickling compiled code elsewhere does not refresh either): nothing to do
    assert not kernel_cache._refresh_if_unresolved({"no_such_symbol_here"}, engine, ll.address_of_symbol)


# A fresh process with the runtime's saved copy in FOLDER: a kernel runs, and one compiled here (lists of
# arrays: numba's runtime linked in) too; prints whether the runtime came from the saved copy.
_RUNTIME = """
import sys, pathlib, numba, numpy as np
from numba.core.runtime import nrt
from pipeline.stages import kernel_cache, text_kernels
kernel_cache.CACHE_DIR = pathlib.Path(sys.argv[1])
found = text_kernels.lead_positions(np.array([1, 2, 3], np.uint32), np.ones(8, np.uint8), np.zeros((1, 8), np.bool_))
saved = "_unparsed_bitcode" in vars(nrt.rtsys.library)

@numba.njit
def sums(n):
    return [np.arange(i).sum() for i in range(n)]

print(saved, found.tolist() == [0, 1, 2] and sums(4) == [0, 0, 1, 3])
"""


def test_numbas_runtime_is_compiled_once_then_loaded_from_its_saved_copy(tmp_path: Path) -> None:
    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _RUNTIME, str(tmp_path)], capture_output=True, text=True, check=True, env=_ENV
        )
        return done.stdout.split()

    assert run() == ["False", "True"]  # compiled, and saved
    [saved] = tmp_path.glob("numba_nrt-*.marshal")
    assert run() == ["True", "True"]  # loaded
    saved.write_bytes(saved.read_bytes()[:100])  # a truncated copy: compiled again and saved again
    assert run() == ["False", "True"]
    assert run() == ["True", "True"]
    # a copy damaged on disk where its form still parses (a symbol's name in the machine code: one flipped
    # bit): compiled again, not loaded (LLVM aborted the process: "Symbol not found", in every later run)
    good = saved.read_bytes()
    assert good.count(b"NRT_MemInfo_call_dtor") >= 1
    saved.write_bytes(good.replace(b"NRT_MemInfo_call_dtor", b"NRT_MemInvo_call_dtor", 1))
    assert run() == ["False", "True"]
    assert saved.read_bytes() == good  # (the runtime's machine code is the same each time it is compiled)
    assert run() == ["True", "True"]


def test_numbas_cache_files_carry_a_checksum_and_a_damaged_or_unmarked_one_is_a_miss(tmp_path: Path) -> None:
    # 4 flipped bits in one .nbc file made every later run crash (SIGSEGV) or quarantine documents (session 18).
    from numba.core.caching import IndexDataCacheFile

    assert getattr(IndexDataCacheFile._save_data, "_checked", False)  # (installed by text_kernels' import)
    files = IndexDataCacheFile(str(tmp_path), "kernel", ("stamp", 1))
    files.save("key", ("machine code", b"\x00" * 1000))
    assert files.load("key") == ("machine code", b"\x00" * 1000)
    [data] = tmp_path.glob("*.nbc")
    assert data.read_bytes().endswith(kernel_cache.DATA_MARK + data.read_bytes()[-32:])
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    data.write_bytes(bytes(damaged))
    assert files.load("key") is None  # (numba compiles the kernel again and saves it)
    files.save("key", ("machine code", b"\x01"))
    assert files.load("key") == ("machine code", b"\x01")
    unmarked = data.read_bytes()[: -len(kernel_cache.DATA_MARK) - 32]  # as numba's own loader wrote it
    data.write_bytes(unmarked)
    assert files.load("key") is None
    # The index (which data file holds which signature) too: damaged, it is empty, a miss.
    files.save("key", ("machine code", b"\x02"))
    [index] = tmp_path.glob("*.nbi")
    assert files.load("key") == ("machine code", b"\x02")
    damaged = bytearray(index.read_bytes())
    damaged[-40] ^= 0x01
    index.write_bytes(bytes(damaged))
    assert files.load("key") is None
    index.write_bytes(b"\x80\x05garbage")
    assert files.load("key") is None


_PROBES = """
import tempfile
probes = []
temporary = tempfile.TemporaryFile
tempfile.TemporaryFile = lambda *a, **k: probes.append(k.get("dir")) or temporary(*a, **k)
from pipeline.stages import boilerplate_kernels, dedup_kernels, language_kernels, normalize_kernels, text_kernels
import llvmlite.binding as ll
from numba.core.registry import cpu_target
asked = []
host = ll.get_host_cpu_name
ll.get_host_cpu_name = lambda: asked.append(1) or host()
codegen = cpu_target.target_context.codegen()
first = codegen.magic_tuple()
print(len(probes), len(set(probes)), first == codegen.magic_tuple() == codegen.magic_tuple(), len(asked))
"""


def test_cache_folders_are_probed_once_and_the_codegen_key_computed_once() -> None:
    # numba probed the cache folder with a temporary file for each of ~125 kernels, and asked LLVM for the host
    # CPU at each cached kernel's load
    done = subprocess.run([sys.executable, "-c", _PROBES], capture_output=True, text=True, check=False, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["1", "1", "True", "1"], done.stdout


_ENVIRONMENTS = """
import pickle, sys
import numpy as np
from numba.core.environment import Environment
from pipeline.stages import text_kernels
cps = np.array([104, 10, 105, 33, 10, 106], dtype=np.uint32)
kind = np.zeros(0x110000, dtype=np.uint8)
kind[10] = 1
before = np.zeros((1, 1), dtype=np.bool_)
got = text_kernels.lead_positions(cps, kind, before)
# its code inlined numba's np.empty and slicing (numba.np.arrayobj): their environments, not that module
unimported = "numba.np.arrayobj" not in sys.modules
stand_ins = [e for e in list(Environment._memo.values()) if e.globals == {"__name__": "numba.np.arrayobj"}]
again = pickle.loads(pickle.dumps(stand_ins[0])) if stand_ins else None
# a kernel compiled afterwards in the same process imports what it needs and calls the loaded one
import numba
@numba.njit
def leads_and_more(a, k, b):
    out = np.empty(2, np.int64)
    out[:] = text_kernels.lead_positions(a, k, b).size
    return out
print(unimported, bool(stand_ins), again is stand_ins[0] if stand_ins else None,
      got.tolist() == text_kernels.lead_positions.py_func(cps, kind, before).tolist(),
      leads_and_more(cps, kind, before).tolist() == [got.size] * 2)
"""


def test_a_loaded_kernels_environments_of_numbas_own_modules_import_none_of_them() -> None:
    # numba imported numba.np.arrayobj and the array registry (~25 ms of a run's kernel loads) to give the
    # environments of its inlined implementations their module's globals, which only object mode reads
    subprocess.run([sys.executable, "-c", _ENVIRONMENTS], capture_output=True, check=True, env=_ENV)  # (cached)
    done = subprocess.run([sys.executable, "-c", _ENVIRONMENTS], capture_output=True, text=True, check=False, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["True"] * 5, done.stdout


def test_a_kernel_of_the_package_is_keyed_by_its_file_and_every_kernel_module() -> None:
    # numba keys a cached kernel by its own file; boilerplate_kernels' machine code also holds text_kernels'
    # and xxh3_kernel's kernels, so an update of those alone must make it stale too
    stamp = boilerplate_kernels.score_log_odds._cache._cache_file._source_stamp
    assert stamp[1] == kernel_cache.kernel_modules_digest(str(REPO / "pipeline" / "stages"))
    own = dedup_kernels.line_layout._cache._cache_file._source_stamp
    assert own[1] == stamp[1] and own[0] != stamp[0]  # (each its own file's hash, the same callees' digest)


def test_the_kernel_modules_digest_changes_with_any_kernel_modules_contents(tmp_path: Path) -> None:
    names = ("a_kernels.py", "b_kernel.py")
    (tmp_path / "a_kernels.py").write_text("x = 1\n")
    (tmp_path / "b_kernel.py").write_text("y = 2\n")
    before = kernel_cache.kernel_modules_digest(str(tmp_path), names)
    assert kernel_cache.kernel_modules_digest(str(tmp_path), names) == before
    (tmp_path / "b_kernel.py").write_text("y = 3\n")
    after = kernel_cache.kernel_modules_digest(str(tmp_path), names)
    assert after != before
    (tmp_path / "b_kernel.py").unlink()
    assert kernel_cache.kernel_modules_digest(str(tmp_path), names) not in (before, after)


def test_every_module_whose_kernels_other_modules_import_is_a_kernel_module() -> None:
    # a module of the package whose kernels another module's kernels can call (it is imported by a module that
    # defines kernels) must be in KERNEL_MODULES, or an edit of it alone would leave its callers' machine code
    import re

    package = REPO / "pipeline"
    sources = {p: p.read_text(encoding="utf-8") for p in package.rglob("*.py")}
    with_kernels = {p.stem for p, text in sources.items() if "numba.njit" in text}
    imported: set[str] = set()
    for text in (t for t in sources.values() if "numba.njit" in t):
        for names in re.findall(r"from pipeline\.stages import ([\w, ]+)", text):
            imported |= {n.strip() for n in names.split(",")}
        imported |= set(re.findall(r"from pipeline\.stages\.(\w+) import", text))
        imported |= set(re.findall(r"from pipeline\.(\w+) import", text))
    callees = {f"{name}.py" for name in imported & with_kernels}
    assert callees, "no kernel module found: the pattern above no longer matches the imports"
    assert callees <= set(kernel_cache.KERNEL_MODULES), callees - set(kernel_cache.KERNEL_MODULES)
