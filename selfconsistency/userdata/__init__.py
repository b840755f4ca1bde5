"""Your own data: files read into a checked ``(x, y)`` pair, and its MI by name (``selfconsistency estimate``).

* :mod:`.load` — :func:`load_pair`: ``.npz``, ``.npy``, ``.csv``/``.tsv``, ``.pt`` and folders of ``.npy``;
* :mod:`.formats`, :mod:`.csv_tables` — one reader per format, and CSV column specs;
* :mod:`.estimate` — :func:`estimate_mi`: one or several estimators by name on the same data.

The checks every pair passes are :func:`micore.validation.check_pair_data` (re-exported here).
"""

from micore.validation import PairData, check_not_constant, check_pair_data

from .estimate import Comparison, Failure, estimate_mi
from .load import SUPPORTED, LoadedPair, load_pair

__all__ = [
    "load_pair",
    "LoadedPair",
    "SUPPORTED",
    "check_pair_data",
    "check_not_constant",
    "PairData",
    "estimate_mi",
    "Comparison",
    "Failure",
]
