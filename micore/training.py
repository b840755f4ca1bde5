"""The training loop shared by every estimator."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from .tasks import Sampler, Staircase
from .validation import check_pair, check_positive_float, check_positive_int

__all__ = ["TrainingDiverged", "TrainingHistory", "train", "default_device"]

DEFAULT_STEPS = 4000  # one MI level of the seed's staircase (Song & Ermon App. B.1)


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step.

    ``history`` holds the run up to (not including) that step.
    """

    def __init__(self, step: int, value: float, estimator: str, history: TrainingHistory | None = None):
        self.step = step
        self.history = history
        super().__init__(
            f"{estimator} training diverged at step {step}: the loss became {value}. "
            "Try a lower learning rate, a larger batch size, or a bounded objective (e.g. SMILE, JS)."
        )


@dataclass
class TrainingHistory:
    """Per-step record of one training run.

    ``estimate[i]`` is the estimator's MI value on batch ``i``, computed before the update on
    that batch (so for a sampler every value is on samples the model has not been trained on).
    ``true_mi[i]`` is the sampler's exact MI at step ``i`` (``None`` for tensor data).
    """

    loss: list[float]
    estimate: list[float] | None
    true_mi: list[float] | None
    batch_size: int
    lr: float
    seed: int
    device: str
    seconds: float
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.steps = len(self.loss)

    def to_dict(self) -> dict:
        return asdict(self)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def _first_nonfinite(losses: torch.Tensor, start: int, stop: int) -> int | None:
    """Index of the first NaN/inf in ``losses[start:stop]``, or ``None`` (synchronises with the device)."""
    finite = torch.isfinite(losses[start:stop])
    if bool(finite.all()):
        return None
    return start + int((~finite).nonzero()[0, 0])


def _diverged(
    name: str, bad: int, losses: torch.Tensor, values: torch.Tensor | None, true_mi: list[float] | None, **meta
) -> TrainingDiverged:
    """The :class:`TrainingDiverged` for a loss that became NaN/inf at step ``bad``, with the history before it."""
    partial = TrainingHistory(
        loss=losses[:bad].cpu().tolist(),
        estimate=values[:bad].cpu().tolist() if values is not None else None,
        true_mi=true_mi[:bad] if true_mi else None,
        **meta,
    )
    return TrainingDiverged(bad, float(losses[bad]), name, partial)


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
        check_every: check the loss for NaN/inf every this many steps (each check synchronises
            with the device); a divergence raises :class:`TrainingDiverged` naming the first bad step.
    """
    name = type(estimator).__name__
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    batch_size = check_positive_int(
        estimator.default_batch_size if batch_size is None else batch_size, "batch_size", minimum=2
    )
    lr = check_positive_float(estimator.default_lr if lr is None else lr, "lr")
    check_every = check_positive_int(check_every, "check_every")
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    device = default_device() if device is None else torch.device(device)
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
    checked = 0
    bar = tqdm(total=steps, desc=desc or f"fit {name}", unit="step", disable=not progress, leave=False)
    start = time.perf_counter()
    fork_devices = [device] if device.type == "cuda" else []
    estimator.train()
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        for step, (xb, yb) in enumerate(batches()):
            loss, value = estimator._training_step(xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[step] = loss.detach()
            if record and value is not None:
                values[step] = value.detach()
            if (step + 1) % check_every == 0 or step + 1 == steps:
                bad = _first_nonfinite(losses, checked, step + 1)
                if bad is not None:
                    bar.close()
                    raise _diverged(
                        name,
                        bad,
                        losses,
                        values,
                        true_mi,
                        batch_size=batch_size,
                        lr=lr,
                        seed=seed,
                        device=str(device),
                        seconds=time.perf_counter() - start,
                    )
                bar.update(step + 1 - checked)
                checked = step + 1
                if progress:
                    post = {"loss": f"{float(losses[step]):.3f}"}
                    if record and value is not None:
                        post["mi"] = f"{float(values[step]):.3f}"
                    bar.set_postfix(post, refresh=False)
    bar.close()
    seconds = time.perf_counter() - start
    estimator.batch_size = batch_size
    history = TrainingHistory(
        loss=losses.cpu().tolist(),
        estimate=values.cpu().tolist() if record else None,
        true_mi=true_mi,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=str(device),
        seconds=seconds,
    )
    estimator.history = history
    return history
