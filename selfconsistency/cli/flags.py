"""What the subcommands of ``selfconsistency`` share: argument types (a bad value exits 2 naming the flag),
the execution flags (``--jobs``, ``--ray``, ``--threads``) and how failures and unwritten files are reported."""

from __future__ import annotations

import argparse
import math
import re
import sys

from micore.device import resolve_device
from micore.finite import HeldoutConfig

from ..execution import RAY_INSTALL, NotWritten, RunsFailed, make_executor
from ..registry import describe


# ---------------------------------------------------------------- argument types: bad values exit 2 naming the flag
def int_at_least(minimum: int):
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


def number(positive: bool):
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


count, size, row = int_at_least(1), int_at_least(2), int_at_least(0)
positive, nonnegative = number(positive=True), number(positive=False)


def device_arg(text: str) -> str:
    """A torch device that exists here: a CUDA device without a GPU is refused before anything runs."""
    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("device: ")) from None
    return text


DEVICE_HELP = "torch device of every run: cpu, cuda, cuda:1 (default: cuda when available, else cpu)"


def add_command(sub, name: str, help: str, description: str, estimators: str, *, metavar: str = "NAME"):
    """A subcommand taking estimator names (``selfconsistency bench NAME ...``), with the registry's names listed
    after its help."""
    p = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=names_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("estimators", nargs="*", metavar=metavar, help=estimators)
    return p


def add_heldout(p, scope: str = "") -> None:
    """The held-out protocol's flags (``--max-steps``, ``--patience``), defaults read from
    :class:`micore.finite.HeldoutConfig`; ``scope`` prefixes their help (``"finite: "``)."""
    cfg = HeldoutConfig()
    p.add_argument(
        "--max-steps", type=count, default=cfg.max_steps, help=f"{scope}step cap of each run (default: {cfg.max_steps})"
    )
    p.add_argument(
        "--patience",
        type=count,
        default=cfg.patience,
        help=f"{scope}held-out evaluations (every {cfg.eval_every} steps) without gain before stopping "
        f"(default: {cfg.patience})",
    )


def add_execution(p) -> None:
    """The flags both commands share: where the runs execute."""
    g = p.add_argument_group("execution (one run after another in this process unless told otherwise)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=count,
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
        type=count,
        default=None,
        metavar="N",
        help="torch threads per run (default: in-process, the cores left idle by other processes when each "
        "training starts; CPUs/N with --jobs N; 1 with --ray)",
    )
    g.add_argument("--no-progress", action="store_true", help="hide the progress bars (default: shown)")


def run_executor(args):
    return make_executor(jobs=args.jobs, ray=args.ray, threads=args.threads)


# the Python keywords a message may name, as the command's flags (issue 20: a CLI user reads flags)
_FLAGS = {
    "drop_nonfinite=True": "--drop-nonfinite",
    "drop_nonfinite": "--drop-nonfinite",
    "batch_size": "--batch-size",
    "max_steps": "--max-steps",
    "max_members": "--max-members",
}
_KEYWORDS = re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in _FLAGS) + r")(?![\w])")


def flag_names(text: str) -> str:
    """``text`` with the library's keyword names (``batch_size``, ``drop_nonfinite=True``, ...) as the flags a
    command-line user types (``--batch-size``, ``--drop-nonfinite``)."""
    return _KEYWORDS.sub(lambda m: _FLAGS[m.group(1)], text)


def report_failed(err: RunsFailed) -> int:
    print(f"error: {flag_names(str(err))}", file=sys.stderr)
    return 1


def report_not_written(err: NotWritten, out, failed: RunsFailed | None) -> int:
    """The table was printed; the files were not (all or some): say which, and how to get them. Exit 1."""
    if err.written:
        print("wrote " + ", ".join(str(p) for p in err.written))
    print(
        f"error: {err}. The table above is complete but these files were not saved: make {out} writable "
        "(or copy it to a writable place and give that as --out) and run the same command again.",
        file=sys.stderr,
    )
    return 1 if failed is None else report_failed(failed)


def log_line(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line)


def names_epilog() -> str:
    return "estimators (NAME[:PARAM]; see selfconsistency.registry):\n" + describe()
