"""The self-consistency suite on images (Song & Ermon 2020, Sec. 6.2, App. B.2).

* :mod:`.data` — the image sets (offline digits, MNIST, CIFAR-10) and their splits;
* :mod:`.transforms`, :mod:`.settings` — the processings ``Y = g(X)`` and the measures they define;
* :mod:`.suite` — the cells (one training each) and :func:`run`;
* :mod:`.report` — ratios and verdicts judged from the finished cells; :mod:`.figures` draws them.
"""

from .data import DATASETS, DatasetMissing, ImageSplit, load_images
from .report import Report, Tolerances, Verdict
from .settings import SETTINGS
from .suite import PROTOCOLS, Protocol, run

__all__ = [
    "run",
    "Report",
    "Tolerances",
    "Verdict",
    "Protocol",
    "PROTOCOLS",
    "SETTINGS",
    "DATASETS",
    "load_images",
    "ImageSplit",
    "DatasetMissing",
]
