r"""The library's MLP critics for K stacked members at once, as batched matrix products.

For :func:`micore.ensemble.train_ensemble`: a member's ``nn.Linear`` (``h W^T + b``) becomes, for K
members, one ``torch.baddbmm`` over stacked weights ``W: [K, out, in]``, so the critic of every member
is a handful of large kernels instead of K small ones or vmap's generic batching rule. The
rest of the step (the shift or baseline, the objective, the bound, MINE's moving average) stays the
estimator's own code, run over the members with ``torch.func.vmap``: it reads the stacked pair scores
from a stand-in critic (:class:`GivenScores`).

Covered: :class:`~discmi.critics.JointCritic` and :class:`~discmi.critics.SeparableCritic` of any
widths (exactly these classes, not subclasses, whose ``all_pairs`` may differ). Any other critic
returns ``None`` and the ensemble uses vmap throughout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .critics import JointCritic, SeparableCritic

__all__ = ["GivenScores", "supports", "stacked_pair_scores", "batched_step"]


class GivenScores(nn.Module):
    """Stands in for the critic in the vmapped rest of an ensemble step: returns scores computed for all
    members at once, handed to each member as the buffer ``scores`` (``[m, k]`` for its batch)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scores", torch.empty(0), persistent=False)

    def all_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        return self.scores

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.scores.diagonal()


def _plain_mlp(seq: nn.Module) -> bool:
    return type(seq) is nn.Sequential and all(type(m) in (nn.Linear, nn.ReLU) for m in seq)


def supports(critic: nn.Module) -> bool:
    """Whether :func:`stacked_pair_scores` can run ``critic`` (the library's MLP critics)."""
    if type(critic) is SeparableCritic:
        return _plain_mlp(critic.g) and _plain_mlp(critic.h)
    if type(critic) is JointCritic:
        return _plain_mlp(critic.rest) and type(critic.first) is nn.Linear
    return False


def _linear(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``h: [K, in, m]``, ``weight: [K, out, in]``, ``bias: [K, out]`` -> ``[K, out, m]`` (feature-major).

    Activations are kept feature-major (``W h`` rather than ``h W^T``) so that the weight's gradient,
    ``g h^T``, comes out in the weight's own ``[K, out, in]`` layout: with ``h W^T`` autograd returns
    the gradient of ``W^T`` and copies it transposed into ``W.grad`` (8 MB a 256x256 layer at K = 32,
    a fifth of the step's time on the CPU).
    """
    if bias is None:
        return torch.bmm(weight, h)
    return torch.baddbmm(bias.unsqueeze(2), weight, h)


def _mlp(seq: nn.Sequential, params: dict[str, Tensor], prefix: str, h: Tensor) -> Tensor:
    for i, layer in enumerate(seq):
        if type(layer) is nn.Linear:
            h = _linear(h, params[f"{prefix}{i}.weight"], params.get(f"{prefix}{i}.bias"))
        else:  # in place: the product before it needs its inputs, not its output, for the backward pass
            h = torch.relu_(h)
    return h


def stacked_pair_scores(critic: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """``T_k(x_ki, y_kj)`` for K members: ``[K, m, k]`` from ``x: [K, m, x_dim]``, ``y: [K, k, y_dim]``.

    ``params`` are the critic's parameters stacked ``[K, ...]``, keyed by their names in ``critic``.
    The same arithmetic as the critic's ``all_pairs`` (the joint critic's first layer on ``x`` and
    ``y`` separately, then broadcast over pairs), member by member, on feature-major activations.
    """
    xt, yt = x.transpose(1, 2), y.transpose(1, 2)  # [K, dim, m]: views, bmm reads them as they are
    if type(critic) is SeparableCritic:
        gx = _mlp(critic.g, params, "g.", xt)  # [K, embed, m]
        hy = _mlp(critic.h, params, "h.", yt)  # [K, embed, k]
        return torch.bmm(gx.transpose(1, 2), hy)
    w = params["first.weight"]  # [K, hidden, x_dim + y_dim]
    xd = critic.x_dim
    hx = torch.bmm(w[:, :, :xd], xt)  # [K, hidden, m]
    hy = _linear(yt, w[:, :, xd:], params.get("first.bias"))  # [K, hidden, k]
    members, m, k = x.shape[0], x.shape[1], y.shape[1]
    h = (hx[:, :, :, None] + hy[:, :, None, :]).view(members, w.shape[1], m * k)  # pair (i, j) at i * k + j
    return _mlp(critic.rest, params, "rest.", h).view(members, m, k)


def batched_step(estimator: nn.Module) -> Callable | None:
    """An ensemble step for a :class:`~discmi.base.CriticEstimator` with a supported critic, else ``None``.

    ``estimator`` is the ensemble's private template: its critic is replaced by :class:`GivenScores`.
    Returns ``step(params, buffers, x, y) -> (loss [K], value [K] | None)`` on stacked tensors.
    """
    from micore.ensemble_stack import vmapped_training_step

    critic = estimator.critic
    if not supports(critic):
        return None
    estimator.critic = GivenScores()
    rest = vmapped_training_step(estimator)

    def step(params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, y: Tensor):
        critic_params = {name[7:]: p for name, p in params.items() if name.startswith("critic.")}
        others = {name: p for name, p in params.items() if not name.startswith("critic.")}
        scores = stacked_pair_scores(critic, critic_params, x, y)
        return rest(others, {**buffers, "critic.scores": scores}, x, y)

    return step
