"""Image data sets held compactly in memory, and their partition over devices.

Images are stored as ``uint8`` tensors ``[N, C, H, W]`` (``C`` is 1 for grey sets, 3 for
colour) and converted to normalised float ``[B, 3, H, W]`` one batch at a time, so the whole
Fashion-MNIST training set takes 61 MB instead of 740 MB. The sets are
``torch.utils.data.Dataset``s: ``ds[i]`` is ``(float [3, H, W], int label)`` and they work
with ``DataLoader``; :meth:`ImageDataset.batch` gathers a whole batch in one indexing
operation, which is what the learner uses (one call instead of ``B`` calls and a collate).

Sources:
    Fashion-MNIST idx format: http://yann.lecun.com/exdb/mnist/ (the "IDX file format"
    section), used unchanged by https://github.com/zalandoresearch/fashion-mnist.
    CIFAR python archives: https://www.cs.toronto.edu/~kriz/cifar.html ("Dataset layout").
    The partition of the training set over devices is :mod:`learning.partition`.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from learning.safe_pickle import load_cifar_batch

if TYPE_CHECKING:
    from learning.scenes import SceneConfig

DATASETS = ("fashion-mnist", "fashion-scenes", "cifar10", "cifar100", "imagefolder")

#: Where Debian's ``dataset-fashion-mnist`` package puts the four ``*-ubyte.gz`` files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# idx type codes -> numpy dtype (big-endian where it matters), from the idx format description.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True, eq=False)
class ImageDataset(Dataset):
    """A labelled image set kept as ``uint8`` in memory; a map-style torch ``Dataset``.

    ``ds[i]`` gives ``(float32 [3, H, W], int)``, normalised as :meth:`batch` does.

    Attributes:
        images: ``uint8 [N, C, H, W]``, ``C`` in {1, 3}; grey images are repeated to three
            channels only when a batch is made.
        labels: ``int64 [N]`` class indices in ``[0, num_classes)``.
        num_classes: number of classes.
        mean: per-channel mean of ``images / 255`` used to normalise batches.
        std: per-channel standard deviation of ``images / 255``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: float = 0.5
    std: float = 0.5

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.images.shape[1] not in (1, 3):
            raise ValueError(f"images channels must be 1 or 3, got {self.images.shape[1]!r}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )
        if self.num_classes <= 0:
            raise ValueError(f"num_classes must be > 0, got {self.num_classes!r}")
        if self.std <= 0:
            raise ValueError(f"std must be > 0, got {self.std!r}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """One normalised image ``float32 [3, H, W]`` and its label (negative indices count from the end)."""
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index must be in [-{n}, {n}), got {index!r}")
        i %= n
        x, y = self.batch([i])
        return x[0], int(y[0])

    @property
    def image_size(self) -> int:
        """Side of the (square) images, pixels."""
        return int(self.images.shape[-1])

    def batch(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images and labels of the given samples.

        Args:
            index: sample indices, ``[B]``.

        Returns:
            ``(images float32 [B, 3, H, W], labels int64 [B])``.
        """
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        x = self.images[index].float().div_(255.0).sub_(self.mean).div_(self.std)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()
        return x, self.labels[index]

    def rgb_uint8(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
        """The raw images of the given samples for display, ``uint8 [B, H, W, 3]``."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        x = self.images[index]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.permute(0, 2, 3, 1).contiguous().numpy()

    def subset(self, index: np.ndarray | Sequence[int]) -> "ImageDataset":
        """The samples at ``index`` (copied), with this set's normalisation constants."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageDataset(
            self.images[index].clone(), self.labels[index].clone(), self.num_classes, self.mean, self.std
        )


def _stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of ``images / 255`` over all pixels and channels."""
    x = images.float().div_(255.0)
    return float(x.mean()), float(x.std())


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one (optionally gzip-compressed) idx file.

    Args:
        path: the file; ``.gz`` files are decompressed.

    Returns:
        The array with the dimensions stored in the header, e.g. ``uint8 [60000, 28, 28]``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # truncated or not gzip at all
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"path {str(path)!r} is damaged, not a readable .gz idx file ({why})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path is not an idx file (bad magic number): {str(path)!r}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"path {str(path)!r}: idx header of {ndim} dimensions is cut short")
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    if (dims < 0).any():
        raise ValueError(f"path {str(path)!r}: idx header has negative sizes {dims.tolist()}")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(
            f"path {str(path)!r}: header promises {count} values of {dtype}, file holds "
            f"{(len(raw) - offset) // dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


def _fmnist_dir(candidates: Sequence[Path]) -> Path | None:
    for base in candidates:
        for d in (base, base / "fashion-mnist", base / "FashionMNIST" / "raw"):
            if all((d / f).is_file() for pair in _FMNIST_FILES.values() for f in pair):
                return d
    return None


def _fmnist_raw(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's items ``uint8 [N, 28, 28]`` and labels ``int64 [N]``, as stored."""
    img_file, lab_file = _FMNIST_FILES[split]
    images = read_idx(folder / img_file)
    labels = read_idx(folder / lab_file)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"fashion-mnist files in {str(folder)!r} have inconsistent shapes")
    return images, labels.astype(np.int64)


def _fmnist_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _fmnist_raw(folder, split)
    # [N, 28, 28] -> [N, 1, 32, 32]: pad 2 pixels of background on each side, as LeNet did for MNIST
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))[:, None]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def _load_fashion_scenes(root: Path | None, download: bool, scenes: "SceneConfig") -> tuple[ImageDataset, ImageDataset]:
    """Cluttered scenes (:mod:`learning.scenes`) around every Fashion-MNIST item, in the items' order."""
    from learning.scenes import make_scenes

    folder = _fmnist_folder(root, download, "fashion-scenes")
    sets = []
    for split in ("train", "test"):
        items, labels = _fmnist_raw(folder, split)
        images, _ = make_scenes(items, scenes, split)
        sets.append((torch.from_numpy(images), torch.from_numpy(labels)))
    mean, std = _stats(sets[0][0])
    return ImageDataset(*sets[0], 10, mean, std), ImageDataset(*sets[1], 10, mean, std)


