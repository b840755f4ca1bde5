"""``selfconsistency bench``: the ground-truth benchmark (Song & Ermon's Table 2 and Figure 1, or the
finite-sample protocol on any task with known MI), through :mod:`selfconsistency.groundtruth`."""

from __future__ import annotations

import functools

from micore.tasks import task_names
from micore.training.precision import PRECISIONS

from .. import groundtruth as bench
from ..execution import NotWritten, RunsFailed, check_writable
from ..groundtruth.config import DEFAULT_ESTIMATORS, FINITE_ESTIMATORS, BenchConfig
from .flags import (
    DEVICE_HELP,
    add_command,
    add_execution,
    add_heldout,
    count,
    device_arg,
    log_line,
    positive,
    report_failed,
    report_not_written,
    run_executor,
    size,
)

__all__ = ["add_bench"]

_PAPER = BenchConfig()  # the seed's protocol: the defaults the flags show


_HELP = "ground-truth benchmark on the Gaussian/Cubic staircase (Table 2, Figure 1)"
_DESCRIPTION = (
    "Trains estimators on the MI staircase and reports bias/variance/MSE per level:\none table per protocol, the "
    "paper's numbers only beside runs of the paper's protocol."
)
_ESTIMATORS = (
    "estimator names; two spellings of one configuration (smile, smile:5.0) run once (default: "
    f"{' '.join(bench.QUICK['estimators'])} with --quick, else {' '.join(DEFAULT_ESTIMATORS)}; finite: "
    f"{' '.join(FINITE_ESTIMATORS)})"
)


def add_bench(sub) -> None:
    p = add_command(sub, "bench", _HELP, _DESCRIPTION, _ESTIMATORS, metavar="estimators")
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
    p.add_argument("--n", type=size, default=5000, help="finite: samples per run (default: 5000)")
    add_heldout(p, scope="finite: ")
    p.add_argument(
        "--critic",
        choices=("joint", "separable"),
        default="joint",
        help="critic of the discriminative estimators; the paper's Table 2 is joint (default: joint)",
    )
    p.add_argument("--seeds", type=count, default=1, metavar="N", help="number of seeds, 0..N-1 (default: 1)")
    quick_levels = " ".join(f"{m:g}" for m in bench.QUICK["levels"])
    p.add_argument(
        "--levels",
        type=positive,
        nargs="+",
        default=None,
        metavar="MI",
        help=f"MI levels in nats, each > 0 (default: {' '.join(f'{m:g}' for m in _PAPER.levels)}; with --quick "
        f"{quick_levels})",
    )
    q = bench.QUICK["steps_per_level"]
    p.add_argument(
        "--steps-per-level",
        type=count,
        default=None,
        metavar="N",
        help=f"training steps per MI level (default: {_PAPER.steps_per_level}; with --quick {q})",
    )
    p.add_argument(
        "--batch-size",
        type=size,
        default=None,
        metavar="N",
        help=f"batch size, >= 2 (default: {_PAPER.batch_size}; finite: each estimator's paper setting)",
    )
    p.add_argument(
        "--lr", type=positive, default=None, help=f"Adam learning rate (default: {_PAPER.lr:g}; finite: the paper's)"
    )
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
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
        type=count,
        default=None,
        metavar="K",
        help="staircase: at most K runs in one ensemble (one unit of work for --jobs/--ray) (default: as many "
        "as fit half the free memory of the device; on the CPU with --jobs N or a local --ray of N slots, also "
        "at most runs/N, so that every worker has work)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="staircase: the step's arithmetic: fp32 (the paper's), tf32 (CUDA matrix units) or bf16 (autocast "
        "forward pass, float32 weights and Adam); runs of another precision are stored and tabulated apart "
        "(default: fp32)",
    )
    add_execution(p)
    p.set_defaults(func=_run_bench)


def _train_then_report(args, train, report) -> int:
    """Trains the runs missing from --out (unless --report-only), then tabulates every run in --out. Exit 0; 1 when
    runs failed (what finished is tabulated first) or files could not be written."""
    failed = None
    if not args.report_only:
        check_writable(args.out, create=False)  # before starting workers or Ray
        try:
            train(
                seeds=range(args.seeds),
                out=args.out,
                device=args.device,
                progress=not args.no_progress,
                log=log_line,
                executor=run_executor(args),
            )
        except RunsFailed as err:
            failed = err  # tabulate what finished, then say what failed
    try:
        report(args.out, log=print)
    except NotWritten as err:
        return report_not_written(err, args.out, failed)
    except ValueError:
        if failed is None:
            raise  # nothing failed and nothing to tabulate: say why
        return report_failed(failed)
    return 0 if failed is None else report_failed(failed)


def _finite_tasks(args) -> list[str]:
    tasks = list(args.task or [])
    if args.suite is not None:
        tasks += task_names(args.suite)
    if not tasks:
        raise ValueError("--protocol finite needs --task NAME ... or --suite NAME (e.g. --suite beyond-normal)")
    return tasks


def _run_finite(args) -> int:
    train = None
    if not args.report_only:
        cfg = bench.FiniteConfig(
            n=args.n,
            critic=args.critic,
            max_steps=args.max_steps,
            patience=args.patience,
            batch_size=args.batch_size,
            lr=args.lr,
        )
        names = args.estimators or list(FINITE_ESTIMATORS)
        train = functools.partial(bench.run_finite_benchmark, _finite_tasks(args), names, cfg)
    return _train_then_report(args, train, bench.finite_report)


def _run_bench(args) -> int:
    if args.protocol == "finite":
        if args.ensemble is not None or args.max_members is not None or args.precision is not None:
            raise ValueError(
                "--ensemble, --max-members and --precision are for the staircase: the finite protocol's early "
                "stopping trains its runs one by one, in fp32"
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
    args.batch_size = _PAPER.batch_size if args.batch_size is None else args.batch_size
    args.lr = _PAPER.lr if args.lr is None else args.lr
    if args.report_only:
        return _train_then_report(args, None, bench.report)
    names = args.estimators or list(bench.QUICK["estimators"] if args.quick else DEFAULT_ESTIMATORS)
    levels = args.levels if args.levels is not None else (bench.QUICK["levels"] if args.quick else _PAPER.levels)
    spl = args.steps_per_level
    if spl is None:
        spl = bench.QUICK["steps_per_level"] if args.quick else _PAPER.steps_per_level
    tasks = ("gaussian", "cubic") if args.task == "both" else (args.task,)
    cfgs = [
        BenchConfig(
            task=task,
            critic=args.critic,
            levels=tuple(levels),
            steps_per_level=spl,
            batch_size=args.batch_size,
            lr=args.lr,
            precision=args.precision or "fp32",
        )
        for task in tasks
    ]
    ensemble = dict(ensemble=args.ensemble or "auto", max_members=args.max_members)
    return _train_then_report(args, functools.partial(bench.run_benchmark, names, cfgs, **ensemble), bench.report)
