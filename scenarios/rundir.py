"""The run directory: atomic writes, per-round table parts, and a checkpoint that runs no code.

A finished run directory holds ``config.json``, ``events.parquet``, ``rounds.parquet``,
``decisions.parquet``, ``channel.parquet``, ``token_maps.npz`` and ``checkpoint.safetensors``
(format in ``docs/interfaces.md``). While it runs, each round appends its rows of each table as
a new part, ``<table>.parts/part-<round>.parquet`` (a folder ``pd.read_parquet`` reads as one
table), so a round costs the same at round 200 as at round 2; when the last round is done the
parts are joined once into ``<table>.parquet`` and removed.

Every file is written to a temporary file in the same directory, flushed to disk and renamed
over the old one (:func:`analysis.files.atomic_write_bytes`), so whatever moment the process
dies a reader sees the old file or the new one, never half of one.

The checkpoint is a safetensors file: the arrays and tensors as tensors, everything else
(numbers, RNG states, round index) as JSON in its metadata, and a SHA-256 of both checked on
load. Nothing in it is unpickled, so a checkpoint from someone else cannot run code; a damaged
one is refused whole (:class:`DamagedFileError`), never half-loaded.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import safetensors.torch
import torch

from analysis.files import NotRegularFileError, atomic_write_bytes, read_regular_bytes

CONFIG = "config.json"
EVENTS = "events.parquet"
ROUNDS = "rounds.parquet"
DECISIONS = "decisions.parquet"
CHANNEL = "channel.parquet"
TOKEN_MAPS = "token_maps.npz"
CHECKPOINT = "checkpoint.safetensors"
#: The pickled checkpoint of earlier versions: never loaded (it could run code).
OLD_CHECKPOINT = "checkpoint.pt"
PARTS_SUFFIX = ".parts"
CHECKPOINT_FORMAT = "sflsim-checkpoint-1"


class DamagedFileError(ValueError):
    """A file of a run directory (or a cache) is truncated, corrupted or of the wrong kind."""


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for the same content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode())


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as Parquet bytes (zstd); same table and library versions -> same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame, schema: pa.Schema | None = None) -> None:
    """Write a DataFrame as Parquet atomically (with ``schema`` if given: typed even when empty)."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    atomic_write_bytes(path, parquet_bytes(table))


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays as an uncompressed ``.npz`` atomically."""
    sink = io.BytesIO()
    np.savez(sink, **arrays)
    atomic_write_bytes(path, sink.getvalue())


# ------------------------------------------------------------------------------------ table parts
def parts_dir(out: Path, table: str) -> Path:
    """``out/rounds.parquet`` -> ``out/rounds.parquet.parts``."""
    return Path(out) / f"{table}{PARTS_SUFFIX}"


def part_path(out: Path, table: str, r: int) -> Path:
    return parts_dir(out, table) / f"part-{r:06d}.parquet"


def write_part(out: Path, table: str, r: int, frame: pd.DataFrame, schema: pa.Schema) -> str:
    """Write round ``r``'s rows of ``table`` as its own part; returns the part's SHA-256."""
    folder = parts_dir(out, table)
    folder.mkdir(exist_ok=True)
    data = parquet_bytes(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    atomic_write_bytes(part_path(out, table, r), data)
    return hashlib.sha256(data).hexdigest()


def chain(previous: str, part_sha256: str) -> str:
    """The running hash of a table's parts: ``sha256(previous + part)``, hex."""
    return hashlib.sha256((previous + part_sha256).encode()).hexdigest()


def _parts(out: Path, table: str) -> list[Path]:
    folder = parts_dir(out, table)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def verified_parts(out: Path, table: str, rounds: int, expected_chain: str) -> list[bytes]:
    """The bytes of parts 0..``rounds`` of ``table``, checked against the checkpoint's chain hash.

    Raises:
        DamagedFileError: a part is missing or its bytes differ from what was written.
    """
    blobs, h = [], ""
    for r in range(rounds + 1):
        path = part_path(out, table, r)
        try:
            data = read_regular_bytes(path)
        except (OSError, NotRegularFileError):
            raise DamagedFileError(f"{path} is missing; the run directory is damaged: "
                                   f"delete {out} and run again (same seed, same result)") from None
        h = chain(h, hashlib.sha256(data).hexdigest())
        blobs.append(data)
    if h != expected_chain:
        raise DamagedFileError(f"{parts_dir(out, table)}: the parts differ from what the run wrote "
                               f"(content hash mismatch); delete {out} and run again (same seed, same result)")
    return blobs


