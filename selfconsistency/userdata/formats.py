"""Readers for :func:`~selfconsistency.userdata.load_pair`: one per format, each returning a :class:`Read`.

The conventions (what ``x`` and ``y`` mean for each format) are documented in :mod:`.load`. Readers only
find the arrays; the checks (rows, finiteness, dtype) are :func:`micore.validation.check_pair_data`'s.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from . import csv_tables as tab

EXTENSIONS = (".npz", ".npy", ".csv", ".tsv", ".pt", ".pth")
SUPPORTED = ".npz, .npy, .csv, .tsv, .pt, .pth, or a directory of .npy files"


class Read(NamedTuple):
    """What a format reader found, before the checks."""

    x: Any  # array or tensor [n, ...]
    y: Any
    x_from: str  # what x is in the file: "key 'x'", "columns 0:3", "file x.npy"
    y_from: str
    kind: str  # the format, in words
    labels: tuple = (None, None)  # labels of x's and y's columns (CSV, column specs), for messages
    table: tab.Table | None = None  # a CSV's rows, for row numbers in messages


def missing(p: Path, arg: str = "path", note: str = "") -> ValueError:
    """The error for a path that does not exist, listing its folder (closest names first)."""
    folder = p.parent
    if not folder.is_dir():
        return ValueError(f"{arg}: {p} does not exist, nor does its folder {folder}")
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    close = difflib.get_close_matches(p.name, names, n=3, cutoff=0.6)
    shown = close + [n for n in names if n not in close][: max(0, 12 - len(close))]
    listing = ", ".join(shown) + (f", ... ({len(names)} in all)" if len(names) > len(shown) else "")
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ValueError(f"{arg}: {p} does not exist{note}; {folder} holds: {listing or 'nothing'}{hint}")


def check_key(value, name: str) -> str | None:
    """x or y as given to load_pair: a str (an int becomes one), or None for the format's default."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{name} must be a key, a column spec or a file name (a str), got {type(value).__name__}")


def _keys(keys: list[str], x: str | None, y: str | None, path: Path) -> tuple[str, str]:
    """The keys of x and y; unset ones: "x"/"y" if both exist, else the only two arrays in order."""
    if x is None and y is None:
        if "x" in keys and "y" in keys:
            return "x", "y"
        if len(keys) == 2:
            return keys[0], keys[1]
        raise ValueError(f"x: name the arrays of x and y in {path.name}; it holds {_shown_keys(keys)}")
    for name, key in (("x", x), ("y", y)):
        if key is None:
            raise ValueError(f"{name}: name the array of {name} in {path.name} too; it holds {_shown_keys(keys)}")
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{name}: no array {key!r} in {path.name}{hint}; it holds {_shown_keys(keys)}")
    return x, y


def _shown_keys(keys: list[str]) -> str:
    return tab.shown(keys, 20) if keys else "no arrays"


def _npy(p: Path, arg: str) -> np.ndarray:
    if not p.is_file():
        raise missing(p, arg)
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as err:
        if "Object arrays" in str(err):
            raise ValueError(f"{arg}: {p} holds Python objects (dtype object), not numbers") from None
        raise ValueError(f"{arg}: {p} is not a .npy file NumPy can read ({err})") from None
    except Exception as err:  # noqa: BLE001 - corrupt files raise many kinds; rephrased
        raise ValueError(f"{arg}: {p} is not a .npy file NumPy can read ({type(err).__name__}: {err})") from None


def read_npz(p: Path, x, y) -> Read:
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign file raises many kinds; rephrased
        raise ValueError(f"path: {p} is not a .npz file NumPy can read ({type(err).__name__}: {err})") from None
    if isinstance(npz, np.ndarray):  # a .npy saved under a .npz name: read it as one
        return _columns_of(npz, p, x, y, "array", "NumPy .npy")
    with npz:
        kx, ky = _keys(list(npz.files), x, y, p)
        arrays = []
        for key in (kx, ky):
            try:
                arrays.append(npz[key])
            except Exception as err:  # noqa: BLE001 - object arrays and corrupt members; rephrased
                what = (
                    "holds Python objects (dtype object)" if "Object arrays" in str(err) else f"is unreadable ({err})"
                )
                raise ValueError(f"path: array {key!r} in {p} {what}") from None
    return Read(arrays[0], arrays[1], f"key {kx!r}", f"key {ky!r}", "NumPy .npz")


def read_dir(p: Path, x, y) -> Read:
    keys = sorted(f.stem for f in p.glob("*.npy"))
    if not keys:
        raise ValueError(f"path: the directory {p} holds no .npy files (a directory is read as one .npy per array)")
    kx, ky = _keys(
        keys, None if x is None else x.removesuffix(".npy"), None if y is None else y.removesuffix(".npy"), p
    )
    return Read(_npy(p / f"{kx}.npy", "x"), _npy(p / f"{ky}.npy", "y"), f"file {kx}.npy", f"file {ky}.npy", "directory")


