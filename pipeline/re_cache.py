"""Regular expressions compiled by an earlier process, saved beside the package.

Python's ``re`` compiles a pattern in Python (parse it, then generate the matcher's code) before handing
the code to its C engine (``_sre.compile``), and keeps the result only for the process. A command compiles
the same patterns every time, most at import or set-up: the encoding stage's repair scan (~8 ms),
boilerplate's rule alternations (~10 ms), numpy's, ftfy's and PyYAML's own (~12 ms): ~35 ms of a run.

`install` (called first thing by `cli.main`: ``python -m pipeline``, the ``cleancorpus`` command) keeps what the Python
part produced for each (pattern, flags) and saves it at exit, under a name that holds this Python (its
version and build, the engine's magic number and code size, the Unicode data, the compiler's files): a later
process gives the saved code to ``_sre.compile`` directly and gets the same pattern object (same code, flags
and groups). `hook_regex` does the same for the ``regex`` module, whose compiler is Python too. A pattern not
saved yet is compiled the library's way and not saved where other threads run, where compiling it warned (the
warning is given as usual) or failed; a saved one is used in any thread.
The file carries a SHA-256 of its bytes; a damaged or foreign one is ignored (and replaced).
"""

from __future__ import annotations

import array
import atexit
import hashlib
import marshal
import os
import sys
import threading
import time
import unicodedata
import warnings
from pathlib import Path
from typing import Any

_VERSION = 1
# Bytes of saved code at most (a command's own are ~0.3 MB; reading the file costs each process ~1 ms per
# 0.3 MB): past that, only what this process used is kept.
_MAX_CODE = 1_000_000
CACHE_DIR = Path(__file__).parent / "stages" / "__pycache__"  # (the stages' caches: `base.CACHE_DIR`)

# re's: (pattern, flags) -> (flags, code as uint32 bytes, groups, groupindex, indexgroup); the regex module's:
# ("regex", its version, pattern, flags, version flag) -> the arguments of its engine's compile; read or made here
_saved: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_used: set[tuple[Any, ...]] = set()
_missed = 0.0  # CPU seconds this process spent compiling patterns the file did not have
_path: Path | None = None
_loaded = False
# Saved when the misses cost at least this: patterns made anew by every process (built from a set, in its
# per-process hash order: another string each time; tokenize's ~1 ms, boilerplate's phrase alternations ~3 ms)
# would otherwise be added, and the file rewritten, by each. A first run misses ~40 ms.
_WORTH_SAVING = 0.010


def cache_path() -> Path | None:
    """The saved patterns' file for this Python, or None where its compiler is not the one this knows."""
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]

    if sys.implementation.name != "cpython" or getattr(_sre, "CODESIZE", None) != 4:
        return None
    try:
        files = [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in (_compiler.__file__, _parser.__file__)]
    except (OSError, TypeError):
        return None
    key = repr((_VERSION, sys.version, _sre.MAGIC, _sre.CODESIZE, sys.maxunicode, unicodedata.unidata_version, files))
    return CACHE_DIR / f"re_patterns-{hashlib.sha256(key.encode()).hexdigest()[:16]}.marshal"


