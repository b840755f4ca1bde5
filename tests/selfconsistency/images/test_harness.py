"""The harness tells good from bad, resumes without recomputing, and runs user estimators.

The planted estimators of ``selfconsistency_fixtures`` compute fixed formulas, so the verdicts they
must get are known exactly (see that module); their trainings take a fraction of a second.
"""

import json

import pytest
from selfconsistency_fixtures import FailAfter, blind, constant, pixel, reversed_pixel

from selfconsistency import Report, Tolerances, run
from selfconsistency.cli import main

FAST = dict(epochs=1, device="cpu", progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def verdicts(report, estimator=None):
    return {(v.setting, v.property): v for v in report.verdicts if estimator in (None, v.estimator)}


def test_a_consistent_estimator_passes_and_a_double_counting_one_fails_data_processing():
    report = run(pixel, settings=("masking", "rotation"), seeds=2, **FAST)
    v = verdicts(report)
    assert v[("baseline", "independence (t=0)")].passed
    rising = v[("baseline", "non-decreasing in t")]
    assert rising.passed and rising.value == 0.0 and rising.t is None  # no drop: 0, not minus the rise
    assert v[("baseline", "at most 1")].passed
    assert v[("additivity", "additivity ≈ 2")].passed and v[("rotation", "additivity ≈ 2")].passed
    # [Y_t, Y_{t-3}] counts the top rows twice: ratio 1 + (t-3)/t, far above 1 + 0.2
    dp = v[("data-processing", "data-processing ≈ 1")]
    assert not dp.passed and dp.value > 1.4 and dp.tolerance == 0.2
    assert not v[("rotation", "data-processing ≈ 1")].passed
    # each verdict carries its tolerance and the spread over the two seeds
    assert dp.seeds == 2 and dp.spread is not None
    assert not report.passed
    loose = report.with_tolerances(Tolerances(data_processing=1.0))
    assert verdicts(loose)[("data-processing", "data-processing ≈ 1")].passed
    assert "| PixelMI | data-processing | data-processing ≈ 1 | 1 |" in str(report)


def test_a_constant_estimator_fails_independence():
    v = verdicts(run(constant, settings=("baseline", "additivity"), rows=(0, 4, 8), **FAST))
    assert not v[("baseline", "independence (t=0)")].passed
    assert v[("baseline", "independence (t=0)")].value == pytest.approx(1.0)
    assert not v[("additivity", "additivity ≈ 2")].passed  # 1 / 1, not 2


def test_an_estimator_ignoring_y_fails_data_processing_and_additivity():
    report = run(blind, settings=("masking", "translation"), rows=(0, 4, 8), **FAST)
    for (setting, prop), v in verdicts(report).items():
        assert not v.passed, (setting, prop)
        assert v.value is None and "min_mi" in v.note  # Î ≈ 0: the ratios are undefined, said so
    assert {s for s, _ in verdicts(report)} == {"baseline", "data-processing", "additivity", "translation"}


def test_a_decreasing_estimator_fails_monotonicity():
    v = verdicts(run(reversed_pixel, settings=("baseline",), **FAST))
    assert not v[("baseline", "non-decreasing in t")].passed
    assert v[("baseline", "non-decreasing in t")].value > 1


def test_an_interrupted_run_resumes_without_recomputing_or_losing_cells(tmp_path):
    kw = dict(settings=("masking",), out=tmp_path, name="pixel", **FAST)
    interrupted = FailAfter(pixel, n=1 + 3)  # the probe build, then three cells, then "killed"
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, **kw)
    folder = tmp_path / "cells" / "digits" / "pixel"
    first = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert len(first) == 3 and not list(folder.glob(".*"))  # finished cells only, no partial file
    resumed = FailAfter(pixel, n=100)
    report = run(resumed, **kw)
    assert len(report.cells) == 12
    assert resumed.built == 1 + 12 - 3  # only the missing cells were trained
    after = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert len(after) == 12 and all(after[k] == v for k, v in first.items())
    again = FailAfter(pixel, n=1)  # everything finished: nothing but the probe is built
    assert str(run(again, **kw)) == str(report) and again.built == 1
    assert str(run(pixel, settings=("masking",), name="pixel", **FAST)) == str(report)  # as if never stopped
    with pytest.raises(ValueError, match="another configuration"):
        run(pixel, **{**kw, "epochs": 2})


def test_cli_runs_module_factories_and_draws_estimators_together(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["check", "selfconsistency_fixtures:pixel", "selfconsistency_fixtures:constant", "--out", str(out)]
    argv += "--epochs 1 --device cpu --no-progress --settings baseline additivity --rows 0 4 8 --seeds 2".split()
    argv += ["--tol-additivity", "0.25"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| selfconsistency_fixtures:pixel | baseline | independence (t=0) | 0 | 0.000 | 0 |" in text
    assert "| selfconsistency_fixtures:constant | baseline | independence (t=0) | 0 | 1.000 | 0 |" in text
    data = json.loads((out / "report_digits.json").read_text())
    assert data["tolerances"]["additivity"] == 0.25
    assert {c["estimator"] for c in data["cells"]} == {
        "selfconsistency_fixtures:pixel",
        "selfconsistency_fixtures:constant",
    }
    row = next(r for r in data["ratios"] if r["setting"] == "additivity" and r["t"] == 4 and r["seed"] == 1)
    assert set(row) >= {"setting", "t", "seed", "estimate", "ratio"} and row["ratio"] == pytest.approx(
        row["estimate"] / row["reference"]
    )
    md = (out / "verdicts_digits.md").read_text()
    assert "## Verdicts" in md and "additivity ≈ 2" in md
    for name in ("figure4_digits.png", "figure6_digits.png"):
        assert (out / name).stat().st_size > 1000
    assert not (out / "figure5_digits.png").exists()  # data processing was not run
    # re-running the same command trains nothing and reports the same
    assert main(argv) == 0
    rerun = capsys.readouterr().out
    assert "[done]" not in rerun and rerun.count("[skip]") == text.count("[done]")
    assert rerun[rerun.index("# Self-consistency") :] == text[text.index("# Self-consistency") :]
    assert len(Report.load(out).estimators) == 2


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown estimator"):
        run("no-such-estimator", **FAST)
    with pytest.raises(ValueError, match="seeds"):
        run(pixel, seeds=0, **FAST)
    with pytest.raises(ValueError, match="dataset must be one of"):
        run(pixel, dataset="imagenet", **FAST)
    with pytest.raises(ValueError, match="must return a micore.MIEstimator"):
        run(lambda xs, ys: object(), **FAST)
    with pytest.raises(ValueError, match="tolerance additivity"):
        Tolerances(additivity=-1)


def test_the_report_covers_the_settings_asked_for():
    report = run(pixel, settings=("additivity",), rows=(4, 8), **FAST)
    # the references Î(X; Y_t) are cells, but no baseline verdict was asked for
    assert {(v.setting, v.property) for v in report.verdicts} == {("additivity", "additivity ≈ 2")}
    assert {v.setting for v in Report(report.cells).verdicts} == {"baseline", "additivity"}
