"""The ``selfconsistency`` command: ``bench`` (ground-truth benchmark) and ``check`` (self-consistency)."""
from __future__ import annotations

import argparse
import logging
import sys

from . import bench

log = logging.getLogger("selfconsistency")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="ground-truth benchmark on the Gaussian/Cubic staircase (Table 2, Figure 1)",
                       description="Trains estimators on the MI staircase and reports bias/variance/MSE per level.")
    p.add_argument("estimators", nargs="*", help="estimator names, e.g. cpc nwj smile:5 smile:inf mine remine gm-flow "
                   "(default: the quick set with --quick, else cpc nwj smile:1 smile:5 smile:inf)")
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
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    if args.report_only:
        bench.report(args.out, log=print)
        return 0
    names = args.estimators or (list(bench.QUICK["estimators"]) if args.quick
                                else ["cpc", "nwj", "smile:1", "smile:5", "smile:inf"])
    levels = args.levels or (bench.QUICK["levels"] if args.quick else (2.0, 4.0, 6.0, 8.0, 10.0))
    spl = args.steps_per_level or (bench.QUICK["steps_per_level"] if args.quick else 4000)
    tasks = ("gaussian", "cubic") if args.task == "both" else (args.task,)
    for task in tasks:
        cfg = bench.BenchConfig(task=task, critic=args.critic, levels=tuple(levels), steps_per_level=spl,
                                batch_size=args.batch_size, lr=args.lr)
        bench.run_benchmark(names, cfg, seeds=range(args.seeds), out=args.out, device=args.device,
                            progress=not args.no_progress, log=print)
    bench.report(args.out, log=print)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfconsistency", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        parser.exit(2, f"selfconsistency {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        print("interrupted: finished results are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
