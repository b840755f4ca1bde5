"""Real estimators through every setting on the offline digits, in small CPU configurations.

These check that the whole path (data, transforms, training, held-out estimates, ratios, verdicts,
files) works for trained estimators; the verdicts of the default configuration are measured by
``selfconsistency check`` (README), not asserted here, except for properties every trained
estimator must have whatever its quality (see each assertion).
"""

import math

import pytest
import torch
from torch import nn

import selfconsistency
from discmi import SMILE, ConvCritic, JointCritic
from selfconsistency.images.cells import DIGITS_CRITIC, builtin_factory

pytestmark = pytest.mark.usefixtures("one_thread")


class FlatCritic(nn.Module):
    """A joint MLP critic on the flattened images: a cheap critic for a quick end-to-end run."""

    def __init__(self, x_shape, y_shape):
        super().__init__()
        self.net = JointCritic(math.prod(x_shape), math.prod(y_shape), hidden=(64,))

    def forward(self, x, y):
        return self.net(x.flatten(1), y.flatten(1))

    def all_pairs(self, x, y):
        return self.net.all_pairs(x.flatten(1), y.flatten(1))


def small_smile(x_shape, y_shape):
    return SMILE(x_shape, y_shape, tau=5.0, critic=FlatCritic(x_shape, y_shape))


def test_a_discriminative_estimator_runs_every_setting(tmp_path):
    report = selfconsistency.run(
        small_smile,
        dataset="digits",
        settings=("all",),
        rows=(0, 4, 8),
        epochs=5,
        lr=2e-3,
        device="cpu",
        out=tmp_path,
        progress=False,
    )
    assert {v.setting for v in report.verdicts} == set(selfconsistency.SETTINGS)
    assert len(report.cells) == 3 + 2 + 2 + 9 and all(math.isfinite(c.estimate) for c in report.cells)
    est = {(c.measure, c.t): c.estimate for c in report.cells}
    # 100 steps are enough to see an image in itself (> 1 nat) and nothing in an all-zero Y
    assert est[("rows", 8)] > 1.0 and abs(est[("rows", 0)]) < 0.1 * est[("rows", 8)]
    v = {(v.setting, v.property): v for v in report.verdicts}
    assert v[("baseline", "independence (t=0)")].passed
    assert v[("baseline", "at most 1")].value == pytest.approx(1.0)  # t = H is I(X;X) / I(X;X)
    # two independent image pairs carry more dependence than one, for any estimator that learned
    assert all(1.0 < s.mean for s in report.summaries if s.setting == "additivity")
    for s in report.summaries:  # the ratios are formed from the cells of the same seed
        assert s.mean == pytest.approx(s.per_seed[0])
    paths = report.plot(tmp_path)
    assert [p.name for p in paths] == [
        "figure4_digits.png",
        "figure5_digits.png",
        "figure6_digits.png",
        "table3_digits.png",
    ]
    report.to_json(tmp_path / "report.json")


def test_builtin_names_get_the_papers_critic_layout_sized_for_digits():
    est = builtin_factory("smile:5", "digits")((1, 8, 8), (1, 8, 8))
    assert isinstance(est, SMILE) and est.tau == 5.0 and isinstance(est.critic, ConvCritic)
    assert est.critic.conv1.out_channels == DIGITS_CRITIC["channels"][0]
    paper = builtin_factory("cpc", "mnist")((1, 28, 28), (1, 28, 28))
    assert paper.critic.conv1.out_channels == 64 and paper.critic.head[1].out_features == 1024
    report = selfconsistency.run("smile:5", settings=("baseline",), rows=(0, 8), epochs=1, device="cpu", progress=False)
    assert [c.measure for c in report.cells] == ["rows", "rows"] and report.estimators == ["smile:5"]


def _genmi_built() -> bool:
    try:
        import genmi
    except ImportError:
        return False
    return hasattr(genmi, "ESTIMATORS")  # once genmi exists, a missing gm-vae fails the test below


@pytest.mark.skipif(
    not _genmi_built(), reason="genmi (gm-vae) is not on this branch yet: the generative end-to-end run needs it"
)
def test_a_generative_estimator_runs_every_setting(tmp_path):
    from genmi import VAEMI

    # the seed's VAE layout with narrower layers, so that 13 cells train in seconds
    def small_vae(x_shape, y_shape):
        return VAEMI(x_shape, y_shape, channels=(8, 16), hidden=64, decoder_hidden=64)

    report = selfconsistency.run(
        small_vae,
        dataset="digits",
        settings=("all",),
        rows=(0, 8),
        epochs=1,
        device="cpu",
        out=tmp_path,
        progress=False,
    )
    assert report.cells[0].config.family == "generative"
    assert report.cells[0].config.lr is None  # VAEMI's own default_lr
    assert {v.setting for v in report.verdicts} == set(selfconsistency.SETTINGS)
    assert len(report.cells) == 2 + 1 + 1 + 9
    assert all(math.isfinite(c.estimate) for c in report.cells)
    # the registry's gm-vae reaches the generative family by name too
    assert builtin_factory("gm-vae", "digits")((1, 8, 8), (1, 8, 8)).__class__ is VAEMI


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cells_run_on_cuda(tmp_path):
    report = selfconsistency.run(
        small_smile, settings=("baseline", "rotation"), rows=(0, 8), epochs=1, device="cuda", progress=False
    )
    assert all(c.device.startswith("cuda") for c in report.cells)
