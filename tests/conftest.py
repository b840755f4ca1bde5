import os

import pytest
import torch

import micore

# CI runs on 2 cores; keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))
# Trainings in the tests use the thread count the test sets (one_thread below), not the library's
# idle-core default: the tolerances were measured with a fixed count, and a count that follows the
# machine's load would change float summation order from run to run.
micore.set_threads(None)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Runs a test on one intra-op thread. Small models and matrices gain nothing from a second thread
    on a shared 2-core machine (synchronisation costs more than it saves), and the short-training
    tolerances were measured single-threaded (the thread count changes float summation order).
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
