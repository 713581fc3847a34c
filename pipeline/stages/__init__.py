"""Stage registry: built-in stage names, and user stages named by import path."""

from __future__ import annotations

import importlib

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


class StageLookupError(LookupError):
    pass


def stage_class(name: str) -> type[Stage]:
    """Find a stage by built-in name or by ``package.module:ClassName``."""
    if name in BUILTIN_STAGES:
        module_name, class_name = BUILTIN_STAGES[name]
    elif ":" in name:
        module_name, _, class_name = name.partition(":")
    else:
        raise StageLookupError(name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise StageLookupError(f"{name} (cannot import {module_name}: {err})") from err
    cls = getattr(module, class_name, None)
    if cls is None:
        raise StageLookupError(f"{name} (no {class_name} in {module_name})")
    if not (isinstance(getattr(cls, "Options", None), type) and issubclass(cls.Options, StageOptions)):
        raise StageLookupError(f"{name} ({class_name} has no Options model derived from StageOptions)")
    if not callable(getattr(cls, "process", None)):
        raise StageLookupError(f"{name} ({class_name} has no process(doc) method)")
    return cls


__all__ = ["BUILTIN_STAGES", "Stage", "StageLookupError", "StageOptions", "stage_class"]
