"""Judging the self-consistency tests: ratios per seed, their summary over seeds, and verdicts.

Pure functions of the finished cells (:class:`~.records.CellRecord`, of :func:`~.cells.run_cell`); the
:class:`~selfconsistency.images.report.Report` renders what they judge and :mod:`.figures` draws it.

Each ratio is formed per seed (numerator and reference trained with the same seed) and summarised over
seeds by its mean and standard deviation; each verdict judges the seed mean against an ideal with a
tolerance from :class:`Tolerances`, and carries that tolerance and the spread over seeds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

from .settings import Ratio, plan_ratios

__all__ = [
    "Tolerances",
    "Verdict",
    "RatioSummary",
    "estimators",
    "ratios_of",
    "summarize",
    "curve",
    "judge",
    "ratio_records",
]


def _check_tol(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance {name} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Tolerances:
    """How far a seed-mean ratio may be from the ideal and still pass (ratios are unitless).

    Defaults, read off Song & Ermon's figures and Table 3:

    * ``independence = 0.1``: :math:`|\\hat I(X;Y_0)/\\hat I(X;X)| \\le 0.1` (Figure 4: the passing
      estimators sit within a few hundredths of 0, I_GM well above);
    * ``monotonicity = 0.1``: the baseline curve may drop by at most 0.1 between neighbouring ``t``
      (seed noise on small test sets), else it is not non-decreasing;
    * ``upper = 0.1``: the baseline ratio stays :math:`\\le 1.1`;
    * ``data_processing = 0.2``: :math:`|r - 1| \\le 0.2` (Table 3 separates 1.01–1.08 from 1.27–1.30;
      Figure 5's passing curves stay within about 0.1);
    * ``additivity = 0.3``: :math:`|r - 2| \\le 0.3` (Figure 6: I_GM near 2; discriminative
      estimators fall towards 1);
    * ``min_mi = 0.05`` nats: a reference :math:`\\hat I` below this makes the ratio undefined, and
      the verdict fails (an estimator that sees no dependence cannot be self-consistent).
    """

    independence: float = field(default=0.1, metadata={"help": "|ratio at t=0| allowed"})
    monotonicity: float = field(
        default=0.1, metadata={"help": "largest drop of the baseline curve between neighbouring t"}
    )
    upper: float = field(default=0.1, metadata={"help": "how far the baseline ratio may exceed 1"})
    data_processing: float = field(default=0.2, metadata={"help": "|ratio - 1| allowed"})
    additivity: float = field(default=0.3, metadata={"help": "|ratio - 2| allowed"})
    min_mi: float = field(
        default=0.05,
        metadata={"help": "nats: a reference estimate below this makes the ratio undefined (the verdict fails)"},
    )

    def __post_init__(self):
        for k, v in asdict(self).items():
            _check_tol(v, k)


@dataclass(frozen=True)
class RatioSummary:
    """One point of a figure for one estimator: the ratio per seed, its mean and std over seeds."""

    estimator: str
    setting: str
    property: str
    t: int | None
    ideal: float | None
    per_seed: dict  # seed -> ratio (None where undefined)
    notes: list  # why a seed's ratio is undefined
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class Verdict:
    """One property of one setting, judged on seed means.

    ``value`` is the judged statistic (the ratio at ``t``, the largest drop, or the maximum),
    ``spread`` the standard deviation over seeds at that point (``None`` with one seed).
    """

    estimator: str
    setting: str
    property: str
    ideal: str
    tolerance: float
    value: float | None
    t: int | None
    spread: float | None
    seeds: int
    passed: bool
    note: str = ""


def _index(cells):
    return {(c.estimator, c.measure, c.t, c.seed): c for c in cells}


def _ratio_value(num, den, min_mi) -> tuple[float | None, str]:
    if den is None:
        return None, "reference not run"
    for c, what in ((num, "cell"), (den, "reference")):
        if c.diverged or c.estimate is None:
            return None, f"{what} {c.measure} t={c.t} diverged"
    if den.estimate < min_mi:
        return None, f"reference Î({den.measure}, t={den.t}) = {den.estimate:.3g} < min_mi"
    return num.estimate / den.estimate, ""


def _mean_std(values):
    if not values or any(v is None for v in values):
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def estimators(cells) -> list[str]:
    """The estimators of ``cells``, in order of appearance."""
    return list(dict.fromkeys(c.estimator for c in cells))


def ratios_of(cells, name: str, settings) -> list[Ratio]:
    """The ratios of ``settings`` that ``name``'s cells provide a numerator for."""
    mine = [c for c in cells if c.estimator == name]
    cfg = mine[0].config
    rows = {c.t for c in mine if c.t is not None} | {cfg.height}
    have = {(c.measure, c.t) for c in mine}
    try:
        plan = plan_ratios(settings, sorted(rows), cfg.height, cfg.dp_offset)
    except ValueError:  # these cells allow no ratio of the chosen settings
        return []
    return [r for r in plan if r.numerator in have]


def summarize(cells, settings, tolerances: Tolerances) -> list[RatioSummary]:
    """Every ratio of every estimator: per seed, then mean and std over seeds."""
    index, out = _index(cells), []
    for name in estimators(cells):
        seeds = sorted({c.seed for c in cells if c.estimator == name})
        for r in ratios_of(cells, name, settings):
            per_seed, notes = {}, []
            for s in seeds:
                num = index.get((name, *r.numerator, s))
                if num is None:
                    continue
                value, note = _ratio_value(num, index.get((name, *r.denominator, s)), tolerances.min_mi)
                per_seed[s] = value
                if note:
                    notes.append(f"seed {s}: {note}")
            mean, std = _mean_std(list(per_seed.values()))
            out.append(RatioSummary(name, r.setting, r.property, r.t, r.ideal, per_seed, notes, mean, std))
    return out


def curve(summaries, estimator: str, setting: str, prop: str) -> list[RatioSummary]:
    """The points of one curve, in increasing ``t``."""
    pts = [s for s in summaries if (s.estimator, s.setting, s.property) == (estimator, setting, prop)]
    return sorted(pts, key=lambda s: -1 if s.t is None else s.t)


def _checks(prop: str, pts: list[RatioSummary], tol: Tolerances) -> list[tuple]:
    """``(property, ideal, tolerance, value, t, spread, passed)`` of one curve, all points defined."""
    if prop != "baseline":
        ideal = pts[0].ideal
        tolerance = tol.data_processing if prop == "data-processing" else tol.additivity
        worst = max(pts, key=lambda p: abs(p.mean - ideal))
        return [
            (
                f"{prop} ≈ {ideal:g}",
                f"{ideal:g}",
                tolerance,
                worst.mean,
                worst.t,
                worst.std,
                abs(worst.mean - ideal) <= tolerance,
            )
        ]
    checks = [
        ("independence (t=0)", "0", tol.independence, p.mean, 0, p.std, abs(p.mean) <= tol.independence)
        for p in pts
        if p.t == 0
    ]
    if len(pts) > 1:
        drop, at = max(((a.mean - b.mean, b) for a, b in itertools.pairwise(pts)), key=lambda d: d[0])
        # the largest drop between neighbouring t; a curve that only rises has none (0, not minus its rise)
        drop, t = (drop, at.t) if drop > 0 else (0.0, None)
        checks.append(("non-decreasing in t", "drop ≤ 0", tol.monotonicity, drop, t, None, drop <= tol.monotonicity))
    top = max(pts, key=lambda p: p.mean)
    checks.append(("at most 1", "≤ 1", tol.upper, top.mean, top.t, top.std, top.mean <= 1 + tol.upper))
    return checks


def _judge_curve(summaries, name: str, setting: str, prop: str, tol: Tolerances) -> list[Verdict]:
    pts = curve(summaries, name, setting, prop)
    seeds = max(len(p.per_seed) for p in pts)
    undefined = [p for p in pts if p.mean is None]
    if not undefined:
        return [Verdict(name, setting, *check[:6], seeds, check[6]) for check in _checks(prop, pts, tol)]
    # an undefined point fails every verdict of its curve, saying why
    causes = [n for p in undefined for n in (p.notes or ["a seed is missing"])]
    note = "undefined ratio: " + causes[0] + (f" (+{len(causes) - 1} more)" if len(causes) > 1 else "")
    placeholders = [RatioSummary(name, setting, prop, p.t, p.ideal, {}, [], 0.0, None) for p in pts]
    return [
        Verdict(name, setting, *check[:3], None, None, None, seeds, False, note)
        for check in _checks(prop, placeholders, tol)
    ]


def judge(summaries, tolerances: Tolerances) -> list[Verdict]:
    """The verdicts of every curve in ``summaries``: independence, monotonicity, at most 1 (baseline),
    data processing ≈ 1, additivity ≈ 2, each against its tolerance."""
    out = []
    for name in dict.fromkeys(s.estimator for s in summaries):
        for setting, prop in dict.fromkeys((s.setting, s.property) for s in summaries if s.estimator == name):
            out += _judge_curve(summaries, name, setting, prop, tolerances)
    return out


def ratio_records(cells, settings, tolerances: Tolerances) -> list[dict]:
    """One row per (estimator, setting, property, t, seed): estimate, reference and ratio."""
    index, out = _index(cells), []
    for name in estimators(cells):
        for r in ratios_of(cells, name, settings):
            for s in sorted({c.seed for c in cells if c.estimator == name}):
                num = index.get((name, *r.numerator, s))
                if num is None:
                    continue
                den = index.get((name, *r.denominator, s))
                ratio, note = _ratio_value(num, den, tolerances.min_mi)
                out.append(
                    {
                        "estimator": name,
                        "setting": r.setting,
                        "property": r.property,
                        "t": r.t,
                        "seed": s,
                        "measure": r.numerator[0],
                        "estimate": num.estimate,
                        "reference_measure": list(r.denominator),
                        "reference": None if den is None else den.estimate,
                        "ratio": ratio,
                        "note": note,
                    }
                )
    return out
