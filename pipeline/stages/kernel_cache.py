"""Loading numba's cached kernels without parsing their linking bitcode up front.

A kernel numba loads from its cache (``cache=True``) comes as machine code plus the kernel's LLVM
bitcode, kept so that a kernel compiled later can link (inline) it. numba parses that bitcode at every
load, and reads from it which symbols the kernel defines (``JitEngine._defined_symbols``, what
``get_pointer_to_function`` checks before asking for an address): ~40 % of loading a kernel, ~0.1 s of
the ~38 kernels a run loads (`benchmarks/bench_startup.py`), while a run whose kernels are all cached
links nothing. Here the bitcode is parsed when something links the kernel (a kernel compiled in this
process calls it); the defined symbols come from the machine code's ELF symbol table instead (its
global and weak symbols: the same names as the bitcode's definitions that are not internal or private,
checked for every kernel by the tests), and a question about any other name parses every kernel's
bitcode first, so that ``is_symbol_defined`` answers as numba's own loading would. Machine code that is
not 64-bit little-endian ELF (other platforms) is loaded numba's way.

And before each cached load numba refreshes its CPU target context: the first refresh imports and
installs every implementation registry numba has (~0.06 s: what compiling needs; numba's compiler
refreshes on its own before compiling anything). Loading machine code needs only numba's runtime (NRT)
and the symbols it calls: here a load sets up the runtime, and refreshes first only when the machine
code calls a symbol LLVM cannot resolve yet (one a registry's import would add), so that what loads is
what numba's own loading would load.

numba's runtime itself (NRT: a small LLVM module of reference counting and atomic helpers) is compiled
by every process, at its first kernel (~17 ms of LLVM's optimizer and code generator). Its machine code
is saved beside the package like the other first-use caches (`base.cached_build`), under a name that
holds numba's and llvmlite's versions, this Python's and numba's code generation settings (target
triple, CPU and its features, optimization options), and loaded like a cached kernel in later processes.
"""

from __future__ import annotations

import hashlib
import io
import marshal
import os
import pickle
import struct
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pipeline.stages.base import CACHE_DIR, cached_build, with_digest, without_digest

_SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr: name type flags addr offset size link info addralign entsize
_SYMBOL = struct.Struct("<IBBHQQ")  # Elf64_Sym: name info other shndx value size
_SHT_SYMTAB = 2
_STB_GLOBAL, _STB_WEAK = 1, 2


