"""selfconsistency: the top floor, on top of :mod:`discmi` and :mod:`genmi`; one room per job.

* :mod:`selfconsistency.registry` — every estimator by name, and the one critic policy of a comparison;
* :mod:`selfconsistency.execution` — runs, executors (in-process, ``--jobs``, ``--ray``), resuming, typed
  records, atomic files: knows nothing about MI;
* :mod:`selfconsistency.groundtruth` — the ground-truth benchmark (Table 2, Figure 1; the finite-sample
  protocol on known-MI tasks), ``selfconsistency bench``;
* :mod:`selfconsistency.images` — the self-consistency suite on images (Figures 4–6, Table 3),
  ``selfconsistency check`` and :func:`run`;
* :mod:`selfconsistency.userdata` — your own files and :func:`estimate_mi` by name, ``selfconsistency estimate``;
* :mod:`selfconsistency.cli` — the command, one module per subcommand;
* :mod:`selfconsistency.testing` — the short trainings the tests check and the benchmarks measure.

``run(factory_or_name, dataset="digits", settings=(...))`` runs the self-consistency tests of
Song & Ermon (2020, Sec. 6.2, App. B.2) and returns a :class:`Report` (verdict table, JSON, figures).
"""

from micore.compat import deprecated_names

from . import images as _images
from .images import (  # noqa: F401  (re-exported: images.__all__)
    DATASETS,
    PROTOCOLS,
    SETTINGS,
    DatasetMissing,
    ImageProtocol,
    ImageSplit,
    Report,
    Tolerances,
    Verdict,
    load_images,
    run,
    run_many,
)
from .images import bsc_task as _bsc_task  # noqa: F401  (registers the image channel tasks with make_task)
from .registry import make_factory
from .userdata import (
    Comparison,
    LoadedPair,
    check_not_constant,
    check_pair_data,
    estimate_mi,
    load_pair,
)

# the image suite's public names (images.__all__), and the estimator registry's and your data's entry points
__all__ = [*_images.__all__, "make_factory", "estimate_mi", "Comparison", "load_pair", "LoadedPair"]
__all__ += ["check_pair_data", "check_not_constant"]

# renamed: a dataset's training defaults are not a typing.Protocol
__getattr__ = deprecated_names(__name__, {"Protocol": ("selfconsistency.images.suite", "ImageProtocol")})
