"""selfconsistency: the top floor, on top of :mod:`discmi` and :mod:`genmi`.

* :mod:`selfconsistency.groundtruth` — the ground-truth benchmark (Table 2, Figure 1), ``selfconsistency bench``;
* :mod:`selfconsistency.images` — the self-consistency suite on images (Figures 4–6, Table 3),
  ``selfconsistency check`` and :func:`run`;
* :mod:`selfconsistency.registry` — every estimator by name; :mod:`selfconsistency.runner` — one runner
  (resuming, progress, failures) with in-process, local-process and Ray executors;
  :mod:`selfconsistency.storage` — atomic result files; :mod:`selfconsistency.cli` — the command.

``run(factory_or_name, dataset="digits", settings=(...))`` runs the self-consistency tests of
Song & Ermon (2020, Sec. 6.2, App. B.2) and returns a :class:`Report` (verdict table, JSON, figures).
"""

from .images import (
    PROTOCOLS,
    SETTINGS,
    DatasetMissing,
    ImageSplit,
    Protocol,
    Report,
    Tolerances,
    Verdict,
    load_images,
    run,
)
from .images import channel as _channel  # noqa: F401  (registers the image channel tasks with make_task)
from .registry import make_factory

__all__ = [
    "run",
    "Report",
    "Tolerances",
    "Verdict",
    "Protocol",
    "PROTOCOLS",
    "SETTINGS",
    "load_images",
    "ImageSplit",
    "DatasetMissing",
    "make_factory",
]
