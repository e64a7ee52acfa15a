"""Everything that can be wrong with a run, found before anything is written.

Four checks run after the overrides are applied and before the run directory exists:

* the config as a whole (:func:`check_config`): what each dataclass cannot see alone -- the
  ViT geometry can be built, the images of the data set have the model's size, a local batch
  fits in the data a device holds, the token-map examples fit in the probe set, and one
  training step fits in the machine's memory;
* the work it asks for (:mod:`scenarios.work`): channel updates, training and evaluation
  samples under stated bounds, unless ``--force``;
* the files it names (:func:`check_files`): the data folder, a backbone checkpoint (it loads
  as plain tensors, nothing else), the backbone cache folder;
* the output location (:func:`check_output`): creatable and writable, not under a file, not
  in a kernel file system.

Each raises :class:`scenarios.overrides.ConfigError` with one line naming the key, the value
and what is allowed.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import torch

from scenarios.config import ScenarioConfig
from scenarios.overrides import ConfigError

#: Side in pixels of the images of the built-in data sets (Fashion-MNIST is padded to 32).
BUILTIN_IMAGE_SIZE = 32
#: Kernel file systems: a run directory there is always a mistake.
FORBIDDEN_ROOTS = (Path("/sys"), Path("/proc"), Path("/dev"))
#: Share of the available memory one training step may claim.
MEMORY_SHARE = 0.8


def check_all(cfg: ScenarioConfig, out: Path | None, force: bool = False) -> None:
    """:func:`check_config`, the work bound (:func:`scenarios.work.check_work`, skipped with
    ``force``), :func:`check_files` and (if given) :func:`check_output`."""
    from scenarios.work import check_work

    check_config(cfg)
    if not force:
        check_work(cfg)
    check_files(cfg)
    if out is not None:
        check_output(out)


# ---------------------------------------------------------------------------------------- config
def vit_geometry(cfg: ScenarioConfig) -> dict:
    """The effective ``depth, embed_dim, num_heads, tokens`` of ``cfg.model`` (timm defaults
    filled in), found by building the ViT on the meta device (no memory, no weights).

    Raises:
        ConfigError: timm cannot build that geometry.
    """
    import timm

    m = cfg.model
    shown = (f"model.img_size={m.img_size}, model.patch_size={m.patch_size}, "
             f"model.embed_dim={m.embed_dim}, model.num_heads={m.num_heads}, model.depth={m.depth}")
    try:
        with torch.device("meta"):
            model = timm.create_model(m.model_name, pretrained=False, **m.backbone_kwargs())
        depth, dim = len(model.blocks), int(model.embed_dim)
        heads = int(model.blocks[0].attn.num_heads) if depth else 1
    except Exception as exc:  # timm asserts, TypeErrors, ValueErrors: all mean "cannot build"
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{shown}: the ViT cannot be built ({why}); embed_dim must be a "
                          f"multiple of num_heads and patch_size must divide img_size") from None
    if dim % heads:
        raise ConfigError(f"{shown}: num_heads={heads} must divide embed_dim={dim}")
    if m.cut > depth:
        raise ConfigError(f"model.cut={m.cut}: must be in [0, depth={depth}]")
    return {"depth": depth, "embed_dim": dim, "num_heads": heads, "tokens": m.num_patches + 1}


def step_memory_bytes(cfg: ScenarioConfig, geometry: dict) -> int:
    """Memory of one local training step, bytes (an upper estimate).

    Activations kept for the backward pass of every block, in float32: per block
    ``B T (34 D + 5 H T)`` values of 2 bytes in 16-bit training (Korthikanti et al., "Reducing
    Activation Recomputation in Large Transformer Models", 2022, Sec. 4.1), doubled for 32-bit;
    plus the weights with gradients and two optimiser moments (4 copies of float32).
    """
    b, t = cfg.learner.batch_size, geometry["tokens"]
    d, h, depth = geometry["embed_dim"], geometry["num_heads"], geometry["depth"]
    activations = depth * b * t * (34 * d + 5 * h * t) * 2 * 2
    weights = 4 * 4 * depth * 12 * d * d
    return int(activations + weights)


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_config(cfg: ScenarioConfig) -> None:
    """Cross-field constraints of a resolved config (each field was checked by its class)."""
    geometry = vit_geometry(cfg)
    if cfg.dataset == "fashion-scenes":
        try:
            cfg.scenes.check_fits()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if cfg.model.img_size != cfg.scenes.output_px:
            raise ConfigError(f"model.img_size={cfg.model.img_size}: the scenes are {cfg.scenes.output_px} px "
                              f"(scenes.output_px); set both to the same value")
    elif cfg.dataset != "imagefolder" and cfg.model.img_size != BUILTIN_IMAGE_SIZE:
        raise ConfigError(f"model.img_size={cfg.model.img_size}: the {cfg.dataset} images are "
                          f"{BUILTIN_IMAGE_SIZE}x{BUILTIN_IMAGE_SIZE}; use {BUILTIN_IMAGE_SIZE} "
                          f"(or dataset=imagefolder, which resizes)")
    if cfg.learner.batch_size > cfg.train_samples_per_device:
        raise ConfigError(f"learner.batch_size={cfg.learner.batch_size}: must be <= "
                          f"train_samples_per_device={cfg.train_samples_per_device}, the most a device holds")
    if cfg.token_maps > cfg.learner.probe_samples:
        raise ConfigError(f"token_maps={cfg.token_maps}: must be <= learner.probe_samples="
                          f"{cfg.learner.probe_samples} (the examples come from the probe set)")
    if cfg.pretrain.checkpoint is not None and cfg.pretrain.source != "file":
        raise ConfigError(f"pretrain.checkpoint={cfg.pretrain.checkpoint}: is read only with "
                          f"pretrain.source=file, got pretrain.source={cfg.pretrain.source}")
    if cfg.learner.eval_tokens is not None and cfg.learner.eval_tokens > cfg.model.num_patches:
        raise ConfigError(f"learner.eval_tokens={cfg.learner.eval_tokens}: must be <= the "
                          f"{cfg.model.num_patches} patch tokens of an image (or None: all)")
    from learning.recipes import SHIPPED

    if cfg.pretrain.recipe not in SHIPPED:
        raise ConfigError(f"pretrain.recipe={cfg.pretrain.recipe}: must name a shipped backbone, one of "
                          f"{', '.join(sorted(SHIPPED))}")
    if cfg.pretrain.source == "own" and cfg.pretrain.batch_size > cfg.pretrain.public_samples:
        raise ConfigError(f"pretrain.batch_size={cfg.pretrain.batch_size}: must be <= "
                          f"pretrain.public_samples={cfg.pretrain.public_samples}")
    from scenarios.policies import policy_class

    # The chosen policy's parameters (the only group a config holds) against the model.
    try:
        policy_class(cfg.policy).check_config(cfg, geometry["depth"])
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(" ".join(str(exc).split())) from None
    if cfg.cache_dir is not None and Path(cfg.cache_dir).exists() and not Path(cfg.cache_dir).is_dir():
        raise ConfigError(f"cache_dir={cfg.cache_dir}: exists and is not a folder")
    need = step_memory_bytes(cfg, geometry)
    have = available_memory_bytes()
    if have is not None and need > MEMORY_SHARE * have:
        raise ConfigError(f"learner.batch_size={cfg.learner.batch_size}: one training step needs about "
                          f"{need / 2**30:.1f} GiB, more than {MEMORY_SHARE:.0%} of the "
                          f"{have / 2**30:.1f} GiB available; use a smaller batch or model")


# ----------------------------------------------------------------------------------------- files
def check_state_dict_file(path: Path, key: str) -> None:
    """A backbone file: readable, a torch file of tensors only (never unpickles objects).

    Raises:
        ConfigError: missing, unreadable, not a torch file, or holding anything but tensors.
    """
    if not path.is_file():
        raise ConfigError(f"{key}={path}: not an existing file")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{key}={path}: not readable")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, a pickled object: refuse them all
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ConfigError(f"{key}={path}: not a torch state dict of tensors ({type(exc).__name__}: {why}); "
                          f"save one with torch.save(model.state_dict(), FILE)") from None
    state = state.get("state", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{key}={path}: holds no state dict of tensors; "
                          f"save one with torch.save(model.state_dict(), FILE)")


def check_folder_usable(path: Path, key: str) -> None:
    """A folder that is used or created: an existing writable folder, or creatable."""
    path = Path(os.path.abspath(path))
    _refuse_kernel_fs(path, f"{key}=")
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{key}={path}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}={path}: folder is not writable")
        return
    parent = _existing_ancestor(path)
    if not parent.is_dir():
        raise ConfigError(f"{key}={path}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: cannot be created, {parent} is not writable")


def check_files(cfg: ScenarioConfig) -> None:
    """The files and folders ``cfg`` names exist and have the right kind."""
    if cfg.data_root is not None and not Path(cfg.data_root).is_dir():
        raise ConfigError(f"data_root={cfg.data_root}: not an existing folder")
    if cfg.pretrain.source == "file":
        check_state_dict_file(Path(cfg.pretrain.checkpoint), "pretrain.checkpoint")
    if cfg.pretrain.source == "own":
        if cfg.cache_dir is not None:
            check_folder_usable(Path(cfg.cache_dir), "cache_dir")
        else:
            from learning.pretrain import default_cache_dir

            key = "SFLSIM_CACHE" if os.environ.get("SFLSIM_CACHE") else "cache folder"
            check_folder_usable(default_cache_dir(), key)


# ---------------------------------------------------------------------------------------- output
def _existing_ancestor(path: Path) -> Path:
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _refuse_kernel_fs(path: Path, label: str) -> None:
    resolved = Path(os.path.realpath(path))
    for root in FORBIDDEN_ROOTS:
        if resolved == root or root in resolved.parents:
            raise ConfigError(f"{label}{path}: {root} is a kernel file system, not a place for files")


def check_path_text(path: Path, key: str) -> None:
    """A path the run can write and print: UTF-8 text, each name and the whole within the
    file system's limits (``NAME_MAX``, ``PATH_MAX``; 255 and 4096 bytes on Linux).

    Raises:
        ConfigError: a name that is not UTF-8 (bytes the terminal passed through), or too long.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{key} {text.encode('utf-8', 'surrogateescape')!r}: not valid UTF-8 text; "
                          f"use a name in UTF-8") from None
    full = os.fsencode(os.path.abspath(path))
    try:  # asked of the current folder: the path itself may be too long to ask about
        name_max = int(os.pathconf(".", "PC_NAME_MAX"))
        path_max = int(os.pathconf(".", "PC_PATH_MAX"))
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    longest = max((len(os.fsencode(p)) for p in Path(os.path.abspath(path)).parts), default=0)
    if longest > name_max:
        raise ConfigError(f"{key} {text[:60]}...: a folder name of {longest} bytes, more than the "
                          f"{name_max} the file system allows")
    if len(full) >= path_max:
        raise ConfigError(f"{key} {text[:60]}...: {len(full)} bytes, more than the {path_max} a path may have")


