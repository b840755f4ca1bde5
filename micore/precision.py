"""Moved to :mod:`micore.training.precision` (the old path warns: :mod:`micore.compat`)."""

from micore.compat import moved_module

__getattr__, __dir__ = moved_module(__name__, "micore.training.precision")
