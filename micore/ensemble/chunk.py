"""One chunk of :func:`micore.ensemble.train_ensemble`: K members trained as one batched model, step by step.

:class:`Chunk` runs the members' stacked step (the estimator's own batched step, or vmap of its
``_training_step``), eagerly or replayed as a CUDA graph (:mod:`micore.ensemble.graph`), checks every
member for divergence once per ``check_every`` steps (one host sync), drops diverged members, and
returns each member's :class:`~micore.training.TrainingHistory`. Python state a step changes (plain
ints and floats of the submodules, e.g. ReMINE's window slot) is found with :func:`changed_state`
and copied to the members afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..training import DivergenceWatch, TrainingHistory
from ..training.precision import forward_precision
from .graph import WARMUP_STEPS, GraphedStep
from .stack import StackedMembers, vmapped_training_step

__all__ = ["Chunk", "changed_state", "TRAIN_SETTINGS"]

# a chunk's training settings, as micore.train names them
TRAIN_SETTINGS = ("steps", "batch_size", "lr", "device", "record", "check_every")


def _adam(params: list[Tensor], lr: float, capturable: bool = False) -> torch.optim.Optimizer:
    """Adam with ``train``'s settings; the fused kernel (one pass over memory) where torch has one.

    On K stacked members the single-tensor Adam that ``train`` uses costs more than the forward
    pass (13 ms of a 30 ms step at K = 32 on 2 CPU cores); the fused one the same formula at a tenth.
    ``capturable``: the step counter on the device, so that a CUDA graph can replay the update.
    """
    try:
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), fused=True, capturable=capturable)
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), foreach=True, capturable=capturable)


def _plain_state(module: torch.nn.Module) -> dict:
    """Plain attributes (ints, floats) of every submodule, e.g. ReMINE's batch counter."""
    return {
        (name, k): v
        for name, m in module.named_modules()
        for k, v in vars(m).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _changed(module: torch.nn.Module, before: dict) -> dict:
    """The plain attributes of ``module`` that differ from ``before`` (a :func:`_plain_state`), with their values."""
    return {key: v for key, v in _plain_state(module).items() if before.get(key, v) != v}


def changed_state(module: torch.nn.Module, before: dict) -> list[str]:
    """The plain attributes (``"estimator.<submodule>.<name>"``) that differ from ``before``
    (a :func:`_plain_state`): Python state a step changed, which a CUDA graph's replay would not."""
    return sorted(".".join(filter(None, ("estimator", m, a))) for m, a in _changed(module, before))


def _sync_plain_state(template: torch.nn.Module, before: dict, members) -> None:
    """Copies the plain attributes the step changed on the template (shared by all members) to them."""
    changed = _changed(template, before)
    for member in members:
        modules = dict(member.named_modules())
        for (name, attr), value in changed.items():
            setattr(modules[name], attr, value)


class Chunk:
    """One batched training of ``members`` (all with the same number of steps)."""

    def __init__(self, members, streams, true_mis, seeds, settings: dict, *, precision: str, graphs: bool):
        self.members, self.streams, self.true_mis, self.seeds = members, streams, true_mis, seeds
        # the keywords micore.train takes of them, should the chunk train one by one
        self.settings = {k: settings[k] for k in TRAIN_SETTINGS}
        self.steps, self.batch_size, self.lr, self.device, self.record, self.check_every = self.settings.values()
        self.precision = precision
        self.graphs = graphs and self.steps > WARMUP_STEPS + 1
        self.graphed = False  # whether the step ran as a CUDA graph (micore.ensemble.graph)
        self.name = type(members[0]).__name__
        self.k = len(members)

    def step_function(self, engine: str):
        """``(template, step, engine used)``; the template is a private copy of the first member."""
        template = copy.deepcopy(self.members[0]).to(self.device)
        template.train()
        step = None
        if engine in ("auto", "batched"):
            hook = getattr(template, "_ensemble_step", None)
            step = hook() if hook is not None else None
            if step is None and engine == "batched":
                raise ValueError(f"engine: 'batched' needs a batched step; {self.name} offers none here (use 'auto')")
        if step is not None:
            return template, step, "batched"
        return template, vmapped_training_step(template), "vmap"

    def run(self, engine: str, divergence: str, progress: bool, desc: str | None, meta: dict):
        """Trains; returns the members' histories, or ``None`` when the step cannot run batched."""
        template, step_fn, used = self.step_function(engine)
        before = _plain_state(template)
        stack = StackedMembers(self.members, self.device)
        optimizer = _adam(stack.trainable(), self.lr, capturable=self.graphs)
        graphed, side = None, torch.cuda.Stream(self.device) if self.graphs else None
        losses = torch.zeros(self.steps, self.k, device=self.device, dtype=torch.float64)
        values = torch.full((self.steps, self.k), math.nan, device=self.device, dtype=torch.float64)
        active = torch.arange(self.k, device=self.device)
        # train()'s check, for every member at once (one host-device sync per window)
        watch = DivergenceWatch(template, self.name, self.batch_size, losses, values if self.record else None)
        histories: dict[int, TrainingHistory] = {}
        flagged: dict[int, tuple[int, str]] = {}
        checked = 0
        bar = tqdm(
            total=self.steps,
            desc=(desc or f"ensemble {self.name} x{self.k} [{used}]"),
            unit="step",
            disable=not progress,
            leave=False,
        )
        start = time.perf_counter()
        for step in range(self.steps):
            pairs = [next(self.streams[m]) for m in stack.active]
            xb = torch.stack([p[0] for p in pairs])
            yb = torch.stack([p[1] for p in pairs])
            if graphed is not None:
                loss, value = graphed(xb, yb)
            else:
                try:
                    loss, value = self._eager_step(step_fn, stack, optimizer, xb, yb, side)
                except Exception as err:  # noqa: BLE001 - any failure of the batched step means: train one by one
                    if step:
                        raise
                    bar.close()
                    self.failure = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
                    return None
                if side is not None and step + 1 == WARMUP_STEPS:
                    graphed = self._capture(step_fn, stack, optimizer, xb, yb, template, before)
                    side = None
            losses[step].index_copy_(0, active, loss.detach().to(torch.float64))
            if value is not None:
                values[step].index_copy_(0, active, value.detach().to(torch.float64))
            else:
                watch.values = None  # only the loss is checked, as in train()
            if (step + 1) % self.check_every and step + 1 != self.steps:
                continue
            first = watch.first_bad_members(checked, step + 1)
            dropped = []
            for m in stack.active:
                if first[m] is not None and m not in flagged:
                    flagged[m] = (first[m], watch.reason(first[m], member=m))
                    if divergence != "ignore":
                        stack.write_back(m)
                        histories[m] = watch.history(
                            first[m],
                            self.true_mis[m],
                            member=m,
                            diverged_at=first[m],
                            divergence=flagged[m][1],
                            seconds=time.perf_counter() - start,
                            seed=self.seeds[m],
                            **meta,
                        )
                        dropped.append(m)
            bar.update(step + 1 - checked)
            checked = step + 1
            if dropped:
                graphed = None  # K changed: the rest runs eagerly
                optimizer = stack.drop(dropped, optimizer)
                active = torch.tensor(stack.active, device=self.device, dtype=torch.long)
                if not stack.active:
                    break
            if progress and stack.active:
                bar.set_postfix({"loss": f"{float(losses[step, stack.active].mean()):.3f}"}, refresh=False)
        bar.close()
        self._finish(stack, watch, flagged, histories, time.perf_counter() - start, meta)
        _sync_plain_state(template, before, self.members)
        self.engine = used
        return [histories[m] for m in range(self.k)]

    def _finish(self, stack, watch: DivergenceWatch, flagged: dict, histories: dict, seconds: float, meta):
        """The histories of the members that trained to the end, their weights written back."""
        for m in list(stack.active):
            stack.write_back(m)
            diverged_at, reason = flagged.get(m, (None, None))
            histories[m] = watch.history(
                self.steps,
                self.true_mis[m],
                member=m,
                diverged_at=diverged_at,
                divergence=reason,
                seconds=seconds,
                seed=self.seeds[m],
                **meta,
            )

    def _eager_step(self, step_fn, stack, optimizer, xb: Tensor, yb: Tensor, side):
        """One step without a graph; on ``side`` (a CUDA stream) while warming up for a capture."""
        if side is not None:
            side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            with forward_precision(self.precision, self.device):
                loss, value = step_fn(stack.params, stack.buffers, xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # member k's gradient is that of its own loss: the others do not depend on it
            optimizer.step()
        if side is not None:
            torch.cuda.current_stream(self.device).wait_stream(side)
        return loss, value

    def _capture(self, step_fn, stack, optimizer, xb: Tensor, yb: Tensor, template, before: dict):
        """The step as a :class:`~micore.ensemble.graph.GraphedStep`, or ``None`` (with a warning) when it cannot be."""
        changed = changed_state(template, before)
        if changed:
            self.graph_note = f"its step changes Python state ({', '.join(changed)}), which a replay would not"
            return None
        try:
            graphed = GraphedStep(step_fn, stack.params, stack.buffers, optimizer, xb, yb, self.precision)
        except Exception as err:  # noqa: BLE001 - a step that cannot be captured runs eagerly, unchanged
            self.graph_note = f"capture failed: {type(err).__name__}: {str(err).strip()[:200]}"
            warnings.warn(
                f"train_ensemble: the step of {self.name} cannot run as a CUDA graph ({self.graph_note}); "
                "it runs eagerly (same results, more launch overhead)",
                stacklevel=4,
            )
            return None
        self.graphed = True
        return graphed
