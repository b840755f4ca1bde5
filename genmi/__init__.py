"""genmi: generative MI estimators and bounds that use a known encoder.

* :math:`I_{GM}` (Song & Ermon 2020, Eq. 9) with three density models: :class:`FlowMI` (RealNVP flows
  built with nflows) and :class:`VAEMI` (VAEs, ELBO or importance-weighted bound); kind "estimate".
* Barber & Agakov (Poole et al. 2019, Sec. 2.1): :class:`BarberAgakov` (lower bound, known ``h(X)``) and
  :class:`BarberAgakovUpper` (upper bound, known encoder, learned marginal flow).
* With a known encoder ``p(y|x)`` and no training (Poole et al. Sec. 2.5): :func:`infonce_tractable_lower`
  (Eq. 12), :func:`leave_one_out_upper` (Eq. 13), :func:`total_correlation_upper`, the estimators
  :class:`TractableInfoNCE` and :class:`LeaveOneOut`, and :func:`sandwich` (both bounds at once).

``ESTIMATORS`` names them for the benchmarks (``gm-flow``, ``gm-vae[:K]``, ``ba[:H]``, ``loo``; see
:mod:`genmi.registry`); ``REGISTRY`` is its deprecated alias.
"""

from .barber_agakov import BarberAgakov, BarberAgakovUpper, ConditionalGaussian, standard_normal_entropy
from .base import GenerativeMI
from .flows import FlowMI, real_nvp
from .known_encoder import (
    conditional_log_prob_matrix,
    infonce_tractable_lower,
    leave_one_out_upper,
    total_correlation_upper,
)
from .registry import ESTIMATORS
from .sandwich import LeaveOneOut, TractableInfoNCE, sandwich, total_correlation_bound
from .vae import VAE, VAEMI

__all__ = [
    "FlowMI",
    "VAEMI",
    "GenerativeMI",
    "BarberAgakov",
    "BarberAgakovUpper",
    "LeaveOneOut",
    "TractableInfoNCE",
    "sandwich",
    "infonce_tractable_lower",
    "leave_one_out_upper",
    "total_correlation_upper",
    "total_correlation_bound",
    "conditional_log_prob_matrix",
    "real_nvp",
    "VAE",
    "ConditionalGaussian",
    "standard_normal_entropy",
    "ESTIMATORS",
    "REGISTRY",
]
