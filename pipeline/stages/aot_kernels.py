"""The stages' kernels from an ahead-of-time compiled extension module: a run that never imports numba.

Every run paid ~0.2 s for numba before its first document: importing it (~0.17 s) and loading the ~40 cached
kernels it calls (~0.05 s; `kernel_cache` already trims both). Here, once the JIT cache is warm, a process in
the background (`build_in_background`, after a run) compiles the kernels that Python code calls, with the
signatures numba's cache holds for them, into one extension module (``numba.pycc``: the same typing, the
same LLVM code for this machine's CPU and its features as the JIT's, so the same results), plus a small C
module (`_GUARD_C`) whose ``Kernel`` objects pick an exported function by the call's argument types. A
later process whose build is valid (same kernel sources, Python, numpy, numba, llvmlite, CPU, NUMBA_*
settings: `build_key`) gets, for numba's ``@njit``, that ``Kernel``: the kernel modules import ``numba`` from
here (`numba`), a stand-in whose ``njit`` returns it. Arguments of any other types (numba's ``typeof``
would type them otherwise: another dtype, layout, a read-only array, ...), keyword arguments, or a kernel
not in the build, go to numba's own dispatcher of the kernel (`_twin`: numba imported then, the kernel
compiled or loaded from the JIT cache as always), so the results are numba's in every case.

``CLEANCORPUS_AOT=0`` (or ``CLEANCORPUS_STOCK_IMPORTS``) keeps numba's dispatchers and builds nothing.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import types as pytypes
from pathlib import Path
from typing import Any

from pipeline import lean_imports
from pipeline.stages.base import CACHE_DIR, without_digest
from pipeline.stages.kernel_cache import KERNEL_MODULES, kernel_modules_digest

# Set to "0" for numba's dispatchers in every process and no build.
AOT_ENV = "CLEANCORPUS_AOT"
_STAGES = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_STAGES)
_EXT = "cc_aot_kernels"  # the extension's module name (its PyInit_ symbol)
_GUARD = "aot_guard"


def enabled() -> bool:
    """Whether this process may use (and build) the compiled module: Linux (the CPU is read from
    /proc/cpuinfo), not turned off."""
    if os.environ.get(AOT_ENV, "") == "0" or lean_imports.stock_imports():
        return False
    return sys.platform == "linux"


def _version_file(package: str) -> bytes:
    """The contents of a package's ``_version.py`` (its version), without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise OSError(f"{package} not found")
    with open(os.path.join(os.path.dirname(spec.origin), "_version.py"), "rb") as f:
        return spec.origin.encode() + b"\n" + f.read()


def _cpu() -> bytes:
    """The first processor's model and feature flags (what LLVM's host CPU name and features come from)."""
    with open("/proc/cpuinfo", "rb") as f:
        first = f.read().split(b"\n\n", 1)[0]
    wanted = (b"vendor_id", b"cpu family", b"model", b"model name", b"stepping", b"flags")
    lines = [line for line in first.splitlines() if line.split(b":", 1)[0].strip() in wanted]
    if not any(line.startswith(b"flags") for line in lines):
        raise OSError("no CPU flags in /proc/cpuinfo")
    return b"\n".join(lines)


def build_key() -> str:
    """A hash of everything the compiled module depends on: the kernel modules' sources and the builder's, this
    Python, numpy, numba and llvmlite, the CPU, and the NUMBA_* settings (optimization, CPU name, features)."""
    import numpy

    digest = hashlib.sha256()
    digest.update(kernel_modules_digest(_STAGES, (*KERNEL_MODULES, "aot_build.py")))  # (+ how it is built)
    digest.update(repr((sys.version, sys.executable, numpy.__version__, numpy.__file__)).encode())
    digest.update(_version_file("numba"))
    digest.update(_version_file("llvmlite"))
    digest.update(_cpu())
    digest.update(repr(sorted((k, v) for k, v in os.environ.items() if k.startswith("NUMBA_"))).encode())
    return digest.hexdigest()[:20]


# Where the builds go, if not beside numba's cache of the package (tests)
AOT_DIR_ENV = "CLEANCORPUS_AOT_DIR"


def build_folder(key: str) -> Path:
    return Path(os.environ.get(AOT_DIR_ENV) or CACHE_DIR) / f"aot-{key}"


_MANIFEST = "manifest"


def _load_extension(name: str, path: Path) -> Any:
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    loader.exec_module(module)
    return module


def _checked(folder: Path) -> dict[str, Any] | None:
    """The manifest of the build in ``folder``; None if there is none, or any file is not the one the build
    wrote (its SHA-256)."""
    try:
        payload = without_digest((folder / _MANIFEST).read_bytes())
        if payload is None:
            return None
        manifest = marshal.loads(payload)
        for name, sha in manifest["files"].items():
            if hashlib.sha256((folder / name).read_bytes()).hexdigest() != sha:
                return None
        return manifest
    except Exception:  # noqa: BLE001 - a cache: anything wrong with it means numba's way
        return None


