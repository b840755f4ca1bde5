"""The task protocol: paired samples ``(x, y)`` whose mutual information is known.

:class:`Sampler` is what :func:`micore.training.train` consumes (``sample_at``, ``mi_at``, ``x_shape``,
``y_shape``). :class:`Task` extends it with what a benchmark needs: a stable ``name``, the parameters,
``mi`` in nats with its ``mi_stderr`` (0 for a closed form; the Monte Carlo standard error where the MI
is only known as an integral), and, where the density ratio is tractable, the exact
``log_ratio(x, y) = log p(x, y) / (p(x) p(y))``, the optimal critic.

A task draws in float64 (the working precision; float32 on Apple's ``mps``, which has no float64) and
hands back ``dtype`` (default: torch's default dtype), so the samples of one seed are the same numbers
whatever dtype is asked for, up to rounding. (The classic tasks, :class:`~micore.tasks.CorrelatedGaussian`
and :class:`~micore.tasks.OneHot`, keep their historical stream: they draw in the dtype asked.)

>>> from micore.tasks import make_task
>>> task = make_task("1v1-normal-0.75")
>>> x, y = task.sample(1000, seed=0)            # x: [1000, 1], y: [1000, 1], float32
>>> round(task.mi, 4), task.mi_stderr
(0.4133, 0.0)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from ..validation import check_positive_int

__all__ = ["Sampler", "Task", "monte_carlo_mi", "work_dtype", "format_number", "make_generator", "draw_setup"]

# the arguments every draw takes (shortened in signatures)
Seed = int | None
Generator = torch.Generator | None
Device = torch.device | str | None
DType = torch.dtype | None


def make_generator(seed: int | None, generator: torch.Generator | None, device) -> torch.Generator | None:
    """The generator a draw uses: a fresh one on ``device`` seeded with ``seed``, or ``generator`` as given
    (``None`` for neither: torch's global stream). Both at once is a ``ValueError``."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if seed is None:
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return torch.Generator(device=device or "cpu").manual_seed(seed)


def draw_setup(n: int, seed: Seed, generator: Generator, device: Device, dtype: DType):
    """The arguments of a draw checked: ``(generator, device, dtype)`` to draw ``n`` samples with (the seed's
    fresh generator, or the one given; the device it lives on; ``dtype`` or torch's default)."""
    check_positive_int(n, "n")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    g = make_generator(seed, generator, device)
    if g is not None:
        dev = g.device
    else:
        dev = torch.device(device) if device is not None else torch.empty(0).device
    return g, dev, dtype or torch.get_default_dtype()


def work_dtype(device: torch.device | str | None) -> torch.dtype:
    """The dtype tasks compute in: float64, except on ``mps`` (no float64 there)."""
    return torch.float32 if device is not None and torch.device(device).type == "mps" else torch.float64


def format_number(value: float) -> str:
    """A parameter as it appears in a task name: ints without a point, floats as Python's shortest repr.

    ``2 -> '2'``, ``2.0 -> '2.0'``, ``0.75 -> '0.75'``, ``2e-05 -> '2e-05'`` (bmi's names print floats with
    ``str``, which is the same text).
    """
    if isinstance(value, bool):
        raise ValueError(f"a task parameter must be a number, got {value!r}")
    if isinstance(value, int):
        return str(value)
    return repr(float(value) + 0.0)


class Sampler(ABC):
    """A source of paired samples ``x: [n, *x_shape]``, ``y: [n, *y_shape]`` with known MI.

    Subclasses implement :meth:`sample`; a sampler whose distribution changes during
    training (the staircase) also overrides :meth:`sample_at` and :meth:`mi_at`, and says in
    ``default_steps`` how many steps its schedule has (``None``: no schedule; a training then runs
    its own default).
    """

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    mi: float
    default_steps: int | None = None

    @abstractmethod
    def sample(
        self, n: int, seed: Seed = None, *, generator: Generator = None, device: Device = None
    ) -> tuple[Tensor, Tensor]:
        """Draws ``n`` paired samples; reproducible from ``seed`` or a ``generator``."""

    def sample_at(
        self, step: int, n: int, *, generator: Generator = None, device: Device = None
    ) -> tuple[Tensor, Tensor]:
        """The batch used at training step ``step`` (the same distribution for a fixed task)."""
        return self.sample(n, generator=generator, device=device)

    def mi_at(self, step: int) -> float:
        """The exact MI of the distribution sampled at training step ``step``."""
        return self.mi


class Task(Sampler):
    """A fixed joint distribution with known MI: a :class:`Sampler` with a name, parameters and a log-ratio.

    Subclasses implement ``_sample(n, generator, device) -> (x, y)`` in the working dtype and set
    ``name``, ``x_shape``, ``y_shape``, ``_params`` and ``mi`` (a float or a property); those with a
    tractable density ratio also implement ``_log_ratio(x, y)`` on working-dtype tensors.

    Attributes:
        name: stable; :func:`micore.tasks.make_task` builds the same task from it (for the tasks the
            registry knows).
        mi: the mutual information in nats.
        mi_stderr: 0.0 for a closed form; for an MI computed by Monte Carlo, its standard error.
        params: the parameters, a dict (a copy).
    """

    name: str = ""
    mi_stderr: float = 0.0
    _params: dict = {}

    @property
    def params(self) -> dict:
        return dict(self._params)

    def __repr__(self) -> str:
        err = f" ± {self.mi_stderr:.2g}" if self.mi_stderr else ""
        shapes = f"x_shape={self.x_shape}, y_shape={self.y_shape}"
        return f"{type(self).__name__}({self.name!r}, mi={self.mi:.4g}{err}, {shapes})"

    def sample(
        self, n: int, seed: Seed = None, *, generator: Generator = None, device: Device = None, dtype: DType = None
    ) -> tuple[Tensor, Tensor]:
        """``n`` paired samples ``x: [n, *x_shape]``, ``y: [n, *y_shape]`` of ``dtype`` (default torch's).

        Reproducible from ``seed`` (a fresh generator on ``device``) or from a ``generator`` (whose
        device is used).
        """
        g, dev, out = draw_setup(n, seed, generator, device, dtype)
        x, y = self._sample(n, g, dev)
        return x.to(out), y.to(out)

    def _sample(self, n: int, generator: torch.Generator | None, device: torch.device) -> tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample(n, generator, device)")

    # ---- the exact density ratio -------------------------------------------------------------
    @property
    def has_log_ratio(self) -> bool:
        return type(self)._log_ratio is not Task._log_ratio

    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError(f"task {self.name!r} has no exact log density ratio")

    def _check_xy(self, x, y) -> tuple[Tensor, Tensor]:
        for t, what, shape in ((x, "x", self.x_shape), (y, "y", self.y_shape)):
            if not isinstance(t, Tensor):
                raise ValueError(f"{what} must be a tensor, got {type(t).__name__}")
            if t.dim() != 1 + len(shape) or tuple(t.shape[1:]) != tuple(shape):
                raise ValueError(
                    f"{what} must have shape [n, {', '.join(map(str, shape))}] for task {self.name!r}, "
                    f"got {list(t.shape)}"
                )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must hold the same number of samples, got {x.shape[0]} and {y.shape[0]}")
        wd = work_dtype(x.device)
        return x.to(wd), y.to(wd)

    def log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        r"""The exact :math:`\log p(x_i, y_i) / (p(x_i)\,p(y_i))` of paired rows: ``[n]``, in the inputs' dtype.

        Computed in the working dtype (float64) on the inputs' device. Its mean over samples of the task
        is the MI; it is the optimal critic of every bound.
        Raises NotImplementedError where the task has no tractable ratio.
        """
        out = torch.promote_types(x.dtype, y.dtype) if isinstance(x, Tensor) and isinstance(y, Tensor) else None
        x, y = self._check_xy(x, y)
        out = out if out is not None and out.is_floating_point else torch.get_default_dtype()
        return self._log_ratio(x, y).to(out)

    def scores(self, x: Tensor, y: Tensor) -> Tensor:
        """The exact log-ratio of all pairs: ``[m, k]`` with entry ``[i, j] = log r(x_i, y_j)``."""
        if not (isinstance(x, Tensor) and isinstance(y, Tensor)) or x.dim() < 1 or y.dim() < 1:
            raise ValueError("x and y must be tensors with a leading batch dimension")
        m, k = x.shape[0], y.shape[0]
        xs = x.repeat_interleave(k, dim=0)
        ys = y.repeat((m,) + (1,) * (y.dim() - 1))
        return self.log_ratio(xs, ys).view(m, k)


def monte_carlo_mi(
    task: Task, n: int = 100_000, seed: int = 0, *, batch_size: int = 50_000, device=None
) -> tuple[float, float]:
    r"""The MI of ``task`` by Monte Carlo over its exact log-ratio: ``(mean, standard error)`` in nats.

    .. math:: \hat I = \frac1n \sum_i \log \frac{p(x_i, y_i)}{p(x_i)p(y_i)}, \quad (x_i, y_i) \sim p,
              \qquad \mathrm{se} = \mathrm{sd}_i / \sqrt n.

    Samples are drawn and evaluated in the working dtype (float64), in batches of ``batch_size``.
    """
    check_positive_int(n, "n", minimum=2)
    check_positive_int(batch_size, "batch_size")
    if not task.has_log_ratio:
        raise ValueError(f"task {task.name!r} has no exact log-ratio to average")
    g = make_generator(seed, None, device)
    dev = g.device
    values = []
    left = n
    while left > 0:
        b = min(batch_size, left)
        x, y = task._sample(b, g, dev)
        values.append(task._log_ratio(x.to(work_dtype(dev)), y.to(work_dtype(dev))).double().cpu())
        left -= b
    v = torch.cat(values)
    if not bool(torch.isfinite(v).all()):
        bad = int((~torch.isfinite(v)).sum())
        raise FloatingPointError(f"task {task.name!r}: the log-ratio is not finite on {bad} of {n} samples")
    return float(v.mean()), float(v.std() / math.sqrt(n))
