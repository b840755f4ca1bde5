"""When not to trust an MI estimate: named flags computed from the seeds of the finite-sample protocol.

Each check is a pure function of the per-seed fits (:class:`~micore.finite.heldout.SeedFit`) and returns a
:class:`Flag` (a name and one sentence saying what to do) or ``None``. :func:`diagnose` runs them all.

========================  ===================================================================================
flag                      fires when
========================  ===================================================================================
``capped``                the value is within :data:`CAP_FRACTION` of the largest value the estimator can
                          give on its evaluation batch (InfoNCE's :math:`\\log n`): the bound, not the data,
                          sets the number
``still_rising``          a seed stopped at the step cap while its held-out value had risen by more than
                          :data:`RISE_SIGMAS` standard errors over its last ``patience`` evaluations
``overfitting``           the value on training rows exceeds the held-out value by more than
                          :data:`OVERFIT_SIGMAS` standard errors and :data:`OVERFIT_NATS` nats plus
                          :data:`OVERFIT_FRACTION` of the value
``seeds_disagree``        the seeds' values differ beyond their own standard errors (Cochran's Q test at
                          level :data:`DISAGREE_LEVEL`)
``above_upper``           a lower bound exceeds a given upper bound by more than two standard errors
``nonfinite``             a seed diverged, or evaluation batches were not finite
``impossible``            the value is below 0 by more than two standard errors: no MI is negative, so the
                          number says something about the estimator (its bias, its training), not the data
``infinite``              a column of ``y`` equals a column of ``x`` row for row (or ``y`` is ``x``): the MI is
                          infinite, and the number is the estimator's ceiling
========================  ===================================================================================

An estimate without any flag is *reliable* (:attr:`~micore.finite.MIResult.reliable`); the printout says so
first, or lists why not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..estimate import LOWER_BOUND
from .heldout import SeedFit

__all__ = ["Flag", "diagnose", "CAP_FRACTION", "FLAGS"]

# InfoNCE gives 0.84 log n at a true MI of log n on the seed's Gaussian (Table 2: 3.47 of 4.16 at MI 4) and
# creeps towards log n only as the true MI grows past it: above 90% of the cap the number says more about
# the batch size than about the data.
CAP_FRACTION = 0.9
RISE_SIGMAS = 2.0  # a rise this many held-out standard errors over the last `patience` evaluations is real
# a gap must be real (3 standard errors) and matter (0.05 nats plus a tenth of the value): every trained model
# is somewhat better on its own training rows, and a few hundredths of a nat on 5,000 rows is the norm
OVERFIT_SIGMAS, OVERFIT_NATS, OVERFIT_FRACTION = 3.0, 0.05, 0.1
DISAGREE_LEVEL = 0.01  # Cochran's Q above its chi-square(k-1) 99% quantile
FLAGS = (
    "capped",
    "still_rising",
    "overfitting",
    "seeds_disagree",
    "above_upper",
    "nonfinite",
    "impossible",
    "infinite",
)


@dataclass(frozen=True)
class Flag:
    """A reason not to trust the number: ``name`` (one of :data:`FLAGS`) and a sentence for the reader."""

    name: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.name}] {self.message}"


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def capped(value: float, cap: float, batch_size: int) -> Flag | None:
    """``value`` within :data:`CAP_FRACTION` of ``cap``, the estimator's largest value on a batch."""
    if not (math.isfinite(cap) and math.isfinite(value) and cap > 0) or value < CAP_FRACTION * cap:
        return None
    return Flag(
        "capped",
        f"the value {value:.3f} is {100 * value / cap:.0f}% of {cap:.3f} nats, the most this estimator can give "
        f"on a batch of {batch_size} (log {batch_size} for InfoNCE): the true MI may be far higher; raise the "
        f"batch size or use an estimator without the cap (smile:5, mine, gm-flow)",
    )


def _slope_t(values: list[float]) -> float:
    """The t statistic of the least-squares slope of ``values`` against their index (0 when undefined)."""
    k = len(values)
    if k < 3:
        return 0.0
    xm, ym = (k - 1) / 2, sum(values) / k
    sxx = sum((i - xm) ** 2 for i in range(k))
    slope = sum((i - xm) * (v - ym) for i, v in enumerate(values)) / sxx
    resid = sum((v - ym - slope * (i - xm)) ** 2 for i, v in enumerate(values)) / (k - 2)
    if resid <= 0:
        return math.inf if slope > 0 else 0.0
    return slope / math.sqrt(resid / sxx)


