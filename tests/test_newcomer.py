"""What a new user met in their first hour (issue 13, classes 2 and 6): each failed before its fix.

Bring your own estimator from the working directory, hooks that say what to implement, and the
smaller traps (an MI level no float can represent, garbage MNIST files, an encoder fed the wrong x).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from genmi import sandwich
from micore import MIEstimator
from micore.tasks import CorrelatedGaussian
from selfconsistency.images.data import DatasetMissing, load_mnist

USER_MODULE = """
import torch
from torch import nn
from micore import MIEstimator


class Linear(MIEstimator):
    # the smallest estimator there is: a bilinear critic trained with the NWJ objective
    def __init__(self, x_dim, y_dim):
        super().__init__(x_dim, y_dim)
        self.w = nn.Parameter(torch.zeros(x_dim[0]))

    def _log_ratio(self, x, y):
        return (x * y) @ self.w

    def _loss(self, x, y):
        joint = self._log_ratio(x, y).mean()
        marginal = self._log_ratio(x, y.roll(1, 0)).exp().mean()
        return -(joint - marginal + 1.0)


def make(x_shape, y_shape):
    return Linear(x_shape, y_shape)


def not_an_estimator(x_shape, y_shape):
    return nn.Linear(x_shape[0], 1)


class LossOnly(MIEstimator):
    # a loss and nothing to estimate with: no _log_ratio, no _batch_estimate
    def __init__(self, x_dim, y_dim):
        super().__init__(x_dim, y_dim)
        self.scale = nn.Parameter(torch.ones(()))

    def _loss(self, x, y):
        return self.scale.square().sub(2).abs()


def vectors_only(x_shape, y_shape):
    if len(x_shape) != 1:
        raise RuntimeError("this estimator takes flat vectors")
    return Linear(x_shape, y_shape)
"""


def _console_script() -> str:
    path = shutil.which("selfconsistency")
    if path is None:
        pytest.fail("the console script 'selfconsistency' is not on PATH: pip install -e . installs it")
    return path


def _bench(tmp_path, name):
    (tmp_path / "mymodule.py").write_text(USER_MODULE)
    argv = [_console_script(), "bench", name, "--levels", "2", "--steps-per-level", "5", "--device", "cpu"]
    argv += ["--no-progress", "--out", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


def test_the_console_script_finds_a_factory_in_the_working_directory(tmp_path):
    # a console script does not put the working directory on sys.path; the registry does, for the import
    proc = _bench(tmp_path, "mymodule:make")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "runs" / "gaussian_joint_mymodule_make_seed0.json").exists()
    assert "mymodule:make" in proc.stdout


def test_the_readme_hooks_alone_fill_the_benchmark_table(tmp_path):
    # Linear implements _log_ratio and _loss only: the per-step value falls back to its batch estimate
    proc = _bench(tmp_path, "mymodule:make")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in (tmp_path / "out" / "table.md").read_text().splitlines() if "| mymodule:make |" in line)
    assert "—" not in row and re.search(r"\| \d+\.\d\d \|", row), row
    record = json.loads((tmp_path / "out" / "runs" / "gaussian_joint_mymodule_make_seed0.json").read_text())
    assert len(record["estimates"]) == 5 and all(v is not None for v in record["estimates"])


def test_an_estimator_with_no_batch_estimate_fails_naming_the_hook(tmp_path):
    proc = _bench(tmp_path, "mymodule:LossOnly")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "mymodule:LossOnly gave no estimate on any training batch" in proc.stderr
    assert "_training_step" in proc.stderr and "_batch_estimate" in proc.stderr


def test_a_factory_that_fails_in_check_is_one_line_and_the_others_still_run(tmp_path):
    (tmp_path / "mymodule.py").write_text(USER_MODULE)
    argv = [_console_script(), "check", "mymodule:vectors_only", "smile:5", "--settings", "baseline"]
    argv += ["--rows", "0", "8", "--epochs", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "out")]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, proc.stderr
    assert "estimator 'mymodule:vectors_only' could not be built for x_shape=(1, 8, 8), y_shape=(1, 8, 8)" in error[0]
    assert "RuntimeError: this estimator takes flat vectors" in error[0]
    assert "| smile:5 | baseline | independence (t=0) |" in proc.stdout  # the other estimator ran


def test_a_factory_that_returns_no_estimator_is_named_not_an_attribute_error(tmp_path):
    proc = _bench(tmp_path, "mymodule:not_an_estimator")
    assert proc.returncode != 0
    assert "must return a micore.MIEstimator" in proc.stderr and "got Linear" in proc.stderr
    assert "AttributeError" not in proc.stderr and "Traceback" not in proc.stderr


def test_overriding_the_public_methods_instead_of_the_hooks_says_what_to_implement():
    with pytest.raises(TypeError, match=r"overrides loss\(\).*implement _loss\(x, y\) instead"):

        class PublicLoss(MIEstimator):  # noqa: F841 - defining it is the test
            def loss(self, x, y):
                return torch.zeros(())

    with pytest.raises(TypeError, match=r"overrides log_ratio\(\).*implement _log_ratio"):

        class PublicLogRatio(MIEstimator):  # noqa: F841
            def log_ratio(self, x, y):
                return torch.zeros(len(x))

    class NoLogRatio(MIEstimator):
        def _loss(self, x, y):
            return torch.zeros(())

    with pytest.raises(NotImplementedError, match=r"NoLogRatio must implement the hook _log_ratio\(x, y\)"):
        NoLogRatio(2, 2).estimate(torch.zeros(8, 2), torch.zeros(8, 2))


def test_an_mi_level_no_float_can_represent_is_a_clear_error():
    # 1 - rho^2 = exp(-2 * 400 / 20) = exp(-40) rounds rho to 1 in float64 (it used to be "math domain error")
    with pytest.raises(ValueError, match=r"mi=400 nats over dim=20.*rounds rho to 1"):
        CorrelatedGaussian(dim=20, mi=400)
    # just below that, the MI is kept exactly rather than recomputed from a rounded rho
    assert CorrelatedGaussian(dim=20, mi=300).mi == 300.0


def test_garbage_mnist_files_are_named_not_an_assertion_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DatasetMissing, match="not valid idx-ubyte files"):
        load_mnist(tmp_path)


def test_the_encoder_refuses_x_of_another_width():
    task = CorrelatedGaussian(dim=20, mi=4.0)
    # x of width 5 used to broadcast into a 5-d task's conditional and return that task's bounds
    with pytest.raises(ValueError, match=r"x must be \[n, 20\]"):
        sandwich(task.encoder, torch.randn(1280, 5))


def test_the_readme_subclass_example_runs():
    # the README's "your own estimator" block, as written there
    readme = os.path.dirname(__file__) + "/../README.md"
    text = open(readme).read()
    start = text.index("```python\n# your own estimator")
    code = text[start + len("```python\n") : text.index("```", start + 10)]
    scope: dict = {"__name__": "__main__"}  # as `python mymodule.py` runs it
    exec(textwrap.dedent(code), scope)  # noqa: S102 - the README's own example
    assert scope["estimate"].kind == "lower bound" and abs(scope["estimate"].value - 1.0) < 0.3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_fit_on_a_cuda_device_without_a_gpu_names_the_device():
    # the Python API, not only the CLI: a ValueError naming device, not torch's lazy-init traceback
    from discmi import NWJ

    with pytest.raises(ValueError, match=r"device: 'cuda' asks for CUDA, but torch sees no GPU"):
        NWJ(2, 2).fit(CorrelatedGaussian(dim=2, mi=1.0), steps=2, device="cuda", progress=False)
