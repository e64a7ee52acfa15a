import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from learning import data
from learning.data import ImageDataset, load_dataset, read_idx
from learning.partition import dirichlet_partition, iid_partition


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the idx format: magic 0x0000_08_<ndim>, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "i" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_fmnist(folder, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img_file, lab_file = data._FMNIST_FILES[split]
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / img_file, x)
        write_idx(folder / lab_file, y)
        arrays[split] = (x, y)
    return arrays


def test_read_idx_round_trip(tmp_path):
    x = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a.gz", x)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), x)


def test_read_idx_rejects_bad_magic(tmp_path):
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(b"\x01\x02\x03\x04rubbish")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "b.gz")


def test_fashion_mnist_from_root_is_padded_grey(tmp_path):
    arrays = write_fmnist(tmp_path)
    train, test = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert len(train) == 12 and len(test) == 5 and train.num_classes == 10
    assert train.images.shape == (12, 1, 32, 32) and train.images.dtype == torch.uint8
    x, y = arrays["train"]
    np.testing.assert_array_equal(train.images[:, 0, 2:30, 2:30].numpy(), x)
    assert int(train.images[:, :, :2].sum()) == 0 and int(train.images[:, :, :, 30:].sum()) == 0
    np.testing.assert_array_equal(train.labels.numpy(), y)
    batch, labels = train.batch([0, 3])
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    torch.testing.assert_close(batch[:, 0], batch[:, 2])
    assert train.rgb_uint8([1]).shape == (1, 32, 32, 3)


def test_fashion_mnist_from_env(tmp_path, monkeypatch):
    write_fmnist(tmp_path)
    monkeypatch.setenv("SFLSIM_DATA", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    train, _ = load_dataset("fashion-mnist", download=False)
    assert len(train) == 12


def test_missing_fashion_mnist_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("SFLSIM_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="fashion-mnist") as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert "apt-get install dataset-fashion-mnist" in str(err.value) and "SFLSIM_DATA" in str(err.value)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="name.*'mnist-typo'"):
        load_dataset("mnist-typo")


def _cifar_entry(n, rng, label_key):
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: list(rng.integers(0, 10, n))}


def test_cifar10_real_archive_layout(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    entries = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entries[name] = _cifar_entry(4, rng, b"labels")
        with open(folder / name, "wb") as fh:
            pickle.dump(entries[name], fh)
    train, test = load_dataset("cifar10", root=tmp_path)
    assert len(train) == 20 and len(test) == 4 and train.images.shape == (20, 3, 32, 32)
    # row layout: 1024 red, 1024 green, 1024 blue, each row-major 32x32
    row = entries["data_batch_2"][b"data"][1]
    np.testing.assert_array_equal(train.images[5, 1].numpy(), row[1024:2048].reshape(32, 32))
    assert int(test.labels[3]) == entries["test_batch"][b"labels"][3]


def test_cifar100_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": [99] * n, b"coarse_labels": [0] * n}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
    train, test = load_dataset("cifar100", root=tmp_path)
    assert train.num_classes == 100 and int(train.labels.max()) == 99 and len(test) == 3


def test_missing_cifar(tmp_path, monkeypatch):
    monkeypatch.delenv("SFLSIM_DATA", raising=False)
    with pytest.raises(ValueError, match="cifar10"):
        load_dataset("cifar10", root=tmp_path)


def test_imagefolder_resizes(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (50, 40), (200, 10, 10) if c == "cat" else (10, 10, 200)).save(tmp_path / split / c / "a.png")
    train, test = load_dataset("imagefolder", root=tmp_path, image_size=16)
    assert train.images.shape == (2, 3, 16, 16) and train.num_classes == 2
    assert train.labels.tolist() == [0, 1] and int(train.images[0, 0, 8, 8]) == 200


def test_imagefolder_needs_root():
    with pytest.raises(ValueError, match="root"):
        load_dataset("imagefolder")


def test_dataset_rejects_bad_shapes():
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), 2)


def _labels(n=3000, classes=10, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 10.0])
def test_dirichlet_partition_disjoint_covering_min_size(alpha):
    labels = _labels()
    parts = dirichlet_partition(labels, 8, alpha, np.random.default_rng(1), min_samples=20)
    allidx = np.concatenate(parts)
    assert len(parts) == 8 and len(allidx) == len(labels)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(len(labels)))
    assert min(len(p) for p in parts) >= 20


def _skew(parts, labels, classes=10):
    """Mean total-variation distance between a device's label mix and the global one."""
    glob = np.bincount(labels, minlength=classes) / len(labels)
    return np.mean([0.5 * np.abs(np.bincount(labels[p], minlength=classes) / len(p) - glob).sum() for p in parts])


def test_smaller_alpha_gives_more_skew():
    labels = _labels()
    # 10 independent draws per alpha; the gap between the means is many standard errors
    skew = {a: [_skew(dirichlet_partition(labels, 10, a, np.random.default_rng(s)), labels) for s in range(10)]
            for a in (0.1, 1.0, 100.0)}
    m = {a: np.mean(v) for a, v in skew.items()}
    se = {a: np.std(v) / np.sqrt(len(v)) for a, v in skew.items()}
    assert m[0.1] - 3 * se[0.1] > m[1.0] + 3 * se[1.0]
    assert m[1.0] - 3 * se[1.0] > m[100.0] + 3 * se[100.0]
    assert m[100.0] < 0.1 < 0.5 < m[0.1]


def test_dirichlet_partition_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_partition(_labels(), 4, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_samples"):
        dirichlet_partition(_labels(100), 4, 1.0, np.random.default_rng(0), min_samples=50)
    with pytest.raises(ValueError, match="num_devices"):
        dirichlet_partition(_labels(), 0, 1.0, np.random.default_rng(0))


def test_iid_partition():
    parts = iid_partition(103, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(103))
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    with pytest.raises(ValueError, match="num_samples"):
        iid_partition(3, 4, np.random.default_rng(0))


def test_dataset_items_follow_torch_conventions():
    from torch.utils.data import DataLoader, Dataset

    # pixel values chosen so the normalised value is known by hand: (v / 255 - 0.5) / 0.25
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).reshape(3, 1, 1, 1).expand(3, 1, 2, 2).contiguous()
    ds = ImageDataset(images, torch.tensor([2, 0, 1]), 3, mean=0.5, std=0.25)
    assert isinstance(ds, Dataset) and len(ds) == 3
    x, y = ds[1]
    assert x.shape == (3, 2, 2) and x.dtype == torch.float32 and type(y) is int and y == 0
    assert torch.allclose(x, torch.full((3, 2, 2), (51 / 255 - 0.5) / 0.25))
    assert ds[-1][1] == 1 and torch.allclose(ds[-1][0], torch.full((3, 2, 2), 2.0))
    with pytest.raises(IndexError):
        ds[3]
    # a DataLoader batch equals the dataset's own fast batch
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    fx, fy = ds.batch([0, 1, 2])
    assert torch.equal(xb, fx) and torch.equal(yb, fy)
