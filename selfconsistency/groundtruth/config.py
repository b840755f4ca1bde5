"""The benchmark's protocols and their defaults: what ``selfconsistency bench`` reads and every run stores.

* :class:`BenchConfig` — the seed's staircase (Song & Ermon App. B.1): MI levels, steps per level, batch,
  learning rate, dimension, critic, precision; :data:`DEFAULT_ESTIMATORS` and :data:`QUICK` are the
  command's defaults;
* :class:`FiniteConfig` — the finite-sample protocol on tasks with known MI (sample size, critic, and the
  held-out training settings of :class:`micore.finite.HeldoutConfig`, whose defaults it reads).

Both are frozen dataclasses stored in each run's record (``to_dict``) and read back checked (``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from micore.finite import FIELDS as HELDOUT_FIELDS
from micore.finite import HeldoutConfig
from micore.tasks import Staircase
from micore.training.precision import PRECISIONS

from ..execution.records import RecordProblem, checked_fields

__all__ = [
    "BenchConfig",
    "FiniteConfig",
    "TASKS",
    "CRITICS",
    "QUICK",
    "DEFAULT_ESTIMATORS",
    "FINITE_ESTIMATORS",
]

TASKS = ("gaussian", "cubic")
CRITICS = ("joint", "separable")
# the command's default estimators: Song & Ermon's Table 2 rows that need no flow
DEFAULT_ESTIMATORS = ("cpc", "nwj", "smile:1", "smile:5", "smile:inf")
# the finite protocol's: bounds, SMILE at both clips, ReMINE, a flow
FINITE_ESTIMATORS = ("cpc", "nwj", "mine", "smile:5", "smile:inf", "remine", "gm-flow")


def _from_dict(cls, data):
    values, extra = checked_fields(cls, data)
    if extra:
        raise RecordProblem(f"unknown field(s) {sorted(extra)} in a {cls.__name__}")
    return cls(**values)


@dataclass(frozen=True)
class BenchConfig:
    """One staircase protocol; the defaults are the seed's (Song & Ermon App. B.1)."""

    task: str = "gaussian"
    critic: str = "joint"
    levels: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 4000
    batch_size: int = 64
    lr: float = 5e-4
    dim: int = 20
    # the step's arithmetic (micore.training.precision); fp32 is the paper's and is left out of stored configs
    precision: str = "fp32"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.critic not in CRITICS:
            raise ValueError(f'critic must be "joint" or "separable" for the benchmark, got {self.critic!r}')
        if not self.levels or self.steps_per_level < 1:
            raise ValueError(f"levels {self.levels} and steps_per_level {self.steps_per_level} are not a staircase")
        object.__setattr__(self, "levels", tuple(float(m) for m in self.levels))

    @property
    def steps(self) -> int:
        """Steps of the whole staircase."""
        return len(self.levels) * self.steps_per_level

    def staircase(self) -> Staircase:
        return Staircase(self.levels, self.steps_per_level, self.dim, cubic=self.task == "cubic")

    def to_dict(self) -> dict:
        """The config as stored in a run record: ``precision`` only when it is not fp32, so that runs
        made before the option existed keep their protocol."""
        out = asdict(self)
        out["levels"] = list(self.levels)
        if out["precision"] == "fp32":
            del out["precision"]
        return out

    record = to_dict  # the name the config had before typed records

    @classmethod
    def from_dict(cls, data: dict) -> BenchConfig:
        return _from_dict(cls, data)


# The README's quick default: the seed's architecture and batch, a short staircase (about a minute
# on 2 CPU cores).
QUICK = dict(estimators=("cpc", "nwj", "smile:5"), levels=(2.0, 4.0, 6.0), steps_per_level=200)


@dataclass(frozen=True)
class FiniteConfig:
    """The finite-sample protocol; the training fields are :class:`micore.finite.HeldoutConfig`'s (and default
    to its values).

    ``critic``: of the discriminative estimators on vector tasks (image tasks use the conv critic).
    """

    n: int = 5000
    critic: str = "joint"
    max_steps: int = HeldoutConfig.max_steps
    eval_every: int = HeldoutConfig.eval_every
    patience: int = HeldoutConfig.patience
    batch_size: int | None = None
    lr: float | None = None

    def __post_init__(self):
        if self.critic not in CRITICS:
            raise ValueError(f'critic must be "joint" or "separable", got {self.critic!r}')
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 2:
            raise ValueError(f"n must be an int >= 2, got {self.n!r}")
        self.heldout()  # checks the training fields

    def heldout(self) -> HeldoutConfig:
        """The held-out protocol of each run: these fields of :class:`~micore.finite.HeldoutConfig`, its defaults
        for the others."""
        return HeldoutConfig.from_options(**{k: v for k, v in asdict(self).items() if k in HELDOUT_FIELDS})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FiniteConfig:
        return _from_dict(cls, data)
