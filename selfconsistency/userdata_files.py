"""Moved to :mod:`selfconsistency.userdata.formats` (the old path warns: :mod:`micore.compat`)."""

from micore.compat import moved_module

__getattr__, __dir__ = moved_module(__name__, "selfconsistency.userdata.formats")
