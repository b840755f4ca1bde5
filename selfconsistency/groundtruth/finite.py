"""The finite-sample protocol on tasks with known MI: tasks x estimators x seeds, as the field runs it.

Beside the seed's infinite-data staircase (:mod:`.staircase`): each run draws ``n`` samples (default 5,000)
of a task of :mod:`micore.tasks` (any registered name, e.g. bmi's ``spiral-multinormal-sparse-3-3-2-2.0`` or
the image channel ``digits-channel-4bits``), and trains one estimator on them by
:func:`micore.finite.fit_heldout` (70/10/20 split, standardised vectors, early stopping on the held-out
estimate, the best state restored), reporting the value on the test part. Each finished run is written at
once, atomically, to ``OUT/finite/``; re-running skips finished runs. :mod:`.finite_tables` tabulates them
(table, CSV, heatmap of :math:`\\log_2(\\hat I / I)`).

Seeds: run ``s`` draws its data with seed ``DATA_SEED_OFFSET + s`` and splits, initialises and trains with
``s`` (one seed for both would make the split a function of the same random numbers as the data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from micore.device import device_name
from micore.finite import diagnose, fit_heldout
from micore.tasks import make_task

from ..execution import Run, execute, load_records
from ..execution.records import config_check
from ..registry import canonical_name, protocol_factory
from .config import FINITE_ESTIMATORS, FiniteConfig
from .records import FiniteRecord

__all__ = [
    "FiniteConfig",
    "FiniteRun",
    "finite_runs",
    "run_finite",
    "run_finite_spec",
    "run_finite_benchmark",
    "load_finite",
    "FINITE_DIR",
    "DEFAULT_ESTIMATORS",
]

FINITE_DIR = "finite"
DATA_SEED_OFFSET = 10_000
DEFAULT_ESTIMATORS = FINITE_ESTIMATORS


@dataclass(frozen=True)
class FiniteRun:
    """What one run trains: ``estimator`` on ``config.n`` samples of ``task`` with ``seed``, on ``device``."""

    task: str
    estimator: str
    config: FiniteConfig
    seed: int
    device: str = "cpu"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", name)


def finite_path(task: str, cfg: FiniteConfig, name: str, seed: int) -> str:
    return f"{FINITE_DIR}/n{cfg.n}_{cfg.critic}/{_slug(task)}__{_slug(name)}__seed{seed}.json"


def _factory(name: str, task, cfg: FiniteConfig):
    vectors = len(task.x_shape) == 1 and len(task.y_shape) == 1
    # the protocol's critic on vectors; image tasks use each estimator's image default (the conv critic)
    return protocol_factory(name, cfg.critic if vectors else None, domain="vectors" if vectors else "images")


def run_finite_spec(spec: FiniteRun, progress: bool = True) -> FiniteRecord:
    """One run: ``config.n`` samples of the task, one estimator, one seed; returns its record."""
    cfg = spec.config
    task = make_task(spec.task)
    x, y = task.sample(cfg.n, seed=DATA_SEED_OFFSET + spec.seed)
    torch.manual_seed(spec.seed)  # weight initialisation
    est = _factory(spec.estimator, task, cfg)(tuple(task.x_shape), tuple(task.y_shape))
    fit = fit_heldout(est, x, y, seed=spec.seed, config=cfg.heldout(), device=spec.device, progress=progress)
    flags = diagnose(
        [fit],
        kind=est.kind,
        value=fit.value,
        stderr=fit.stderr,
        cap=est.value_range(fit.batch_size)[1],
        patience=cfg.patience,
    )
    return FiniteRecord.from_dict(
        {
            "task": spec.task,
            "true_mi": float(task.mi),
            "true_mi_stderr": float(getattr(task, "mi_stderr", 0.0)),
            "x_shape": list(task.x_shape),
            "y_shape": list(task.y_shape),
            "estimator": spec.estimator,
            "kind": est.kind,
            "config": cfg,
            "flags": [f.name for f in flags],
            **_finite_values(fit.to_dict()),
        }
    )


def _finite_values(d: dict) -> dict:
    """A SeedFit's fields with NaN as None (what JSON keeps of them)."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in d.items()}


def run_finite(task_name: str, name: str, cfg: FiniteConfig, seed: int, device=None, progress=True) -> FiniteRecord:
    """:func:`run_finite_spec` of ``name`` on ``task_name`` (``device``: default CUDA when available)."""
    return run_finite_spec(FiniteRun(task_name, canonical_name(name), cfg, seed, device_name(device)), progress)


def _describe(rec: FiniteRecord) -> str:
    value = "nan" if rec.value is None else f"{rec.value:.3f}"
    return f"{value} of {rec.true_mi:.3f} nats, {rec.steps} steps ({rec.stopped}), {rec.seconds:.0f} s"


def finite_runs(tasks, estimators, cfg: FiniteConfig, seeds=(0,), device=None) -> list[Run]:
    """One :class:`~selfconsistency.execution.Run` per (task, estimator, seed); names are checked first."""
    names = list(dict.fromkeys(canonical_name(n) for n in estimators))
    task_names = list(dict.fromkeys(tasks))
    for t in task_names:
        task = make_task(t)  # an unknown name lists the known ones, before anything runs
        for name in names:
            _factory(name, task, cfg)
    device = device_name(device)
    runs = []
    for t in task_names:
        for name in names:
            for seed in seeds:
                relpath = finite_path(t, cfg, name, seed)
                runs.append(
                    Run(
                        key=f"{t} {name} seed {seed}",
                        relpath=relpath,
                        fn=run_finite_spec,
                        args=(FiniteRun(t, name, cfg, seed, device),),
                        record=FiniteRecord,
                        validate=config_check(cfg, relpath),
                        describe=_describe,
                        gpu=device.startswith("cuda"),
                    )
                )
    return runs


def run_finite_benchmark(
    tasks, estimators, cfg: FiniteConfig, seeds=(0,), out="bench", device=None, progress=True, log=print, executor=None
) -> list[FiniteRecord]:
    """Runs every (task, estimator, seed) not already finished in ``out``; returns all their records."""
    runs = finite_runs(tasks, estimators, cfg, seeds, device)
    outcome = execute(runs, out, executor, progress=progress, log=log, desc="bench (finite)")
    return list(outcome.records.values())


def load_finite(out, *, required: bool = False) -> list[FiniteRecord]:
    """Every whole finite-sample record under ``out/finite`` (a bad file is skipped with a warning; ``required``:
    none is a ``ValueError``)."""
    what = "finite-sample runs" if required else None
    return load_records(
        Path(out) / FINITE_DIR, "*/*.json", FiniteRecord, redo="the bench command that made it", what=what
    )
