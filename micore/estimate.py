"""The result type every estimator returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

LOWER_BOUND = "lower bound"
UPPER_BOUND = "upper bound"
ESTIMATE = "estimate"
KINDS = (LOWER_BOUND, UPPER_BOUND, ESTIMATE)


@dataclass(frozen=True)
class Estimate:
    """A mutual-information value in nats with its uncertainty.

    Attributes:
        value: the mean over evaluation batches (nats).
        stderr: standard error of ``value`` over the evaluation batches
            (``nan`` when a single batch was evaluated: one batch has no spread).
        n: number of paired samples the value was computed from.
        kind: ``"lower bound"``, ``"upper bound"`` or ``"estimate"`` (neither:
            e.g. Donsker-Varadhan with a finite batch, or a difference of bounds).
        batch_size: samples per evaluation batch (batch-dependent bounds such as
            InfoNCE's ``log batch_size`` cap depend on it).
    """

    value: float
    stderr: float
    n: int
    kind: str
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def __str__(self) -> str:
        err = "n/a" if math.isnan(self.stderr) else f"{self.stderr:.3f}"
        return f"{self.value:.3f} ± {err} nats ({self.kind}, n={self.n})"

    def to_dict(self) -> dict:
        return asdict(self)