# Set when a build that checked out did not load (a library it needs missing, ...): not built again (it would
# not load either), numba's way
_load_failed = False


def _load(folder: Path) -> tuple[Any, Any, dict[str, dict[str, list[tuple[bytes, str]]]]] | None:
    """The extension, the guard module and the manifest's kernels of the build in ``folder``, or None."""
    global _load_failed
    manifest = _checked(folder)
    if manifest is None:
        return None
    try:
        files = {name.split(".", 1)[0]: folder / name for name in manifest["files"]}
        guard = _load_extension(_GUARD, files[_GUARD])
        ext = _load_extension(_EXT, files[_EXT])
        return ext, guard, manifest["kernels"]
    except Exception:  # noqa: BLE001 - as above
        _load_failed = True
        return None


# ---------------------------------------------------------------- numba, or the stand-in for it


def _load_numba_cffi_support_without_cffi() -> None:
    """Import numba's CFFI typing module with ``cffi`` hidden: at the first kernel call numba loads it,
    and where cffi is installed (cryptography needs it) that builds an ``FFI()``, importing cffi's C
    parser and pycparser (~0.1 s of every process's start). No kernel here calls a CFFI function, the
    only thing it supports; cffi itself imports normally afterwards. Nothing to do where numba got
    there first."""
    if "numba.core.typing.cffi_utils" in sys.modules or "cffi" in sys.modules:
        return
    sys.modules["cffi"] = None  # type: ignore[assignment]  # makes `import` raise ImportError
    try:
        import numba.core.typing.cffi_utils  # noqa: F401
    finally:
        del sys.modules["cffi"]


def real_numba() -> Any:
    """numba, imported and set up as the stages use it (no scipy, the kernel cache's loading, no cffi)."""
    lean_imports.import_numba()  # (without scipy)
    import numba

    from pipeline.stages import kernel_cache

    kernel_cache.install()  # cached kernels' linking bitcode parsed when needed, not at each load
    kernel_cache.key_kernels_by_their_callees()  # (before any kernel of the package is defined)
    kernel_cache.hide_blas_from_registries()  # (numba's array registry imported without scipy.linalg, when needed)
    _load_numba_cffi_support_without_cffi()
    return numba


class _Lazy(pytypes.ModuleType):
    """A module imported at its first attribute (numba's ``types``, llvmlite's ``ir``: what an intrinsic's
    typing and code generation use, only ever when numba compiles)."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self.__name__.startswith("numba"):
            real_numba()
        return getattr(importlib.import_module(self.__name__), attr)


# What each stand-in (a Kernel, an _Intrinsic) was made from: id -> (the object, its function, options, kind)
_made: dict[int, tuple[Any, Any, dict[str, Any], str]] = {}
_twins: dict[int, Any] = {}
_twins_lock = threading.RLock()
# Calls that went to numba, by (kernel, argument key; None: keywords): what a build lacks (tests, diagnostics)
fallbacks: dict[tuple[str, bytes | None], int] = {}


class _Intrinsic:
    """An ``@intrinsic`` while the compiled module is used: called only by kernels numba compiles (`_twin`)."""

    def __init__(self, func: Any, options: dict[str, Any]) -> None:
        self.func = func
        _made[id(self)] = (self, func, options, "intrinsic")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.func.__qualname__} is an intrinsic: only compiled kernels call it")


def _intrinsic_stand_in(*args: Any, **options: Any) -> Any:
    if args and callable(args[0]) and not options:
        return _Intrinsic(args[0], {})
    return lambda func: _Intrinsic(func, options)


class _Fallback:
    """A kernel's calls that its compiled functions do not take: numba's dispatcher of it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dispatcher: Any = None
        self.kernel: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.dispatcher is None:
            self.dispatcher = _twin(self.kernel)
        key = (self.name, _guard.args_key(*args) if not kwargs else None)
        fallbacks[key] = fallbacks.get(key, 0) + 1
        return self.dispatcher(*args, **kwargs)


class _AotNumba:
    """The ``numba`` the kernel modules see while a valid build is used: ``njit`` gives the compiled kernel
    (`_kernel`); anything else is numba's own (imported then)."""

    def njit(self, *args: Any, **options: Any) -> Any:
        if args and callable(args[0]) and not options:
            return _kernel(args[0], {})
        return lambda func: _kernel(func, options)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real_numba(), attr)


def _kernel(func: Any, options: dict[str, Any]) -> Any:
    """The stand-in for numba's ``njit(**options)(func)``: its exported functions by argument key."""
    name = f"{func.__module__}.{func.__qualname__}"
    exports = _kernels.get(func.__module__, {}).get(func.__qualname__, ())
    table = {key: getattr(_ext, export) for key, export in exports}
    fallback = _Fallback(name)
    kernel = _guard.Kernel(table, fallback)
    kernel.py_func = func  # (as a dispatcher: what the language stage's cache key reads)
    kernel.__name__, kernel.__qualname__, kernel.__module__ = func.__name__, func.__qualname__, func.__module__
    kernel.__doc__ = func.__doc__
    fallback.kernel = kernel
    _made[id(kernel)] = (kernel, func, options, "kernel")
    return kernel


