"""Generative estimators by name, for ``selfconsistency``'s registry (``selfconsistency bench gm-flow``).

``REGISTRY[name](arg)`` returns a factory ``(x_shape, y_shape) -> estimator``; ``arg`` is the text after
``:`` in ``name:arg`` (``None`` without one).

* ``gm-flow`` — :class:`~genmi.FlowMI` with the seed's defaults (no parameter).
* ``gm-vae``, ``gm-vae:K`` — :class:`~genmi.VAEMI` with ``K`` importance samples (default 1, the ELBO).
* ``ba``, ``ba:H`` — :class:`~genmi.BarberAgakov` lower bound. ``H`` is :math:`h(X)` in nats; without
  it, ``x`` is taken to be :math:`N(0, I_d)`, as in the benchmark's Gaussian and Cubic tasks, so
  ``H = d/2 log(2 pi e)`` (vector ``x`` only).
* ``loo`` — refused with an explanation: the leave-one-out bound needs the task's encoder
  :math:`p(y|x)`, which a factory of shapes cannot know (and the staircase changes it every level).
  Use :func:`genmi.sandwich` or :class:`genmi.LeaveOneOut` with the encoder.
"""
from __future__ import annotations

from collections.abc import Callable

from .barber_agakov import BarberAgakov, standard_normal_entropy
from .flows import FlowMI
from .vae import VAEMI

__all__ = ["REGISTRY"]

Factory = Callable[[tuple, tuple], object]


def _no_arg(name: str, arg: str | None) -> None:
    if arg is not None:
        raise ValueError(f"estimator {name!r} takes no parameter, got {name}:{arg}")


def _gm_flow(arg: str | None) -> Factory:
    _no_arg("gm-flow", arg)
    return lambda xs, ys: FlowMI(xs, ys)


def _gm_vae(arg: str | None) -> Factory:
    k = 1
    if arg:
        try:
            k = int(arg)
        except ValueError:
            raise ValueError(f"estimator 'gm-vae': the parameter after ':' is the number of importance samples K "
                             f"(an int >= 1), got {arg!r}") from None
        if k < 1:
            raise ValueError(f"estimator 'gm-vae': K must be >= 1, got {k}")
    return lambda xs, ys: VAEMI(xs, ys, k=k)


def _ba(arg: str | None) -> Factory:
    entropy = None
    if arg:
        try:
            entropy = float(arg)
        except ValueError:
            raise ValueError(f"estimator 'ba': the parameter after ':' is h(X) in nats, got {arg!r}") from None

    def factory(xs, ys):
        if entropy is not None:
            return BarberAgakov(xs, ys, entropy_x=entropy)
        if len(xs) != 1:
            raise ValueError(f"estimator 'ba' needs h(X): without 'ba:H' it assumes x ~ N(0, I) (the benchmark's "
                             f"tasks), which does not apply to x of shape {tuple(xs)}")
        return BarberAgakov(xs, ys, entropy_x=standard_normal_entropy(xs[0]))

    return factory


def _loo(arg: str | None) -> Factory:
    raise ValueError("estimator 'loo' needs the task's known encoder p(y|x), which a benchmark factory of shapes "
                     "does not receive (the staircase changes p(y|x) at every level, and the leave-one-out bound has "
                     "nothing to train); use genmi.sandwich(encoder, x) or genmi.LeaveOneOut(x_dim, y_dim, "
                     "encoder=...) directly")


REGISTRY: dict[str, Callable[[str | None], Factory]] = {
    "gm-flow": _gm_flow,
    "gm-vae": _gm_vae,
    "ba": _ba,
    "loo": _loo,
}
