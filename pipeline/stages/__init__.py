"""Stage registry: built-in stage names, and user stages named by import path."""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from pipeline import re_cache
from pipeline.stages.base import Stage, StageOptions

# Built-in stages in their canonical order (module, class); imported on first use.
BUILTIN_STAGES: dict[str, tuple[str, str]] = {
    "extract": ("pipeline.stages.extract", "ExtractStage"),
    "encoding": ("pipeline.stages.encoding", "EncodingStage"),
    "boilerplate": ("pipeline.stages.boilerplate", "BoilerplateStage"),
    "language": ("pipeline.stages.language", "LanguageStage"),
    "dedup": ("pipeline.stages.dedup", "DedupStage"),
    "normalize": ("pipeline.stages.normalize", "NormalizeStage"),
}
# The built-in stages whose module imports numba (their kernels).
_COMPILED = frozenset({"encoding", "boilerplate", "language", "dedup", "normalize"})


class StageLookupError(LookupError):
    pass


def _import_user_module(module_name: str, search: Iterable[Path]) -> ModuleType:
    """Import a user stage's module; if it is not found on the import path, look for its top-level
    module or package in ``search`` (the config file's folder, the current directory), as ``python -m``
    finds modules in the current directory while the ``cleancorpus`` command does not. A folder where it
    is found is added at the end of ``sys.path`` (also for the worker processes, which inherit it)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        top = module_name.partition(".")[0]
        if err.name != top:  # found, but it or something it imports is missing: not ours to look for
            raise
        for folder in search:
            folder = folder.resolve()
            if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
                if str(folder) not in sys.path:
                    sys.path.append(str(folder))
                    importlib.invalidate_caches()
                return importlib.import_module(module_name)
        raise


def stage_class(name: str, search: Iterable[Path] = ()) -> type[Stage]:
    """Find a stage by built-in name or by ``package.module:ClassName``; a user stage's module not on the
    import path is looked for in the folders of ``search`` too (``_import_user_module``)."""
    if name in BUILTIN_STAGES:
        module_name, class_name = BUILTIN_STAGES[name]
    elif ":" in name:
        module_name, _, class_name = name.partition(":")
    else:
        raise StageLookupError(name)
    if name in _COMPILED and module_name not in sys.modules:
        from pipeline.stages import aot_kernels  # noqa: F401 - numba without scipy, or the compiled kernels

        re_cache.hook_regex()  # (where the command saves its patterns: their `regex` ones too)
    try:
        module = (
            importlib.import_module(module_name) if name in BUILTIN_STAGES else _import_user_module(module_name, search)
        )
    except ImportError as err:
        raise StageLookupError(f"{name} (cannot import {module_name}: {err})") from err
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [n for n, v in vars(module).items() if isinstance(v, type) and hasattr(v, "process")]
        close = difflib.get_close_matches(class_name, classes, n=1)
        hint = f"; did you mean {module_name}:{close[0]}?" if close else ""
        raise StageLookupError(f"{name} (no {class_name} in {module_name}{hint})")
    if not (isinstance(getattr(cls, "Options", None), type) and issubclass(cls.Options, StageOptions)):
        raise StageLookupError(f"{name} ({class_name} has no Options model derived from StageOptions)")
    if not callable(getattr(cls, "process", None)):
        raise StageLookupError(f"{name} ({class_name} has no process(doc) method)")
    return cls


__all__ = ["BUILTIN_STAGES", "Stage", "StageLookupError", "StageOptions", "stage_class"]
