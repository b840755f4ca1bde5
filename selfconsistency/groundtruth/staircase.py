"""The ground-truth staircase of Song & Ermon App. B.1 (Table 2, Figure 1): one run per (task, estimator, seed).

Each estimator is trained on the staircase (MI 2, 4, 6, 8, 10 nats, 4k steps each, batch 64,
Adam lr 5e-4) of the 20-d Gaussian or Cubic task; the estimate on every training batch (drawn
fresh, before the update on it) is recorded. Each finished run is written at once, atomically, to
``OUT/runs/``; re-running skips finished runs. :mod:`.table` and :mod:`.figures` rebuild Table 2 and
Figure 1 from all runs found in ``OUT``.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from micore import TrainingDiverged
from micore.tasks import Staircase

from ..registry import make_factory
from ..storage import read_json, write_json_atomic

__all__ = ["BenchConfig", "run_one", "run_benchmark", "load_runs", "run_path", "QUICK", "TASKS"]

TASKS = ("gaussian", "cubic")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark protocol; the defaults are the seed's (Song & Ermon App. B.1)."""

    task: str = "gaussian"
    critic: str = "joint"
    levels: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 4000
    batch_size: int = 64
    lr: float = 5e-4
    dim: int = 20

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.critic not in ("joint", "separable"):
            raise ValueError(f'critic must be "joint" or "separable" for the benchmark, got {self.critic!r}')
        object.__setattr__(self, "levels", tuple(float(m) for m in self.levels))

    def staircase(self) -> Staircase:
        return Staircase(self.levels, self.steps_per_level, self.dim, cubic=self.task == "cubic")


# The README's quick default: the seed's architecture and batch, a short staircase (about a minute
# on 2 CPU cores).
QUICK = dict(estimators=("cpc", "nwj", "smile:5"), levels=(2.0, 4.0, 6.0), steps_per_level=200)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


def run_path(out: Path, cfg: BenchConfig, name: str, seed: int) -> Path:
    return Path(out) / "runs" / f"{cfg.task}_{cfg.critic}_{_slug(name)}_seed{seed}.json"


def run_one(name: str, cfg: BenchConfig, seed: int, device=None, progress: bool = True) -> dict:
    """Trains one estimator on the staircase and returns its per-step record."""
    torch.manual_seed(seed)  # weight initialisation
    est = make_factory(name, critic=cfg.critic)((cfg.dim,), (cfg.dim,))
    record = {"estimator": name, "seed": seed, "config": asdict(cfg), "kind": est.kind, "diverged_at": None}
    try:
        hist = est.fit(cfg.staircase(), batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, device=device,
                       progress=progress, desc=f"{cfg.task} {name} seed {seed}")
    except TrainingDiverged as err:
        hist = err.history
        record["diverged_at"] = err.step
    record.update(estimates=hist.estimate, seconds=hist.seconds, device=hist.device,
                  steps_per_second=len(hist.loss) / hist.seconds if hist.seconds > 0 else None)
    return record


def run_benchmark(estimators, cfg: BenchConfig, seeds=(0,), out="bench", device=None, progress=True,
                  log=print) -> list[dict]:
    """Runs every (estimator, seed) not already finished in ``out``; returns all their records."""
    out = Path(out)
    factories_checked = [make_factory(name, critic=cfg.critic) for name in estimators]  # fail fast on bad names
    del factories_checked
    records = []
    for name in estimators:
        for seed in seeds:
            path = run_path(out, cfg, name, seed)
            if path.exists():
                rec = read_json(path)
                if rec.get("config") != _jsonable(asdict(cfg)):
                    raise ValueError(f"{path} was made with another protocol ({rec.get('config')}); "
                                     "use another --out directory")
                log(f"[skip] {cfg.task} {name} seed {seed}: finished earlier ({path})")
            else:
                rec = run_one(name, cfg, seed, device, progress)
                write_json_atomic(path, rec)
                status = f"diverged at step {rec['diverged_at']}" if rec["diverged_at"] is not None else "done"
                log(f"[{status}] {cfg.task} {name} seed {seed}: {rec['seconds']:.0f} s -> {path}")
            records.append(rec)
    return records


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def load_runs(out) -> list[dict]:
    return [read_json(p) for p in sorted((Path(out) / "runs").glob("*.json"))]
