"""The records the benchmark writes, one file per run: typed, versioned, and read back checked.

* :class:`StaircaseRecord` — one estimator trained on the staircase with one seed: its per-step estimates
  (``OUT/runs/*.json``; Table 2 and Figure 1 are computed from them);
* :class:`FiniteRecord` — one estimator, task and seed of the finite-sample protocol: the held-out value and
  the seed's fit (``OUT/finite/*/*.json``).

Files written before records had a version load as version 0 (the same fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..execution.records import Record
from .config import BenchConfig, FiniteConfig

__all__ = ["StaircaseRecord", "FiniteRecord"]


@dataclass
class StaircaseRecord(Record):
    """One staircase run.

    ``estimates[i]``: the batch estimate at step ``i`` (``None`` where it was not finite); a diverged run
    stops at ``diverged_at``. ``seconds``: its training time (in an ensemble, the ensemble's wall time
    divided by its members; ``ensemble_size``, ``ensemble_seconds`` and ``ensemble_engine`` say how it ran).
    """

    estimator: str
    seed: int
    config: BenchConfig
    diverged_at: int | None
    estimates: list[float | None]
    seconds: float
    kind: str | None = None
    device: str | None = None
    steps_per_second: float | None = None
    threads: int | None = None
    ensemble_size: int | None = None
    ensemble_seconds: float | None = None
    ensemble_engine: str | None = None

    OMIT_NONE = ("ensemble_size", "ensemble_seconds", "ensemble_engine")

    def problem(self) -> str | None:
        steps, have = self.config.steps, len(self.estimates)
        # a diverged run stops early; a finished one has an estimate for every step
        if have != steps and not (self.diverged_at is not None and have <= steps):
            return f"{have} per-step estimates, the protocol has {steps} steps"
        return None


@dataclass
class FiniteRecord(Record):
    """One run of the finite-sample protocol: the task's true MI, the held-out ``value`` and how training went
    (the fields of :class:`micore.finite.SeedFit`), and the names of the flags that fired."""

    task: str
    true_mi: float
    estimator: str
    seed: int
    config: FiniteConfig
    value: float | None
    steps: int
    seconds: float
    stopped: str
    true_mi_stderr: float = 0.0
    x_shape: list[int] = field(default_factory=list)
    y_shape: list[int] = field(default_factory=list)
    kind: str | None = None
    flags: list[str] = field(default_factory=list)
    stderr: float | None = None
    train_value: float | None = None
    train_stderr: float | None = None
    valid_best: float | None = None
    best_step: int | None = None
    curve: list = field(default_factory=list)
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    monitor: str | None = None
    divergence: str | None = None
    nonfinite: int = 0
