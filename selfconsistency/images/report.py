"""Ratios and verdicts of the self-consistency tests, from the finished cells of one or more estimators.

Each ratio is formed per seed (numerator and reference trained with the same seed) and summarised over
seeds by its mean and standard deviation; each verdict judges the seed mean against an ideal with a
tolerance from :class:`Tolerances`, and carries that tolerance and the spread over seeds.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .settings import SETTINGS, Ratio, expand_settings, plan_ratios
from ..storage import read_json, write_json_atomic, write_text_atomic

__all__ = ["Tolerances", "Verdict", "RatioSummary", "Report"]


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

    independence: float = 0.1
    monotonicity: float = 0.1
    upper: float = 0.1
    data_processing: float = 0.2
    additivity: float = 0.3
    min_mi: float = 0.05

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
    per_seed: dict            # seed -> ratio (None where undefined)
    notes: list               # why a seed's ratio is undefined
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
    return {(c["estimator"], c["measure"], c["t"], c["seed"]): c for c in cells}


def _ratio_value(num, den, min_mi) -> tuple[float | None, str]:
    if den is None:
        return None, "reference not run"
    for c, what in ((num, "cell"), (den, "reference")):
        if c.get("diverged") or c.get("estimate") is None:
            return None, f"{what} {c['measure']} t={c['t']} diverged"
    if den["estimate"] < min_mi:
        return None, f"reference Î({den['measure']}, t={den['t']}) = {den['estimate']:.3g} < min_mi"
    return num["estimate"] / den["estimate"], ""


def _mean_std(values):
    if not values or any(v is None for v in values):
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


@dataclass(repr=False)
class Report:
    """The ratios and verdicts of every estimator found in ``cells`` (one dataset).

    ``settings`` limits the report to those settings (names or aliases, see
    :func:`~selfconsistency.images.settings.expand_settings`); by default every setting the cells allow.

    ``str(report)`` is the verdict table (Markdown); :meth:`to_markdown` adds the ratio tables,
    :meth:`to_json` writes everything, :meth:`plot` draws Figures 4–6 and Table 3.
    """

    cells: list
    tolerances: Tolerances | None = None
    settings: tuple | None = None
    summaries: list = field(init=False)
    verdicts: list = field(init=False)

    def __post_init__(self):
        self.tolerances = self.tolerances or Tolerances()
        if not isinstance(self.tolerances, Tolerances):
            raise ValueError(f"tolerances must be a Tolerances, got {type(self.tolerances).__name__}")
        datasets = {c["dataset"] for c in self.cells}
        if len(datasets) > 1:
            raise ValueError(f"a report covers one dataset, got cells of {sorted(datasets)}")
        self.dataset = datasets.pop() if datasets else None
        self.settings = SETTINGS if self.settings is None else expand_settings(self.settings)
        self.summaries = self._summaries()
        self.verdicts = self._verdicts()

    # ------------------------------------------------------------------ ratios
    @property
    def estimators(self) -> list[str]:
        return list(dict.fromkeys(c["estimator"] for c in self.cells))

    def _plan(self, name) -> list[Ratio]:
        mine = [c for c in self.cells if c["estimator"] == name]
        cfg = mine[0]["config"]
        height = cfg["image_shape"][1]
        rows = {c["t"] for c in mine if c["t"] is not None} | {height}
        have = {(c["measure"], c["t"]) for c in mine}
        try:
            plan = plan_ratios(self.settings, sorted(rows), height, cfg["dp_offset"])
        except ValueError:  # these cells allow no ratio of the chosen settings
            return []
        return [r for r in plan if r.numerator in have]

    def _summaries(self) -> list[RatioSummary]:
        index, out = _index(self.cells), []
        for name in self.estimators:
            seeds = sorted({c["seed"] for c in self.cells if c["estimator"] == name})
            for r in self._plan(name):
                per_seed, notes = {}, []
                for s in seeds:
                    num = index.get((name, *r.numerator, s))
                    if num is None:
                        continue
                    value, note = _ratio_value(num, index.get((name, *r.denominator, s)), self.tolerances.min_mi)
                    per_seed[s] = value
                    if note:
                        notes.append(f"seed {s}: {note}")
                mean, std = _mean_std(list(per_seed.values()))
                out.append(RatioSummary(name, r.setting, r.property, r.t, r.ideal, per_seed, notes, mean, std))
        return out

    def curve(self, estimator: str, setting: str, prop: str) -> list[RatioSummary]:
        """The points of one curve, in increasing ``t``."""
        pts = [s for s in self.summaries if (s.estimator, s.setting, s.property) == (estimator, setting, prop)]
        return sorted(pts, key=lambda s: -1 if s.t is None else s.t)

    # ------------------------------------------------------------------ verdicts
    def _verdicts(self) -> list[Verdict]:
        out = []
        for name in self.estimators:
            for setting, prop in dict.fromkeys((s.setting, s.property) for s in self.summaries if s.estimator == name):
                out += self._judge(name, setting, prop)
        return out

    def _checks(self, prop: str, pts: list[RatioSummary]) -> list[tuple]:
        """``(property, ideal, tolerance, value, t, spread, passed)`` of one curve, all points defined."""
        tol = self.tolerances
        if prop != "baseline":
            ideal = pts[0].ideal
            tolerance = tol.data_processing if prop == "data-processing" else tol.additivity
            worst = max(pts, key=lambda p: abs(p.mean - ideal))
            return [(f"{prop} ≈ {ideal:g}", f"{ideal:g}", tolerance, worst.mean, worst.t, worst.std,
                     abs(worst.mean - ideal) <= tolerance)]
        checks = [("independence (t=0)", "0", tol.independence, p.mean, 0, p.std, abs(p.mean) <= tol.independence)
                  for p in pts if p.t == 0]
        if len(pts) > 1:
            drop, at = max(((a.mean - b.mean, b) for a, b in itertools.pairwise(pts)), key=lambda d: d[0])
            checks.append(("non-decreasing in t", "drop ≤ 0", tol.monotonicity, drop, at.t, None,
                           drop <= tol.monotonicity))
        top = max(pts, key=lambda p: p.mean)
        checks.append(("at most 1", "≤ 1", tol.upper, top.mean, top.t, top.std, top.mean <= 1 + tol.upper))
        return checks

    def _judge(self, name: str, setting: str, prop: str) -> list[Verdict]:
        pts = self.curve(name, setting, prop)
        seeds = max(len(p.per_seed) for p in pts)
        undefined = [p for p in pts if p.mean is None]
        if not undefined:
            return [Verdict(name, setting, *check[:6], seeds, check[6]) for check in self._checks(prop, pts)]
        # an undefined point fails every verdict of its curve, saying why
        causes = [n for p in undefined for n in (p.notes or ["a seed is missing"])]
        note = "undefined ratio: " + causes[0] + (f" (+{len(causes) - 1} more)" if len(causes) > 1 else "")
        placeholders = [RatioSummary(name, setting, prop, p.t, p.ideal, {}, [], 0.0, None) for p in pts]
        return [Verdict(name, setting, *check[:3], None, None, None, seeds, False, note)
                for check in self._checks(prop, placeholders)]

    @property
    def passed(self) -> bool:
        """Whether every verdict passed."""
        return all(v.passed for v in self.verdicts)

    def with_tolerances(self, tolerances: Tolerances) -> Report:
        """The same cells judged with other tolerances."""
        return Report(self.cells, tolerances, self.settings)

    # ------------------------------------------------------------------ output
    def verdict_table(self) -> str:
        lines = [("| estimator | setting | property | ideal | measured | at t | spread (std over seeds) | tolerance "
                  "| verdict |"), "|---|---|---|---|---|---|---|---|---|"]
        for v in self.verdicts:
            measured = "undefined" if v.value is None else f"{v.value:.3f}"
            spread = "n/a (1 seed)" if v.seeds < 2 else ("—" if v.spread is None else f"{v.spread:.3f}")
            tol = f"±{v.tolerance:g}" if v.ideal not in ("≤ 1", "drop ≤ 0") else f"+{v.tolerance:g}"
            verdict = "pass" if v.passed else "**FAIL**"
            if v.note:
                verdict += f" ({v.note})"
            t = "—" if v.t is None else str(v.t)
            lines.append(f"| {v.estimator} | {v.setting} | {v.property} | {v.ideal} | {measured} | {t} | {spread} "
                         f"| {tol} | {verdict} |")
        return "\n".join(lines) + "\n"

    def ratio_tables(self) -> str:
        """Per estimator and curve, the ratio at every ``t`` (mean ± std over seeds)."""
        lines = []
        for setting, prop in dict.fromkeys((s.setting, s.property) for s in self.summaries):
            pts = [s for s in self.summaries if (s.setting, s.property) == (setting, prop)]
            ts = sorted({p.t for p in pts}, key=lambda t: -1 if t is None else t)
            what = prop if prop == setting else f"{prop}, {setting}"
            lines += [f"#### {what} (ideal: {'see verdicts' if pts[0].ideal is None else f'{pts[0].ideal:g}'})", "",
                      "| estimator | " + " | ".join("ratio" if t is None else f"t={t}" for t in ts) + " |",
                      "|---|" + "---|" * len(ts)]
            for name in dict.fromkeys(p.estimator for p in pts):
                cells = []
                for t in ts:
                    p = next((p for p in pts if p.estimator == name and p.t == t), None)
                    if p is None:
                        cells.append("")
                    elif p.mean is None:
                        cells.append("undef.")
                    else:
                        cells.append(f"{p.mean:.2f}" + ("" if p.std is None else f" ± {p.std:.2f}"))
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.verdict_table()

    def __repr__(self) -> str:
        failed = sum(not v.passed for v in self.verdicts)
        return (f"Report(dataset={self.dataset!r}, estimators={self.estimators}, cells={len(self.cells)}, "
                f"verdicts={len(self.verdicts)}, failed={failed})")

    def to_markdown(self) -> str:
        title = f"# Self-consistency tests on {self.dataset} (Song & Ermon 2020, Sec. 6.2)"
        tol = ", ".join(f"{k} {v:g}" for k, v in asdict(self.tolerances).items())
        return (f"{title}\n\n## Verdicts\n\n{self.verdict_table()}\nTolerances: {tol}.\n\n"
                f"## Ratios (mean ± std over seeds)\n\n{self.ratio_tables()}")

    def ratio_records(self) -> list[dict]:
        """One row per (estimator, setting, property, t, seed): estimate, reference and ratio."""
        index, out = _index(self.cells), []
        for name in self.estimators:
            for r in self._plan(name):
                for s in sorted({c["seed"] for c in self.cells if c["estimator"] == name}):
                    num = index.get((name, *r.numerator, s))
                    if num is None:
                        continue
                    den = index.get((name, *r.denominator, s))
                    ratio, note = _ratio_value(num, den, self.tolerances.min_mi)
                    out.append({"estimator": name, "setting": r.setting, "property": r.property, "t": r.t,
                                "seed": s, "measure": r.numerator[0], "estimate": num.get("estimate"),
                                "reference_measure": list(r.denominator),
                                "reference": None if den is None else den.get("estimate"), "ratio": ratio,
                                "note": note})
        return out

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "tolerances": asdict(self.tolerances), "passed": self.passed,
                "verdicts": [asdict(v) for v in self.verdicts], "ratios": self.ratio_records(),
                "summary": [asdict(s) | {"per_seed": {str(k): v for k, v in s.per_seed.items()}}
                            for s in self.summaries],
                "cells": self.cells}

    def to_json(self, path) -> Path:
        """Writes every cell, ratio, summary and verdict to ``path`` (atomically)."""
        return write_json_atomic(path, self.to_dict())

    def save_markdown(self, path) -> Path:
        return write_text_atomic(path, self.to_markdown())

    def plot(self, directory) -> list[Path]:
        """PNGs in the layouts of Figures 4, 5, 6 and Table 3 in ``directory``; returns their paths."""
        from .figures import plot_report

        return plot_report(self, directory)

    @classmethod
    def load(cls, out, dataset: str | None = None, tolerances: Tolerances | None = None,
             estimators: Iterable[str] | None = None, settings=None) -> Report:
        """Every finished cell in ``out/cells/<dataset>/`` (all estimators, or those named)."""
        root = Path(out) / "cells"
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if dataset is None:
            if len(found) != 1:
                raise ValueError(f"{root} holds cells of {found or 'no dataset'}; name the dataset")
            dataset = found[0]
        if dataset not in found:
            raise ValueError(f"no finished cells for dataset {dataset!r} in {root}")
        cells = [read_json(p) for p in sorted((root / dataset).glob("*/*.json"))]
        if estimators is not None:
            wanted = set(estimators)
            cells = [c for c in cells if c["estimator"] in wanted]
        return cls(cells, tolerances, settings)
