"""Many runs in one model: K estimators of one architecture trained as one batched model.

* :mod:`.train` — :func:`train_ensemble` (each member as :func:`micore.train` would train it alone);
* :mod:`.stack` — the members' parameters stacked along a leading axis, and the vmapped step;
* :mod:`.chunk` — one chunk of members trained step by step, with the divergence check of each;
* :mod:`.graph` — the whole step captured as a CUDA graph and replayed;
* :mod:`.memory` — the memory one member adds, the K that fits, near-equal chunks.
"""

from .chunk import changed_state
from .graph import GraphedStep
from .memory import available_memory, chunk_ranges, member_memory, members_for_memory
from .stack import StackedMembers, ensemble_signature, first_difference, vmapped_training_step
from .train import DIVERGENCE_ENSEMBLE, ENGINES, EnsembleHistories, train_ensemble

__all__ = [
    "train_ensemble",
    "EnsembleHistories",
    "DIVERGENCE_ENSEMBLE",
    "ENGINES",
    "ensemble_signature",
    "first_difference",
    "StackedMembers",
    "vmapped_training_step",
    "GraphedStep",
    "changed_state",
    "member_memory",
    "members_for_memory",
    "available_memory",
    "chunk_ranges",
]
