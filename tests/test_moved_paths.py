"""Every import path users may have keeps working after the layout change (issue 19), and says where to go.

A moved module's old path forwards every name to the new module (the same object) with a DeprecationWarning
naming the new path; renamed public names do the same. The library itself never goes through an old path:
pytest's configuration turns a DeprecationWarning raised from inside the packages into an error.
"""

import importlib
import warnings

import pytest

# old module -> new module
MOVED = {
    "micore.threads": "micore.training.threads",
    "micore.precision": "micore.training.precision",
    "micore.ensemble_stack": "micore.ensemble",
    "micore.ensemble_chunk": "micore.ensemble.chunk",
    "micore.ensemble_graph": "micore.ensemble.graph",
    "micore.heldout": "micore.finite.heldout",
    "micore.diagnostics": "micore.finite.diagnostics",
    "micore.finite_sample": "micore.finite.seeds",
    "selfconsistency.runner": "selfconsistency.execution.runner",
    "selfconsistency.executors": "selfconsistency.execution.executors",
    "selfconsistency.storage": "selfconsistency.execution.storage",
    "selfconsistency.estimate": "selfconsistency.userdata.estimate",
    "selfconsistency.userdata_files": "selfconsistency.userdata.formats",
    "selfconsistency.userdata_csv": "selfconsistency.userdata.csv_tables",
    "selfconsistency.cli_args": "selfconsistency.cli.flags",
    "selfconsistency.check_cli": "selfconsistency.cli.check",
    "selfconsistency.estimate_cli": "selfconsistency.cli.estimate",
    "selfconsistency.groundtruth.table": "selfconsistency.groundtruth.tables",
    "selfconsistency.groundtruth.finite_report": "selfconsistency.groundtruth.finite_tables",
    "selfconsistency.groundtruth.short_training": "selfconsistency.testing",
    "selfconsistency.images.channel": "selfconsistency.images.bsc_task",
}

# (module, old name) -> (module, new name)
RENAMED = {
    ("micore", "estimate_mi"): ("micore.finite", "estimate_heldout"),
    ("selfconsistency", "Protocol"): ("selfconsistency.images.suite", "ImageProtocol"),
    ("selfconsistency.images", "Protocol"): ("selfconsistency.images.suite", "ImageProtocol"),
    ("selfconsistency.images.suite", "Protocol"): ("selfconsistency.images.suite", "ImageProtocol"),
    ("selfconsistency.groundtruth.staircase", "run_benchmark"): ("selfconsistency.groundtruth.bench", "run_benchmark"),
    ("selfconsistency.groundtruth.staircase", "resolve_device"): ("micore.device", "device_name"),
    ("selfconsistency.groundtruth.ensembles", "parallel_cap"): ("selfconsistency.execution", "parallel_cap"),
}


def _public(module) -> list[str]:
    return list(getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]))


@pytest.mark.parametrize("old", list(MOVED))
def test_a_moved_module_forwards_every_public_name_with_a_warning(old):
    new = importlib.import_module(MOVED[old])
    shim = importlib.import_module(old)
    names = _public(new)
    assert names, f"{MOVED[old]} exports nothing"
    for name in names:
        with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED[old]}: import {name} from {MOVED[old]}"):
            assert getattr(shim, name) is getattr(new, name)
    with pytest.raises(AttributeError, match=f"moved to '{MOVED[old]}'"):
        _ = shim.no_such_name
    assert set(names) <= set(dir(shim))


@pytest.mark.parametrize("where, old", list(RENAMED))
def test_a_renamed_name_still_works_with_a_warning(where, old):
    module, new = RENAMED[(where, old)]
    with pytest.warns(DeprecationWarning, match=f"{where}.{old} is now {module}.{new}"):
        value = getattr(importlib.import_module(where), old)
    assert value is getattr(importlib.import_module(module), new)


def test_the_old_helpers_of_finite_sample_still_compute(recwarn):
    """``micore.finite_sample.prepare_data`` (the data check) and ``estimate_mi`` are thin wrappers now."""
    import torch

    from micore.finite_sample import prepare_data

    x, y, dropped = prepare_data([1.0, float("nan"), 3.0], [[0.0], [1.0], [2.0]], drop_nonfinite=True)
    assert dropped == 1 and x.shape == (2, 1) and torch.equal(y, torch.tensor([[0.0], [2.0]]))
    assert any(issubclass(w.category, DeprecationWarning) for w in recwarn)


def test_the_library_imports_without_touching_an_old_path():
    """Importing every package (and the command) raises no DeprecationWarning: the shims are for users only."""
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning); "
        "import micore, discmi, genmi, selfconsistency, selfconsistency.cli, selfconsistency.testing"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_warnings_filter_is_set_for_the_packages():
    """The suite's configuration makes a DeprecationWarning raised from the packages' own code an error."""
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("an old path", DeprecationWarning, "x.py", 1, module="selfconsistency.registry")
