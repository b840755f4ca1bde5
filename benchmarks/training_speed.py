"""Training-step speed of the library against a bare PyTorch loop and the machine's matmul rate.

For the joint and the separable critic (the seed's sizes: 20-d Gaussian, MLP 256-256, batch 64,
NWJ objective, Adam lr 5e-4) it times, in alternating rounds so that a noisy machine hurts both
sides alike:

* ``library``: ``NWJ(...).fit(CorrelatedGaussian(20, 2.0), steps=...)``, the full training loop
  (sampling, loss, backward, Adam, per-step records, NaN checks);
* ``bare``: the same math written by hand in plain PyTorch (same sampling, same split first layer
  for the joint critic, same Adam), no library code at all;
* ``gm-flow``: one ``FlowMI`` step (three RealNVP flows, the seed's sizes) beside the joint critic's;
* ``matmul``: a dense ``[4096, 256] @ [256, 256]`` product, the shape of the joint critic's
  dominant layer, which gives the machine's attainable FLOP/s for this work.

The joint critic's FLOPs per step are counted as 3x the forward matmuls (forward, and the two
backward products), ignoring element-wise work; "of matmul" is the step's FLOP/s over the
measured matmul FLOP/s. Last, ``scores`` on n = 4096 with the joint critic is run in a fresh
process and its peak memory reported (CPU: peak RSS growth; CUDA: ``max_memory_allocated``).

    python benchmarks/training_speed.py                 # CPU, threads as torch sets them
    python benchmarks/training_speed.py --device cuda --steps 500
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from discmi import NWJ
from micore.tasks import CorrelatedGaussian

DIM, MI, BATCH, HIDDEN, EMBED, LR = 20, 2.0, 64, 256, 32, 5e-4


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def library_run(critic: str, steps: int, device) -> float:
    torch.manual_seed(0)
    est = NWJ(DIM, DIM, critic=critic)
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


def bare_run(critic: str, steps: int, device) -> float:
    """The same training written directly in PyTorch: nothing from micore or discmi."""
    torch.manual_seed(0)
    rho = math.sqrt(1 - math.exp(-2 * MI / DIM))
    if critic == "joint":
        first = nn.Linear(2 * DIM, HIDDEN)
        rest = nn.Sequential(nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
        model = nn.ModuleList([first, rest]).to(device)

        def scores(x, y):
            w = first.weight
            h = (x @ w[:, :DIM].T)[:, None, :] + torch.addmm(first.bias, y, w[:, DIM:].T)[None, :, :]
            return rest(h.view(-1, HIDDEN)).view(BATCH, BATCH)
    else:
        g = nn.Sequential(
            nn.Linear(DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, EMBED)
        )
        h = nn.Sequential(
            nn.Linear(DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, EMBED)
        )
        model = nn.ModuleList([g, h]).to(device)

        def scores(x, y):
            return g(x) @ h(y).T

    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999))
    gen = torch.Generator(device=device).manual_seed(0)
    off = ~torch.eye(BATCH, dtype=torch.bool, device=device)
    losses = torch.zeros(steps, device=device)
    _sync(device)
    t = time.perf_counter()
    for step in range(steps):
        x = torch.randn(BATCH, DIM, generator=gen, device=device)
        y = rho * x + math.sqrt(1 - rho**2) * torch.randn(BATCH, DIM, generator=gen, device=device)
        log_r = scores(x, y) - 1.0  # NWJ: f = T, log r = T - 1
        nwj = 1.0 + log_r.diagonal().mean() - log_r[off].exp().mean()
        loss = -nwj
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = loss.detach()
    _sync(device)
    return (time.perf_counter() - t) / steps


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


def scores_memory(device: str, n: int) -> dict:
    """Runs in a child process so the peak is that of ``scores`` alone."""
    code = f"""
import json, resource, torch
from discmi import NWJ
dev = torch.device({device!r})
est = NWJ({DIM}, {DIM}, critic="joint").to(dev).eval()
x = torch.randn({n}, {DIM}, device=dev); y = torch.randn({n}, {DIM}, device=dev)
with torch.no_grad():
    est.scores(x[:64], y[:64])  # allocator and kernels warmed up
if dev.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
else:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.no_grad():
    s = est.scores(x, y)
if dev.type == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() - base
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(json.dumps({{"n": {n}, "shape": list(s.shape), "peak_bytes": peak, "finite": bool(torch.isfinite(s).all())}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=100, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--n-scores", type=int, default=4096)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
    }
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    for critic in ("joint", "separable"):
        library_run(critic, 10, device), bare_run(critic, 10, device)  # warm-up
        lib, bare, mm = [], [], []
        for _ in range(args.rounds):
            lib.append(library_run(critic, args.steps, device))
            bare.append(bare_run(critic, args.steps, device))
            if critic == "joint":
                mm.append(matmul_flops(device))
        row = {"library_ms": 1e3 * statistics.median(lib), "bare_ms": 1e3 * statistics.median(bare)}
        row["library_over_bare"] = row["library_ms"] / row["bare_ms"]
        line = (
            f"{critic:9s} library {row['library_ms']:7.2f} ms/step  bare {row['bare_ms']:7.2f} ms/step  "
            f"library/bare {row['library_over_bare']:.3f}"
        )
        if critic == "joint":
            row["matmul_gflops"] = statistics.median(mm) / 1e9
            row["library_gflops"] = joint_step_flops() / statistics.median(lib) / 1e9
            row["fraction_of_matmul"] = row["library_gflops"] / row["matmul_gflops"]
            line += (
                f"  critic {row['library_gflops']:.1f} GFLOP/s = {100 * row['fraction_of_matmul']:.0f}% "
                f"of matmul ({row['matmul_gflops']:.1f} GFLOP/s)"
            )
        results[critic] = row
        print(line, flush=True)

    # the generative side's step beside the joint critic's (genmi.FlowMI, same task and batch)
    flow_run(10, device)
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
