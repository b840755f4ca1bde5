"""The finite-sample protocol: split the data, standardise, train with early stopping, evaluate held out.

One seed of it is :func:`fit_heldout`; :func:`~micore.finite.estimate_heldout` runs several seeds and adds the interval
and the diagnostics. The data are split three ways, each seed its own random split:

* **train** (70 %): the minibatches the estimator is trained on;
* **valid** (10 %): the held-out estimate every ``eval_every`` steps; training stops when it has not improved
  for ``patience`` evaluations (or at ``max_steps``), and the parameters of its best evaluation are restored;
* **test** (20 %): the value reported, on data neither trained on nor used to choose the stopping step (the
  best of many noisy validation values is biased upwards; the test value of the chosen model is not).

Vector inputs (``[n, d]``) are standardised per column with the mean and standard deviation of the training
part only: MI is invariant under invertible per-coordinate affine maps, and the paper's learning rates assume
inputs of unit scale. Image inputs are left as they are.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import Tensor

from ..device import resolve_device
from ..estimate import UPPER_BOUND
from ..training import TrainingDiverged, train
from ..validation import check_positive_float, check_positive_int, constant_columns

__all__ = [
    "HeldoutConfig",
    "FIELDS",
    "SeedFit",
    "fit_heldout",
    "split_indices",
    "Standardizer",
    "MONITORS",
    "MIN_BATCH",
]

# What early stopping watches: the held-out MI estimate (the default for critics, whose objective is a bound
# on it) or the held-out training loss (generative models, whose objective is a likelihood).
MONITORS = ("auto", "estimate", "loss")


@dataclass(frozen=True)
class HeldoutConfig:
    """The protocol's settings; the defaults are what :func:`~micore.finite.estimate_heldout` and
    ``selfconsistency estimate`` use. The one place they are spelled: every other layer reads them from here
    (:meth:`from_options`, :data:`FIELDS`).

    Args:
        valid_fraction, test_fraction: shares of the rows held out for early stopping and for the value.
        max_steps: the step cap.
        eval_every: steps between held-out evaluations (about two epochs of 3,500 training rows at batch 64).
        patience: evaluations without improvement before stopping (1,000 steps by default).
        min_delta: nats an evaluation must beat the best by to count as an improvement.
        batch_size, lr: ``None``: the estimator's paper defaults (``default_batch_size``, ``default_lr``).
        standardize: standardise vector inputs on the training part.
        monitor: ``"estimate"`` (maximise the held-out MI estimate; minimise it for an upper bound), ``"loss"``
            (minimise the held-out loss) or ``"auto"``: the estimator's ``early_stopping`` attribute, else
            ``"estimate"``.
    """

    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    max_steps: int = 10_000
    eval_every: int = 100
    patience: int = 10
    min_delta: float = 0.0
    batch_size: int | None = None
    lr: float | None = None
    standardize: bool = True
    monitor: str = "auto"

    @classmethod
    def from_options(cls, **options) -> HeldoutConfig:
        """The config with ``options`` changed from the defaults; an unknown name is a ``TypeError`` (as for
        any unexpected keyword) listing the known ones; a bad value a ``ValueError`` naming it."""
        unknown = sorted(set(options) - set(FIELDS))
        if unknown:
            raise TypeError(f"unexpected protocol option(s) {unknown}; the options are {list(FIELDS)}")
        return cls(**options)

    def __post_init__(self):
        for name in ("valid_fraction", "test_fraction"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise ValueError(f"{name} must be a fraction in (0, 1), got {v!r}")
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"valid_fraction + test_fraction must leave at least 10% of the rows to train on, "
                f"got {self.valid_fraction} + {self.test_fraction}"
            )
        check_positive_int(self.max_steps, "max_steps")
        check_positive_int(self.eval_every, "eval_every")
        check_positive_int(self.patience, "patience")
        if isinstance(self.min_delta, bool) or not isinstance(self.min_delta, (int, float)) or self.min_delta < 0:
            raise ValueError(f"min_delta must be a number >= 0, got {self.min_delta!r}")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size", minimum=2)
        if self.lr is not None:
            check_positive_float(self.lr, "lr")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")


FIELDS = tuple(f.name for f in fields(HeldoutConfig))
"""The names of the protocol's settings (the keywords of ``HeldoutConfig``)."""


@dataclass
class SeedFit:
    """One seed of the protocol.

    ``value``/``stderr``: the estimate on the test part (stderr over its evaluation batches);
    ``train_value``: the same on as many training rows (over-fitting shows as ``train_value`` >> ``value``);
    ``curve``: ``[step, held-out value]`` at every evaluation; ``best_step``: the step restored;
    ``stopped``: ``"patience"``, ``"max_steps"`` or ``"diverged"`` (then ``divergence`` says why, and the
    value is that of the best evaluation before it); ``nonfinite``: test batches whose value was not finite
    (left out of ``value``).
    """

    seed: int
    value: float
    stderr: float
    train_value: float
    train_stderr: float
    valid_best: float
    best_step: int
    steps: int
    stopped: str
    curve: list[list[float]]
    n_train: int
    n_valid: int
    n_test: int
    batch_size: int
    lr: float
    monitor: str
    seconds: float
    divergence: str | None = None
    nonfinite: int = 0
    notes: list[str] = field(default_factory=list)
    history_loss: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("history_loss")
        return d


