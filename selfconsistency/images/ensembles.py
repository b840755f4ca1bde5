"""Cells of the image suite trained as ensembles (issue 10): one batched model for the cells that share a shape.

The cells of one estimator on one dataset differ in the rows ``t`` kept, the seed and the measure;
those whose measure gives the same input shapes (``rows`` and the transforms: ``(C, H, W)``; the
``-dp``/``-add`` pairs: ``(2C, H, W)``) train the same architecture for the same number of steps,
each on its own paired images. :func:`group_cells` marks them as one
:class:`~selfconsistency.runner.Group`; :func:`train_cells` trains the group with
:func:`micore.train_ensemble` (member k: the weights ``run_cell`` draws for its seed, its own
training pairs and batch order) and evaluates every member on its own held-out pairs, as
:func:`~.suite.run_cell` does. Each cell's record is written as its own (``ensemble_size`` and
``ensemble_seconds`` added), so resuming, verdicts and figures do not change; the numbers equal the
one-by-one cells' up to float rounding (``tests/test_selfconsistency_ensembles.py``).

On the CPU the paper's conv critic is compute-bound and an ensemble gains little, so
``selfconsistency check`` groups only on CUDA unless ``--ensemble auto`` asks for it. Estimators whose
step cannot batch (``MIEstimator.ensemble_batches``: gm-vae's random draws, gm-flow) are not grouped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace

import torch

from micore import TrainingDiverged, train_ensemble
from micore.validation import check_positive_int

from ..runner import Group, Run
from .settings import measure_shapes
from .suite import _build, _images, _pairs, _resolve

__all__ = ["group_cells", "train_cells"]


def _is_pair(measure: str) -> bool:
    """The ``-dp``/``-add`` measures pair two images on the channels (:func:`~.settings.measure_shapes`)."""
    return measure.endswith(("-dp", "-add"))


def _key(args: tuple):
    """What cells must share to train as one model: estimator, configuration, device, data, input shape."""
    make, name, measure, _t, _seed, config, data_root, device = args
    return (name, repr(make), json.dumps(config, sort_keys=True), str(data_root), device, _is_pair(measure))


def _batches(make, config: dict, data_root, device: str) -> bool:
    """Whether the estimator's step can batch (its class says so; building it draws weights, so aside)."""
    images = _images(config["dataset"], data_root, device)
    with torch.random.fork_rng(devices=[]):
        est = _build(_resolve(make, config["dataset"]), *measure_shapes("rows", images.shape))
    return type(est).ensemble_batches


def group_cells(runs: Sequence[Run], *, max_members: int | None = None) -> list[Run]:
    """``runs`` (cells from :func:`~.suite.plan`) with a :class:`~selfconsistency.runner.Group` on those that
    can share one model; a cell with no partner, or of an estimator that cannot batch, stays alone."""
    if max_members is not None:
        check_positive_int(max_members, "max_members")
    runs = list(runs)
    members: dict[tuple, list[int]] = {}
    batches: dict[tuple, bool] = {}
    for i, run in enumerate(runs):
        key = _key(run.args)
        if key[:5] not in batches:
            make, _, _, _, _, config, data_root, device = run.args
            batches[key[:5]] = _batches(make, config, data_root, device)
        if batches[key[:5]]:
            members.setdefault(key, []).append(i)
    out = list(runs)
    for indices in members.values():
        if len(indices) < 2:
            continue
        first = runs[indices[0]].args
        kind = "pairs" if _is_pair(first[2]) else "single images"
        group = Group(
            key=f"ensemble {first[1]} {kind} ({len(indices)} cells)",
            fn=train_cells,
            args=(max_members,),
            max_members=max_members,
        )
        for i in indices:
            out[i] = replace(runs[i], group=group)
    return out


def train_cells(member_args: Sequence[tuple], max_members: int | None = None, progress: bool = True) -> list[dict]:
    """Trains the cells ``member_args`` (each :func:`~.suite.run_cell`'s arguments, all of one :func:`_key`) as
    ensembles and evaluates each on its held-out pairs; returns their records, in that order."""
    member_args = [tuple(a) for a in member_args]
    if not member_args:
        return []
    if len({_key(a) for a in member_args}) != 1:
        raise ValueError("train_cells: the cells differ in estimator, configuration, device or input shape")
    make, name, measure0, _, _, config, data_root, device = member_args[0]
    dataset = config["dataset"]
    images = _images(dataset, data_root, device)
    factory = _resolve(make, dataset)
    x_shape, y_shape = measure_shapes(measure0, images.shape)
    estimators, train_pairs, test_pairs, seeds = [], [], [], []
    for _, _, measure, t, seed, _, _, _ in member_args:
        torch.manual_seed(seed)  # weight initialisation, as run_cell
        estimators.append(_build(factory, x_shape, y_shape))
        train_pairs.append(_pairs(measure, t, images.train, seed, 0, config["dp_offset"]))
        test_pairs.append(_pairs(measure, t, images.test, seed, 1, config["dp_offset"]))
        seeds.append(seed)
    # fit(epochs=E) runs E passes of n // batch_size steps over the same shuffled batches
    steps = config["epochs"] * (len(train_pairs[0][0]) // config["batch_size"])
    start = time.perf_counter()
    histories = train_ensemble(
        estimators,
        train_pairs,
        seeds=seeds,
        steps=steps,
        batch_size=config["batch_size"],
        lr=config["lr"],
        device=device,
        progress=progress,
        divergence="member",
        max_members="auto" if max_members is None else max_members,
        desc=f"{name} {len(member_args)} cells",
    )
    wall = time.perf_counter() - start
    size = 1 if set(histories.engines) == {"loop"} else len(member_args)
    records = []
    for (_, _, measure, t, seed, _, _, _), est, hist, (x_test, y_test) in zip(
        member_args, estimators, histories, test_pairs, strict=True
    ):
        record = {"measure": measure, "t": t, "seed": seed, "estimate": None, "stderr": None, "kind": est.kind}
        record.update(n_test=len(x_test), diverged=None)
        if hist.diverged_at is not None:
            # the message TrainingDiverged carries one by one: a diverged cell is a result
            err = TrainingDiverged(hist.diverged_at, float("nan"), type(est).__name__, None, hist.divergence)
            record["diverged"] = str(err)
        else:
            try:
                e = est.estimate(x_test, y_test)
                record.update(estimate=e.value, stderr=e.stderr, n_test=e.n, kind=e.kind, eval_batch_size=e.batch_size)
            except FloatingPointError as err:
                record["diverged"] = str(err)
        record["seconds"] = hist.seconds if size == 1 else wall / size
        record["steps"] = len(hist.loss)
        record.update(estimator=name, dataset=dataset, config=config, device=device)
        record.update(ensemble_size=size, ensemble_seconds=wall)
        records.append(record)
    return records
