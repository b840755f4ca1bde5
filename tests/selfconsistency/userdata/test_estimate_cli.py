"""``selfconsistency estimate``: every bad input exits 2 naming the argument and writes nothing; a failing
estimator exits 1 after the others; a success writes JSON and Markdown."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfconsistency.cli import main

FAST = ["--max-steps", "60", "--seeds", "1", "--critic", "separable", "--no-progress"]


@pytest.fixture
def pairs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 2)).astype(np.float32)
    y = (x + 0.5 * rng.normal(size=(1000, 2))).astype(np.float32)
    path = tmp_path / "pairs.npz"
    np.savez(path, feat=x, target=y)
    return path, x, y


def _run(capsys, *argv) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as err:  # argparse and parser.exit
        code = err.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_success_writes_json_and_markdown(pairs, tmp_path, capsys):
    path, _, _ = pairs
    out = tmp_path / "res"
    code, text = _run(capsys, "estimate", str(path), "--x", "feat", "--y", "target", "--method", "smile:5", "cpc",
                      "--out", str(out), *FAST)  # fmt: skip
    assert code == 0, text
    rec = json.loads((out / "estimate.json").read_text())
    assert [r["name"] for r in rec["results"]] == ["smile:5", "cpc"]
    assert rec["data"]["source"].startswith(str(path)) or "pairs.npz" in rec["data"]["source"]
    assert len(rec["results"][0]["seeds"]) == 1 and rec["n"] == 1000
    assert "| smile:5 |" in (out / "estimate.md").read_text()


def _bad_files(tmp_path):
    """(argv, message fragment) for every bad input of the issue."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 2)).astype(np.float32)
    cases = []
    np.savez(tmp_path / "rows.npz", x=x, y=x[:999])
    cases.append((["rows.npz"], "1000"))
    xn = x.copy()
    xn[17, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=xn, y=x)
    cases.append((["nan.npz"], "row 17"))
    np.savez(tmp_path / "few.npz", x=x[:300], y=x[:300])
    cases.append(
        (
            ["few.npz", "--batch-size", "128"],
            "fewer than two batches of 128; give at least ~1280 rows or a smaller --batch-size",
        )
    )  # noqa: E501
    np.savez(tmp_path / "tiny.npz", x=x[:60], y=x[:60])
    cases.append((["tiny.npz"], "60 rows are too few"))
    (tmp_path / "cells.csv").write_text("a,b,c\n1,2,3\n4,oops,6\n" + "".join(f"{i},{i},{i}\n" for i in range(900)))
    cases.append((["cells.csv", "--x", "0", "--y", "1:3"], "row 3, column 2"))
    torch.save({"x": torch.zeros(3), "y": [1, 2]}, tmp_path / "notensor.pt")
    cases.append((["notensor.pt"], "y"))
    np.savez(tmp_path / "keys.npz", x=x, y=x)
    cases.append((["keys.npz", "--x", "nope"], "'x', 'y'"))
    cases.append((["missing.npz"], "missing.npz"))
    cases.append((["keys.npz", "--method", "smile:5", "nope"], "unknown estimator 'nope'"))
    return cases


def test_every_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    (out / "estimate.json").write_text('{"previous": true}')
    for argv, fragment in _bad_files(tmp_path):
        argv = [str(tmp_path / argv[0]), *argv[1:]]
        code, text = _run(capsys, "estimate", *argv, "--out", str(out), *FAST)
        assert code == 2, (argv, text)
        assert fragment in text, (argv, text)
        assert "error:" in text and "Traceback" not in text
        assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["estimate.json"], argv  # .lock: the lock
        assert json.loads((out / "estimate.json").read_text()) == {"previous": True}


def test_friction_runs_with_notes_instead_of_refusing(tmp_path, capsys):
    """A constant column is left out and a 150-row table runs on a smaller batch: each with a note, exit 0."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 3)).astype(np.float32)
    x[:, 1] = 3.0  # constant on every row
    y = x[:, :1] + 0.5 * rng.normal(size=(150, 1)).astype(np.float32)
    np.savez(tmp_path / "small.npz", x=x, y=y)
    code, text = _run(capsys, "estimate", str(tmp_path / "small.npz"), "--out", str(tmp_path / "o"), *FAST)
    assert code == 0, text
    assert "note: x: column(s) 1 are constant on all 150 rows and were left out" in text
    assert "note: batch 64 needs ~640 rows; with 150 the batch is 15" in text
    data = json.loads((tmp_path / "o" / "estimate.json").read_text())
    assert data["results"][0]["notes"] and data["results"][0]["seeds"][0]["batch_size"] == 15
    assert data["data"]["notes"][-1] == "x: column(s) 1 are constant on all 150 rows and were left out"


def test_a_second_command_on_one_out_is_refused(tmp_path, capsys, pairs):
    from selfconsistency.execution import OutputLock

    path, _, _ = pairs
    with OutputLock(tmp_path / "o"):  # another command is writing there
        code, text = _run(capsys, "estimate", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2 and "is in use by another selfconsistency command" in text
    assert not (tmp_path / "o" / "estimate.json").exists()


def test_inputs_that_require_grad_are_taken_as_data():
    from selfconsistency import estimate_mi

    x = torch.randn(1000, 2, requires_grad=True)
    res = estimate_mi(x, x.detach() + torch.randn(1000, 2), "cpc", critic="separable", seeds=1, max_steps=50,
                      progress=False)  # fmt: skip
    assert res.n == 1000 and x.grad is None


def test_drop_nonfinite_flag(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 1)).astype(np.float32)
    x[5] = np.inf
    np.savez(tmp_path / "d.npz", x=x, y=rng.normal(size=(1000, 1)))
    code, text = _run(capsys, "estimate", str(tmp_path / "d.npz"), "--drop-nonfinite", "--out", str(tmp_path / "o"),
                      *FAST)  # fmt: skip
    assert code == 0, text
    data = json.loads((tmp_path / "o" / "estimate.json").read_text())["data"]
    assert data["rows_dropped"] == 1 and data["dropped_rows"] == [5]


def test_a_failing_estimator_exits_1_after_the_others(pairs, tmp_path, capsys, monkeypatch):
    path, _, _ = pairs
    (tmp_path / "broken_est.py").write_text("def make(x_shape, y_shape):\n    raise RuntimeError('planted failure')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "res"
    code, text = _run(capsys, "estimate", str(path), "--x", "feat", "--y", "target", "--method", "smile:5",
                      "broken_est:make", "--out", str(out), *FAST)  # fmt: skip
    assert code == 1, text
    assert "planted failure" in text and "1 estimator(s) failed: broken_est:make" in text
    rec = json.loads((out / "estimate.json").read_text())
    assert [r["name"] for r in rec["results"]] == ["smile:5"]
    assert rec["failures"][0]["name"] == "broken_est:make"
