r""":math:`I_{GM}` with RealNVP flows (Dinh et al. 2017; Song & Ermon 2020, Eq. 9 and App. B.1).

Each flow is an nflows ``Flow``: a ``CompositeTransform`` of affine coupling layers (data to noise)
over a ``StandardNormal`` base, so :math:`\log p(v) = \log \mathcal N(f(v); 0, I) + \log|\det \partial f/\partial v|`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.base import CompositeTransform, Transform
from nflows.transforms.coupling import AffineCouplingTransform
from torch import Tensor, nn

from micore.validation import check_positive_int

from .base import GenerativeMI
from .pixels import dequantize as dequantize_pixels

__all__ = [
    "FlowMI",
    "real_nvp",
    "coupling_masks",
    "AffineCoupling",
    "CouplingNet",
    "LogitPixels",
    "LOG_SCALE_BOUND",
    "LOGIT_ALPHA",
]

# Each coupling's log-scale is soft-clamped to (-3, 3): a factor of at most e^3 per layer, enough for
# whitening (the 20-d Gaussian at 10 nats needs e^0.5) and for near-constant dequantized pixels
# (about e^5.5 over the two or three layers that transform a feature), while one optimiser step can
# never produce an overflowing exp.
LOG_SCALE_BOUND = 3.0
LOGIT_ALPHA = 0.05  # RealNVP's logit preprocessing constant for images (Dinh et al. 2017, Sec. 4.1)


class CouplingNet(nn.Module):
    """The seed's coupling network: Linear-ReLU-Linear-ReLU-Linear, two hidden layers of ``hidden`` units.

    The last layer starts at zero, so every coupling (and the whole flow) starts as the identity
    and the untrained flow is the standard normal. nflows calls it as ``net(inputs, context)``.
    With no inputs (a one-feature flow) it is a learned constant.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 100):
        super().__init__()
        self.constant = nn.Parameter(torch.zeros(out_features)) if in_features == 0 else None
        self.net = (
            None
            if in_features == 0
            else nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, out_features),
            )
        )
        if self.net is not None:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> Tensor:
        if self.net is None:
            return self.constant.expand(inputs.shape[0], -1)
        return self.net(inputs)


class AffineCoupling(AffineCouplingTransform):
    r"""RealNVP's affine coupling, data to noise: :math:`z_B = v_B \odot e^{s(v_A)} + t(v_A)`, :math:`z_A = v_A`,
    :math:`\log|\det| = \sum s(v_A)`, with :math:`s = 3\tanh(\tilde s / 3)` (soft-clamped).

    nflows' own ``AffineCouplingTransform`` uses the scale :math:`\sigma(\tilde s + 2) + 10^{-3} \in (0, 1.001)`,
    so in the data-to-noise direction its layers can only shrink volume: its log-determinant is at most
    about 0. A correlated joint needs :math:`\log|\det| = I(X;Y)` to whiten (the 20-d Gaussian at 10 nats
    needs +10), which that flow cannot reach; this subclass restores RealNVP's exponential scale.
    """

    def _log_scale_and_shift(self, params: Tensor) -> tuple[Tensor, Tensor]:
        d = self.num_transform_features
        return LOG_SCALE_BOUND * torch.tanh(params[:, d:] / LOG_SCALE_BOUND), params[:, :d]

    def _coupling_transform_forward(self, inputs, transform_params):
        log_scale, shift = self._log_scale_and_shift(transform_params)
        return inputs * torch.exp(log_scale) + shift, log_scale.sum(-1)

    def _coupling_transform_inverse(self, inputs, transform_params):
        log_scale, shift = self._log_scale_and_shift(transform_params)
        return (inputs - shift) * torch.exp(-log_scale), -log_scale.sum(-1)


class LogitPixels(Transform):
    r"""RealNVP's image preprocessing on the features in ``mask``:
    :math:`v \mapsto \operatorname{logit}(\alpha + (1-2\alpha)v)`.

    Maps dequantized pixels in ``[0, 1)`` to the real line (:math:`\alpha = 0.05` keeps them within
    :math:`\pm 2.94`); its log-determinant :math:`\sum \log(1-2\alpha) - \log p - \log(1-p)` keeps the
    flow's likelihood a density of the pixels. Other features pass unchanged.
    """

    def __init__(self, mask: Tensor, alpha: float = LOGIT_ALPHA):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.bool))
        self.alpha = float(alpha)

    def forward(self, inputs: Tensor, context=None):
        p = self.alpha + (1 - 2 * self.alpha) * torch.where(self.mask, inputs, 0.5)  # 0.5: finite in both branches
        log_p, log_1mp = torch.log(p), torch.log1p(-p)
        logdet = torch.where(self.mask, math.log1p(-2 * self.alpha) - log_p - log_1mp, 0.0).sum(-1)
        return torch.where(self.mask, log_p - log_1mp, inputs), logdet

    def inverse(self, inputs: Tensor, context=None):
        z = torch.where(self.mask, inputs, 0.0)
        x = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        logdet = torch.where(
            self.mask, nn.functional.logsigmoid(z) + nn.functional.logsigmoid(-z) - math.log1p(-2 * self.alpha), 0.0
        ).sum(-1)
        return torch.where(self.mask, x, inputs), logdet


