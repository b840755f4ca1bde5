"""Input checks shared by every estimator: bad input gets a ValueError naming the argument."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

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
