"""One cell of the image suite: a fresh estimator trained on the pairs of one measure, rows and seed.

A *cell* is ``(measure, t, seed)`` of one estimator (see :mod:`.settings`): a fresh estimator from the
factory is trained on pairs built from the training images and evaluated on pairs built from the
held-out images. :class:`CellSpec` says what one cell trains (it travels to worker processes);
:func:`run_cell` trains it alone and :mod:`.ensembles` trains several as one batched model, both
through the same pieces here (the data, the estimator, the record), so a cell's record does not depend
on how it was trained.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from discmi import ConvCritic
from micore import MIEstimator

from ..registry import family, make_factory, takes_critic
from .data import ImageSplit, load_images
from .records import CellConfig, CellRecord
from .settings import measure_pairs, measure_shapes

__all__ = [
    "CellSpec",
    "run_cell",
    "cell_record",
    "cell_pairs",
    "build_estimator",
    "checked_estimator",
    "new_estimator",
    "resolve_factory",
    "split_of",
    "builtin_factory",
    "DIGITS_CRITIC",
    "cell_path",
    "estimator_label",
    "is_generative",
]

# The critic the built-in discriminative names get on 8x8 digits: the paper's layout (conv k5 s2 p2,
# conv k5 s2 p2, fully connected, linear) with 4x fewer channels and 8x fewer hidden units. The
# paper's sizes are for 28x28 inputs; on 8x8 images they cost 5-7x more per step on a CPU for no
# gain in the ratios. MNIST and CIFAR-10 get the paper's critic (``"conv"``).
DIGITS_CRITIC = dict(channels=(16, 32), hidden=128)


@dataclass(frozen=True)
class CellSpec:
    """What one cell trains: the estimator ``make`` (a registry name, resolved where the cell runs, or a
    factory) labelled ``name``, on ``measure`` at rows ``t`` with ``seed``, under ``config``."""

    make: object
    name: str
    measure: str
    t: int | None
    seed: int
    config: CellConfig
    data_root: str | None
    device: str

    @property
    def dataset(self) -> str:
        return self.config.dataset


def builtin_factory(name: str, dataset: str):
    """The factory of a registry name for the images of ``dataset`` (see :data:`DIGITS_CRITIC`)."""
    factory = make_factory(name, domain="images")  # fails early on unknown names and vector-only estimators
    if dataset != "digits" or not takes_critic(name):
        return factory

    def digits_factory(x_shape, y_shape):
        critic = ConvCritic(x_shape, y_shape, **DIGITS_CRITIC)
        return make_factory(name, critic=critic, domain="images")(x_shape, y_shape)

    return digits_factory


def resolve_factory(make, dataset: str):
    """A factory from ``make``: a registry name's :func:`builtin_factory`, or ``make`` itself."""
    return builtin_factory(make, dataset) if isinstance(make, str) else make


def is_generative(est, make=None) -> bool:
    """Whether a cell's estimator gets the generative training budget (the paper trains I_GM 5x longer): the
    registry's family for a name, else the estimator's package (``genmi``)."""
    if isinstance(make, str) and family(make) is not None:
        return family(make) == "generative"
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


def build_estimator(factory, x_shape, y_shape) -> MIEstimator:
    """``factory(x_shape, y_shape)``, checked to be an estimator; weights follow the global torch seed."""
    return checked_estimator(factory(x_shape, y_shape))


def checked_estimator(est) -> MIEstimator:
    """``est``, what a factory returned, if it is an estimator; a ``ValueError`` saying what it must be otherwise."""
    if not isinstance(est, MIEstimator):
        raise ValueError(
            f"the estimator factory must return a micore.MIEstimator (fit/estimate interface), got {type(est).__name__}"
        )
    return est


_SPLITS: dict = {}  # (dataset, data_root, device) -> ImageSplit, loaded once per process


def split_of(dataset: str, data_root, device: str, download: bool = False) -> ImageSplit:
    """The split of ``dataset``, loaded once per process (the driver's plan, then each worker's cells)."""
    key = (dataset, None if data_root is None else str(data_root), device)
    if key not in _SPLITS:
        _SPLITS[key] = load_images(dataset, data_root, download=download, device=device)
    return _SPLITS[key]


def cell_pairs(spec: CellSpec, part: str):
    """The ``(x, y)`` pairs of the cell on the ``"train"`` or ``"test"`` images: one random stream per
    (seed, part), so training and held-out pairs never share draws."""
    split = split_of(spec.dataset, spec.data_root, spec.device)
    images = split.train if part == "train" else split.test
    g = torch.Generator(device=images.device).manual_seed(2 * spec.seed + (part != "train"))
    return measure_pairs(spec.measure, spec.t, images, g, spec.config.dp_offset)


def new_estimator(spec: CellSpec) -> MIEstimator:
    """The cell's fresh estimator: its weights drawn from the global torch seed set to the cell's seed."""
    images = split_of(spec.dataset, spec.data_root, spec.device)
    factory = resolve_factory(spec.make, spec.dataset)
    torch.manual_seed(spec.seed)  # weight initialisation
    return build_estimator(factory, *measure_shapes(spec.measure, images.shape))


def cell_record(spec: CellSpec, est: MIEstimator, test, *, diverged: str | None, seconds: float, **extra):
    """The cell's record: ``est`` (trained, unless it ``diverged``) evaluated on the held-out pairs ``test``. A
    diverged training, or a non-finite estimate, is a result (it fails its verdicts), not an error."""
    x_test, y_test = test
    values = dict(estimate=None, stderr=None, kind=est.kind, n_test=len(x_test))
    if diverged is None:
        try:
            e = est.estimate(x_test, y_test)
            values.update(estimate=e.value, stderr=e.stderr, n_test=e.n, kind=e.kind, eval_batch_size=e.batch_size)
        except FloatingPointError as err:
            diverged = str(err)
    return CellRecord(
        estimator=spec.name,
        dataset=spec.dataset,
        measure=spec.measure,
        t=spec.t,
        seed=spec.seed,
        diverged=diverged,
        config=spec.config,
        seconds=seconds,
        steps=len(est.history.loss) if est.history is not None else None,
        device=spec.device,
        **values,
        **extra,
    )


def run_cell(spec: CellSpec, progress: bool = True) -> CellRecord:
    """Trains a fresh estimator for one cell and evaluates it on held-out pairs; returns the cell's record."""
    est = new_estimator(spec)
    x_train, y_train = cell_pairs(spec, "train")
    test = cell_pairs(spec, "test")
    start, diverged = time.perf_counter(), None
    try:
        est.fit(
            x_train,
            y_train,
            epochs=spec.config.epochs,
            batch_size=spec.config.batch_size,
            lr=spec.config.lr,
            seed=spec.seed,
            device=spec.device,
            progress=progress,
            desc=f"{spec.measure} t={spec.t} seed {spec.seed}",
        )
    except FloatingPointError as err:  # TrainingDiverged: a diverged cell is a result, it fails its verdicts
        diverged = str(err)
    record = cell_record(spec, est, test, diverged=diverged, seconds=0.0)
    record.seconds = time.perf_counter() - start
    return record
