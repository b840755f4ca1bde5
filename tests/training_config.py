"""The short-training configuration shared by tests/test_training.py and
benchmarks/training_tolerances.py (which derives the tests' tolerances from it).

A narrower joint critic than the seed's (64-64 instead of 256-256) and lr 1e-3, so that every
estimator converges at MI = 2 within a few hundred steps on a CPU; the estimate is taken on
held-out samples with batch 64, as in training.
"""
from __future__ import annotations

import torch

import discmi
from discmi.critics import JointCritic
from micore.tasks import CorrelatedGaussian

MI, DIM, STEPS, LR, HIDDEN = 2.0, 5, 500, 2e-3, (64, 64)

ESTIMATORS = {
    "nwj": lambda c: discmi.NWJ(DIM, DIM, critic=c),
    "tuba": lambda c: discmi.TUBA(DIM, DIM, critic=c),
    "dv": lambda c: discmi.DV(DIM, DIM, critic=c),
    "mine": lambda c: discmi.MINE(DIM, DIM, critic=c),
    "infonce": lambda c: discmi.InfoNCE(DIM, DIM, critic=c),
    "js": lambda c: discmi.JS(DIM, DIM, critic=c),
    "interpolated": lambda c: discmi.Interpolated(DIM, DIM, critic=c),
    "smile:5": lambda c: discmi.SMILE(DIM, DIM, tau=5.0, critic=c),
    "smile:inf": lambda c: discmi.SMILE(DIM, DIM, tau=float("inf"), critic=c),
    "remine": lambda c: discmi.ReMINE(DIM, DIM, critic=c),
    "remine-j": lambda c: discmi.ReMINE(DIM, DIM, critic=c, estimate="joint"),
}


def evaluate(name: str, seed: int) -> float:
    task = CorrelatedGaussian(dim=DIM, mi=MI)
    torch.manual_seed(seed)
    est = ESTIMATORS[name](JointCritic(DIM, DIM, hidden=HIDDEN))
    est.fit(task, steps=STEPS, lr=LR, seed=seed, progress=False, device="cpu")
    x, y = task.sample(4096, seed=10_000 + seed)  # held out: never seen in training
    return est.estimate(x, y).value


# ReMINE on its one-hot set (N = 16, I = log 16): a one-hidden-layer critic, batch 100 as in the
# paper, lr 5e-3 and 300 steps so it runs in a few seconds.
ONEHOT_CLASSES, ONEHOT_HIDDEN, ONEHOT_STEPS, ONEHOT_LR, ONEHOT_BATCH = 16, (64,), 300, 5e-3, 100


def evaluate_onehot(seed: int) -> float:
    from micore.tasks import OneHot

    task = OneHot(ONEHOT_CLASSES)
    torch.manual_seed(seed)
    est = discmi.ReMINE(ONEHOT_CLASSES, ONEHOT_CLASSES,
                        critic=JointCritic(ONEHOT_CLASSES, ONEHOT_CLASSES, hidden=ONEHOT_HIDDEN))
    est.fit(task, steps=ONEHOT_STEPS, batch_size=ONEHOT_BATCH, lr=ONEHOT_LR, seed=seed, progress=False,
            device="cpu")
    x, y = task.sample(4000, seed=10_000 + seed)
    return est.estimate(x, y, batch_size=ONEHOT_BATCH).value
