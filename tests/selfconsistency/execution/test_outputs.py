"""The output directory and what is read back from it, the tables, and the command line (issue 13).

* an output directory that cannot be written fails before the first run; ``--report-only`` still
  prints what it cannot write;
* a truncated, emptied, foreign or incomplete file among the results is named, skipped by the reports
  and redone by the runs, never a traceback nor silently used;
* runs of different protocols get one table each, the paper's numbers only beside its own protocol;
* every count is checked by the parser, every option documents its default.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path

import pytest
import runner_fixtures as rf
import torch

from selfconsistency.cli import build_parser, main
from selfconsistency.execution import Run, execute
from selfconsistency.execution.storage import BadRecord, read_json, save_figure_atomic, write_json_atomic
from selfconsistency.groundtruth import staircase, summarize, table_markdown
from selfconsistency.images.settings import default_rows

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--levels", "2", "--steps-per-level", "3", "--device", "cpu", "--no-progress"]
CELLS = ["--settings", "baseline", "--rows", "0", "8", "--epochs", "1", "--device", "cpu", "--no-progress"]
PIXEL = "selfconsistency_fixtures:pixel"


def bench(out, *args) -> int:
    return main(["bench", *args, *TINY, "--out", str(out)])


def exit_code(argv) -> int:
    """The exit status of ``main(argv)``, whether it returns it or exits with it."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: no file can be created in ``folder`` or below, even by root (who ignores
    permission bits): the atomic writers' temporary files are refused there, as on a read-only mount."""
    folders = []
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and any(Path(dir).resolve().is_relative_to(f) for f in folders):
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return lambda folder: folders.append(Path(folder).resolve())


