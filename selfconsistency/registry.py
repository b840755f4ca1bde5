"""Every estimator by name: ``nwj``, ``cpc``, ``smile:5``, ``gm-flow``, ... or ``package.module:factory``.

The built-in names are ``discmi.ESTIMATORS`` and ``genmi.ESTIMATORS`` merged (each family registers
its own; see :mod:`micore.registry`), so adding an estimator touches only its package. A factory takes
``(x_shape, y_shape)`` and returns a fresh :class:`~micore.MIEstimator`.

>>> make = make_factory("SMILE:5.0")                  # the joint critic on vectors
>>> est = make((20,), (20,))
>>> canonical_name("infonce"), title("smile:inf"), family("gm-vae:4")
('cpc', 'SMILE (τ = ∞)', 'generative')
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import discmi
import genmi
from micore import MIEstimator
from micore.registry import (
    DOMAINS,
    FAMILIES,
    USER_OBJECT,
    EstimatorSpec,
    ObjectNotFound,
    load_object,
    lookup,
    merge,
    split_name,
)

__all__ = [
    "ESTIMATORS",
    "DISCRIMINATIVE",
    "make_factory",
    "canonical_name",
    "spec",
    "family",
    "title",
    "known_names",
    "examples",
    "describe",
    "takes_critic",
    "protocol_factory",
]

Factory = Callable[[tuple, tuple], MIEstimator]

ESTIMATORS: dict[str, EstimatorSpec] = merge(discmi.ESTIMATORS, genmi.ESTIMATORS)

# Base names and aliases of the discriminative family (kept for callers that test membership).
DISCRIMINATIVE = tuple(n for s in ESTIMATORS.values() if s.family == "discriminative" for n in (s.name, *s.aliases))


def _unknown(name: str) -> ValueError:
    return ValueError(
        f"unknown estimator {name!r}; built-ins: {', '.join(s.usage for s in ESTIMATORS.values())}, "
        "or package.module:factory for your own (a callable (x_shape, y_shape) -> MIEstimator)"
    )


def _resolve(name: str) -> tuple[EstimatorSpec, str | None] | None:
    """``(spec, canonical arg)`` of a built-in name, ``None`` for ``package.module:factory``; else ValueError."""
    base, arg = split_name(name)
    found = lookup(ESTIMATORS, base)
    if found is not None:
        return found, found.parse_arg(arg)
    if USER_OBJECT.fullmatch(name.strip()):
        return None
    raise _unknown(name)


def canonical_name(name: str) -> str:
    """The one name of a configuration: ``"INFONCE"`` -> ``"cpc"``, ``"smile"`` and ``"smile:5.0"`` ->
    ``"smile:5"``, ``"gm-vae:1"`` -> ``"gm-vae"``; ``"pkg.mod:fn"`` unchanged (not imported)."""
    found = _resolve(name)
    return name.strip() if found is None else found[0].canonical(found[1])


def spec(name: str) -> EstimatorSpec | None:
    """The :class:`~micore.registry.EstimatorSpec` of a built-in name (any spelling), ``None`` for a user
    factory. ``spec("smile:inf").name == "smile"``."""
    found = _resolve(name)
    return None if found is None else found[0]


def family(name: str) -> str | None:
    """``"discriminative"`` or ``"generative"``; ``None`` for ``package.module:factory``."""
    s = spec(name)
    return None if s is None else s.family


def title(name: str) -> str:
    """The legend title: ``"smile:5"`` -> ``"SMILE (τ = 5)"``, ``"gm-flow"`` -> ``"GM (flow)"``. Any name that
    is not a valid built-in (a user factory, a label) comes back unchanged: figures never fail on it."""
    try:
        found = _resolve(name)
    except ValueError:
        return name
    return name if found is None else found[0].title(found[1])


def known_names() -> list[str]:
    """Every built-in base name once (aliases left out): ``["nwj", ..., "smile", ..., "gm-flow", ...]``."""
    return list(ESTIMATORS)


def examples(family: str | None = None) -> list[str]:
    """The canonical names the test suite trains and builds, of one family or all:
    ``examples("discriminative") == ["nwj", ..., "smile:5", "smile:inf", "remine", "remine-j"]``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES} or None, got {family!r}")
    return [e for s in ESTIMATORS.values() if family in (None, s.family) for e in s.examples]


