"""Arithmetic precision of a training step: fp32, TF32 matrix units, or bf16 autocast (issue 10).

On a GPU the seed's models are far too small to fill the chip in float32; the matrix units run
TF32 (10-bit mantissa, float32 range) at several times float32's rate and bf16 (7-bit mantissa) at
twice that again. What the lower precision does to an estimate is a research question, not a
detail: the joint critic's scores enter exponentials (NWJ's ``e^{T-1}``, the log-partition), so a
rounding error of ``eps * |T|`` in a score moves the estimate by as much. Every precision is
therefore an explicit choice, recorded with the run, and the benchmark keeps runs of different
precisions apart (``selfconsistency bench --precision``).

* ``"fp32"`` (default): float32 throughout; TF32 switched off for the step whatever the process set.
* ``"tf32"``: float32 tensors, matrix products and convolutions on TF32 units (CUDA only: the CPU
  has no such units, so asking for it there is an error rather than a silent fp32 run).
* ``"bf16"``: the forward pass and the loss under ``torch.autocast(dtype=torch.bfloat16)``: matrix
  products in bf16, reductions, exponentials and logarithms in float32 (autocast's own lists);
  parameters, gradients and Adam stay float32. Works on the CPU too (slowly: for testing).

Example::

    >>> with forward_precision("bf16", torch.device("cpu")):
    ...     (torch.ones(2, 3) @ torch.ones(3, 2)).dtype
    torch.bfloat16
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["PRECISIONS", "check_precision", "precision_scope", "forward_precision"]

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str, device: torch.device, name: str = "precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and ``device`` can run it, else ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}")
    if precision == "tf32" and torch.device(device).type != "cuda":
        raise ValueError(
            f"{name}='tf32' needs a CUDA device (TF32 is a mode of NVIDIA's matrix units), got device "
            f"{torch.device(device)}; use 'fp32', or 'bf16' to test reduced precision on the CPU"
        )
    return precision


@contextlib.contextmanager
def precision_scope(precision: str, device: torch.device) -> Iterator[None]:
    """The matrix-unit mode of a whole training (forward and backward): TF32 on for ``"tf32"``, off for
    the others, restored afterwards. Nothing to switch off the GPU."""
    device = torch.device(device)
    check_precision(precision, device)
    if device.type != "cuda":
        yield
        return
    allow = precision == "tf32"
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forward_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context of one step's forward pass and loss: bf16 autocast for ``"bf16"``, else nothing.

    Enclose the forward pass and the loss, not ``backward()``: autocast's backward follows the
    forward's casts by itself.
    """
    if precision == "bf16":
        # no cast cache: a step captured as a CUDA graph must recast the weights Adam updated in place
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
