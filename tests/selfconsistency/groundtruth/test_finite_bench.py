"""``selfconsistency bench --protocol finite``: runs, resume, CSV, table, heatmap, and bad arguments."""

from __future__ import annotations

import csv
import json
import math

import pytest

from selfconsistency.cli import main
from selfconsistency.groundtruth.finite import FiniteConfig, finite_runs, run_finite
from selfconsistency.groundtruth.finite_tables import CSV_FIELDS, summarize_finite

TINY = ["--n", "1000", "--max-steps", "40", "--critic", "separable", "--no-progress"]


def _run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as err:
        code = err.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_finite_bench_writes_runs_csv_table_heatmap_and_resumes(tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["bench", "cpc", "smile:5", "--protocol", "finite", "--task", "1v1-normal-0.75", "1v1-additive-0.1",
            "--seeds", "2", "--out", out, *TINY]  # fmt: skip
    code, text = _run(capsys, *argv)
    assert code == 0, text
    runs = sorted((out / "finite").glob("*/*.json"))
    assert len(runs) == 2 * 2 * 2
    rows = list(csv.DictReader((out / "finite.csv").open()))
    assert len(rows) == 8 and tuple(rows[0]) == CSV_FIELDS
    for row in rows:
        value, truth = float(row["value"]), float(row["true_mi"])
        if value > 0:  # 40 steps: an estimate can still be negative, which has no log ratio (nan)
            assert float(row["log2_ratio"]) == pytest.approx(math.log2(value / truth))
        else:
            assert math.isnan(float(row["log2_ratio"]))
        assert row["n"] == "1000" and row["critic"] == "separable"
    truth = {r["task"]: float(r["true_mi"]) for r in rows}
    assert truth["1v1-normal-0.75"] == pytest.approx(-0.5 * math.log(1 - 0.75**2))  # the Gaussian closed form
    md = (out / "finite.md").read_text()
    assert "| 1v1-normal-0.75 | 0.41 |" in md and "| cpc | smile:5 |" in md
    assert (out / "finite_heatmap.png").stat().st_size > 1000
    summary = json.loads((out / "finite.json").read_text())
    assert len(next(iter(summary.values()))["cells"]) == 4
    # resume: the same command trains nothing and rewrites the same records
    before = {p: p.read_text() for p in runs}
    code, text = _run(capsys, *argv)
    assert code == 0 and text.count("[skip]") == 8, text
    assert {p: p.read_text() for p in runs} == before


def test_run_record_is_the_heldout_protocol():
    rec = run_finite("1v1-normal-0.75", "smile:5", FiniteConfig(n=1000, critic="separable", max_steps=30), seed=1)
    assert rec.n_train + rec.n_valid + rec.n_test == 1000
    assert rec.true_mi == pytest.approx(0.4133, abs=1e-4) and rec.steps <= 30
    again = run_finite("1v1-normal-0.75", "smile:5", FiniteConfig(n=1000, critic="separable", max_steps=30), seed=1)
    assert again.value == rec.value  # reproducible from the seed


def test_summary_means_sds_and_log2_ratios():
    cfg = {"n": 10, "critic": "joint", "max_steps": 1, "patience": 1, "eval_every": 1}
    run = {"task": "t", "true_mi": 2.0, "seconds": 1.0, "config": cfg, "steps": 1, "stopped": "max_steps"}
    recs = [{**run, "estimator": "cpc", "seed": s, "value": v} for s, v in enumerate([1.0, 3.0])]
    recs.append({**run, "estimator": "nwj", "seed": 0, "value": -0.5})
    (p,) = summarize_finite(recs).values()
    c = p["cells"][("t", "cpc")]
    assert (c["mean"], c["sd"], c["log2_ratio"]) == pytest.approx((2.0, math.sqrt(2), 0.0))
    assert math.isnan(p["cells"][("t", "nwj")]["log2_ratio"])  # no ratio for a negative estimate
    assert p["estimators"] == ["cpc", "nwj"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--protocol", "finite"], "needs --task"),
        (["--protocol", "finite", "--task", "no-such-task"], "no-such-task"),
        (["--protocol", "finite", "--suite", "nope"], "nope"),
        (["--task", "student-identity-2-2-1"], "--protocol finite"),
        (["--suite", "beyond-normal"], "--suite needs --protocol finite"),
        (["--protocol", "finite", "--task", "1v1-normal-0.75", "--n", "1"], "--n"),
    ],
)
def test_bad_bench_arguments_exit_2(argv, fragment, tmp_path, capsys):
    code, text = _run(capsys, "bench", *argv, "--out", tmp_path / "o")
    assert code == 2 and fragment in text, text
    assert not (tmp_path / "o" / "finite").exists()


def test_config_is_checked():
    with pytest.raises(ValueError, match="critic"):
        FiniteConfig(critic="conv")
    with pytest.raises(ValueError, match="patience"):
        FiniteConfig(patience=0)
    with pytest.raises(ValueError, match="unknown estimator"):
        finite_runs(["1v1-normal-0.75"], ["nope"], FiniteConfig())
