"""The thread count of trainings (issue 13, class 1): the idle cores by default, settable, restored.

Next to another busy process, torch's default (every core) made a FlowMI step 30x slower on a 2-core
machine; the library's default counts only the cores left idle when a training starts.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import micore
from micore import MIEstimator
from micore.tasks import CorrelatedGaussian
from micore.training.threads import available_cpus, idle_cpus, threads_setting, training_threads


class ThreadsSeen(MIEstimator):
    """Records the intra-op thread count its training steps ran with."""

    def __init__(self):
        super().__init__(2, 2)
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: set[int] = set()

    def _log_ratio(self, x, y):
        return torch.zeros(len(x)) + self.w

    def _loss(self, x, y):
        self.seen.add(torch.get_num_threads())
        return (self.w - 1.0) ** 2


@pytest.fixture
def restore_setting():
    before = threads_setting()
    yield
    micore.set_threads(before)


def test_set_threads_is_strict(restore_setting):
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError, match="threads must be an int >= 1"):
            micore.set_threads(bad)
    micore.set_threads(3)
    assert threads_setting() == 3 and training_threads() == 3
    micore.set_threads(None)
    assert training_threads() is None


def test_a_training_uses_the_setting_and_restores_torchs_own(restore_setting):
    before = torch.get_num_threads()
    micore.set_threads(1)
    est = ThreadsSeen()
    hist = est.fit(CorrelatedGaussian(dim=2, mi=1.0), steps=5, progress=False, device="cpu")
    assert est.seen == {1} and hist.threads == 1
    assert torch.get_num_threads() == before  # the caller's setting is left as it was


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs to leave one idle")
def test_auto_leaves_the_core_another_process_keeps_busy(restore_setting):
    micore.set_threads("auto")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # give the busy loop a moment to show in the kernel's counters, then measure over 0.3 s
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)
        assert idle_cpus(0.3) < available_cpus() - 0.5
        threads = training_threads()
    finally:
        busy.kill()
        busy.wait()
    # one core is taken: at most the others (it may be fewer if the machine has other load)
    assert 1 <= threads <= available_cpus() - 1
