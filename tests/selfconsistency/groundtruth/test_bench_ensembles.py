"""``selfconsistency bench --ensemble``: compatible runs trained as one model, each written as its own run.

Tolerance. An ensemble computes each member's step with batched kernels and one fused Adam, which
round differently from a run alone (about 1e-7 relative per step in float32, see
``tests/micore/ensemble/test_ensemble.py``); training amplifies that. On the tiny bench here (2 levels x 30 steps,
separable critic, lr 5e-4) the largest difference measured in a per-step estimate is 5.3e-4 nats
(SMILE tau=5, seed 2: 1e-9 at step 4, growing about 2x every 4 steps) and 2e-6 for InfoNCE, so
float32 records must agree within ``ATOL = 2e-3``. In float64 the same runs agree to 2e-15, which
:func:`test_in_float64_the_ensemble_is_the_one_by_one_computation` checks at 1e-9 (also across tasks
in one ensemble, and for members that diverge): the float32 differences are rounding, not another
computation. A wrong seed, batch or initial weight changes the estimates by 1e-2 or more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selfconsistency.cli import main
from selfconsistency.execution.executors import InlineExecutor, ProcessExecutor, RayExecutor
from selfconsistency.execution.grouping import parallel_cap
from selfconsistency.execution.runner import Group, Run, RunsFailed, execute
from selfconsistency.groundtruth import BenchConfig, load_runs, run_benchmark
from selfconsistency.groundtruth.ensembles import group_runs
from selfconsistency.groundtruth.staircase import bench_runs

pytestmark = pytest.mark.usefixtures("one_thread")

ATOL = 2e-3  # float32 (module docstring)
TINY = ["cpc", "smile:5", "--critic", "separable", "--levels", "2", "4", "--steps-per-level", "30", "--seeds", "3"]
TINY += ["--device", "cpu", "--no-progress"]
# what a one-by-one run's record holds, apart from the timing (seconds, steps_per_second)
SAME = ("estimator", "seed", "config", "kind", "diverged_at", "device", "threads")


def records(out) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((Path(out) / "runs").glob("*.json"))}


def assert_same_runs(a: dict, b: dict, atol: float) -> None:
    assert set(a) == set(b) and a
    for name in a:
        assert {k: a[name][k] for k in SAME} == {k: b[name][k] for k in SAME}, name
        assert len(a[name]["estimates"]) == len(b[name]["estimates"]), name
        torch.testing.assert_close(
            torch.tensor(b[name]["estimates"], dtype=torch.float64),
            torch.tensor(a[name]["estimates"], dtype=torch.float64),
            atol=atol,
            rtol=0,
            msg=name,
        )


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    """The tiny bench one by one and as ensembles, through the command line."""
    root = tmp_path_factory.mktemp("bench")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for mode in ("off", "auto"):
            assert main(["bench", *TINY, "--ensemble", mode, "--out", str(root / mode)]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


def test_ensembles_write_the_one_by_one_records_up_to_rounding(benches, capsys):
    off, auto = records(benches / "off"), records(benches / "auto")
    assert len(off) == 6
    assert_same_runs(off, auto, ATOL)
    for rec in auto.values():  # each run trained in an ensemble of the 3 seeds of its estimator
        assert rec["ensemble_size"] == 3 and rec["ensemble_engine"] == "batched"
        assert rec["seconds"] == pytest.approx(rec["ensemble_seconds"] / 3)
        assert rec["steps_per_second"] == pytest.approx(60 / rec["seconds"])
    assert not any("ensemble_size" in rec for rec in off.values())  # one by one: the records of before
    # the reports read them as before: the same table (rows, columns), numbers within the tolerance
    assert all(len(load_runs(benches / mode)) == 6 for mode in ("off", "auto"))
    tables = [json.loads((benches / mode / "table.json").read_text()) for mode in ("off", "auto")]
    assert _shape(tables[0]) == _shape(tables[1])
    torch.testing.assert_close(_numbers(tables[1]), _numbers(tables[0]), atol=ATOL, rtol=0)


def test_a_rerun_trains_only_the_members_whose_records_are_missing(benches, capsys):
    out = benches / "auto"
    before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    gone = ["gaussian_separable_cpc_seed1.json", "gaussian_separable_smile_5_seed0.json"]
    gone.append("gaussian_separable_smile_5_seed2.json")
    for name in gone:
        (out / "runs" / name).unlink()
    capsys.readouterr()
    assert main(["bench", *TINY, "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert sum(line.startswith("[skip]") for line in log.splitlines()) == 3
    assert sum(line.startswith("[done]") for line in log.splitlines()) == 3
    after = records(out)
    for name, data in before.items():
        if name not in gone:
            assert (out / "runs" / name).read_bytes() == data, name  # untouched, byte for byte
    # cpc seed 1 was left alone (a group of one runs as one by one); smile:5 seeds 0, 2 as an ensemble of 2
    assert "ensemble_size" not in after["gaussian_separable_cpc_seed1.json"]
    assert [after[n]["ensemble_size"] for n in gone[1:]] == [2, 2]
    assert_same_runs(records(benches / "off"), after, ATOL)


def test_in_float64_the_ensemble_is_the_one_by_one_computation(tmp_path):
    # both tasks in one ensemble (the same protocol otherwise); NWJ at 20x the paper's lr, where seeds
    # 0, 1 and 3 diverge at different steps and seed 2 trains to the end: each member is recorded as
    # it is alone, diverged or not, and the others are unchanged
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        cfgs = [BenchConfig(task=t, critic="separable", levels=(2.0, 4.0), steps_per_level=20) for t in TASKS]
        steep = BenchConfig(task="gaussian", critic="separable", levels=(2.0, 4.0), steps_per_level=30, lr=0.01)
        quiet = dict(device="cpu", progress=False, log=lambda s: None)
        for mode in ("off", "auto"):
            run_benchmark(["cpc", "smile:5"], cfgs, seeds=range(3), out=tmp_path / mode, ensemble=mode, **quiet)
            run_benchmark(["nwj"], steep, seeds=range(4), out=tmp_path / f"nwj_{mode}", ensemble=mode, **quiet)
    finally:
        torch.set_default_dtype(dtype)
    off, auto = records(tmp_path / "off"), records(tmp_path / "auto")
    assert len(off) == 12 and {r["ensemble_size"] for r in auto.values()} == {6}  # gaussian + cubic, 3 seeds
    assert_same_runs(off, auto, 1e-9)
    off, auto = records(tmp_path / "nwj_off"), records(tmp_path / "nwj_auto")
    assert_same_runs(off, auto, 1e-9)
    diverged = {r["seed"]: r["diverged_at"] for r in auto.values()}
    assert diverged[2] is None and len(auto["gaussian_separable_nwj_seed2.json"]["estimates"]) == 60
    assert all(diverged[s] is not None for s in (0, 1, 3)) and len(set(diverged.values())) >= 3
    for rec in auto.values():
        if rec["diverged_at"] is not None:
            assert len(rec["estimates"]) == rec["diverged_at"]  # ends before the bad step, as alone


TASKS = ("gaussian", "cubic")


# ---------------------------------------------------------------- the runner's groups (planted functions)
def alone(i, progress=True):
    return {"i": i, "square": i * i, "together": 1}


def together(member_args, fail=False, progress=True):
    if fail:
        raise RuntimeError("planted group failure")
    return [{"i": i, "square": i * i, "together": len(member_args)} for (i,) in member_args]


def planted(n, max_members=None, fail=False, key="squares"):
    group = Group(key=key, fn=together, args=(fail,), max_members=max_members)
    return [Run(key=f"square {i}", relpath=f"runs/square_{i}.json", fn=alone, args=(i,), group=group) for i in range(n)]


def test_groups_split_by_max_members_and_a_unit_of_one_runs_alone(tmp_path):
    lines = []
    outcome = execute(planted(5, max_members=2), tmp_path, progress=False, log=lines.append)
    assert sorted(outcome.done) == [f"square {i}" for i in range(5)]
    assert [r["together"] for r in outcome.records.values()] == [2, 2, 2, 2, 1]  # units of 2, 2 and 1
    assert [r["square"] for r in records(tmp_path).values()] == [0, 1, 4, 9, 16]
    assert sum(line.startswith("[group]") for line in lines) == 2


def test_a_group_that_fails_records_each_member_failed_and_a_rerun_retries_them(tmp_path):
    with pytest.raises(RunsFailed, match="3 of 3 runs failed.*planted group failure") as info:
        execute(planted(3, fail=True), tmp_path, progress=False)
    assert set(info.value.outcome.failed) == {"square 0", "square 1", "square 2"}
    failure = json.loads((tmp_path / "failed" / "runs" / "square_1.json").read_text())
    assert "planted group failure (in squares (3 runs), trained together)" in failure["error"]
    outcome = execute(planted(3), tmp_path, progress=False)  # the same group, now working
    assert len(outcome.done) == 3 and not (tmp_path / "failed" / "runs" / "square_1.json").exists()


def test_a_group_is_one_unit_of_work_for_worker_processes(tmp_path):
    outcome = execute(planted(4), tmp_path, ProcessExecutor(2, threads=1), progress=False)
    assert [r["together"] for r in outcome.records.values()] == [4] * 4


def test_what_is_grouped_and_the_flags(tmp_path, capsys):
    cfg = BenchConfig(critic="separable", levels=(2.0,), steps_per_level=5)
    runs = bench_runs(["cpc", "smile:5", "smile:5.0", "nwj"], [cfg, BenchConfig(task="cubic", **_same(cfg))], (0, 1))
    grouped = group_runs(runs)
    groups = {r.group.key for r in grouped}
    assert groups == {"ensemble gaussian+cubic separable cpc", "ensemble gaussian+cubic separable smile:5"} | {
        "ensemble gaussian+cubic separable nwj"
    }
    assert group_runs(runs, ensemble="off") == runs
    one_seed = group_runs(bench_runs(["cpc", "nwj"], cfg, (0,)))
    assert all(r.group is None for r in one_seed)  # nothing to share a model with: alone, as before
    assert parallel_cap(15, ProcessExecutor(2, threads=1), "cpu") == 8
    assert parallel_cap(15, InlineExecutor(), "cpu") is None and parallel_cap(15, ProcessExecutor(2), "cuda") is None
    assert parallel_cap(15, RayExecutor(num_cpus=4, cpus_per_run=2), "cpu") == 8
    assert parallel_cap(15, RayExecutor(address="auto"), "cpu") is None  # a cluster: unknown, by memory
    with pytest.raises(ValueError, match="ensemble must be one of"):
        group_runs(runs, ensemble="on")
    assert exit_code(["bench", "cpc", "--max-members", "0", "--out", str(tmp_path)]) == 2
    assert "--max-members: must be an int >= 1" in capsys.readouterr().err
    assert exit_code(["bench", "--protocol", "finite", "--task", "x", "--ensemble", "off", "--out", str(tmp_path)]) == 2
    assert "the finite protocol" in capsys.readouterr().err


def _same(cfg: BenchConfig) -> dict:
    return dict(critic=cfg.critic, levels=cfg.levels, steps_per_level=cfg.steps_per_level)


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


def _shape(obj):
    """The table's structure: its keys and strings, every number replaced by its type."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shape(v) for v in obj]
    return "number" if isinstance(obj, float) else obj