def _fmnist_folder(root: Path | None, download: bool, name: str = "fashion-mnist") -> Path:
    candidates = [p for p in (root, os.environ.get("SFLSIM_DATA")) if p]
    candidates = [Path(p) for p in candidates] + [DEBIAN_FASHION_MNIST]
    folder = _fmnist_dir(candidates)
    if folder is None and download:
        # torchvision stores the raw idx files under <cache>/data/FashionMNIST/raw
        cache = Path(os.environ.get("SFLSIM_CACHE", Path.home() / ".cache" / "sflsim")) / "data"
        try:
            import torchvision

            torchvision.datasets.FashionMNIST(str(cache), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(cache), train=False, download=True)
            folder = _fmnist_dir([cache])
        except Exception:  # no network, or the mirror is down: fall through to the error below
            folder = None
    if folder is None:
        raise ValueError(
            f"name={name!r}: data not found (searched root={str(root) if root else None!r}, "
            f"$SFLSIM_DATA={os.environ.get('SFLSIM_DATA')!r}, {str(DEBIAN_FASHION_MNIST)!r}"
            f"{', and torchvision download failed' if download else ''}). Install it with "
            "'sudo apt-get install dataset-fashion-mnist', or put the four *-ubyte.gz files in a "
            "folder and pass root=... or set SFLSIM_DATA."
        )
    return folder


def _load_fashion_mnist(root: Path | None, download: bool) -> tuple[ImageDataset, ImageDataset]:
    folder = _fmnist_folder(root, download)
    train_x, train_y = _fmnist_split(folder, "train")
    test_x, test_y = _fmnist_split(folder, "test")
    mean, std = _stats(train_x)
    return ImageDataset(train_x, train_y, 10, mean, std), ImageDataset(test_x, test_y, 10, mean, std)


