"""One runner for every comparison: independent runs in, one result record per run out.

Both commands (``bench`` and ``check``) describe their work as a list of :class:`Run` and hand it to
:func:`execute`, which owns what a week of comparisons needs:

* **resuming** — a run whose record is already in the output directory is skipped (after its own
  ``check`` and ``validate`` accept it; a truncated, foreign or incomplete file is named in a warning
  and the run redone); the driver process alone writes records, each atomically, the moment it
  comes back, so the workers need no shared disk and a killed command loses only the runs in flight;
* **a writable output directory** — checked, with every folder the records go to, before the first
  run, so that a directory that cannot be written costs no training;
* **failure** — a run that raises is recorded with its error in ``OUT/failed/`` and the others go on;
  :func:`execute` then raises :class:`RunsFailed` naming every failed run, and re-running retries
  only those (a later success removes the failure record);
* **progress** — one overall bar (runs done / total, time left), beside the per-run bars when runs
  go one after another, instead of them when several run at once.

Where the runs execute is the executor's business (:mod:`selfconsistency.executors`): in this
process, in local worker processes (``--jobs N``), or as Ray tasks (``--ray``).

>>> runs = [Run(key=f"seed {s}", relpath=f"runs/s{s}.json", fn=train_one, args=(s,)) for s in range(3)]
>>> outcome = execute(runs, out="out/x", executor=ProcessExecutor(jobs=2))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .storage import BadRecord, OutputLock, check_writable, log, read_record, write_json_atomic

__all__ = ["Run", "Outcome", "RunsFailed", "execute", "FAILED_DIR"]

FAILED_DIR = "failed"


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
    """

    key: str
    relpath: str
    fn: Callable[..., dict]
    args: tuple = ()
    check: Callable[[dict], str | None] | None = None
    validate: Callable[[dict], None] | None = None
    describe: Callable[[dict], str] | None = None
    gpu: bool = False


@dataclass
class Outcome:
    """What :func:`execute` did: the records of every run (finished earlier or now) and the failures."""

    records: dict[str, dict] = field(default_factory=dict)  # key -> record
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


def _read_record(path: Path, check=None) -> dict | None:
    """A finished record, or ``None`` where the file is missing or not a whole record (said in a warning:
    the run is redone and its new record replaces the file)."""
    try:
        return read_record(path, check)
    except FileNotFoundError:
        return None
    except BadRecord as err:
        log.warning(f"{err}; the run is redone and its new record will replace the file")
        return None


def _check_writable(out: Path, runs: Sequence[Run]) -> None:
    """Every folder the records (and failure records) go to can be written: checked before the first run,
    at the nearest folder that exists (nothing is created for runs that may never finish)."""
    folders = {(out / r.relpath).parent for r in runs} | {(out / FAILED_DIR / r.relpath).parent for r in runs}
    for folder in sorted(folders):
        check_writable(folder, create=False)


def _check_unique(runs: Sequence[Run]) -> None:
    seen: dict[str, str] = {}
    for r in runs:
        for what in (r.key, r.relpath):
            if what in seen:
                raise ValueError(
                    f"two runs share {what!r} ({seen[what]!r} and {r.key!r}): each run needs its own "
                    "key and result file"
                )
            seen[what] = r.key


def execute(
    runs: Sequence[Run],
    out=None,
    executor=None,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    desc: str = "runs",
    raise_on_failure: bool = True,
) -> Outcome:
    """Runs every run not already finished in ``out`` and writes each record as it comes back.

    Args:
        runs: the work, in the order it should start.
        out: the output directory (locked for the duration: a second command on it is refused);
            ``None`` keeps records in memory only (no resuming, nothing written).
        executor: where runs execute (default :class:`~selfconsistency.executors.InlineExecutor`).
        progress: the overall bar, and per-run bars where the executor shows them.
        log: receives one line per finished, skipped or failed run.
        raise_on_failure: raise :class:`RunsFailed` at the end when any run failed.
    Returns:
        an :class:`Outcome`; ``records`` holds every run's record, in the order of ``runs``.
    """
    from .executors import InlineExecutor

    _check_unique(runs)
    executor = InlineExecutor() if executor is None else executor
    log = log or (lambda line: None)
    outcome = Outcome()
    start = time.perf_counter()
    found: dict[str, dict] = {}

    def finish(status: str, run: Run, rec: dict) -> None:
        found[run.key] = rec
        summary = run.describe(rec) if run.describe is not None else ""
        log(f"[{status}] {run.key}" + (f": {summary}" if summary else ""))

    with OutputLock(out) if out is not None else contextlib.nullcontext():
        todo = []
        for run in runs:
            rec = _read_record(Path(out) / run.relpath, run.check) if out is not None else None
            if rec is None:
                todo.append(run)
                continue
            if run.validate is not None:
                run.validate(rec)
            outcome.skipped.append(run.key)
            finish("skip", run, rec)
        if out is not None and todo:
            _check_writable(Path(out), todo)
        bar = tqdm(
            total=len(runs),
            initial=len(runs) - len(todo),
            desc=desc,
            unit="run",
            disable=not progress or not todo,
            dynamic_ncols=True,
        )
        try:
            for run, rec, error in executor.map_unordered(todo, progress=progress):
                if error is None:
                    if out is not None:
                        write_json_atomic(Path(out) / run.relpath, rec)
                        failed_file = Path(out) / FAILED_DIR / run.relpath
                        if failed_file.exists():
                            failed_file.unlink()
                    outcome.done.append(run.key)
                    finish("done", run, rec)
                else:
                    outcome.failed[run.key] = error
                    if out is not None:
                        write_json_atomic(
                            Path(out) / FAILED_DIR / run.relpath,
                            {
                                "key": run.key,
                                "error": error,
                                "executor": executor.name,
                                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                            },
                        )
                    log(f"[failed] {run.key}: {error.strip().splitlines()[-1]}")
                bar.update(1)
                bar.set_postfix_str(f"{len(outcome.failed)} failed" if outcome.failed else "", refresh=False)
        finally:
            bar.close()
    outcome.records = {r.key: found[r.key] for r in runs if r.key in found}
    outcome.seconds = time.perf_counter() - start
    if outcome.failed and raise_on_failure:
        raise RunsFailed(outcome, out)
    return outcome


def format_error(err: BaseException) -> str:
    """The error of a failed run as recorded: its traceback, ending with the exception line."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))
