"""Critics :math:`T(x, y)`: called on paired batches ``x: [m, ...]``, ``y: [m, ...]`` -> ``[m]``.

A critic may also offer ``all_pairs(x, y) -> [m, k]`` (``T(x_i, y_j)`` for every pair) when it can
do better than evaluating ``m * k`` concatenated rows; estimators use it when present. Any
``nn.Module`` with the paired call signature can be passed to an estimator as its critic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from micore.validation import Shape, as_shape, check_positive_int

__all__ = ["JointCritic", "SeparableCritic", "ConvCritic", "mlp", "make_critic"]


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear-ReLU layers of the given widths, then a linear output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class JointCritic(nn.Module):
    r"""The joint (concatenated) critic :math:`T([x; y])` of Belghazi et al. / Poole et al.

    An MLP on the concatenation: ``x_dim + y_dim -> 256 -> 256 -> 1`` with ReLU (the seed's sizes,
    Song & Ermon App. B.1). Its first layer is linear, so for all pairs it is computed on ``x`` and
    ``y`` separately and broadcast: :math:`W[x_i; y_j] + b = W_x x_i + (W_y y_j + b)`, which
    saves the first layer's ``n^2`` concatenated rows.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.x_dim, self.y_dim = check_positive_int(x_dim, "x_dim"), check_positive_int(y_dim, "y_dim")
        if not hidden:
            raise ValueError("hidden must name at least one layer width")
        self.first = nn.Linear(x_dim + y_dim, hidden[0])
        self.rest = nn.Sequential(nn.ReLU(), *mlp(hidden[0], hidden[1:], 1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.rest(self.first(torch.cat([x, y], dim=-1))).squeeze(-1)

    def all_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        """``T(x_i, y_j)``: ``[m, k]`` from ``x: [m, x_dim]``, ``y: [k, y_dim]``."""
        w = self.first.weight
        hx = x @ w[:, : self.x_dim].T  # [m, h]
        hy = torch.addmm(self.first.bias, y, w[:, self.x_dim :].T)  # [k, h]
        h = (hx[:, None, :] + hy[None, :, :]).view(-1, w.shape[0])
        return self.rest(h).view(x.shape[0], y.shape[0])


class SeparableCritic(nn.Module):
    r"""The separable critic :math:`T(x, y) = g(x)^\top h(y)` (van den Oord et al.; Poole et al.).

    ``g`` and ``h`` are MLPs ``dim -> 256 -> 256 -> 32`` with ReLU (the seed's sizes); all pairs
    are one matrix product.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: Sequence[int] = (256, 256), embed_dim: int = 32):
        super().__init__()
        check_positive_int(embed_dim, "embed_dim")
        self.g = mlp(check_positive_int(x_dim, "x_dim"), hidden, embed_dim)
        self.h = mlp(check_positive_int(y_dim, "y_dim"), hidden, embed_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (self.g(x) * self.h(y)).sum(-1)

    def all_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T


class ConvCritic(nn.Module):
    r"""The convolutional joint critic for images (Song & Ermon App. B.2).

    ``x: [m, Cx, H, W]`` and ``y: [m, Cy, H, W]`` are stacked on channels, then conv 64 (k5, s2,
    p2), conv 128 (k5, s2, p2), fully connected 1024, linear 1; ReLU after every layer but the
    last. The first convolution is linear in the stacked input, so for all pairs it is computed
    on ``x`` and ``y`` separately and the feature maps are summed per pair.
    """

    def __init__(self, x_shape: Shape, y_shape: Shape, channels: tuple[int, int] = (64, 128), hidden: int = 1024):
        super().__init__()
        x_shape, y_shape = as_shape(x_shape, "x_dim"), as_shape(y_shape, "y_dim")
        if len(x_shape) != 3 or len(y_shape) != 3 or x_shape[1:] != y_shape[1:]:
            raise ValueError(
                "the conv critic needs image shapes (C, H, W) with equal H, W for x and y; "
                f"got x_dim={x_shape}, y_dim={y_shape}"
            )
        self.cx = x_shape[0]
        c1, c2 = channels
        self.conv1 = nn.Conv2d(x_shape[0] + y_shape[0], c1, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, stride=2, padding=2)
        h, w = x_shape[1:]
        h2, w2 = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * h2 * w2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def _tail(self, h1: Tensor) -> Tensor:
        return self.head(F.relu(self.conv2(F.relu(h1)))).squeeze(-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self._tail(self.conv1(torch.cat([x, y], dim=1)))

    def all_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        wx, wy = self.conv1.weight[:, : self.cx], self.conv1.weight[:, self.cx :]
        hx = F.conv2d(x, wx, None, stride=2, padding=2)  # [m, c1, h, w]
        hy = F.conv2d(y, wy, self.conv1.bias, stride=2, padding=2)  # [k, c1, h, w]
        h1 = (hx[:, None] + hy[None, :]).flatten(0, 1)
        return self._tail(h1).view(x.shape[0], y.shape[0])


def make_critic(spec, x_shape: Shape, y_shape: Shape) -> nn.Module:
    """``"joint" | "separable" | "conv"`` or an ``nn.Module`` (used as is) -> a critic."""
    if isinstance(spec, nn.Module):
        return spec
    if spec in ("joint", "separable"):
        if len(x_shape) != 1 or len(y_shape) != 1:
            raise ValueError(
                f'critic="{spec}" needs flat vectors (x_dim, y_dim ints); got x_dim={x_shape}, '
                f'y_dim={y_shape}: use critic="conv" for images'
            )
        cls = JointCritic if spec == "joint" else SeparableCritic
        return cls(x_shape[0], y_shape[0])
    if spec == "conv":
        return ConvCritic(x_shape, y_shape)
    raise ValueError(f'critic must be "joint", "separable", "conv" or an nn.Module, got {spec!r}')
