"""The documentation's code runs as written: the README's examples and the guide from zero to a result.

* the README's estimator, copied verbatim into a module, gives a filled ``bench --quick`` table, a ``check``
  verdict on digits and an ``estimate`` result through the console script (issue 20);
* every block of ``docs/your-estimator.md`` runs in a fresh folder, in order: a python block starting with
  ``# file: NAME`` is that file, the other python blocks run as scripts, each line of a bash block is a
  command (the console script, as a user types it); each must exit 0;
* the README stays short, and its sandwich example holds (lower <= true MI <= upper).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
GUIDE = ROOT / "docs" / "your-estimator.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _command(line: str) -> list[str]:
    """A shell line as the user would type it, with the console script (or ``python -m`` where not on PATH)."""
    argv = shlex.split(line)
    if argv[0] == "selfconsistency" and shutil.which("selfconsistency") is None:
        argv = [sys.executable, "-m", "selfconsistency", *argv[1:]]
    return argv


def _run(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def _row(table_md: str, name: str, block: str) -> list[str]:
    """The cells of ``name``'s row in the ``block`` (Bias, Var, Mse) of a Table-2 layout."""
    rows = [line.split("|")[1:-1] for line in table_md.splitlines() if line.startswith("|")]
    current = None
    for cells in rows:
        cells = [c.strip() for c in cells]
        current = cells[0] or current
        if current == block and cells[1] == name:
            return cells[2:]
    raise AssertionError(f"no {block} row for {name} in:\n{table_md}")


def test_the_readme_is_short_and_names_both_test_commands():
    assert len(README.splitlines()) < 200
    assert "python -m pytest -q   " in README and "python -m pytest -q -m slow" in README


def test_the_readme_sandwich_example_brackets_the_true_mi():
    code = next(body for lang, body in BLOCK.findall(README) if lang == "python" and "sandwich" in body)
    scope: dict = {"__name__": "__main__"}
    exec(code, scope)  # noqa: S102 - the README's own example
    assert scope["lower"].value <= scope["task"].mi <= scope["upper"].value


@pytest.mark.slow
def test_the_readme_estimator_works_in_every_command(tmp_path):
    code = next(body for lang, body in BLOCK.findall(README) if "# your own estimator" in body)
    (tmp_path / "mymodule.py").write_text(code)  # verbatim
    out = _run(_command("selfconsistency bench mymodule:QuadraticNWJ --quick --out b --no-progress"), tmp_path)
    bias = _row((tmp_path / "b" / "table.md").read_text(), "mymodule:QuadraticNWJ", "Bias")
    assert len(bias) == 3 and "—" not in bias, out  # three MI levels, every cell a number
    check = "selfconsistency check mymodule:QuadraticNWJ --settings baseline --rows 0 8 --epochs 1"
    _run(_command(check + " --out c --no-progress"), tmp_path)
    verdicts = (tmp_path / "c" / "verdicts_digits.md").read_text()
    assert "| mymodule:QuadraticNWJ | baseline | independence (t=0) |" in verdicts
    data = "import numpy as n; r=n.random.default_rng(0); x=r.normal(size=(2000,3)); n.savez('p.npz', x=x, y=x+r.normal(size=(2000,3)))"  # noqa: E501
    _run([sys.executable, "-c", data], tmp_path)
    estimate = "selfconsistency estimate p.npz --method mymodule:QuadraticNWJ --seeds 1 --max-steps 500"
    _run(_command(estimate + " --out e --no-progress"), tmp_path)
    result = json.loads((tmp_path / "e" / "estimate.json").read_text())["results"][0]
    # a lower bound of the true 3 x 0.5 log 2 = 1.04 nats, after 500 steps at the default lr: positive, not above
    assert result["name"] == "mymodule:QuadraticNWJ" and 0 < result["value"] < 1.04 + 0.2, result


@pytest.mark.slow
def test_the_guide_runs_as_written(tmp_path):
    blocks = BLOCK.findall(GUIDE.read_text())
    assert [lang for lang, _ in blocks] == ["python", "python", "bash", "bash", "python", "bash"]
    for lang, body in blocks:
        if lang == "python" and body.startswith("# file: "):
            name, code = body.split("\n", 1)
            (tmp_path / name.removeprefix("# file: ").strip()).write_text(code)
        elif lang == "python":
            _run([sys.executable, "-c", body], tmp_path)
        else:
            for line in body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    _run(_command(line), tmp_path)
    table = (tmp_path / "out" / "mine-bench" / "table.md").read_text()
    for name in ("mymodule:QuadraticNWJ", "cpc"):
        assert "—" not in _row(table, name, "Bias"), table
    assert (
        "| mymodule:QuadraticNWJ | baseline | independence (t=0) |"
        in (tmp_path / "out" / "mine-check" / "verdicts_digits.md").read_text()
    )
    results = json.loads((tmp_path / "out" / "mine-estimate" / "estimate.json").read_text())["results"]
    assert [r["name"] for r in results] == ["mymodule:QuadraticNWJ", "smile:5"]
    assert all(0.5 < r["value"] < 1.2 for r in results), results  # the true MI is 1.02 nats
