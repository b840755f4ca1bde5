"""Moved to :mod:`micore.finite` (``estimate_mi`` is now ``estimate_heldout``; ``prepare_data`` is
:func:`micore.validation.check_pair_data`); this path forwards there with a DeprecationWarning."""

from __future__ import annotations

import warnings

from micore.compat import REMOVAL, moved_module

__getattr__, __dir__ = moved_module(__name__, "micore.finite.seeds")


def estimate_mi(*args, **kwargs):
    """Deprecated name of :func:`micore.finite.estimate_heldout`."""
    warnings.warn(
        f"micore.finite_sample.estimate_mi is now micore.finite.estimate_heldout (the old name goes in {REMOVAL})",
        DeprecationWarning,
        stacklevel=2,
    )
    from micore.finite import estimate_heldout

    return estimate_heldout(*args, **kwargs)


def prepare_data(x, y, *, drop_nonfinite: bool = False):
    """Deprecated: :func:`micore.validation.check_pair_data` (which returns the dropped rows, not their count)."""
    warnings.warn(
        f"micore.finite_sample.prepare_data is now micore.validation.check_pair_data (the old name goes in {REMOVAL})",
        DeprecationWarning,
        stacklevel=2,
    )
    from micore.validation import check_pair_data

    x, y, dropped = check_pair_data(x, y, drop_nonfinite=drop_nonfinite)
    return x, y, len(dropped)
