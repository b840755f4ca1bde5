"""micore: what the generative and discriminative sides share.

The density-ratio interface (:class:`MIEstimator`), the :class:`Estimate` result, the training
loop and its thread count (:func:`set_threads`), samplers with known MI (:mod:`micore.tasks`), and the
finite-sample protocol for data without a known answer (:func:`estimate_mi`: held-out split, early
stopping, seeds, interval, diagnostics; :mod:`micore.heldout`, :mod:`micore.diagnostics`), and
ensembles of runs trained as one batched model (:func:`train_ensemble`).
"""

from .diagnostics import Flag
from .ensemble import EnsembleHistories, train_ensemble
from .ensemble_stack import ensemble_signature, member_memory, members_for_memory
from .estimate import ESTIMATE, LOWER_BOUND, UPPER_BOUND, Estimate
from .estimator import MIEstimator
from .finite_sample import MIResult, estimate_mi
from .heldout import HeldoutConfig, SeedFit, fit_heldout
from .threads import set_threads, training_threads
from .training import TrainingDiverged, TrainingHistory, default_device, resolve_device, train

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
    "estimate_mi",
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
