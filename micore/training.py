"""The training loop shared by every estimator, and how it tells a diverged run.

A run diverged at the first step where the loss or the recorded batch estimate is NaN/inf, the
batch estimate lies outside ``estimator.value_range(batch_size)`` (what the bound's formula makes
impossible: InfoNCE above :math:`\\log n`; DV below -100 nats, which needs a critic claiming a
log-ratio past 50 nats, see :mod:`discmi.bounds`), or the loss exceeds :data:`LOSS_GROWTH` times its
scale before the first update. With a too-large learning rate MINE, DV and InfoNCE otherwise end in
finite garbage (-1e5 nats and sinking, or a dead critic giving 0). The check runs on the device
every ``check_every`` steps, one synchronisation each; :class:`TrainingDiverged` names the step,
says what was impossible, and carries the history before it.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from .precision import check_precision, forward_precision, precision_scope
from .tasks import Sampler, Staircase
from .threads import training_threads, using_threads
from .validation import check_pair, check_positive_float, check_positive_int

__all__ = ["TrainingDiverged", "TrainingHistory", "train", "default_device", "resolve_device", "DIVERGENCE"]

DEFAULT_STEPS = 4000  # one MI level of the seed's staircase (Song & Ermon App. B.1)

# What train() does on a divergence: stop with TrainingDiverged, or train on and note it in the history.
DIVERGENCE = ("raise", "ignore")
# A loss whose magnitude exceeds LOSS_GROWTH x max(|loss before the first update|, LOSS_FLOOR) has exploded.
# The loss at step 0 is taken before any update, so a too-large learning rate cannot inflate it; the floor
# (1 nat) stands in for losses that start near 0 (every bound's value with a near-constant critic). Healthy
# runs stay far below: 2.5x in the short trainings, 13x on the seed's staircase at 100 steps per level,
# 167x for NWJ over the full 20k-step Gaussian staircase (DV gets to 3261x there at MI 10, long after its
# batch value left its range at MI 8). See tests/test_divergence.py.
LOSS_GROWTH, LOSS_FLOOR = 1e4, 1.0
RANGE_SLACK = 1e-3  # nats beyond an end of value_range allowed for float rounding (InfoNCE at log n)


class TrainingDiverged(FloatingPointError):
    """Training diverged; the message names the first bad step and what was impossible about it.

    Raised for a NaN/inf loss or batch estimate, a batch estimate outside the estimator's
    ``value_range(batch_size)``, or a loss grown :data:`LOSS_GROWTH` times past its initial scale.
    ``history`` holds the run up to (not including) ``step``; ``reason`` says what went wrong.
    """

    def __init__(
        self, step: int, value: float, estimator: str, history: TrainingHistory | None = None, reason: str | None = None
    ):
        self.step = step
        self.history = history
        self.reason = reason or f"the loss became {value}"
        super().__init__(
            f"{estimator} training diverged at step {step}: {self.reason}. Try a lower learning rate, a larger "
            "batch size, or a bounded objective (e.g. SMILE, JS); fit(..., divergence='ignore') trains on regardless."
        )


@dataclass
class TrainingHistory:
    """Per-step record of one training run.

    ``estimate[i]`` is the estimator's MI value on batch ``i``, computed before the update on
    that batch (so for a sampler every value is on samples the model has not been trained on).
    ``true_mi[i]`` is the sampler's exact MI at step ``i`` (``None`` for tensor data).
    ``diverged_at`` is the first step found diverged (``None`` if none) and ``divergence`` why: with
    ``divergence="raise"`` it is the partial history of :class:`TrainingDiverged`, which ends there.
    """

    loss: list[float]
    estimate: list[float] | None
    true_mi: list[float] | None
    batch_size: int
    lr: float
    seed: int
    device: str
    seconds: float
    diverged_at: int | None = None
    divergence: str | None = None
    threads: int | None = None  # torch's intra-op threads during the run (see micore.threads)
    precision: str = "fp32"  # the step's arithmetic (see micore.precision)
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.steps = len(self.loss)

    def to_dict(self) -> dict:
        return asdict(self)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    """``device`` as a torch device that exists here (``None``: CUDA when available, else CPU).

    A CUDA device without a GPU, or past the GPUs torch sees, is a ``ValueError`` naming ``device``
    (not a traceback from inside torch at the first tensor moved).
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"device: {device!r} is not a torch device ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device: {device!r} asks for CUDA, but torch sees no GPU here (torch {torch.__version__}); use cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {device!r}, but torch sees {torch.cuda.device_count()} GPU(s) here")
    return dev


