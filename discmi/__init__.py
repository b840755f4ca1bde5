"""discmi: discriminative MI estimators — a critic, a training objective, and a bound.

Bounds are pure functions of a log density-ratio score matrix (:mod:`discmi.bounds`); estimators
pair a critic (:mod:`discmi.critics`) with an objective and an estimate. ``ESTIMATORS`` names them
(``nwj``, ``cpc``, ``smile[:tau]``, ...; see :mod:`discmi.registry`).
"""

from . import bounds
from .base import CriticEstimator
from .critics import ConvCritic, JointCritic, SeparableCritic
from .estimators import CPC, DV, JS, MINE, NWJ, SMILE, TUBA, InfoNCE, Interpolated
from .registry import ESTIMATORS
from .remine import ReMINE

__all__ = [
    "NWJ",
    "TUBA",
    "DV",
    "MINE",
    "InfoNCE",
    "CPC",
    "JS",
    "Interpolated",
    "SMILE",
    "ReMINE",
    "CriticEstimator",
    "JointCritic",
    "SeparableCritic",
    "ConvCritic",
    "bounds",
    "ESTIMATORS",
]
