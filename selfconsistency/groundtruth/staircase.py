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
from micore import resolve_device as micore_resolve_device
from micore.precision import PRECISIONS, check_precision
from micore.tasks import Staircase

from ..registry import canonical_name, family, make_factory
from ..runner import Run, execute
from ..storage import NUMBER, BadRecord, log, read_record, schema_problem

__all__ = [
    "BenchConfig",
    "run_one",
    "run_benchmark",
    "bench_runs",
    "resolve_device",
    "load_runs",
    "check_run",
    "run_path",
    "QUICK",
    "TASKS",
]

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
    # the step's arithmetic (micore.precision); fp32 is the paper's and is left out of stored configs
    precision: str = "fp32"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.critic not in ("joint", "separable"):
            raise ValueError(f'critic must be "joint" or "separable" for the benchmark, got {self.critic!r}')
        object.__setattr__(self, "levels", tuple(float(m) for m in self.levels))

    def staircase(self) -> Staircase:
        return Staircase(self.levels, self.steps_per_level, self.dim, cubic=self.task == "cubic")

    def record(self) -> dict:
        """The config as stored in a run record: ``precision`` only when it is not fp32, so that runs
        made before the option existed keep their protocol."""
        out = asdict(self)
        if out["precision"] == "fp32":
            del out["precision"]
        return out


# The README's quick default: the seed's architecture and batch, a short staircase (about a minute
# on 2 CPU cores).
QUICK = dict(estimators=("cpc", "nwj", "smile:5"), levels=(2.0, 4.0, 6.0), steps_per_level=200)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


def run_path(out: Path, cfg: BenchConfig, name: str, seed: int) -> Path:
    precision = "" if cfg.precision == "fp32" else f"_{cfg.precision}"
    return Path(out) / "runs" / f"{cfg.task}_{cfg.critic}_{_slug(name)}_seed{seed}{precision}.json"


def _factory(name: str, cfg: BenchConfig):
    """The critic of the protocol goes to the discriminative estimators; the others have none."""
    critic = cfg.critic if family(name) == "discriminative" else None
    return make_factory(name, critic=critic, domain="vectors")


def resolve_device(device) -> str:
    """The device every run uses, fixed by the driver (``None``: CUDA when available here, else CPU)."""
    return str(micore_resolve_device(device))


def run_one(name: str, cfg: BenchConfig, seed: int, device=None, progress: bool = True) -> dict:
    """Trains one estimator on the staircase and returns its per-step record."""
    torch.manual_seed(seed)  # weight initialisation
    est = _factory(name, cfg)((cfg.dim,), (cfg.dim,))
    record = {"estimator": name, "seed": seed, "config": cfg.record(), "kind": est.kind, "diverged_at": None}
    try:
        hist = est.fit(
            cfg.staircase(),
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=seed,
            device=device,
            progress=progress,
            desc=f"{cfg.task} {name} seed {seed}",
            precision=cfg.precision,
        )
    except TrainingDiverged as err:
        hist = err.history
        record["diverged_at"] = err.step
    record.update(
        estimates=hist.estimate,
        seconds=hist.seconds,
        device=hist.device,
        steps_per_second=len(hist.loss) / hist.seconds if hist.seconds > 0 else None,
        threads=hist.threads,
    )
    return record


def _describe(rec: dict) -> str:
    status = f"diverged at step {rec['diverged_at']}, " if rec.get("diverged_at") is not None else ""
    size = rec.get("ensemble_size") or 1
    share = f" (1/{size} of an ensemble's {rec['ensemble_seconds']:.0f} s)" if size > 1 else ""
    return f"{status}{rec['seconds']:.0f} s{share}"


# the fields of a run record that the table and the figure read
_RUN_SCHEMA = {
    "estimator": str,
    "seed": int,
    "config": {
        "task": str,
        "critic": str,
        "levels": list,
        "steps_per_level": int,
        "batch_size": int,
        "lr": NUMBER,
        "dim": int,
    },
    "diverged_at": (int, type(None)),
    "estimates": list,
    "seconds": NUMBER,
}


