"""What a comparison hands the runner: independent runs, groups of runs trained together, and what came back.

:class:`Run` is one unit of work with the file its record goes to; :class:`Group` marks runs that train
together as one unit; :class:`Outcome` and :class:`RunsFailed` say what :func:`~.runner.execute` did.
Nothing here knows what a run computes.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Run", "Group", "Outcome", "RunsFailed", "FAILED_DIR", "format_error"]

FAILED_DIR = "failed"


@dataclass(frozen=True)
class Group:
    """Runs trained together: the unfinished runs whose ``group`` is this one form one unit of work.

    Attributes:
        key: a readable name, unique among the groups of one :func:`execute` (``"gaussian joint cpc"``).
        fn: ``fn(member_args, *args, progress=bool) -> list``: given the ``args`` of each member run to do
            (a tuple of their :attr:`Run.args`, in order), returns their records in that order, each what
            the member's own ``fn`` would return. Module-level and picklable for ``--jobs``/``--ray``.
        args: its further arguments.
        max_members: the most members in one unit of work; more are split into near-equal units
            (``None``: all in one).
    """

    key: str
    fn: Callable[..., list]
    args: tuple = ()
    max_members: int | None = None


@dataclass(frozen=True)
class Run:
    """One independent unit of work.

    Attributes:
        key: a unique, readable name (``"gaussian joint cpc seed 0"``), used in logs and failure lists.
        relpath: where its record goes, relative to the output directory (``"runs/....json"``).
        fn: ``fn(*args, progress=bool) -> dict`` returning the JSON-able record. For ``--jobs`` and
            ``--ray`` it must be a module-level function and ``args`` picklable.
        args: its arguments.
        check: ``check(record) -> problem or None``, called by the driver on a record found in the
            output directory: a record it rejects (incomplete, foreign) is named in a warning and the
            run is redone, as for a truncated or empty file.
        validate: called by the driver on a record that ``check`` accepted; raises ``ValueError`` when
            that record was made with another configuration (the run is not redone silently: the
            user must choose another directory).
        describe: the driver's one-line summary of a finished record (after ``[done]``/``[skip]``).
        gpu: the run needs a GPU (Ray asks for one).
        group: the :class:`Group` that trains this run together with others (``None``: alone).
    """

    key: str
    relpath: str
    fn: Callable[..., object]
    args: tuple = ()
    check: Callable[[object], str | None] | None = None
    validate: Callable[[object], None] | None = None
    describe: Callable[[object], str] | None = None
    gpu: bool = False
    group: Group | None = None
    record: type | None = None


@dataclass
class Outcome:
    """What :func:`execute` did: the records of every run (finished earlier or now) and the failures."""

    records: dict[str, object] = field(default_factory=dict)  # key -> record (typed, or a dict)
    done: list[str] = field(default_factory=list)  # trained now
    skipped: list[str] = field(default_factory=list)  # finished earlier
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    seconds: float = 0.0


class RunsFailed(RuntimeError):
    """Some runs raised; the others finished and were written. ``outcome`` holds everything."""

    def __init__(self, outcome: Outcome, out=None):
        self.outcome = outcome
        where = f" (errors in {Path(out) / FAILED_DIR})" if out is not None else ""
        first_key, first_err = next(iter(outcome.failed.items()))
        names = "; ".join(outcome.failed)
        super().__init__(
            f"{len(outcome.failed)} of {len(outcome.records) + len(outcome.failed)} runs failed{where}: "
            f"{names}. First error ({first_key}): {first_err.strip().splitlines()[-1].rstrip('.')}. "
            "Finished runs are saved; run the same command again to retry only the failed ones."
        )


def format_error(err: BaseException) -> str:
    """The error of a failed run as recorded: its traceback, ending with the exception line."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))