def _read_cifar_batches(files: Sequence[Path], label_key: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for f in files:
        entry = load_cifar_batch(f)  # runs no code from the file (learning/safe_pickle.py)
        # each row is 1024 red, 1024 green, 1024 blue values, row-major 32x32
        images.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _load_cifar(name: str, root: Path | None) -> tuple[ImageDataset, ImageDataset]:
    # The archives are parsed directly (same layout torchvision reads) rather than through
    # torchvision.datasets.CIFAR10, whose md5 check rejects any file but the official one.
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    candidates = [Path(p) for p in (root, os.environ.get("SFLSIM_DATA")) if p]
    folder = next((d for b in candidates for d in (b / sub, b) if (d / ("test_batch" if name == "cifar10" else "test")).is_file()), None)
    if folder is None:
        raise ValueError(
            f"name={name!r}: data not found (searched root={str(root) if root else None!r} and "
            f"$SFLSIM_DATA={os.environ.get('SFLSIM_DATA')!r} for {sub}/). Download the python "
            "version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there."
        )
    if name == "cifar10":
        train = _read_cifar_batches([folder / f"data_batch_{i}" for i in range(1, 6)], b"labels")
        test = _read_cifar_batches([folder / "test_batch"], b"labels")
        num_classes = 10
    else:
        train = _read_cifar_batches([folder / "train"], b"fine_labels")
        test = _read_cifar_batches([folder / "test"], b"fine_labels")
        num_classes = 100
    mean, std = _stats(train[0])
    return ImageDataset(*train, num_classes, mean, std), ImageDataset(*test, num_classes, mean, std)


def _load_imagefolder(root: Path | None, image_size: int) -> tuple[ImageDataset, ImageDataset]:
    if root is None:
        raise ValueError("root=None: name='imagefolder' needs root, a folder with train/ and val/ (or test/)")
    root = Path(root)
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise ValueError(f"root={str(root)!r}: expected class folders under train/ and val/ (or test/)")
    from PIL import Image

    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"root={str(root)!r}: train/ holds no class folders")
    index = {c: i for i, c in enumerate(classes)}
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}

    def read(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for c in classes:
            folder = split_dir / c
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() in exts:
                    with Image.open(f) as im:
                        im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                        images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
                    labels.append(index[c])
        if not images:
            raise ValueError(f"root={str(root)!r}: no images under {split_dir.name}/")
        return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long)

    train, test = read(root / "train"), read(test_dir)
    mean, std = _stats(train[0])
    return ImageDataset(*train, len(classes), mean, std), ImageDataset(*test, len(classes), mean, std)


def load_dataset(
    name: str, root: str | os.PathLike | None = None, *, image_size: int = 32, download: bool = True,
    scenes: "SceneConfig | None" = None,
) -> tuple[ImageDataset, ImageDataset]:
    """Load a data set's training and test splits.

    ``fashion-mnist`` is looked for in ``root``, ``$SFLSIM_DATA``, the Debian package path
    :data:`DEBIAN_FASHION_MNIST`, and finally downloaded by torchvision into
    ``$SFLSIM_CACHE/data`` when ``download`` is true and a network is there (the one place
    where :mod:`learning` writes files, through torchvision). Its 28x28 grey images
    are padded to 32x32. ``fashion-scenes`` puts each of the same items on a cluttered canvas
    (:mod:`learning.scenes`, made in memory in a few seconds, a pure function of the layout
    seed). CIFAR sets are read from ``root`` or ``$SFLSIM_DATA``.

    Args:
        name: one of :data:`DATASETS`.
        root: folder holding the data (for ``imagefolder``: with ``train/`` and ``val/``).
        image_size: side in pixels that ``imagefolder`` images are resized to.
        download: allow torchvision to download Fashion-MNIST as a last resort.
        scenes: the scene construction of ``fashion-scenes`` (default :class:`SceneConfig()`).

    Returns:
        ``(train, test)``.

    Raises:
        ValueError: unknown ``name`` or data not found (the message says how to get it).
    """
    root = Path(root) if root is not None else None
    if name == "fashion-mnist":
        return _load_fashion_mnist(root, download)
    if name == "fashion-scenes":
        from learning.scenes import SceneConfig

        return _load_fashion_scenes(root, download, scenes if scenes is not None else SceneConfig())
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, root)
    if name == "imagefolder":
        return _load_imagefolder(root, image_size)
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
