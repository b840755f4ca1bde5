r"""Pixel data for the generative models: the range check, uniform dequantization, and the
discretized logistic likelihood.

Images are ``[n, C, H, W]`` with intensities in ``[0, 1]`` (8-bit data divided by 255, or any
set of levels at least 1/255 apart, e.g. scikit-learn's 17-level digits divided by 16).
Both treatments below keep the MI of the quantized pixels intact:

* **dequantization** (flows): :math:`\tilde x = (255\,x + u) / 256`, :math:`u \sim U[0, 1)^D`
  independently for every pixel and every sample. Each level ``k/255`` owns the bin
  :math:`[k/256, (k+1)/256)`; bins of different levels never overlap, so ``x`` is a function of
  :math:`\tilde x` and :math:`I(\tilde X; \tilde Y) = I(X; Y)`.
* **discretized likelihood** (VAEs): a normalised probability mass over the 256 levels, so
  :math:`\log p(x, y) - \log p(x) - \log p(y)` is a log-ratio of proper distributions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LEVELS", "check_pixels", "dequantize", "discretized_logistic_log_prob"]

LEVELS = 256  # 8-bit pixels


def check_pixels(t: Tensor, name: str) -> None:
    """Raises a ``ValueError`` naming ``name`` unless every entry of ``t`` lies in ``[0, 1]``."""
    if t.numel() == 0:
        return
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must hold pixel intensities in [0, 1] (an image-shaped variable of a generative "
            f"model is dequantized / modelled as 8-bit pixels), got values in [{lo:.4g}, {hi:.4g}]; "
            "rescale the images, or pass dequantize=False for continuous image-shaped data"
        )


def dequantize(x: Tensor, levels: int = LEVELS) -> Tensor:
    r"""Uniform dequantization :math:`(x (L-1) + u) / L`, :math:`u \sim U[0,1)`: ``[n, ...]`` in ``[0, 1)``."""
    return (x * (levels - 1) + torch.rand_like(x)) / levels


def _log1mexp(t: Tensor) -> Tensor:
    """:math:`\\log(1 - e^t)` for ``t <= 0``, accurate at both ends (Maechler 2012)."""
    t = t.clamp(max=-torch.finfo(t.dtype).tiny)  # keeps both branches finite, so torch.where has finite gradients
    return torch.where(t > -math.log(2.0), torch.log(-torch.expm1(t)), torch.log1p(-torch.exp(t)))


def _log_sigmoid_difference(a: Tensor, b: Tensor) -> Tensor:
    r""":math:`\log(\sigma(a) - \sigma(b))` for ``a > b`` (either may be infinite).

    :math:`\sigma(a) - \sigma(b) = \sigma(-b) - \sigma(-a)`: the difference is taken on the side where
    both terms are small, so a narrow bin far in a tail does not cancel to zero.
    """
    flip = (a + b) > 0
    hi, lo = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi = F.logsigmoid(hi)
    return log_hi + _log1mexp(F.logsigmoid(lo) - log_hi)


def discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int = LEVELS) -> Tensor:
    r"""Elementwise log-probability of the level nearest ``x`` under a discretized logistic.

    Level :math:`k` of :math:`L` (centre :math:`c_k = k/(L-1)`, half-width :math:`\delta = 1/(2(L-1))`)
    has mass :math:`\sigma((c_k + \delta - \mu)/s) - \sigma((c_k - \delta - \mu)/s)`, with the first
    and last bins extended to :math:`\mp\infty` so the masses sum to one (Salimans et al. 2017,
    PixelCNN++, with a single component).

    Args:
        x: pixels in ``[0, 1]``, any shape; rounded to the nearest of the ``levels`` levels.
        mean, log_scale: :math:`\mu` and :math:`\log s`, broadcastable to ``x``.
    Returns:
        the log-masses, shaped like ``x`` after broadcasting.
    """
    k = torch.round(x * (levels - 1))
    half = 0.5 / (levels - 1)
    inv_s = torch.exp(-log_scale)
    centre = k / (levels - 1) - mean
    upper = torch.where(k >= levels - 1, torch.full_like(centre, math.inf), (centre + half) * inv_s)
    lower = torch.where(k <= 0, torch.full_like(centre, -math.inf), (centre - half) * inv_s)
    return _log_sigmoid_difference(upper, lower)
