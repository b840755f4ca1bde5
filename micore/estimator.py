"""The shared density-ratio interface (Song & Ermon 2020, Sec. 3.1 and Table 1).

Every estimator, generative or discriminative, produces a log density-ratio estimate
:math:`\\log r(x, y)` of :math:`p(x,y) / p(x)p(y)`, and an MI value that is
:math:`E_P[\\log r]` minus a log-partition term that differs from estimator to estimator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from .estimate import ESTIMATE, KINDS, Estimate
from .validation import Shape, as_shape, check_pair, check_positive_int

if TYPE_CHECKING:
    from .training.history import TrainingHistory

__all__ = ["MIEstimator"]

# Budget of (x_i, y_j) pairs evaluated at once by ``scores``: keeps the all-pairs matrix of a
# large evaluation set within a bounded amount of memory (about 0.8 GB for the seed's joint MLP).
DEFAULT_MAX_PAIRS = 2**18


class MIEstimator(nn.Module):
    """Base class of every estimator: a module pairing a model with an objective and an estimate.

    Public methods check their inputs (a ``ValueError`` naming the argument) and move them to
    the module's device; subclasses implement the underscored hooks, which receive checked
    tensors:

    * ``_log_ratio(x, y) -> [n]`` — the estimator's :math:`\\log r(x_i, y_i)` on paired rows;
    * ``_loss(x, y) -> []`` — the training objective to minimise;
    * ``_pair_scores(x, y) -> [m, k]`` — :math:`\\log r(x_i, y_j)` for all pairs of a chunk
      (default: ``_log_ratio`` on repeated rows; estimators with a faster route override it);
    * ``_batch_estimate(x, y) -> []`` — the MI value of one batch (default :math:`E_P[\\log r]`,
      the unified view's estimate, right for normalised ratios such as the generative ones);
    * ``_training_step(x, y) -> (loss, value)`` — the loss and the batch estimate of one training batch
      (default: ``_loss``, then ``_batch_estimate`` without gradients; override it to share one forward pass).

    Class attributes: ``kind`` (``"lower bound"``, ``"upper bound"`` or ``"estimate"``),
    ``default_lr`` and ``default_batch_size`` (the paper's training settings), ``early_stopping``
    (``"estimate"`` or ``"loss"``: what the finite-sample protocol's early stopping watches on held-out
    data). ``value_range(n)`` says which per-batch values are impossible, so that training stops at them
    (see its docstring).

    Args:
        x_dim: width of ``x`` (int) or the shape of one sample (tuple, e.g. ``(1, 28, 28)``).
        y_dim: likewise for ``y``.
    """

    kind: ClassVar[str] = ESTIMATE
    default_lr: ClassVar[float] = 5e-4
    default_batch_size: ClassVar[int] = 64
    # what early stopping on held-out data watches (micore.finite.heldout): the estimate, or the loss
    early_stopping: ClassVar[str] = "estimate"
    # whether micore.train_ensemble can batch this estimator's step (vmap, or its own _ensemble_step);
    # False tells a runner ahead of time that K runs would only loop, so it keeps them separate units
    ensemble_batches: ClassVar[bool] = True
    # whether the default _training_step can give a per-step value (set for each subclass when it is defined)
    _has_batch_value: ClassVar[bool] = False

    # public method -> the hooks behind it; overriding the public one alone leaves fit/estimate without it
    _PUBLIC_HOOKS: ClassVar[dict] = {
        "log_ratio": ("_log_ratio",),
        "loss": ("_loss", "_training_step"),
        "scores": ("_pair_scores", "_log_ratio"),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # decided once per class, not per training step: its own _batch_estimate, or _log_ratio behind the default
        base = MIEstimator.__dict__
        cls._has_batch_value = (
            cls._batch_estimate is not base["_batch_estimate"] or cls._log_ratio is not base["_log_ratio"]
        )
        for public, hooks in MIEstimator._PUBLIC_HOOKS.items():
            if public in cls.__dict__ and all(getattr(cls, h) is getattr(MIEstimator, h) for h in hooks):
                raise TypeError(
                    f"{cls.__name__} overrides {public}() but implements none of its hooks ({', '.join(hooks)}): "
                    f"implement {hooks[0]}(x, y) instead. The public {public}() checks the inputs and moves them to "
                    f"the module's device, then calls {hooks[0]}; fit, estimate and scores call the hooks directly."
                )

    def __init__(self, x_dim, y_dim):
        super().__init__()
        self.x_shape: Shape = as_shape(x_dim, "x_dim")
        self.y_shape: Shape = as_shape(y_dim, "y_dim")
        if self.kind not in KINDS:
            raise TypeError(f"{type(self).__name__}.kind must be one of {KINDS}")
        self.batch_size = self.default_batch_size  # the training batch size once fitted
        self.history: TrainingHistory | None = None

    # ------------------------------------------------------------------ hooks
    def _log_ratio(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement the hook _log_ratio(x, y): x [n, *x_shape], y [n, *y_shape] "
            "(checked, on the module's device) -> [n], its log p(x_i, y_i) / p(x_i) p(y_i); log_ratio, scores and "
            "estimate call it (see micore.MIEstimator)"
        )

    def _loss(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement the hook _loss(x, y) -> [] (the training objective to minimise "
            "on one checked batch); fit and loss call it (see micore.MIEstimator)"
        )

    def _pair_scores(self, x: Tensor, y: Tensor) -> Tensor:
        m, k = x.shape[0], y.shape[0]
        xs = x.repeat_interleave(k, dim=0)
        ys = y.repeat((m,) + (1,) * (y.dim() - 1))
        return self._log_ratio(xs, ys).view(m, k)

    def _batch_estimate(self, x: Tensor, y: Tensor) -> Tensor:
        return self._log_ratio(x, y).mean()

    def _training_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        # an estimator with only _loss and _log_ratio (or _batch_estimate) still records the estimate of each
        # training batch, before the update on it: a second forward pass without gradients. The built-ins
        # override this hook to get both from one pass.
        loss = self._loss(x, y)
        if not self._has_batch_value:
            return loss, None
        with torch.no_grad():
            value = self._batch_estimate(x, y)
        return loss, value.detach()

    def value_range(self, batch_size: int) -> tuple[float, float]:
        """``(low, high)``: the interval the value of a training batch of ``batch_size`` must lie in.

        :func:`~micore.training.train` stops with :class:`~micore.training.TrainingDiverged` at the
        first step whose recorded batch estimate falls outside it (as it does at a NaN/inf), so an
        estimator declares here what its formula makes impossible: InfoNCE never exceeds
        :math:`\\log n`, say. Default ``(-inf, inf)``: no range is known, only a non-finite value is
        impossible (a likelihood-based estimate can be far off early in training and still recover).
        """
        return -math.inf, math.inf

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device | None:
        """The device of the module's parameters (``None`` for a module without any)."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return None

    @property
    def dtype(self) -> torch.dtype | None:
        for t in self.parameters():
            return t.dtype
        return None

    def _inputs(self, x, y, min_n: int = 2) -> tuple[Tensor, Tensor]:
        x, y = check_pair(x, y, self.x_shape, self.y_shape, self.dtype, min_n=min_n)
        dev = self.device
        if dev is not None:
            x, y = x.to(dev), y.to(dev)
        return x, y

    def _score_matrix(self, x: Tensor, y: Tensor, max_pairs: int = DEFAULT_MAX_PAIRS) -> Tensor:
        rows = max(1, max_pairs // y.shape[0])
        if rows >= x.shape[0]:
            return self._pair_scores(x, y)
        return torch.cat([self._pair_scores(x[i : i + rows], y) for i in range(0, x.shape[0], rows)])

    # ------------------------------------------------------------------ interface
    def log_ratio(self, x, y) -> Tensor:
        """:math:`\\log r(x_i, y_i)` on paired rows. ``x: [n, *x_shape]``, ``y: [n, *y_shape]`` -> ``[n]``."""
        x, y = self._inputs(x, y, min_n=1)
        return self._log_ratio(x, y)

    def scores(self, x, y, *, max_pairs: int = DEFAULT_MAX_PAIRS) -> Tensor:
        """:math:`\\log r(x_i, y_j)` for all pairs: ``[n, n]``; the diagonal holds the joint samples.

        Computed in row chunks of at most ``max_pairs`` pairs so memory stays bounded for large ``n``.
        """
        x, y = self._inputs(x, y, min_n=1)
        check_positive_int(max_pairs, "max_pairs")
        return self._score_matrix(x, y, max_pairs)

    def loss(self, x, y) -> Tensor:
        """The training objective on one batch (a scalar to minimise)."""
        x, y = self._inputs(x, y)
        return self._loss(x, y)

    @torch.no_grad()
    def estimate(self, x, y, batch_size: int | None = None) -> Estimate:
        """The MI on the data given, averaged over evaluation batches of ``batch_size``.

        Args:
            x: ``[n, *x_shape]`` (use held-out samples: the value on training data is optimistic).
            y: ``[n, *y_shape]``.
            batch_size: samples per evaluation batch; defaults to the training batch size, since
                batch-dependent bounds (InfoNCE's ``log n`` cap) depend on it. A final partial
                batch is dropped; ``n`` in the result counts the samples used.
        Returns:
            an :class:`Estimate` with the mean, its standard error over batches, and ``kind``.
        """
        x, y = self._inputs(x, y)
        n = x.shape[0]
        bs = self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size", minimum=2)
        bs = min(bs, n)
        k = n // bs
        was_training = self.training
        self.eval()
        try:
            values = (
                torch.stack(
                    [self._batch_estimate(x[i * bs : (i + 1) * bs], y[i * bs : (i + 1) * bs]) for i in range(k)]
                )
                .double()
                .cpu()
            )
        finally:
            self.train(was_training)
        if not bool(torch.isfinite(values).all()):
            raise FloatingPointError(
                f"{type(self).__name__}.estimate produced non-finite values on {int((~torch.isfinite(values)).sum())}"
                f" of {k} batches; the model has likely diverged"
            )
        stderr = float(values.std() / math.sqrt(k)) if k > 1 else math.nan
        return Estimate(float(values.mean()), stderr, n=k * bs, kind=self.kind, batch_size=bs)

    def fit(self, data, y=None, **options) -> TrainingHistory:
        """Trains on a :class:`~micore.tasks.Sampler` or on tensors ``(x, y)``: :func:`micore.train` on this module.

        ``options`` are :func:`~micore.train`'s keywords (``steps``, ``epochs``, ``batch_size``, ``lr``,
        ``seed``, ``device``, ``progress``, ``record``, ``check_every``, ``desc``, ``divergence``,
        ``precision``, ``compile``, ...); an unknown one is an error. Returns the training history
        (per-step loss and, with ``record``, the per-step batch estimate). A divergence (a NaN/inf
        loss, or a batch estimate outside :meth:`value_range`) raises
        :class:`~micore.TrainingDiverged` naming the step, unless ``divergence="ignore"``.
        """
        from .training import train

        return train(self, data, y, **options)
