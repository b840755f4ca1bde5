"""Published numbers to compare against: Song & Ermon (2020), Table 2 (joint critic).

The numbers are data, as printed in the paper: ``song_ermon_table2.csv`` beside this module, one row per
estimator, metric and task with the five MI levels' values.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["MI_LEVELS", "SONG_ERMON_TABLE2"]

MI_LEVELS = (2, 4, 6, 8, 10)
_TABLE = Path(__file__).with_name("song_ermon_table2.csv")


def _read(path: Path) -> dict:
    """``{estimator: {metric: {task: five values (MI 2, 4, 6, 8, 10)}}}``, estimators by our registry names."""
    out: dict = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = tuple(float(row[f"mi{m}"]) for m in MI_LEVELS)
            out.setdefault(row["estimator"], {}).setdefault(row["metric"], {})[row["task"]] = values
    return out


SONG_ERMON_TABLE2 = _read(_TABLE)
