"""The run directory: atomic writes of every file a run leaves behind.

A run directory holds ``config.json``, ``events.parquet``, ``rounds.parquet``,
``decisions.parquet``, ``channel.parquet``, ``token_maps.npz`` and ``checkpoint.pt``
(format in ``docs/interfaces.md``). Every file is written to a temporary file in the same
directory, flushed to disk and renamed over the old one, so a reader (or a resumed run)
sees either the old or the new file, never half of one, whatever moment the process dies
(:func:`analysis.files.atomic_write_bytes`).
"""
from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from analysis.files import atomic_write_bytes

CONFIG = "config.json"
EVENTS = "events.parquet"
ROUNDS = "rounds.parquet"
DECISIONS = "decisions.parquet"
CHANNEL = "channel.parquet"
TOKEN_MAPS = "token_maps.npz"
CHECKPOINT = "checkpoint.pt"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for the same content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode())


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a DataFrame as Parquet atomically; same frame and library versions -> same bytes."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays as an uncompressed ``.npz`` atomically."""
    sink = io.BytesIO()
    np.savez(sink, **arrays)
    atomic_write_bytes(path, sink.getvalue())


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` a checkpoint dict atomically."""
    sink = io.BytesIO()
    torch.save(state, sink)
    atomic_write_bytes(path, sink.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    ``weights_only=False`` because the checkpoint holds numpy RNG states and trace rows written
    by this package itself; never point it at a file from an untrusted source.
    """
    return torch.load(path, map_location="cpu", weights_only=False)
