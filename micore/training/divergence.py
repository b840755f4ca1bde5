"""How a training tells a diverged run: one check for single runs and for every member of an ensemble.

A run diverged at the first step where the loss or the recorded batch estimate is NaN/inf, the
batch estimate lies outside ``estimator.value_range(batch_size)`` (what the bound's formula makes
impossible: InfoNCE above :math:`\\log n`; DV below -100 nats, which needs a critic claiming a
log-ratio past 50 nats, see :mod:`discmi.bounds`), or the loss exceeds :data:`LOSS_GROWTH` times its
scale before the first update. With a too-large learning rate MINE, DV and InfoNCE otherwise end in
finite garbage (-1e5 nats and sinking, or a dead critic giving 0). The check runs on the device
every ``check_every`` steps, one synchronisation each, over a window of steps (and over all members
of an ensemble at once); :class:`~micore.training.TrainingDiverged` names the step, says what was
impossible, and carries the history before it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .history import TrainingHistory

__all__ = ["DivergenceWatch", "bad_steps", "LOSS_GROWTH", "LOSS_FLOOR", "RANGE_SLACK"]

# A loss whose magnitude exceeds LOSS_GROWTH x max(|loss before the first update|, LOSS_FLOOR) has exploded.
# The loss at step 0 is taken before any update, so a too-large learning rate cannot inflate it; the floor
# (1 nat) stands in for losses that start near 0 (every bound's value with a near-constant critic). Healthy
# runs stay far below: 2.5x in the short trainings, 13x on the seed's staircase at 100 steps per level,
# 167x for NWJ over the full 20k-step Gaussian staircase (DV gets to 3261x there at MI 10, long after its
# batch value left its range at MI 8). See tests/micore/training/test_divergence.py.
LOSS_GROWTH, LOSS_FLOOR = 1e4, 1.0
RANGE_SLACK = 1e-3  # nats beyond an end of value_range allowed for float rounding (InfoNCE at log n)


def bad_steps(loss: Tensor, values: Tensor | None, loss_cap: Tensor, low: float, high: float) -> Tensor:
    """Which steps of a window diverged: ``loss: [w, *members]``, ``values`` likewise or ``None`` (only the
    loss is checked), ``loss_cap: [*members]`` -> bool ``[w, *members]``, on the device (no sync)."""
    bad = ~torch.isfinite(loss) | (loss.abs() > loss_cap)
    if values is not None:
        bad |= ~torch.isfinite(values) | (values < low - RANGE_SLACK) | (values > high + RANGE_SLACK)
    return bad


class DivergenceWatch:
    """The divergence check of a training, on a window of steps at a time (one host-device sync each).

    Args:
        estimator: gives ``value_range(batch_size)`` (the template of an ensemble).
        name: the estimator's name in messages.
        batch_size: the training batch.
        losses: ``[steps]`` for one run, ``[steps, K]`` for the K members of an ensemble (column ``m`` is
            member ``m``), filled as training goes.
        values: the recorded per-step batch estimates, the shape of ``losses``, or ``None`` (not recorded).

    ``values`` is set to ``None`` by the caller when the estimator gives no per-step value: then only the
    loss is checked, and the history keeps the recorded tensor (NaN) as :func:`~micore.train` does.
    """

    def __init__(self, estimator, name: str, batch_size: int, losses: Tensor, values: Tensor | None):
        value_range = getattr(estimator, "value_range", None)
        self.low, self.high = value_range(batch_size) if value_range is not None else (-math.inf, math.inf)
        self.name, self.batch_size, self.losses = name, batch_size, losses
        self.recorded = values  # the per-step estimates kept for the history
        self.values = values  # those checked: None without record, or for an estimator that gives none
        self.loss_cap: Tensor | None = None  # on the device, from the loss before the first update

    def _window(self, start: int, stop: int) -> Tensor:
        if self.loss_cap is None:
            self.loss_cap = LOSS_GROWTH * self.losses[0].abs().clamp_min(LOSS_FLOOR)
        values = None if self.values is None else self.values[start:stop]
        return bad_steps(self.losses[start:stop], values, self.loss_cap, self.low, self.high)

    def first_bad(self, start: int, stop: int) -> int | None:
        """One run: the first diverged step in ``[start, stop)``, or ``None``."""
        bad = self._window(start, stop)
        if not bool(bad.any()):
            return None
        return start + int(bad.nonzero()[0, 0])

    def first_bad_members(self, start: int, stop: int) -> list[int | None]:
        """An ensemble: per member, the first diverged step in ``[start, stop)`` or ``None`` (one sync)."""
        bad = self._window(start, stop)
        any_bad, first = torch.stack([bad.any(0).long(), bad.long().argmax(0)]).cpu().tolist()
        return [start + f if a else None for a, f in zip(any_bad, first, strict=True)]

    def _column(self, t: Tensor | None, member: int | None) -> Tensor | None:
        return t if t is None or member is None else t[:, member]

    def reason(self, step: int, member: int | None = None) -> str:
        """What made ``step`` (of ``member``, in an ensemble) diverged, for the message."""
        losses = self._column(self.losses, member)
        values = self._column(self.values, member)
        loss = float(losses[step])
        value = None if values is None else float(values[step])
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        if value is not None and not math.isfinite(value):
            return f"the batch estimate became {value}"
        if value is not None and not self.low - RANGE_SLACK <= value <= self.high + RANGE_SLACK:
            side = "below" if value < self.low else "above"
            return (
                f"the batch estimate {value:.4g} nats is {side} [{self.low:.4g}, {self.high:.4g}], the range of "
                f"{self.name}'s value on a batch of {self.batch_size} (see {self.name}.value_range)"
            )
        scale = max(abs(float(losses[0])), LOSS_FLOOR)
        return f"the loss {loss:.4g} grew past {LOSS_GROWTH:g} times its initial scale {scale:.3g}"

    def history(
        self,
        stop: int,
        true_mi: list[float] | None,
        *,
        member: int | None = None,
        diverged_at: int | None = None,
        divergence: str | None = None,
        **meta,
    ) -> TrainingHistory:
        """The history of the steps before ``stop`` (of ``member``, in an ensemble)."""
        recorded = self._column(self.recorded, member)
        return TrainingHistory(
            loss=self._column(self.losses, member)[:stop].cpu().tolist(),
            estimate=recorded[:stop].cpu().tolist() if recorded is not None else None,
            true_mi=true_mi[:stop] if true_mi else None,
            diverged_at=diverged_at,
            divergence=divergence,
            **meta,
        )
