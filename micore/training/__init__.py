"""Training one estimator: the loop, its data streams, the divergence watch, threads and precision.

* :mod:`.loop` — :func:`train` (Adam on the estimator's objective; what :meth:`MIEstimator.fit` calls);
* :mod:`.streams` — the minibatches of a sampler or of tensors, one step at a time;
* :mod:`.divergence` — when a run has diverged (:class:`DivergenceWatch`, shared with ensembles);
* :mod:`.history` — :class:`TrainingHistory` and :class:`TrainingDiverged`;
* :mod:`.threads` — how many CPU threads a training uses (the idle cores by default);
* :mod:`.precision` — fp32, TF32 or bf16 autocast.
"""

from ..device import default_device, resolve_device
from .divergence import LOSS_FLOOR, LOSS_GROWTH, RANGE_SLACK, DivergenceWatch
from .history import TrainingDiverged, TrainingHistory
from .loop import DIVERGENCE, train
from .precision import PRECISIONS, check_precision
from .streams import DEFAULT_STEPS, data_stream
from .threads import set_threads, training_threads

__all__ = [
    "train",
    "TrainingHistory",
    "TrainingDiverged",
    "DIVERGENCE",
    "DEFAULT_STEPS",
    "data_stream",
    "DivergenceWatch",
    "LOSS_GROWTH",
    "LOSS_FLOOR",
    "RANGE_SLACK",
    "set_threads",
    "training_threads",
    "PRECISIONS",
    "check_precision",
    "default_device",
    "resolve_device",
]
