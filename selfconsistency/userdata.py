"""Your own data as an ``(x, y)`` pair: file readers and the checks every pair passes.

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
drops those rows), non-numeric or empty arrays. :func:`check_pair_data` is the same check for
arrays already in memory; :func:`check_not_constant` is for the data standardisation is fitted on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from selfconsistency import userdata_files as files
from selfconsistency.userdata_files import SUPPORTED

__all__ = ["load_pair", "LoadedPair", "check_pair_data", "PairData", "check_not_constant", "SUPPORTED"]

_F32_MAX = float(torch.finfo(torch.float32).max)
_KINDS = {"O": "Python objects", "U": "text", "S": "bytes", "c": "complex numbers", "M": "dates", "m": "durations"}


class PairData(NamedTuple):
    """Checked float32 ``x: [n, ...]``, ``y: [n, ...]`` and the 0-based rows dropped as non-finite."""

    x: Tensor
    y: Tensor
    dropped: tuple[int, ...]


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


# --- checks ------------------------------------------------------------------------------------------


def _as_rows(a, name: str) -> tuple[Tensor, Tensor]:
    """``a`` as ``[n, ...]`` in its own dtype (1-d -> ``[n, 1]``) and its non-finite mask ``[n, ...]``."""
    if isinstance(a, Tensor):
        t = a.detach()
        if t.is_complex():
            raise ValueError(f"{name} must hold real numbers, got complex dtype {t.dtype}")
    else:
        try:
            arr = np.asarray(a)
        except Exception as err:  # noqa: BLE001 - ragged lists and the like, rephrased
            raise ValueError(f"{name} must be an array or tensor of numbers, got {type(a).__name__}: {err}") from None
        if arr.dtype.kind not in "biuf":
            what = _KINDS.get(arr.dtype.kind, f"dtype {arr.dtype}")
            raise ValueError(f"{name} must hold numbers, got an array of {what} (dtype {arr.dtype})")
        t = torch.from_numpy(arr if arr.flags.c_contiguous else arr.copy())  # (ascontiguousarray makes 0-d 1-d)
    if t.dim() == 0:
        raise ValueError(f"{name} must have a leading row dimension [n, ...], got a single number")
    if t.shape[0] == 0 or t.numel() == 0:
        raise ValueError(f"{name} is empty: shape {list(t.shape)}")
    t = t.unsqueeze(-1) if t.dim() == 1 else t
    bad = ~torch.isfinite(t) if t.is_floating_point() else torch.zeros(t.shape, dtype=torch.bool)
    return t, bad


def _position(shape: Sequence[int], flat: int) -> str:
    if len(shape) == 1:
        return f"column {flat}"
    return f"position {tuple(int(i) for i in np.unravel_index(flat, tuple(shape)))}"


def _python_row(i: int) -> str:
    return f"row {i} (0-based)"


def _check(
    x,
    y,
    drop_nonfinite: bool,
    row: Callable[[int], str] = _python_row,
    col: Callable[[str, int, tuple], str] | None = None,
) -> PairData:
    """check_pair_data with messages naming rows by ``row(i)`` and columns by ``col(name, j, shape)``."""
    if not isinstance(drop_nonfinite, bool):
        raise ValueError(f"drop_nonfinite must be True or False, got {drop_nonfinite!r}")
    col = col or (lambda name, j, shape: _position(shape, j))
    (x, bad_x), (y, bad_y) = _as_rows(x, "x"), _as_rows(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got x: {x.shape[0]} and y: {y.shape[0]}")

    def first(mask: Tensor) -> tuple[int, int]:  # row and flat column of the first True
        i = int(mask.flatten(1).any(1).nonzero()[0, 0])
        return i, int(mask[i].flatten().nonzero()[0, 0])

    problems = []
    for name, t, bad in (("x", x, bad_x), ("y", y, bad_y)):
        shape = tuple(t.shape[1:])
        if t.is_floating_point() and t.dtype != torch.float32:  # float64 values float32 cannot hold
            over = (t.abs() > _F32_MAX) & ~bad
            if bool(over.any()):
                i, j = first(over)
                raise ValueError(
                    f"{name} holds values beyond float32's range (3.4e38), the first at {row(i)}, "
                    f"{col(name, j, shape)}: {float(t[i].flatten()[j]):g}"
                )
        if bool(bad.any()):
            i, j = first(bad)
            problems.append(
                f"{name} holds {int(bad.sum())} non-finite value(s) (NaN, inf or missing) in "
                f"{int(bad.flatten(1).any(1).sum())} row(s), the first at {row(i)}, {col(name, j, shape)}"
            )
    bad_rows = bad_x.flatten(1).any(1) | bad_y.flatten(1).any(1)
    if problems and not drop_nonfinite:
        n_bad = int(bad_rows.sum())
        raise ValueError(f"{'; '.join(problems)}: pass drop_nonfinite=True to drop those {n_bad} of {len(x)} rows")
    if bool(bad_rows.all()):
        raise ValueError(f"drop_nonfinite: every one of the {len(x)} rows holds a non-finite value; nothing is left")
    dropped = tuple(int(i) for i in bad_rows.nonzero().flatten())
    if dropped:
        x, y = x[~bad_rows], y[~bad_rows]
    return PairData(x.to(torch.float32), y.to(torch.float32), dropped)


def check_pair_data(x, y, *, drop_nonfinite: bool = False) -> PairData:
    """Checks paired samples and returns them as float32 ``[n, ...]`` (1-d becomes ``[n, 1]``).

    ``x``, ``y``: tensors, NumPy arrays or nested lists with the same number ``n`` of rows; booleans
    and integers become float32. Non-finite values are an error naming the first row (0-based) unless
    ``drop_nonfinite=True``, which drops every row where x or y has one (``dropped`` lists them).
    Constant columns are not checked here: see :func:`check_not_constant`.

    >>> x, y, dropped = check_pair_data([1, 2, float("nan"), 4], [[0, 1], [1, 0], [1, 1], [0, 0]], drop_nonfinite=True)
    >>> list(x.shape), list(y.shape), dropped
    ([3, 1], [3, 2], (2,))
    """
    return _check(x, y, drop_nonfinite)


def check_not_constant(x, y, *, x_columns: Sequence[str] | None = None, y_columns: Sequence[str] | None = None):
    """Refuses columns of ``x: [n, d...]`` or ``y`` that take one value on every row.

    Standardisation divides by each column's spread, so call this on the rows it is fitted on. A
    ValueError names x or y and each constant column (``x_columns``/``y_columns``: labels for
    ``[n, d]`` columns, e.g. :attr:`LoadedPair.x_columns`; else 0-based positions) and its value.
    """
    problems = []
    for name, a, labels in (("x", x, x_columns), ("y", y, y_columns)):
        t, _ = _as_rows(a, name)
        flat = t.flatten(1)
        const = (flat == flat[:1]).all(0).nonzero().flatten().tolist()
        if const:
            shape = tuple(t.shape[1:])

            def label(j, labels=labels, shape=shape):
                return labels[j] if labels is not None and len(shape) == 1 else _position(shape, j)

            shown = ", ".join(f"{label(j)} = {float(flat[0, j]):g}" for j in const[:10])
            more = f" and {len(const) - 10} more" if len(const) > 10 else ""
            problems.append(f"{name} has {len(const)} constant column(s) over {len(t)} rows: {shown}{more}")
    if problems:
        raise ValueError("; ".join(problems) + ": standardising them would divide by zero; leave them out")


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
    row, notes = _python_row, []
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
        return cols[j] if cols is not None and len(shape) == 1 else _position(shape, j)

    checked = _check(read.x, read.y, drop_nonfinite, row, col)
    n = len(read.x)
    if checked.dropped:
        shown = ", ".join(row(i) for i in checked.dropped[:5]) + (", ..." if len(checked.dropped) > 5 else "")
        notes.append(f"dropped {len(checked.dropped)} of {n} rows holding NaN, inf or missing values: {shown}")
    return LoadedPair(
        checked.x, checked.y, f"{p} ({read.kind})", read.x_from, read.y_from, n, checked.dropped, *labels, tuple(notes)
    )
