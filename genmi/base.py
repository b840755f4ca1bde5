r"""The generative estimator :math:`I_{GM}` (Song & Ermon 2020, Eq. 9): three density models.

.. math:: I_{GM}(p_\theta, p_\phi, p_\psi) = E_P[\log p_\theta(x, y) - \log p_\phi(x) - \log p_\psi(y)]

Each model is trained by maximum likelihood on its own variable(s); the log-ratio is
:math:`\log r = \log p_\theta(x,y) - \log p_\phi(x) - \log p_\psi(y)`. It is an **estimate**: a
difference of likelihoods (or of likelihood bounds) bounds MI in neither direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from micore import ESTIMATE, MIEstimator
from micore.validation import check_pair

from .pixels import check_pixels

__all__ = ["GenerativeMI"]


class GenerativeMI(MIEstimator):
    """A joint model of ``(x, y)`` and two marginal models, trained together by maximum likelihood.

    Subclasses build ``self.joint``, ``self.model_x``, ``self.model_y`` (modules whose
    ``log_prob(v) -> [n]`` gives a log-likelihood, or a stochastic bound on it) and may override
    ``_join(x, y)`` (how the joint model sees a pair; default: flattened and concatenated) and
    ``_prepare(x, y)`` (e.g. dequantization; applied once, so the joint and the marginal models see
    the same values).

    The loss is the mean negative log-likelihood of the three models, so each model receives the
    gradient of its own likelihood only; one training step evaluates each model once and the
    recorded estimate reuses those values.

    Args:
        x_dim, y_dim: int widths, or image shapes ``(C, H, W)``.
        pixels: which of ``(x, y)`` are images with intensities in ``[0, 1]``; their range is checked
            at every public entry point and in ``fit``.
    """

    kind = ESTIMATE
    # a likelihood model is chosen by its held-out likelihood, not by the MI it happens to imply there
    early_stopping = "loss"

    def __init__(self, x_dim, y_dim, pixels: tuple[bool, bool] = (False, False)):
        super().__init__(x_dim, y_dim)
        self.pixels = tuple(bool(p) for p in pixels)
        self.joint: nn.Module
        self.model_x: nn.Module
        self.model_y: nn.Module

    # -- hooks ---------------------------------------------------------------------------
    def _join(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.cat([x.flatten(1), y.flatten(1)], dim=1)

    def _prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x, y

    def _log_probs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log p(x, y), log p(x), log p(y))``, each ``[n]``."""
        x, y = self._prepare(x, y)
        return self.joint.log_prob(self._join(x, y)), self.model_x.log_prob(x), self.model_y.log_prob(y)

    # -- the density-ratio interface -------------------------------------------------------
    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        joint, px, py = self._log_probs(x, y)
        return joint - px - py

    def _loss(self, x: Tensor, y: Tensor) -> Tensor:
        joint, px, py = self._log_probs(x, y)
        return -(joint + px + py).mean() / 3.0

    def _training_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        joint, px, py = self._log_probs(x, y)
        return -(joint + px + py).mean() / 3.0, (joint - px - py).detach().mean()

    def _pair_scores(self, x: Tensor, y: Tensor) -> Tensor:
        # the marginals once per row and column; only the joint model sees all m * k pairs
        x, y = self._prepare(x, y)
        m, k = x.shape[0], y.shape[0]
        xs = x.repeat_interleave(k, dim=0)
        ys = y.repeat((m,) + (1,) * (y.dim() - 1))
        joint = self.joint.log_prob(self._join(xs, ys)).view(m, k)
        return joint - self.model_x.log_prob(x)[:, None] - self.model_y.log_prob(y)[None, :]

    # -- input checks ------------------------------------------------------------------------
    def _check_pixels(self, x, y) -> None:
        for name, t, is_image in (("x", x, self.pixels[0]), ("y", y, self.pixels[1])):
            if is_image and isinstance(t, Tensor):
                check_pixels(t, name)

    def _inputs(self, x, y, min_n: int = 2):
        x, y = super()._inputs(x, y, min_n=min_n)
        self._check_pixels(x, y)
        return x, y

    def fit(self, data, y=None, **options):
        """As :meth:`micore.MIEstimator.fit`; image tensors are first checked to lie in ``[0, 1]``."""
        if y is not None and any(self.pixels):
            self._check_pixels(*check_pair(data, y, self.x_shape, self.y_shape, min_n=1))
        return super().fit(data, y, **options)
