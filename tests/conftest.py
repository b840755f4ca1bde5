import pytest
import torch

import micore

# One torch thread for the whole suite. The models here are small: a second thread gains little on an idle
# 2-core machine and, beside any other busy process, makes every step wait for a core that is taken (with 2
# threads and one core busy, 158 tests took 18 minutes). One thread never oversubscribes, and it is the count
# the tolerances were measured with (benchmarks/training_tolerances.py): a count that followed the machine's
# load would change float summation order from run to run. Trainings keep it (micore.set_threads(None): the
# library's idle-core default is for users, and is tested in tests/micore/training/test_threads.py).
torch.set_num_threads(1)
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
