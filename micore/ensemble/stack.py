"""K modules as one stack of parameters: what :func:`~micore.ensemble.train_ensemble` trains.

* :func:`ensemble_signature`: what must agree for K estimators to train as one batched model;
* :class:`StackedMembers`: their parameters and buffers stacked along a leading axis of K (the
  leaves Adam updates), members dropped from the stack, values written back into each module;
* :func:`vmapped_training_step`: one estimator's ``_training_step`` over the stack with
  ``torch.func.vmap`` of ``functional_call`` (the generic route; an estimator may offer a faster one,
  see ``train_ensemble``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

__all__ = ["ensemble_signature", "first_difference", "StackedMembers", "vmapped_training_step"]

# Per-module attributes that are results of a training, not part of the architecture.
_NOT_ARCHITECTURE = frozenset({"training", "history", "batch_size"})
_SCALARS = (bool, int, float, str, type(None))

StepFn = Callable[[dict, dict, Tensor, Tensor], tuple[Tensor, "Tensor | None"]]


def _setting(value):
    """A hashable form of a module's plain attribute, or ``None`` when it is not a setting."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"  # NaN != NaN would make two identical members differ
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, tuple) and all(isinstance(v, _SCALARS) for v in value):
        return value
    return None


def ensemble_signature(estimator: nn.Module) -> tuple:
    """What estimators must share to train as one batched model (equal signatures: compatible).

    The class of the estimator and of every submodule, each parameter's and buffer's name, shape,
    dtype and ``requires_grad``, and every plain setting (numbers, strings, e.g. SMILE's ``tau``,
    MINE's ``ema_rate``) of every submodule: one copy of the module runs the step of all members, so
    its settings must be theirs. Hashable, so runs can be grouped by it.
    """
    modules = []
    for name, module in estimator.named_modules():
        settings = tuple(
            sorted(
                (k, _setting(v))
                for k, v in vars(module).items()
                if not k.startswith("__") and k not in _NOT_ARCHITECTURE and _setting(v) is not None
            )
        )
        modules.append((name, type(module).__qualname__, type(module).__module__, settings))
    params = tuple((n, tuple(p.shape), str(p.dtype), p.requires_grad) for n, p in estimator.named_parameters())
    buffers = tuple((n, tuple(b.shape), str(b.dtype)) for n, b in estimator.named_buffers())
    return tuple(modules), params, buffers


def first_difference(a: nn.Module, b: nn.Module) -> str | None:
    """What differs between the signatures of ``a`` and ``b`` (for the error message), or ``None``."""
    sa, sb = ensemble_signature(a), ensemble_signature(b)
    if sa == sb:
        return None
    for what, xa, xb in zip(("modules", "parameters", "buffers"), sa, sb, strict=True):
        if xa != xb:
            for ia, ib in zip(xa, xb, strict=False):  # a length difference is reported below
                if ia != ib:
                    return f"{what}: {ia} vs {ib}"
            return f"{what}: {len(xa)} vs {len(xb)} entries"
    return "signature"  # pragma: no cover - some component differs above


class _Forward(nn.Module):
    """Runs the wrapped estimator's ``_training_step`` as ``forward``, so ``functional_call`` can call it."""

    def __init__(self, estimator: nn.Module):
        super().__init__()
        self.estimator = estimator
        self.gives_value: bool | None = None  # known after the first call

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        loss, value = self.estimator._training_step(x, y)
        self.gives_value = value is not None
        # vmap needs tensor outputs: a NaN stands in for an estimator that records no value
        return loss, (value if value is not None else torch.full_like(loss, math.nan)).detach()


def vmapped_training_step(template: nn.Module) -> StepFn:
    """``step(params, buffers, x, y) -> (loss [K], value [K] | None)`` for stacked members.

    ``params``/``buffers`` map the template's names to ``[K, ...]`` tensors, ``x: [K, n, *x_shape]``,
    ``y: [K, n, *y_shape]``; member ``k`` runs ``template._training_step(x[k], y[k])`` with its own
    slices. In-place buffer updates (MINE's moving average) land in member ``k``'s slice. Random
    operations inside the step raise (``randomness="error"``): one generator cannot give each member
    the stream of its own seed, so such estimators train one by one.
    """
    wrapper = _Forward(template)

    def member(params: dict, buffers: dict, x: Tensor, y: Tensor):
        tensors = {f"estimator.{k}": v for k, v in params.items()}
        tensors.update({f"estimator.{k}": v for k, v in buffers.items()})
        return functional_call(wrapper, tensors, (x, y), strict=True)

    batched = vmap(member, randomness="error")

    def step(params: dict, buffers: dict, x: Tensor, y: Tensor):
        loss, value = batched(params, buffers, x, y)
        return loss, (value if wrapper.gives_value else None)

    return step


class StackedMembers:
    """The parameters and buffers of ``members`` stacked along a new leading axis (``[K, ...]``).

    ``params`` are leaves (``requires_grad`` as in the modules) for one optimiser; ``buffers`` are
    updated in place by the step. ``active`` lists which member each slice belongs to.
    """

    def __init__(self, members: Sequence[nn.Module], device: torch.device):
        self.members = list(members)
        self.active = list(range(len(members)))
        self.params: dict[str, Tensor] = {}
        for name, p in members[0].named_parameters():
            stacked = torch.stack([dict(m.named_parameters())[name].detach() for m in members]).to(device)
            self.params[name] = stacked.requires_grad_(p.requires_grad)
        self.buffers: dict[str, Tensor] = {
            name: torch.stack([dict(m.named_buffers())[name] for m in members]).to(device)
            for name, _ in members[0].named_buffers()
        }

    def trainable(self) -> list[Tensor]:
        return [p for p in self.params.values() if p.requires_grad]

    @torch.no_grad()
    def write_back(self, member: int) -> None:
        """Copies member ``member``'s slices into its module's parameters and buffers."""
        pos = self.active.index(member)
        module = self.members[member]
        for name, p in module.named_parameters():
            p.copy_(self.params[name][pos])
        for name, b in module.named_buffers():
            b.copy_(self.buffers[name][pos])

    @torch.no_grad()
    def drop(self, members: Sequence[int], optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Removes ``members`` (after :meth:`write_back`) from the stack and from Adam's state.

        The others' slices, moments and step counts are carried over unchanged (Adam is element-wise),
        so the remaining members train on exactly as before. Returns the optimiser of the new stack.
        """
        keep = [i for i, m in enumerate(self.active) if m not in members]
        index = torch.tensor(keep, device=next(iter(self.params.values())).device)
        old_state = optimizer.state
        new_params = {}
        for name, p in self.params.items():
            new_params[name] = p.detach().index_select(0, index).requires_grad_(p.requires_grad)
        self.buffers = {name: b.index_select(0, index) for name, b in self.buffers.items()}
        new_optimizer = type(optimizer)([q for q in new_params.values() if q.requires_grad], **optimizer.defaults)
        for name, p in self.params.items():
            if p.requires_grad and p in old_state:
                state = {}
                for key, value in old_state[p].items():
                    # per-element moments follow the kept slices; the scalar step count is shared
                    sliced = isinstance(value, Tensor) and value.dim() > 0 and value.shape == p.shape
                    state[key] = value.index_select(0, index) if sliced else value
                new_optimizer.state[new_params[name]] = state
        self.params = new_params
        self.active = [self.active[i] for i in keep]
        return new_optimizer