def _patterns() -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The saved patterns, read at the first pattern compiled (a command that compiles none reads nothing)."""
    global _loaded
    if not _loaded and _path is not None:
        _loaded = True
        _read(_path)
    return _saved


def _read(path: Path) -> None:
    try:
        data = path.read_bytes()
        payload = memoryview(data)[32:]
        if hashlib.sha256(payload).digest() != data[:32]:
            return
        saved = marshal.loads(payload)
    except Exception:  # noqa: BLE001 - a cache: missing, unreadable or foreign means compile as usual
        return
    if isinstance(saved, dict):
        _saved.update(saved)


def _save() -> None:
    """At exit: the saved patterns and those compiled here, if compiling the new ones took _WORTH_SAVING or
    more (only this process's if they grew past _MAX_CODE)."""
    if _missed < _WORTH_SAVING or _path is None:
        return
    kept = _saved
    if sum(len(part) for entry in kept.values() for part in entry if isinstance(part, bytes)) > _MAX_CODE:
        kept = {key: entry for key, entry in _saved.items() if key in _used}
    try:
        payload = marshal.dumps(kept)
    except ValueError:  # (a pattern marshal cannot hold: not saved at all)
        return
    from pipeline.stages.base import save_cache_file

    save_cache_file(_path, hashlib.sha256(payload).digest() + payload)


def install() -> None:
    """Make ``re`` use (and save) the patterns compiled by earlier processes; nothing where this Python's
    compiler is not CPython's as this knows it."""
    global _path
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]

    original = _compiler.compile
    if getattr(original, "_saved_patterns", False):
        return
    from pipeline.lean_imports import stock_imports

    if stock_imports():  # (CLEANCORPUS_STOCK_IMPORTS: re's own way)
        return
    path = cache_path()
    if path is None or not all(hasattr(_compiler, name) for name in ("_code", "isstring", "SRE_FLAG_DEBUG")):
        return
    _path = path

    def compile(p: Any, flags: int = 0) -> Any:  # noqa: A001 - (re._compiler.compile's name)
        if not _compiler.isstring(p) or flags & _compiler.SRE_FLAG_DEBUG:
            return original(p, flags)
        key = (p, int(flags))
        entry = _patterns().get(key)
        if entry is None:
            if threading.active_count() != 1:  # (catching its warnings would catch another thread's)
                return original(p, flags)
            entry = _made(p, flags)
            if entry is None:
                return original(p, flags)  # (raises, or warns as it does)
        _used.add(key)
        return _sre.compile(p, *_rebuilt(entry))

    def _rebuilt(entry: tuple[Any, ...]) -> tuple[Any, ...]:
        """The engine's arguments after the pattern, from a saved entry."""
        final_flags, code, groups, groupindex, indexgroup = entry
        return final_flags, array.array("I", code).tolist(), groups, dict(groupindex), indexgroup

    def _made(p: Any, flags: int) -> Any:
        """What ``_compiler.compile`` hands to the engine for ``p``, kept for saving; None if compiling it
        fails or warns (then compiled ``re``'s way)."""
        global _missed
        started = time.process_time()
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                tree = _parser.parse(p, flags)
                code = _compiler._code(tree, flags)
        except Exception:  # noqa: BLE001 - re's own error, raised again by its own compile
            return None
        if said:
            return None
        groupindex = dict(tree.state.groupdict)
        indexgroup = [None] * tree.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        try:
            packed = array.array("I", [int(c) for c in code]).tobytes()
        except OverflowError:
            return None
        entry = (int(flags | tree.state.flags), packed, tree.state.groups - 1, groupindex, tuple(indexgroup))
        _saved[(p, int(flags))] = entry
        _missed += time.process_time() - started
        return entry

    # (this Python's compiler and engine as this knows them: a sample made and rebuilt equals re's own)
    try:
        sample = _made("(?P<a>x+)[b-d]|\\1?", 2)
        ok = sample is not None and _sre.compile("(?P<a>x+)[b-d]|\\1?", *_rebuilt(sample)) == original(
            "(?P<a>x+)[b-d]|\\1?", 2
        )
    except Exception:  # noqa: BLE001 - anything unexpected: re's own way only
        ok = False
    _saved.pop(("(?P<a>x+)[b-d]|\\1?", 2), None)
    if not ok:
        return
    compile._saved_patterns = True  # type: ignore[attr-defined]
    _compiler.compile = compile
    atexit.register(_save)


def hook_regex() -> None:
    """The same for the ``regex`` module (language's and boilerplate's patterns: ~10 ms), once `install` ran:
    its patterns without named lists (keyword arguments) or locale flags. A saved one is made by regex's
    engine from what regex's compiler gave it (``Pattern._pickled_data``, what a pickled pattern is rebuilt
    from), and recorded in regex's own cache as regex records it."""
    if _path is None:
        return
    import regex
    from regex import _main, _regex_core

    original = _main._compile
    if getattr(original, "_saved_patterns", False):
        return
    if not all(hasattr(_main, name) for name in ("_locale_sensitive", "_cache", "_named_args", "_shrink_cache")):
        return
    special = regex.DEBUG | regex.LOCALE

    def _compile(pattern: Any, flags: Any, ignore_unused: Any, kwargs: Any, cache_it: Any) -> Any:
        global _missed
        if kwargs or not cache_it or type(pattern) not in (str, bytes) or flags & special:
            return original(pattern, flags, ignore_unused, kwargs, cache_it)
        locale_key = (type(pattern), pattern)
        if _main._locale_sensitive.get(locale_key) is not None:  # (compiled in this process: regex's own cache)
            return original(pattern, flags, ignore_unused, kwargs, cache_it)
        version = regex.DEFAULT_VERSION
        key = ("regex", regex.__version__, pattern, int(flags), int(version))  # (its engine's code: its version's)
        entry = _patterns().get(key)
        if entry is None:
            if threading.active_count() != 1:
                return original(pattern, flags, ignore_unused, kwargs, cache_it)
            started = time.process_time()
            compiled = original(pattern, flags, ignore_unused, kwargs, cache_it)  # (raises as it does)
            if _main._locale_sensitive.get(locale_key) is False and not compiled.flags & regex.LOCALE:
                _saved[key] = tuple(getattr(compiled, "_pickled_data", None) or ())
                _used.add(key)
                _missed += time.process_time() - started
            return compiled
        _used.add(key)
        # what regex's _compile does for such a pattern, but for parsing and compiling it
        _main.DEFAULT_VERSION = _regex_core.DEFAULT_VERSION = version
        compiled = _main._regex.compile(*entry)
        _main._locale_sensitive[locale_key] = False
        if len(_main._cache) >= _main._MAXCACHE:
            with _main._cache_lock:
                _main._shrink_cache(_main._cache, _main._named_args, _main._locale_sensitive, _main._MAXCACHE)
        _main._cache[(pattern, type(pattern), flags, frozenset(), version, None)] = compiled
        _main._named_args[(pattern, type(pattern), flags)] = frozenset()
        return compiled

    sample = original("(?P<a>x+)[b-d]", 0, False, {}, False)  # (what a pattern pickles to: its engine's arguments)
    try:
        ok = _main._regex.compile(*sample._pickled_data).pattern == sample.pattern
    except Exception:  # noqa: BLE001 - not as this knows it: regex's own way only
        ok = False
    if not ok:
        return
    _compile._saved_patterns = True  # type: ignore[attr-defined]
    _main._compile = _compile