# ---------------------------------------------------------------- 3. the output directory
def test_an_output_directory_that_cannot_be_written_fails_before_the_first_run(
    tmp_path, read_only, monkeypatch, capsys
):
    trained = []
    monkeypatch.setattr(staircase, "run_staircase", lambda *a, **k: trained.append(a) or {})
    out = tmp_path / "old"
    out.mkdir()
    (out / ".lock").write_text("")  # left by an earlier command: it still opens in a read-only folder
    read_only(out)
    assert exit_code(["bench", "cpc", *TINY, "--out", str(out)]) == 2
    assert not trained and "cannot create or write the output directory" in capsys.readouterr().err
    assert exit_code(["check", PIXEL, *CELLS, "--out", str(out)]) == 2
    assert "cannot create or write" in capsys.readouterr().err and not (out / "cells").exists()
    # a folder the records go to, inside a writable --out
    ok = tmp_path / "ok"
    (ok / "runs").mkdir(parents=True)
    read_only(ok / "runs")
    assert exit_code(["bench", "cpc", *TINY, "--out", str(ok)]) == 2
    assert not trained and str(ok / "runs") in capsys.readouterr().err
    # a directory that cannot be created (a file is in the way)
    (tmp_path / "file").write_text("")
    assert exit_code(["bench", "cpc", *TINY, "--out", str(tmp_path / "file" / "out")]) == 2
    assert not trained


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_directory_by_its_permissions(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    (out / ".lock").write_text("")
    out.chmod(0o555)
    try:
        assert exit_code(["bench", "cpc", *TINY, "--out", str(out)]) == 2
        assert "cannot create or write" in capsys.readouterr().err and not (out / "runs").exists()
    finally:
        out.chmod(0o755)


def test_report_only_prints_the_table_and_verdicts_it_cannot_write(tmp_path, read_only, capsys):
    assert bench(tmp_path / "b", "cpc") == 0
    assert main(["check", PIXEL, *CELLS, "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    read_only(tmp_path)
    assert main(["bench", "--report-only", "--out", str(tmp_path / "b")]) == 1
    printed = capsys.readouterr()
    assert "| Bias | cpc |" in printed.out
    for name in ("table.md", "table.json", "figure1.png"):
        assert str(tmp_path / "b" / name) in printed.err
    assert "Traceback" not in printed.err and "make " in printed.err
    assert main(["check", "--report-only", "--out", str(tmp_path / "c")]) == 1
    printed = capsys.readouterr()
    assert f"| {PIXEL} | baseline | independence (t=0)" in printed.out
    assert "verdicts_digits.md" in printed.err and "report_digits.json" in printed.err


def test_read_json_names_an_empty_or_truncated_file(tmp_path):
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "cut.json").write_text('{"estimator": "cp')
    with pytest.raises(BadRecord, match=r"empty\.json: empty file"):
        read_json(tmp_path / "empty.json")
    with pytest.raises(BadRecord, match=r"cut\.json: not valid JSON"):
        read_json(tmp_path / "cut.json")


def test_the_runner_names_a_bad_record_and_redoes_the_run(tmp_path, caplog):
    def runs():
        check = lambda rec: None if "square" in rec else "field 'square' is missing"  # noqa: E731
        return [Run(key=f"s{i}", relpath=f"runs/s{i}.json", fn=rf.square, args=(i,), check=check) for i in range(3)]

    execute(runs(), tmp_path, progress=False)
    (tmp_path / "runs" / "s0.json").write_text('{"i": 0, "squ')  # truncated
    (tmp_path / "runs" / "s1.json").write_text('{"i": 1}')  # valid JSON, incomplete
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        outcome = execute(runs(), tmp_path, progress=False)
    assert outcome.done == ["s0", "s1"] and outcome.skipped == ["s2"]
    assert "s0.json: not valid JSON" in caplog.text and "s1.json: field 'square' is missing" in caplog.text
    assert "redone" in caplog.text
    assert json.loads((tmp_path / "runs" / "s1.json").read_text())["square"] == 1


def test_bad_run_files_are_named_skipped_by_the_table_and_redone_by_the_runs(tmp_path, caplog, capsys):
    assert bench(tmp_path, "cpc", "nwj", "smile:5") == 0
    runs = tmp_path / "runs"
    cpc = runs / "gaussian_joint_cpc_seed0.json"
    nwj = runs / "gaussian_joint_nwj_seed0.json"
    cpc.write_text(cpc.read_text()[:50])  # truncated
    record = json.loads(nwj.read_text())
    record["estimates"] = record["estimates"][:1]  # valid JSON, but not every step
    nwj.write_text(json.dumps(record))
    (runs / "empty.json").write_text("")
    (runs / "foreign.json").write_text('{"hello": "world"}')
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert main(["bench", "--report-only", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| Bias | smile:5 |" in table and "| cpc |" not in table and "| nwj |" not in table
    for path in (cpc, nwj, runs / "empty.json", runs / "foreign.json"):
        assert f"skipped {path}" in caplog.text
    assert "1 per-step estimates, the protocol has 3 steps" in caplog.text and "delete it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert bench(tmp_path, "cpc", "nwj", "smile:5") == 0  # the bad records are redone, the good one kept
    assert f"{cpc}: not valid JSON" in caplog.text and "redone" in caplog.text
    assert len(json.loads(nwj.read_text())["estimates"]) == 3
    assert "| Bias | cpc |" in capsys.readouterr().out


def test_bad_cell_files_are_named_skipped_by_the_verdicts_and_redone_by_check(tmp_path, caplog, capsys):
    argv = ["check", PIXEL, *CELLS, "--out", str(tmp_path)]
    assert main(argv) == 0
    (t0,) = tmp_path.glob("cells/digits/*/rows_t0_seed0.json")
    (t8,) = tmp_path.glob("cells/digits/*/rows_t8_seed0.json")
    t0.write_text(t0.read_text()[:40])
    cell = json.loads(t8.read_text())
    del cell["estimate"]
    t8.write_text(json.dumps(cell))
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert exit_code(["check", "--report-only", "--out", str(tmp_path)]) == 2  # no whole cell left
    assert f"skipped {t0}: not valid JSON" in caplog.text
    assert f"skipped {t8}: field 'estimate' is missing" in caplog.text
    assert "no finished cells" in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="selfconsistency"):
        assert main(argv) == 0
    assert str(t0) in caplog.text and str(t8) in caplog.text and "redone" in caplog.text
    assert "estimate" in json.loads(t8.read_text())
    assert f"| {PIXEL} | baseline | independence (t=0) | 0 | 0.000 |" in capsys.readouterr().out


def test_two_threads_saving_one_figure_do_not_collide(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path, errors = tmp_path / "figure.png", []
    both_drawn = threading.Barrier(2, timeout=20)
    real_replace = os.replace

    def replace(src, dst, *args, **kw):
        if Path(dst) == path:
            both_drawn.wait()  # both figures are written before either moves into place: the worst case
        return real_replace(src, dst, *args, **kw)

    monkeypatch.setattr(os, "replace", replace)

    def save(k):
        fig = Figure(figsize=(2, 2))
        fig.add_subplot().plot([0, k])
        try:
            save_figure_atomic(fig, path, dpi=30)
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=save, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_result_files_are_readable_by_group_and_others(tmp_path):
    from matplotlib.figure import Figure

    mask = os.umask(0o077)  # the strictest usual umask: results must still be shared
    try:
        record = write_json_atomic(tmp_path / "runs" / "r.json", {"a": 1})
        figure = save_figure_atomic(Figure(figsize=(1, 1)), tmp_path / "f.png", dpi=20)
    finally:
        os.umask(mask)
    for path in (record, figure):
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path


# ---------------------------------------------------------------- 4. tables that must not mislead
def fake_run(name, levels, steps, value=2.5, **protocol) -> dict:
    config = dict(task="gaussian", critic="joint", levels=levels, steps_per_level=steps, batch_size=64, lr=5e-4, dim=20)
    config.update(protocol)
    estimates = [value] * (len(levels) * steps)
    return dict(estimator=name, seed=0, config=config, diverged_at=None, estimates=estimates, seconds=1.0)


def test_each_protocol_gets_its_own_table_and_runs_of_two_protocols_are_never_pooled(tmp_path, capsys):
    assert bench(tmp_path, "cpc") == 0
    other = ["--levels", "2", "4", "--steps-per-level", "2", "--device", "cpu", "--no-progress"]
    assert main(["bench", "nwj", *other, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("[done] gaussian joint nwj") :]  # the report of the second command
    assert table.count("### joint critic") == 2
    assert "MI 2 nats, 3 steps per level, batch 64, lr 0.0005, dim 20" in table
    assert "MI 2, 4 nats, 2 steps per level" in table
    assert (tmp_path / "figure1.png").exists() and (tmp_path / "figure1_2.png").exists()
    summaries = json.loads((tmp_path / "table.json").read_text())
    assert {(s["estimator"], s["protocol"]["steps_per_level"]) for s in summaries} == {("cpc", 3), ("nwj", 2)}
    # the same estimator under two protocols: two summaries, not one pooled over both
    runs = [fake_run("cpc", [2.0], 10, 2.0), fake_run("cpc", [2.0], 20, 3.0)]
    assert sorted(s.levels[0].bias for s in summarize(runs)) == [0.0, 1.0]


def test_the_papers_numbers_appear_only_beside_runs_of_the_papers_protocol():
    paper = summarize([fake_run("cpc", [2.0, 4.0, 6.0, 8.0, 10.0], 4000)])
    md = table_markdown(paper)
    assert "| Bias | cpc | 0.50 (0.25) |" in md and "Song & Ermon's protocol" in md
    quick = summarize([fake_run("cpc", [2.0, 4.0, 6.0], 200)])  # the --quick protocol
    md = table_markdown(quick)
    assert "(0.25)" not in md and "not comparable" in md and "200 steps per level" in md
    for other in (dict(batch_size=128), dict(lr=1e-3), dict(critic="separable"), dict(dim=10)):
        md = table_markdown(summarize([fake_run("cpc", [2.0, 4.0, 6.0, 8.0, 10.0], 4000, **other)]))
        assert "(0.25)" not in md and "not comparable" in md, other


def test_two_spellings_of_one_estimator_give_one_run_and_one_row(tmp_path, capsys):
    assert bench(tmp_path / "b", "smile", "smile:5.0", "cpc", "infonce") == 0
    assert sorted(p.name for p in (tmp_path / "b" / "runs").iterdir()) == [
        "gaussian_joint_cpc_seed0.json",
        "gaussian_joint_smile_5_seed0.json",
    ]
    out = capsys.readouterr().out
    assert out.count("| Bias | cpc |") == 1 and out.count("|  | smile:5 |") == 3 and "infonce" not in out
    assert main(["check", "smile", "smile:5.0", *CELLS, "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert len(list((tmp_path / "c" / "cells").rglob("*.json"))) == 2
    assert out.count("| smile:5 | baseline | independence (t=0)") == 1


BAD_COUNTS = [
    ("bench", "--seeds", "0"),
    ("bench", "--seeds", "-1"),
    ("bench", "--steps-per-level", "0"),
    ("bench", "--batch-size", "1"),
    ("bench", "--levels", "0"),
    ("bench", "--levels", "-2"),
    ("bench", "--levels", "nan"),
    ("bench", "--levels", "inf"),
    ("bench", "--lr", "0"),
    ("bench", "--lr", "nan"),
    ("bench", "--jobs", "0"),
    ("bench", "--threads", "0"),
    ("check", "--seeds", "0"),
    ("check", "--epochs", "0"),
    ("check", "--rows", "-1"),
    ("check", "--rows", "two"),
    ("check", "--dp-offset", "0"),
    ("check", "--batch-size", "0"),
    ("check", "--lr", "-1"),
    ("check", "--tol-additivity", "-1"),
    ("check", "--jobs", "0"),
    ("check", "--threads", "0"),
]


@pytest.mark.parametrize("command,flag,value", BAD_COUNTS)
def test_every_count_is_checked_naming_its_flag(tmp_path, capsys, command, flag, value):
    # an unknown estimator: the old parser let these through, to fail later (or train the default)
    assert exit_code([command, "no-such-estimator", flag, value, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}" in err and repr(value) in err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- 6. the command line
def _subparsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.choices and "bench" in a.choices]
    return sub.choices


def test_every_option_has_help_with_its_default():
    for command, parser in _subparsers().items():
        for action in parser._actions:
            if not action.option_strings or "--help" in action.option_strings:
                continue
            assert action.help and "default" in action.help, (command, action.option_strings)


def test_the_rows_help_states_the_default_grid():
    (rows,) = [a for a in _subparsers()["check"]._actions if "--rows" in a.option_strings]
    assert "max(2, H//7)" in rows.help and " ".join(map(str, default_rows(8))) in rows.help
    for height in (28, 32):
        grid = default_rows(height)
        assert f"{grid[0]} {grid[1]} ... {grid[-1]}" in rows.help or f"... {grid[-2]} {grid[-1]}" in rows.help


def test_the_description_is_plain_text_and_version_prints_the_package_version(capsys):
    parser = build_parser()
    assert "``" not in parser.description and ":mod:" not in parser.description
    assert parser.epilog.startswith("Exit status:")
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"selfconsistency {version('micore-suite')}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("command", ["bench", "check"])
def test_cuda_without_a_gpu_is_a_clear_error_naming_the_device_flag(tmp_path, capsys, command):
    assert exit_code([command, "cpc", "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error: argument --device" in err and "no GPU" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    assert exit_code([command, "cpc", "--device", "gpu0", "--out", str(tmp_path / "o")]) == 2
    assert "is not a torch device" in capsys.readouterr().err
