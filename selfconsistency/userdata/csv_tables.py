"""Columns of a table chosen by a short text (``"0:10"``, ``"3"``, ``"age,height"``) and the CSV reader.

Part of :mod:`selfconsistency.userdata` (use :func:`~selfconsistency.userdata.load_pair`); split out
to keep each file short. Positions in column specs are 0-based with the end of a range excluded, as
in Python (``"0:10"`` is the first ten columns); row and column numbers in messages about a CSV file
are 1-based, as a spreadsheet or a text editor shows them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# cells read as a missing value (NaN), reported by the non-finite check like a NaN in an array
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def column_letter(i: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA": the column as a spreadsheet names it."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def shown(names: Sequence[str], limit: int = 12) -> str:
    """``'a', 'b', ... (40 in all)``: a list of names short enough for a message."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more


def select_columns(spec: str, n: int, names: Sequence[str] | None, arg: str, where: str) -> list[int]:
    """The 0-based column positions a spec selects among ``n`` columns, in the order written.

    ``spec`` is comma-separated items, each a position (``"3"``, ``"-1"``), a range (``"0:10"``,
    ``":5"``, ``"10:"``; end excluded) or, when ``names`` are known, a column name or a range of names
    (``"age:weight"``, both ends included, as pandas' ``.loc``). An item that is both a name and a
    different position is refused as ambiguous. ``arg`` names the argument and
    ``where`` the table in messages.

    >>> select_columns("0:2,c", 4, ["a", "b", "c", "d"], "x", "t.csv")
    [0, 1, 2]
    """
    index = {}
    for i, name in enumerate(names or ()):
        index.setdefault(name, []).append(i)
    if spec.strip() in index and ("," in spec or ":" in spec):  # a name that itself holds ',' or ':'
        items = [spec.strip()]
    else:
        items = [item.strip() for item in spec.split(",")]
    out: list[int] = []
    for item in items:
        if not item:
            raise ValueError(f"{arg}: column list {spec!r} has an empty item")
        out.extend(_select_item(item, n, index, arg, where))
    repeated = sorted({c for c in out if out.count(c) > 1})
    if repeated:
        raise ValueError(f"{arg}: column list {spec!r} selects column position(s) {repeated} more than once")
    return out


def _select_item(item: str, n: int, index: dict[str, list[int]], arg: str, where: str) -> list[int]:
    span = f"{where} has {n} columns, positions 0 to {n - 1} (0-based; a range 0:{n} is all of them)"
    if item in index:
        hits = index[item]
        if len(hits) > 1:
            raise ValueError(f"{arg}: {where} has {len(hits)} columns named {item!r} (positions {hits}); use positions")
        if INTEGER.match(item) and -n <= int(item) < n and int(item) % n != hits[0]:
            raise ValueError(
                f"{arg}: {item!r} is ambiguous in {where}: the name of the column at position {hits[0]} and a "
                f"position itself; write {int(item)}:{int(item) + 1} for the position"
            )
        return hits
    if ":" in item:
        a, _, b = (part.strip() for part in item.partition(":"))
        if (a in index or b in index) and not INTEGER.match(a) and not INTEGER.match(b):
            return _name_range(item, a, b, n, index, arg, where)
        if not (INTEGER.match(a) or not a) or not (INTEGER.match(b) or not b):
            raise ValueError(f"{arg}: {item!r} is not a column range like '0:10' (0-based, end excluded) or 'a:d'")
        start = int(a) if a else 0
        stop = int(b) if b else n
        start, stop = start + n if start < 0 else start, stop + n if stop < 0 else stop
        if not 0 <= start < stop <= n:  # refused, not clipped as Python would: a silent short x is worse
            raise ValueError(f"{arg}: column range {item!r} does not fit: {span}")
        return list(range(start, stop))
    if INTEGER.match(item):
        pos = int(item)
        if not -n <= pos < n:
            raise ValueError(f"{arg}: column {pos} does not exist: {span}")
        return [pos % n]
    if index:
        raise ValueError(f"{arg}: no column named {item!r} in {where}; its columns are {shown(list(index))}")
    raise ValueError(
        f"{arg}: {item!r} is not a column position or range, and {where} has no names for its columns ({span})"
    )


def _name_range(item: str, a: str, b: str, n: int, index: dict[str, list[int]], arg: str, where: str) -> list[int]:
    """``"age:weight"``: from one named column to another, both included (as pandas' ``.loc``)."""
    ends = []
    for end, default in ((a, 0), (b, n - 1)):
        if end and end not in index:
            raise ValueError(
                f"{arg}: no column named {end!r} in {where} (in {item!r}); its columns are {shown(list(index))}"
            )
        if end and len(index[end]) > 1:
            raise ValueError(f"{arg}: {where} has {len(index[end])} columns named {end!r}; use positions")
        ends.append(index[end][0] if end else default)
    if ends[0] > ends[1]:
        raise ValueError(f"{arg}: column range {item!r} runs backwards (positions {ends[0]} to {ends[1]})")
    return list(range(ends[0], ends[1] + 1))


