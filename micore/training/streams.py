"""The training data of :func:`~micore.train`: minibatches from a sampler or from tensors, one step at a time.

:func:`data_stream` is the one place a training's batches come from, for a single run and for every
member of an ensemble (which draws, for its seed, exactly the batches ``train`` would draw alone).
"""

from __future__ import annotations

import torch

from ..tasks import Sampler
from ..validation import check_pair, check_positive_int

__all__ = ["data_stream", "tensor_batches", "DEFAULT_STEPS"]

DEFAULT_STEPS = 4000  # one MI level of the seed's staircase (Song & Ermon App. B.1)


def tensor_batches(x, y, batch_size: int, generator: torch.Generator):
    """Endless shuffled minibatches, one permutation per epoch; a partial last batch is dropped."""
    n = x.shape[0]
    while True:
        perm = torch.randperm(n, generator=generator).to(x.device)
        for i in range(n // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            yield x[idx], y[idx]


def _sampler_stream(estimator, data: Sampler, y, *, steps, epochs, batch_size: int, seed: int, device, name: str):
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
        steps = data.default_steps or DEFAULT_STEPS
    dtype = estimator.dtype
    gen = torch.Generator(device=device).manual_seed(seed)

    def batches():
        for step in range(steps):
            xb, yb = data.sample_at(step, batch_size, generator=gen, device=device)
            yield xb.to(dtype), yb.to(dtype)

    true_mi = [data.mi_at(s) for s in range(steps)]
    return steps, batches, true_mi


def _tensor_stream(estimator, x, y, *, steps, epochs, batch_size: int, seed: int, device):
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
    stream = tensor_batches(x, y, batch_size, torch.Generator().manual_seed(seed))

    def batches():
        for _ in range(steps):
            yield next(stream)

    return steps, batches, None


def data_stream(estimator, data, y, *, steps, epochs, batch_size: int, seed: int, device, name: str):
    """The training data of one run: ``(steps, batches, true_mi)`` (``steps`` not yet checked).

    ``data`` is a :class:`~micore.tasks.Sampler` (``y`` omitted; default steps: the sampler's
    ``default_steps``, else :data:`DEFAULT_STEPS`) or tensors ``x: [n, *x_shape]`` with ``y: [n, *y_shape]``
    (shuffled each epoch; ``epochs`` counts whole passes). ``batches()`` yields the ``steps`` minibatches,
    already on ``device`` (and, from a sampler, in the estimator's dtype); ``true_mi`` is the sampler's
    exact MI per step, ``None`` for tensor data.
    """
    if isinstance(data, Sampler):
        return _sampler_stream(
            estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device, name=name
        )
    return _tensor_stream(
        estimator, data, y, steps=steps, epochs=epochs, batch_size=batch_size, seed=seed, device=device
    )
