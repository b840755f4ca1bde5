"""The shared shape of every discriminative estimator: a critic, an objective, and a bound."""

from __future__ import annotations

from torch import Tensor, nn

from micore import MIEstimator

from .critics import make_critic

__all__ = ["CriticEstimator"]


class CriticEstimator(MIEstimator):
    r"""A critic :math:`T(x, y)` trained with one objective and evaluated with one bound.

    The log-ratio the critic implies is :math:`\log r(x, y) = T(x, y) - s(y)`, where the shift
    ``_shift(y)`` is the estimator's: 1 for NWJ, a learned :math:`\log a(y)` for TUBA and
    :math:`I_\alpha`, 0 for the others. ``scores`` returns that log-ratio matrix, and both the
    objective and the estimate are functions of it, computed from one forward pass per step.

    Subclasses set ``kind`` and implement ``_objective(log_r) -> loss`` and ``_bound(log_r) -> value``
    on the ``[n, n]`` log-ratio matrix of a batch; those whose loss is exactly minus their bound set
    ``objective_is_negated_bound`` so the per-step record reuses the loss instead of recomputing it.
    They also declare ``value_range(batch_size) -> (low, high)``, the values their bound can take on a
    batch whose critic claims no log-ratio beyond :data:`~discmi.bounds.MAX_LOG_RATIO` (see
    :mod:`discmi.bounds`); training stops at a batch value outside it. A new bound that declares none
    is checked for a NaN/inf value and an exploding loss only.

    Args:
        x_dim, y_dim: int widths, or sample shapes for images.
        critic: ``"joint"`` (concatenated MLP 256-256), ``"separable"`` (``g(x)^T h(y)``, 256-256-32),
            ``"conv"`` (images), or any ``nn.Module`` mapping paired ``x: [m, ...]``, ``y: [m, ...]``
            to ``[m]`` scores (optionally with ``all_pairs(x, y) -> [m, k]``).
    """

    objective_is_negated_bound = False

    def __init__(self, x_dim, y_dim, critic="joint"):
        super().__init__(x_dim, y_dim)
        self.critic = make_critic(critic, self.x_shape, self.y_shape)

    # -- hooks of the estimator --------------------------------------------------------
    def _shift(self, y: Tensor) -> Tensor | float:
        return 0.0

    def _objective(self, log_r: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _objective(log_r) -> [] : the loss to minimise, from the "
            "[n, n] log-ratio matrix of a batch (diagonal = joint pairs); see discmi.CriticEstimator"
        )

    def _bound(self, log_r: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _bound(log_r) -> [] : the MI value of a batch from its "
            "[n, n] log-ratio matrix (e.g. discmi.bounds.nwj_lower_bound); see discmi.CriticEstimator"
        )

    # -- the density-ratio interface -----------------------------------------------------
    def _critic(self, x: Tensor, y: Tensor) -> Tensor:
        out = self.critic(x, y)
        if out.shape != (x.shape[0],):
            raise ValueError(f"the critic must return one score per pair, shape [{x.shape[0]}]; got {list(out.shape)}")
        return out

    def _critic_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        all_pairs = getattr(self.critic, "all_pairs", None)
        if all_pairs is not None:
            return all_pairs(x, y)
        m, k = x.shape[0], y.shape[0]
        xs = x.repeat_interleave(k, dim=0)
        ys = y.repeat((m,) + (1,) * (y.dim() - 1))
        return self._critic(xs, ys).view(m, k)

    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        return self._critic(x, y) - self._shift(y)

    def _pair_scores(self, x: Tensor, y: Tensor) -> Tensor:
        shift = self._shift(y)
        t = self._critic_pairs(x, y)
        return t - (shift[None, :] if isinstance(shift, Tensor) else shift)

    def _loss(self, x: Tensor, y: Tensor) -> Tensor:
        return self._objective(self._pair_scores(x, y))

    def _batch_estimate(self, x: Tensor, y: Tensor) -> Tensor:
        return self._bound(self._pair_scores(x, y))

    def _training_step(self, x: Tensor, y: Tensor):
        log_r = self._pair_scores(x, y)
        loss = self._objective(log_r)
        value = -loss.detach() if self.objective_is_negated_bound else self._bound(log_r.detach())
        return loss, value

    def _ensemble_step(self):
        """For :func:`micore.ensemble.train_ensemble`, on its private copy: the joint and separable critics
        of K members as batched matrix products (:mod:`discmi.batched`); ``None`` (vmap) for other critics."""
        from .batched import batched_step

        return batched_step(self)


class Baseline(nn.Module):
    """A learned log-baseline :math:`\\log a(y)`: an MLP on the flattened ``y`` (one hidden layer of 256)."""

    def __init__(self, y_shape, hidden: int = 256):
        super().__init__()
        width = 1
        for d in y_shape:
            width *= d
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y).squeeze(-1)
