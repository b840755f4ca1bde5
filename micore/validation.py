"""Input checks shared by every estimator and every entry point: bad input gets a ValueError naming the argument.

Two kinds of check:

* an estimator's inputs (:func:`check_pair`, :func:`check_samples`): the shapes it was built for, finite
  floats, one device;
* a user's data (:func:`check_pair_data`, the one paired-data check of every path that takes arrays from a
  user: ``estimate_mi``, ``load_pair``, ``selfconsistency estimate``): numbers in rows, as many rows in
  ``x`` as in ``y``, finite (or those rows dropped), within float32; and :func:`constant_columns`, the one
  rule for a column that cannot be standardised (used before training and by the standardiser).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Shape",
    "as_shape",
    "check_positive_int",
    "check_positive_float",
    "as_float_tensor",
    "check_samples",
    "check_pair",
    "PairData",
    "as_rows",
    "position",
    "check_pair_data",
    "constant_columns",
    "check_not_constant",
    "drop_constant_columns",
    "shared_columns",
]

Shape = tuple[int, ...]


def as_shape(dim: int | Sequence[int], name: str) -> Shape:
    """``20`` -> ``(20,)``; ``(1, 28, 28)`` stays; anything else is a ValueError."""
    if isinstance(dim, bool):
        raise ValueError(f"{name} must be a positive int or a shape tuple, got {dim!r}")
    if isinstance(dim, int):
        dims: tuple = (dim,)
    elif isinstance(dim, (tuple, list, torch.Size)):
        dims = tuple(dim)
    else:
        raise ValueError(f"{name} must be a positive int or a shape tuple, got {dim!r}")
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"{name} must contain positive ints, got {dim!r}")
    return dims


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive_float(value, name: str, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a positive{'' if allow_inf else ' finite'} number, got {value!r}")
    return value


def as_float_tensor(t, name: str, dtype: torch.dtype | None = None) -> Tensor:
    """Converts integer/boolean tensors (and arrays) to floating point; rejects the rest."""
    if not isinstance(t, Tensor):
        try:
            t = torch.as_tensor(t)
        except Exception as err:  # noqa: BLE001 - rephrased as our error
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}") from err
    if t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    elif dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t


def check_samples(t, name: str, shape: Shape | None, dtype: torch.dtype | None = None) -> Tensor:
    """Checks one batch ``[n, *shape]``: floating point, finite, trailing shape as declared."""
    t = as_float_tensor(t, name, dtype)
    if t.dim() < 1:
        raise ValueError(f"{name} must have a leading batch dimension, got a scalar")
    if shape is not None:
        if t.dim() == 1 and shape == (1,):
            t = t.unsqueeze(-1)
        if tuple(t.shape[1:]) != tuple(shape):
            raise ValueError(
                f"{name} must have shape [n, {', '.join(map(str, shape))}] (the estimator was built "
                f"for that), got {list(t.shape)}"
            )
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).flatten(1).any(1).sum()) if t.dim() > 1 else int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} contains NaN or infinite values ({bad} of {t.shape[0]} samples)")
    return t


def check_pair(
    x, y, x_shape: Shape | None, y_shape: Shape | None, dtype: torch.dtype | None = None, min_n: int = 2
) -> tuple[Tensor, Tensor]:
    """Checks paired samples ``x: [n, *x_shape]``, ``y: [n, *y_shape]`` with ``n >= min_n``."""
    x = check_samples(x, "x", x_shape, dtype)
    y = check_samples(y, "y", y_shape, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < min_n:
        raise ValueError(f"x and y need at least {min_n} samples, got {x.shape[0]}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
    return x, y


# ---------------------------------------------------------------- a user's paired data
_F32_MAX = float(torch.finfo(torch.float32).max)
_KINDS = {"O": "Python objects", "U": "text", "S": "bytes", "c": "complex numbers", "M": "dates", "m": "durations"}


class PairData(NamedTuple):
    """Checked float32 ``x: [n, ...]``, ``y: [n, ...]`` and the 0-based rows dropped as non-finite."""

    x: Tensor
    y: Tensor
    dropped: tuple[int, ...]


def as_rows(a, name: str) -> tuple[Tensor, Tensor]:
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


def position(shape: Sequence[int], flat: int) -> str:
    if len(shape) == 1:
        return f"column {flat}"
    return f"position {tuple(int(i) for i in np.unravel_index(flat, tuple(shape)))}"


def _python_row(i: int) -> str:
    return f"row {i} (0-based)"


def check_pair_data(
    x,
    y,
    *,
    drop_nonfinite: bool = False,
    row: Callable[[int], str] | None = None,
    col: Callable[[str, int, tuple], str] | None = None,
) -> PairData:
    """Checks a user's paired samples and returns them as float32 ``[n, ...]`` (1-d becomes ``[n, 1]``).

    ``x``, ``y``: tensors (detached), NumPy arrays or nested lists with the same number ``n`` of rows;
    booleans and integers become float32. Non-finite values are an error naming the first row (0-based)
    unless ``drop_nonfinite=True``, which drops every row where x or y has one (``dropped`` lists them).
    ``row(i)`` and ``col(name, j, shape)`` name a row and a column in messages (a file reader gives its
    line numbers and column names). Constant columns are not checked here: see :func:`constant_columns`.

    >>> x, y, dropped = check_pair_data([1, 2, float("nan"), 4], [[0, 1], [1, 0], [1, 1], [0, 0]], drop_nonfinite=True)
    >>> list(x.shape), list(y.shape), dropped
    ([3, 1], [3, 2], (2,))
    """
    row = row or _python_row
    if not isinstance(drop_nonfinite, bool):
        raise ValueError(f"drop_nonfinite must be True or False, got {drop_nonfinite!r}")
    col = col or (lambda name, j, shape: position(shape, j))
    (x, bad_x), (y, bad_y) = as_rows(x, "x"), as_rows(y, "y")
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


def constant_columns(t: Tensor) -> list[int]:
    """The flat positions of the columns of ``t: [n, ...]`` that take one value on every row: the one rule for
    a column standardisation cannot divide by (its spread is zero) and that carries no information."""
    flat = t.flatten(1)
    return (flat == flat[:1]).all(0).nonzero().flatten().tolist()


def check_not_constant(x, y, *, x_columns: Sequence[str] | None = None, y_columns: Sequence[str] | None = None):
    """Refuses columns of ``x: [n, d...]`` or ``y`` that take one value on every row.

    Standardisation divides by each column's spread, so call this on the rows it is fitted on. A
    ValueError names x or y and each constant column (``x_columns``/``y_columns``: labels for
    ``[n, d]`` columns, e.g. ``LoadedPair.x_columns``; else 0-based positions) and its value.
    """
    problems = []
    for name, a, labels in (("x", x, x_columns), ("y", y, y_columns)):
        t, _ = as_rows(a, name)
        flat = t.flatten(1)
        const = constant_columns(t)
        if const:
            shape = tuple(t.shape[1:])

            def label(j, labels=labels, shape=shape):
                return labels[j] if labels is not None and len(shape) == 1 else position(shape, j)

            shown = ", ".join(f"{label(j)} = {float(flat[0, j]):g}" for j in const[:10])
            more = f" and {len(const) - 10} more" if len(const) > 10 else ""
            problems.append(f"{name} has {len(const)} constant column(s) over {len(t)} rows: {shown}{more}")
    if problems:
        raise ValueError("; ".join(problems) + ": standardising them would divide by zero; leave them out")


def drop_constant_columns(
    x: Tensor, y: Tensor, *, x_columns: Sequence[str] | None = None, y_columns: Sequence[str] | None = None
) -> tuple[Tensor, Tensor, list[str]]:
    """``(x, y, notes)``: vectors ``[n, d]`` without the columns that take one value on every row (they carry no
    information and standardisation cannot divide by their zero spread), a note for each side that lost some
    (``x_columns``/``y_columns`` label them). Images are returned as they are. A side left with no column at all
    is a ``ValueError``: there is nothing to estimate from."""
    out, notes = [], []
    for name, t, labels in (("x", x, x_columns), ("y", y, y_columns)):
        const = constant_columns(t) if t.dim() == 2 else []
        if len(const) == t.shape[-1] and t.dim() == 2:
            raise ValueError(f"{name}: every column is constant over the {t.shape[0]} rows: there is no information")
        if const:
            keep = [j for j in range(t.shape[1]) if j not in set(const)]
            shown = ", ".join(str(labels[j]) if labels is not None else str(j) for j in const[:10])
            more = f" and {len(const) - 10} more" if len(const) > 10 else ""
            notes.append(f"{name}: column(s) {shown}{more} are constant on all {t.shape[0]} rows and were left out")
            t = t[:, keep]
        out.append(t)
    return out[0], out[1], notes


def shared_columns(x: Tensor, y: Tensor) -> list[tuple[int, int]]:
    """``(i, j)`` for every column ``i`` of ``x`` equal, row for row, to column ``j`` of ``y`` (flattened samples;
    a non-constant column only): with one, ``y`` determines part of ``x`` exactly and the MI is infinite."""
    xf, yf = x.flatten(1), y.flatten(1)
    if xf.shape[0] < 2:
        return []
    xs = [i for i in range(xf.shape[1]) if not bool((xf[:, i] == xf[0, i]).all())]
    ys = [j for j in range(yf.shape[1]) if not bool((yf[:, j] == yf[0, j]).all())]
    if not xs or not ys:
        return []
    # compare fingerprints first (one matrix product), then confirm exactly
    probe = torch.randn(xf.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fx, fy = probe @ xf[:, xs].double(), probe @ yf[:, ys].double()
    close = (fx[:, None] - fy[None, :]).abs() <= 1e-9 * (fx.abs()[:, None] + 1.0)
    return [(xs[a], ys[b]) for a, b in close.nonzero().tolist() if torch.equal(xf[:, xs[a]], yf[:, ys[b]])]
