"""The two hand-written steps ``training_speed.py`` times the library against (issue 10).

* :func:`bare_run`: the library's NWJ training written directly in PyTorch (same sampling, same
  split first layer for the joint critic, same Adam), no library code at all;
* :func:`reference_run`: the seed's own step, Song & Ermon's ``smile-mi-estimator`` (CUDA-only, so
  reimplemented here from the paper's formulas at the same sizes): ``ConcatCritic`` tiles all ``n^2``
  pairs through the whole MLP, ``SeparableCritic`` is ``g(x) h(y)^T``, the loss is
  ``smile_lower_bound`` (tau = 5), the estimate read to the host every step, as the seed's loop does.

Both return seconds per step. The sizes are the seed's: 20-d Gaussian at 2 nats, batch 64, MLP
256-256, separable embedding 32, Adam lr 5e-4.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

DIM, MI, BATCH, HIDDEN, EMBED, LR, TAU = 20, 2.0, 64, 256, 32, 5e-4, 5.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rho() -> float:
    return math.sqrt(1 - math.exp(-2 * MI / DIM))


def bare_run(critic: str, steps: int, device) -> float:
    """The same training written directly in PyTorch: nothing from micore or discmi."""
    torch.manual_seed(0)
    rho = _rho()
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
    sync(device)
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
    sync(device)
    return (time.perf_counter() - t) / steps


def _ref_mlp(dim: int, out: int) -> nn.Sequential:
    """Two hidden layers of 256 with ReLU, the paper's stated sizes (App. B.1) and the library's."""
    layers = [nn.Linear(dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(HIDDEN, out))


class RefConcatCritic(nn.Module):
    """The seed's ``ConcatCritic``: every pair ``[x_i; y_j]`` tiled and passed through the MLP."""

    def __init__(self):
        super().__init__()
        self.net = _ref_mlp(2 * DIM, 1)

    def forward(self, x, y):
        n = x.shape[0]
        x_tiled = torch.stack([x] * n, dim=0)  # [n, n, d]: x_tiled[j, i] = x_i
        y_tiled = torch.stack([y] * n, dim=1)  # y_tiled[j, i] = y_j
        pairs = torch.cat((x_tiled, y_tiled), dim=2).view(n * n, -1)
        return self.net(pairs).view(n, n).t()  # [i, j] = T(x_i, y_j)


class RefSeparableCritic(nn.Module):
    """The seed's ``SeparableCritic``: ``g(x) h(y)^T``."""

    def __init__(self):
        super().__init__()
        self.g, self.h = _ref_mlp(DIM, EMBED), _ref_mlp(DIM, EMBED)

    def forward(self, x, y):
        return self.g(x) @ self.h(y).t()


def _ref_logmeanexp_nodiag(f):
    n = f.shape[0]
    logsumexp = torch.logsumexp(f - torch.diag(math.inf * torch.ones(n, device=f.device)), dim=(0, 1))
    return logsumexp - math.log(n * (n - 1.0))


def _ref_js_fgan_lower_bound(f):
    n = f.shape[0]
    first = -nn.functional.softplus(-f.diag()).mean()
    second = (torch.sum(nn.functional.softplus(f)) - torch.sum(nn.functional.softplus(f.diag()))) / (n * (n - 1.0))
    return first - second


def ref_smile_lower_bound(f, clip: float = TAU):
    """The seed's ``smile_lower_bound``: JS for the gradient, the clipped DV value added without one."""
    dv = f.diag().mean() - _ref_logmeanexp_nodiag(torch.clamp(f, -clip, clip))
    js = _ref_js_fgan_lower_bound(f)
    with torch.no_grad():
        dv_js = dv - js
    return js + dv_js


def reference_run(critic: str, steps: int, device) -> float:
    """The seed's training step: sample, critic, ``smile_lower_bound``, Adam, the estimate to the host."""
    torch.manual_seed(0)
    model = (RefConcatCritic() if critic == "joint" else RefSeparableCritic()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    rho = _rho()
    estimates = []
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        x, eps = torch.chunk(torch.randn(BATCH, 2 * DIM, device=device), 2, dim=1)
        y = rho * x + math.sqrt(1 - rho**2) * eps
        mi = ref_smile_lower_bound(model(x, y))
        opt.zero_grad()
        (-mi).backward()
        opt.step()
        estimates.append(mi.detach().item())
    sync(device)
    return (time.perf_counter() - t) / steps
