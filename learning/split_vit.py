"""A timm Vision Transformer cut after block L into a device part and a server part, with LoRA.

The cut follows timm's own ``VisionTransformer.forward_features`` / ``forward_head`` so that
the two halves run exactly the layers an unsplit forward runs, in the same order:

* device part: ``patch_embed -> _pos_embed -> patch_drop -> norm_pre -> blocks[:L]``
* server part: ``blocks[L:] -> norm -> forward_head``

LoRA adapters are injected by peft (``inject_adapter_in_model``) into the named linear layers
of the server blocks, and of the device blocks too when the device part is trainable (SFL-V1
style); otherwise the device part is frozen and runs forward only (ST-SFLora).

Sources:
    Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022.
    timm ``timm/models/vision_transformer.py`` (forward_features / forward_head).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import timm
import torch
from peft import LoraConfig, inject_adapter_in_model
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from learning.stem import ConvStem
from learning.tokens import cls_attention

LORA_TARGETS = ("qkv", "proj", "fc1", "fc2")
STEMS = ("linear", "conv")


@dataclass(frozen=True)
class SplitViTConfig:
    """Geometry of the ViT, where it is cut, and its LoRA adapters.

    Attributes:
        model_name: a timm ViT (``timm.list_models("vit_*")``), e.g. ``vit_tiny_patch16_224``,
            ``vit_small_patch16_224``, ``vit_base_patch16_224``.
        img_size: input side, pixels.
        patch_size: patch side, pixels; ``(img_size / patch_size)**2`` patch tokens.
        depth: number of transformer blocks (timm's default for the name if ``None``).
        embed_dim: token width (timm's default for the name if ``None``; 192 for vit_tiny).
        num_heads: attention heads (timm's default for the name if ``None``; 3 for vit_tiny).
        num_classes: classifier outputs.
        cut: blocks on the device, in ``[0, depth]``.
        lora_rank: LoRA rank r; 0 gives no adapters at all, so only the head trains (the
            head-only baseline against which the adapters' contribution is measured).
        lora_alpha: LoRA scaling numerator (update scaled by ``lora_alpha / lora_rank``).
        lora_dropout: dropout on the LoRA input (0 keeps training deterministic without
            touching torch's global generator; see :mod:`learning.federated`).
        lora_targets: linear layers of each block that get adapters, from :data:`LORA_TARGETS`
            (``qkv`` and ``proj`` of attention, ``fc1`` and ``fc2`` of the MLP).
        device_trainable: give the device blocks their own LoRA (SFL-V1); ``False`` freezes
            the device part (ST-SFLora).
        head_trainable: train the classifier head (``head.weight``, ``head.bias``) alongside LoRA.
        fused_attention: use timm's fused ``scaled_dot_product_attention``; ``False`` (the
            default) selects timm's own explicit ``softmax(q k^T * scale) v`` path, which gives
            the same result and on CPU, at 65 tokens and head width 64, ran 1.3x (training)
            to 2.4x (inference) faster in our measurements with torch 2.14.
        stem: how images become tokens: ``linear`` (timm's patch embedding, one linear map
            per patch) or ``conv`` (:class:`learning.stem.ConvStem`, stride-2 3x3
            convolutions to the same token grid; ``patch_size`` must be a power of two).
    """

    model_name: str = field(default="vit_tiny_patch16_224", metadata={"help": "a timm ViT (timm.list_models('vit_*'))", "unit": ''})
    img_size: int = field(default=32, metadata={"help": 'input image side', "unit": 'px'})
    patch_size: int = field(default=4, metadata={"help": 'patch side; (img_size / patch_size)**2 patch tokens', "unit": 'px'})
    depth: int | None = field(default=6, metadata={"help": "transformer blocks (None: timm's default for the name)", "unit": 'blocks'})
    embed_dim: int | None = field(default=None, metadata={"help": "token width (None: timm's default, 192 for vit_tiny)", "unit": ''})
    num_heads: int | None = field(default=None, metadata={"help": "attention heads (None: timm's default, 3 for vit_tiny)", "unit": ''})
    num_classes: int = field(default=10, metadata={"help": 'classifier outputs', "unit": 'classes'})
    cut: int = field(default=2, metadata={"help": 'blocks on the device, in [0, depth]', "unit": 'blocks'})
    lora_rank: int = field(default=8, metadata={"help": 'LoRA rank r (0: no adapters, only the head trains)', "unit": ''})
    lora_alpha: float = field(default=16.0, metadata={"help": 'LoRA scaling numerator (update scaled by lora_alpha / lora_rank)', "unit": ''})
    lora_dropout: float = field(default=0.0, metadata={"help": 'dropout on the LoRA input', "unit": ''})
    lora_targets: tuple[str, ...] = field(default=("qkv",), metadata={"help": 'linear layers of each block with adapters: qkv, proj, fc1, fc2', "unit": ''})
    device_trainable: bool = field(default=False, metadata={"help": 'give the device blocks their own LoRA (SFL-V1); False freezes them', "unit": ''})
    head_trainable: bool = field(default=True, metadata={"help": 'train the classifier head alongside LoRA', "unit": ''})
    fused_attention: bool = field(default=False, metadata={"help": "timm's fused scaled_dot_product_attention (False: explicit softmax path)", "unit": ''})
    stem: str = field(default="linear", metadata={"help": "patch embedding: linear (timm's) or conv (a small convolutional stem)", "unit": ''})

    def __post_init__(self) -> None:
        if not self.model_name.startswith("vit_") or not timm.list_models(self.model_name):
            raise ValueError(f"model_name must be a timm ViT (timm.list_models('vit_*')), got {self.model_name!r}")
        for field in ("img_size", "patch_size", "num_classes"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)!r}")
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0 (0: no adapters), got {self.lora_rank!r}")
        if self.lora_rank == 0 and not self.head_trainable:
            raise ValueError("lora_rank=0 with head_trainable=False leaves nothing to train; give a rank > 0 "
                             "or train the head")
        if self.img_size % self.patch_size:
            raise ValueError(f"patch_size must divide img_size={self.img_size}, got {self.patch_size!r}")
        for field in ("depth", "embed_dim", "num_heads"):
            if getattr(self, field) is not None and getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0 or None, got {getattr(self, field)!r}")
        if self.embed_dim is not None and self.num_heads is not None and self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads must divide embed_dim={self.embed_dim}, got {self.num_heads!r}")
        if self.cut < 0 or (self.depth is not None and self.cut > self.depth):
            raise ValueError(f"cut must be in [0, depth={self.depth}], got {self.cut!r}")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(f"patch_size must be a power of two >= 2 with stem='conv', got {self.patch_size!r}")
        if not self.lora_targets or any(t not in LORA_TARGETS for t in self.lora_targets):
            raise ValueError(f"lora_targets must be a non-empty subset of {LORA_TARGETS}, got {self.lora_targets!r}")
        # Plausibility: beyond these a value is a typo, not a ViT this simulator can train.
        for name, high in (("img_size", 4096), ("num_classes", 1_000_000), ("lora_rank", 4096),
                           ("depth", 256), ("embed_dim", 16384), ("num_heads", 1024), ("lora_alpha", 1e6)):
            if getattr(self, name) is not None and not getattr(self, name) <= high:
                raise ValueError(f"{name} must be <= {high:g}, got {getattr(self, name)!r}")

    @property
    def grid_size(self) -> int:
        """Patches per side."""
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Patch tokens per image (CLS excluded): the largest token budget K_max."""
        return self.grid_size**2

    def backbone_kwargs(self) -> dict:
        """Keyword arguments of ``timm.create_model`` for this geometry (no LoRA, no cut)."""
        kw = dict(img_size=self.img_size, patch_size=self.patch_size, num_classes=self.num_classes)
        for field in ("depth", "embed_dim", "num_heads"):
            if getattr(self, field) is not None:
                kw[field] = getattr(self, field)
        if self.stem == "conv":
            kw["embed_layer"] = ConvStem
        return kw


def create_backbone(config: SplitViTConfig, seed: int) -> VisionTransformer:
    """The plain timm ViT of ``config`` with freshly initialised weights.

    timm initialises weights from torch's global generator; the draw is made inside
    ``torch.random.fork_rng`` from ``seed`` so the caller's global state is left untouched
    and the weights depend on ``seed`` only.

    Args:
        config: model geometry.
        seed: initialisation seed.

    Returns:
        The model, in train mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(config.model_name, pretrained=False, **config.backbone_kwargs())
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"model_name must name a timm VisionTransformer, got {config.model_name!r}")
    if config.cut > len(model.blocks):
        raise ValueError(f"cut must be in [0, depth={len(model.blocks)}], got {config.cut!r}")
    return model


class SplitViT(nn.Module):
    """A timm ViT with LoRA, run either whole or as device part + server part.

    Args:
        config: geometry, cut and LoRA settings.
        seed: initialisation seed (weights not in ``backbone_state`` and the LoRA ``A`` matrices).
        backbone_state: weights of the plain timm model (e.g. from
            :func:`learning.pretrain.pretrained_backbone`); a head of another shape is
            re-initialised.
        lora_everywhere: put LoRA in every block regardless of ``config.device_trainable``
            (the whole-model variants fed-lora and local-lora).
    """

    def __init__(
        self,
        config: SplitViTConfig,
        seed: int,
        backbone_state: dict[str, torch.Tensor] | None = None,
        lora_everywhere: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        vit = create_backbone(config, seed)
        if backbone_state is not None:
            own = vit.state_dict()
            state = {k: v for k, v in backbone_state.items() if not (k.startswith("head.") and own[k].shape != v.shape)}
            missing, unexpected = vit.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith("head.") for k in missing):
                raise ValueError(
                    f"backbone_state does not fit model_name={config.model_name!r}: "
                    f"missing {missing[:4]}, unexpected {unexpected[:4]}"
                )
        self.depth = len(vit.blocks)
        self.cut = config.cut
        lora_device = config.device_trainable or lora_everywhere
        first = 0 if lora_device else self.cut
        lora_blocks = list(range(first, self.depth))
        if lora_blocks and config.lora_rank > 0:
            names = "|".join(str(i) for i in lora_blocks)
            targets = "|".join(config.lora_targets)
            lora = LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=rf"blocks\.({names})\.(attn|mlp)\.({targets})",
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + 1)
                vit = inject_adapter_in_model(lora, vit)
        for name, p in vit.named_parameters():
            p.requires_grad_("lora_" in name or (config.head_trainable and name.startswith("head.")))
        for blk in vit.blocks:
            blk.attn.fused_attn = config.fused_attention
        self.vit = vit
        # with cut 0 the device holds no adapters even when asked to train
        self.device_trainable = any(p.requires_grad for n, p in self.named_parameters() if self.is_device_param(n))
        self.num_heads = vit.blocks[0].attn.num_heads
        self.embed_dim = vit.embed_dim
        self.num_prefix_tokens = vit.num_prefix_tokens
        self.lora_everywhere = lora_everywhere
        self._qkv_out: torch.Tensor | None = None
        # every block keeps its qkv output, so the [CLS] row is available after any cut
        for blk in vit.blocks:
            blk.attn.qkv.register_forward_hook(self._keep_qkv)

    # -- parameters ------------------------------------------------------------------------
    def _keep_qkv(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._qkv_out = output

    def is_device_param(self, name: str, cut: int | None = None) -> bool:
        """Whether parameter ``name`` (as in ``named_parameters()``) sits in the device part
        of a cut after block ``cut`` (default: the configured cut)."""
        if name.startswith("vit.blocks."):
            return int(name.split(".")[2]) < (self.cut if cut is None else cut)
        return name.startswith(("vit.patch_embed.", "vit.cls_token", "vit.pos_embed", "vit.reg_token", "vit.norm_pre."))

    def check_cut(self, cut: int | None) -> int:
        """``cut`` (default: the configured one) checked against the model: any cut in
        ``[0, depth]`` when every block has adapters, otherwise the configured cut only."""
        if cut is None:
            return self.cut
        if isinstance(cut, bool) or int(cut) != cut or not 0 <= int(cut) <= self.depth:
            raise ValueError(f"cut must be in [0, depth={self.depth}], got {cut!r}")
        if int(cut) != self.cut and not self.lora_everywhere:
            raise ValueError(f"cut must be the configured {self.cut} (adapters sit only above it), got {cut!r}")
        return int(cut)

    def trains_device_part(self, cut: int | None = None) -> bool:
        """Whether a device cut after block ``cut`` trains its blocks (and gets a gradient).

        With adapters in every block (per-device cuts) the device part trains when the
        config asks for it (``device_trainable``) and holds a block; otherwise as built.
        """
        cut = self.check_cut(cut)
        if self.lora_everywhere:
            return self.config.device_trainable and cut > 0
        return self.device_trainable

    def trainable_names(self) -> list[str]:
        """Names of the trainable parameters (LoRA, and the head when configured)."""
        return [n for n, p in self.named_parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Detached copies of the trainable parameters."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Copy ``state`` (as from :meth:`trainable_state`) into the trainable parameters."""
        params = dict(self.named_parameters())
        with torch.no_grad():
            for n, v in state.items():
                params[n].copy_(v)

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The plain timm weights (LoRA not merged, adapters left out)."""
        return {k.replace(".base_layer", ""): v for k, v in self.vit.state_dict().items() if "lora_" not in k}

    # -- forward ---------------------------------------------------------------------------
    def device_forward(
        self, images: torch.Tensor, need_attention: bool = True, cut: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the device part.

        Args:
            images: ``float [B, 3, H, W]``.
            need_attention: compute the [CLS] attention row (skipped when every token is sent).
            cut: blocks on the device (default: the configured cut; see :meth:`check_cut`).

        Returns:
            ``(tokens [B, 1 + N, D], cls_attn [B, heads, 1 + N] or None)``: the activations at
            the cut (CLS first) and the [CLS] row of the last device block's attention
            (``None`` when ``cut == 0``).
        """
        vit = self.vit
        x = vit.patch_embed(images)
        x = vit._pos_embed(x)
        x = vit.patch_drop(x)
        x = vit.norm_pre(x)
        cut = self.check_cut(cut)
        if cut == 0:
            return x, None
        x = vit.blocks[:cut](x)
        attn = vit.blocks[cut - 1].attn
        qkv, self._qkv_out = self._qkv_out, None
        if not need_attention:
            return x, None
        return x, cls_attention(qkv, attn.num_heads, attn.head_dim, attn.scale, attn.q_norm, attn.k_norm)

    def server_forward(self, tokens: torch.Tensor, cut: int | None = None) -> torch.Tensor:
        """Run the server part (blocks from ``cut``, default the configured cut) on the received
        tokens ``[B, T, D]`` (CLS first); logits ``[B, classes]``."""
        vit = self.vit
        x = vit.blocks[self.check_cut(cut) :](tokens)
        self._qkv_out = None
        x = vit.norm(x)
        return vit.forward_head(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unsplit forward (timm's own), logits ``[B, classes]``."""
        out = self.vit(images)
        self._qkv_out = None
        return out

