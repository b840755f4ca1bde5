"""The MI of a finite dataset: :func:`estimate_heldout` over several seeds, with an interval and flags.

Each seed runs :func:`~micore.finite.heldout.fit_heldout` (its own split, initialisation and batch order); the
result is the mean of the seeds' held-out values, a Student-t interval over them, the per-seed records, and
the :mod:`~micore.finite.diagnostics` flags that say when the number should not be trusted.

Names such as ``"smile:5"`` are resolved one floor up (:func:`selfconsistency.estimate_mi`, which calls
this); here the estimator is a factory ``(x_shape, y_shape) -> MIEstimator`` or a module to copy.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from ..device import resolve_device
from ..estimator import MIEstimator
from ..validation import PairData, check_pair_data, drop_constant_columns, shared_columns
from .diagnostics import Flag, diagnose
from .heldout import HeldoutConfig, SeedFit, fit_heldout

__all__ = ["estimate_heldout", "MIResult", "t_interval", "DEFAULT_SEEDS"]

DEFAULT_SEEDS = 3


@dataclass
class MIResult:
    """An MI estimate of a dataset: the value, its interval, the seeds behind it, and the flags.

    Attributes:
        name: the estimator (a registered name or its class name).
        kind: ``"lower bound"``, ``"upper bound"`` or ``"estimate"``.
        value: the mean over seeds of the held-out (test-part) values, in nats.
        low, high: the ``confidence`` interval over seeds (Student t with ``seeds - 1`` degrees of freedom;
            with one seed, normal over that seed's test batches). It covers the variation of the training and
            of the split, not the estimator's bias: a lower bound's interval lies below the truth when the bound
            is loose.
        seeds: the per-seed :class:`~micore.finite.heldout.SeedFit` records.
        flags: the :class:`~micore.finite.diagnostics.Flag` list (empty when nothing looks wrong).
        notes: what the protocol changed about the data or itself and why (columns left out, a smaller batch).
        n: rows used; seconds: wall time of all seeds.
    """

    name: str
    kind: str
    value: float
    low: float
    high: float
    confidence: float
    n: int
    seconds: float
    seeds: list[SeedFit]
    flags: list[Flag] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def reliable(self) -> bool:
        """No flag fired: every check the protocol makes passed."""
        return not self.flags

    @property
    def verdict(self) -> str:
        """``"reliable"``, or ``"unreliable: "`` and the flags' names."""
        return "reliable" if self.reliable else "unreliable: " + ", ".join(f.name for f in self.flags)

    @property
    def values(self) -> list[float]:
        return [s.value for s in self.seeds]

    @property
    def steps(self) -> list[int]:
        return [s.steps for s in self.seeds]

    def covers(self, mi: float) -> bool:
        return self.low <= mi <= self.high

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("seeds", "flags")}
        d["seeds"] = [s.to_dict() for s in self.seeds]
        d["flags"] = [f.to_dict() for f in self.flags]
        d["values"] = self.values
        return d

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        below = " (an MI is >= 0: the lower end is below what is possible)" if self.low < 0 else ""
        head = (
            f"{self.name} [{self.verdict.upper()}]: {self.value:.3f} nats [{self.low:.3f}, {self.high:.3f}]{below} "
            f"({pct}% over {len(self.seeds)} seed(s); {self.kind}; n={self.n}; steps {self.steps}; "
            f"{self.seconds:.0f} s)"
        )
        return "\n".join([head, *(f"  ! {f}" for f in self.flags), *(f"  note: {n}" for n in self.notes)])


def t_interval(values: Sequence[float], stderr: float, confidence: float) -> tuple[float, float]:
    """The two-sided ``confidence`` interval of the mean of ``values`` (Student t over them; with one
    value, normal with ``stderr``)."""
    from scipy.stats import t as student_t

    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = statistics.fmean(finite)
    if len(finite) == 1:
        half = statistics.NormalDist().inv_cdf((1 + confidence) / 2) * stderr if math.isfinite(stderr) else math.nan
    else:
        sd = statistics.stdev(finite)
        half = float(student_t.ppf((1 + confidence) / 2, len(finite) - 1)) * sd / math.sqrt(len(finite))
    return mean - half, mean + half


def _seed_estimator(estimator, x_shape, y_shape, seed: int) -> MIEstimator:
    """A freshly initialised estimator for ``seed``: the factory's, or a re-initialised copy of a module."""
    torch.manual_seed(seed)
    if isinstance(estimator, MIEstimator):
        est = copy.deepcopy(estimator)
        for m in est.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    else:
        est = estimator(x_shape, y_shape)
        if not isinstance(est, MIEstimator):
            raise ValueError(f"estimator: the factory returned {type(est).__name__}, not a micore.MIEstimator")
    if tuple(est.x_shape) != tuple(x_shape) or tuple(est.y_shape) != tuple(y_shape):
        raise ValueError(
            f"estimator: built for x {list(est.x_shape)} and y {list(est.y_shape)}, but the data have "
            f"x {list(x_shape)} and y {list(y_shape)}"
        )
    return est


