"""The finite-sample protocol for data without a known answer: held-out split, early stopping, seeds, flags.

* :mod:`.heldout` — one seed: split 70/10/20, standardise, train with early stopping (:func:`fit_heldout`);
* :mod:`.seeds` — several seeds, their mean and interval (:func:`estimate_heldout`, :class:`MIResult`);
* :mod:`.diagnostics` — the flags that say when a number should not be trusted.
"""

from .diagnostics import FLAGS, Flag, diagnose
from .heldout import FIELDS, HeldoutConfig, SeedFit, Standardizer, fit_heldout, split_indices
from .seeds import DEFAULT_SEEDS, MIResult, estimate_heldout, t_interval

__all__ = [
    "estimate_heldout",
    "MIResult",
    "t_interval",
    "DEFAULT_SEEDS",
    "fit_heldout",
    "HeldoutConfig",
    "FIELDS",
    "SeedFit",
    "Standardizer",
    "split_indices",
    "Flag",
    "FLAGS",
    "diagnose",
]
