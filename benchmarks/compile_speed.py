"""Does ``torch.compile`` pay for the joint critic's training step? (issue 10, item 3)

Times, in alternating rounds, the eager step of ``NWJ(20, 20, critic="joint")`` (the seed's sizes:
batch 64, MLP 256-256, Adam lr 5e-4: forward, backward, update) against the same step with the
forward and loss compiled by ``torch.compile`` (inductor: element-wise work fused around the matrix
products), and reports the compile time and the steps after which it is repaid. Falls back to
saying why when no compiler works here.

    python benchmarks/compile_speed.py              # about 1 minute on 2 idle CPU cores
    python benchmarks/compile_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from discmi import NWJ
from micore.tasks import CorrelatedGaussian


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=100, help="steps per timed round (default 100)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported (default 3)")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    est = NWJ(20, 20, critic="joint").to(device)
    task = CorrelatedGaussian(20, 2.0)
    opt = torch.optim.Adam(est.parameters(), lr=5e-4)
    gen = torch.Generator(device=device).manual_seed(0)

    def rounds(step, n):
        _sync(device)
        t = time.perf_counter()
        for i in range(n):
            x, y = task.sample_at(i, 64, generator=gen, device=device)
            loss, _ = step(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        return (time.perf_counter() - t) / n

    eager = est._training_step
    rounds(eager, 5)
    t = time.perf_counter()
    try:
        compiled = torch.compile(eager)
        rounds(compiled, 3)
    except Exception as err:  # noqa: BLE001 - no working compiler here: say so and stop
        print(f"torch.compile failed here ({type(err).__name__}: {err}); the eager step is what runs")
        return
    compile_s = time.perf_counter() - t
    times = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        times["eager"].append(rounds(eager, args.steps))
        times["compiled"].append(rounds(compiled, args.steps))
    e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"eager {1e3 * e:.2f} ms/step, compiled {1e3 * c:.2f} ms/step: x{e / c:.3f}; compile {compile_s:.1f} s")
    print(f"repaid after {compile_s / (e - c):.0f} steps" if e > c else "never repaid: the compiled step is slower")


if __name__ == "__main__":
    main()
