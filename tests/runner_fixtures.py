"""Planted run functions for the runner's tests: they must be module-level so that ``--jobs`` worker
processes and Ray workers can import them (both get the test process's ``sys.path``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def square(i: int, delay: float = 0.0, progress: bool = True) -> dict:
    """A record that depends only on the argument, and which process made it."""
    time.sleep(delay)
    return {"i": i, "square": i * i, "pid": os.getpid()}


def fail_on(i: int, bad: int, progress: bool = True) -> dict:
    if i == bad:
        raise RuntimeError(f"planted failure of run {i}")
    return square(i)


def die_once(i: int, marker: str, progress: bool = True) -> dict:
    """Kills its own process (SIGKILL, as the OOM killer would) the first time; succeeds when retried."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return square(i)


def always_die(i: int, progress: bool = True) -> dict:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}  # never reached


def threads_seen(i: int, progress: bool = True) -> dict:
    import torch

    return {"i": i, "threads": torch.get_num_threads(), "pid": os.getpid()}


def broken_on_rows_4(x_shape, y_shape):
    """A planted image estimator that raises while training on the cell with rows t = 4 (8x8 digits):
    y's top 4 rows live, the bottom 4 zeroed."""
    from selfconsistency_fixtures import PixelMI

    class BrokenOnRows4(PixelMI):
        def _loss(self, x, y):
            if bool(y[:, :, :4].abs().sum() > 0) and not bool(y[:, :, 4:].abs().sum() > 0):
                raise RuntimeError("planted failure on the rows-4 cell")
            return super()._loss(x, y)

    return BrokenOnRows4(x_shape, y_shape)
