"""Estimators by name: ``nwj``, ``cpc``, ``smile:5``, ``smile:inf``, ``gm-flow``, ... or ``package.module:factory``.

A factory takes ``(x_shape, y_shape)`` and returns a fresh estimator implementing the
density-ratio interface (``fit``, ``estimate``, ``log_ratio``, ``scores``, ``loss``).
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable

Factory = Callable[[tuple, tuple], object]


def _float_arg(name: str, arg: str | None, default: float) -> float:
    if arg is None or arg == "":
        return default
    if arg in ("inf", "infty", "∞"):
        return math.inf
    try:
        return float(arg)
    except ValueError:
        raise ValueError(f"estimator {name!r}: the parameter after ':' must be a number or 'inf', got {arg!r}") from None


def _discriminative(kind: str, arg: str | None, critic) -> Factory:
    import discmi

    simple = {"nwj": discmi.NWJ, "tuba": discmi.TUBA, "dv": discmi.DV, "mine": discmi.MINE,
              "cpc": discmi.InfoNCE, "infonce": discmi.InfoNCE, "js": discmi.JS}
    if kind in simple:
        if arg is not None:
            raise ValueError(f"estimator {kind!r} takes no parameter, got {kind}:{arg}")
        cls = simple[kind]
        return lambda xs, ys: cls(xs, ys, critic=critic)
    if kind == "smile":
        tau = _float_arg(kind, arg, 5.0)
        return lambda xs, ys: discmi.SMILE(xs, ys, tau=tau, critic=critic)
    if kind == "interpolated":
        alpha = _float_arg(kind, arg, 0.01)
        return lambda xs, ys: discmi.Interpolated(xs, ys, critic=critic, alpha=alpha)
    if kind in ("remine", "remine-j"):
        lam = _float_arg(kind, arg, 0.1)
        mode = "joint" if kind == "remine-j" else "dv"
        return lambda xs, ys: discmi.ReMINE(xs, ys, critic=critic, lam=lam, estimate=mode)
    raise KeyError(kind)


def _genmi_registry() -> dict:
    try:
        import genmi
    except ImportError as err:  # pragma: no cover - genmi ships with the package
        raise ValueError(f"the generative estimators need the genmi package: {err}") from err
    if not hasattr(genmi, "REGISTRY"):  # e.g. an editable install made before genmi existed
        raise ValueError(f"genmi was found at {list(getattr(genmi, '__path__', []))} but is not the package "
                         "(no REGISTRY): reinstall with pip install -e .")
    return genmi.REGISTRY


def _generative(kind: str, arg: str | None) -> Factory:
    factories = _genmi_registry()
    if kind not in factories:
        raise KeyError(kind)
    return factories[kind](arg)


DISCRIMINATIVE = ("nwj", "tuba", "dv", "mine", "cpc", "infonce", "js", "smile", "interpolated", "remine", "remine-j")


def known_names() -> list[str]:
    return list(DISCRIMINATIVE) + list(_genmi_registry())


def make_factory(name: str, critic="joint") -> Factory:
    """``"smile:5"`` -> a factory ``(x_shape, y_shape) -> SMILE(...)``; ``"pkg.mod:fn"`` imports ``fn``.

    ``critic`` ("joint", "separable", "conv") applies to discriminative estimators.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"estimator name must be a non-empty string, got {name!r}")
    kind, _, arg = name.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip() if _ else None
    if kind in DISCRIMINATIVE:
        return _discriminative(kind, arg, critic)
    try:
        return _generative(kind, arg)
    except KeyError:
        pass
    if arg:  # package.module:factory
        try:
            module = importlib.import_module(name.partition(":")[0])
        except ImportError as err:
            raise ValueError(f"unknown estimator {name!r}: not a built-in ({', '.join(known_names())}) and "
                             f"module {name.partition(':')[0]!r} cannot be imported ({err})") from err
        factory = getattr(module, arg, None)
        if not callable(factory):
            raise ValueError(f"{name!r}: module {module.__name__!r} has no callable {arg!r}")
        return factory
    raise ValueError(f"unknown estimator {name!r}; built-ins: {', '.join(known_names())}, "
                     "or give package.module:factory for your own")
