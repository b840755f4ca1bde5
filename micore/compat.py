"""Old import paths kept working after a module moved: the old name forwards to the new home, with a warning.

A moved module leaves a two-line shim at its old path::

    from micore.compat import moved_module

    __getattr__, __dir__ = moved_module(__name__, "micore.training.threads")

Every name read through the old path (``from micore.threads import set_threads``) is the new module's, and
warns once per name with a :class:`DeprecationWarning` saying where to import it from instead.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

__all__ = ["moved_module", "deprecated_names", "REMOVAL"]

REMOVAL = "0.3"  # the release that drops the old paths


def moved_module(old: str, new: str) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a shim at ``old`` forwarding to module ``new``."""

    def __getattr__(name: str):
        if name.startswith("__"):  # import machinery probing (__path__, __file__ ...): not a user's name
            raise AttributeError(name)
        module = importlib.import_module(new)
        try:
            value = getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} (moved to {new!r}) has no attribute {name!r}") from None
        warnings.warn(
            f"{old} moved to {new}: import {name} from {new} (the old path goes in {REMOVAL})",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    def __dir__() -> list[str]:
        return sorted(dir(importlib.import_module(new)))

    return __getattr__, __dir__


def deprecated_names(module: str, renamed: dict[str, tuple[str, str]]) -> Callable[[str], object]:
    """A package's ``__getattr__`` for names that were renamed: ``{old: (new module, new name)}``."""

    def __getattr__(name: str):
        if name not in renamed:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, new = renamed[name]
        warnings.warn(
            f"{module}.{name} is now {where}.{new} (the old name goes in {REMOVAL})", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(where), new)

    return __getattr__