def _columns_of(a, p: Path, x, y, what: str, kind: str) -> Read:
    """x and y as column specs of one array ``a: [n, d, ...]`` (axis 1)."""
    shape = list(a.shape)
    if len(shape) < 2:
        raise ValueError(f"path: {p.name} holds one {what} of shape {shape}; x and y as its columns need 2-d or more")
    if x is None or y is None:
        raise ValueError(
            f"{'x' if x is None else 'y'}: {p.name} holds one {what} of shape {shape}; give x and y as column specs, "
            f"e.g. x='0:10', y='10:20'{', or y as the path of a second .npy file' if what == 'array' else ''}"
        )
    where = f"{p.name} (shape {shape})"
    cx, cy = tab.select_columns(x, shape[1], None, "x", where), tab.select_columns(y, shape[1], None, "y", where)
    labels = tuple(tuple(f"column {c}" for c in cols) for cols in (cx, cy))
    return Read(a[:, cx], a[:, cy], f"columns {x}", f"columns {y}", kind, labels)


def read_npy(p: Path, x, y) -> Read:
    if y is not None and y.lower().endswith(".npy"):  # x.npy + the path of y.npy
        if x is not None:
            raise ValueError(f"x: DATA {p.name} is the x array itself when y names a second .npy file; leave x unset")
        py = Path(y).expanduser()
        if not py.is_absolute() and not py.exists():  # then beside DATA, where it usually is
            if not (p.parent / py).exists():
                raise missing(p.parent / py, "y", f" (nor does {py}, relative to the working directory)")
            py = p.parent / py
        return Read(_npy(p, "path"), _npy(py, "y"), f"file {p.name}", f"file {py}", "NumPy .npy pair")
    return _columns_of(_npy(p, "path"), p, x, y, "array", "NumPy .npy")


_UNSAFE = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_pt(p: Path, x, y) -> Read:
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)  # never runs code from the file
    except Exception as err:  # noqa: BLE001 - rephrased as our error
        found = _UNSAFE.search(str(err))
        if found:
            raise ValueError(
                f"path: {p} holds a {found.group(1)} object, which torch.load(weights_only=True) refuses to "
                f"unpickle (it could run code); save tensors instead: torch.save({{'x': x, 'y': y}}, path)"
            ) from None
        raise ValueError(f"path: {p} is not a file torch.save wrote ({type(err).__name__}: {err})") from None
    if isinstance(obj, Tensor):
        return _columns_of(obj, p, x, y, "tensor", "PyTorch")
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        kx, ky = _keys(keys, x, y, p)
        values = {str(k): v for k, v in obj.items()}
        arrays = [_tensor(values[k], name, f"key {k!r} of {p.name}") for name, k in (("x", kx), ("y", ky))]
        return Read(arrays[0], arrays[1], f"key {kx!r}", f"key {ky!r}", "PyTorch")
    if isinstance(obj, (tuple, list)):
        n = len(obj)
        ix, iy = ("0", "1") if x is None and y is None and n == 2 else (x, y)
        for name, i in (("x", ix), ("y", iy)):
            if i is None or not tab.INTEGER.match(i) or not -n <= int(i) < n:
                raise ValueError(f"{name}: {p.name} holds a {type(obj).__name__} of {n}; give a position 0 to {n - 1}")
        arrays = [_tensor(obj[int(i)], name, f"item {i} of {p.name}") for name, i in (("x", ix), ("y", iy))]
        return Read(arrays[0], arrays[1], f"item {ix}", f"item {iy}", "PyTorch")
    raise ValueError(f"path: {p} holds a {type(obj).__name__}; expected a tensor, a dict of tensors or a tuple of them")


def _tensor(v, name: str, where: str) -> Tensor:
    if not isinstance(v, Tensor):
        raise ValueError(f"{name}: {where} holds a {type(v).__name__}, not a tensor")
    return v


def read_csv(p: Path, x, y, header) -> Read:
    table = tab.read_table(p, header)
    width = len(table.names) if table.names is not None else len(table.rows[0])
    where = f"{p.name} ({width} columns)"
    for name, spec in (("x", x), ("y", y)):
        if spec is None:
            names = f"; its names are {tab.shown(table.names)}" if table.names else ""
            raise ValueError(f"{name}: name the columns of {name} in {where}, e.g. {name}='0:10'{names}")
    cols = [tab.select_columns(spec, width, table.names, name, where) for name, spec in (("x", x), ("y", y))]
    arrays = [tab.table_numbers(table, c, name, p) for name, c in zip(("x", "y"), cols, strict=True)]
    labels = tuple(tuple(tab.column_label(table, c) for c in cs) for cs in cols)
    return Read(arrays[0], arrays[1], f"columns {x}", f"columns {y}", "CSV", labels, table)
