"""discmi's estimators by name (the protocol is :mod:`micore.registry`): ``nwj``, ``cpc``, ``smile:5``, ...

Every name takes the ``critic`` option (``"joint"``, ``"separable"``, ``"conv"`` or an ``nn.Module``),
by default the joint critic on vectors and the paper's conv critic on images.

>>> from discmi import ESTIMATORS
>>> ESTIMATORS["smile"].canonical("5.0"), ESTIMATORS["remine"].canonical("0.1")
('smile:5', 'remine')
>>> est = ESTIMATORS["cpc"].build(None, (20,), (20,), critic="separable")
"""

from __future__ import annotations

from micore.registry import EstimatorSpec, merge, number_param

from .estimators import DV, JS, MINE, NWJ, SMILE, TUBA, InfoNCE, Interpolated
from .remine import ReMINE

__all__ = ["ESTIMATORS"]

# Defaults are the papers' (README): SMILE tau 5, I_alpha alpha 0.01, ReMINE lambda 0.1.
TAU, ALPHA, LAM = 5.0, 0.01, 0.1

_COMMON = dict(
    family="discriminative",
    vectors=True,
    images=True,
    options=("critic",),
    defaults={"vectors": {"critic": "joint"}, "images": {"critic": "conv"}},
)


def _plain(cls):
    def build(arg, x_shape, y_shape, *, critic):
        return cls(x_shape, y_shape, critic=critic)

    return build


def _smile(arg, x_shape, y_shape, *, critic):
    return SMILE(x_shape, y_shape, tau=float(arg), critic=critic)


def _interpolated(arg, x_shape, y_shape, *, critic):
    return Interpolated(x_shape, y_shape, critic=critic, alpha=ALPHA if arg is None else float(arg))


def _remine(estimate: str):
    def build(arg, x_shape, y_shape, *, critic):
        return ReMINE(x_shape, y_shape, critic=critic, lam=LAM if arg is None else float(arg), estimate=estimate)

    return build


def _suffix(symbol: str):
    """Legend text of an optional parameter shown only off its default (as in the canonical name)."""
    return lambda arg: "" if arg is None else f" ({symbol} = {arg})"


_lam = number_param(
    "lam", "lambda, the regulariser's weight (a positive number)", default=LAM, minimum=0, exclusive_minimum=True
)


def _spec(name: str, summary: str, builder, legend, **more) -> EstimatorSpec:
    """A discriminative name: every one takes a critic, on vectors and images."""
    return EstimatorSpec(
        name, summary=summary, builder=builder, legend=legend, **{"examples": (name,), **more}, **_COMMON
    )


def _remine_spec(name: str, summary: str, estimate: str) -> EstimatorSpec:
    legend = ("ReMINE" if estimate == "dv" else "ReMINE-J") + "{}"
    return _spec(
        name,
        summary,
        _remine(estimate),
        lambda arg: legend.format(_suffix("λ")(arg)),
        param="lam, the log-partition regulariser's weight (default 0.1)",
        parse=_lam,
    )


ESTIMATORS = merge(
    [
        _spec("nwj", "NWJ lower bound (Nguyen et al.; f-divergence dual)", _plain(NWJ), "NWJ"),
        _spec("tuba", "TUBA lower bound with a learned baseline a(y)", _plain(TUBA), "TUBA"),
        _spec("dv", "Donsker-Varadhan estimate, plain minibatch gradient", _plain(DV), "DV"),
        _spec("mine", "MINE: the DV bound with the bias-corrected moving-average gradient", _plain(MINE), "MINE"),
        _spec(
            "cpc", "InfoNCE / CPC lower bound (at most log batch size)", _plain(InfoNCE), "CPC", aliases=("infonce",)
        ),
        _spec("js", "I_JS: critic trained with the JS (f-GAN) objective, NWJ estimate", _plain(JS), "JS"),
        _spec(
            "interpolated",
            "I_alpha, the bound between NWJ and InfoNCE (Poole et al. Eq. 11)",
            _interpolated,
            lambda arg: "Interpolated" + _suffix("α")(arg),
            param="alpha, the interpolation weight in [0, 1] (default 0.01)",
            parse=number_param("alpha", "alpha, a number in [0, 1]", default=ALPHA, minimum=0, maximum=1),
        ),
        _spec(
            "smile",
            "SMILE: JS-trained critic, DV estimate with e^T clipped to [e^-tau, e^tau]",
            _smile,
            lambda arg: f"SMILE (τ = {'∞' if arg == 'inf' else arg})",
            param="tau, the clip (default 5; 'inf' for none)",
            parse=number_param(
                "tau",
                "tau, a positive number or 'inf'",
                default=TAU,
                minimum=0,
                exclusive_minimum=True,
                allow_inf=True,
                show_default=True,
            ),  # fmt: skip
            examples=("smile:5", "smile:inf"),
        ),
        _remine_spec("remine", "ReMINE: DV with an L2 regulariser pinning the log-partition to 0", "dv"),
        _remine_spec("remine-j", "ReMINE-J: ReMINE's critic, estimate E_P[T] - C without the partition", "joint"),
    ]
)
