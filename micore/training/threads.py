"""How many intra-op threads the library's trainings use.

The models trained here are small (a 256-256 MLP on batches of 64): a second thread helps a little on
an idle machine, and next to another busy process it can make each step tens of times slower, as the
threads wait for a core that is taken. So by default a training uses as many threads as there are
**idle** cores when it starts (at least 1), measured from the kernel's CPU counters over a tenth of a
second and remembered for a minute; :func:`set_threads` fixes the count instead.

>>> import micore
>>> micore.set_threads(1)        # every later fit uses one thread
>>> micore.set_threads("auto")   # back to the default: the idle cores
>>> micore.set_threads(None)     # leave torch's own setting alone
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

__all__ = ["set_threads", "threads_setting", "training_threads", "idle_cpus", "available_cpus", "using_threads"]

_SETTING: int | str | None = "auto"
_CACHE: dict = {}  # "auto" -> (time measured, threads)
_CACHE_SECONDS = 60.0
_SAMPLE_SECONDS = 0.1


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | str | None = "auto") -> None:
    """Sets the intra-op threads of every later training: an int >= 1, ``"auto"`` (the idle cores,
    the default) or ``None`` (torch's own setting, ``torch.get_num_threads()``)."""
    global _SETTING
    if threads is not None and threads != "auto":
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f'threads must be an int >= 1, "auto" or None, got {threads!r}')
    _SETTING = threads
    _CACHE.clear()


def threads_setting() -> int | str | None:
    """What :func:`set_threads` was last given (``"auto"`` by default)."""
    return _SETTING


def _cpu_times() -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs from /proc/stat, or ``None`` where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def idle_cpus(sample_seconds: float = _SAMPLE_SECONDS) -> float:
    """The number of this process's CPUs that other work left idle, measured over ``sample_seconds``
    (from /proc/stat; elsewhere from the 1-minute load average)."""
    cpus = available_cpus()
    first = _cpu_times()
    if first is None:
        try:
            return max(0.0, cpus - os.getloadavg()[0])
        except (AttributeError, OSError):  # pragma: no cover - no load average either
            return float(cpus)
    time.sleep(sample_seconds)
    second = _cpu_times()
    busy, total = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return float(cpus)
    # /proc/stat counts every CPU of the machine; scale the busy share to the ones we may use
    return max(0.0, cpus * (1.0 - busy / total))


def training_threads() -> int | None:
    """The thread count a training starting now uses (``None``: leave torch's setting)."""
    if _SETTING != "auto":
        return _SETTING
    now = time.monotonic()
    cached = _CACHE.get("auto")
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    threads = max(1, min(available_cpus(), int(idle_cpus() + 0.5)))
    _CACHE["auto"] = (now, threads)
    return threads


@contextmanager
def using_threads(threads: int | None):
    """Runs the block with ``torch.set_num_threads(threads)`` (``None``: unchanged), then restores it."""
    import torch

    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
