"""micore: what the generative and discriminative sides share.

The density-ratio interface (:class:`MIEstimator`), the :class:`Estimate` result, the training
loop and its thread count (:func:`set_threads`), and samplers with known MI (:mod:`micore.tasks`).
"""

from .estimate import ESTIMATE, LOWER_BOUND, UPPER_BOUND, Estimate
from .estimator import MIEstimator
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
]
