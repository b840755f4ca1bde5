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
import sys
from importlib.metadata import PackageNotFoundError, version

from .bench import add_bench
from .check import add_check
from .estimate import add_estimate
from .flags import flag_names

__all__ = ["main", "build_parser"]


def _package_version() -> str:
    try:
        return version("micore-suite")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``selfconsistency``: one subcommand per module of this package (``bench``, ``check``,
    ``estimate``), their shared flags in :mod:`.flags`."""
    intro, _, status = __doc__.partition("\n\n")[2].partition("\n\n")
    parser = argparse.ArgumentParser(prog="selfconsistency", description=intro, epilog=status)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench(sub)
    add_check(sub)
    add_estimate(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad arguments, missing dataset files
        parser.exit(2, f"selfconsistency {args.command}: error: {flag_names(str(err))}\n")
    except KeyboardInterrupt:
        print("interrupted: finished results are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
