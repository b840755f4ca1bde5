"""The ``selfconsistency`` command: ``bench`` (ground-truth benchmark) and ``check`` (self-consistency)."""

from __future__ import annotations

import argparse
import logging
import sys

from . import groundtruth as bench
from .executors import RAY_INSTALL, make_executor
from .images.data import DATASETS
from .images.report import Report, Tolerances
from .images.settings import ALIASES, SETTINGS
from .runner import RunsFailed

log = logging.getLogger("selfconsistency")


def _add_execution(p) -> None:
    """The flags both commands share: where the runs execute."""
    g = p.add_argument_group("execution (one run after another in this process unless told otherwise)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="run N local worker processes at once, each with a fair share of the CPU threads",
    )
    where.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run as Ray tasks: on a local Ray started for the command (no ADDRESS), or on a "
        "cluster ('auto' after 'ray start', or ray://HOST:10001). Needs: " + RAY_INSTALL,
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads per run (default: torch's own in-process, CPUs/N with --jobs N, 1 with --ray)",
    )


def _executor(args):
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    return make_executor(jobs=args.jobs, ray=args.ray, threads=args.threads)


def _failed(err: RunsFailed) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


def _names_epilog() -> str:
    from .registry import describe

    return "estimators (NAME[:PARAM]; see selfconsistency.registry):\n" + describe()


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="ground-truth benchmark on the Gaussian/Cubic staircase (Table 2, Figure 1)",
        description="Trains estimators on the MI staircase and reports bias/variance/MSE per level.",
        epilog=_names_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "estimators",
        nargs="*",
        help="estimator names, e.g. cpc nwj smile:5 smile:inf mine remine gm-flow "
        "(default: the quick set with --quick, else cpc nwj smile:1 smile:5 smile:inf)",
    )
    p.add_argument("--task", choices=("gaussian", "cubic", "both"), default="gaussian")
    p.add_argument("--critic", choices=("joint", "separable"), default="joint")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1); default 1")
    p.add_argument("--levels", type=float, nargs="+", default=None, help="MI levels in nats (default 2 4 6 8 10)")
    p.add_argument("--steps-per-level", type=int, default=None, help="training steps per MI level (default 4000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--out", default="out/bench", help="output directory (default out/bench)")
    p.add_argument("--quick", action="store_true", help="small embedded default: about a minute on 2 CPU cores")
    p.add_argument("--report-only", action="store_true", help="only rebuild the table and figure from finished runs")
    p.add_argument("--no-progress", action="store_true")
    _add_execution(p)
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    if args.report_only:
        bench.report(args.out, log=print)
        return 0
    names = args.estimators or (
        list(bench.QUICK["estimators"]) if args.quick else ["cpc", "nwj", "smile:1", "smile:5", "smile:inf"]
    )
    levels = args.levels or (bench.QUICK["levels"] if args.quick else (2.0, 4.0, 6.0, 8.0, 10.0))
    spl = args.steps_per_level or (bench.QUICK["steps_per_level"] if args.quick else 4000)
    tasks = ("gaussian", "cubic") if args.task == "both" else (args.task,)
    cfgs = [
        bench.BenchConfig(
            task=task,
            critic=args.critic,
            levels=tuple(levels),
            steps_per_level=spl,
            batch_size=args.batch_size,
            lr=args.lr,
        )
        for task in tasks
    ]
    executor = _executor(args)
    failed = None
    try:
        bench.run_benchmark(
            names,
            cfgs,
            seeds=range(args.seeds),
            out=args.out,
            device=args.device,
            progress=not args.no_progress,
            log=_log,
            executor=executor,
        )
    except RunsFailed as err:
        failed = err  # tabulate what finished, then say what failed
    try:
        bench.report(args.out, log=print)
    except ValueError:
        if failed is None:
            raise  # nothing failed and nothing to tabulate: say why
    return 0 if failed is None else _failed(failed)


