"""One runner for every comparison: independent runs in, one result record per run out.

Both commands (``bench`` and ``check``) describe their work as a list of :class:`Run` and hand it to
:func:`execute`, which owns what a week of comparisons needs:

* **resuming** — a run whose record is already in the output directory is skipped (after its record
  type, its ``check`` and its ``validate`` accept it; a truncated, foreign or incomplete file is named
  in a warning and the run redone); the driver process alone writes records, each atomically, the moment it
  comes back, so the workers need no shared disk and a killed command loses only the runs in flight;
* **a writable output directory** — checked, with every folder the records go to, before the first
  run, so that a directory that cannot be written costs no training;
* **failure** — a run that raises is recorded with its error in ``OUT/failed/`` and the others go on;
  :func:`execute` then raises :class:`RunsFailed` naming every failed run, and re-running retries
  only those (a later success removes the failure record);
* **progress** — one overall bar (runs done / total, time left), beside the per-run bars when runs
  go one after another, instead of them when several run at once;
* **groups** — runs that share a :class:`Group` and are still to do are trained together, as one unit
  of work for the executor (an ensemble of runs; :mod:`.grouping`): the
  group's function returns one record per member, and each is checked, written and resumed exactly
  as a record of a run done alone. Members already finished are not trained again; a group left
  with one member to do runs it alone (its own ``fn``).

Where the runs execute is the executor's business (:mod:`.executors`): in this
process, in local worker processes (``--jobs N``), or as Ray tasks (``--ray``).

>>> runs = [Run(key=f"seed {s}", relpath=f"runs/s{s}.json", fn=train_one, args=(s,)) for s in range(3)]
>>> outcome = execute(runs, out="out/x", executor=ProcessExecutor(jobs=2))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .executors import InlineExecutor
from .grouping import units_of_work
from .runs import FAILED_DIR, Group, Outcome, Run, RunsFailed, format_error
from .storage import BadRecord, OutputLock, check_writable, log, read_record, write_json_atomic

__all__ = ["Run", "Group", "Outcome", "RunsFailed", "execute", "FAILED_DIR", "format_error"]


def _read_record(path: Path, run: Run):
    """A finished record, or ``None`` where the file is missing or not a whole record (said in a warning:
    the run is redone and its new record replaces the file)."""
    try:
        return read_record(path, run.check, record=run.record)
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


class _Results:
    """The driver's side of :func:`execute`: each record written (or failure recorded) as it comes back."""

    def __init__(self, out, executor_name: str, log: Callable[[str], None]):
        self.out = Path(out) if out is not None else None
        self.executor_name, self.log = executor_name, log
        self.outcome = Outcome()
        self.found: dict[str, object] = {}

    def finish(self, status: str, run: Run, rec) -> None:
        self.found[run.key] = rec
        summary = run.describe(rec) if run.describe is not None else ""
        self.log(f"[{status}] {run.key}" + (f": {summary}" if summary else ""))

    def done(self, run: Run, rec) -> None:
        if self.out is not None:
            write_json_atomic(self.out / run.relpath, rec.to_dict() if hasattr(rec, "to_dict") else rec)
            failed_file = self.out / FAILED_DIR / run.relpath
            if failed_file.exists():
                failed_file.unlink()
        self.outcome.done.append(run.key)
        self.finish("done", run, rec)

    def failed(self, run: Run, error: str) -> None:
        self.outcome.failed[run.key] = error
        if self.out is not None:
            write_json_atomic(
                self.out / FAILED_DIR / run.relpath,
                {
                    "key": run.key,
                    "error": error,
                    "executor": self.executor_name,
                    "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                },
            )
        self.log(f"[failed] {run.key}: {error.strip().splitlines()[-1]}")

    def unit(self, unit: Run, members: list[Run] | None, rec: dict | None, error: str | None) -> None:
        """One unit of work came back: a run alone, or a group's members (each written as its own run)."""
        if members is None:
            self.done(unit, rec) if error is None else self.failed(unit, error)
        elif error is None:
            for run, member_rec in zip(members, rec["records"], strict=True):
                self.done(run, member_rec)
        else:  # the group failed as a whole: each member is recorded failed, with the group's error
            last = error.strip().splitlines()[-1] if error.strip() else "error"
            for run in members:
                self.failed(run, f"{error.rstrip()}\n{last} (in {unit.key}, trained together)")


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
        runs: the work, in the order it should start. Runs sharing a :class:`Group` are trained
            together (those still to do), each member's record written as its own.
        out: the output directory (locked for the duration: a second command on it is refused);
            ``None`` keeps records in memory only (no resuming, nothing written).
        executor: where runs execute (default :class:`~.executors.InlineExecutor`).
        progress: the overall bar, and per-run bars where the executor shows them.
        log: receives one line per finished, skipped or failed run, and one per group trained.
        raise_on_failure: raise :class:`RunsFailed` at the end when any run failed.
    Returns:
        an :class:`Outcome`; ``records`` holds every run's record, in the order of ``runs``.
    """
    _check_unique(runs)
    executor = InlineExecutor() if executor is None else executor
    log = log or (lambda line: None)
    results = _Results(out, executor.name, log)
    outcome = results.outcome
    start = time.perf_counter()

    with OutputLock(out) if out is not None else contextlib.nullcontext():
        todo = []
        for run in runs:
            rec = _read_record(Path(out) / run.relpath, run) if out is not None else None
            if rec is None:
                todo.append(run)
                continue
            if run.validate is not None:
                run.validate(rec)
            outcome.skipped.append(run.key)
            results.finish("skip", run, rec)
        if out is not None and todo:
            _check_writable(Path(out), todo)
        units = units_of_work(todo)
        members_of = {unit.key: members for unit, members in units if members is not None}
        for key in members_of:
            log(f"[group] {key}: trained together, as one unit of work")
        bar = tqdm(
            total=len(runs),
            initial=len(runs) - len(todo),
            desc=desc,
            unit="run",
            disable=not progress or not todo,
            dynamic_ncols=True,
        )
        try:
            for unit, rec, error in executor.map_unordered([u for u, _ in units], progress=progress):
                members = members_of.get(unit.key)
                results.unit(unit, members, rec, error)
                bar.update(1 if members is None else len(members))
                bar.set_postfix_str(f"{len(outcome.failed)} failed" if outcome.failed else "", refresh=False)
        finally:
            bar.close()
    outcome.records = {r.key: results.found[r.key] for r in runs if r.key in results.found}
    outcome.seconds = time.perf_counter() - start
    if outcome.failed and raise_on_failure:
        raise RunsFailed(outcome, out)
    return outcome
