"""The task registry (micore.tasks.registry): names, suites, parameterised names, your own module:Attr,
and the errors for unknown names and impossible parameters."""

import doctest
import importlib
import math
import textwrap

import pytest
import torch

from micore.tasks import FAMILIES, SUITES, TASKS, CorrelatedGaussian, Task, make_task, task_names

pytestmark = pytest.mark.usefixtures("one_thread")

# the names of bmi's tasks that the issue lists, verbatim
BMI_NAMES = [
    "1v1-normal-0.75",
    "multinormal-dense-2-2-0.5",
    "multinormal-sparse-3-3-2-2.0",
    "student-identity-1-1-1",
    "asinh-student-identity-1-1-1",
    "half_cube-1v1-normal-0.75",
    "normal_cdf-1v1-normal-0.75",
    "wiggly-1v1-normal-0.75",
    "spiral-multinormal-sparse-3-3-2-2.0",
    "swissroll_x-normal_cdf-1v1-normal-0.75",
    "1v1-additive-0.1",
    "1v1-additive-0.75",
    "1v1-X-0.9",
    "1v1-AI",
]


def test_suites():
    assert len(task_names("beyond-normal")) == 40 == len(set(task_names("beyond-normal")))
    assert set(SUITES) == {"beyond-normal", "mixtures", "high-mi", "classic"}
    assert set(BMI_NAMES) <= set(task_names())
    assert list(TASKS) == task_names()
    assert all(make_task(n).mi > 9.9 for n in task_names("high-mi"))
    with pytest.raises(ValueError, match="beyond-normal"):
        task_names("bmi")


def test_every_name_round_trips():
    for name in task_names():
        task = TASKS[name]()
        assert task.name == name and make_task(task.name).name == name


def test_names_are_canonicalised():
    assert make_task("1v1-normal-.75").name == "1v1-normal-0.75"
    assert make_task("half-cube-1v1-normal-0.75").name == "half_cube-1v1-normal-0.75"  # the spelling
    assert make_task(" multinormal-sparse-3-3-2-2 ").name == "multinormal-sparse-3-3-2-2.0"
    assert make_task("student-identity-2-2-2.0").name == "student-identity-2-2-2"  # an integral df prints as int


def test_hand_values_through_names():
    assert make_task("1v1-normal-0.75").mi == pytest.approx(-0.5 * math.log(1 - 0.5625))
    assert make_task("1v1-additive-0.1").mi == pytest.approx(0.1 - math.log(0.2))
    assert make_task("1v1-additive-0.75").mi == pytest.approx(1 / 3)
    assert make_task("multinormal-sparse-3-3-2-2.0").mi == pytest.approx(-math.log(0.36))
    assert make_task("student-identity-1-1-1").mi == pytest.approx(0.22417, abs=1e-5)


def test_parameterised_names_and_prefixes():
    task = make_task("spiral-multinormal_sparse(dim_x=5, dim_y=5, n_interacting=2, mi=10.0)")
    assert task.mi == pytest.approx(10.0) and task.x_shape == (5,)
    assert make_task("multinormal(covariance=[[1.0, 0.5], [0.5, 1.0]], dim_x=1)").mi == pytest.approx(
        -0.5 * math.log(0.75)
    )
    assert make_task("gaussian(dim=3, rho=0.5, cubic=True)").name == "gaussian(dim=3,rho=0.5,cubic=True)"
    assert make_task("x_mixture(rho=0.5)").name == "1v1-X-0.5"
    fast = make_task("spiral(speed=0.5)-multinormal-sparse-3-3-2-2.0")
    assert fast.name == "spiral(speed=0.5)-multinormal-sparse-3-3-2-2.0" and fast.map_x.speed == 0.5
    assert make_task("spiral-multinormal-sparse-3-3-2-2.0").map_x.speed == pytest.approx(1 / 3)  # 1 / dim
    assert set(FAMILIES) >= {"multinormal", "student", "additive_uniform", "x_mixture", "galaxy"}