def _tensor_batches(x, y, batch_size: int, generator: torch.Generator):
    """Endless shuffled minibatches, one permutation per epoch; a partial last batch is dropped."""
    n = x.shape[0]
    while True:
        perm = torch.randperm(n, generator=generator).to(x.device)
        for i in range(n // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            yield x[idx], y[idx]


def _sampler_stream(estimator, data: Sampler, y, *, steps, epochs, batch_size: int, seed: int, device, name: str):
    """Checks a sampler against ``estimator``; returns ``(steps, batches, true_mi)`` (``steps`` not yet checked)."""
    if y is not None:
        raise ValueError("y must be omitted when data is a Sampler (it draws both x and y)")
    if epochs is not None:
        raise ValueError("epochs needs a finite dataset; a Sampler is endless, give steps instead")
    if tuple(data.x_shape) != estimator.x_shape or tuple(data.y_shape) != estimator.y_shape:
        raise ValueError(
            f"the sampler draws x {list(data.x_shape)} and y {list(data.y_shape)}, but {name} "
            f"was built for x_dim={list(estimator.x_shape)}, y_dim={list(estimator.y_shape)}"
        )
    if steps is None:
        steps = data.total_steps if isinstance(data, Staircase) else DEFAULT_STEPS
    dtype = estimator.dtype
    gen = torch.Generator(device=device).manual_seed(seed)

    def batches():
        for step in range(steps):
            xb, yb = data.sample_at(step, batch_size, generator=gen, device=device)
            yield xb.to(dtype), yb.to(dtype)

    true_mi = [data.mi_at(s) for s in range(steps)]
    return steps, batches, true_mi


def _tensor_stream(estimator, x, y, *, steps, epochs, batch_size: int, seed: int, device):
    """Checks tensor data against ``estimator``; returns ``(steps, batches, None)`` (``steps`` not yet checked)."""
    if y is None:
        raise ValueError("y is missing: pass fit(x, y, ...) or a Sampler")
    x, y = check_pair(x, y, estimator.x_shape, estimator.y_shape, estimator.dtype)
    if x.shape[0] < batch_size:
        raise ValueError(f"batch_size ({batch_size}) is larger than the number of samples ({x.shape[0]})")
    per_epoch = x.shape[0] // batch_size
    if epochs is not None:
        steps = check_positive_int(epochs, "epochs") * per_epoch
    elif steps is None:
        steps = DEFAULT_STEPS
    x, y = x.to(device), y.to(device)
    stream = _tensor_batches(x, y, batch_size, torch.Generator().manual_seed(seed))

    def batches():
        for _ in range(steps):
            yield next(stream)

    return steps, batches, None


def _data_stream(estimator, data, y, *, steps, epochs, batch_size: int, seed: int, device, name: str):
    """The training data of :func:`train`: ``(steps, batches, true_mi)``.

    ``batches()`` yields the ``steps`` minibatches, already on ``device`` (and, from a sampler, in the
    estimator's dtype); ``true_mi`` is the sampler's exact MI per step, ``None`` for tensor data.
    """
    if isinstance(data, Sampler):
        return _sampler_stream(
            estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device, name=name
        )
    return _tensor_stream(
        estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device
    )


class _Watch:
    """The divergence check of :func:`train`, on a window of steps at a time (one host-device sync each).

    A step diverged when its loss is NaN/inf or exceeds ``LOSS_GROWTH * max(|loss[0]|, LOSS_FLOOR)``,
    or its recorded batch estimate is NaN/inf or outside ``estimator.value_range(batch_size)``.
    """

    def __init__(self, estimator, name: str, batch_size: int, losses: torch.Tensor, values: torch.Tensor | None):
        value_range = getattr(estimator, "value_range", None)
        self.low, self.high = value_range(batch_size) if value_range is not None else (-math.inf, math.inf)
        self.name, self.batch_size, self.losses = name, batch_size, losses
        self.recorded = values  # the per-step estimates kept for the history
        self.values = values  # those checked: None without record, or for an estimator that gives none
        self.loss_cap: torch.Tensor | None = None  # on the device, from the loss before the first update

    def first_bad(self, start: int, stop: int) -> int | None:
        """The first diverged step in ``[start, stop)``, or ``None``."""
        if self.loss_cap is None:
            self.loss_cap = LOSS_GROWTH * self.losses[0].abs().clamp_min(LOSS_FLOOR)
        loss = self.losses[start:stop]
        bad = ~torch.isfinite(loss) | (loss.abs() > self.loss_cap)
        if self.values is not None:
            v = self.values[start:stop]
            bad |= ~torch.isfinite(v) | (v < self.low - RANGE_SLACK) | (v > self.high + RANGE_SLACK)
        if not bool(bad.any()):
            return None
        return start + int(bad.nonzero()[0, 0])

    def reason(self, step: int) -> str:
        """What made ``step`` diverged, for the message."""
        loss = float(self.losses[step])
        value = None if self.values is None else float(self.values[step])
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        if value is not None and not math.isfinite(value):
            return f"the batch estimate became {value}"
        if value is not None and not self.low - RANGE_SLACK <= value <= self.high + RANGE_SLACK:
            side = "below" if value < self.low else "above"
            return (
                f"the batch estimate {value:.4g} nats is {side} [{self.low:.4g}, {self.high:.4g}], the range of "
                f"{self.name}'s value on a batch of {self.batch_size} (see {self.name}.value_range)"
            )
        scale = max(abs(float(self.losses[0])), LOSS_FLOOR)
        return f"the loss {loss:.4g} grew past {LOSS_GROWTH:g} times its initial scale {scale:.3g}"

    def partial(self, step: int, reason: str, true_mi: list[float] | None, **meta) -> TrainingHistory:
        """The history before ``step``."""
        return TrainingHistory(
            loss=self.losses[:step].cpu().tolist(),
            estimate=self.recorded[:step].cpu().tolist() if self.recorded is not None else None,
            true_mi=true_mi[:step] if true_mi else None,
            diverged_at=step,
            divergence=reason,
            **meta,
        )


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
            holds the steps done. Early stopping on held-out data uses it (:mod:`micore.heldout`).
        monitor_every: steps between calls of ``monitor``.
        precision: ``"fp32"`` (default), ``"tf32"`` (CUDA's matrix units in TF32) or ``"bf16"``
            (forward pass and loss under bf16 autocast; weights and Adam in float32); see
            :mod:`micore.precision`. Recorded in the history.
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

    steps, batches, true_mi = _data_stream(
        estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device, name=name
    )
    steps = check_positive_int(steps, "steps")
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    losses = torch.zeros(steps, device=device, dtype=torch.float64)
    values = torch.full((steps,), math.nan, device=device, dtype=torch.float64) if record else None
    watch = _Watch(estimator, name, batch_size, losses, values)
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
                            partial = watch.partial(bad, reason, true_mi, seconds=time.perf_counter() - start, **meta)
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
    history = TrainingHistory(
        loss=losses[:done].cpu().tolist(),
        estimate=values[:done].cpu().tolist() if record else None,
        true_mi=true_mi[:done] if true_mi else None,
        seconds=time.perf_counter() - start,
        diverged_at=diverged_at,
        divergence=reason,
        **meta,
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
