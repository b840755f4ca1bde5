"""The image loaders: the bundled digits, and MNIST / CIFAR-10 read by torchvision's own classes from
small files that the fixtures write in the datasets' on-disk formats (never presented as real results)."""

import gzip

import numpy as np
import pytest
import torch
from selfconsistency_fixtures import write_cifar10, write_mnist
from torchvision.datasets import CIFAR10

from selfconsistency import DatasetMissing, load_images
from selfconsistency.cli import main
from selfconsistency.images.data import MNIST_FILES, load_cifar10, load_mnist


def test_digits_split_is_fixed_held_out_and_in_unit_range():
    from sklearn.datasets import load_digits

    a, b = load_images("digits"), load_images("digits")
    assert a.train.shape == (1285, 1, 8, 8) and a.test.shape == (512, 1, 8, 8)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)  # the split is part of the protocol
    assert float(a.train.min()) == 0.0 and float(a.train.max()) == 1.0
    # train and test partition the 1797 images: together they are the bundled set, each image once
    everything = torch.as_tensor(load_digits().images, dtype=torch.float32).div(16).flatten(1)
    both = torch.cat([a.train, a.test]).flatten(1)
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(both) == key(everything)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_mnist_reads_idx_files_through_torchvision(tmp_path, compress):
    arrays = write_mnist(tmp_path, n_train=30, n_test=12, compress=compress)
    split = load_images("mnist", tmp_path)
    assert split.train.shape == (30, 1, 28, 28) and split.test.shape == (12, 1, 28, 28)
    assert torch.equal(split.train[:, 0], torch.as_tensor(arrays["train"]).float() / 255)
    assert torch.equal(split.test[:, 0], torch.as_tensor(arrays["t10k"]).float() / 255)
    if compress:  # decompressed next to the archives, where torchvision reads them
        assert all((tmp_path / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES)


def test_mnist_gz_content_is_what_torchvision_reads(tmp_path):
    write_mnist(tmp_path, n_train=5, n_test=5, compress=True)
    raw = tmp_path / "MNIST" / "raw"
    with gzip.open(raw / "train-images-idx3-ubyte.gz") as f:
        header = f.read(16)
    assert int.from_bytes(header[:4], "big") == 0x803 and int.from_bytes(header[4:8], "big") == 5
    assert load_mnist(tmp_path).train.shape == (5, 1, 28, 28)


def test_missing_mnist_names_the_files(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetMissing, match="t10k-images-idx3-ubyte") as err:
        load_images("mnist", tmp_path)
    assert "train-images" not in str(err.value) and "download" in str(err.value)
    with pytest.raises(ValueError, match="data-root"):
        load_images("mnist")


def _patch_cifar_md5(monkeypatch, md5):
    """torchvision checks every batch against the official md5; point its table at the fixture's files."""
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})


def test_cifar10_reads_pickle_batches_through_torchvision(tmp_path, monkeypatch):
    arrays = write_cifar10(tmp_path, per_batch=4, n_test=6)
    _patch_cifar_md5(monkeypatch, arrays["md5"])
    split = load_cifar10(tmp_path)
    assert split.train.shape == (20, 3, 32, 32) and split.test.shape == (6, 3, 32, 32)
    expected = torch.as_tensor(np.ascontiguousarray(arrays["train"])).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(split.train, expected)  # HWC pickles -> CHW tensors, in batch order


def test_cifar10_files_failing_the_md5_check_are_reported(tmp_path):
    write_cifar10(tmp_path)  # not the official batches: torchvision's real check rejects them
    with pytest.raises(DatasetMissing, match="md5"):
        load_images("cifar10", tmp_path)


def test_missing_cifar10_names_the_files(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetMissing, match="data_batch_3"):
        load_images("cifar10", tmp_path)


def test_cli_reports_missing_files_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "check",
                "smile:5",
                "--dataset",
                "mnist",
                "--data-root",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "MNIST files missing" in err and "train-images-idx3-ubyte" in err and "--download" in err
