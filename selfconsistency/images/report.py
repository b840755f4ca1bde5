"""The report of the self-consistency tests: what :mod:`.judge` found, as tables, JSON and figures.

:class:`Report` holds the finished cells of one dataset, has them judged (:mod:`.judge`), and renders
the result: the verdict table (``str(report)``), Markdown with the ratio tables, JSON, and through
:mod:`.figures` the PNGs of Figures 4–6 and Table 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..execution.storage import load_records, write_json_atomic, write_text_atomic
from . import judge
from .judge import RatioSummary, Tolerances, Verdict
from .records import CellRecord
from .settings import SETTINGS, expand_settings

__all__ = ["Tolerances", "Verdict", "RatioSummary", "Report"]


@dataclass(repr=False)
class Report:
    """The ratios and verdicts of every estimator found in ``cells`` (one dataset): :class:`~.records.CellRecord`
    (or their dicts).

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
        self.cells = [CellRecord.coerce(c) for c in self.cells]
        datasets = {c.dataset for c in self.cells}
        if len(datasets) > 1:
            raise ValueError(f"a report covers one dataset, got cells of {sorted(datasets)}")
        self.dataset = datasets.pop() if datasets else None
        self.settings = SETTINGS if self.settings is None else expand_settings(self.settings)
        self.summaries = judge.summarize(self.cells, self.settings, self.tolerances)
        self.verdicts = judge.judge(self.summaries, self.tolerances)

    # ------------------------------------------------------------------ judged
    @property
    def estimators(self) -> list[str]:
        return judge.estimators(self.cells)

    def curve(self, estimator: str, setting: str, prop: str) -> list[RatioSummary]:
        """The points of one curve, in increasing ``t``."""
        return judge.curve(self.summaries, estimator, setting, prop)

    @property
    def passed(self) -> bool:
        """Whether every verdict passed."""
        return all(v.passed for v in self.verdicts)

    def with_tolerances(self, tolerances: Tolerances) -> Report:
        """The same cells judged with other tolerances."""
        return Report(self.cells, tolerances, self.settings)

    # ------------------------------------------------------------------ output
    def verdict_table(self) -> str:
        lines = [
            (
                "| estimator | setting | property | ideal | measured | at t | spread (std over seeds) | tolerance "
                "| verdict |"
            ),
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for v in self.verdicts:
            measured = "undefined" if v.value is None else f"{v.value:.3f}"
            spread = "n/a (1 seed)" if v.seeds < 2 else ("—" if v.spread is None else f"{v.spread:.3f}")
            tol = f"±{v.tolerance:g}" if v.ideal not in ("≤ 1", "drop ≤ 0") else f"+{v.tolerance:g}"
            verdict = "pass" if v.passed else "**FAIL**"
            if v.note:
                verdict += f" ({v.note})"
            t = "—" if v.t is None else str(v.t)
            lines.append(
                f"| {v.estimator} | {v.setting} | {v.property} | {v.ideal} | {measured} | {t} | {spread} "
                f"| {tol} | {verdict} |"
            )
        return "\n".join(lines) + "\n"

    def ratio_tables(self) -> str:
        """Per estimator and curve, the ratio at every ``t`` (mean ± std over seeds)."""
        lines = []
        for setting, prop in dict.fromkeys((s.setting, s.property) for s in self.summaries):
            pts = [s for s in self.summaries if (s.setting, s.property) == (setting, prop)]
            ts = sorted({p.t for p in pts}, key=lambda t: -1 if t is None else t)
            what = prop if prop == setting else f"{prop}, {setting}"
            lines += [
                f"#### {what} (ideal: {'see verdicts' if pts[0].ideal is None else f'{pts[0].ideal:g}'})",
                "",
                "| estimator | " + " | ".join("ratio" if t is None else f"t={t}" for t in ts) + " |",
                "|---|" + "---|" * len(ts),
            ]
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
        return (
            f"Report(dataset={self.dataset!r}, estimators={self.estimators}, cells={len(self.cells)}, "
            f"verdicts={len(self.verdicts)}, failed={failed})"
        )

    def to_markdown(self) -> str:
        title = f"# Self-consistency tests on {self.dataset} (Song & Ermon 2020, Sec. 6.2)"
        tol = ", ".join(f"{k} {v:g}" for k, v in asdict(self.tolerances).items())
        return (
            f"{title}\n\n## Verdicts\n\n{self.verdict_table()}\nTolerances: {tol}.\n\n"
            f"## Ratios (mean ± std over seeds)\n\n{self.ratio_tables()}"
        )

    def ratio_records(self) -> list[dict]:
        """One row per (estimator, setting, property, t, seed): estimate, reference and ratio."""
        return judge.ratio_records(self.cells, self.settings, self.tolerances)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "tolerances": asdict(self.tolerances),
            "passed": self.passed,
            "verdicts": [asdict(v) for v in self.verdicts],
            "ratios": self.ratio_records(),
            "summary": [asdict(s) | {"per_seed": {str(k): v for k, v in s.per_seed.items()}} for s in self.summaries],
            "cells": [c.to_dict() for c in self.cells],
        }

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
    def load(
        cls,
        out,
        dataset: str | None = None,
        tolerances: Tolerances | None = None,
        estimators: Iterable[str] | None = None,
        settings=None,
    ) -> Report:
        """Every finished cell in ``out/cells/<dataset>/`` (all estimators, or those named); a bad file
        (truncated, emptied, foreign, incomplete) is skipped with a warning naming it."""
        root = Path(out) / "cells"
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if dataset is None:
            if len(found) != 1:
                raise ValueError(f"{root} holds cells of {found or 'no dataset'}; name the dataset")
            dataset = found[0]
        if dataset not in found:
            raise ValueError(f"no finished cells for dataset {dataset!r} in {root}")
        cells = _load_cells(root / dataset, dataset)
        if not cells:
            raise ValueError(f"no finished cells for dataset {dataset!r} in {root / dataset}")
        if estimators is not None:
            wanted = set(estimators)
            cells = [c for c in cells if c.estimator in wanted]
        return cls(cells, tolerances, settings)


def _load_cells(folder: Path, dataset: str) -> list[CellRecord]:
    def same_dataset(cell: CellRecord) -> str | None:
        return None if cell.dataset == dataset else f"a cell of dataset {cell.dataset!r} in the folder of {dataset!r}"

    return load_records(folder, "*/*.json", CellRecord, redo="the check command that made it", check=same_dataset)
