"""Atomic result files, reading them back, and the output directory's lock.

A finished result is written at once and never half-written (a temporary file in the same folder,
then ``os.replace``); one command at a time writes to an output directory (:class:`OutputLock`).
Every record read back is checked (:func:`read_record`, with its typed record class of :mod:`.records`):
a truncated, emptied, foreign or incomplete file raises :class:`BadRecord` naming it, never a bare JSON or
``KeyError`` traceback; :func:`load_records` reads a folder of them, skipping (and naming) the bad ones.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from .records import RecordProblem

try:  # POSIX; elsewhere the lock is advisory only (see OutputLock)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = [
    "write_text_atomic",
    "write_json_atomic",
    "save_figure_atomic",
    "read_json",
    "read_record",
    "load_records",
    "BadRecord",
    "check_writable",
    "write_all",
    "write_outputs",
    "NotWritten",
    "OutputLock",
    "OutputBusy",
    "log",
]

# warnings about files among the results (bad records skipped or redone); without any logging
# configuration Python prints them on stderr
log = logging.getLogger("selfconsistency")


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


class NotWritten(RuntimeError):
    """Some output files could not be written; ``failures`` lists them with the reason. The others were."""

    def __init__(self, failures: list[str], written: list[Path]):
        self.failures, self.written = failures, written
        super().__init__("could not write " + "; ".join(failures))


def write_all(writers) -> list[Path]:
    """Calls every ``writer() -> path or list of paths`` even when one fails (each is atomic), so that what
    can be written is; raises :class:`NotWritten` naming the ones that could not be, with why."""
    written, failures = [], []
    for target, writer in writers:
        try:
            got = writer()
        except OSError as err:
            failures.append(f"{target} ({err.strerror or err})")
            continue
        written += got if isinstance(got, list) else [got]
    if failures:
        raise NotWritten(failures, written)
    return written


def write_outputs(out, files: dict, figures=(), log=print) -> list[Path]:
    """Writes a report's files in the folder ``out``, each atomically, even when one fails (:func:`write_all`).

    ``files``: name -> text (written as is) or any other object (written as JSON); ``figures``: ``(name,
    draw)`` pairs, ``draw(path)`` saving a figure there. Logs ``wrote ...`` for what was written; raises
    :class:`NotWritten` naming what could not be.
    """
    out = Path(out)

    def writer(name, content):
        if isinstance(content, str):
            return lambda: write_text_atomic(out / name, content)
        return lambda: write_json_atomic(out / name, content)

    writers = [(out / name, writer(name, content)) for name, content in files.items()]
    writers += [(out / name, lambda draw=draw, path=out / name: draw(path)) for name, draw in figures]
    written = write_all(writers)
    log("wrote " + ", ".join(str(p) for p in written))
    return written


class BadRecord(ValueError):
    """A file among the results that is not a whole record: truncated, emptied, foreign or incomplete."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def read_json(path: str | os.PathLike):
    """The JSON in ``path``; :class:`BadRecord` naming the file where it is empty or not JSON."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise BadRecord(path, "not a text file") from None
    if not text.strip():
        raise BadRecord(path, "empty file")
    try:
        return json.loads(text)
    except ValueError as err:
        raise BadRecord(path, f"not valid JSON, truncated or not a result file ({err})") from None


def read_record(path: str | os.PathLike, check=None, *, record: type | None = None):
    """A record of the file ``path``; :class:`BadRecord` naming the file where it is not a whole one.

    ``record``: a :class:`~.records.Record` class; the JSON object is read with its ``from_dict`` (typed,
    checked, older versions upgraded). ``check(record) -> problem or None``: a further check. Unreadable
    files (permissions, a folder in the way) are bad records too: ``OSError`` other than a missing file
    becomes :class:`BadRecord`.
    """
    try:
        rec = read_json(path)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise BadRecord(path, f"cannot be read ({err.strerror or err})") from None
    if not isinstance(rec, dict):
        raise BadRecord(path, f"a JSON {type(rec).__name__}, not a record")
    if record is not None:
        try:
            rec = record.from_dict(rec)
        except RecordProblem as err:
            raise BadRecord(path, str(err)) from None
    problem = check(rec) if check is not None else None
    if problem:
        raise BadRecord(path, problem)
    return rec


def load_records(
    folder: str | os.PathLike, pattern: str, record: type, *, redo: str, check=None, what: str | None = None
) -> list:
    """Every whole record among the files ``folder/pattern`` (sorted by path), read as ``record`` (and passing
    ``check(record) -> problem or None``); a bad file is skipped with a warning naming it and ``redo`` (the
    command that makes it again). ``what``: none found is a ``ValueError`` ("no finished {what} in folder")."""
    found = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            found.append(read_record(path, check, record=record))
        except BadRecord as err:
            log.warning(f"skipped {err}: delete it, or run {redo} again (it redoes the run)")
    if what is not None and not found:
        raise ValueError(f"no finished {what} in {folder}")
    return found


def check_writable(directory: str | os.PathLike, create: bool = True) -> Path:
    """Writes (then removes) a file in ``directory``, so that a directory that cannot be written fails
    before the first run, not after it (``ValueError``). ``create``: make the directory first; else
    the nearest folder above it that exists is checked, and nothing is created."""
    directory = Path(directory)
    if not create:
        while not directory.is_dir() and directory.parent != directory:
            directory = directory.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"out: cannot create or write the output directory {directory}: {err.strerror or err}; "
            "give a writable --out"
        ) from None
    return directory


class OutputBusy(ValueError):
    """Another command is writing to the same output directory."""


class OutputLock:
    """Exclusive use of an output directory by one command, for as long as the ``with`` block runs.

    Takes an OS lock (``flock``) on ``OUT/.lock``, which the kernel releases when the holder exits,
    however it exits (a killed command leaves no stale lock). A second command pointed at the same
    directory is refused with :class:`OutputBusy` naming the holder, instead of both writing result
    files and tables at once. The directory is created, and checked to be writable, on entry (by
    writing a file in it: an existing ``.lock`` opens even in a read-only directory).

    >>> with OutputLock("out/table2"):
    ...     pass  # run, write results
    """

    def __init__(self, out):
        self.out = Path(out)
        self._file = None

    def __enter__(self) -> OutputLock:
        check_writable(self.out)
        try:
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
