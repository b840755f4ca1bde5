"""Many runs in one model: K estimators of one architecture trained as one batched model (issue 10).

A comparison is many small trainings of one shape (seeds x MI levels x tasks). :func:`train_ensemble`
trains K of them at once: their parameters stacked along a leading axis, one forward pass for all,
one loss that is the sum of the K losses (member k's gradient is that of its own loss alone), and one
Adam over the stacked parameters. Adam is element-wise, so that is exactly K independent Adams.

Each member keeps what :func:`micore.train` would give it alone: its seed and data stream (the very
batches ``train`` draws for that seed, from its own sampler or tensors), its state (MINE's moving
average, ReMINE's window), its divergence check, and its :class:`~micore.training.TrainingHistory`.
The results equal the one-by-one runs' up to float rounding: batched matrix products and the fused
Adam kernel may round differently from their one-run counterparts (about 1e-7 relative per step;
``tests/test_ensemble.py`` states the tolerance).

The step of all members runs one of two ways:

* the estimator's own batched step, when its class offers one: a method ``_ensemble_step()`` on a
  private copy of the first member (the *template*, which the method may alter), returning
  ``step(params, buffers, x, y) -> (loss [K], value [K] | None)`` over stacked ``[K, ...]`` tensors
  keyed by the estimator's parameter and buffer names, or ``None`` when it has none for this
  configuration (discmi's JointCritic and SeparableCritic run as stacked matrix products,
  :mod:`discmi.batched`);
* otherwise ``torch.func.vmap`` over ``functional_call`` of the template's ``_training_step``
  (:func:`~micore.ensemble_stack.vmapped_training_step`): any estimator whose step is vmap-able.

A step that cannot run batched (a critic calling ``.item()``, branching on data, or drawing random
numbers) is found on the first step; the ensemble then trains one by one with :func:`micore.train`
and says why in a warning.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .ensemble_graph import WARMUP_STEPS, GraphedStep, graph_adam
from .ensemble_stack import (
    StackedMembers,
    available_memory,
    ensemble_signature,
    first_difference,
    member_memory,
    vmapped_training_step,
)
from .estimator import MIEstimator
from .precision import check_precision, forward_precision, precision_scope
from .tasks import Sampler
from .threads import training_threads, using_threads
from .training import (
    LOSS_FLOOR,
    LOSS_GROWTH,
    RANGE_SLACK,
    TrainingDiverged,
    TrainingHistory,
    _data_stream,
    _Watch,
    resolve_device,
    train,
)
from .validation import check_positive_float, check_positive_int

__all__ = ["train_ensemble", "EnsembleHistories", "DIVERGENCE_ENSEMBLE", "ENGINES"]

# "member": a diverged member stops there (its history ends before the bad step, as TrainingDiverged's
# would), the others train on; "raise": the same, then TrainingDiverged for the first diverged member
# once all are done; "ignore": every member trains to the end, the step noted in its history.
DIVERGENCE_ENSEMBLE = ("member", "raise", "ignore")
# "auto": the estimator's batched step if it offers one, else vmap; "loop": one by one with train().
ENGINES = ("auto", "batched", "vmap", "loop")
# max_members="auto": the members that fit this fraction of the free memory; the per-member estimate
# (ensemble_stack.member_memory) leaves out the allocator's slack and single operations' temporaries.
AUTO_MEMORY_FRACTION = 0.5


class EnsembleHistories(list):
    """The members' :class:`~micore.training.TrainingHistory`, in the order of the estimators.

    Attributes: ``engines`` (how each chunk ran: ``"batched"``, ``"vmap"`` or ``"loop"``),
    ``chunks`` (members per chunk), ``graphed`` (per chunk: whether its step ran as a CUDA graph),
    ``peak_bytes`` (largest chunk's peak memory) and
    ``peak_measured`` (``True``: CUDA's ``max_memory_allocated``; ``False``: K times the per-member
    estimate of :func:`~micore.ensemble_stack.member_memory`, on the CPU).
    """

    engines: list[str]
    chunks: list[int]
    graphed: list[bool]
    peak_bytes: int
    peak_measured: bool


def _check_members(estimators) -> list[MIEstimator]:
    if isinstance(estimators, MIEstimator) or not isinstance(estimators, Sequence) or not estimators:
        raise ValueError(f"estimators must be a non-empty sequence of MIEstimator, got {type(estimators).__name__}")
    signature = None
    for i, est in enumerate(estimators):
        if not isinstance(est, MIEstimator):
            raise ValueError(f"estimators[{i}] must be an MIEstimator, got {type(est).__name__}")
        if i == 0:
            signature = ensemble_signature(est)
        for j in range(i):
            if estimators[j] is est:
                raise ValueError(f"estimators[{i}] is estimators[{j}]: each member needs its own module")
        if not any(p.requires_grad for p in est.parameters()):
            raise ValueError(f"estimators[{i}] ({type(est).__name__}) has no trainable parameters")
        if i and ensemble_signature(est) != signature:
            diff = first_difference(estimators[0], est)
            if diff is not None:
                raise ValueError(
                    f"estimators[{i}] differs from estimators[0] ({diff}): an ensemble needs one architecture "
                    "and one setting of every option; group members by micore.ensemble_stack.ensemble_signature"
                )
    return list(estimators)


def _is_pair(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and all(isinstance(t, Tensor) for t in item)


def _check_data(data, k: int) -> list:
    """One data source per member: a Sampler or an ``(x, y)`` pair of tensors."""
    if isinstance(data, Sampler) or _is_pair(data):
        return [data] * k
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise ValueError(f"data must be a Sampler, an (x, y) pair or a sequence of them, got {type(data).__name__}")
    if len(data) != k:
        raise ValueError(f"data has {len(data)} entries for {k} estimators; give one per member, or one for all")
    for i, item in enumerate(data):
        if not (isinstance(item, Sampler) or _is_pair(item)):
            raise ValueError(f"data[{i}] must be a Sampler or an (x, y) pair of tensors, got {type(item).__name__}")
    return list(data)


def _check_seeds(seeds, k: int) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds must be a sequence of {k} ints (one per member), got {type(seeds).__name__}")
    if len(seeds) != k:
        raise ValueError(f"seeds has {len(seeds)} entries for {k} estimators; give one per member")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int):
            raise ValueError(f"seeds[{i}] must be an int, got {s!r}")
    return list(seeds)


def _adam(params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam with ``train``'s settings; the fused kernel (one pass over memory) where torch has one.

    On K stacked members the single-tensor Adam that ``train`` uses costs more than the forward
    pass (13 ms of a 30 ms step at K = 32 on 2 CPU cores); the fused one the same formula at a tenth.
    """
    try:
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), foreach=True)