def check_output(out: Path, key: str = "--out") -> None:
    """``out`` is an existing folder or can be created, and is writable.

    Raises:
        ConfigError: under a file, in /sys, /proc or /dev, or not writable.
    """
    check_path_text(out, key)
    out = Path(os.path.abspath(out))
    _refuse_kernel_fs(out, f"{key} ")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{key} {out} exists and is not a directory")
    parent = _existing_ancestor(out)
    if not parent.is_dir():
        raise ConfigError(f"{key} {out}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key} {out}: cannot be created or written, {parent} is not writable")


# ----------------------------------------------------------------------------------------- cache
def cache_hash_path(path: Path) -> Path:
    """``backbone-KEY.pt`` -> ``backbone-KEY.pt.sha256`` (the entry's content hash)."""
    return Path(path).with_name(Path(path).name + ".sha256")


def hashing_saver(save: Callable[[Path, bytes], None]) -> Callable[[Path, bytes], None]:
    """``save(path, data)`` that first writes the SHA-256 of ``data`` beside ``path``.

    The hash goes first: a process killed between the two writes leaves a hash without an
    entry (no entry: pretrained again), never an entry with a stale hash.
    """
    def save_with_hash(path: Path, data: bytes) -> None:
        from analysis.files import atomic_write_text

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_hash_path(path), hashlib.sha256(data).hexdigest() + "\n")
        save(path, data)

    return save_with_hash


def remove_damaged_cache_file(path: Path) -> str | None:
    """Remove a backbone cache entry whose bytes do not match its hash or do not load.

    A cache entry can always be made again (it is keyed by content), so a truncated or
    corrupted one is removed and rebuilt rather than refused. The SHA-256 written beside the
    entry finds any change of its bytes (torch checks no checksum when it loads a file); an
    entry without one (from an older version) must at least load as a state dict of tensors.

    Returns:
        A one-line message saying what was removed and why, or None if the entry is fine or absent.
    """
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        raise ConfigError(f"backbone cache entry {path} is a folder; remove it")
    try:
        digest = cache_hash_path(path)
        if digest.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest.read_text().strip():
                raise ValueError("content hash mismatch")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob["state"]
        if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("no tensors")
        return None
    except Exception as exc:  # any failure: the entry is unusable
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        path.unlink()
        cache_hash_path(path).unlink(missing_ok=True)
        return f"backbone: cache file {path} was damaged ({why}); removed, pretraining again"