def _numbers(obj) -> torch.Tensor:
    flat = []

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, float):
            flat.append(o)

    walk(obj)
    return torch.tensor(flat, dtype=torch.float64)


def test_precision_runs_are_stored_and_tabulated_apart(tmp_path, capsys):
    """``--precision bf16`` runs (ensembled, as the fp32 ones) get their own files, a config naming the
    precision and their own table; fp32 runs keep the config they always had (no ``precision`` key),
    so the tables made before the option stay one protocol with the paper's numbers beside them."""
    small = ["cpc", "--critic", "separable", "--levels", "2", "--steps-per-level", "20", "--seeds", "2"]
    small += ["--device", "cpu", "--no-progress", "--out", str(tmp_path)]
    assert main(["bench", *small]) == 0
    assert main(["bench", *small, "--precision", "bf16"]) == 0
    recs = records(tmp_path)
    assert sorted(recs) == [
        "gaussian_separable_cpc_seed0.json",
        "gaussian_separable_cpc_seed0_bf16.json",
        "gaussian_separable_cpc_seed1.json",
        "gaussian_separable_cpc_seed1_bf16.json",
    ]
    assert "precision" not in recs["gaussian_separable_cpc_seed0.json"]["config"]
    assert recs["gaussian_separable_cpc_seed0_bf16.json"]["config"]["precision"] == "bf16"
    assert recs["gaussian_separable_cpc_seed0_bf16.json"]["ensemble_size"] == 2
    a = recs["gaussian_separable_cpc_seed0.json"]["estimates"]
    b = recs["gaussian_separable_cpc_seed0_bf16.json"]["estimates"]
    assert a != b  # bf16 arithmetic, not a copy of the fp32 run
    table = (tmp_path / "table.md").read_text()
    assert table.count("### ") == 2 and "lr 0.0005, dim 20, bf16" in table