def drop_parts_after(out: Path, table: str, r: int) -> None:
    """Remove parts of rounds after ``r`` (written by a run killed before its checkpoint)."""
    for path in _parts(out, table):
        if int(path.stem.split("-")[1]) > r:
            path.unlink()


def write_joined(out: Path, table: str, blobs: Iterable[bytes]) -> bytes:
    """Write the parts (already verified) as the one file ``out/table``; returns its bytes."""
    tables = [pq.read_table(io.BytesIO(b)) for b in blobs]
    data = parquet_bytes(pa.concat_tables(tables))
    atomic_write_bytes(Path(out) / table, data)
    return data


def join_parts(out: Path, table: str, blobs: Iterable[bytes]) -> None:
    """Write the parts (already verified) as the one file ``out/table``, then remove them."""
    write_joined(out, table, blobs)
    remove_parts(out, table)


def remove_parts(out: Path, table: str) -> None:
    folder = parts_dir(out, table)
    for path in _parts(out, table):
        path.unlink()
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink()
        folder.rmdir()


# ------------------------------------------------------------------------------------- checkpoint
def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON with every array or tensor moved to ``tensors`` (types kept exactly)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        t = obj.detach().cpu()
        # safetensors has no complex dtypes: store [..., 2] real and imaginary parts (exact).
        tensors[key] = (torch.view_as_real(t) if t.is_complex() else t).clone().contiguous()
        return {"__tensor__": key, "complex": bool(t.is_complex())}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("a checkpoint cannot hold an object array")
        key = f"t{len(tensors)}"
        a = np.stack([obj.real, obj.imag], axis=-1) if np.iscomplexobj(obj) else obj
        tensors[key] = torch.from_numpy(np.array(a, copy=True, order="C"))
        return {"__ndarray__": key, "complex": obj.dtype.str if np.iscomplexobj(obj) else None}
    if isinstance(obj, np.generic):
        return {"__npscalar__": obj.dtype.str, "v": _encode(np.asarray(obj), tensors)}
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else {"__float__": repr(float(obj))}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"a checkpoint cannot hold a {type(obj).__name__}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        t = tensors[obj["__tensor__"]]
        return torch.view_as_complex(t) if obj.get("complex") else t
    if "__ndarray__" in obj:
        a = tensors[obj["__ndarray__"]].numpy()
        if obj.get("complex"):
            parts, a = a, np.empty(a.shape[:-1], dtype=obj["complex"])
            a.real, a.imag = parts[..., 0], parts[..., 1]
        return a
    if "__npscalar__" in obj:
        return _decode(obj["v"], tensors)[()]
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    raise ValueError(f"unknown checkpoint entry {sorted(obj)}")


def _digest(state_json: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(state_json.encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


_META_KEY = "sflsim_checkpoint"


def checkpoint_bytes(state: dict) -> bytes:
    """The bytes of a checkpoint file of ``state`` (nested dicts, lists, tuples, numbers,
    text, numpy arrays and scalars, torch tensors)."""
    tensors: dict[str, torch.Tensor] = {}
    state_json = json.dumps(_encode(state, tensors), sort_keys=True, allow_nan=False)
    meta = {"format": CHECKPOINT_FORMAT, "state": state_json, "sha256": _digest(state_json, tensors)}
    # One metadata key: safetensors writes several keys in an order that varies between
    # processes (a hash map), which would make equal checkpoints differ in their bytes.
    return safetensors.torch.save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write a checkpoint atomically."""
    atomic_write_bytes(path, checkpoint_bytes(state))


def _header(data: bytes) -> dict:
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"header of {n} bytes in a file of {len(data)}")
    return json.loads(data[8:8 + n])


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, checking its content hash.

    Raises:
        DamagedFileError: truncated, corrupted, or not such a checkpoint (nothing is loaded).
    """
    path = Path(path)
    advice = (f"it was not loaded; delete {path.parent} and run again (same seed, same result), "
              f"or restore the file")
    try:
        data = read_regular_bytes(path)  # a named pipe is refused, never waited on
        meta = json.loads((_header(data).get("__metadata__") or {}).get(_META_KEY, "{}"))
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        tensors = safetensors.torch.load(data)
        if _digest(meta["state"], tensors) != meta["sha256"]:
            raise ValueError("content hash mismatch")
        return _decode(json.loads(meta["state"]), tensors)
    except NotRegularFileError as exc:
        raise DamagedFileError(f"{exc}; {advice}") from None
    except Exception as exc:  # any failure means the file is not what we wrote
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DamagedFileError(f"{path} is damaged or not an sflsim checkpoint ({why}); {advice}") from None
