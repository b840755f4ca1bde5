"""Running many independent runs and keeping their records: knows nothing about MI.

* :mod:`.runs` — :class:`Run`, :class:`Group`, :class:`Outcome`, :class:`RunsFailed`;
* :mod:`.runner` — :func:`execute`: resuming, failures, progress, one record per run, groups as one unit;
* :mod:`.executors` — in this process, local worker processes (``--jobs``), Ray tasks (``--ray``);
* :mod:`.grouping` — runs trained together: groups, units of work, the default group size per executor;
* :mod:`.records` — typed records (:class:`Record`: fields, version, ``to_dict``/``from_dict``);
* :mod:`.storage` — atomic files, reading records back checked, the output directory's lock.
"""

from .executors import RAY_INSTALL, InlineExecutor, ProcessExecutor, RayExecutor, make_executor
from .grouping import group_runs, parallel_cap
from .records import Record, RecordProblem
from .runner import execute
from .runs import FAILED_DIR, Group, Outcome, Run, RunsFailed, format_error
from .storage import (
    BadRecord,
    NotWritten,
    OutputBusy,
    OutputLock,
    check_writable,
    load_records,
    read_json,
    read_record,
    save_figure_atomic,
    write_all,
    write_json_atomic,
    write_outputs,
    write_text_atomic,
)

__all__ = [
    "Run",
    "Group",
    "Outcome",
    "RunsFailed",
    "FAILED_DIR",
    "format_error",
    "execute",
    "InlineExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "make_executor",
    "RAY_INSTALL",
    "group_runs",
    "parallel_cap",
    "Record",
    "RecordProblem",
    "BadRecord",
    "NotWritten",
    "OutputBusy",
    "OutputLock",
    "check_writable",
    "load_records",
    "read_json",
    "read_record",
    "save_figure_atomic",
    "write_all",
    "write_json_atomic",
    "write_outputs",
    "write_text_atomic",
]