def still_rising(fits: Sequence[SeedFit], patience: int) -> Flag | None:
    """A seed that reached ``max_steps`` with its held-out curve still climbing.

    Climbing: over its last ``patience + 1`` evaluations (the window early stopping looks at; at most the
    later half of the curve) the held-out value (minus the loss, when the loss is monitored) has a
    least-squares slope :data:`RISE_SIGMAS` standard errors above zero. A flat, noisy curve at the cap does
    not fire.
    """
    rising = []
    for f in fits:
        if f.stopped != "max_steps":
            continue
        sign = -1.0 if f.monitor == "loss" else 1.0
        # the window early stopping looks at, but at most the later half of the curve: the climb out of the
        # initialisation is not "still rising"
        window = min(patience + 1, max(3, len(f.curve) // 2))
        tail = _finite(sign * v for _, v in f.curve[-window:])
        if _slope_t(tail) > RISE_SIGMAS:
            rising.append(f.seed)
    if not rising:
        return None
    return Flag(
        "still_rising",
        f"seed(s) {rising} stopped at the step cap ({max(f.steps for f in fits)}) with the held-out estimate still "
        f"rising: train longer (max_steps) or with a larger learning rate",
    )


def overfitting(fits: Sequence[SeedFit]) -> Flag | None:
    """The training-rows value well above the held-out one."""
    over = []
    for f in fits:
        if not (math.isfinite(f.train_value) and math.isfinite(f.value)):
            continue
        gap = f.train_value - f.value
        se = math.sqrt(sum(s**2 for s in (f.stderr, f.train_stderr) if math.isfinite(s)))
        if gap > OVERFIT_NATS + OVERFIT_FRACTION * abs(f.value) and gap > OVERFIT_SIGMAS * se:
            over.append((f.seed, gap))
    if not over:
        return None
    worst = max(g for _, g in over)
    return Flag(
        "overfitting",
        f"on training rows the estimate is up to {worst:.3f} nats above the held-out value (seed(s) "
        f"{[s for s, _ in over]}): the critic memorises the sample; more data, a smaller critic or earlier "
        f"stopping (smaller patience) help, and the held-out value is the one to report",
    )


def _chi2_quantile(p: float, k: int) -> float:
    """The ``p`` quantile of chi-square with ``k`` degrees of freedom (Wilson-Hilferty; within 1% for k >= 2)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(p)
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def seeds_disagree(fits: Sequence[SeedFit]) -> Flag | None:
    """Cochran's Q over the seeds' values and standard errors above its chi-square quantile."""
    pts = [(f.value, f.stderr) for f in fits if math.isfinite(f.value) and math.isfinite(f.stderr) and f.stderr > 0]
    if len(pts) < 2:
        return None
    w = [1 / s**2 for _, s in pts]
    mean = sum(wi * v for wi, (v, _) in zip(w, pts, strict=True)) / sum(w)
    q = sum(wi * (v - mean) ** 2 for wi, (v, _) in zip(w, pts, strict=True))
    limit = _chi2_quantile(1 - DISAGREE_LEVEL, len(pts) - 1)
    if q <= limit:
        return None
    vals = ", ".join(f"{v:.3f}" for v, _ in pts)
    return Flag(
        "seeds_disagree",
        f"the seeds give {vals} nats, further apart than their own standard errors allow (Q = {q:.1f} > "
        f"{limit:.1f}): the training, not the sample, dominates the uncertainty; run more seeds and read the "
        f"interval, not one seed",
    )


def above_upper(kind: str, value: float, stderr: float, upper: float | None) -> Flag | None:
    """A lower bound above a known upper bound by more than two standard errors."""
    if upper is None or kind != LOWER_BOUND or not math.isfinite(value):
        return None
    se = stderr if math.isfinite(stderr) else 0.0
    if value <= upper + 2 * se:
        return None
    return Flag(
        "above_upper",
        f"this lower bound ({value:.3f} nats) is above the upper bound {upper:.3f}: one of the two is wrong "
        f"(a bug in the critic's use, data leaking between the parts, or an upper bound of another quantity)",
    )


def nonfinite(fits: Sequence[SeedFit]) -> Flag | None:
    """Diverged seeds and non-finite evaluation batches."""
    diverged = [f.seed for f in fits if f.stopped == "diverged"]
    batches = sum(f.nonfinite for f in fits)
    if not diverged and not batches:
        return None
    parts = []
    if diverged:
        parts.append(f"seed(s) {diverged} diverged (their value is from the best checkpoint before it)")
    if batches:
        parts.append(f"{batches} evaluation batch(es) gave a non-finite value and were left out")
    return Flag("nonfinite", "; ".join(parts) + ": lower the learning rate or use a bounded estimator (smile:5, js)")


def impossible(value: float, stderr: float) -> Flag | None:
    """A value below 0 by more than two standard errors (a value near 0 of independent data is not flagged)."""
    se = stderr if math.isfinite(stderr) else 0.0
    if not math.isfinite(value) or value >= -2 * se:
        return None
    return Flag(
        "impossible",
        f"the value {value:.3f} nats is below 0, which no MI can be: the estimator's bias or its training, not the "
        f"data, set it; do not report it as the MI (an estimator with a smaller bias, or more data, may help)",
    )


def infinite(shared: Sequence[tuple[int, int]]) -> Flag | None:
    """Columns of ``x`` and ``y`` equal row for row (:func:`micore.validation.shared_columns`)."""
    if not shared:
        return None
    pairs = ", ".join(f"x[{i}] = y[{j}]" for i, j in shared[:5]) + (" ..." if len(shared) > 5 else "")
    return Flag(
        "infinite",
        f"{pairs} row for row: y determines part of x exactly, so the MI is infinite and this number is the "
        f"estimator's ceiling, not the MI; remove the shared column(s) if they are there by mistake",
    )


def diagnose(
    fits: Sequence[SeedFit],
    *,
    kind: str,
    value: float,
    stderr: float,
    cap: float,
    patience: int,
    upper=None,
    shared: Sequence[tuple[int, int]] = (),
) -> list[Flag]:
    """Every flag that fires, in the order of :data:`FLAGS` (``shared``: the columns ``x`` and ``y`` share)."""
    batch = fits[0].batch_size if fits else 0
    found = (
        capped(value, cap, batch),
        still_rising(fits, patience),
        overfitting(fits),
        seeds_disagree(fits),
        above_upper(kind, value, stderr, upper),
        nonfinite(fits),
        impossible(value, stderr),
        infinite(shared),
    )
    return [f for f in found if f is not None]
