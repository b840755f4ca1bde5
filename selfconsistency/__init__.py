"""selfconsistency: the ground-truth benchmark and the self-consistency test suite, on top of
:mod:`discmi` and :mod:`genmi`."""
from .registry import make_factory

__all__ = ["make_factory"]
