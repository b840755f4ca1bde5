"""Planted estimators and dataset files for the self-consistency tests.

The planted estimators are :class:`micore.MIEstimator` subclasses whose estimates are known functions of
the data, so the verdicts they must get are known:

* :class:`ConstantMI` — always 1 nat: ratio 1 everywhere, so independence (ratio 0 at t = 0) fails;
* :class:`BlindMI` — ignores ``y`` and returns about 0: every reference is below ``min_mi``, so every
  ratio is undefined and every verdict fails;
* :class:`PixelMI` — the sum over pixels of a clipped Gaussian MI between ``x_j`` and ``y_j``: 0 for
  masked pixels, the same for every visible pixel, so the baseline is 0 at t = 0, increasing, ≤ 1, and
  additivity holds exactly (the channels of two independent images add up); but it counts the
  duplicated view of the data-processing setting twice, so data processing fails;
* :class:`ReversedPixelMI` — a constant minus :class:`PixelMI`: decreasing in t.

They also serve as ``module:factory`` user estimators (``selfconsistency_fixtures:pixel``).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

from micore import MIEstimator

RHO2_MAX = 0.99  # clip: a pixel copied exactly would have infinite Gaussian MI


class _Planted(MIEstimator):
    """A fixed-formula estimate; one dummy parameter so that ``fit`` has something to train."""

    def __init__(self, x_dim, y_dim):
        super().__init__(x_dim, y_dim)
        self.w = nn.Parameter(torch.zeros(()))

    def _loss(self, x, y):
        return (self.w - 1.0) ** 2

    def _log_ratio(self, x, y):
        return torch.zeros(x.shape[0], device=x.device) + 0.0 * self.w


class ConstantMI(_Planted):
    def _batch_estimate(self, x, y):
        return torch.ones((), device=x.device)


class BlindMI(_Planted):
    def _batch_estimate(self, x, y):
        return 1e-4 * x.mean()  # ignores y; about 0


def pixel_gaussian_mi(x, y):
    """Σ_j -½ log(1 - ρ_j²) over pixel pairs (x_j, y_j), ρ² clipped at 0.99; constant pixels give 0."""
    xf, yf = x.flatten(1), y.flatten(1)
    xc, yc = xf - xf.mean(0), yf - yf.mean(0)
    vx, vy = (xc**2).mean(0), (yc**2).mean(0)
    live = (vx > 1e-8) & (vy > 1e-8)
    rho2 = torch.where(live, (xc * yc).mean(0) ** 2 / (vx * vy).clamp_min(1e-16), torch.zeros_like(vx))
    return -0.5 * torch.log1p(-rho2.clamp(max=RHO2_MAX)).sum()


class PixelMI(_Planted):
    def _batch_estimate(self, x, y):
        return pixel_gaussian_mi(x, y)


class ReversedPixelMI(_Planted):
    def _batch_estimate(self, x, y):
        return pixel_gaussian_mi(x, x) + 0.5 - pixel_gaussian_mi(x, y)


def constant(x_shape, y_shape):
    return ConstantMI(x_shape, y_shape)


def blind(x_shape, y_shape):
    return BlindMI(x_shape, y_shape)


def pixel(x_shape, y_shape):
    return PixelMI(x_shape, y_shape)


def reversed_pixel(x_shape, y_shape):
    return ReversedPixelMI(x_shape, y_shape)


class FailAfter:
    """A factory that builds ``n`` estimators, then raises ``KeyboardInterrupt`` (a run killed mid-way)."""

    def __init__(self, factory, n: int):
        self.factory, self.n, self.built = factory, n, 0

    def __call__(self, x_shape, y_shape):
        if self.built >= self.n:
            raise KeyboardInterrupt
        self.built += 1
        return self.factory(x_shape, y_shape)


# ---------------------------------------------------------------------- dataset files
def _images(n, h, w, c, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w, c) if c > 1 else (n, h, w), dtype=np.uint8)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """The idx-ubyte format of MNIST: magic 0x0000 08 <ndim>, big-endian sizes, then the bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, n_train=40, n_test=20, compress=False) -> dict:
    """``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` with random 28×28 images."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images = _images(n, 28, 28, 1, seed)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, compress)
        arrays[split] = images
    return arrays


def write_cifar10(root: Path, per_batch=8, n_test=10) -> dict:
    """``root/cifar-10-batches-py/`` with the python-pickle batches (``data: [n, 3072]`` uint8, CHW rows).

    Returns the images ``[n, 32, 32, 3]`` per split and the md5 of every file written (torchvision checks
    them against the official release; tests patch its table of expected checksums with these).
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    md5, train = {}, []

    def dump(name, obj):
        path = folder / name
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)
        md5[name] = hashlib.md5(path.read_bytes()).hexdigest()

    for i in range(1, 6):
        images = _images(per_batch, 32, 32, 3, 10 + i)
        train.append(images)
        dump(
            f"data_batch_{i}",
            {
                "batch_label": f"training batch {i} of 5",
                "data": images.transpose(0, 3, 1, 2).reshape(per_batch, -1),
                "labels": [j % 10 for j in range(per_batch)],
                "filenames": [f"img{j}.png" for j in range(per_batch)],
            },
        )
    test = _images(n_test, 32, 32, 3, 20)
    dump(
        "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "data": test.transpose(0, 3, 1, 2).reshape(n_test, -1),
            "labels": [j % 10 for j in range(n_test)],
            "filenames": [f"t{j}.png" for j in range(n_test)],
        },
    )
    dump(
        "batches.meta",
        {
            "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
            "num_cases_per_batch": per_batch,
            "num_vis": 3072,
        },
    )
    return {"train": np.concatenate(train), "test": test, "md5": md5}
