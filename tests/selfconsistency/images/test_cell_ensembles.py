"""Cells of the image suite as ensembles (``selfconsistency check --ensemble auto``, issue 10).

Tolerance. A grouped cell's estimate must equal the one-by-one cell's up to float rounding: vmap's
batched convolutions and the fused Adam round differently from one cell's kernels (about 1e-7
relative per step in float32). Measured on 8x8 digits, SMILE(5), one epoch (20 steps), rows 0/4/8,
2 seeds: at most 2.0e-5 nats apart. Tolerance 1e-3: 50 times that, while a wrong seed, batch or
initial weight moves an estimate by 1e-2 or more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfconsistency.cli import main
from selfconsistency.execution import execute
from selfconsistency.images.ensembles import group_cells, train_cells
from selfconsistency.images.suite import plan

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-3
SETTINGS = ("baseline", "data-processing", "additivity")


@pytest.mark.slow
def test_grouped_cells_equal_one_by_one_cells():
    p = plan("smile:5", "digits", SETTINGS, rows=[0, 8], seeds=2, device="cpu", epochs=1)
    runs = group_cells(p.runs)
    groups = {r.group.key for r in runs if r.group is not None}
    # single images (rows) and pairs (rows-dp, rows-add) have different shapes: two ensembles
    assert len(groups) == 2 and all(r.group is not None for r in runs)
    alone = execute(p.runs, None, None, progress=False).records
    together = execute(runs, None, None, progress=False).records
    assert alone.keys() == together.keys()
    for key, a in alone.items():
        b = together[key]
        assert b.ensemble_size > 1 and a.ensemble_size is None and "ensemble_size" not in a.to_dict()
        same = ("measure", "t", "seed", "steps", "kind", "config", "n_test")
        assert {k: getattr(b, k) for k in same} == {k: getattr(a, k) for k in same}
        assert b.estimate == pytest.approx(a.estimate, abs=TOL), key


def test_estimators_that_cannot_batch_are_not_grouped():
    p = plan("gm-vae", "digits", ("baseline",), rows=[0, 8], seeds=1, device="cpu", epochs=1)
    assert all(r.group is None for r in group_cells(p.runs))


def test_train_cells_refuses_mixed_shapes_and_bad_caps():
    p = plan("cpc", "digits", SETTINGS, rows=[0, 8], seeds=1, device="cpu", epochs=1)
    single = next(r.args for r in p.runs if r.args[0].measure == "rows")
    pair = next(r.args for r in p.runs if r.args[0].measure.endswith(("-dp", "-add")))
    with pytest.raises(ValueError, match="differ in estimator, configuration, device or input shape"):
        train_cells([single, pair])
    with pytest.raises(ValueError, match="max_members must be an int >= 1, got 0"):
        group_cells(p.runs, max_members=0)


def test_check_cli_ensembles_on_request(tmp_path, capsys):
    base = ["check", "cpc", "--settings", "baseline", "--rows", "0", "8", "--epochs", "1", "--device", "cpu"]
    base += ["--no-progress", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as err:
        main([*base, "--max-members", "2"])  # the CPU's default is one by one
    assert err.value.code == 2 and "--max-members needs ensembles" in capsys.readouterr().err
    assert main([*base, "--ensemble", "auto"]) == 0
    cells = [json.loads(f.read_text()) for f in sorted(Path(tmp_path).rglob("*.json")) if "rows" in f.name]
    assert len(cells) == 2 and all(c["ensemble_size"] == 2 for c in cells)


def test_python_run_groups_on_request():
    from selfconsistency import run

    report = run("cpc", "digits", ("baseline",), rows=[0, 8], seeds=1, device="cpu", epochs=1, ensemble="auto")
    assert len(report.cells) == 2 and all(c.ensemble_size == 2 for c in report.cells)
    with pytest.raises(ValueError, match="ensemble must be 'auto', 'off' or None"):
        run("cpc", "digits", ("baseline",), ensemble="yes")
