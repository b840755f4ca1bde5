"""The training loop shared by every estimator: Adam on its objective, the batches of :mod:`.streams`, the
check of :mod:`.divergence` every few steps, threads (:mod:`.threads`) and precision (:mod:`.precision`)."""

from __future__ import annotations

import math
import time
import warnings

import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from ..validation import check_positive_float, check_positive_int
from .divergence import DivergenceWatch
from .history import TrainingDiverged, TrainingHistory
from .precision import check_precision, forward_precision, precision_scope
from .streams import data_stream
from .threads import training_threads, using_threads

__all__ = ["train", "DIVERGENCE"]

# What train() does on a divergence: stop with TrainingDiverged, or train on and note it in the history.
DIVERGENCE = ("raise", "ignore")


def train(
    estimator,
    data,
    y=None,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
    record: bool = True,
    check_every: int = 10,
    desc: str | None = None,
    divergence: str = "raise",
    monitor=None,
    monitor_every: int = 100,
    precision: str = "fp32",
    compile: bool = False,
) -> TrainingHistory:
    """Trains ``estimator`` (an :class:`~micore.estimator.MIEstimator`) with Adam.

    Args:
        data: a :class:`~micore.tasks.Sampler` (fresh samples every step), or ``x: [n, *x_shape]``
            with ``y: [n, *y_shape]`` given as the second argument (shuffled each epoch).
        steps: gradient steps. Default: a staircase's full schedule, else 4000 (one seed level).
        epochs: passes over tensor data instead of ``steps`` (tensor data only).
        batch_size: default the estimator's ``default_batch_size`` (64, the seed's).
        lr: Adam learning rate, betas (0.9, 0.999); default the estimator's ``default_lr``.
        seed: seeds the batch order or the sampler, and any sampling inside the model. Weight
            initialisation follows the global torch seed when the estimator is built.
        device: default CUDA when available, else CPU. The estimator is moved there.
        progress: show a tqdm bar.
        record: keep the per-step batch estimate (free: it reuses the training forward pass).
        check_every: check for divergence every this many steps (each check synchronises with the
            device once, whatever the number of steps it covers).
        divergence: ``"raise"`` (default) stops at the first diverged step with
            :class:`TrainingDiverged` naming it and carrying the history before it (also left in
            ``estimator.history``); ``"ignore"`` trains to the end and only notes that step in
            ``history.diverged_at`` / ``history.divergence``, for studying divergence on purpose.
            A step diverged when its loss or recorded batch estimate is NaN/inf, its batch estimate
            lies outside ``estimator.value_range(batch_size)`` (what the bound makes impossible:
            InfoNCE above ``log n``, say), or its loss magnitude exceeds :data:`LOSS_GROWTH` times
            ``max(|loss at step 0|, LOSS_FLOOR)``. Without ``record`` only the loss is checked.
        monitor: ``monitor(steps_done) -> bool``, called every ``monitor_every`` steps (after that
            step's update and divergence check); ``True`` stops training there, and the history then
            holds the steps done. Early stopping on held-out data uses it (:mod:`micore.finite.heldout`).
        monitor_every: steps between calls of ``monitor``.
        precision: ``"fp32"`` (default), ``"tf32"`` (CUDA's matrix units in TF32) or ``"bf16"``
            (forward pass and loss under bf16 autocast; weights and Adam in float32); see
            :mod:`micore.training.precision`. Recorded in the history.
        compile: run the forward pass and loss through ``torch.compile`` (fused element-wise work;
            ``benchmarks/compile_speed.py``: the joint critic's step 1.15x faster on 2 CPU cores after
            12 s of compiling, so it pays beyond ~8,000 steps). Where compiling fails (no compiler,
            an unsupported operation) the run warns and goes on eagerly from the same state.
    """
    name = type(estimator).__name__
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if divergence not in DIVERGENCE:
        raise ValueError(f"divergence must be one of {DIVERGENCE}, got {divergence!r}")
    batch_size = check_positive_int(
        estimator.default_batch_size if batch_size is None else batch_size, "batch_size", minimum=2
    )
    lr = check_positive_float(estimator.default_lr if lr is None else lr, "lr")
    check_every = check_positive_int(check_every, "check_every")
    if monitor is not None and not callable(monitor):
        raise ValueError(f"monitor must be a callable monitor(steps_done) -> bool, got {type(monitor).__name__}")
    monitor_every = check_positive_int(monitor_every, "monitor_every")
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    device = resolve_device(device)
    precision = check_precision(precision, device)
    step_fn = _Step(estimator, compile)  # torch.compile is lazy: this only checks and wraps
    params = [p for p in estimator.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{name} has no trainable parameters: there is nothing to fit")
    estimator.to(device)

    steps, batches, true_mi = data_stream(
        estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device, name=name
    )
    steps = check_positive_int(steps, "steps")
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    losses = torch.zeros(steps, device=device, dtype=torch.float64)
    values = torch.full((steps,), math.nan, device=device, dtype=torch.float64) if record else None
    watch = DivergenceWatch(estimator, name, batch_size, losses, values)
    # small models on a shared CPU: the idle cores (micore.set_threads), restored afterwards
    with using_threads(training_threads() if device.type == "cpu" else None) as n_threads:
        meta = dict(batch_size=batch_size, lr=lr, seed=seed, device=str(device), threads=n_threads)
        if precision != "fp32":
            meta["precision"] = precision
        checked, diverged_at, reason = 0, None, None
        bar = tqdm(
            total=steps,
            desc=(desc or f"fit {name}") + (f" [{n_threads} thr]" if device.type == "cpu" else ""),
            unit="step",
            disable=not progress,
            leave=False,
        )
        start = time.perf_counter()
        fork_devices = [device] if device.type == "cuda" else []
        estimator.train()
        with torch.random.fork_rng(devices=fork_devices), precision_scope(precision, device):
            torch.manual_seed(seed)
            for step, (xb, yb) in enumerate(batches()):
                with forward_precision(precision, device):
                    loss, value = step_fn(xb, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses[step] = loss.detach()
                if record and value is not None:
                    values[step] = value.detach()
                elif record:
                    watch.values = None  # the estimator gives no per-step value: only the loss is checked
                watched = monitor is not None and (step + 1) % monitor_every == 0
                if (step + 1) % check_every == 0 or step + 1 == steps or watched:
                    bad = watch.first_bad(checked, step + 1) if diverged_at is None else None
                    if bad is not None:
                        diverged_at, reason = bad, watch.reason(bad)
                        if divergence == "raise":
                            bar.close()
                            partial = watch.history(
                                bad,
                                true_mi,
                                diverged_at=bad,
                                divergence=reason,
                                seconds=time.perf_counter() - start,
                                **meta,
                            )
                            estimator.history = partial
                            raise TrainingDiverged(bad, float(losses[bad]), name, partial, reason)
                    bar.update(step + 1 - checked)
                    checked = step + 1
                    if progress:
                        _show(bar, losses, values if record and value is not None else None, step)
                if watched and monitor(step + 1):
                    done = step + 1
                    break
            else:
                done = steps
    bar.close()
    estimator.batch_size = batch_size
    history = watch.history(
        done, true_mi, diverged_at=diverged_at, divergence=reason, seconds=time.perf_counter() - start, **meta
    )
    estimator.history = history
    return history


class _Step:
    """The estimator's ``_training_step``, through ``torch.compile`` when asked; a compiler failure (at
    construction or on the first call, where compiling happens) warns once and runs eagerly."""

    def __init__(self, estimator, compile: bool):
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        self.estimator, self.fn, self.first = estimator, estimator._training_step, compile
        if compile:
            try:
                self.fn = torch.compile(estimator._training_step)
            except Exception as err:  # noqa: BLE001 - no compiler here: the eager step computes the same
                self._eager(err)

    def __call__(self, x, y):
        if not self.first:
            return self.fn(x, y)
        self.first = False
        try:
            return self.fn(x, y)
        except Exception as err:  # noqa: BLE001 - as above
            self._eager(err)
            return self.fn(x, y)

    def _eager(self, err: Exception) -> None:
        self.first, self.fn = False, self.estimator._training_step
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        warnings.warn(
            f"train: torch.compile failed for {type(self.estimator).__name__} ({type(err).__name__}: {message}); "
            "training eagerly instead",
            stacklevel=4,
        )


def _show(bar, losses: torch.Tensor, values: torch.Tensor | None, step: int) -> None:
    post = {"loss": f"{float(losses[step]):.3f}"}
    if values is not None:
        post["mi"] = f"{float(values[step]):.3f}"
    bar.set_postfix(post, refresh=False)
