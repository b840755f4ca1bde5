"""Moved to :mod:`selfconsistency.groundtruth.tables` (the old path warns: :mod:`micore.compat`)."""

from micore.compat import moved_module

__getattr__, __dir__ = moved_module(__name__, "selfconsistency.groundtruth.tables")