def _plain_state(module: torch.nn.Module) -> dict:
    """Plain attributes (ints, floats) of every submodule, e.g. ReMINE's batch counter."""
    return {
        (name, k): v
        for name, m in module.named_modules()
        for k, v in vars(m).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def changed_state(module: torch.nn.Module, before: dict) -> list[str]:
    """The plain attributes (``"estimator.<submodule>.<name>"``) that differ from ``before``
    (a :func:`_plain_state`): Python state a step changed, which a CUDA graph's replay would not."""
    now = _plain_state(module)
    return sorted(
        ".".join(filter(None, ("estimator", m, a))) for (m, a), v in now.items() if before.get((m, a), v) != v
    )


def _sync_plain_state(template: torch.nn.Module, before: dict, members) -> None:
    """Copies the plain attributes the step changed on the template (shared by all members) to them."""
    changed = {key: v for key, v in _plain_state(template).items() if before.get(key, v) != v}
    for member in members:
        modules = dict(member.named_modules())
        for (name, attr), value in changed.items():
            setattr(modules[name], attr, value)


class _Chunk:
    """One batched training of ``members`` (all with the same number of steps)."""

    def __init__(
        self,
        members,
        streams,
        true_mis,
        seeds,
        *,
        steps,
        batch_size,
        lr,
        device,
        record,
        check_every,
        precision,
        graphs,
    ):
        self.members, self.streams, self.true_mis, self.seeds = members, streams, true_mis, seeds
        self.steps, self.batch_size, self.lr, self.device = steps, batch_size, lr, device
        self.record, self.check_every, self.precision = record, check_every, precision
        self.graphs = graphs and steps > WARMUP_STEPS + 1
        self.graphed = False  # whether the step ran as a CUDA graph (micore.ensemble_graph)
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
        optimizer = (graph_adam if self.graphs else _adam)(stack.trainable(), self.lr)
        graphed, side = None, torch.cuda.Stream(self.device) if self.graphs else None
        losses = torch.zeros(self.steps, self.k, device=self.device, dtype=torch.float64)
        values = torch.full((self.steps, self.k), math.nan, device=self.device, dtype=torch.float64)
        low, high = template.value_range(self.batch_size)
        active = torch.arange(self.k, device=self.device)
        gives_value = True
        histories: dict[int, TrainingHistory] = {}
        flagged: dict[int, tuple[int, str]] = {}
        loss_cap = None
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
                gives_value = False  # only the loss is checked, as in train()
            if (step + 1) % self.check_every and step + 1 != self.steps:
                continue
            # the divergence check of train(), for every member at once: one host-device sync
            if loss_cap is None:
                loss_cap = LOSS_GROWTH * losses[0].abs().clamp_min(LOSS_FLOOR)
            v = values[checked : step + 1] if gives_value and self.record else None
            any_bad, first = _first_bad(losses[checked : step + 1], v, loss_cap, low, high)
            dropped = []
            for m in stack.active:
                if any_bad[m] and m not in flagged:
                    watch = self._watch(template, losses[:, m], values[:, m], gives_value)
                    bad_step = checked + first[m]
                    flagged[m] = (bad_step, watch.reason(bad_step))
                    if divergence != "ignore":
                        stack.write_back(m)
                        histories[m] = watch.partial(
                            bad_step,
                            flagged[m][1],
                            self.true_mis[m],
                            seconds=time.perf_counter() - start,
                            **meta,
                            seed=self.seeds[m],
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
        self._finish(stack, losses, values, flagged, histories, time.perf_counter() - start, meta)
        _sync_plain_state(template, before, self.members)
        self.engine = used
        return [histories[m] for m in range(self.k)]

    def _finish(self, stack, losses: Tensor, values: Tensor, flagged: dict, histories: dict, seconds: float, meta):
        """The histories of the members that trained to the end, their weights written back."""
        for m in list(stack.active):
            stack.write_back(m)
            diverged_at, reason = flagged.get(m, (None, None))
            histories[m] = TrainingHistory(
                loss=losses[:, m].cpu().tolist(),
                estimate=values[:, m].cpu().tolist() if self.record else None,
                true_mi=self.true_mis[m],
                seconds=seconds,
                diverged_at=diverged_at,
                divergence=reason,
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
        """The step as a :class:`~micore.ensemble_graph.GraphedStep`, or ``None`` (with a warning) when it cannot be."""
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

    def _watch(self, template, losses: Tensor, values: Tensor, gives_value: bool) -> _Watch:
        """train()'s check on one member's column, for its message and its partial history."""
        watch = _Watch(template, self.name, self.batch_size, losses, values if self.record else None)
        if not gives_value:
            watch.values = None
        return watch


def _first_bad(loss: Tensor, values: Tensor | None, loss_cap: Tensor, low: float, high: float):
    """Per member of a ``[steps, K]`` window: whether a step diverged, and the first one (host lists)."""
    bad = ~torch.isfinite(loss) | (loss.abs() > loss_cap)
    if values is not None:
        bad |= ~torch.isfinite(values) | (values < low - RANGE_SLACK) | (values > high + RANGE_SLACK)
    return torch.stack([bad.any(0).long(), bad.long().argmax(0)]).cpu().tolist()


def _one_by_one(members, sources, seeds, *, divergence, desc, **kwargs) -> list[TrainingHistory]:
    """The fall-back: each member with :func:`micore.train` (a diverged one keeps its partial history)."""
    histories = []
    for i, (est, source, seed) in enumerate(zip(members, sources, seeds, strict=True)):
        x, y = (source, None) if isinstance(source, Sampler) else source
        try:
            histories.append(
                train(
                    est,
                    x,
                    y,
                    seed=seed,
                    divergence="ignore" if divergence == "ignore" else "raise",
                    desc=desc or f"member {i}",
                    **kwargs,
                )
            )
        except TrainingDiverged as err:
            histories.append(err.history)
    return histories


def train_ensemble(
    estimators: Sequence[MIEstimator],
    data,
    *,
    seeds: Sequence[int],
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device=None,
    progress: bool = True,
    record: bool = True,
    check_every: int = 10,
    divergence: str = "member",
    max_members: int | str | None = "auto",
    engine: str = "auto",
    desc: str | None = None,
    precision: str = "fp32",
    cuda_graphs: bool | str = "auto",
) -> EnsembleHistories:
    """Trains K estimators of one architecture as one batched model; member k as ``train`` with ``seeds[k]``.

    Args:
        estimators: K :class:`~micore.estimator.MIEstimator` of one class, architecture and setting
            (equal :func:`~micore.ensemble_stack.ensemble_signature`), each its own module (its own
            initial weights). Each is left trained, with its ``history``, as after ``fit``.
        data: one :class:`~micore.tasks.Sampler` or ``(x: [n, *x_shape], y: [n, *y_shape])`` pair for
            all members, or a sequence of K of them (members on different MI levels or tasks).
        seeds: K ints; member k draws the batches ``train(..., seed=seeds[k])`` would draw.
        steps: gradient steps, the same for every member (default as ``train``: a staircase's
            schedule, else 4000; members whose data give different defaults need it).
        batch_size, lr, device, progress, record, check_every: as :func:`micore.train`.
        divergence: ``"member"`` (default): a diverged member stops at the check that finds it, its
            history ending before the bad step with ``diverged_at``/``divergence`` set (what
            ``TrainingDiverged`` carries one by one) and its module as ``train`` would leave it; the
            others train on unchanged. ``"raise"``: the same, then :class:`TrainingDiverged` for the
            first diverged member once all are done (``err.histories`` holds all K). ``"ignore"``:
            every member trains to the end and only notes the step.
        max_members: the most members trained at once; more are trained in consecutive chunks.
            ``"auto"`` (default): as many as fit half the free memory
            (:func:`~micore.ensemble_stack.members_for_memory`); ``None``: all at once.
        engine: ``"auto"`` (the estimator's batched step if it has one, else vmap), ``"batched"``,
            ``"vmap"``, or ``"loop"`` (one by one with ``train``, for comparison).
        desc: the progress bar's label.
        precision: ``"fp32"`` (default), ``"tf32"`` or ``"bf16"``, as :func:`micore.train`
            (:mod:`micore.precision`).
        cuda_graphs: on CUDA, after 3 eager steps, capture the whole step (forward, backward, Adam)
            as a CUDA graph and replay it (:mod:`micore.ensemble_graph`: the same kernels without
            Python's launch overhead). ``"auto"`` (default): on CUDA, where the step allows it (a
            step that changes Python state, such as ReMINE's window slot, or cannot be captured
            stays eager, the latter with a warning); ``False``: never; ``True``: as ``"auto"`` but
            an error off CUDA.

    Returns:
        :class:`EnsembleHistories`: the K histories, with how the chunks ran and their peak memory.
    """
    members = _check_members(estimators)
    k = len(members)
    sources = _check_data(data, k)
    seeds = _check_seeds(seeds, k)
    if divergence not in DIVERGENCE_ENSEMBLE:
        raise ValueError(f"divergence must be one of {DIVERGENCE_ENSEMBLE}, got {divergence!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    first = members[0]
    batch_size = check_positive_int(first.default_batch_size if batch_size is None else batch_size, "batch_size", 2)
    lr = check_positive_float(first.default_lr if lr is None else lr, "lr")
    check_every = check_positive_int(check_every, "check_every")
    steps = None if steps is None else check_positive_int(steps, "steps")
    if not (max_members is None or max_members == "auto"):
        max_members = check_positive_int(max_members, "max_members")
    device = resolve_device(device)
    precision = check_precision(precision, device)
    if cuda_graphs not in (True, False, "auto"):
        raise ValueError(f"cuda_graphs must be True, False or 'auto', got {cuda_graphs!r}")
    if cuda_graphs is True and device.type != "cuda":
        raise ValueError(f"cuda_graphs=True needs a CUDA device, got {device}; use 'auto' or False")
    graphs = cuda_graphs is not False and device.type == "cuda"
    for est in members:
        est.to(device)
    sources = _move_once(sources, device, first.dtype)
    streams, true_mis, steps = _streams(members, sources, seeds, steps=steps, batch_size=batch_size, device=device)
    # the CPU has no allocator statistics: K times one member's estimate (member_memory) is reported
    per_member = sum(member_memory(first, batch_size, device).values())
    if max_members == "auto":
        cap = max(1, int(AUTO_MEMORY_FRACTION * available_memory(device)) // per_member)
    else:
        cap = k if max_members is None else max_members

    result = EnsembleHistories()
    result.engines, result.chunks, result.graphed, result.peak_bytes = [], [], [], 0
    result.peak_measured = device.type == "cuda"
    settings = dict(steps=steps, batch_size=batch_size, lr=lr, device=device, record=record, check_every=check_every)
    threads = training_threads() if device.type == "cpu" else None
    with using_threads(threads) as n_threads, precision_scope(precision, device):
        meta = dict(batch_size=batch_size, lr=lr, device=str(device), threads=n_threads)
        if precision != "fp32":
            meta["precision"] = precision
        for lo in range(0, k, cap):
            idx = list(range(lo, min(k, lo + cap)))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            chunk = _Chunk(
                *([seq[i] for i in idx] for seq in (members, streams, true_mis, seeds)),
                **settings,
                precision=precision,
                graphs=graphs,
            )
            histories = _train_chunk(chunk, [sources[i] for i in idx], engine, divergence, progress, desc, meta)
            for i, h in zip(idx, histories, strict=True):
                members[i].history = h
                members[i].batch_size = batch_size
            result.extend(histories)
            result.engines.append(chunk.engine)
            result.chunks.append(len(idx))
            result.graphed.append(chunk.graphed)
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device)
            else:
                peak = (1 if chunk.engine == "loop" else len(idx)) * per_member
            result.peak_bytes = max(result.peak_bytes, int(peak))
    if divergence == "raise":
        _raise_first(result, members)
    return result


def _move_once(sources: list, device: torch.device, dtype: torch.dtype) -> list:
    """Tensor pairs on ``device`` in ``dtype``, each distinct pair moved once (not once per member sharing it)."""
    moved: dict[int, tuple[Tensor, Tensor]] = {}
    out = []
    for source in sources:
        if not isinstance(source, Sampler) and id(source) not in moved:
            moved[id(source)] = (source[0].to(device, dtype), source[1].to(device, dtype))
        out.append(source if isinstance(source, Sampler) else moved[id(source)])
    return out


def _streams(members, sources, seeds, *, steps, batch_size, device):
    """Each member's batches, exactly ``train``'s for its seed: ``(streams, true_mis, steps)``."""
    streams, true_mis, counts = [], [], set()
    for i, (est, source, seed) in enumerate(zip(members, sources, seeds, strict=True)):
        x, y = (source, None) if isinstance(source, Sampler) else source
        name = f"estimators[{i}]"
        n, batches, true_mi = _data_stream(
            est, x, y, steps=steps, epochs=None, batch_size=batch_size, seed=seed, device=device, name=name
        )
        streams.append(batches())
        true_mis.append(true_mi)
        counts.add(n)
    if len(counts) > 1:
        raise ValueError(f"steps: the members' data give different default step counts {sorted(counts)}; pass steps=")
    return streams, true_mis, counts.pop()


def _train_chunk(chunk: _Chunk, sources, engine, divergence, progress, desc, meta) -> list[TrainingHistory]:
    """One chunk, batched; one by one with ``train`` when asked (``"loop"``) or when the step cannot batch."""
    if engine != "loop":
        with torch.random.fork_rng(devices=[chunk.device] if chunk.device.type == "cuda" else []):
            histories = chunk.run(engine, divergence, progress, desc, meta)
        if histories is not None:
            return histories
        warnings.warn(
            f"train_ensemble: the step of {chunk.name} cannot run batched ({chunk.failure}); training its "
            f"{chunk.k} members one by one with micore.train instead. A critic batches when it is vmap-able: "
            "no .item()/bool() on tensors, no data-dependent Python branches, no random ops.",
            stacklevel=3,
        )
    chunk.engine = "loop"
    return _one_by_one(
        chunk.members,
        sources,
        chunk.seeds,
        divergence=divergence,
        desc=desc,
        steps=chunk.steps,
        batch_size=chunk.batch_size,
        lr=chunk.lr,
        device=chunk.device,
        progress=progress,
        record=chunk.record,
        check_every=chunk.check_every,
        precision=chunk.precision,
    )


def _raise_first(histories: list[TrainingHistory], members) -> None:
    """``divergence="raise"``: TrainingDiverged for the first diverged member, with every history."""
    for i, h in enumerate(histories):
        if h.diverged_at is not None:
            err = TrainingDiverged(h.diverged_at, math.nan, type(members[i]).__name__, h, h.divergence)
            err.histories, err.member = list(histories), i
            raise err