def test_tf32_off_cuda_and_precision_with_finite_are_refused(tmp_path, capsys):
    args = ["bench", "cpc", "--device", "cpu", "--out", str(tmp_path), "--no-progress", "--precision"]
    with pytest.raises(SystemExit) as err:
        main([*args, "tf32"])
    assert err.value.code == 2 and "precision='tf32' needs a CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main([*args, "bf16", "--protocol", "finite", "--task", "gaussian-2-2-0.5"])
    assert err.value.code == 2 and "--precision are for the staircase" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_runs_that_cannot_batch_stay_separate_units():
    """gm-flow's step cannot batch (FlowMI.ensemble_batches is False): its seeds stay separate units
    (which --jobs/--ray run side by side) instead of one ensemble unit that would loop over them."""
    cfgs = [BenchConfig(task=t, levels=(2.0,), steps_per_level=10) for t in ("gaussian", "cubic")]
    runs = group_runs(bench_runs(["gm-flow", "cpc"], cfgs, seeds=range(2), device="cpu"))
    flow = [r for r in runs if r.args[0].estimator == "gm-flow"]
    cpc = [r for r in runs if r.args[0].estimator == "cpc"]
    assert len(flow) == 4 and all(r.group is None for r in flow)
    assert len({r.group.key for r in cpc}) == 1 and all(r.group is not None for r in cpc)
