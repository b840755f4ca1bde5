"""selfconsistency: the ground-truth benchmark and the self-consistency test suite, on top of
:mod:`discmi` and :mod:`genmi`.

``run(factory_or_name, dataset="digits", settings=(...))`` runs the self-consistency tests of
Song & Ermon (2020, Sec. 6.2, App. B.2) and returns a :class:`Report` (verdict table, JSON, figures).
"""
from .data import DatasetMissing, ImageSplit, load_images
from .harness import PROTOCOLS, Protocol, run
from .registry import make_factory
from .report import Report, Tolerances, Verdict
from .settings import SETTINGS

__all__ = ["run", "Report", "Tolerances", "Verdict", "Protocol", "PROTOCOLS", "SETTINGS", "load_images",
           "ImageSplit", "DatasetMissing", "make_factory"]
