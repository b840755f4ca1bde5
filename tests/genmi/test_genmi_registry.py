"""The generative estimators by name, and a tiny run of the benchmark with one of them."""

import math

import pytest
import torch

from genmi import ESTIMATORS, VAEMI, BarberAgakov, FlowMI, standard_normal_entropy
from selfconsistency.groundtruth import BenchConfig, run_benchmark, summarize
from selfconsistency.registry import known_names, make_factory


def test_names_are_known_to_the_benchmark_registry():
    assert {"gm-flow", "gm-vae", "ba", "loo"} <= set(known_names())
    assert set(ESTIMATORS) == {"gm-flow", "gm-vae", "ba", "loo"}
    assert {s.family for s in ESTIMATORS.values()} == {"generative"}


def test_factories_build_the_right_estimators():
    assert isinstance(make_factory("gm-flow")((20,), (20,)), FlowMI)
    vae = make_factory("gm-vae:16", domain="images")((1, 8, 8), (1, 8, 8))
    assert isinstance(vae, VAEMI) and vae.k == 16
    assert make_factory("gm-vae")((4,), (4,)).k == 1
    ba = make_factory("ba")((20,), (20,))
    assert isinstance(ba, BarberAgakov) and ba.entropy_x == pytest.approx(standard_normal_entropy(20))
    assert ba.entropy_x == pytest.approx(10 * math.log(2 * math.pi * math.e))
    assert make_factory("ba:12.5", domain="images")((1, 8, 8), (1, 8, 8)).entropy_x == 12.5


def test_names_that_cannot_work_say_why():
    with pytest.raises(ValueError, match="known encoder"):
        make_factory("loo")
    with pytest.raises(ValueError, match="needs h\\(X\\)"):
        make_factory("ba")((1, 8, 8), (1, 8, 8))  # image shapes under the vectors domain: refused on build
    with pytest.raises(ValueError, match="'ba' needs its parameter on images"):
        make_factory("ba", domain="images")
    with pytest.raises(ValueError, match="importance samples"):
        make_factory("gm-vae:many")
    with pytest.raises(ValueError, match="K must be"):
        make_factory("gm-vae:0")
    with pytest.raises(ValueError, match="takes no parameter"):
        make_factory("gm-flow:3")
    with pytest.raises(ValueError, match="h\\(X\\) in nats"):
        make_factory("ba:high")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_benchmark_runs_gm_flow_and_writes_its_record(tmp_path, one_thread):
    cfg = BenchConfig(levels=(2.0, 4.0), steps_per_level=10)
    (rec,) = run_benchmark(["gm-flow"], cfg, out=tmp_path, progress=False, log=lambda s: None)
    assert rec.kind == "estimate" and rec.diverged_at is None and len(rec.estimates) == 20
    assert (tmp_path / "runs" / "gaussian_joint_gm-flow_seed0.json").exists()
    (summary,) = summarize([rec])
    assert [lv.mi for lv in summary.levels] == [2.0, 4.0]
