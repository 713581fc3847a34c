"""Third-party imports without the modules they pull in at import time that no command uses.

Each function imports one library the way ``import X`` does, but for a module that library imports at
its own import only to look at once (or to offer what cleancorpus never calls), which is kept out or
deferred. What the library does with it is unchanged: where it would need the real module, the real
module is imported then. Each does nothing if the library or the module it keeps out is imported
already, or if another thread runs (an import beside it could see the stand-in), and importing the
library directly elsewhere is still correct (only slower).

Measured in a fresh process (CPU, collector off): asyncio ~14 ms (pydantic), scipy ~6 ms (numba),
wcwidth ~8 ms (ftfy).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Set (not "" or "0"): libraries are imported as they are, and re_cache is not installed (an escape hatch should
# a library's new release not import cleanly this way; outputs are the same either way, only start-up is slower).
STOCK_IMPORTS_ENV = "CLEANCORPUS_STOCK_IMPORTS"


def stock_imports() -> bool:
    """Whether the user asked for plain imports and no saved patterns (``CLEANCORPUS_STOCK_IMPORTS``)."""
    return os.environ.get(STOCK_IMPORTS_ENV, "") not in ("", "0")


def _alone() -> bool:
    """Whether this is the only thread (so nothing else imports while a module is stood in for), and the
    user did not ask for plain imports."""
    return threading.active_count() == 1 and not stock_imports()


@contextmanager
def _standing_in(stand_ins: dict[str, types.ModuleType | None]) -> Iterator[None]:
    """``sys.modules`` holds ``stand_ins`` (None: the module cannot be imported) during the block; after it,
    those still there are taken out again, so the next ``import`` of them finds the real modules."""
    for name, module in stand_ins.items():
        sys.modules[name] = module  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, module in stand_ins.items():
            if name in sys.modules and sys.modules[name] is module:
                del sys.modules[name]


def _real(name: str, stand_ins: dict[str, types.ModuleType | None]) -> types.ModuleType:
    """The real module ``name``: the stand-ins taken out of ``sys.modules`` first."""
    for stand_in, module in stand_ins.items():
        if sys.modules.get(stand_in, False) is module:
            del sys.modules[stand_in]
    return importlib.import_module(name)


class _Deferred(types.ModuleType):
    """A stand-in module: any name it does not define is the real module's (which is then imported)."""

    def __init__(self, name: str, stand_ins: dict[str, types.ModuleType | None], **defined: Any) -> None:
        super().__init__(name)
        self._stand_ins = stand_ins
        self.__dict__.update(defined)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(_real(self.__name__, self._stand_ins), attr)


def asyncio_stand_ins() -> dict[str, types.ModuleType | None]:
    """Stand-ins for ``asyncio`` and ``asyncio.coroutines`` that answer ``iscoroutinefunction`` as asyncio
    would before its import, and import the real asyncio for a coroutine function or any other name."""
    stand_ins: dict[str, types.ModuleType | None] = {}

    def iscoroutinefunction(func: Callable[..., Any]) -> bool:
        if not inspect.iscoroutinefunction(func):
            return False
        return bool(_real("asyncio.coroutines", stand_ins).iscoroutinefunction(func))

    coroutines = _Deferred("asyncio.coroutines", stand_ins, iscoroutinefunction=iscoroutinefunction)
    stand_ins["asyncio"] = _Deferred("asyncio", stand_ins, coroutines=coroutines)
    stand_ins["asyncio.coroutines"] = coroutines
    return stand_ins


def import_pydantic() -> None:
    """Import pydantic (and the names cleancorpus takes from it) without asyncio (~14 ms: asyncio with
    ssl, socket, subprocess, concurrent.futures). typing_extensions' ``deprecated``, applied to functions
    at pydantic's import, asks ``asyncio.coroutines.iscoroutinefunction`` whether each is a coroutine
    function: ``inspect.iscoroutinefunction``, or marked with asyncio's private marker, which nothing
    can carry before asyncio is imported. The stand-in answers the same; for a coroutine function (none
    in pydantic) and for any other name it asks the real asyncio."""
    if "pydantic.main" in sys.modules or "asyncio" in sys.modules or not _alone():
        return
    with _standing_in(asyncio_stand_ins()):
        import pydantic

        pydantic.BaseModel  # noqa: B018 - (pydantic.main, .fields, .config: imported on first use)
        pydantic.Field  # noqa: B018
        pydantic.ConfigDict  # noqa: B018
        pydantic.ValidationError  # noqa: B018
        pydantic.model_validator  # noqa: B018
        pydantic.field_validator  # noqa: B018


def import_numba() -> None:
    """Import numba without scipy (~6 ms): numba imports scipy at its import only to refuse a SciPy older
    than 1.0; its linear algebra (np.dot, np.linalg: no kernel here uses it) imports scipy when used."""
    if "numba" in sys.modules or "scipy" in sys.modules or not _alone():
        return
    import numpy  # noqa: F401 - (numba imports it first; not to be imported with scipy missing)

    with _standing_in({"scipy": None}):
        import numba  # noqa: F401


def import_ftfy() -> None:
    """Import ftfy without wcwidth (~8 ms): ``ftfy.formatting`` (terminal column widths, for its
    ``display_ljust`` etc., which cleancorpus does not call) imports ``wcwidth`` and ``wcswidth`` from
    it at ftfy's import. They are stood in for by functions that import wcwidth when first called."""
    if "ftfy" in sys.modules or "wcwidth" in sys.modules or not _alone():
        return
    stand_ins: dict[str, types.ModuleType | None] = {}

    def wcwidth(*args: Any, **kwargs: Any) -> Any:
        return _real("wcwidth", stand_ins).wcwidth(*args, **kwargs)

    def wcswidth(*args: Any, **kwargs: Any) -> Any:
        return _real("wcwidth", stand_ins).wcswidth(*args, **kwargs)

    stand_ins["wcwidth"] = _Deferred("wcwidth", stand_ins, wcwidth=wcwidth, wcswidth=wcswidth)
    with _standing_in(stand_ins):
        import ftfy  # noqa: F401
