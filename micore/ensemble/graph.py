"""An ensemble's whole step (forward, backward, Adam) as one CUDA graph, replayed every step (issue 10).

On a GPU the seed's models are tiny: a K-member step of the separable critic is a few hundred
kernels of microseconds each, so the time goes to launching them from Python, not to computing.
A CUDA graph records the kernels of one step once and replays them with a single launch; the
parameters, Adam's state, the batch and the outputs live at fixed addresses, so each step copies
its batch into the graph's input tensors, replays, and reads the loss and value from its outputs.
The arithmetic is the eager step's, kernel for kernel (``tests/micore/ensemble/test_precision_graphs.py`` compares
them on CUDA), so the members' histories do not change.

What a graph cannot hold, and how it is handled:

* Python state the step changes (ReMINE's window slot, a counter): a replay would not change it.
  :func:`~micore.ensemble.chunk.changed_state` is checked after the eager steps; such a step stays eager.
* a host sync inside the step (``.item()``, a data-dependent branch): capture fails; the chunk
  warns and goes on eagerly, from the same state (a capture runs nothing).
* a change of K (a diverged member dropped): the graph is discarded and the chunk goes on eagerly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..training.precision import forward_precision

__all__ = ["GraphedStep", "WARMUP_STEPS"]

# Eager steps on a side stream before capture, as PyTorch's whole-network capture recipe asks: lazy
# initialisation (cuBLAS workspaces, Adam's state, autograd's streams) must happen outside the graph.
WARMUP_STEPS = 3


class GraphedStep:
    """``step(params, buffers, x, y)``, its backward and ``optimizer.step()``, captured once, replayed per step.

    Args:
        step_fn: the ensemble's step over stacked tensors (``loss [K], value [K] | None``).
        params, buffers: the stacked leaves (the graph reads and updates them in place).
        optimizer: Adam over ``params``, built with ``capturable=True``.
        x, y: a batch of the right shape, dtype and device (its values are not used).
        precision: the forward pass's precision (:mod:`micore.training.precision`).
    """

    def __init__(self, step_fn: Callable, params: dict, buffers: dict, optimizer, x: Tensor, y: Tensor, precision):
        self.x, self.y = torch.empty_like(x), torch.empty_like(y)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        try:
            with torch.cuda.graph(self.graph):
                with forward_precision(precision, x.device):
                    loss, value = step_fn(params, buffers, self.x, self.y)
                loss.sum().backward()
                optimizer.step()
        except Exception:
            optimizer.zero_grad(set_to_none=True)  # gradients allocated in the abandoned graph's pool
            raise
        self.loss = loss.detach()
        self.value = None if value is None else value.detach()

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """One training step on the batch ``(x, y)``; the outputs are overwritten by the next call."""
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss, self.value