@dataclass
class Table:
    """A CSV file's data rows as text, with where each came from."""

    rows: list[list[str]]  # data rows, header excluded
    lines: list[int]  # the 1-based file line of each data row
    names: list[str] | None  # the header's cells, or None
    header_note: str  # how the header was decided, for the reader's notes


def _numeric(cell: str) -> bool:
    s = cell.strip()
    if s.lower() in MISSING:
        return True
    try:
        float(s)
    except ValueError:
        return False
    return True


def _numbers_columns(row: list[str]) -> bool:
    """True for a first row like ``0,1,2`` or ``,0,1,2`` (pandas' default names): a header, not data."""
    cells = [c.strip() for c in row]
    if cells and cells[0] == "":
        cells = cells[1:]
    return len(cells) >= 2 and cells in ([str(i) for i in range(len(cells))], [str(i + 1) for i in range(len(cells))])


def _delimiter(path: Path, first: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_table(path: Path, header: bool | None) -> Table:
    """Reads ``path`` as text rows; blank lines and ``#`` comment lines are skipped.

    ``header=None`` detects it: the first row is a header when one of its cells is not a number
    (empty and NA-like cells count as numbers, missing), or when it numbers the columns ``0, 1, ...``
    as pandas writes default names. A leading comment line with as many fields as the data and
    non-numeric cells (``np.savetxt(..., header="a,b")``) is the header when the first row is not.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's byte-order mark
            text = f.read()
    except UnicodeDecodeError as err:
        raise ValueError(f"path: {path} is not UTF-8 text (byte {err.start}): is it really a CSV file?") from None
    except OSError as err:  # unreadable (permissions, a folder named *.csv)
        raise ValueError(f"path: {path} cannot be read: {err.strerror or err}") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    reader = csv.reader(lines, delimiter=_delimiter(path, first))
    rows, where, comment = [], [], None
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if row[0].lstrip().startswith("#"):
                if not rows:  # the last comment before the data: np.savetxt's header
                    comment = [row[0].lstrip()[1:].strip(), *row[1:]]
                continue
            rows.append(row)
            where.append(reader.line_num)
    except csv.Error as err:
        raise ValueError(f"path: {path} is not a readable CSV file (line {reader.line_num}: {err})") from None
    if not rows:
        raise ValueError(f"path: {path} holds no data rows")
    names, note = None, "no header row"
    if header is True or (header is None and (not all(map(_numeric, rows[0])) or _numbers_columns(rows[0]))):
        names, note = [c.strip() for c in rows[0]], f"row {where[0]} read as the header"
        rows, where = rows[1:], where[1:]
        if header is None:
            note += " (detected; pass header=False if it is data)"
        if not rows:
            raise ValueError(f"path: {path} holds a header row and no data rows")
    elif header is None and comment and len(comment) == len(rows[0]) and not all(map(_numeric, comment)):
        names, note = [c.strip() for c in comment], "the comment line before the data read as the header"
    width = len(names) if names is not None else len(rows[0])
    for row, line in zip(rows, where, strict=True):
        if len(row) != width:
            raise ValueError(
                f"path: row {line} of {path.name} has {len(row)} fields where the "
                f"{'header' if names is not None else 'first row'} has {width}"
            )
    return Table(rows, where, names, note)


def column_label(table: Table, c: int) -> str:
    """Column position ``c`` as a spreadsheet user sees it: ``"column 3 (C, 'age')"``."""
    name = f", {table.names[c]!r}" if table.names is not None else ""
    return f"column {c + 1} ({column_letter(c)}{name})"


def table_numbers(table: Table, cols: list[int], arg: str, path: Path) -> np.ndarray:
    """The selected columns as float64 ``[rows, len(cols)]``; missing cells become NaN.

    A cell that is not a number raises a ValueError naming its 1-based row and column.
    """
    cells = [[row[c] for c in cols] for row in table.rows]
    try:  # fast path: NumPy parses every cell itself
        return np.array(cells, dtype=np.float64).reshape(len(cells), len(cols))
    except ValueError:
        pass
    out = np.empty((len(cells), len(cols)))
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            try:
                out[i, j] = float(cell)
            except ValueError:
                if cell.strip().lower() not in MISSING:
                    raise ValueError(
                        f"path: row {table.lines[i]}, {column_label(table, cols[j])} of {path.name} is not a "
                        f"number: {cell!r} (the column is part of {arg})"
                    ) from None
                out[i, j] = np.nan
    return out
