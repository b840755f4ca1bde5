r"""The normalised bounds of Barber & Agakov (2003), as written by Poole et al. (2019, Sec. 2.1).

* :class:`BarberAgakov` — the lower bound :math:`I_{BA} = E_{p(x,y)}[\log q(x|y)] + h(X)` (Eq. 2),
  with a learned conditional Gaussian :math:`q(x|y)` and a known differential entropy :math:`h(X)`;
* :class:`BarberAgakovUpper` — the upper bound :math:`R = E_{p(x)}[KL(p(y|x) \| q(y))]` (Eq. 1), with
  the known encoder :math:`p(y|x)` and a learned marginal :math:`q(y)` (a RealNVP flow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from micore import LOWER_BOUND, UPPER_BOUND, MIEstimator

from .flows import real_nvp
from .known_encoder import check_encoder, encode

__all__ = ["BarberAgakov", "BarberAgakovUpper", "ConditionalGaussian", "standard_normal_entropy"]


def standard_normal_entropy(dim: int) -> float:
    r""":math:`h(\mathcal N(0, I_d)) = \tfrac d2 \log(2\pi e)` nats (the benchmark tasks' ``x``)."""
    return 0.5 * dim * math.log(2 * math.pi * math.e)


class ConditionalGaussian(nn.Module):
    r""":math:`q(x|y) = \mathcal N(x; \mu(y), \operatorname{diag}\sigma(y)^2)` over the flattened ``x``.

    An MLP ``y -> hidden -> ... -> (mu, log sigma)`` with ReLU (default 256-256, the critics' sizes; the
    paper fixes no architecture). ``log_prob(x, y) -> [n]``.
    """

    def __init__(self, x_features: int, y_features: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = y_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 2 * x_features))
        self.net = nn.Sequential(*layers)

    def log_prob(self, x: Tensor, y: Tensor) -> Tensor:
        mean, log_std = self.net(y).chunk(2, dim=-1)
        return Normal(mean, log_std.exp()).log_prob(x.flatten(1)).sum(-1)


class BarberAgakov(MIEstimator):
    r"""The Barber-Agakov lower bound (Barber & Agakov 2003; Poole et al. 2019, Eq. 2). **Lower bound**.

    .. math:: I(X;Y) = E_{p(x,y)}\Big[\log \frac{q(x|y)}{p(x)}\Big] + E_{p(y)}[KL(p(x|y) \| q(x|y))]
              \ge E_{p(x,y)}[\log q(x|y)] + h(X) = I_{BA}

    tight when :math:`q(x|y) = p(x|y)`. ``q`` is a :class:`ConditionalGaussian`, trained by maximising
    :math:`E[\log q(x|y)]` (the loss is its negative). The differential entropy :math:`h(X)` must be
    known (``entropy_x``; for ``x ~ N(0, I_d)`` it is :func:`standard_normal_entropy`). Defaults: Adam
    lr 5e-4, batch 64 (the benchmark's).

    ``log_ratio`` is :math:`\log q(x|y) + h(X)`: its mean under ``P`` is the bound, and it differs from a
    log density-ratio by :math:`-\log p(x) - h(X)`, a function of ``x`` alone that averages to zero
    (bounds that normalise over ``y`` for each ``x``, such as InfoNCE, are unchanged by it).

    Args:
        x_dim, y_dim: int widths or shapes (flattened).
        entropy_x: :math:`h(X)` in nats (keyword, required).
        hidden: widths of the hidden layers of ``q(x|y)``.
    """

    kind = LOWER_BOUND

    def __init__(self, x_dim, y_dim, *, entropy_x: float, hidden: Sequence[int] = (256, 256)):
        super().__init__(x_dim, y_dim)
        if isinstance(entropy_x, bool) or not isinstance(entropy_x, (int, float)) or not math.isfinite(entropy_x):
            raise ValueError(f"entropy_x must be a finite number (h(X) in nats), got {entropy_x!r}")
        if not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be positive ints, got {hidden!r}")
        self.entropy_x = float(entropy_x)
        self.decoder = ConditionalGaussian(math.prod(self.x_shape), math.prod(self.y_shape), tuple(hidden))

    def _log_ratio(self, x, y):
        return self.decoder.log_prob(x, y) + self.entropy_x

    def _loss(self, x, y):
        return -self.decoder.log_prob(x, y).mean()

    def _training_step(self, x, y):
        log_q = self.decoder.log_prob(x, y)
        return -log_q.mean(), log_q.detach().mean() + self.entropy_x

    def extra_repr(self) -> str:
        return f"entropy_x={self.entropy_x:.4g}"


class BarberAgakovUpper(MIEstimator):
    r"""The variational upper bound, or rate (Barber & Agakov 2003; Poole et al. 2019, Eq. 1). **Upper bound**.

    .. math:: I(X;Y) = E_{p(x,y)}\Big[\log \frac{p(y|x)}{q(y)}\Big] - KL(p(y) \| q(y))
              \le E_{p(x)}[KL(p(y|x) \| q(y))] = R

    tight when :math:`q(y) = p(y)`. The encoder :math:`p(y|x)` is known; :math:`q(y)` is a RealNVP flow
    (:func:`~genmi.flows.real_nvp`, seed sizes), trained by maximum likelihood on the ``y`` samples, which
    minimises ``R``. Each batch estimates ``R`` by Monte Carlo, :math:`\frac1n \sum_i \log p(y_i|x_i) - \log q(y_i)`,
    with :math:`y_i \sim p(y|x_i)` (unbiased, so an upper bound in expectation). ``log_ratio`` is
    :math:`\log p(y|x) - \log q(y)`.

    Args:
        x_dim, y_dim: int widths or shapes (``q`` models the flattened ``y``).
        encoder: ``x -> torch.distributions.Distribution`` of ``y`` (keyword, required); kept as given, not
            trained.
        layers, hidden: the flow's coupling layers and hidden units (seed: 5, 100).
    """

    kind = UPPER_BOUND

    def __init__(self, x_dim, y_dim, *, encoder, layers: int = 5, hidden: int = 100):
        super().__init__(x_dim, y_dim)
        check_encoder(encoder)
        object.__setattr__(self, "encoder", encoder)  # not a submodule: fit trains q(y) only
        self.marginal_y = real_nvp(math.prod(self.y_shape), layers=layers, hidden=hidden)

    def _log_conditional(self, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            return encode(self.encoder, x, self.y_shape).log_prob(y).to(y.dtype)

    def _log_ratio(self, x, y):
        return self._log_conditional(x, y) - self.marginal_y.log_prob(y.flatten(1))

    def _loss(self, x, y):
        return -self.marginal_y.log_prob(y.flatten(1)).mean()

    def _training_step(self, x, y):
        log_q = self.marginal_y.log_prob(y.flatten(1))
        return -log_q.mean(), (self._log_conditional(x, y) - log_q.detach()).mean()
