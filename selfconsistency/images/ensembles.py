"""Cells of the image suite trained as ensembles (issue 10): one batched model for the cells that share a shape.

The cells of one estimator on one dataset differ in the rows ``t`` kept, the seed and the measure;
those whose measure gives the same input shapes (``rows`` and the transforms: ``(C, H, W)``; the
``-dp``/``-add`` pairs: ``(2C, H, W)``) train the same architecture for the same number of steps,
each on its own paired images. :func:`group_cells` marks them as one
:class:`~selfconsistency.execution.Group`; :func:`train_cells` trains the group with
:func:`micore.train_ensemble` (member k: the weights ``run_cell`` draws for its seed, its own
training pairs and batch order) and evaluates every member on its own held-out pairs, as
:func:`~.cells.run_cell` does. Each cell's record is written as its own (``ensemble_size`` and
``ensemble_seconds`` added), so resuming, verdicts and figures do not change; the numbers equal the
one-by-one cells' up to float rounding (``tests/selfconsistency/images/test_cell_ensembles.py``).

On the CPU the paper's conv critic is compute-bound and an ensemble gains little, so
``selfconsistency check`` groups only on CUDA unless ``--ensemble auto`` asks for it. Estimators whose
step cannot batch (``MIEstimator.ensemble_batches``: gm-vae's random draws, gm-flow) are not grouped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import torch

from micore import TrainingDiverged, train_ensemble
from micore.validation import check_positive_int

from ..execution import Group, Run, group_runs
from .cells import CellSpec, build_estimator, cell_pairs, cell_record, new_estimator, resolve_factory, split_of
from .records import CellRecord
from .settings import measure_shapes

__all__ = ["group_cells", "train_cells", "ENSEMBLE_MODES"]

# "auto": cells that can share one model train as ensembles; "off": cell by cell
ENSEMBLE_MODES = ("auto", "off")


def _is_pair(measure: str) -> bool:
    """The ``-dp``/``-add`` measures pair two images on the channels (:func:`~.settings.measure_shapes`)."""
    return measure.endswith(("-dp", "-add"))


def _key(spec: CellSpec) -> tuple:
    """What cells must share to train as one model: estimator, configuration, device, data, input shape."""
    config = json.dumps(spec.config.to_dict(), sort_keys=True)
    return (spec.name, repr(spec.make), config, str(spec.data_root), spec.device, _is_pair(spec.measure))


def _batches(spec: CellSpec) -> bool:
    """Whether the estimator's step can batch (its class says so; building it draws weights, so aside)."""
    images = split_of(spec.dataset, spec.data_root, spec.device)
    with torch.random.fork_rng(devices=[]):
        est = build_estimator(resolve_factory(spec.make, spec.dataset), *measure_shapes("rows", images.shape))
    return type(est).ensemble_batches


def group_cells(runs: Sequence[Run], *, max_members: int | None = None) -> list[Run]:
    """``runs`` (cells from :func:`~.suite.plan`) with a :class:`~selfconsistency.execution.Group` on those
    that can share one model; a cell with no partner, or of an estimator that cannot batch, stays alone."""
    if max_members is not None:
        check_positive_int(max_members, "max_members")
    batches: dict[tuple, bool] = {}

    def key(run: Run):
        (spec,) = run.args
        k = _key(spec)
        if k[:5] not in batches:
            batches[k[:5]] = _batches(spec)
        return k if batches[k[:5]] else None

    def make_group(members: list[Run]) -> Group:
        first = members[0].args[0]
        kind = "pairs" if _is_pair(first.measure) else "single images"
        return Group(
            key=f"ensemble {first.name} {kind} ({len(members)} cells)",
            fn=train_cells,
            args=(max_members,),
            max_members=max_members,
        )

    return group_runs(runs, key, make_group)


def train_cells(
    member_args: Sequence[tuple], max_members: int | None = None, progress: bool = True
) -> list[CellRecord]:
    """Trains the cells ``member_args`` (each the ``(CellSpec,)`` of :func:`~.cells.run_cell`, all of one
    :func:`_key`) as ensembles and evaluates each on its held-out pairs; returns their records, in that order."""
    specs = [args[0] for args in member_args]
    if not specs:
        return []
    if len({_key(s) for s in specs}) != 1:
        raise ValueError("train_cells: the cells differ in estimator, configuration, device or input shape")
    estimators = [new_estimator(s) for s in specs]  # the weights run_cell draws for each seed
    train_pairs = [cell_pairs(s, "train") for s in specs]
    test_pairs = [cell_pairs(s, "test") for s in specs]
    config = specs[0].config
    # fit(epochs=E) runs E passes of n // batch_size steps over the same shuffled batches
    steps = config.epochs * (len(train_pairs[0][0]) // config.batch_size)
    start = time.perf_counter()
    histories = train_ensemble(
        estimators,
        train_pairs,
        seeds=[s.seed for s in specs],
        steps=steps,
        batch_size=config.batch_size,
        lr=config.lr,
        device=specs[0].device,
        progress=progress,
        divergence="member",
        max_members="auto" if max_members is None else max_members,
        desc=f"{specs[0].name} {len(specs)} cells",
    )
    wall = time.perf_counter() - start
    size = 1 if set(histories.engines) == {"loop"} else len(specs)
    records = []
    for spec, est, hist, test in zip(specs, estimators, histories, test_pairs, strict=True):
        diverged = None
        if hist.diverged_at is not None:
            # the message TrainingDiverged carries one by one: a diverged cell is a result
            diverged = str(TrainingDiverged(hist.diverged_at, float("nan"), type(est).__name__, None, hist.divergence))
        seconds = hist.seconds if size == 1 else wall / size
        records.append(
            cell_record(spec, est, test, diverged=diverged, seconds=seconds, ensemble_size=size, ensemble_seconds=wall)
        )
    return records
