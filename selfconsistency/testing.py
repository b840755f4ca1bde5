"""The short-training protocols the tests check and the benchmarks derive their tolerances from (test configuration).

Both sides import them from here, so a test and the script that measured its tolerance run the
same configuration (``benchmarks/training_tolerances.py``, ``benchmarks/genmi_test_tolerances.py``).

* Discriminative (tests/micore/training/test_training.py): every name of ``examples("discriminative")`` on the 5-d
  Gaussian at MI = 2 with a narrower joint critic than the seed's (64-64 instead of 256-256) and
  lr 2e-3, so that every estimator converges within a few hundred steps on a CPU; the estimate is
  taken on held-out samples with batch 64, as in training. Also ReMINE on its one-hot set.
* Barber-Agakov (tests/genmi/test_barber_agakov.py): lower and upper bound after a short training.
* Flows (tests/genmi/test_flows.py): a shortened staircase for ``FlowMI``.

>>> value = evaluate("smile:5", seed=0)                  # held-out estimate, about 1.9 (MI = 2)
"""

from __future__ import annotations

import torch

from discmi.critics import JointCritic
from genmi import BarberAgakov, BarberAgakovUpper, FlowMI, standard_normal_entropy
from micore import Estimate
from micore.tasks import CorrelatedGaussian, OneHot

from .registry import examples, make_factory

__all__ = [
    "MI",
    "DIM",
    "STEPS",
    "LR",
    "HIDDEN",
    "NAMES",
    "evaluate",
    "ONEHOT_CLASSES",
    "ONEHOT_HIDDEN",
    "ONEHOT_STEPS",
    "ONEHOT_LR",
    "ONEHOT_BATCH",
    "evaluate_onehot",
    "TASK",
    "BA_STEPS",
    "train_lower",
    "train_upper",
    "SHORT_LEVELS",
    "SHORT_STEPS",
    "SHORT_BATCH",
    "SHORT_LR",
    "short_staircase",
]

MI, DIM, STEPS, LR, HIDDEN = 2.0, 5, 500, 2e-3, (64, 64)

# Every discriminative configuration the registry names for testing: a newly registered estimator
# joins the short-training test (and needs a tolerance there).
NAMES = tuple(examples(family="discriminative"))


def evaluate(name: str, seed: int) -> float:
    """The held-out estimate of ``name`` (a registry name) after the short training with ``seed``."""
    task = CorrelatedGaussian(dim=DIM, mi=MI)
    torch.manual_seed(seed)
    est = make_factory(name, critic=JointCritic(DIM, DIM, hidden=HIDDEN))((DIM,), (DIM,))
    est.fit(task, steps=STEPS, lr=LR, seed=seed, progress=False, device="cpu")
    x, y = task.sample(4096, seed=10_000 + seed)  # held out: never seen in training
    return est.estimate(x, y).value


# ReMINE on its one-hot set (N = 16, I = log 16): a one-hidden-layer critic, batch 100 as in the
# paper, lr 5e-3 and 300 steps so it runs in a few seconds.
ONEHOT_CLASSES, ONEHOT_HIDDEN, ONEHOT_STEPS, ONEHOT_LR, ONEHOT_BATCH = 16, (64,), 300, 5e-3, 100


def evaluate_onehot(seed: int) -> float:
    """ReMINE's held-out estimate on the one-hot set (truth log 16) after its short training."""
    task = OneHot(ONEHOT_CLASSES)
    torch.manual_seed(seed)
    critic = JointCritic(ONEHOT_CLASSES, ONEHOT_CLASSES, hidden=ONEHOT_HIDDEN)
    est = make_factory("remine", critic=critic)((ONEHOT_CLASSES,), (ONEHOT_CLASSES,))
    est.fit(task, steps=ONEHOT_STEPS, batch_size=ONEHOT_BATCH, lr=ONEHOT_LR, seed=seed, progress=False, device="cpu")
    x, y = task.sample(4000, seed=10_000 + seed)
    return est.estimate(x, y, batch_size=ONEHOT_BATCH).value


# Barber-Agakov on the 5-d Gaussian at MI = 2, 400 steps at the estimators' defaults.
TASK = CorrelatedGaussian(dim=5, mi=2.0)
BA_STEPS = 400


def train_lower(seed: int) -> Estimate:
    """The Barber-Agakov lower bound (known h(X)) after BA_STEPS steps, on held-out samples."""
    torch.manual_seed(seed)
    est = BarberAgakov(5, 5, entropy_x=standard_normal_entropy(5))
    est.fit(TASK, steps=BA_STEPS, seed=seed, progress=False)
    return est.estimate(*TASK.sample(4096, seed=1000 + seed), batch_size=256)


def train_upper(seed: int) -> Estimate:
    """The variational upper bound (known encoder) after BA_STEPS steps, on held-out samples."""
    torch.manual_seed(seed)
    est = BarberAgakovUpper(5, 5, encoder=TASK.encoder)
    est.fit(TASK, steps=BA_STEPS, seed=seed, progress=False)
    return est.estimate(*TASK.sample(4096, seed=2000 + seed), batch_size=256)


# The CI version of the flow staircase: MI 2 then 10, SHORT_STEPS steps each (batch 64, lr 1e-3 so that a
# few hundred steps get somewhere), the held-out estimate taken at the end of each level. It catches a flow
# that cannot represent the dependence (parity-only masks: estimate ~0), a wrong log-determinant or a
# wrong sign in the ratio, not biases of a few tenths: that is benchmarks/flow_staircase.py's job.
SHORT_LEVELS = (2.0, 10.0)
SHORT_STEPS = 200
SHORT_BATCH, SHORT_LR = 64, 1e-3


def short_staircase(seed: int) -> list[tuple[float, float, float]]:
    """Trains FlowMI(20, 20) level after level; returns (MI, held-out estimate, its stderr) per level."""
    torch.manual_seed(seed)
    est = FlowMI(20, 20)
    out = []
    for i, mi in enumerate(SHORT_LEVELS):
        task = CorrelatedGaussian(20, mi)
        est.fit(task, steps=SHORT_STEPS, batch_size=SHORT_BATCH, lr=SHORT_LR, seed=100 * seed + i, progress=False)
        e = est.estimate(*task.sample(4096, seed=10_000 + 100 * seed + i), batch_size=512)
        out.append((mi, e.value, e.stderr))
    return out
