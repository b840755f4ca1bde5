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
``tests/micore/ensemble/test_ensemble.py`` states the tolerance).

The step of all members runs one of two ways:

* the estimator's own batched step, when its class offers one: a method ``_ensemble_step()`` on a
  private copy of the first member (the *template*, which the method may alter), returning
  ``step(params, buffers, x, y) -> (loss [K], value [K] | None)`` over stacked ``[K, ...]`` tensors
  keyed by the estimator's parameter and buffer names, or ``None`` when it has none for this
  configuration (discmi's JointCritic and SeparableCritic run as stacked matrix products,
  :mod:`discmi.batched`);
* otherwise ``torch.func.vmap`` over ``functional_call`` of the template's ``_training_step``
  (:func:`~micore.ensemble.stack.vmapped_training_step`): any estimator whose step is vmap-able.

A step that cannot run batched (a critic calling ``.item()``, branching on data, or drawing random
numbers) is found on the first step; the ensemble then trains one by one with :func:`micore.train`
and says why in a warning.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from ..device import resolve_device
from ..estimator import MIEstimator
from ..tasks import Sampler
from ..training import TrainingDiverged, TrainingHistory, data_stream, train
from ..training.precision import check_precision, precision_scope
from ..training.threads import training_threads, using_threads
from ..validation import check_positive_float, check_positive_int
from .chunk import Chunk
from .memory import AUTO_MEMORY_FRACTION, available_memory, chunk_ranges, member_memory
from .stack import ensemble_signature, first_difference

__all__ = ["train_ensemble", "EnsembleHistories", "DIVERGENCE_ENSEMBLE", "ENGINES"]

# "member": a diverged member stops there (its history ends before the bad step, as TrainingDiverged's
# would), the others train on; "raise": the same, then TrainingDiverged for the first diverged member
# once all are done; "ignore": every member trains to the end, the step noted in its history.
DIVERGENCE_ENSEMBLE = ("member", "raise", "ignore")
# "auto": the estimator's batched step if it offers one, else vmap; "loop": one by one with train().
ENGINES = ("auto", "batched", "vmap", "loop")


class EnsembleHistories(list):
    """The members' :class:`~micore.training.TrainingHistory`, in the order of the estimators.

    Attributes: ``engines`` (how each chunk ran: ``"batched"``, ``"vmap"`` or ``"loop"``),
    ``chunks`` (members per chunk), ``chunk_of`` (per member: its chunk's index), ``chunk_seconds``
    (per chunk: its wall time), ``graphed`` (per chunk: whether its step ran as a CUDA graph),
    ``peak_bytes`` (largest chunk's peak memory) and
    ``peak_measured`` (``True``: CUDA's ``max_memory_allocated``; ``False``: K times the per-member
    estimate of :func:`~micore.ensemble.memory.member_memory`, on the CPU).
    """

    engines: list[str]
    chunks: list[int]
    chunk_of: list[int]
    chunk_seconds: list[float]
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
                    "and one setting of every option; group members by micore.ensemble.ensemble_signature"
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
            (equal :func:`~micore.ensemble.stack.ensemble_signature`), each its own module (its own
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
            (:func:`~micore.ensemble.memory.members_for_memory`); ``None``: all at once.
        engine: ``"auto"`` (the estimator's batched step if it has one, else vmap), ``"batched"``,
            ``"vmap"``, or ``"loop"`` (one by one with ``train``, for comparison).
        desc: the progress bar's label.
        precision: ``"fp32"`` (default), ``"tf32"`` or ``"bf16"``, as :func:`micore.train`
            (:mod:`micore.training.precision`).
        cuda_graphs: on CUDA, after 3 eager steps, capture the whole step (forward, backward, Adam)
            as a CUDA graph and replay it (:mod:`micore.ensemble.graph`: the same kernels without
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
    result.chunk_of, result.chunk_seconds = [], []
    result.peak_measured = device.type == "cuda"
    settings = dict(steps=steps, batch_size=batch_size, lr=lr, device=device, record=record, check_every=check_every)
    threads = training_threads() if device.type == "cpu" else None
    with using_threads(threads) as n_threads, precision_scope(precision, device):
        meta = dict(batch_size=batch_size, lr=lr, device=str(device), threads=n_threads)
        if precision != "fp32":
            meta["precision"] = precision
        for c, idx in enumerate(chunk_ranges(k, cap)):
            started = time.perf_counter()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            parts = ([seq[i] for i in idx] for seq in (members, streams, true_mis, seeds))
            chunk = Chunk(*parts, settings, precision=precision, graphs=graphs)
            histories = _train_chunk(chunk, [sources[i] for i in idx], engine, divergence, progress, desc, meta)
            for i, h in zip(idx, histories, strict=True):
                members[i].history = h
                members[i].batch_size = batch_size
            result.extend(histories)
            result.chunk_of += [c] * len(idx)
            result.chunk_seconds.append(time.perf_counter() - started)
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
        n, batches, true_mi = data_stream(
            est, x, y, steps=steps, epochs=None, batch_size=batch_size, seed=seed, device=device, name=name
        )
        streams.append(batches())
        true_mis.append(true_mi)
        counts.add(n)
    if len(counts) > 1:
        raise ValueError(f"steps: the members' data give different default step counts {sorted(counts)}; pass steps=")
    return streams, true_mis, counts.pop()


def _train_chunk(chunk: Chunk, sources, engine, divergence, progress, desc, meta) -> list[TrainingHistory]:
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
    train_options = dict(progress=progress, precision=chunk.precision, **chunk.settings)
    return _one_by_one(chunk.members, sources, chunk.seeds, divergence=divergence, desc=desc, **train_options)


def _raise_first(histories: list[TrainingHistory], members) -> None:
    """``divergence="raise"``: TrainingDiverged for the first diverged member, with every history."""
    for i, h in enumerate(histories):
        if h.diverged_at is not None:
            err = TrainingDiverged(h.diverged_at, math.nan, type(members[i]).__name__, h, h.divergence)
            err.histories, err.member = list(histories), i
            raise err
