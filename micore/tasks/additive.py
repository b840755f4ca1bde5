r"""Additive uniform noise: :math:`X \sim U(0, 1)`, :math:`Y = X + N`, :math:`N \sim U(-\varepsilon, \varepsilon)`.

bmi's ``1v1-additive-{epsilon}`` (Czyż et al. 2023, "Beyond Normal"; the benchmark uses ε = 0.1 and 0.75).

Derivation. :math:`I(X;Y) = h(Y) - h(Y \mid X) = h(Y) - \log 2\varepsilon`. The density of :math:`Y` is the
length of :math:`[y-\varepsilon, y+\varepsilon] \cap [0, 1]` over :math:`2\varepsilon`, a trapezoid:

* :math:`\varepsilon \le \tfrac12`: two ramps of width :math:`2\varepsilon` rising to 1 around a plateau at
  density 1. The plateau adds nothing to :math:`h(Y)`; each ramp adds
  :math:`2\varepsilon \int_0^1 -u \log u \, du = \varepsilon/2`. So :math:`h(Y) = \varepsilon` and
  :math:`I = \varepsilon - \log 2\varepsilon` (ε = 0.1: 1.7094 nats).
* :math:`\varepsilon \ge \tfrac12`: two ramps of width 1 rising to :math:`1/2\varepsilon` around a plateau of
  width :math:`2\varepsilon - 1`; :math:`h(Y) = \log 2\varepsilon + 1/(4\varepsilon)` and
  :math:`I = 1/(4\varepsilon)` (ε = 0.75: 1/3 nats).

Both give 1/2 at ε = 1/2. Small ε gives high MI: ε = 2·10⁻⁵ carries 10.13 nats.
"""

from __future__ import annotations

import math

import torch

from .base import Task, format_number, work_dtype

__all__ = ["AdditiveUniform", "additive_uniform_mi"]

# samples rounded to float32 (2 ulps at 1) may land just off the support; count them in
_SLACK = 2.0 * torch.finfo(torch.float32).eps


def additive_uniform_mi(epsilon: float) -> float:
    r""":math:`\varepsilon - \log 2\varepsilon` for :math:`\varepsilon \le 1/2`, else :math:`1/(4\varepsilon)`."""
    return epsilon - math.log(2.0 * epsilon) if epsilon <= 0.5 else 0.25 / epsilon


class AdditiveUniform(Task):
    r""":math:`X \sim U(0,1)`, :math:`Y = X + U(-\varepsilon, \varepsilon)`: bmi's ``1v1-additive-{epsilon}``.

    The exact log-ratio: on the support (:math:`0 \le x \le 1`, :math:`|y - x| \le \varepsilon`)
    :math:`p(x, y) = 1/2\varepsilon`, :math:`p(x) = 1` and :math:`p(y) = \ell(y)/2\varepsilon` with
    :math:`\ell(y) = \min(1, y+\varepsilon) - \max(0, y-\varepsilon)`, so :math:`\log r(x, y) = -\log \ell(y)`
    (:math:`-\infty` off the support, which is widened by two float32 ulps so that rounded samples stay on it).

    Args:
        epsilon: the noise half-width ε > 0.

    Shapes: ``x: [n, 1]``, ``y: [n, 1]``.

    >>> task = AdditiveUniform(0.75)
    >>> round(task.mi, 4)
    0.3333
    """

    def __init__(self, epsilon: float):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < math.inf:
            raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.mi = additive_uniform_mi(self.epsilon)
        self.x_shape = self.y_shape = (1,)
        self.name = f"1v1-additive-{format_number(self.epsilon)}"
        self._params = {"epsilon": self.epsilon}

    def _sample(self, n, generator, device):
        wd = work_dtype(device)
        x = torch.rand(n, 1, generator=generator, device=device, dtype=wd)
        noise = (2.0 * torch.rand(n, 1, generator=generator, device=device, dtype=wd) - 1.0) * self.epsilon
        return x, x + noise

    def _log_ratio(self, x, y):
        x, y = x[:, 0], y[:, 0]
        eps, slack = self.epsilon, _SLACK
        length = torch.clamp(y + eps, max=1.0) - torch.clamp(y - eps, min=0.0)
        inside = (x >= -slack) & (x <= 1 + slack) & ((y - x).abs() <= eps + slack) & (length > 0)
        return torch.where(inside, -torch.log(length.clamp(min=torch.finfo(length.dtype).tiny)), -math.inf)
