r"""The library's MLP critics for K stacked members at once, as batched matrix products.

For :func:`micore.ensemble.train_ensemble`: a member's ``nn.Linear`` becomes, for K members, one
``torch.baddbmm`` over stacked weights ``W: [K, out, in]``, so the critic of every member is a
handful of large kernels instead of K small ones or vmap's generic batching rule; members with large
activations (the joint critic's pairs) run one after another on views of the stacked weights
instead (:func:`stacked_pair_scores` says when and why). The rest of the step (the shift or
baseline, the objective, the bound, MINE's moving average) stays the estimator's own code, run over
the members with ``torch.func.vmap``: it reads the stacked pair scores from a stand-in critic
(:class:`GivenScores`).

Covered: :class:`~discmi.critics.JointCritic` and :class:`~discmi.critics.SeparableCritic` of any
widths (exactly these classes, not subclasses, whose ``all_pairs`` may differ). Any other critic
returns ``None`` and the ensemble uses vmap throughout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .critics import JointCritic, SeparableCritic

__all__ = ["GivenScores", "supports", "stacked_pair_scores", "batched_step", "MEMBER_BY_MEMBER_ABOVE"]

# Activations per member (rows x widest layer) above which members run one after another instead of
# as batched products (see stacked_pair_scores): 2^18 floats, 1 MiB in float32.
MEMBER_BY_MEMBER_ABOVE = 2**18


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


def _widest(critic: nn.Module) -> int:
    return max(m.out_features for m in critic.modules() if isinstance(m, nn.Linear))


def _stacked(critic: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """All members at once with batched products, on feature-major activations."""
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


def _row_mlp(seq: nn.Sequential, p: dict[str, Tensor], prefix: str, h: Tensor) -> Tensor:
    for i, layer in enumerate(seq):
        h = F.linear(h, p[f"{prefix}{i}.weight"], p.get(f"{prefix}{i}.bias")) if type(layer) is nn.Linear else h.relu()
    return h


def _member_by_member(critic: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Member after member on views of the stacked weights (``unbind``: one ``stack`` in the backward
    pass), with the kernels of the critic's own ``all_pairs``."""
    names = list(params)
    views = [dict(zip(names, p, strict=True)) for p in zip(*(params[n].unbind(0) for n in names), strict=True)]
    scores = []
    for p, xk, yk in zip(views, x, y, strict=True):
        if type(critic) is SeparableCritic:
            scores.append(_row_mlp(critic.g, p, "g.", xk) @ _row_mlp(critic.h, p, "h.", yk).T)
            continue
        w, xd = p["first.weight"], critic.x_dim
        hx = xk @ w[:, :xd].T
        hy = yk @ w[:, xd:].T if p.get("first.bias") is None else torch.addmm(p["first.bias"], yk, w[:, xd:].T)
        h = (hx[:, None, :] + hy[None, :, :]).view(-1, w.shape[0])
        scores.append(_row_mlp(critic.rest, p, "rest.", h).view(xk.shape[0], yk.shape[0]))
    return torch.stack(scores)


def stacked_pair_scores(critic: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """``T_k(x_ki, y_kj)`` for K members: ``[K, m, k]`` from ``x: [K, m, x_dim]``, ``y: [K, k, y_dim]``.

    ``params`` are the critic's parameters stacked ``[K, ...]``, keyed by their names in ``critic``.
    The same arithmetic as the critic's ``all_pairs`` (the joint critic's first layer on ``x`` and
    ``y`` separately, then broadcast over pairs). Members whose widest activation is small (the
    separable critic: ``[64, 256]`` at batch 64) run together as batched products, where batching
    removes the per-operation overhead that dominates; members with large activations (the joint
    critic: ``[4096, 256]`` pairs at batch 64, already matmul-bound alone) run one after another, since
    K of them at once leave the cache (measured on one CPU thread: 28 ms a member-step at K = 8 stacked,
    18 ms member by member, 17-20 ms for one run alone).
    """
    pairs = x.shape[1] * y.shape[1] if type(critic) is JointCritic else max(x.shape[1], y.shape[1])
    if pairs * _widest(critic) > MEMBER_BY_MEMBER_ABOVE:
        return _member_by_member(critic, params, x, y)
    return _stacked(critic, params, x, y)


def batched_step(estimator: nn.Module) -> Callable | None:
    """An ensemble step for a :class:`~discmi.base.CriticEstimator` with a supported critic, else ``None``.

    ``estimator`` is the ensemble's private template: its critic is replaced by :class:`GivenScores`.
    Returns ``step(params, buffers, x, y) -> (loss [K], value [K] | None)`` on stacked tensors.
    """
    from micore.ensemble import vmapped_training_step

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