def coupling_masks(features: int, layers: int, split: int | None = None) -> list[Tensor]:
    """The transformed features of each coupling layer (``True`` = transformed, the rest conditions).

    Layers cycle through two complementary pairs of masks: the block from ``split`` on, even
    positions, the block before ``split``, odd positions (default ``split = features // 2``; the joint
    flow splits between ``x`` and ``y``, so its layers 1, 3, 5 transform ``y`` given ``x``, ``x`` given
    ``y``, ``y`` given ``x``). Parity alone never separates ``x_k`` from ``y_k`` in ``[x; y]`` when ``x``
    has an even width (both sit at the same parity), so a parity-only RealNVP cannot see the 20-d
    Gaussian's dependence at all; the parity masks are kept for dependence within a variable (pixels).
    A single feature has nothing to condition on: each layer is then a learned affine map.
    """
    check_positive_int(features, "features")
    if features == 1:
        return [torch.ones(1, dtype=torch.bool) for _ in range(layers)]
    idx = torch.arange(features)
    split = features // 2 if split is None else split
    if not 0 < split < features:
        raise ValueError(f"split must be in [1, {features - 1}], got {split}")
    cycle = (idx >= split, idx % 2 == 0, idx < split, idx % 2 == 1)
    return [cycle[i % 4] for i in range(layers)]


def real_nvp(
    features: int, *, layers: int = 5, hidden: int = 100, split: int | None = None, pixel_mask: Tensor | None = None
) -> Flow:
    """A RealNVP density over ``[n, features]``: ``layers`` affine couplings (:func:`coupling_masks`),
    each with a :class:`CouplingNet`, over a standard normal; optionally :class:`LogitPixels` first.

    Defaults are the seed's: 5 coupling layers with scaling, 2 hidden layers of 100 units (Song & Ermon App. B.1).
    """
    check_positive_int(layers, "layers")
    check_positive_int(hidden, "hidden")
    transforms: list[Transform] = []
    if pixel_mask is not None and bool(torch.as_tensor(pixel_mask).any()):
        transforms.append(LogitPixels(pixel_mask))
    for mask in coupling_masks(features, layers, split):
        transforms.append(AffineCoupling(mask.to(torch.uint8), lambda i, o: CouplingNet(i, o, hidden)))
    return Flow(CompositeTransform(transforms), StandardNormal([features]))


def _is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


class FlowMI(GenerativeMI):
    r""":math:`I_{GM}` with three RealNVP flows for :math:`p(x,y)`, :math:`p(x)`, :math:`p(y)` (Song & Ermon Eq. 9).

    .. math:: \log r(x, y) = \log p_\theta(x, y) - \log p_\phi(x) - \log p_\psi(y), \qquad
              I_{GM} = E_P[\log r]

    The flows are trained by maximum likelihood (the loss is the mean negative log-likelihood of the
    three); an **estimate** of MI (Table 1: a difference of three fitted likelihoods, a bound in
    neither direction). Seed defaults: 5 affine coupling layers with scaling, coupling networks of two
    hidden layers of 100 ReLU units, Adam lr 5e-4, batch 64 (App. B.1).

    Images (a ``(C, H, W)`` shape) are flattened; pixels in ``[0, 1]`` are **uniformly dequantized**,
    :math:`\tilde x = (255 x + u)/256` with :math:`u \sim U[0,1)` per pixel (the noise is drawn afresh
    at every call), and mapped to the real line by RealNVP's logit. Distinct 8-bit levels keep disjoint
    bins, so :math:`I(\tilde X;\tilde Y) = I(X;Y)` and the estimate targets the MI of the pixels
    themselves. The joint flow sees the flattened ``[x; y]``, with masks that couple ``y`` on ``x``
    (see :func:`coupling_masks`).

    Args:
        x_dim, y_dim: int widths, or image shapes ``(C, H, W)``.
        layers: coupling layers per flow (default 5).
        hidden: units of each of the coupling networks' two hidden layers (default 100).
        dequantize: dequantize (and range-check) image-shaped variables; ``False`` for continuous
            image-shaped data, modelled as is.
    """

    # nflows' couplings index their inputs in ways vmap cannot batch ("value tensor of shape [2, 64, 4]
    # cannot be broadcast to indexing result of shape [2, 4, 64]"): ensembles of FlowMI loop
    ensemble_batches: ClassVar[bool] = False

    def __init__(self, x_dim, y_dim, *, layers: int = 5, hidden: int = 100, dequantize: bool = True):
        if not isinstance(dequantize, bool):
            raise ValueError(f"dequantize must be True or False, got {dequantize!r}")
        super().__init__(x_dim, y_dim)
        self.pixels = (dequantize and _is_image(self.x_shape), dequantize and _is_image(self.y_shape))
        self.layers, self.hidden = check_positive_int(layers, "layers"), check_positive_int(hidden, "hidden")
        dx, dy = math.prod(self.x_shape), math.prod(self.y_shape)
        mx, my = torch.full((dx,), self.pixels[0]), torch.full((dy,), self.pixels[1])
        self.joint = real_nvp(dx + dy, layers=layers, hidden=hidden, split=dx, pixel_mask=torch.cat([mx, my]))
        self.model_x = real_nvp(dx, layers=layers, hidden=hidden, pixel_mask=mx)
        self.model_y = real_nvp(dy, layers=layers, hidden=hidden, pixel_mask=my)

    def _prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        x = dequantize_pixels(x) if self.pixels[0] else x
        y = dequantize_pixels(y) if self.pixels[1] else y
        return x.flatten(1), y.flatten(1)

    def extra_repr(self) -> str:
        return f"layers={self.layers}, hidden={self.hidden}"
