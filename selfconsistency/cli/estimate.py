"""``selfconsistency estimate DATA``: the MI of your own file, with intervals and flags
(:func:`selfconsistency.userdata.estimate_mi`).

Reads DATA with :func:`~selfconsistency.userdata.load_pair` (``.npz`` keys, ``.npy`` pairs, ``.csv`` columns,
``.pt`` dicts), runs each ``--method`` by the finite-sample protocol, prints the table and the flags, and writes
``OUT/estimate.json`` and ``OUT/estimate.md`` atomically. Bad input exits 2 before anything is trained or
written; an estimator that fails exits 1 after the others finished (their results are written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from micore.validation import PairData, drop_constant_columns

from ..execution import NotWritten, OutputLock, check_writable, write_outputs
from ..registry import canonical_name
from ..userdata import Comparison, estimate_mi, load_pair
from .flags import DEVICE_HELP, add_heldout, count, device_arg, flag_names, positive, size

__all__ = ["add_estimate"]

DEFAULT_METHODS = ("smile:5",)


def add_estimate(sub) -> None:
    p = sub.add_parser(
        "estimate",
        help="estimate the MI between two arrays of your own file, with an interval and warnings",
        description=__doc__.partition("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "DATA / --x / --y: data.npz --x KEY --y KEY (default arrays x and y) | DIR of .npy files --x NAME --y NAME"
            " | x.npy --y y.npy | data.npy --x 0:10 --y 10: (columns) | data.csv --x 0:10 --y label (column ranges,"
            " indices or header names) | data.pt --x KEY --y KEY (a dict of tensors, weights_only).\n"
            "Example: selfconsistency estimate pairs.npz --x features --y labels --method smile:5 cpc --seeds 3"
        ),
    )
    p.add_argument("data", metavar="DATA", help="a .npz, .npy, .csv/.tsv or .pt file, or a directory of .npy files")
    p.add_argument(
        "--x",
        default=None,
        metavar="KEY",
        help="the x array: key, file or columns (see below; default: x, or the first array)",
    )
    p.add_argument(
        "--y",
        default=None,
        metavar="KEY",
        help="the y array: key, file or columns (see below; default: y, or the second array)",
    )
    p.add_argument(
        "--method",
        nargs="+",
        default=None,
        metavar="NAME",
        help="estimators by name, e.g. smile:5 cpc mine gm-flow, or package.module:factory (default: smile:5)",
    )
    p.add_argument(
        "--critic",
        default=None,
        help="critic of discriminative names: joint, separable or conv (default: joint on vectors, conv on images)",
    )
    p.add_argument("--seeds", type=count, default=3, help="seeds per estimator (default: 3)")
    p.add_argument(
        "--out", type=Path, default=Path("estimate"), help="folder for estimate.json/.md (default: ./estimate)"
    )
    add_heldout(p)
    p.add_argument("--batch-size", type=size, default=None, help="(default: the estimator's paper setting)")
    p.add_argument("--lr", type=positive, default=None, help="(default: the estimator's paper setting)")
    p.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="drop rows with NaN/inf instead of refusing them (default: refuse)",
    )
    header = p.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="CSV: the first row names the columns (default: detected)",
    )
    header.add_argument(
        "--no-header", dest="header", action="store_false", help="CSV: the first row is data (default: detected)"
    )
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars (default: shown)")
    p.set_defaults(func=run_estimate)


def run_estimate(args) -> int:
    pair = load_pair(args.data, args.x, args.y, drop_nonfinite=args.drop_nonfinite, header=args.header)
    # columns that never vary are left out, with a note naming them as the file does
    x, y, notes = drop_constant_columns(pair.x, pair.y, x_columns=pair.x_columns, y_columns=pair.y_columns)
    methods = list(dict.fromkeys(canonical_name(m) for m in (args.method or DEFAULT_METHODS)))
    check_writable(args.out, create=False)  # an unusable --out is found before hours of training
    print("\n".join([pair.summary(), *(f"note: {n}" for n in notes)]))
    with OutputLock(args.out):  # one command at a time writes to --out, as for bench and check
        res: Comparison = estimate_mi(
            PairData(x, y, pair.dropped),  # checked by load_pair: not checked again
            method=methods,
            seeds=args.seeds,
            critic=args.critic,
            batch_size=args.batch_size,
            lr=args.lr,
            max_steps=args.max_steps,
            patience=args.patience,
            device=args.device,
            progress=not args.no_progress,
        )
        print(flag_names(str(res)))
        if res.results:
            record = {"data": {**pair.to_dict(), "notes": [*pair.notes, *notes]}, **res.to_dict()}
            md = f"# MI of {pair.source}\n\n" + "\n".join([pair.summary(), *notes]) + f"\n\n{flag_names(str(res))}\n"
            try:
                write_outputs(args.out, {"estimate.json": record, "estimate.md": md}, log=print)
            except NotWritten as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
    if res.failures:
        names = ", ".join(f.name for f in res.failures)
        print(
            f"error: {len(res.failures)} estimator(s) failed: {names}" + ("" if res.results else " (nothing written)"),
            file=sys.stderr,
        )
        return 1
    return 0
