"""The image processings ``Y = g(X)`` of the self-consistency tests (Song & Ermon Sec. 6.2, App. B.2).

* :func:`keep_top_rows` — all but the top ``t`` rows set to zero (Figure 3);
* :func:`random_affine` — a random scaling (1–1.2×), rotation (±20°) or translation (≤ 3 px on
  28-pixel MNIST) of each image (App. B.2, Table 3).

The random parameters are drawn **per image** from a seeded generator on the data's device, and all
images are warped at once with one ``affine_grid``/``grid_sample`` call: a batch-level
``torchvision.transforms.RandomAffine`` would apply a single draw to the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TRANSFORMS", "keep_top_rows", "random_affine", "affine_matrices", "max_shift_pixels"]

TRANSFORMS = ("scaling", "rotation", "translation")

MAX_SCALE = 1.2  # App. B.2: "upscale the image randomly by 1x to 1.2x"
MAX_DEGREES = 20.0  # App. B.2: "randomly rotate the image between ±20 degrees"
MNIST_MAX_SHIFT = 3  # App. B.2: "shift ... by no more than 3 pixels" on 28-pixel MNIST


def keep_top_rows(x: Tensor, t: int) -> Tensor:
    """``x: [n, C, H, W]`` with rows ``t..H-1`` set to zero (``t = 0``: all zero; ``t = H``: ``x``)."""
    if x.dim() != 4:
        raise ValueError(f"x must be images [n, C, H, W], got shape {list(x.shape)}")
    h = x.shape[2]
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= h:
        raise ValueError(f"rows t must be an int in [0, {h}] (the image height), got {t!r}")
    out = x.clone()
    out[:, :, t:] = 0
    return out


def max_shift_pixels(height: int) -> int:
    """The paper's 3-pixel bound on 28-pixel MNIST, scaled to the image height (1 px on 8×8 digits)."""
    return max(1, round(MNIST_MAX_SHIFT * height / 28))


def affine_matrices(kind: str, n: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """``[n, 2, 3]`` sampling matrices for ``affine_grid`` (output pixel -> input location), one draw per image.

    * scaling: zoom in about the centre by ``s ~ U(1, 1.2)``: the output at ``p`` reads the input at ``p / s``;
    * rotation: by ``a ~ U(-20°, 20°)`` about the centre;
    * translation: integer shifts ``dx, dy`` uniform in ``{-m, ..., m}`` pixels with ``m =``
      :func:`max_shift_pixels` (integers, as torchvision's ``RandomAffine``; bilinear sampling of an
      integer shift is exact).
    """
    dev = generator.device
    theta = torch.zeros(n, 2, 3, device=dev)
    if kind == "scaling":
        s = 1.0 + (MAX_SCALE - 1.0) * torch.rand(n, generator=generator, device=dev)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / s
    elif kind == "rotation":
        a = math.radians(MAX_DEGREES) * (2.0 * torch.rand(n, generator=generator, device=dev) - 1.0)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
    elif kind == "translation":
        m = max_shift_pixels(height)
        d = torch.randint(-m, m + 1, (n, 2), generator=generator, device=dev).to(theta.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        # normalised coordinates span 2 over W (H) pixels; reading at p - d shifts the image by +d
        theta[:, 0, 2] = -2.0 * d[:, 0] / width
        theta[:, 1, 2] = -2.0 * d[:, 1] / height
    else:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {kind!r}")
    return theta


def random_affine(x: Tensor, kind: str, generator: torch.Generator) -> Tensor:
    """``x: [n, C, H, W]`` warped by an independent random ``kind`` transform per image (zeros outside).

    ``generator`` must live on ``x``'s device; the result is reproducible from its seed.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be images [n, C, H, W], got shape {list(x.shape)}")
    if generator.device.type != x.device.type:
        raise ValueError(f"the generator is on {generator.device} but the images are on {x.device}")
    n, c, h, w = x.shape
    theta = affine_matrices(kind, n, h, w, generator).to(x.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
