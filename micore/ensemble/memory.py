"""How many members fit: the memory one member adds, the K that fits a budget, and near-equal chunks of K.

:func:`member_memory` measures one member's training step; :func:`members_for_memory` turns a memory
budget into the largest K; :func:`chunk_ranges` splits K members into near-equal chunks of at most a
cap (what :func:`~micore.ensemble.train_ensemble` trains one after another, and how a runner splits a
group of runs into units of work).
"""

from __future__ import annotations

import copy
import os

import torch
from torch import Tensor, nn

from ..device import resolve_device
from ..validation import check_positive_int

__all__ = ["member_memory", "members_for_memory", "available_memory", "chunk_ranges", "AUTO_MEMORY_FRACTION"]

# max_members="auto": the members that fit this fraction of the free memory; the per-member estimate
# (member_memory) leaves out the allocator's slack and single operations' temporaries.
AUTO_MEMORY_FRACTION = 0.5


def chunk_ranges(n: int, cap: int | None) -> list[range]:
    """``range(n)`` in near-equal consecutive chunks of at most ``cap`` (``None``: one chunk).

    >>> chunk_ranges(7, 3)
    [range(0, 3), range(3, 5), range(5, 7)]
    """
    if n <= 0:
        return []
    cap = n if cap is None else check_positive_int(cap, "cap")
    count = -(-n // cap)
    size, extra = divmod(n, count)
    out, start = [], 0
    for i in range(count):
        stop = start + size + (i < extra)
        out.append(range(start, stop))
        start = stop
    return out


def _tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total


def member_memory(estimator: nn.Module, batch_size: int, device=None) -> dict[str, int]:
    """The memory one member adds to an ensemble, in bytes, from one training step of a copy.

    ``parameters``: the parameters, their gradients and Adam's two moments (4x the parameters);
    ``activations``: what autograd saves for the backward pass (counted with
    ``torch.autograd.graph.saved_tensors_hooks``), doubled for the gradients of the activations that
    exist during the backward pass; ``data``: the member's batch. The step runs on zero inputs of
    ``[batch_size, *shape]`` (sizes do not depend on the values; a step that fails on them counts no
    activations). An estimate: the allocator's rounding and single operations' temporaries are not
    counted.
    """
    model = copy.deepcopy(estimator)
    if device is not None:
        model.to(device)
    dev, dtype = model.device, model.dtype
    x = torch.zeros(batch_size, *model.x_shape, device=dev, dtype=dtype)
    y = torch.zeros(batch_size, *model.y_shape, device=dev, dtype=dtype)
    params = list(model.parameters())
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    saved: list[Tensor] = []

    def pack(t: Tensor):
        if t.untyped_storage().data_ptr() not in param_ptrs:
            saved.append(t)
        return t

    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model._training_step(x, y)
    except Exception:  # noqa: BLE001 - a step that cannot run on zeros: parameters and data only
        saved.clear()
    param_bytes = 4 * sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    param_bytes += sum(p.numel() * p.element_size() for p in params if not p.requires_grad)
    param_bytes += sum(b.numel() * b.element_size() for b in model.buffers())
    activations = 2 * _tensor_bytes(saved)
    data = x.numel() * x.element_size() + y.numel() * y.element_size()
    return {"parameters": param_bytes, "activations": activations, "data": data}


def available_memory(device: torch.device) -> int:
    """Bytes free for a training: CUDA's free memory, or the CPU's ``MemAvailable`` (``/proc/meminfo``)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return int(pages * size)


def members_for_memory(
    estimator: nn.Module,
    batch_size: int,
    *,
    budget_bytes: int | None = None,
    device=None,
    fraction: float = AUTO_MEMORY_FRACTION,
) -> int:
    """The largest K whose ensemble of ``estimator``'s architecture fits ``budget_bytes`` (at least 1).

    ``budget_bytes`` defaults to ``fraction`` of :func:`available_memory` on ``device`` (default the
    estimator's device): the per-member estimate of :func:`member_memory` leaves out the allocator's
    slack and the temporaries of single operations, hence the margin.
    """
    dev = resolve_device(device if device is not None else (estimator.device or "cpu"))
    if budget_bytes is None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        budget_bytes = int(fraction * available_memory(dev))
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes <= 0:
        raise ValueError(f"budget_bytes must be a positive int, got {budget_bytes!r}")
    per_member = sum(member_memory(estimator, batch_size, dev).values())
    return max(1, budget_bytes // max(per_member, 1))
