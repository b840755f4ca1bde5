"""Your own data as an ``(x, y)`` pair read from a file: :func:`load_pair` and what it read (:class:`LoadedPair`).

``load_pair(DATA, x, y)`` reads (``selfconsistency estimate DATA --x X --y Y`` passes the same three):

==============================  ===================================================================
DATA                            x and y
==============================  ===================================================================
``data.npz``                    array names (keys); unset: ``"x"``/``"y"``, or the only two arrays
a directory of ``.npy`` files   file names in it, ``.npy`` optional (``"x"`` reads ``DIR/x.npy``);
                                unset as for ``.npz`` (the directory is an unpacked ``.npz``)
``x.npy`` and a second file     x unset, y the path of the y ``.npy`` (as given, or beside DATA)
``data.npy`` (one array)        column specs of its axis 1 (below)
``data.csv`` / ``.tsv``         column specs; names too when the file has a header
``data.pt`` / ``.pth``          a dict of tensors: keys (unset as for ``.npz``); a tuple/list of
                                tensors: positions (unset: a pair is ``(x, y)``); one tensor:
                                column specs. Read with ``torch.load(weights_only=True)``.
==============================  ===================================================================

A column spec is comma-separated positions (``"3"``, ``"-1"``), ranges (``"0:10"``: 0-based, end
excluded, as in Python) or header names (``"age,height"``; ``"age:weight"`` is every column from
age to weight, both included, as pandas' ``.loc``). The result is float32 ``x: [n, ...]``,
``y: [n, ...]`` (1-d arrays become ``[n, 1]``) with what was read (:class:`LoadedPair`).

Every problem is a ``ValueError`` naming the argument: a missing file (listing the folder), key
(listing the keys) or column (listing the names), an unreadable cell (row and column, 1-based), rows
that differ in number, non-finite values (counted, the first row named; ``drop_nonfinite=True``
drops those rows), non-numeric or empty arrays: the one paired-data check,
:func:`micore.validation.check_pair_data`, which also serves arrays already in memory;
:func:`~micore.validation.check_not_constant` is for the data standardisation is fitted on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from micore.validation import PairData, check_pair_data, position

from . import formats as files
from .formats import SUPPORTED

__all__ = ["load_pair", "LoadedPair", "SUPPORTED"]


@dataclass(frozen=True)
class LoadedPair:
    """What :func:`load_pair` read: the data and, for the printout and the JSON, where it came from."""

    x: Tensor  # [n, ...] float32
    y: Tensor  # [n, ...] float32
    source: str  # the file or directory read, with its format: "data.csv (CSV)"
    x_from: str  # what x is in it: "key 'x'", "columns 0:3 ('a', 'b', 'c')", "file x.npy"
    y_from: str
    rows_read: int  # rows before any was dropped
    dropped: tuple[int, ...] = ()  # 0-based among the rows read (CSV: data rows, header excluded)
    x_columns: tuple[str, ...] | None = None  # labels of x's columns for messages (CSV, column specs)
    y_columns: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()  # sentences about choices made while reading (header, dropped rows)

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)

    @property
    def data(self) -> PairData:
        """The checked pair, to hand on without checking it again (``estimate_mi(pair.data, ...)``)."""
        return PairData(self.x, self.y, self.dropped)

    def summary(self) -> str:
        """One line per fact, for the CLI's printout."""
        head = (
            f"{self.source}: x = {self.x_from} {list(self.x.shape)}, y = {self.y_from} {list(self.y.shape)}, "
            f"{self.x.shape[0]} of {self.rows_read} rows used"
        )
        return "\n".join([head, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no tensors)."""
        return {
            "source": self.source,
            "x": self.x_from,
            "y": self.y_from,
            "x_shape": list(self.x.shape),
            "y_shape": list(self.y.shape),
            "rows_read": self.rows_read,
            "rows_dropped": self.n_dropped,
            "dropped_rows": list(self.dropped),
            "notes": list(self.notes),
        }


def load_pair(
    path: str | os.PathLike,
    x: str | None = None,
    y: str | None = None,
    *,
    drop_nonfinite: bool = False,
    header: bool | None = None,
) -> LoadedPair:
    """Reads paired samples ``x: [n, ...]``, ``y: [n, ...]`` (float32) from a file; see the module doc.

    ``header`` (CSV only): True or False says whether the first row names the columns; None detects
    it. ``drop_nonfinite=True`` drops rows holding NaN, inf or a missing cell (in x or y) instead of
    refusing them.

    >>> pair = load_pair("data.npz")                           # arrays 'x' and 'y'   # doctest: +SKIP
    >>> pair = load_pair("data.csv", x="0:10", y="label")      # doctest: +SKIP
    >>> pair = load_pair("x.npy", y="y.npy")                   # doctest: +SKIP
    >>> pair.x.shape, pair.summary()                           # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file or directory name, got {type(path).__name__}")
    if header is not None and not isinstance(header, bool):
        raise ValueError(f"header must be True, False or None (detect), got {header!r}")
    if not isinstance(drop_nonfinite, bool):
        raise ValueError(f"drop_nonfinite must be True or False, got {drop_nonfinite!r}")
    x, y, p = files.check_key(x, "x"), files.check_key(y, "y"), Path(path).expanduser()
    suffix = p.suffix.lower()
    if not p.exists():
        raise files.missing(p)
    if not p.is_dir() and suffix not in files.EXTENSIONS:
        raise ValueError(f"path: {p.name} has an unknown extension {suffix or '(none)'!r}; supported: {SUPPORTED}")
    if header is not None and (p.is_dir() or suffix not in (".csv", ".tsv")):
        raise ValueError(f"header applies to .csv and .tsv files only, not to {p.name}")
    row, notes = None, []
    if p.is_dir():
        read = files.read_dir(p, x, y)
    elif suffix in (".csv", ".tsv"):
        read = files.read_csv(p, x, y, header)
        notes.append(read.table.header_note)

        def row(i):  # a data row as the file's 1-based line
            return f"row {read.table.lines[i]} of {p.name}"
    elif suffix == ".npz":
        read = files.read_npz(p, x, y)
    elif suffix == ".npy":
        read = files.read_npy(p, x, y)
    else:
        read = files.read_pt(p, x, y)
    labels = read.labels

    def col(name, j, shape):
        cols = labels[0 if name == "x" else 1]
        return cols[j] if cols is not None and len(shape) == 1 else position(shape, j)

    checked = check_pair_data(read.x, read.y, drop_nonfinite=drop_nonfinite, row=row, col=col)
    n = len(read.x)
    if checked.dropped:
        name = row or (lambda i: f"row {i} (0-based)")
        shown = ", ".join(name(i) for i in checked.dropped[:5]) + (", ..." if len(checked.dropped) > 5 else "")
        notes.append(f"dropped {len(checked.dropped)} of {n} rows holding NaN, inf or missing values: {shown}")
    return LoadedPair(
        checked.x, checked.y, f"{p} ({read.kind})", read.x_from, read.y_from, n, checked.dropped, *labels, tuple(notes)
    )
