"""The records of the image suite: one file per cell (``OUT/cells/<dataset>/<estimator>/*.json``), typed.

:class:`CellConfig` is what every cell of one estimator on one dataset shares (a resumed cell must have been
made with the same one); :class:`CellRecord` is one trained cell: its held-out estimate or why it diverged.
Files written before records had a version load as version 0 (the same fields).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..execution.records import Record, RecordProblem, checked_fields

__all__ = ["CellConfig", "CellRecord"]


@dataclass(frozen=True)
class CellConfig:
    """The training of every cell of one estimator on one dataset: the data, the model (its printed architecture,
    hashed), the schedule (``epochs``, ``batch_size``, ``lr``) and the data-processing offset."""

    image_shape: tuple[int, ...]
    dp_offset: int
    dataset: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    family: str | None = None
    model: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"image_shape {list(shape)} is not an image shape [C, H, W]")
        object.__setattr__(self, "image_shape", shape)

    @property
    def height(self) -> int:
        return self.image_shape[1]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["image_shape"] = list(self.image_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CellConfig:
        values, extra = checked_fields(cls, data)
        if extra:
            raise RecordProblem(f"unknown field(s) {sorted(extra)} in a cell's config")
        return cls(**values)


@dataclass
class CellRecord(Record):
    """One cell: ``estimator`` trained on the pairs of ``measure`` at rows ``t`` with ``seed``; ``estimate`` on
    held-out pairs (``None`` when it was not finite or the training ``diverged``, which says why)."""

    estimator: str
    dataset: str
    measure: str
    t: int | None
    seed: int
    estimate: float | None
    diverged: str | None
    config: CellConfig
    stderr: float | None = None
    kind: str | None = None
    n_test: int | None = None
    eval_batch_size: int | None = None
    seconds: float | None = None
    steps: int | None = None
    device: str | None = None
    ensemble_size: int | None = None
    ensemble_seconds: float | None = None

    OMIT_NONE = ("eval_batch_size", "ensemble_size", "ensemble_seconds")
