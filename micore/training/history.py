"""What a training leaves: its per-step :class:`TrainingHistory`, or :class:`TrainingDiverged` naming the bad step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["TrainingHistory", "TrainingDiverged"]


@dataclass
class TrainingHistory:
    """Per-step record of one training run.

    ``estimate[i]`` is the estimator's MI value on batch ``i``, computed before the update on
    that batch (so for a sampler every value is on samples the model has not been trained on).
    ``true_mi[i]`` is the sampler's exact MI at step ``i`` (``None`` for tensor data).
    ``diverged_at`` is the first step found diverged (``None`` if none) and ``divergence`` why: with
    ``divergence="raise"`` it is the partial history of :class:`TrainingDiverged`, which ends there.
    """

    loss: list[float]
    estimate: list[float] | None
    true_mi: list[float] | None
    batch_size: int
    lr: float
    seed: int
    device: str
    seconds: float
    diverged_at: int | None = None
    divergence: str | None = None
    threads: int | None = None  # torch's intra-op threads during the run (see micore.training.threads)
    precision: str = "fp32"  # the step's arithmetic (see micore.training.precision)
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.steps = len(self.loss)

    def to_dict(self) -> dict:
        return asdict(self)


class TrainingDiverged(FloatingPointError):
    """Training diverged; the message names the first bad step and what was impossible about it.

    Raised for a NaN/inf loss or batch estimate, a batch estimate outside the estimator's
    ``value_range(batch_size)``, or a loss grown :data:`~micore.training.divergence.LOSS_GROWTH` times
    past its initial scale. ``history`` holds the run up to (not including) ``step``; ``reason`` says
    what went wrong.
    """

    def __init__(
        self, step: int, value: float, estimator: str, history: TrainingHistory | None = None, reason: str | None = None
    ):
        self.step = step
        self.history = history
        self.reason = reason or f"the loss became {value}"
        super().__init__(
            f"{estimator} training diverged at step {step}: {self.reason}. Try a lower learning rate, a larger "
            "batch size, or a bounded objective (e.g. SMILE, JS); fit(..., divergence='ignore') trains on regardless."
        )
