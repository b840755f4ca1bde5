"""selfconsistency: the top floor, on top of :mod:`discmi` and :mod:`genmi`.

* :mod:`selfconsistency.groundtruth` — the ground-truth benchmark (Table 2, Figure 1), ``selfconsistency bench``;
* :mod:`selfconsistency.images` — the self-consistency suite on images (Figures 4–6, Table 3),
  ``selfconsistency check`` and :func:`run`;
* :mod:`selfconsistency.registry` — every estimator by name; :mod:`selfconsistency.runner` — one runner
  (resuming, progress, failures) with in-process, local-process and Ray executors;
  :mod:`selfconsistency.storage` — atomic result files; :mod:`selfconsistency.cli` — the command.

* :mod:`selfconsistency.estimate` — :func:`estimate_mi`, the MI of your own arrays (held out, early-stopped,
  several seeds, an interval and warnings), ``selfconsistency estimate``; :mod:`selfconsistency.userdata` reads
  ``.npz``/``.npy``/``.csv``/``.pt`` files.

``run(factory_or_name, dataset="digits", settings=(...))`` runs the self-consistency tests of
Song & Ermon (2020, Sec. 6.2, App. B.2) and returns a :class:`Report` (verdict table, JSON, figures).
"""

from .estimate import Comparison, estimate_mi
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
from .userdata import LoadedPair, check_not_constant, check_pair_data, load_pair

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
    "estimate_mi",
    "Comparison",
    "load_pair",
    "LoadedPair",
    "check_pair_data",
    "check_not_constant",
]