def describe() -> str:
    """A listing of the built-in names for ``--help``: name[:param], family, inputs, summary, parameter."""
    lines = []
    for s in ESTIMATORS.values():
        inputs = ", ".join(d for d in DOMAINS if getattr(s, d)) or "-"
        head = s.usage + (f" (or {', '.join(s.aliases)})" if s.aliases else "")
        lines.append(f"  {head:24s} {s.family:15s} {inputs:16s} {s.summary}")
        if s.param:
            lines.append(f"  {'':24s} {'':15s} {'':16s} :{s.param}")
    lines.append("  package.module:factory   your own: a callable (x_shape, y_shape) -> MIEstimator")
    return "\n".join(lines)


def _check_no_critic(name: str, critic, what: str) -> None:
    if critic is None:
        return
    raise ValueError(
        f"critic applies to discriminative estimators; {name!r} is {what} and takes none, got critic={critic!r}"
    )


def _import_factory(name: str) -> Factory:
    """``"pkg.mod:fn"`` -> ``pkg.mod.fn`` (see :func:`micore.registry.load_object`), checked to be callable."""
    try:
        factory = load_object(name, "estimator")
    except ObjectNotFound as err:
        if "has no attribute" in str(err):
            raise
        raise ValueError(f"{_unknown(name)} ({str(err).partition(': ')[2]})") from err
    if not callable(factory):
        raise ValueError(
            f"estimator {name!r}: {name.strip().replace(':', '.')} is a {type(factory).__name__}, not a callable "
            "(x_shape, y_shape) -> MIEstimator"
        )
    return _returning_estimators(name, factory)


def _returning_estimators(name: str, factory: Factory) -> Factory:
    """The user's factory, checked to build an :class:`~micore.MIEstimator` (not an ``AttributeError`` later)."""

    @functools.wraps(factory)
    def checked(x_shape, y_shape):
        est = factory(x_shape, y_shape)
        if not isinstance(est, MIEstimator):
            raise ValueError(
                f"estimator {name!r} must return a micore.MIEstimator (subclass it and implement the hooks "
                f"_log_ratio and _loss; see the README), got {type(est).__name__}"
            )
        return est

    return checked


def make_factory(name: str, critic=None, *, domain: str = "vectors") -> Factory:
    """``"smile:5"`` -> a factory ``(x_shape, y_shape) -> SMILE(...)``; ``"pkg.mod:fn"`` imports ``fn``.

    Args:
        name: a built-in name (:func:`known_names`, any case, aliases too) or ``package.module:factory``.
        critic: for discriminative names, ``"joint"``, ``"separable"``, ``"conv"`` or an ``nn.Module``;
            ``None`` is the estimator's default for ``domain`` (joint on vectors, conv on images). A
            critic for a generative name or a user factory is a ValueError.
        domain: ``"vectors"`` or ``"images"``; a name that does not take that input is a ValueError.

    >>> est = make_factory("cpc", domain="images")((1, 8, 8), (1, 8, 8))   # InfoNCE, conv critic
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    found = _resolve(name)
    if found is None:
        _check_no_critic(name, critic, "your own factory")
        return _import_factory(name)
    s, arg = found
    options = {}
    if "critic" in s.options:
        if critic is not None:
            options["critic"] = critic
    else:
        _check_no_critic(name, critic, f"{s.family} ({s.name})")
    return s.factory(arg, domain=domain, **options)


def takes_critic(name: str) -> bool:
    """Whether ``name`` takes a critic: the discriminative estimators do; the generative ones and users'
    factories do not. The one critic policy every comparison follows."""
    return family(name) == "discriminative"


def protocol_factory(name: str, critic=None, *, domain: str = "vectors") -> Factory:
    """The factory of ``name`` in a comparison whose protocol names a critic: the critic goes to the names that
    take one (:func:`takes_critic`); the others are built without it (where :func:`make_factory` would refuse
    a critic for them, a protocol's critic simply does not apply).

    >>> est = protocol_factory("gm-flow", critic="separable")((2,), (2,))   # no critic: a flow
    """
    return make_factory(name, critic=critic if takes_critic(name) else None, domain=domain)