def check_run(rec: dict) -> str | None:
    """What makes ``rec`` not a whole run record (a missing field, a short ``estimates``), or ``None``."""
    problem = schema_problem(rec, _RUN_SCHEMA)
    if problem:
        return problem
    c = rec["config"]
    if c["task"] not in TASKS or not c["levels"] or c["steps_per_level"] < 1:
        return f"config {c} is not a staircase protocol"
    if not all(isinstance(m, NUMBER) and not isinstance(m, bool) for m in c["levels"]):
        return f"config levels {c['levels']} are not numbers"
    steps, have = len(c["levels"]) * c["steps_per_level"], len(rec["estimates"])
    # a diverged run stops early; a finished one has an estimate for every step
    if have != steps and not (rec["diverged_at"] is not None and have <= steps):
        return f"{have} per-step estimates, the protocol has {steps} steps"
    if not all(v is None or (isinstance(v, NUMBER) and not isinstance(v, bool)) for v in rec["estimates"]):
        return "estimates holds values that are not numbers"
    return None


def _validator(cfg: BenchConfig, relpath: str):
    expected = _jsonable(cfg.record())

    def validate(rec: dict) -> None:
        if rec.get("config") != expected:
            raise ValueError(
                f"{relpath} in the output directory was made with another protocol "
                f"({rec.get('config')}, now {expected}); use another --out directory"
            )

    return validate


def bench_runs(estimators, cfgs, seeds=(0,), device=None) -> list[Run]:
    """One :class:`~selfconsistency.runner.Run` per (protocol, estimator, seed), in that order."""
    cfgs = [cfgs] if isinstance(cfgs, BenchConfig) else list(cfgs)
    names = list(dict.fromkeys(canonical_name(n) for n in estimators))
    for cfg in cfgs:
        for name in names:
            _factory(name, cfg)  # fail fast on bad names, before anything runs
    device = resolve_device(device)
    for cfg in cfgs:
        check_precision(cfg.precision, torch.device(device))  # tf32 off CUDA: refused before anything runs
    runs = []
    for cfg in cfgs:
        suffix = "" if cfg.precision == "fp32" else f" {cfg.precision}"
        for name in names:
            for seed in seeds:
                relpath = str(run_path(Path(), cfg, name, seed))
                runs.append(
                    Run(
                        key=f"{cfg.task} {cfg.critic} {name} seed {seed}{suffix}",
                        relpath=relpath,
                        fn=run_one,
                        args=(name, cfg, seed, device),
                        check=check_run,
                        validate=_validator(cfg, relpath),
                        describe=_describe,
                        gpu=device.startswith("cuda"),
                    )
                )
    return runs


def run_benchmark(
    estimators,
    cfg,
    seeds=(0,),
    out="bench",
    device=None,
    progress=True,
    log=print,
    executor=None,
    ensemble="auto",
    max_members=None,
) -> list[dict]:
    """Runs every (estimator, seed) of ``cfg`` (one :class:`BenchConfig` or several) not already finished
    in ``out``; returns all their records.

    ``executor``: where the runs execute (default in this process, one after another; see
    :mod:`selfconsistency.executors`). Failed runs are recorded and raise
    :class:`~selfconsistency.runner.RunsFailed` at the end, after the others finished.
    ``ensemble``: ``"auto"`` trains the runs that can share one model (the seeds of an estimator) as
    ensembles, ``max_members`` at most in one (``None``: as many as fit the memory; on the CPU with an
    executor running P units at once, also at most ``ceil(runs / P)``: :func:`.ensembles.parallel_cap`),
    each run's record written as its own; ``"off"``: one by one (see :mod:`.ensembles`).
    """
    from .ensembles import group_runs, parallel_cap

    runs = bench_runs(estimators, cfg, seeds, device)
    if max_members is None:
        max_members = parallel_cap(len(runs), executor, runs[0].args[3] if runs else "cpu")
    runs = group_runs(runs, ensemble=ensemble, max_members=max_members)
    outcome = execute(runs, out, executor, progress=progress, log=log, desc="bench")
    return list(outcome.records.values())


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def load_runs(out) -> list[dict]:
    """Every whole run record in ``out/runs``; a bad file is skipped with a warning naming it."""
    runs = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        try:
            runs.append(read_record(path, check_run))
        except BadRecord as err:
            log.warning(f"skipped {err}: delete it, or run the bench command that made it again (it redoes the run)")
    return runs
