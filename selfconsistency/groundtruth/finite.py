"""The finite-sample protocol on tasks with known MI: tasks x estimators x seeds, as the field runs it.

Beside the seed's infinite-data staircase (:mod:`.staircase`): each run draws ``n`` samples (default 5,000)
of a task of :mod:`micore.tasks` (any registered name, e.g. bmi's ``spiral-multinormal-sparse-3-3-2-2.0`` or
the image channel ``digits-channel-4bits``), and trains one estimator on them by
:func:`micore.heldout.fit_heldout` (70/10/20 split, standardised vectors, early stopping on the held-out
estimate, the best state restored), reporting the value on the test part. Each finished run is written at
once, atomically, to ``OUT/finite/``; re-running skips finished runs. :mod:`.finite_report` tabulates them
(table, CSV, heatmap of :math:`\\log_2(\\hat I / I)`).

Seeds: run ``s`` draws its data with seed ``DATA_SEED_OFFSET + s`` and splits, initialises and trains with
``s`` (one seed for both would make the split a function of the same random numbers as the data).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from micore.diagnostics import diagnose
from micore.heldout import HeldoutConfig, fit_heldout
from micore.tasks import make_task

from ..registry import canonical_name, family, make_factory
from ..runner import Run, execute
from ..storage import NUMBER, schema_problem
from .staircase import resolve_device

__all__ = ["FiniteConfig", "finite_runs", "run_finite", "run_finite_benchmark", "check_finite", "FINITE_DIR"]

FINITE_DIR = "finite"
DATA_SEED_OFFSET = 10_000
# the estimators of the issue that make sense on vectors: bounds, SMILE at both clips, ReMINE, a flow
DEFAULT_ESTIMATORS = ("cpc", "nwj", "mine", "smile:5", "smile:inf", "remine", "gm-flow")


@dataclass(frozen=True)
class FiniteConfig:
    """The finite-sample protocol; see :class:`micore.heldout.HeldoutConfig` for the training fields.

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
        if self.critic not in ("joint", "separable"):
            raise ValueError(f'critic must be "joint" or "separable", got {self.critic!r}')
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 2:
            raise ValueError(f"n must be an int >= 2, got {self.n!r}")
        self.heldout()  # checks the training fields

    def heldout(self) -> HeldoutConfig:
        return HeldoutConfig(
            max_steps=self.max_steps,
            eval_every=self.eval_every,
            patience=self.patience,
            batch_size=self.batch_size,
            lr=self.lr,
        )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", name)


def finite_path(task: str, cfg: FiniteConfig, name: str, seed: int) -> str:
    return f"{FINITE_DIR}/n{cfg.n}_{cfg.critic}/{_slug(task)}__{_slug(name)}__seed{seed}.json"


def _domain(task) -> str:
    return "vectors" if len(task.x_shape) == 1 and len(task.y_shape) == 1 else "images"


def _factory(name: str, task, cfg: FiniteConfig):
    domain = _domain(task)
    critic = cfg.critic if family(name) == "discriminative" and domain == "vectors" else None
    return make_factory(name, critic=critic, domain=domain)


def run_finite(task_name: str, name: str, cfg: FiniteConfig, seed: int, device=None, progress: bool = True) -> dict:
    """One run: ``cfg.n`` samples of the task, one estimator, one seed; returns its record."""
    task = make_task(task_name)
    x, y = task.sample(cfg.n, seed=DATA_SEED_OFFSET + seed)
    torch.manual_seed(seed)  # weight initialisation
    est = _factory(name, task, cfg)(tuple(task.x_shape), tuple(task.y_shape))
    fit = fit_heldout(est, x, y, seed=seed, config=cfg.heldout(), device=device, progress=progress)
    flags = diagnose(
        [fit],
        kind=est.kind,
        value=fit.value,
        stderr=fit.stderr,
        cap=est.value_range(fit.batch_size)[1],
        patience=cfg.patience,
    )
    return {
        "task": task_name,
        "true_mi": float(task.mi),
        "true_mi_stderr": float(getattr(task, "mi_stderr", 0.0)),
        "x_shape": list(task.x_shape),
        "y_shape": list(task.y_shape),
        "estimator": name,
        "kind": est.kind,
        "seed": seed,
        "config": asdict(cfg),
        "flags": [f.name for f in flags],
        **fit.to_dict(),
    }


_SCHEMA = {
    "task": str,
    "true_mi": NUMBER,
    "estimator": str,
    "seed": int,
    "config": dict,
    "value": NUMBER,
    "steps": int,
    "seconds": NUMBER,
    "stopped": str,
}


def check_finite(rec: dict) -> str | None:
    """What makes ``rec`` not a whole finite-sample run record, or ``None``."""
    return schema_problem(rec, _SCHEMA)


def _validator(cfg: FiniteConfig, relpath: str):
    expected = asdict(cfg)

    def validate(rec: dict) -> None:
        if rec.get("config") != expected:
            raise ValueError(
                f"{relpath} in the output directory was made with another protocol ({rec.get('config')}, now "
                f"{expected}); use another --out directory"
            )

    return validate


def _describe(rec: dict) -> str:
    steps = f"{rec['steps']} steps ({rec['stopped']})"
    return f"{rec['value']:.3f} of {rec['true_mi']:.3f} nats, {steps}, {rec['seconds']:.0f} s"


def finite_runs(tasks, estimators, cfg: FiniteConfig, seeds=(0,), device=None) -> list[Run]:
    """One :class:`~selfconsistency.runner.Run` per (task, estimator, seed); names are checked first."""
    names = list(dict.fromkeys(canonical_name(n) for n in estimators))
    task_names = list(dict.fromkeys(tasks))
    for t in task_names:
        task = make_task(t)  # an unknown name lists the known ones, before anything runs
        for name in names:
            _factory(name, task, cfg)
    device = resolve_device(device)
    runs = []
    for t in task_names:
        for name in names:
            for seed in seeds:
                relpath = finite_path(t, cfg, name, seed)
                runs.append(
                    Run(
                        key=f"{t} {name} seed {seed}",
                        relpath=relpath,
                        fn=run_finite,
                        args=(t, name, cfg, seed, device),
                        check=check_finite,
                        validate=_validator(cfg, relpath),
                        describe=_describe,
                        gpu=device.startswith("cuda"),
                    )
                )
    return runs


def run_finite_benchmark(
    tasks, estimators, cfg: FiniteConfig, seeds=(0,), out="bench", device=None, progress=True, log=print, executor=None
) -> list[dict]:
    """Runs every (task, estimator, seed) not already finished in ``out``; returns all their records."""
    runs = finite_runs(tasks, estimators, cfg, seeds, device)
    outcome = execute(runs, out, executor, progress=progress, log=log, desc="bench (finite)")
    return list(outcome.records.values())


def load_finite(out) -> list[dict]:
    """Every whole finite-sample record under ``out/finite`` (a bad file is skipped with a warning)."""
    from ..storage import BadRecord, log, read_record

    recs = []
    for path in sorted((Path(out) / FINITE_DIR).glob("*/*.json")):
        try:
            recs.append(read_record(path, check_finite))
        except BadRecord as err:
            log.warning(f"skipped {err}: delete it, or run the bench command that made it again (it redoes the run)")
    return recs