def split_indices(n: int, valid_fraction: float, test_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """A random ``(train, valid, test)`` partition of ``range(n)``, reproducible from ``seed``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    return perm[n_test + n_valid :], perm[n_test : n_test + n_valid], perm[:n_test]


class Standardizer:
    """Per-column ``(v - mean) / std`` fitted on one part of the data (vectors ``[n, d]`` only).

    A column constant on the fitted part (:func:`~micore.validation.constant_columns`) carries no information
    there and cannot be divided by its zero spread: it is left out (set to 0 in every part) and ``note`` says
    so; ``None`` when every column varies.
    """

    def __init__(self, v: Tensor, name: str):
        self.mean = v.mean(0, keepdim=True)
        self.std = v.std(0, keepdim=True)
        constant = constant_columns(v)
        self.keep = torch.ones_like(self.std)
        self.note = None
        if constant:
            self.keep.view(-1)[constant] = 0.0
            self.std.view(-1)[constant] = 1.0
            shown = f"{constant[:10]}{' ...' if len(constant) > 10 else ''}"
            self.note = f"{name}: column(s) {shown} are constant on the training rows and were left out (set to 0)"

    def __call__(self, v: Tensor) -> Tensor:
        return (v - self.mean) / self.std * self.keep


# The smallest batch the protocol adapts to for a small dataset: below it a batch estimate is mostly noise.
MIN_BATCH = 8


def _batch_size(estimator, cfg: HeldoutConfig, n: int, parts: tuple[int, int, int]) -> tuple[int, list[str]]:
    """The training and evaluation batch, and notes. The estimator's paper batch when the parts hold it (two
    batches to train on, one to validate, one to test); for fewer rows, and no batch asked for, the largest
    that fits, down to :data:`MIN_BATCH`, with a note. A batch asked for that does not fit is an error."""
    n_train, n_valid, n_test = parts
    train_fraction = 1 - cfg.valid_fraction - cfg.test_fraction

    def rows_for(b: int) -> int:
        return max(
            math.ceil(2 * b / train_fraction), *(math.ceil(b / f) for f in (cfg.valid_fraction, cfg.test_fraction))
        )

    fits = min(n_train // 2, n_valid, n_test)
    bs = cfg.batch_size or estimator.default_batch_size
    if bs <= fits:
        return bs, []
    if cfg.batch_size is not None:
        for part, have, batches in (("train", n_train, 2), ("valid", n_valid, 1), ("test", n_test, 1)):
            if have < batches * bs:
                raise ValueError(
                    f"x: {n} rows leave {have} for the {part} part, fewer than "
                    f"{'two batches' if batches == 2 else 'one batch'} of {bs}; give at least ~{rows_for(bs)} rows "
                    "or a smaller batch_size"
                )
    if fits < MIN_BATCH:
        raise ValueError(
            f"x: {n} rows are too few for the protocol: its train, validation and test parts need batches of at "
            f"least {MIN_BATCH} (at least ~{rows_for(MIN_BATCH)} rows)"
        )
    note = (
        f"batch {bs} needs ~{rows_for(bs)} rows; with {n} the batch is {fits} (a smaller batch estimates with more "
        f"variance, and caps InfoNCE at log {fits})"
    )
    return fits, [note]


def _monitor_of(estimator, cfg: HeldoutConfig) -> str:
    if cfg.monitor != "auto":
        return cfg.monitor
    return getattr(estimator, "early_stopping", "estimate")


@torch.no_grad()
def _evaluate(estimator, x: Tensor, y: Tensor, bs: int, what: str) -> tuple[float, float, int]:
    """``(mean, stderr, non-finite batches)`` of the batch values (``what``: estimate or loss) over ``x, y``."""
    was = estimator.training
    estimator.eval()
    try:
        k = x.shape[0] // bs
        fn = estimator._batch_estimate if what == "estimate" else estimator._loss
        v = torch.stack([fn(x[i * bs : (i + 1) * bs], y[i * bs : (i + 1) * bs]) for i in range(k)]).double().cpu()
    finally:
        estimator.train(was)
    ok = torch.isfinite(v)
    v = v[ok]
    if v.numel() == 0:
        return math.nan, math.nan, k
    se = float(v.std() / math.sqrt(v.numel())) if v.numel() > 1 else math.nan
    return float(v.mean()), se, int(k - v.numel())


class _EarlyStopping:
    """The ``monitor`` of :func:`~micore.training.train`: evaluates held out, keeps the best state."""

    def __init__(self, estimator, xv, yv, bs: int, cfg: HeldoutConfig, monitor: str, device):
        self.est, self.xv, self.yv, self.bs, self.cfg = estimator, xv, yv, bs, cfg
        self.what = monitor
        # the value to maximise: the estimate (minimised for an upper bound), or minus the loss
        self.sign = -1.0 if monitor == "loss" or estimator.kind == UPPER_BOUND else 1.0
        self.best, self.best_step, self.since, self.curve = -math.inf, 0, 0, []
        self.best_state = copy.deepcopy(estimator.state_dict())
        self.devices = [device] if device.type == "cuda" else []

    def __call__(self, step: int) -> bool:
        with torch.random.fork_rng(devices=self.devices):  # evaluation leaves the training's random stream alone
            value, _, _ = _evaluate(self.est, self.xv, self.yv, self.bs, self.what)
        self.curve.append([step, value])
        score = self.sign * value
        if math.isfinite(score) and score > self.best + self.cfg.min_delta:
            self.best, self.best_step, self.since = score, step, 0
            self.best_state = copy.deepcopy(self.est.state_dict())
            return False
        self.since += 1
        return self.since >= self.cfg.patience


def fit_heldout(
    estimator, x: Tensor, y: Tensor, *, seed: int = 0, config: HeldoutConfig | None = None, device=None, progress=True
) -> SeedFit:
    """One seed of the finite-sample protocol on ``estimator`` (freshly initialised), in place.

    Args:
        estimator: an untrained :class:`~micore.MIEstimator` for ``x``'s and ``y``'s shapes.
        x: ``[n, *x_shape]`` float tensor; y: ``[n, *y_shape]``; already checked (finite, same rows).
        seed: the split, the batch order and any sampling inside the model.
        config: :class:`HeldoutConfig` (default: its defaults).
        device: where to train (default CUDA when available).
    Returns:
        a :class:`SeedFit`; the estimator is left with the restored best parameters, trained on the
        standardised data (its ``standardizers`` attribute holds the maps for new data).
    """
    cfg = config or HeldoutConfig()
    device = resolve_device(device)
    n = x.shape[0]
    itr, iva, ite = split_indices(n, cfg.valid_fraction, cfg.test_fraction, seed)
    bs, notes = _batch_size(estimator, cfg, n, (itr.numel(), iva.numel(), ite.numel()))
    xs, ys = [x[i] for i in (itr, iva, ite)], [y[i] for i in (itr, iva, ite)]
    if cfg.standardize:
        maps = []
        for parts, name in ((xs, "x"), (ys, "y")):
            if parts[0].dim() == 2:
                s = Standardizer(parts[0], name)
                parts[:] = [s(p) for p in parts]
                maps.append(s)
                notes += [s.note] if s.note else []
            else:
                maps.append(None)
        estimator.standardizers = tuple(maps)
    estimator.to(device)
    xs = [p.to(device, estimator.dtype) for p in xs]
    ys = [p.to(device, estimator.dtype) for p in ys]
    monitor = _monitor_of(estimator, cfg)
    stopper = _EarlyStopping(estimator, xs[1], ys[1], bs, cfg, monitor, device)
    start = time.perf_counter()
    stopped, divergence = "max_steps", None
    try:
        hist = train(
            estimator,
            xs[0],
            ys[0],
            steps=cfg.max_steps,
            batch_size=bs,
            lr=cfg.lr,
            seed=seed,
            device=device,
            progress=progress,
            monitor=stopper,
            monitor_every=cfg.eval_every,
            desc=f"{type(estimator).__name__} seed {seed}",
        )
        steps = hist.steps
        if steps < cfg.max_steps:
            stopped = "patience"
    except TrainingDiverged as err:
        stopped, divergence, steps, hist = "diverged", str(err), err.step, err.history
    seconds = time.perf_counter() - start
    estimator.load_state_dict(stopper.best_state)
    value, stderr, bad = _evaluate(estimator, xs[2], ys[2], bs, "estimate")
    k = xs[2].shape[0]
    train_value, train_stderr, _ = _evaluate(estimator, xs[0][:k], ys[0][:k], bs, "estimate")
    estimator.batch_size = bs
    return SeedFit(
        seed=seed,
        value=value,
        stderr=stderr,
        train_value=train_value,
        train_stderr=train_stderr,
        valid_best=stopper.sign * stopper.best if stopper.best_step else math.nan,
        best_step=stopper.best_step,
        steps=steps,
        stopped=stopped,
        curve=stopper.curve,
        n_train=itr.numel(),
        n_valid=iva.numel(),
        n_test=ite.numel(),
        batch_size=bs,
        lr=cfg.lr or estimator.default_lr,
        monitor=monitor,
        seconds=seconds,
        divergence=divergence,
        nonfinite=bad,
        notes=notes,
        history_loss=hist.loss if hist is not None else [],
    )