def elf_symbols(obj: bytes) -> tuple[set[str], set[str]] | None:
    """The names of the global and weak symbols an ELF64 little-endian object defines (its symbol
    table's entries with a section), and of those it uses without defining; None if ``obj`` is not
    such an object or has no symbol table."""
    try:
        if obj[:6] != b"\x7fELF\x02\x01":  # magic, 64-bit, little-endian
            return None
        (shoff,) = struct.unpack_from("<Q", obj, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
        for i in range(shnum):
            _, kind, _, _, offset, size, link, first_global, _, _ = _SECTION.unpack_from(obj, shoff + i * shentsize)
            if kind != _SHT_SYMTAB:
                continue
            strings = _SECTION.unpack_from(obj, shoff + link * shentsize)[4]
            defined, undefined = set(), set()
            # (local symbols come first: sh_info is the index of the first non-local one)
            for j in range(first_global, size // _SYMBOL.size):
                name, info, _, section, _, _ = _SYMBOL.unpack_from(obj, offset + j * _SYMBOL.size)
                start = strings + name
                if section == 0:
                    undefined.add(obj[start : obj.index(b"\0", start)].decode())
                elif info >> 4 in (_STB_GLOBAL, _STB_WEAK):
                    defined.add(obj[start : obj.index(b"\0", start)].decode())
            return defined, undefined
    except (struct.error, ValueError, UnicodeDecodeError):
        return None
    return None


def elf_defined_globals(obj: bytes) -> set[str] | None:
    """The first of `elf_symbols`."""
    symbols = elf_symbols(obj)
    return None if symbols is None else symbols[0]


# The target context of the cached load in progress (numba loads under its compiler lock), and the
# symbols found resolvable so far (LLVM's own lookup: what the runtime and the contexts added, the process)
_loading: list[Any] = []
_resolvable: set[str] = set()


def _refresh_if_unresolved(names: set[str], engine: Any, address_of_symbol: Any) -> bool:
    """Refresh the context of the load in progress if LLVM cannot resolve one of ``names`` (and the
    engine does not define it); True if it did."""
    if not _loading:
        return False
    for name in names - _resolvable:
        if name in engine._defined_symbols or address_of_symbol(name):
            _resolvable.add(name)
        else:
            _loading[-1].refresh()
            return True
    return False


def _nrt_cache_name(codegen: Any) -> str:
    """The saved runtime's file name: a hash of everything its machine code depends on."""
    import llvmlite
    import numba
    from numba.core import config

    settings = [config.OPT, config.LOOP_VECTORIZE, config.SLP_VECTORIZE, config.ENABLE_AVX, config.DEBUGINFO_DEFAULT]
    key = repr((numba.__version__, llvmlite.__version__, sys.version, codegen.magic_tuple(), settings))
    return f"numba_nrt-{hashlib.sha256(key.encode()).hexdigest()[:16]}.marshal"


# A saved runtime carries a SHA-256 (`base.with_digest`): machine code damaged on disk is otherwise loaded and
# run as it is: LLVM aborts the process on a bad relocation or symbol, and a flipped instruction crashes it
# (SIGILL, SIGSEGV) or miscounts references, in every later run until deleted.


def _nrt_bytes(library: Any) -> bytes:
    """What is saved of the runtime's library: the digest, then numba's own form of a cached library."""
    return with_digest(marshal.dumps(library.serialize_using_object_code()))


def _read_nrt(codegen: Any, saved: bytes) -> Any:
    """The runtime's library from what ``_nrt_bytes`` saved, or None (damaged, or not such a copy)."""
    data = without_digest(saved)
    if data is None:
        return None
    state = marshal.loads(data)
    if not (isinstance(state, tuple) and len(state) == 3 and state[1] == "object" and isinstance(state[2], tuple)):
        return None
    if elf_symbols(state[2][0]) is None:  # (loaded by numba's code otherwise: not what was saved)
        return None
    return codegen.unserialize_library(state)


# The numba releases whose loader this was written for and tested with (major, minor): with any other the
# attributes may be there and mean something else, so numba loads its own way (only slower to start).
TESTED_NUMBA = {(0, 68)}
# Set to anything but "" or "0" to leave numba's loading as it is (a check when a numba upgrade misbehaves).
STOCK_LOADING_ENV = "CLEANCORPUS_NUMBA_STOCK_LOADING"


def applies(numba_version: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``install`` changes numba's loading for this numba version and environment."""
    if environ.get(STOCK_LOADING_ENV, "") not in ("", "0"):
        return False
    try:
        major, minor = (int(part) for part in numba_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) in TESTED_NUMBA


# numba's cache files (.nbc: a kernel's machine code, pickled; .nbi: which file holds which signature) end with
# this mark and a SHA-256 of the rest.
# numba trusts what it reads: 4 flipped bits in one made runs crash (SIGSEGV) or quarantine documents, every run
# until the file was deleted (session 18). pickle stops at its STOP opcode, so numba's own loader still reads
# these files; a file without a good mark is a cache miss here: compiled again and saved with one.
DATA_MARK = b"\0ccsha256"


def _check_data_files() -> None:
    """Make numba's cache write its data and index files with DATA_MARK and a checksum, and read only files
    that pass."""
    from numba.core.caching import IndexDataCacheFile

    save_data = IndexDataCacheFile.__dict__.get("_save_data")
    if save_data is None or getattr(save_data, "_checked", False):
        return
    needed = ("_dump", "_data_path", "_open_for_write", "_load_data", "_load_index", "_save_index")
    if not all(callable(getattr(IndexDataCacheFile, name, None)) for name in needed):
        return
    tail = len(DATA_MARK) + hashlib.sha256().digest_size

    def _checked(data: bytes) -> bytes | None:
        """``data`` less its mark and checksum, if they are there and right; else None."""
        payload, mark, digest = data[:-tail], data[-tail : -tail + len(DATA_MARK)], data[-tail + len(DATA_MARK) :]
        return payload if mark == DATA_MARK and hashlib.sha256(payload).digest() == digest else None

    def _save_data(self: Any, name: str, data: Any) -> None:
        payload = self._dump(data)
        with self._open_for_write(self._data_path(name)) as f:  # (numba's: a temporary file, renamed)
            f.write(payload + DATA_MARK + hashlib.sha256(payload).digest())

    def _load_data(self: Any, name: str) -> Any:
        path = self._data_path(name)
        with open(path, "rb") as f:
            data = f.read()
        payload = _checked(data)
        if payload is None:
            raise OSError(f"{path}: not written by this check or damaged")  # (IndexDataCacheFile.load: a miss)
        with blas_hidden():  # (an environment of a module of the user's may import the array registry)
            return _KernelUnpickler(io.BytesIO(payload)).load()

    def _save_index(self: Any, overloads: dict[Any, str]) -> None:
        payload = self._dump((self._source_stamp, overloads))
        with self._open_for_write(self._index_path) as f:
            pickle.dump(self._version, f, protocol=-1)
            f.write(payload + DATA_MARK + hashlib.sha256(payload).digest())

    def _load_index(self: Any) -> dict[Any, str]:
        # numba's, but an index that fails its check is empty (a miss): a damaged one mapped signatures to
        # other kernels' data or failed to unpickle, and every call of its kernels failed (documents quarantined)
        try:
            with open(self._index_path, "rb") as f:
                version = pickle.load(f)
                data = f.read()
        except FileNotFoundError:
            return {}
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError):
            return {}
        if version != self._version:
            return {}
        payload = _checked(data)
        if payload is None:
            return {}
        stamp, overloads = pickle.loads(payload)
        return overloads if stamp == self._source_stamp else {}

    _save_data._checked = True  # type: ignore[attr-defined]
    IndexDataCacheFile._save_data = _save_data  # type: ignore[method-assign]
    IndexDataCacheFile._load_data = _load_data  # type: ignore[method-assign]
    IndexDataCacheFile._save_index = _save_index  # type: ignore[method-assign]
    IndexDataCacheFile._load_index = _load_index  # type: ignore[method-assign]


def _rebuild_env(modname: str, consts: list[Any], env_name: str) -> Any:
    """numba's ``environment._rebuild_env`` (a cached kernel's environments, one per function its code holds),
    but for a function of numba's own whose module is not imported yet: its environment gets a stand-in for the
    module's globals (``{"__name__": modname}``) instead of importing the module. Most of a kernel's environments
    are those of numba's implementations it inlined (``np.empty`` is ``numba.np.arrayobj``'s, ``str`` methods
    ``numba.cpython.unicode``'s), and importing those modules for them (the array registry and its imports:
    arrayobj, arraymath, charseq, unicode, listobj) was ~40 % of loading a run's kernels (~25 ms). The globals
    are read only by object-mode code (``pylowering``), which numba's implementations never are; the constants
    (what compiled code reads from its environment) are the saved ones either way, and ``__name__`` is what
    pickling the environment again saves."""
    from numba.core import environment

    env = environment.lookup_environment(env_name)
    if env is not None:
        return env
    module = sys.modules.get(modname)
    if module is None and not modname.startswith("numba."):
        return environment._rebuild_env(modname, consts, env_name)  # (imports it: a module of the user's)
    env = environment.Environment(module.__dict__ if module is not None else {"__name__": modname})
    env.consts[:] = consts
    env.env_name = env_name
    environment.Environment._memo[env_name] = env
    return env


class _KernelUnpickler(pickle.Unpickler):
    """Unpickles a cached kernel with `_rebuild_env` in place of numba's."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numba.core.environment" and name == "_rebuild_env":
            return _rebuild_env
        return super().find_class(module, name)


_BLAS = "scipy.linalg.cython_blas"


@contextmanager
def blas_hidden() -> Iterator[None]:
    """While numba's array registry (``numba.np.arraymath``) is not imported: ``scipy.linalg.cython_blas``
    hidden (``import`` raises ImportError). At its import the registry probes for BLAS, and that imports
    all of scipy.linalg (~0.25 s). No kernel here uses np.dot, np.linalg or ``@``, the only things that
    need it (they would fail to compile, not compute something else); scipy.linalg itself imports normally
    outside. Nothing is hidden once the registry or scipy.linalg is there."""
    if "numba.np.arraymath" in sys.modules or _BLAS in sys.modules:
        yield
        return
    sys.modules[_BLAS] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if _BLAS in sys.modules and sys.modules[_BLAS] is None:
            del sys.modules[_BLAS]


def hide_blas_from_registries() -> None:
    """Load numba's registries (what compiling and numba's own cached loading import first) with BLAS
    hidden (`blas_hidden`). The array registry is then imported only when something needs it: a run whose
    kernels are all cached loads none of its code (~8 ms of a fresh process)."""
    from numba.core.cpu import CPUContext

    load = CPUContext.__dict__.get("load_additional_registries")
    if load is None or getattr(load, "_blas_hidden", False):
        return

    def load_additional_registries(self: Any) -> Any:
        with blas_hidden():
            return load(self)

    load_additional_registries._blas_hidden = True  # type: ignore[attr-defined]
    CPUContext.load_additional_registries = load_additional_registries  # type: ignore[method-assign]


# The modules whose kernels other modules' kernels call (numba compiles a callee into its caller's machine code).
KERNEL_MODULES = (
    "text_kernels.py",
    "xxh3_kernel.py",
    "boilerplate_kernels.py",
    "dedup_kernels.py",
    "language_kernels.py",
    "normalize_kernels.py",
    "dedup.py",  # (its kernels are the sketch's; ray_dedup, whose kernels are its own, imports it)
)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the pipeline package's folder


def kernel_modules_digest(folder: str, names: tuple[str, ...] = KERNEL_MODULES) -> bytes:
    """A hash of the contents of the kernel modules ``names`` in ``folder`` (a missing one counts as empty)."""
    digest = hashlib.sha256()
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        digest.update(b"%s %d\n" % (name.encode(), len(data)))
        digest.update(data)
    return digest.digest()


_digest_of_this_package: list[bytes] = []


def key_kernels_by_their_callees() -> None:
    """numba keys a cached kernel by its own source file (a hash of its contents), but a kernel's machine code
    also holds the kernels of other modules it calls: boilerplate.py's and boilerplate_kernels.py's hold
    text_kernels.py's and xxh3_kernel.py's, dedup.py's dedup_kernels.py's. An update that changed only one of
    those (a `git pull` into an editable install) would leave the callers' old machine code in the cache, and
    the run would use it. So a kernel defined in this package is keyed by its file and every kernel module
    (``KERNEL_MODULES``): an edit of one compiles this package's kernels again, as a changed file of their own
    would. Kernels of other packages are keyed as numba keys them."""
    from numba.core import caching

    mixin = getattr(caching, "_SourceFileBackedLocatorMixin", None)
    numba_stamp = getattr(mixin, "get_source_stamp", None)
    if numba_stamp is None or getattr(numba_stamp, "_with_callees", False):
        return

    def get_source_stamp(self: Any) -> Any:
        stamp = numba_stamp(self)
        py_file = getattr(self, "_py_file", None)
        if not isinstance(py_file, str) or not os.path.abspath(py_file).startswith(_PACKAGE + os.sep):
            return stamp
        if not _digest_of_this_package:  # (once a process: the files do not change under a run)
            _digest_of_this_package.append(kernel_modules_digest(os.path.join(_PACKAGE, "stages")))
        return (stamp, _digest_of_this_package[0])

    get_source_stamp._with_callees = True  # type: ignore[attr-defined]
    mixin.get_source_stamp = get_source_stamp  # type: ignore[union-attr]


def _probe_cache_folders_once() -> None:
    """Check a cache folder for writing once per process, not once per kernel: numba makes and deletes a
    temporary file in it for each ``cache=True`` kernel at its definition (~125 here: ~3 ms). A folder that
    passed is writable for the rest of the process as far as numba's check can tell."""
    from numba.core.caching import _CacheLocator

    ensure = _CacheLocator.__dict__.get("ensure_cache_path")
    if ensure is None or getattr(ensure, "_once", False):
        return
    writable: set[str] = set()

    def ensure_cache_path(self: Any) -> None:
        path = self.get_cache_path()
        if path not in writable:
            ensure(self)  # (raises where the folder cannot be made or written: numba tries its next place)
            writable.add(path)

    ensure_cache_path._once = True  # type: ignore[attr-defined]
    _CacheLocator.ensure_cache_path = ensure_cache_path  # type: ignore[method-assign]


def _cache_magic_tuple() -> None:
    """Compute the code generator's ``magic_tuple`` (target triple, host CPU name and features: part of every
    cached kernel's index key) once per CPU setting, not at each kernel load (LLVM's host CPU query: ~3 ms
    of a run's ~55 loads)."""
    from numba.core import config
    from numba.core.codegen import CPUCodegen

    magic_tuple = CPUCodegen.__dict__.get("magic_tuple")
    if magic_tuple is None or getattr(magic_tuple, "_cached", False):
        return

    def cached_magic_tuple(self: Any) -> Any:
        setting = (config.CPU_NAME, config.CPU_FEATURES)
        cached = self.__dict__.get("_cleancorpus_magic_tuple")
        if cached is None or cached[0] != setting:
            cached = self._cleancorpus_magic_tuple = (setting, magic_tuple(self))
        return cached[1]

    cached_magic_tuple._cached = True  # type: ignore[attr-defined]
    CPUCodegen.magic_tuple = cached_magic_tuple  # type: ignore[method-assign]


def install() -> None:
    """Make numba load cached CPU kernels as above. Nothing changes where numba's loader is not the one
    this was written for (another numba release than those tested, its functions or attributes missing),
    or when ``CLEANCORPUS_NUMBA_STOCK_LOADING`` is set."""
    try:
        import numba

        if not applies(numba.__version__):
            return
        import llvmlite.binding as ll
        from numba.core.caching import Cache
        from numba.core.codegen import CPUCodeLibrary, JitEngine
        from numba.core.cpu import CPUContext
        from numba.core.runtime import nrtdynmod
        from numba.core.runtime.nrt import rtsys
    except ImportError:
        return
    unserialize = CPUCodeLibrary.__dict__.get("_unserialize")
    linking = CPUCodeLibrary.__dict__.get("_get_module_for_linking")
    defined = JitEngine.__dict__.get("is_symbol_defined")
    load = Cache.__dict__.get("load_overload")
    guarded = callable(getattr(Cache, "_guard_against_spurious_io_errors", None)) and callable(
        getattr(Cache, "_load_overload", None)
    )
    compile_nrt = getattr(nrtdynmod, "compile_nrt_functions", None)
    create_nrt = getattr(nrtdynmod, "create_nrt_module", None)
    if not isinstance(unserialize, classmethod) or linking is None or defined is None or load is None or not guarded:
        return
    if compile_nrt is None or create_nrt is None:
        return
    if getattr(linking, "_lazy_bitcode", False):
        return  # installed already
    numba_unserialize = unserialize.__func__

    def _unserialize(cls: type, codegen: Any, state: tuple[str, str, Any]) -> Any:
        # numba's 'object' branch, but for the bitcode: kept as bytes, its symbols read from the object
        name, kind, data = state
        symbols = elf_symbols(data[0]) if kind == "object" else None
        if symbols is None:
            if _loading:
                _loading[-1].refresh()  # numba's way throughout
            return numba_unserialize(cls, codegen, state)
        object_code, shared_bitcode = data
        engine = codegen._engine
        _refresh_if_unresolved(symbols[1], engine, ll.address_of_symbol)
        self = codegen.create_library(name)
        self.enable_object_caching()
        self._set_compiled_object(object_code)
        self._unparsed_bitcode = shared_bitcode
        self._finalize_final_module()
        engine._defined_symbols |= symbols[0]
        engine.__dict__.setdefault("_unparsed_bitcode", []).append(shared_bitcode)
        return self

    def _get_module_for_linking(self: Any) -> Any:
        bitcode = self.__dict__.pop("_unparsed_bitcode", None)
        if bitcode is not None and self._shared_module is None:
            self._shared_module = ll.parse_bitcode(bitcode)
            self._codegen._engine._load_defined_symbols(self._shared_module)
        return linking(self)

    def is_symbol_defined(self: Any, name: str) -> bool:
        if name not in self._defined_symbols:
            # a name the machine code's symbol table does not list (an internal one): the full set
            for bitcode in self.__dict__.pop("_unparsed_bitcode", ()):
                self._load_defined_symbols(ll.parse_bitcode(bitcode))
        return defined(self, name)

    def load_overload(self: Any, sig: Any, target_context: Any) -> Any:
        # numba's, with the runtime set up in place of the context's refresh (see above)
        if not isinstance(target_context, CPUContext):
            return load(self, sig, target_context)
        rtsys.initialize(target_context)
        _loading.append(target_context)
        try:
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        finally:
            _loading.pop()

    def compile_nrt_functions(ctx: Any) -> Any:
        # numba's, with the library's machine code kept (object caching on) and saved; or the saved one
        codegen = ctx.codegen()

        def build() -> Any:
            ir_module, library = create_nrt(ctx)
            library.enable_object_caching()
            library.add_ir_module(ir_module)
            library.finalize()
            return library

        return cached_build(
            CACHE_DIR / _nrt_cache_name(codegen),
            lambda data: _read_nrt(codegen, data),
            build,
            _nrt_bytes,
        )

    _check_data_files()
    _cache_magic_tuple()
    _probe_cache_folders_once()
    _get_module_for_linking._lazy_bitcode = True  # type: ignore[attr-defined]
    CPUCodeLibrary._unserialize = classmethod(_unserialize)  # type: ignore[method-assign,assignment]
    CPUCodeLibrary._get_module_for_linking = _get_module_for_linking  # type: ignore[method-assign]
    JitEngine.is_symbol_defined = is_symbol_defined  # type: ignore[method-assign]
    Cache.load_overload = load_overload  # type: ignore[method-assign]
    nrtdynmod.compile_nrt_functions = compile_nrt_functions
