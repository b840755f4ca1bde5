"""micore: what the generative and discriminative sides share, one room per job.

* :mod:`micore.estimator`, :mod:`micore.estimate` — the density-ratio interface (:class:`MIEstimator`) and
  its result (:class:`Estimate`);
* :mod:`micore.registry` — the protocol each family registers its estimators by name with, and
  :func:`~micore.registry.load_object` for ``package.module:attr``;
* :mod:`micore.validation` — every input check (an estimator's inputs; the one paired-data check);
* :mod:`micore.device` — the default device and the check that a requested one exists;
* :mod:`micore.training` — :func:`train`, its data streams, divergence watch, threads and precision;
* :mod:`micore.ensemble` — K runs trained as one batched model (:func:`train_ensemble`);
* :mod:`micore.finite` — the finite-sample protocol (held-out split, early stopping, seeds, interval, flags);
* :mod:`micore.tasks` — samplers with known MI.
"""

from .compat import deprecated_names
from .device import default_device, resolve_device
from .ensemble import EnsembleHistories, ensemble_signature, member_memory, members_for_memory, train_ensemble
from .estimate import ESTIMATE, LOWER_BOUND, UPPER_BOUND, Estimate
from .estimator import MIEstimator
from .finite import Flag, HeldoutConfig, MIResult, SeedFit, estimate_heldout, fit_heldout
from .training import TrainingDiverged, TrainingHistory, train
from .training.threads import set_threads, training_threads

__all__ = [
    "Estimate",
    "MIEstimator",
    "TrainingDiverged",
    "TrainingHistory",
    "train",
    "default_device",
    "resolve_device",
    "LOWER_BOUND",
    "UPPER_BOUND",
    "ESTIMATE",
    "set_threads",
    "training_threads",
    "estimate_heldout",
    "MIResult",
    "HeldoutConfig",
    "SeedFit",
    "fit_heldout",
    "Flag",
    "train_ensemble",
    "EnsembleHistories",
    "ensemble_signature",
    "member_memory",
    "members_for_memory",
]

# micore.estimate_mi was renamed: selfconsistency.estimate_mi (names, several estimators) is the one estimate_mi
__getattr__ = deprecated_names(__name__, {"estimate_mi": ("micore.finite", "estimate_heldout")})
