"""The three settings of Song & Ermon Sec. 6.2 (Figure 3) and their transform variants (App. B.2).

A *measure* is one MI quantity an estimator is trained for, ``(measure, t)``:

* ``("rows", t)``: :math:`I(X; Y_t)`, ``Y_t`` = ``X`` with all but the top ``t`` rows zeroed
  (``t = H`` is :math:`I(X; X)`);
* ``("rows-dp", t)``: :math:`I([X, X]; [Y_t, Y_{t-3}])` — the second view is a processing
  :math:`h(Y_t)` of the first (``t2 = t1 - offset``, offset 3 in the paper);
* ``("rows-add", t)``: :math:`I([X_1, X_2]; [Y_{1,t}, Y_{2,t}])` with independent images;
* ``(T, None)``, ``(T-dp, None)``, ``(T-add, None)`` for ``T`` in scaling, rotation, translation:
  the same with ``Y = T(X)`` a random transform per image, and :math:`h(Y) = T'(Y)` a fresh draw.

A *ratio* divides a measure by its reference (Figures 4–6, Table 3); the references (``("rows", H)``
and ``("rows", t)``) are measures too, so they are trained once and shared between settings.
Pairs ``[A, B]`` are stacked on channels, as in the paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .transforms import TRANSFORMS, keep_top_rows, random_affine

__all__ = [
    "SETTINGS",
    "ALIASES",
    "Ratio",
    "expand_settings",
    "plan_ratios",
    "measure_pairs",
    "measure_shapes",
    "default_rows",
]

SETTINGS = ("baseline", "data-processing", "additivity") + TRANSFORMS
ALIASES = {"masking": ("baseline", "data-processing", "additivity"), "transforms": TRANSFORMS, "all": SETTINGS}
IDEAL = {"baseline": None, "data-processing": 1.0, "additivity": 2.0}


@dataclass(frozen=True)
class Ratio:
    """One point of a figure: ``numerator / denominator`` (each a ``(measure, t)``) for ``setting``.

    ``property`` is ``"baseline"``, ``"data-processing"`` or ``"additivity"``; ``t`` is the rows
    used (``None`` for the transforms); ``ideal`` the value a consistent estimator gives (``None``
    for the baseline curve, judged by its shape).
    """

    setting: str
    property: str
    t: int | None
    numerator: tuple[str, int | None]
    denominator: tuple[str, int | None]
    ideal: float | None


def expand_settings(settings) -> tuple[str, ...]:
    """``("masking", "rotation")`` -> the setting names, in :data:`SETTINGS` order, without repeats."""
    if isinstance(settings, str):
        settings = (settings,)
    chosen: set[str] = set()
    for s in settings:
        if s in ALIASES:
            chosen.update(ALIASES[s])
        elif s in SETTINGS:
            chosen.add(s)
        else:
            raise ValueError(f"unknown setting {s!r}; choose from {SETTINGS} or {tuple(ALIASES)}")
    if not chosen:
        raise ValueError("settings must name at least one setting")
    return tuple(s for s in SETTINGS if s in chosen)


def default_rows(height: int) -> tuple[int, ...]:
    """Evenly spaced row counts from 0 to ``height``, every ``max(2, height // 7)`` rows.

    8×8 digits: 0, 2, 4, 6, 8; MNIST: 0, 4, ..., 28; CIFAR-10: 0, 4, ..., 32.
    """
    step = max(2, height // 7)
    return tuple(range(0, height, step)) + (height,)


def _check_rows(rows: Iterable[int], height: int) -> tuple[int, ...]:
    out = []
    for t in rows:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= height:
            raise ValueError(f"rows must be ints in [0, {height}] (the image height), got {t!r}")
        out.append(t)
    if not out:
        raise ValueError("rows must name at least one row count")
    return tuple(sorted(set(out)))


def plan_ratios(settings: Sequence[str], rows: Iterable[int], height: int, dp_offset: int = 3) -> list[Ratio]:
    """Every ratio the chosen settings report.

    The baseline is reported at every ``t`` in ``rows`` and always at ``t = H`` (its reference);
    data processing at every ``t >= dp_offset`` (so ``t - dp_offset >= 0``), additivity at every
    ``t > 0`` (at ``t = 0`` both sides are 0 and the ratio is undefined).
    """
    if isinstance(dp_offset, bool) or not isinstance(dp_offset, int) or not 1 <= dp_offset <= height:
        raise ValueError(f"dp_offset must be an int in [1, {height}], got {dp_offset!r}")
    rows = _check_rows(rows, height)
    full = ("rows", height)
    ratios = []
    for s in expand_settings(settings):
        if s == "baseline":
            for t in sorted(set(rows) | {height}):
                ratios.append(Ratio(s, "baseline", t, ("rows", t), full, None))
        elif s == "data-processing":
            ratios += [Ratio(s, s, t, ("rows-dp", t), ("rows", t), 1.0) for t in rows if t >= dp_offset]
        elif s == "additivity":
            ratios += [Ratio(s, s, t, ("rows-add", t), ("rows", t), 2.0) for t in rows if t > 0]
        else:
            ratios.append(Ratio(s, "data-processing", None, (f"{s}-dp", None), (s, None), 1.0))
            ratios.append(Ratio(s, "additivity", None, (f"{s}-add", None), (s, None), 2.0))
    if not ratios:
        raise ValueError(
            f"no ratio to report for settings {tuple(settings)} with rows {rows}: data processing needs "
            f"rows >= {dp_offset}, additivity rows > 0"
        )
    return ratios


def measure_shapes(measure: str, image_shape: tuple[int, int, int]) -> tuple[tuple, tuple]:
    """``(x_shape, y_shape)`` of a measure: pairs double the channels."""
    c, h, w = image_shape
    pair = measure.endswith(("-dp", "-add"))
    shape = (2 * c, h, w) if pair else (c, h, w)
    return shape, shape


def measure_pairs(
    measure: str, t: int | None, images: Tensor, generator: torch.Generator, dp_offset: int = 3
) -> tuple[Tensor, Tensor]:
    """The paired samples ``(x, y)`` of a measure, built from ``images: [n, C, H, W]`` (one split).

    ``generator`` (on the images' device) draws the partner images of the additivity pairs (a random
    permutation of the split) and the per-image transform parameters, so a cell is reproducible.
    For the transforms, ``Y = T(X)`` is drawn first, so a measure and its ``-dp``/``-add``
    variants share ``T`` on the same images when built from equally seeded generators.
    """
    base, _, variant = measure.partition("-")
    if base == "rows":
        if t is None:
            raise ValueError(f"measure {measure!r} needs the rows t")
        if variant == "":
            return images, keep_top_rows(images, t)
        if variant == "dp":
            x = torch.cat([images, images], dim=1)
            y1 = keep_top_rows(images, t)
            return x, torch.cat([y1, keep_top_rows(y1, max(t - dp_offset, 0))], dim=1)
        if variant == "add":
            other = images[torch.randperm(len(images), generator=generator, device=generator.device)]
            return (
                torch.cat([images, other], dim=1),
                torch.cat([keep_top_rows(images, t), keep_top_rows(other, t)], dim=1),
            )
    elif base in TRANSFORMS:
        y1 = random_affine(images, base, generator)
        if variant == "":
            return images, y1
        if variant == "dp":
            return torch.cat([images, images], dim=1), torch.cat([y1, random_affine(y1, base, generator)], dim=1)
        if variant == "add":
            perm = torch.randperm(len(images), generator=generator, device=generator.device)
            other = images[perm]
            return torch.cat([images, other], dim=1), torch.cat([y1, y1[perm]], dim=1)
    raise ValueError(f"unknown measure {measure!r}")
