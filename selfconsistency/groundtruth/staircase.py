"""The ground-truth staircase of Song & Ermon App. B.1 (Table 2, Figure 1): one run per (task, estimator, seed).

Each estimator is trained on the staircase (MI 2, 4, 6, 8, 10 nats, 4k steps each, batch 64,
Adam lr 5e-4) of the 20-d Gaussian or Cubic task; the estimate on every training batch (drawn
fresh, before the update on it) is recorded. Each finished run is written at once, atomically, to
``OUT/runs/``; re-running skips finished runs. :mod:`.tables` and :mod:`.figures` rebuild Table 2 and
Figure 1 from all runs found in ``OUT``; :func:`~.bench.run_benchmark` runs them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from micore import TrainingDiverged
from micore.compat import deprecated_names
from micore.device import device_name
from micore.training.precision import check_precision

from ..execution import Run, load_records
from ..execution.records import config_check
from ..registry import canonical_name, protocol_factory
from .config import QUICK, TASKS, BenchConfig
from .records import StaircaseRecord

__all__ = [
    "StaircaseRun",
    "BenchConfig",
    "run_staircase",
    "run_one",
    "bench_runs",
    "estimator_for",
    "record_of",
    "load_runs",
    "run_path",
    "QUICK",
    "TASKS",
]


@dataclass(frozen=True)
class StaircaseRun:
    """What one run trains: ``estimator`` (a canonical registry name) on ``config`` with ``seed``, on ``device``."""

    estimator: str
    config: BenchConfig
    seed: int
    device: str = "cpu"

    @property
    def key(self) -> str:
        suffix = "" if self.config.precision == "fp32" else f" {self.config.precision}"
        return f"{self.config.task} {self.config.critic} {self.estimator} seed {self.seed}{suffix}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


def run_path(out: Path, cfg: BenchConfig, name: str, seed: int) -> Path:
    precision = "" if cfg.precision == "fp32" else f"_{cfg.precision}"
    return Path(out) / "runs" / f"{cfg.task}_{cfg.critic}_{_slug(name)}_seed{seed}{precision}.json"


def estimator_for(spec: StaircaseRun):
    """A fresh estimator of the run (the protocol's critic for the names that take one; weights from the global
    torch seed, which the caller sets)."""
    dim = spec.config.dim
    return protocol_factory(spec.estimator, spec.config.critic, domain="vectors")((dim,), (dim,))


def run_staircase(spec: StaircaseRun, progress: bool = True) -> StaircaseRecord:
    """Trains one estimator on the staircase and returns its per-step record."""
    cfg = spec.config
    torch.manual_seed(spec.seed)  # weight initialisation
    est = estimator_for(spec)
    diverged_at = None
    try:
        hist = est.fit(
            cfg.staircase(),
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=spec.seed,
            device=spec.device,
            progress=progress,
            desc=f"{cfg.task} {spec.estimator} seed {spec.seed}",
            precision=cfg.precision,
        )
    except TrainingDiverged as err:
        hist, diverged_at = err.history, err.step
    return record_of(spec, est, hist, diverged_at=diverged_at)


def record_of(spec: StaircaseRun, est, hist, *, diverged_at: int | None, seconds: float | None = None, **more):
    """The run's record from its training history: the per-step estimates, and the time (``seconds``, default the
    history's) with the steps per second it makes; ``more``: the ensemble's fields."""
    if diverged_at is None and hist.estimate and not any(math.isfinite(v) for v in hist.estimate):
        raise ValueError(
            f"{spec.estimator} gave no estimate on any training batch, so the benchmark has nothing to tabulate: the "
            "per-step value is the second element of the estimator's _training_step(x, y) -> (loss, value); by "
            "default it is _batch_estimate(x, y), which needs _log_ratio (see micore.MIEstimator)"
        )
    seconds = hist.seconds if seconds is None else seconds
    speed = len(hist.loss) / seconds if seconds > 0 else None
    return StaircaseRecord(
        spec.estimator, spec.seed, spec.config, diverged_at, hist.estimate, seconds, est.kind, hist.device, speed,
        hist.threads, **more,
    )  # fmt: skip


def run_one(name: str, cfg: BenchConfig, seed: int, device=None, progress: bool = True) -> StaircaseRecord:
    """:func:`run_staircase` of ``name`` on ``cfg`` with ``seed`` (``device``: default CUDA when available)."""
    return run_staircase(StaircaseRun(canonical_name(name), cfg, seed, device_name(device)), progress)


def _describe(rec: StaircaseRecord) -> str:
    status = f"diverged at step {rec.diverged_at}, " if rec.diverged_at is not None else ""
    size = rec.ensemble_size or 1
    share = f" (1/{size} of an ensemble's {rec.ensemble_seconds:.0f} s)" if size > 1 else ""
    return f"{status}{rec.seconds:.0f} s{share}"


def bench_runs(estimators, cfgs, seeds=(0,), device=None) -> list[Run]:
    """One :class:`~selfconsistency.execution.Run` per (protocol, estimator, seed), in that order; every name
    is checked (and every protocol's precision against the device) before anything runs."""
    cfgs = [cfgs] if isinstance(cfgs, BenchConfig) else list(cfgs)
    names = list(dict.fromkeys(canonical_name(n) for n in estimators))
    for cfg in cfgs:
        for name in names:
            protocol_factory(name, cfg.critic, domain="vectors")  # fail fast on bad names
    device = device_name(device)
    for cfg in cfgs:
        check_precision(cfg.precision, torch.device(device))  # tf32 off CUDA: refused before anything runs
    runs = []
    for cfg in cfgs:
        for name in names:
            for seed in seeds:
                spec = StaircaseRun(name, cfg, seed, device)
                relpath = str(run_path(Path(), cfg, name, seed))
                runs.append(
                    Run(
                        key=spec.key,
                        relpath=relpath,
                        fn=run_staircase,
                        args=(spec,),
                        record=StaircaseRecord,
                        validate=config_check(cfg, relpath),
                        describe=_describe,
                        gpu=device.startswith("cuda"),
                    )
                )
    return runs


def load_runs(out, *, required: bool = False) -> list[StaircaseRecord]:
    """Every whole run record in ``out/runs``; a bad file is skipped with a warning naming it (``required``: none
    is a ``ValueError``)."""
    what = "runs" if required else None
    return load_records(Path(out) / "runs", "*.json", StaircaseRecord, redo="the bench command that made it", what=what)


__getattr__ = deprecated_names(
    __name__,
    {
        "run_benchmark": ("selfconsistency.groundtruth.bench", "run_benchmark"),
        "resolve_device": ("micore.device", "device_name"),
    },
)
