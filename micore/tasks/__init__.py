"""Tasks with known mutual information: the distributions estimators are measured against.

Every task is a :class:`Task`, a :class:`Sampler` that :func:`micore.training.train` (``est.fit(task)``)
accepts: ``sample(n, seed, device=, dtype=) -> (x, y)``, the exact ``mi`` in nats (with ``mi_stderr`` > 0
where it is a Monte Carlo integral), ``x_shape``, ``y_shape``, a stable ``name``, ``params`` and, where
tractable, the exact ``log_ratio(x, y)`` (the optimal critic; its mean is the MI).

Reach any task by name with :func:`make_task` (the registry: bmi-style names such as
``spiral-multinormal-sparse-3-3-2-2.0``, parameterised names such as
``multinormal_sparse(dim_x=5,dim_y=5,n_interacting=2,mi=10.0)``, or your own ``module:Attr``);
:func:`task_names` lists the suites: ``beyond-normal`` (bmi's 40 tasks), ``mixtures``, ``high-mi``, ``classic``.

=====================  ====================================================================
module                 what
=====================  ====================================================================
``base``               :class:`Sampler`, :class:`Task`, :func:`monte_carlo_mi`
``classic``            :class:`CorrelatedGaussian` (Gaussian, Cubic), :class:`Staircase`, :class:`OneHot`
``normal``             :class:`MultivariateNormal` (any Σ), dense and sparse families
``additive``           :class:`AdditiveUniform`: Y = X + U(-ε, ε)
``student``            :class:`MultivariateStudentT`
``transforms``         MI-preserving maps: half-cube, asinh, normal CDF, wiggly, spiral, Swiss roll
``mixtures``           :class:`GaussianMixture` (MI by Monte Carlo): X, AI, galaxy, waves, ...
``registry``           :func:`make_task`, :func:`task_names`, ``TASKS``, ``SUITES``, ``FAMILIES``
=====================  ====================================================================

>>> from micore.tasks import make_task
>>> task = make_task("half_cube-multinormal-sparse-5-5-2-2.0")
>>> x, y = task.sample(1000, seed=0)        # [1000, 5] each
>>> round(task.mi, 4)
1.0217
"""

from .additive import AdditiveUniform
from .base import Sampler, Task, monte_carlo_mi
from .classic import CorrelatedGaussian, OneHot, Staircase
from .mixtures import GaussianMixture
from .normal import MultivariateNormal
from .registry import FAMILIES, SUITES, TASKS, make_task, register_tasks, task_names
from .student import MultivariateStudentT
from .transforms import Transformed

__all__ = [
    "register_tasks",
    "Sampler",
    "Task",
    "monte_carlo_mi",
    "CorrelatedGaussian",
    "Staircase",
    "OneHot",
    "MultivariateNormal",
    "AdditiveUniform",
    "MultivariateStudentT",
    "Transformed",
    "GaussianMixture",
    "make_task",
    "task_names",
    "TASKS",
    "SUITES",
    "FAMILIES",
]
