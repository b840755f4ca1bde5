"""The project's first tasks: Song & Ermon's Gaussian and Cubic, their staircase, ReMINE's one-hot.

Every sampler draws paired batches ``(x, y)`` and knows the exact MI of what it draws,
so estimators can be measured against ground truth. Registry names: ``gaussian-{dim}-{mi}``,
``cubic-{dim}-{mi}`` (e.g. ``gaussian-20-2.0``) and ``onehot-{n_classes}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from ..validation import check_positive_int
from .base import Sampler, Task, format_number, make_generator, work_dtype

__all__ = ["CorrelatedGaussian", "Staircase", "OneHot"]


class CorrelatedGaussian(Task):
    r"""The 20-d correlated Gaussian of Belghazi et al. (2018), Poole et al. (2019), Song & Ermon (2020).

    Each coordinate pair is a standard bivariate normal with correlation :math:`\rho`:
    :math:`y = \rho x + \sqrt{1-\rho^2}\,\epsilon`, so that (Song & Ermon, Eq. 55)

    .. math:: I(X;Y) = -\tfrac{d}{2}\log(1-\rho^2).

    With ``cubic=True`` the sampler returns :math:`y^3` (the Cubic task, Song & Ermon Sec. 6.1);
    an elementwise bijection of ``y`` leaves the MI unchanged.

    Args:
        dim: ``d``, the dimension of ``x`` and ``y``.
        mi: the exact MI in nats (sets :math:`\rho`); or give ``rho`` instead.
        cubic: apply :math:`y \mapsto y^3`.
    """

    def __init__(self, dim: int = 20, mi: float | None = None, *, rho: float | None = None, cubic: bool = False):
        self.dim = check_positive_int(dim, "dim")
        if (mi is None) == (rho is None):
            raise ValueError("give exactly one of mi or rho")
        if mi is not None:
            if isinstance(mi, bool) or not isinstance(mi, (int, float)) or not math.isfinite(mi) or mi < 0:
                raise ValueError(f"mi must be a finite number >= 0, got {mi!r}")
            rho = math.sqrt(-math.expm1(-2.0 * mi / dim))
            if rho >= 1.0:  # 1 - rho^2 = e^(-2 mi / dim) underflows: the task is not representable
                raise ValueError(
                    f"mi={mi!r} nats over dim={dim} needs a correlation with 1 - rho^2 = exp(-2 mi / dim) = "
                    f"exp({-2.0 * mi / dim:.4g}), which rounds rho to 1 in float64; use a larger dim or a smaller mi"
                )
        elif isinstance(rho, bool) or not isinstance(rho, (int, float)) or not -1 < rho < 1:
            raise ValueError(f"rho must be in (-1, 1), got {rho!r}")
        self.rho = float(rho)
        # 1 - rho^2 kept exactly: at high MI, 1 - rho**2 from a rounded rho loses most of its digits
        self._s2 = math.exp(-2.0 * mi / dim) if mi is not None else (1.0 - self.rho) * (1.0 + self.rho)
        self.mi = float(mi) if mi is not None else -0.5 * dim * math.log(self._s2)
        self.cubic = bool(cubic)
        self.x_shape = self.y_shape = (dim,)
        kind = "cubic" if self.cubic else "gaussian"
        if mi is not None:
            self.name = f"{kind}-{dim}-{format_number(float(mi))}"
            self._params = {"dim": dim, "mi": float(mi), "cubic": self.cubic}
        else:
            self.name = f"gaussian(dim={dim},rho={format_number(self.rho)}{',cubic=True' if self.cubic else ''})"
            self._params = {"dim": dim, "rho": self.rho, "cubic": self.cubic}

    def __repr__(self) -> str:
        return f"CorrelatedGaussian(dim={self.dim}, mi={self.mi:.4g}, cubic={self.cubic})"

    @property
    def noise_std(self) -> float:
        return math.sqrt(self._s2)

    def sample_x(
        self, n: int, seed: int | None = None, *, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """``x ~ N(0, I)``: ``[n, dim]``."""
        check_positive_int(n, "n")
        g = make_generator(seed, generator, device)
        return torch.randn(n, self.dim, generator=g, device=device if g is None else g.device)

    def sample(self, n, seed=None, *, generator=None, device=None, dtype=None):
        check_positive_int(n, "n")
        g = make_generator(seed, generator, device)
        dev = device if g is None else g.device
        x = torch.randn(n, self.dim, generator=g, device=dev, dtype=dtype)
        y = self.rho * x + self.noise_std * torch.randn(n, self.dim, generator=g, device=dev, dtype=dtype)
        return x, (y**3 if self.cubic else y)

    def _sample(self, n, generator, device):
        return self.sample(n, generator=generator, device=device, dtype=work_dtype(device))

    @property
    def encoder(self):
        """The exact conditional ``x -> p(y|x) = N(rho x, (1 - rho^2) I)`` (Gaussian task only)."""
        if self.cubic:
            raise ValueError("the Cubic task has no Normal encoder: p(y|x) of y = (rho x + e)^3 is not Gaussian")
        rho, std, dim = self.rho, self.noise_std, self.dim

        def encoder(x: Tensor) -> Independent:
            if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != dim:
                # a wrong width would broadcast into another task's conditional and give its bounds
                shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"x must be [n, {dim}] samples of this task's x (dim={dim}), got {shape}")
            return Independent(Normal(rho * x, torch.full_like(x, std)), 1)

        return encoder

    @property
    def entropy_x(self) -> float:
        """Differential entropy :math:`h(X) = \\tfrac{d}{2}\\log(2\\pi e)` of ``x ~ N(0, I)``."""
        return 0.5 * self.dim * math.log(2 * math.pi * math.e)

    def log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        r"""The exact :math:`\log p(x,y)/(p(x)p(y))` for paired rows: ``[n]``.

        .. math:: \sum_k -\tfrac12\log(1-\rho^2) - \frac{\rho^2 x_k^2 - 2\rho x_k y_k + \rho^2 y_k^2}{2(1-\rho^2)}

        (the Cubic task first inverts :math:`y^3`; a bijection of ``y`` leaves the ratio unchanged).
        """
        return self._log_ratio(x, y)

    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        if self.cubic:
            y = torch.sign(y) * y.abs().pow(1.0 / 3.0)
        r, s2 = self.rho, self._s2
        quad = r * r * (x * x + y * y) - 2.0 * r * x * y
        return (-0.5 * math.log(s2) - quad / (2.0 * s2)).sum(-1)

    def scores(self, x: Tensor, y: Tensor) -> Tensor:
        """The exact log-ratio for all pairs: ``[n, m]`` with entry ``[i, j] = log r(x_i, y_j)``."""
        if self.cubic:
            y = torch.sign(y) * y.abs().pow(1.0 / 3.0)
        r, s2 = self.rho, self._s2
        quad = r * r * ((x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :]) - 2.0 * r * (x @ y.T)
        return -0.5 * self.dim * math.log(s2) - quad / (2.0 * s2)


class Staircase(Sampler):
    """The benchmark schedule of Song & Ermon App. B.1 (after Poole et al. 2019).

    The MI starts at ``levels[0]`` and steps up every ``steps_per_level`` training steps:
    MI 2, 4, 6, 8, 10 nats, 4k steps each (20k in all), on the 20-d Gaussian or Cubic task.
    The seed trains with batch 64 and Adam, lr 5e-4.
    """

    def __init__(
        self,
        levels: Sequence[float] = (2.0, 4.0, 6.0, 8.0, 10.0),
        steps_per_level: int = 4000,
        dim: int = 20,
        cubic: bool = False,
    ):
        if not len(levels):
            raise ValueError("levels must hold at least one MI value")
        self.tasks = [CorrelatedGaussian(dim=dim, mi=float(m), cubic=cubic) for m in levels]
        self.levels = tuple(float(m) for m in levels)
        self.steps_per_level = check_positive_int(steps_per_level, "steps_per_level")
        self.dim, self.cubic = dim, cubic
        self.x_shape = self.y_shape = (dim,)

    def __repr__(self) -> str:
        return (
            f"Staircase(levels={self.levels}, steps_per_level={self.steps_per_level}, dim={self.dim}, "
            f"cubic={self.cubic})"
        )

    @property
    def total_steps(self) -> int:
        return self.steps_per_level * len(self.levels)

    @property
    def default_steps(self) -> int:  # a training runs the whole schedule unless told otherwise
        return self.total_steps

    @property
    def mi(self) -> float:  # the MI of the first level; use mi_at(step) during training
        return self.levels[0]

    def level_at(self, step: int) -> int:
        return min(step // self.steps_per_level, len(self.levels) - 1)

    def task_at(self, step: int) -> CorrelatedGaussian:
        return self.tasks[self.level_at(step)]

    def mi_at(self, step: int) -> float:
        return self.levels[self.level_at(step)]

    def sample(self, n, seed=None, *, generator=None, device=None):
        return self.tasks[0].sample(n, seed, generator=generator, device=device)

    def sample_at(self, step, n, *, generator=None, device=None):
        return self.task_at(step).sample(n, generator=generator, device=device)


class OneHot(Task):
    """ReMINE's discrete task (Sec. 3.1): ``x`` uniform over ``N`` one-hot vectors, ``y = x``.

    :math:`I(X;X) = H(X) = \\log N`; the seed uses ``N = 16``. The exact density ratio is ``N``
    on matching pairs and ``0`` elsewhere.
    """

    def __init__(self, n_classes: int = 16):
        self.n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
        self.mi = math.log(self.n_classes)
        self.x_shape = self.y_shape = (self.n_classes,)
        self.name = f"onehot-{self.n_classes}"
        self._params = {"n_classes": self.n_classes}

    def __repr__(self) -> str:
        return f"OneHot(n_classes={self.n_classes})"

    def sample(self, n, seed=None, *, generator=None, device=None, dtype=None):
        check_positive_int(n, "n")
        g = make_generator(seed, generator, device)
        dev = device if g is None else g.device
        idx = torch.randint(self.n_classes, (n,), generator=g, device=dev)
        x = torch.nn.functional.one_hot(idx, self.n_classes).to(dtype or torch.get_default_dtype())
        return x, x.clone()

    def _sample(self, n, generator, device):
        return self.sample(n, generator=generator, device=device, dtype=work_dtype(device))

    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        """``log N`` where ``y`` is the same one-hot vector as ``x``, ``-inf`` elsewhere: ``[n]``."""
        same = (x == y).all(-1)
        log_n = torch.full(same.shape, math.log(self.n_classes), dtype=x.dtype, device=x.device)
        return log_n.masked_fill(~same, -math.inf)
