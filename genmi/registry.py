"""genmi's estimators by name (the protocol is :mod:`micore.registry`), e.g. ``selfconsistency bench gm-flow``.

* ``gm-flow`` — :class:`~genmi.FlowMI` with the seed's defaults (no parameter); vectors and images.
* ``gm-vae``, ``gm-vae:K`` — :class:`~genmi.VAEMI` with ``K`` importance samples (default 1, the ELBO);
  vectors and images.
* ``ba``, ``ba:H`` — :class:`~genmi.BarberAgakov` lower bound. ``H`` is :math:`h(X)` in nats; without
  it, ``x`` is taken to be :math:`N(0, I_d)`, as in the benchmark's Gaussian and Cubic tasks, so
  ``H = d/2 log(2 pi e)`` (vector ``x`` only; images need ``ba:H``).
* ``loo`` — refused with an explanation: the leave-one-out bound needs the task's encoder
  :math:`p(y|x)`, which a factory of shapes cannot know (and the staircase changes it every level).
  Use :func:`genmi.sandwich` or :class:`genmi.LeaveOneOut` with the encoder.

>>> from genmi import ESTIMATORS
>>> ESTIMATORS["gm-vae"].canonical("1"), ESTIMATORS["gm-vae"].title("16")
('gm-vae', 'GM (VAE, K = 16)')
>>> est = ESTIMATORS["gm-flow"].build(None, (1, 8, 8), (1, 8, 8), domain="images")
"""

from __future__ import annotations

from micore.registry import EstimatorSpec, merge, number_param

from .barber_agakov import BarberAgakov, standard_normal_entropy
from .flows import FlowMI
from .vae import VAEMI

__all__ = ["ESTIMATORS"]


def _gm_flow(arg, x_shape, y_shape):
    return FlowMI(x_shape, y_shape)


def _gm_vae(arg, x_shape, y_shape):
    return VAEMI(x_shape, y_shape, k=1 if arg is None else int(arg))


def _ba(arg, x_shape, y_shape):
    if arg is not None:
        return BarberAgakov(x_shape, y_shape, entropy_x=float(arg))
    if len(x_shape) != 1:
        raise ValueError(
            f"estimator 'ba' needs h(X): without 'ba:H' it assumes x ~ N(0, I) (the benchmark's "
            f"tasks), which does not apply to x of shape {tuple(x_shape)}"
        )
    return BarberAgakov(x_shape, y_shape, entropy_x=standard_normal_entropy(x_shape[0]))


def _loo(arg, x_shape, y_shape):  # never called: the spec is unavailable
    raise AssertionError("loo is unavailable")


_LOO_WHY = (
    "it needs the task's known encoder p(y|x), which a benchmark factory of shapes does not receive "
    "(the staircase changes p(y|x) at every level, and the leave-one-out bound has nothing to train); "
    "use genmi.sandwich(encoder, x) or genmi.LeaveOneOut(x_dim, y_dim, encoder=...) directly"
)


def _spec(name: str, summary: str, builder, legend, *, examples: tuple[str, ...] = (), **more) -> EstimatorSpec:
    """A generative name: on vectors and images unless told otherwise; no critic."""
    return EstimatorSpec(
        name, "generative", summary, builder, **{"images": True, **more}, legend=legend, examples=examples
    )


def _with_arg(bare: str, titled: str):
    """The legend of a name with an optional parameter: ``bare`` without it, ``titled.format(arg)`` with it."""
    return lambda arg: bare if arg is None else titled.format(arg)


_K = number_param("K", "the number of importance samples K (an int >= 1)", default=1, integer=True, minimum=1)

ESTIMATORS = merge(
    [
        _spec(
            "gm-flow",
            "I_GM with three RealNVP flows for p(x, y), p(x), p(y)",
            _gm_flow,
            "GM (flow)",
            examples=("gm-flow",),
        ),
        _spec(
            "gm-vae",
            "I_GM with three VAEs (ELBO, or the importance-weighted bound with K)",
            _gm_vae,
            _with_arg("GM (VAE)", "GM (VAE, K = {})"),
            param="K, the importance samples (default 1, the ELBO)",
            parse=_K,
            examples=("gm-vae", "gm-vae:4"),
        ),
        _spec(
            "ba",
            "Barber-Agakov lower bound with a Gaussian q(x|y) and a known h(X)",
            _ba,
            _with_arg("BA", "BA (h(X) = {})"),
            param="H, h(X) in nats (default: x ~ N(0, I), vectors only)",
            parse=number_param("H", "h(X) in nats (a finite number)"),
            arg_required_for=("images",),
            examples=("ba", "ba:12.5"),
        ),
        _spec(
            "loo",
            "leave-one-out upper bound with a known encoder (not buildable by name)",
            _loo,
            "LOO",
            vectors=False,
            images=False,
            unavailable=_LOO_WHY,
        ),
    ]
)