def test_classic_names_build_the_classic_tasks():
    task = make_task("cubic-20-4.0")
    assert isinstance(task, CorrelatedGaussian) and task.cubic and task.mi == 4.0 and task.dim == 20
    x, y = task.sample(10, seed=0)
    x_ref, y_ref = CorrelatedGaussian(dim=20, mi=4.0, cubic=True).sample(10, seed=0)
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert make_task("onehot-16").mi == pytest.approx(math.log(16))


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError) as err:
        make_task("1v1-normall-0.75")
    msg = str(err.value)
    assert "unknown task" in msg and "1v1-AI" in msg and "multinormal-sparse-25-25-2-2.0" in msg
    assert "Did you mean '1v1-normal-0.75'" in msg
    with pytest.raises(ValueError, match="unknown task 'wiggly-nothing'"):
        make_task("wiggly-nothing")
    with pytest.raises(ValueError, match="unknown task family 'nope'"):
        make_task("nope(a=1)")
    with pytest.raises(ValueError, match="literals"):
        make_task("multinormal_sparse(dim_x=5, dim_y=__import__('os'))")
    with pytest.raises(ValueError, match="unexpected keyword"):
        make_task("multinormal_sparse(dim_x=5, dim_y=5, bogus=1)")
    with pytest.raises(ValueError, match="non-empty string"):
        make_task("")


@pytest.mark.parametrize(
    "name, word",
    [
        ("1v1-normal-1.5", "rho"),
        ("1v1-normal--1.0", "rho"),
        ("1v1-additive-0", "epsilon"),
        ("student-identity-1-1-0", "df"),
        ("multinormal-dense-2-2--0.5", "off_diag"),
        ("multinormal-sparse-2-2-3-2.0", "n_interacting"),
        ("multinormal-sparse-2-2-2-0.0", "strength"),
        ("multinormal(covariance=[[1.0, 2.0], [2.0, 1.0]], dim_x=1)", "positive definite"),
        ("mult-sparse-w-inliers-5-5-2-2.0-1.5", "fraction"),
        ("spiral-1v1-normal-0.75", "spiral"),
        ("swissroll_x-multinormal-dense-2-2-0.5", "SwissRoll"),
        ("gaussian-0-2.0", "dim"),
    ],
)
def test_impossible_parameters_name_the_argument(name, word):
    with pytest.raises(ValueError, match=word) as err:
        make_task(name)
    assert name.strip() in str(err.value)  # and the task


def test_user_task_from_module(tmp_path, monkeypatch):
    (tmp_path / "mytasks_for_test.py").write_text(
        textwrap.dedent(
            """
            import torch
            from micore.tasks import Task, make_task

            class Shifted(Task):
                name, x_shape, y_shape, mi = "shifted", (1,), (1,), 0.0

                def _sample(self, n, generator, device):
                    z = torch.randn(n, 2, generator=generator, device=device, dtype=torch.float64)
                    return z[:, :1], z[:, 1:] + 1.0

            INSTANCE = Shifted()

            def factory():
                return make_task("1v1-normal-0.5")

            NOT_A_TASK = 3

            def returns_junk():
                return "junk"
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    assert make_task("mytasks_for_test:Shifted").name == "shifted"
    assert make_task("mytasks_for_test:INSTANCE").sample(4, seed=0)[1].shape == (4, 1)
    assert make_task("mytasks_for_test:factory").name == "1v1-normal-0.5"
    with pytest.raises(ValueError, match="not a task or factory"):
        make_task("mytasks_for_test:NOT_A_TASK")
    with pytest.raises(ValueError, match="returned a str"):
        make_task("mytasks_for_test:returns_junk")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        make_task("mytasks_for_test:missing")
    with pytest.raises(ValueError, match="was not found"):
        make_task("no_such_module_xyz:Task")


@pytest.mark.parametrize("module", ["base", "normal", "additive", "student", "transforms", "mixtures", "registry"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"micore.tasks.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and (result.attempted > 0 or module == "classic")


def test_package_docstring_example():
    import micore.tasks

    assert doctest.testmod(micore.tasks).failed == 0
    assert isinstance(make_task("1v1-AI"), Task)