def estimate_heldout(
    x,
    y=None,
    estimator: Callable | MIEstimator | None = None,
    *,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    config: HeldoutConfig | None = None,
    confidence: float = 0.95,
    upper: float | None = None,
    name: str | None = None,
    device=None,
    progress: bool = True,
) -> MIResult:
    """The MI of paired samples ``x``, ``y`` by the finite-sample protocol, over several seeds.

    Args:
        x: ``[n, *x_shape]`` tensor or array; y: ``[n, *y_shape]`` (checked by
            :func:`~micore.validation.check_pair_data`: same rows, finite); or ``x`` the
            :class:`~micore.validation.PairData` that check returned, and ``y`` omitted (not checked again).
        estimator: a factory ``(x_shape, y_shape) -> MIEstimator`` (called once per seed, after seeding torch),
            or an :class:`MIEstimator` (copied per seed, its layers re-initialised with ``reset_parameters``).
        seeds: how many seeds (``0, 1, ...``) or which.
        config: the protocol (:class:`~micore.finite.HeldoutConfig`: split, early stopping, step cap).
        confidence: of the interval over seeds.
        upper: a known upper bound on the MI (nats), for the ``above_upper`` flag.
        name: how the result names the estimator (default its class name).
        device: default CUDA when available, else CPU.

    >>> from micore.tasks import make_task
    >>> from discmi import SMILE
    >>> task = make_task("multinormal-dense-2-2-0.5")
    >>> x, y = task.sample(5000, seed=0)
    >>> res = estimate_heldout(x, y, lambda xs, ys: SMILE(xs, ys, critic="separable"), progress=False)
    >>> res.low < task.mi < res.high  # doctest: +SKIP
    True
    """
    if isinstance(x, PairData) and y is None:
        x, y = x.x, x.y
    else:
        x, y, _ = check_pair_data(x, y)
    x, y, notes = drop_constant_columns(x, y)  # columns that never vary carry nothing: left out, said so
    cfg = config or HeldoutConfig()
    if not isinstance(cfg, HeldoutConfig):
        raise ValueError(f"config must be a micore.finite.HeldoutConfig, got {type(cfg).__name__}")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple, range)):
        raise ValueError(f"seeds must be a count or a list of ints, got {seeds!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed_list):
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of ints, got {seeds!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")
    if upper is not None and (isinstance(upper, bool) or not isinstance(upper, (int, float))):
        raise ValueError(f"upper must be a number (nats) or None, got {upper!r}")
    if not (callable(estimator) or isinstance(estimator, MIEstimator)):
        raise ValueError(
            f"estimator must be a factory (x_shape, y_shape) -> MIEstimator or an MIEstimator, got "
            f"{type(estimator).__name__}"
        )
    device = resolve_device(device)
    x_shape, y_shape = tuple(x.shape[1:]), tuple(y.shape[1:])
    start = time.perf_counter()
    fits, est = [], None
    for seed in seed_list:
        est = _seed_estimator(estimator, x_shape, y_shape, seed)
        fits.append(fit_heldout(est, x, y, seed=seed, config=cfg, device=device, progress=progress))
    values = [f.value for f in fits]
    finite = [v for v in values if math.isfinite(v)]
    value = statistics.fmean(finite) if finite else math.nan
    low, high = t_interval(values, fits[0].stderr, confidence)
    stderr = (statistics.stdev(finite) / math.sqrt(len(finite))) if len(finite) > 1 else fits[0].stderr
    cap = est.value_range(fits[0].batch_size)[1]
    shared = shared_columns(x, y) if x.shape[1:] == y.shape[1:] or (x.dim() == 2 and y.dim() == 2) else []
    flags = diagnose(
        fits, kind=est.kind, value=value, stderr=stderr, cap=cap, patience=cfg.patience, upper=upper, shared=shared
    )
    notes += list(dict.fromkeys(n for f in fits for n in f.notes))
    return MIResult(
        name=name or type(est).__name__,
        kind=est.kind,
        value=value,
        low=low,
        high=high,
        confidence=confidence,
        n=x.shape[0],
        seconds=time.perf_counter() - start,
        seeds=fits,
        flags=flags,
        config=asdict(cfg),
        notes=notes,
    )
