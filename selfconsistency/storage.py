"""Atomic result files and the output directory's lock.

A finished result is written at once and never half-written (a temporary file in the same folder,
then ``os.replace``); one command at a time writes to an output directory (:class:`OutputLock`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

try:  # POSIX; elsewhere the lock is advisory only (see OutputLock)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["write_text_atomic", "write_json_atomic", "save_figure_atomic", "read_json", "OutputLock", "OutputBusy"]


def _clean(obj):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    return write_text_atomic(path, json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n")


def save_figure_atomic(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Writes a matplotlib figure as PNG through a temporary file, then closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique temporary name: two report rebuilds at once must not write the same file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)


class OutputBusy(ValueError):
    """Another command is writing to the same output directory."""


class OutputLock:
    """Exclusive use of an output directory by one command, for as long as the ``with`` block runs.

    Takes an OS lock (``flock``) on ``OUT/.lock``, which the kernel releases when the holder exits,
    however it exits (a killed command leaves no stale lock). A second command pointed at the same
    directory is refused with :class:`OutputBusy` naming the holder, instead of both writing result
    files and tables at once. The directory is created, and checked to be writable, on entry.

    >>> with OutputLock("out/table2"):
    ...     pass  # run, write results
    """

    def __init__(self, out):
        self.out = Path(out)
        self._file = None

    def __enter__(self) -> OutputLock:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            f = open(self.out / ".lock", "a+")  # noqa: SIM115 - held open for the lock's lifetime
        except OSError as err:
            raise ValueError(f"out: cannot create or write the output directory {self.out}: {err}") from err
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                raise OutputBusy(
                    f"out: {self.out} is in use by another selfconsistency command ({holder}); wait "
                    "for it to finish, or give another --out"
                ) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            f"{' '.join(sys.argv)[:200]}\n"
        )
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None