def _twin(stand_in: Any) -> Any:
    """numba's dispatcher (or intrinsic) for a stand-in (`_make_twins`)."""
    with _twins_lock:
        if id(stand_in) not in _twins:
            _make_twins()
        return _twins[id(stand_in)]


# The twins' globals: a copy of each kernel module's, in which every stand-in is its twin and every kernel
# module a copy holding the twins (a kernel calls other kernels by name or as ``module.name``).
_spaces: dict[str, dict[str, Any]] = {}
_proxies: dict[str, pytypes.ModuleType] = {}


def _make_twins() -> None:
    """numba's dispatcher for each stand-in kernel that has none yet (numba imported now): its function
    with its module's globals in `_spaces`, compiled or loaded from numba's cache as always."""
    real = real_numba()
    from numba.extending import intrinsic

    names = {entry[1].__module__ for entry in _made.values()}
    names |= {f"pipeline.stages.{m[:-3]}" for m in KERNEL_MODULES if f"pipeline.stages.{m[:-3]}" in sys.modules}
    for name in names:
        space = _spaces.setdefault(name, {})
        _proxies.setdefault(name, pytypes.ModuleType(name))
        for attr, value in sys.modules[name].__dict__.items():  # (what the module defined since: a later import)
            space.setdefault(attr, value)
    for key, (_, func, options, kind) in list(_made.items()):
        if key in _twins:
            continue
        if kind == "intrinsic":
            _twins[key] = intrinsic(**options)(func) if options else intrinsic(func)
            continue
        copy = pytypes.FunctionType(
            func.__code__, _spaces[func.__module__], func.__name__, func.__defaults__, func.__closure__
        )
        copy.__qualname__ = func.__qualname__
        copy.__kwdefaults__ = func.__kwdefaults__
        copy.__doc__ = func.__doc__
        _twins[key] = real.njit(**options)(copy)
    modules = {id(sys.modules[name]): _proxies[name] for name in _spaces}
    for space in _spaces.values():
        for attr, value in space.items():
            made = _made.get(id(value))
            if made is not None and made[0] is value:
                space[attr] = _twins[id(value)]
            elif isinstance(value, pytypes.ModuleType) and id(value) in modules:
                space[attr] = modules[id(value)]
            elif isinstance(value, _AotNumba):  # (a kernel's ``numba.X``: numba's own)
                space[attr] = real
    for name, proxy in _proxies.items():
        proxy.__dict__.update(_spaces[name])


# A build that has not finished in this long is taken for dead (its lock is broken)
_BUILD_TIMEOUT = 1800.0


def build_in_background() -> int | None:
    """After a run with numba's dispatchers (the JIT cache now holds what runs call): start the build of the
    compiled module for this process's key (`aot_build`), detached and at a low priority, unless there is
    one, one is running, or one failed (or did not load) for this key: delete ``aot-KEY.failed`` beside it to
    try again. Returns the process id, if started."""
    import subprocess
    import time

    if active() or not enabled() or "numba" not in sys.modules:
        return None
    try:
        key = build_key()
        folder = build_folder(key)
        if folder.with_suffix(".failed").exists():
            return None
        if _checked(folder) is not None:  # (built meanwhile by another process, or built but not loadable here)
            if _load_failed:
                folder.with_suffix(".failed").write_text("the build did not load\n")
            return None
        lock = folder.with_suffix(".building")
        folder.parent.mkdir(exist_ok=True)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.time() - lock.stat().st_mtime < _BUILD_TIMEOUT:
                return None
            lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        env = {
            **os.environ,
            AOT_ENV: "0",
            "PYTHONPATH": os.pathsep.join([os.path.dirname(_PACKAGE), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline.stages.aot_build"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        return child.pid
    except (OSError, ValueError):
        return None


def active() -> bool:
    """Whether this process's kernels are the compiled module's."""
    return _ext is not None


_ext: Any = None
_guard: Any = None
_kernels: dict[str, dict[str, list[tuple[bytes, str]]]] = {}
_loaded = None
if enabled():
    try:
        _loaded = _load(build_folder(build_key()))
    except Exception:  # noqa: BLE001 - (no CPU flags, a package not found): numba's way
        _loaded = None
if _loaded is not None:
    _ext, _guard, _kernels = _loaded
    numba: Any = _AotNumba()
    intrinsic: Any = _intrinsic_stand_in
    numba_types: Any = _Lazy("numba.core.types")
    llvm_ir: Any = _Lazy("llvmlite.ir")
else:
    numba = real_numba()
    from llvmlite import ir as llvm_ir  # noqa: F401 - (for the kernel modules)
    from numba.core import types as numba_types  # noqa: F401
    from numba.extending import intrinsic  # noqa: F401
