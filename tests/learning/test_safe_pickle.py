"""Finding 1 of issue 24: a CIFAR folder must not run code. The official layout is written here
the way the Toronto files were made (Python 2 ``cPickle``, protocol 2: SHORT_BINSTRING keys,
numpy's ``_reconstruct`` with a ``dtype('u1')`` state and the raw bytes as a BINSTRING), with
the opcodes of the pickle specification (``pickletools``), not with this Python's pickler."""
from __future__ import annotations

import builtins
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from learning.data import load_dataset
from learning.safe_pickle import UnsafePickleError, load_cifar_batch


def _str(b: bytes) -> bytes:  # Python 2 str: SHORT_BINSTRING / BINSTRING
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _int(i: int) -> bytes:
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    return b"J" + struct.pack("<i", i)


def _py2_uint8_array(a: np.ndarray) -> bytes:
    """numpy 1.x under Python 2, protocol 2: _reconstruct(ndarray, (0,), 'b') then BUILD with
    (1, shape, dtype('u1') with its state (3, '|', None, None, None, -1, -1, 0), False, raw)."""
    assert a.dtype == np.uint8 and a.ndim == 2
    dtype = (b"cnumpy\ndtype\n" + _str(b"u1") + _int(0) + _int(1) + b"\x87R"
             + b"(" + _int(3) + _str(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + _int(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _int(0) + b"\x85"
            + _str(b"b") + b"\x87R"
            + b"(" + _int(1) + _int(a.shape[0]) + _int(a.shape[1]) + b"\x86" + dtype + b"\x89"
            + _str(a.tobytes()) + b"tb")


def official_batch(data: np.ndarray, labels: list[int], label_key: bytes = b"labels") -> bytes:
    """A batch file as the official CIFAR-10 ``data_batch_N`` holds it."""
    names = [f"img_{i}.png".encode() for i in range(len(labels))]
    return (b"\x80\x02}(" + _str(b"data") + _py2_uint8_array(data)
            + _str(b"labels" if label_key == b"labels" else label_key)
            + b"](" + b"".join(_int(v) for v in labels) + b"e"
            + _str(b"batch_label") + _str(b"training batch 1 of 5")
            + _str(b"filenames") + b"](" + b"".join(_str(n) for n in names) + b"e"
            + b"u.")


def _write_official_cifar10(root: Path, n: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    entries = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        (folder / name).write_bytes(official_batch(data, labels))
        entries[name] = (data, labels)
    return entries


def test_official_layout_loads_the_same_as_plain_pickle(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(official_batch(data, [3, 1, 4, 1, 5]))
    ours = load_cifar_batch(path)
    plain = pickle.loads(path.read_bytes(), encoding="bytes")  # the unrestricted reader agrees
    assert set(ours) == set(plain) == {b"data", b"labels", b"batch_label", b"filenames"}
    np.testing.assert_array_equal(ours[b"data"], data)
    np.testing.assert_array_equal(ours[b"data"], plain[b"data"])
    assert ours[b"data"].dtype == np.uint8 and ours[b"labels"] == [3, 1, 4, 1, 5] == plain[b"labels"]
    assert ours[b"filenames"][2] == b"img_2.png" and ours[b"batch_label"] == b"training batch 1 of 5"


def test_official_layout_loads_as_a_dataset(tmp_path):
    entries = _write_official_cifar10(tmp_path)
    train, test = load_dataset("cifar10", root=tmp_path)
    assert len(train) == 20 and len(test) == 4
    row = entries["data_batch_3"][0][2]
    np.testing.assert_array_equal(train.images[10, 2].numpy(), row[2048:].reshape(32, 32))
    assert int(test.labels[1]) == entries["test_batch"][1][1]


class _OpenFile:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


class _System:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_batches(marker: Path) -> dict[str, bytes]:
    data = np.zeros((2, 3072), dtype=np.uint8)
    return {
        "open() as a label list": pickle.dumps({b"data": data, b"labels": _OpenFile(marker)}),
        "os.system in a dict": pickle.dumps({b"data": data, b"labels": [0, 1], b"x": _System(marker)}),
        "object array": pickle.dumps({b"data": np.array([_OpenFile(marker)], dtype=object), b"labels": [0]}),
    }


@pytest.mark.parametrize("case", ["open() as a label list", "os.system in a dict", "object array"])
def test_finding_1_hostile_cifar_batch_runs_no_code(tmp_path, case):
    marker = tmp_path / "marker"
    path = tmp_path / "data_batch_1"
    path.write_bytes(_hostile_batches(marker)[case])
    pickle.loads(path.read_bytes())  # the plain pickle module does run it: the case is real
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafePickleError) as info:
        load_cifar_batch(path)
    assert not marker.exists()
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "refused" in msg


def test_finding_1_hostile_cifar_folder_is_refused_by_load_dataset(tmp_path):
    _write_official_cifar10(tmp_path)
    marker = tmp_path / "marker"
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_4"
    bad.write_bytes(_hostile_batches(marker)["os.system in a dict"])
    with pytest.raises(ValueError, match=r"data_batch_4 was refused, not loaded: it asks for posix\.system"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()


def test_a_named_pipe_as_a_batch_is_refused_at_once(tmp_path):
    path = tmp_path / "data_batch_1"
    os.mkfifo(path)
    with pytest.raises(UnsafePickleError, match="is not a regular file"):
        load_cifar_batch(path)


def test_a_truncated_batch_is_one_line(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(official_batch(np.zeros((2, 3072), np.uint8), [0, 1])[:500])
    with pytest.raises(UnsafePickleError, match="is not a CIFAR python batch"):
        load_cifar_batch(path)


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("mkfifo and os.system paths are POSIX")
