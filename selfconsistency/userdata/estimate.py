"""Estimate the MI of your own data in one call: :func:`estimate_mi` with registered names, several at once.

The protocol (split, standardisation, early stopping, seeds, interval, flags) is :mod:`micore.finite`;
this floor resolves names (``"smile:5"``, ``"cpc"``, ``"gm-flow"``, ``"pkg.mod:factory"``), compares several
estimators on the same data, and with a known encoder adds the sandwich's bounds (Poole et al. 2019, Sec. 2.5).

>>> from micore.tasks import make_task
>>> task = make_task("multinormal-dense-2-2-0.5")
>>> x, y = task.sample(5000, seed=0)
>>> res = estimate_mi(x, y, "smile:5", critic="separable", progress=False)   # doctest: +SKIP
>>> print(res)                                                                 # doctest: +SKIP
smile:5: 0.273 nats [0.229, 0.317] (95% over 3 seed(s); estimate; n=5000; ...)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from micore import Estimate
from micore.finite import DEFAULT_SEEDS, HeldoutConfig, MIResult, estimate_heldout
from micore.validation import PairData, check_pair_data

from ..registry import canonical_name, make_factory, protocol_factory

__all__ = ["estimate_mi", "Comparison", "Failure"]


@dataclass
class Failure:
    """An estimator that raised instead of giving a value: its name and the error."""

    name: str
    error: str

    def to_dict(self) -> dict:
        return {"name": self.name, "error": self.error}


@dataclass
class Comparison:
    """Several estimators on the same data: their :class:`~micore.finite.MIResult` rows, the failures,
    and with a known encoder the sandwich (``lower`` <= I <= ``upper`` in expectation, no training)."""

    results: list[MIResult]
    failures: list[Failure] = field(default_factory=list)
    lower: Estimate | None = None
    upper: Estimate | None = None
    n: int = 0
    dropped: int = 0
    seconds: float = 0.0

    def __getitem__(self, name: str) -> MIResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"{name!r}: the comparison has {[r.name for r in self.results]}")

    def table(self) -> str:
        """A Markdown table: estimator, verdict, value, interval, kind, steps per seed, time, flags."""
        lines = [
            "| estimator | verdict | MI (nats) | 95% interval | kind | steps per seed | time (s) | flags |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            pct = round(100 * r.confidence)
            interval = f"[{r.low:.3f}, {r.high:.3f}]" + ("" if pct == 95 else f" ({pct}%)") + ("*" if r.low < 0 else "")
            flags = ", ".join(f.name for f in r.flags) or "-"
            steps = "/".join(str(s) for s in r.steps)
            verdict = "reliable" if r.reliable else "**unreliable**"
            row = [r.name, verdict, f"{r.value:.3f}", interval, r.kind, steps, f"{r.seconds:.0f}", flags]
            lines.append("| " + " | ".join(row) + " |")
        for bound in (self.lower, self.upper):
            if bound is not None:
                err = "" if math.isnan(bound.stderr) else f" ± {bound.stderr:.3f}"
                lines.append(f"| known encoder: {bound.kind} | | {bound.value:.3f}{err} | | {bound.kind} | 0 | | - |")
        for f in self.failures:
            lines.append(f"| {f.name} | failed | | | | | | {f.error} |")
        if any(r.low < 0 for r in self.results):
            lines.append("\n\\* the interval reaches below 0, which no MI can: read its lower end as 0")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "dropped_rows": self.dropped,
            "seconds": self.seconds,
            "results": [r.to_dict() for r in self.results],
            "failures": [f.to_dict() for f in self.failures],
            "lower": self.lower.to_dict() if self.lower else None,
            "upper": self.upper.to_dict() if self.upper else None,
        }

    def __str__(self) -> str:
        flags = [f"{r.name} ! {f}" for r in self.results for f in r.flags]
        notes = list(dict.fromkeys(f"note: {n}" for r in self.results for n in r.notes))
        return "\n".join([self.table(), *flags, *notes])


def _sandwich(encoder, x, seed: int):
    from genmi import sandwich

    return sandwich(encoder, x, batch_size=128, seed=seed)


def estimate_mi(
    x,
    y=None,
    method: str | Sequence[str] | object = "smile:5",
    *,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    critic=None,
    encoder=None,
    upper: float | None = None,
    drop_nonfinite: bool = False,
    confidence: float = 0.95,
    device=None,
    progress: bool = True,
    config: HeldoutConfig | None = None,
    **protocol,
) -> MIResult | Comparison:
    """The MI of ``x`` and ``y`` with one estimator (an :class:`~micore.finite.MIResult`) or several
    (a :class:`Comparison`), each by the finite-sample protocol of :mod:`micore.finite`.

    Args:
        x: ``[n, *x_shape]`` tensor or NumPy array (1-d: ``[n]`` becomes ``[n, 1]``); y: ``[n, *y_shape]``.
            Checked once (:func:`micore.validation.check_pair_data`); or ``x`` a checked
            :class:`~micore.validation.PairData` (``LoadedPair.data``) and ``y`` omitted.
        method: a registered name (``"smile:5"``, ``"mine"``, ``"cpc"``, ``"gm-flow"``, ...; see
            ``selfconsistency --help``), ``"pkg.mod:factory"``, a factory ``(x_shape, y_shape) ->
            MIEstimator``, an :class:`~micore.MIEstimator`, or a list of these (a :class:`Comparison`).
        seeds: how many seeds, or which (each: its own split, initialisation and batch order).
        critic: for discriminative names, ``"joint"`` (default on vectors), ``"separable"``, ``"conv"``
            (default on images) or an ``nn.Module``; in a list, it goes to the discriminative names only.
        encoder: a known encoder ``x -> Distribution of y``: adds the sandwich's tractable-InfoNCE lower and
            leave-one-out upper bounds (Poole et al. Eqs. 12-13, from ``y`` drawn from the encoder; no training)
            and checks every lower bound against the upper one.
        upper: a known upper bound on the MI in nats (the ``above_upper`` flag).
        drop_nonfinite: drop rows with NaN/inf in ``x`` or ``y`` (counted in the result) instead of refusing them.
        confidence: of the interval over seeds.
        device: default CUDA when available, else CPU.
        config: the protocol as a :class:`~micore.finite.HeldoutConfig`; or give its fields as keywords
            (``protocol``: ``max_steps``, ``patience``, ``eval_every``, ``valid_fraction``, ``test_fraction``,
            ``batch_size``, ``lr``, ``standardize``, ``min_delta``, ``monitor``; an unknown one is a
            ``TypeError`` listing them). ``batch_size``, ``lr``: default each estimator's paper settings.
    """
    if isinstance(x, PairData) and y is None:
        data = x
    else:
        data = check_pair_data(x, y, drop_nonfinite=drop_nonfinite)  # the one check: not repeated per method
    if config is not None and protocol:
        raise ValueError(f"give config or protocol keywords ({sorted(protocol)}), not both")
    config = config if config is not None else HeldoutConfig.from_options(**protocol)
    several = isinstance(method, (list, tuple))
    methods = list(method) if several else [method]
    if not methods:
        raise ValueError("method: give at least one estimator")
    domain = "vectors" if data.x.dim() == 2 and data.y.dim() == 2 else "images"
    factories = []
    for m in methods:  # resolve every name first: a typo in the last name fails before hours of training
        if isinstance(m, str):
            # one name takes the critic as asked (a critic for a generative name is an error); a list follows
            # the comparisons' critic policy
            make = protocol_factory if several else make_factory
            factories.append((canonical_name(m), make(m, critic, domain=domain)))
        elif callable(m):
            factories.append((getattr(m, "__name__", type(m).__name__), m))
        else:
            raise ValueError(f"method: {m!r} is neither a name, a factory nor an MIEstimator")
    start = time.perf_counter()
    lower = upper_est = None
    if encoder is not None:
        lower, upper_est = _sandwich(encoder, data.x, seed=0)
        upper = upper_est.value if upper is None else min(upper, upper_est.value)
    results, failures = [], []
    for name, factory in factories:
        try:
            res = estimate_heldout(
                data,
                estimator=factory,
                seeds=seeds,
                config=config,
                confidence=confidence,
                upper=upper,
                name=name,
                device=device,
                progress=progress,
            )
        except ValueError:
            raise  # bad arguments: the caller's to fix, not an estimator failing
        except Exception as err:  # noqa: BLE001 - one estimator failing must not lose the others' results
            if not several:
                raise
            failures.append(Failure(name, f"{type(err).__name__}: {err}"))
            continue
        results.append(res)
    if not several:
        res = results[0]
        res.config["dropped_rows"] = len(data.dropped)
        return res
    return Comparison(
        results,
        failures,
        lower,
        upper_est,
        n=data.x.shape[0],
        dropped=len(data.dropped),
        seconds=time.perf_counter() - start,
    )
