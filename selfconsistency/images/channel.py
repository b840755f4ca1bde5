"""Moved to :mod:`selfconsistency.images.bsc_task` (the old path warns: :mod:`micore.compat`)."""

from micore.compat import moved_module

__getattr__, __dir__ = moved_module(__name__, "selfconsistency.images.bsc_task")
