"""Training-step speed: the library against a bare PyTorch loop, the seed's reference step, the
machine's matmul rate, and K-run ensembles (issue 10), every figure a ratio measured side by side.

For the joint and the separable critic (the seed's sizes: 20-d Gaussian, MLP 256-256, separable
embedding 32, batch 64, Adam lr 5e-4) it times, in alternating rounds so that a noisy machine hurts
every side alike:

* ``library``: ``NWJ(...).fit(CorrelatedGaussian(20, 2.0), steps=...)``, the full training loop
  (sampling, loss, backward, Adam, per-step records, divergence checks);
* ``bare``: the same math written by hand in plain PyTorch (same sampling, same split first layer
  for the joint critic, same Adam), no library code at all;
* ``reference``: the seed's own step (Song & Ermon's ``smile-mi-estimator``, CUDA-only, so
  reimplemented here from the paper's formulas at the same sizes): ``ConcatCritic`` tiles all
  ``n^2`` pairs ``[x_i; y_j]`` through the whole MLP, ``SeparableCritic`` is ``g(x) h(y)^T``, the
  loss is ``smile_lower_bound`` (the JS objective, with the clipped DV value added without gradient,
  tau = 5), the estimate is read to the host every step (``.item()``), as the seed's loop does;
  beside it the library's ``SMILE(tau=5).fit`` (``smile_library``);
* ``ensembles``: ``micore.ensemble.train_ensemble`` of K NWJ runs (K = 1, 8, 32, 128; different
  seeds), steps/s and run-steps/s, against K one-by-one runs. One-by-one time is extrapolated: the
  per-step time of ``library`` (one run, measured above) times K, since K runs one after another
  take K times one run's time. Memory: the ensemble's peak (CUDA: ``max_memory_allocated``; CPU:
  K times the per-member estimate of ``micore.ensemble.member_memory``);
* ``gm-flow``: one ``FlowMI`` step (three RealNVP flows, the seed's sizes) beside the joint critic's;
* ``matmul``: a dense ``[4096, 256] @ [256, 256]`` product (the joint critic's dominant layer), the
  machine's attainable FLOP/s for this work.

FLOPs per step are 3x the forward matmuls (forward, and the two backward products; element-wise
work ignored): joint ``2 (2 n d h + n^2 h^2 + n^2 h)``, separable ``2 * 2 n (d h + h^2 + h e)`` with
``n = 64, d = 20, h = 256, e = 32``. "of matmul" is a step's FLOP/s over the measured matmul FLOP/s,
and an ensemble's best possible gain over one-by-one runs is about that of matmul over one run's
FLOP/s: the FLOPs do not shrink, batching only removes the time spent elsewhere. Last, ``scores``
on n = 4096 with the joint critic runs in a fresh process and reports its peak memory (CPU: peak RSS
growth; CUDA: ``max_memory_allocated``). ``--profile`` prints torch.profiler's table of the
library's joint step.

Issue 10's targets (printed with the results): separable K = 32 ensemble >= 15x the run-steps/s of
one-by-one runs; the joint critic's one-run step >= 70% of matmul FLOP/s; the library's step <= 0.9x
the reference step's time, both critics.

    python benchmarks/training_speed.py --quick                   # about 1.5 minutes on 2 idle cores
    python benchmarks/training_speed.py --json benchmarks/results/training_speed_cpu.json
    python benchmarks/training_speed.py --device cuda --steps 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

# the hand-written steps beside the library's (a module next to this script)
from speed_baselines import BATCH, DIM, EMBED, HIDDEN, LR, MI, bare_run, reference_run
from speed_baselines import sync as _sync

import micore
from discmi import NWJ, SMILE
from micore.ensemble import train_ensemble
from micore.tasks import CorrelatedGaussian

ENSEMBLE_SIZES = (1, 8, 32, 128)


def library_run(critic: str, steps: int, device, estimator=NWJ) -> float:
    torch.manual_seed(0)
    est = estimator(DIM, DIM, critic=critic)
    task = CorrelatedGaussian(DIM, MI)
    _sync(device)
    t = time.perf_counter()
    est.fit(task, steps=steps, batch_size=BATCH, lr=LR, seed=0, device=device, progress=False)
    _sync(device)
    return (time.perf_counter() - t) / steps


def flow_run(steps: int, device) -> float:
    """One I_GM training step: three RealNVP flows (the seed's 5 coupling layers of 2x100)."""
    from genmi import FlowMI

    torch.manual_seed(0)
    est = FlowMI(DIM, DIM)
    _sync(device)
    t = time.perf_counter()
    est.fit(CorrelatedGaussian(DIM, MI), steps=steps, batch_size=BATCH, lr=LR, seed=0, device=device, progress=False)
    _sync(device)
    return (time.perf_counter() - t) / steps


# ---------------------------------------------------------------- rates
def matmul_flops(device, reps: int = 50) -> float:
    a = torch.randn(BATCH * BATCH, HIDDEN, device=device)
    b = torch.randn(HIDDEN, HIDDEN, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * a.shape[0] * HIDDEN * HIDDEN * reps / (time.perf_counter() - t)


def joint_step_flops() -> float:
    pairs = BATCH * BATCH
    forward = 2 * (2 * BATCH * DIM * HIDDEN + pairs * HIDDEN * HIDDEN + pairs * HIDDEN)
    return 3 * forward


def separable_step_flops() -> float:
    forward = 2 * 2 * BATCH * (DIM * HIDDEN + HIDDEN * HIDDEN + HIDDEN * EMBED) + 2 * BATCH * BATCH * EMBED
    return 3 * forward


STEP_FLOPS = {"joint": joint_step_flops, "separable": separable_step_flops}


def ensemble_run(critic: str, k: int, steps: int, device, **options) -> dict:
    """One ensemble of ``k`` NWJ runs (seeds 0..k-1): seconds per step, engine, chunks and peak memory.

    ``options`` go to ``train_ensemble`` (``cuda_graphs``, ``precision``). On CUDA the per-step time is
    the steady state: the difference of a ``steps + 20``- and a ``20``-step training over ``steps``, so
    that the eager warm-up steps and the graph's capture (once per training) are left out.
    """
    torch.manual_seed(0)
    members = [NWJ(DIM, DIM, critic=critic) for _ in range(k)]
    task = CorrelatedGaussian(DIM, MI)
    common = dict(batch_size=BATCH, lr=LR, device=device, progress=False, max_members="auto", **options)
    train_ensemble(members, task, seeds=list(range(k)), steps=2, **common)  # warm-up: kernels, allocator

    def timed(n):
        _sync(device)
        t = time.perf_counter()
        out = train_ensemble(members, task, seeds=list(range(k)), steps=n, **common)
        _sync(device)
        return time.perf_counter() - t, out

    if device.type == "cuda":
        short, _ = timed(20)
        long, out = timed(steps + 20)
        seconds = max(long - short, 1e-9) / steps
    else:
        total, out = timed(steps)
        seconds = total / steps
    return {
        "seconds_per_step": seconds,
        "engines": out.engines,
        "chunks": out.chunks,
        "graphed": out.graphed,
        "peak_bytes": out.peak_bytes,
        "peak_measured": out.peak_measured,
    }


def ensembles(
    critic: str, sizes, one_run_s: float, budget_s: float, matmul: float, device, label: str = "", **options
) -> list[dict]:
    """Each K for about ``budget_s`` seconds (at least 2 steps), against K one-by-one runs."""
    rows = []
    low, cap = (30, 2000) if device.type == "cuda" else (2, 200)
    for k in sizes:
        steps = max(low, min(cap, int(budget_s / (k * one_run_s))))
        r = ensemble_run(critic, k, steps, device, **options)
        s = r["seconds_per_step"]
        row = {
            "K": k,
            "variant": label or "default",
            "options": options,
            "steps_timed": steps,
            "ensemble_ms_per_step": 1e3 * s,
            "steps_per_s": 1 / s,
            "run_steps_per_s": k / s,
            "one_by_one_run_steps_per_s": 1 / one_run_s,
            "speedup_vs_one_by_one": k * one_run_s / s,
            "gflops": k * STEP_FLOPS[critic]() / s / 1e9,
            "fraction_of_matmul": k * STEP_FLOPS[critic]() / s / matmul,
            **{key: r[key] for key in ("engines", "chunks", "graphed", "peak_bytes", "peak_measured")},
        }
        rows.append(row)
        graph = " graph" if any(r["graphed"]) else ""
        print(
            f"  {critic:9s} K={k:3d} {label:12s}: {row['ensemble_ms_per_step']:8.3f} ms/step  "
            f"{row['run_steps_per_s']:8.0f} run-steps/s  x{row['speedup_vs_one_by_one']:6.2f} vs one by one  "
            f"{100 * row['fraction_of_matmul']:3.0f}% of matmul  peak {r['peak_bytes'] / 2**20:7.1f} MiB "
            f"({'measured' if r['peak_measured'] else 'estimated'}) [{','.join(r['engines'])}{graph}]",
            flush=True,
        )
    return rows


def scores_memory(device: str, n: int) -> dict:
    """Runs in a child process so the peak is that of ``scores`` alone.

    CPU: growth of the child's peak RSS. ``ru_maxrss`` survives fork and exec on Linux (a child of a
    large parent starts at the parent's peak), so the child resets its own high-water mark
    (``/proc/self/clear_refs``) and reads ``VmHWM``; ``ru_maxrss`` only where /proc has neither.
    """
    code = f"""
import json, resource, torch
from discmi import NWJ

def rss(field):
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

dev = torch.device({device!r})
est = NWJ({DIM}, {DIM}, critic="joint").to(dev).eval()
x = torch.randn({n}, {DIM}, device=dev); y = torch.randn({n}, {DIM}, device=dev)
with torch.no_grad():
    est.scores(x[:64], y[:64])  # allocator and kernels warmed up
if dev.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
else:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak RSS restarts at the current RSS
        base = rss("VmRSS:")
    except OSError:
        base = rss("VmHWM:")
with torch.no_grad():
    s = est.scores(x, y)
if dev.type == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() - base
else:
    peak = rss("VmHWM:") - base
print(json.dumps({{"n": {n}, "shape": list(s.shape), "peak_bytes": peak, "finite": bool(torch.isfinite(s).all())}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile_joint(device, steps: int = 10) -> str:
    """torch.profiler's table of the library's joint step (NWJ), by operator and input shape."""
    from torch.profiler import profile

    library_run("joint", 3, device)
    with profile(record_shapes=True) as prof:
        library_run("joint", steps, device)
    return prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=15)


def _timed_rounds(critic: str, rounds: int, steps: int, device) -> dict:
    """Library, bare, reference and library-SMILE steps in alternating rounds; medians in ms."""
    for f in (library_run, bare_run, reference_run):  # warm-up
        f(critic, 5, device)
    lib, bare, ref, smile, mm = [], [], [], [], []
    for _ in range(rounds):
        lib.append(library_run(critic, steps, device))
        bare.append(bare_run(critic, steps, device))
        ref.append(reference_run(critic, steps, device))
        smile.append(library_run(critic, steps, device, estimator=SMILE))
        mm.append(matmul_flops(device))
    row = {
        "library_ms": 1e3 * statistics.median(lib),
        "bare_ms": 1e3 * statistics.median(bare),
        "reference_ms": 1e3 * statistics.median(ref),
        "smile_library_ms": 1e3 * statistics.median(smile),
        "matmul_gflops": statistics.median(mm) / 1e9,
    }
    row["library_over_bare"] = row["library_ms"] / row["bare_ms"]
    row["smile_library_over_reference"] = row["smile_library_ms"] / row["reference_ms"]
    row["library_gflops"] = STEP_FLOPS[critic]() / (row["library_ms"] / 1e3) / 1e9
    row["fraction_of_matmul"] = row["library_gflops"] / row["matmul_gflops"]
    # an ensemble can at best run at the matmul rate: its gain over one-by-one runs is bounded by this
    row["ensemble_gain_ceiling"] = 1 / row["fraction_of_matmul"]
    return row


def _targets(results: dict) -> dict:
    sep32 = [r for r in results["separable"]["ensembles"] if r["K"] == 32 and r["variant"] == "default"]
    out = {
        "joint_fraction_of_matmul >= 0.70": results["joint"]["fraction_of_matmul"],
        "joint smile_library_over_reference <= 0.90": results["joint"]["smile_library_over_reference"],
        "separable smile_library_over_reference <= 0.90": results["separable"]["smile_library_over_reference"],
    }
    if sep32:
        out["separable K=32 speedup_vs_one_by_one >= 15"] = sep32[0]["speedup_vs_one_by_one"]
    return out


def _met(name: str, value: float) -> bool:
    bound = float(name.split()[-1])
    return value >= bound if ">=" in name else value <= bound


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=100, help="steps per timed round (default 100)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU; default torch's)")
    p.add_argument("--sizes", default=",".join(map(str, ENSEMBLE_SIZES)), help="ensemble sizes K (default 1,8,32,128)")
    p.add_argument("--ensemble-seconds", type=float, default=10.0, help="time per ensemble size (default 10)")
    p.add_argument("--n-scores", type=int, default=4096)
    p.add_argument(
        "--quick", action="store_true", help="a short run: 20 steps, 2 rounds, K = 1, 8, 32, ~2 s per ensemble"
    )
    p.add_argument("--profile", action="store_true", help="print torch.profiler's table of the joint step")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.quick:
        args.steps, args.rounds, args.ensemble_seconds = 20, 2, 2.0
        args.sizes = ",".join(k for k in args.sizes.split(",") if int(k) <= 32)
    if args.threads:
        torch.set_num_threads(args.threads)
    micore.set_threads(None)  # every side on torch's thread count, not the library's idle-core choice
    device = torch.device(args.device)
    sizes = [int(k) for k in args.sizes.split(",")]
    results = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "quick": args.quick,
        # 1-, 5-, 15-minute load averages at the start: more than ~0.2 means another process shared the cores
        "load_average": list(os.getloadavg()),
    }
    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, load average "
        + " ".join(f"{v:.2f}" for v in results["load_average"])
    )

    for critic in ("joint", "separable"):
        row = _timed_rounds(critic, args.rounds, args.steps, device)
        print(
            f"{critic:9s} library {row['library_ms']:7.2f} ms/step  bare {row['bare_ms']:7.2f}  "
            f"library/bare {row['library_over_bare']:.3f}  | SMILE library {row['smile_library_ms']:7.2f}  "
            f"reference {row['reference_ms']:7.2f}  library/reference {row['smile_library_over_reference']:.3f}  "
            f"| {row['library_gflops']:.1f} GFLOP/s = {100 * row['fraction_of_matmul']:.0f}% of matmul "
            f"({row['matmul_gflops']:.1f} GFLOP/s; ensemble gain at most ~x{row['ensemble_gain_ceiling']:.1f})",
            flush=True,
        )
        timing = (critic, sizes, row["library_ms"] / 1e3, args.ensemble_seconds, row["matmul_gflops"] * 1e9, device)
        row["ensembles"] = ensembles(*timing)
        if device.type == "cuda":  # the same without CUDA graphs, and the largest K in TF32 and bf16
            row["ensembles"] += ensembles(*timing, label="eager", cuda_graphs=False)
            big = (critic, sizes[-1:], *timing[2:])
            row["ensembles"] += ensembles(*big, label="tf32", precision="tf32")
            row["ensembles"] += ensembles(*big, label="bf16", precision="bf16")
        results[critic] = row

    # the generative side's step beside the joint critic's (genmi.FlowMI, same task and batch)
    flow_run(5, device)
    flow, joint = [], []
    for _ in range(args.rounds):
        flow.append(flow_run(args.steps, device))
        joint.append(library_run("joint", args.steps, device))
    results["flow"] = {"library_ms": 1e3 * statistics.median(flow), "joint_library_ms": 1e3 * statistics.median(joint)}
    results["flow"]["flow_over_joint"] = statistics.median(flow) / statistics.median(joint)
    print(
        f"gm-flow   library {results['flow']['library_ms']:7.2f} ms/step  beside joint critic "
        f"{results['flow']['joint_library_ms']:.2f} ms/step: ratio {results['flow']['flow_over_joint']:.2f}",
        flush=True,
    )

    mem = scores_memory(str(device), args.n_scores)
    results["scores_memory"] = mem
    print(f"scores n={mem['n']} joint critic: peak {mem['peak_bytes'] / 2**30:.2f} GiB (finite: {mem['finite']})")

    results["targets"] = {name: {"value": v, "met": _met(name, v)} for name, v in _targets(results).items()}
    for name, t in results["targets"].items():
        print(f"target {name}: {t['value']:.3f} {'met' if t['met'] else 'NOT met'}")
    if args.profile:
        print(profile_joint(device))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
