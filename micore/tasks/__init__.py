"""Tasks with known mutual information: samplers that estimators are measured against.

Every task is a :class:`Task` (a :class:`Sampler` that ``micore.training.train`` accepts):
``sample(n, seed, device=, dtype=) -> (x, y)``, the exact ``mi`` in nats (``mi_stderr`` > 0 where it is a
Monte Carlo integral), ``x_shape``, ``y_shape``, a stable ``name``, ``params`` and, where tractable, the
exact ``log_ratio(x, y)``.
"""

from .base import Sampler, Task, monte_carlo_mi
from .classic import CorrelatedGaussian, OneHot, Staircase

__all__ = ["Sampler", "Task", "monte_carlo_mi", "CorrelatedGaussian", "Staircase", "OneHot"]
