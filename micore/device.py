"""Where a computation runs: the default device and the check that a requested one exists here."""

from __future__ import annotations

import torch

__all__ = ["default_device", "resolve_device", "device_name"]


def default_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    """``device`` as a torch device that exists here (``None``: CUDA when available, else CPU).

    A CUDA device without a GPU, or past the GPUs torch sees, is a ``ValueError`` naming ``device``
    (not a traceback from inside torch at the first tensor moved).

    >>> resolve_device("cpu")
    device(type='cpu')
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


def device_name(device=None) -> str:
    """:func:`resolve_device` as text (``"cpu"``, ``"cuda"``, ``"cuda:1"``): how a run that travels to another
    process or into a result file names its device."""
    return str(resolve_device(device))