def _log(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line)


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="self-consistency tests on images (Song & Ermon Sec. 6.2, Figures 4-6, Table 3)",
        description="Trains each estimator on every cell (setting, rows t, seed) and judges "
        "independence, "
        "monotonicity, data processing and additivity on held-out images. Resumable: finished cells "
        "in --out are skipped.",
        epilog=_names_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "estimators",
        nargs="*",
        metavar="ESTIMATOR",
        help="built-in name (cpc, mine, nwj, smile:5, smile:inf, remine, gm-vae, gm-flow, ...) or "
        "package.module:factory (a callable (x_shape, y_shape) -> MIEstimator)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's bundled 8x8 digits, offline (default); mnist, cifar10: torchvision",
    )
    p.add_argument(
        "--data-root", default=None, help="folder with the torchvision files (MNIST/raw, cifar-10-batches-py)"
    )
    p.add_argument("--download", action="store_true", help="let torchvision download MNIST/CIFAR-10 (needs a network)")
    p.add_argument(
        "--settings",
        nargs="+",
        default=["masking"],
        choices=SETTINGS + tuple(ALIASES),
        metavar="SETTING",
        help="default masking (= baseline data-processing additivity); transforms = scaling rotation translation; all",
    )
    p.add_argument("--rows", type=int, nargs="+", default=None, help="the grid of rows t (default: every H//7 rows)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1); default 1")
    p.add_argument(
        "--epochs", type=int, default=None, help="training epochs per cell (default: per dataset and family)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="default 64")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam lr (default: 1e-4 on MNIST/CIFAR-10, the estimator's own on digits)",
    )
    p.add_argument("--dp-offset", type=int, default=3, help="t1 - t2 in the data-processing setting (default 3)")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--out", default="out/selfconsistency", help="output directory (default out/selfconsistency)")
    defaults = Tolerances()
    for field in ("independence", "monotonicity", "upper", "data_processing", "additivity", "min_mi"):
        p.add_argument(
            f"--tol-{field.replace('_', '-')}",
            type=float,
            default=getattr(defaults, field),
            dest=f"tol_{field}",
            help=f"default {getattr(defaults, field):g}",
        )
    p.add_argument("--report-only", action="store_true", help="only rebuild the tables and figures from finished cells")
    p.add_argument("--no-progress", action="store_true")
    _add_execution(p)
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from tqdm.auto import tqdm

    tol = Tolerances(
        **{
            f: getattr(args, f"tol_{f}")
            for f in ("independence", "monotonicity", "upper", "data_processing", "additivity", "min_mi")
        }
    )
    failed = None
    if not args.report_only:
        from .images.suite import plan
        from .runner import execute

        if not args.estimators:
            raise ValueError("name at least one ESTIMATOR (or pass --report-only)")
        executor = _executor(args)
        plans = [
            plan(
                name,
                dataset=args.dataset,
                settings=args.settings,
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
            for name in args.estimators
        ]
        runs = [r for p in plans for r in p.runs]
        try:
            execute(
                runs, args.out, executor, progress=not args.no_progress, log=tqdm.write, desc=f"check on {args.dataset}"
            )
        except RunsFailed as err:
            failed = err
    # the verdicts of the settings asked for, for every estimator in --out (all settings with --report-only)
    try:
        report = Report.load(args.out, args.dataset, tol, settings=None if args.report_only else args.settings)
    except ValueError:
        if failed is None:
            raise
        return _failed(failed)  # every cell failed: nothing to judge
    md_path = report.save_markdown(f"{args.out}/verdicts_{args.dataset}.md")
    json_path = report.to_json(f"{args.out}/report_{args.dataset}.json")
    pngs = report.plot(args.out)
    print(report.to_markdown())
    print(f"wrote {md_path}, {json_path}, " + ", ".join(str(p) for p in pngs))
    return 0 if failed is None else _failed(failed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfconsistency", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub)
    _add_check(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad arguments, missing dataset files
        parser.exit(2, f"selfconsistency {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        print("interrupted: finished results are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
