from dataclasses import replace

import pytest
import torch

from learning.pretrain import PretrainConfig, pretrained_backbone, split_public
from learning.split_vit import SplitViT

TINY = PretrainConfig(public_samples=96, epochs=1.0, batch_size=32, warmup_steps=1, eval_samples=40, lr=3e-3)


def test_split_public_takes_the_last_images(tiny_train):
    public, private = split_public(tiny_train, TINY)
    assert len(public) == 96 and len(private) == len(tiny_train) - 96
    assert torch.equal(public.images, tiny_train.images[-96:]) and torch.equal(private.labels, tiny_train.labels[:-96])
    with pytest.raises(ValueError, match="public_samples"):
        split_public(tiny_train, replace(TINY, public_samples=len(tiny_train)))


def test_own_pretraining_is_cached_by_the_callers_writer(tiny_model_config, tiny_train, tiny_test, tmp_path):
    def save(path, data):
        path.write_bytes(data)

    # without a writer nothing reaches the disk: learning writes no files
    pretrained_backbone(tiny_model_config, TINY, tiny_train, tiny_test, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    state, info = pretrained_backbone(tiny_model_config, TINY, tiny_train, tiny_test, cache_dir=tmp_path,
                                      return_info=True, save=save)
    assert not info["cached"] and info["steps"] == 3 and 0 <= info["accuracy"] <= 1
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("backbone-") and files[0].suffix == ".pt"
    again, info2 = pretrained_backbone(tiny_model_config, TINY, tiny_train, tiny_test, cache_dir=tmp_path,
                                       return_info=True, save=save)
    assert info2["cached"] and info2["accuracy"] == info["accuracy"]
    assert all(torch.equal(state[k], again[k]) for k in state)
    # another recipe is another file
    pretrained_backbone(tiny_model_config, replace(TINY, seed=1), tiny_train, cache_dir=tmp_path, save=save)
    assert len(list(tmp_path.iterdir())) == 2
    # the weights load into the split model and pretraining changed them
    model = SplitViT(tiny_model_config, seed=0, backbone_state=state)
    fresh = SplitViT(tiny_model_config, seed=0)
    assert not torch.equal(model.vit.blocks[0].attn.qkv.weight, fresh.vit.blocks[0].attn.qkv.weight)


def test_file_and_random_sources(tiny_model_config, tmp_path):
    state = pretrained_backbone(tiny_model_config, PretrainConfig(source="random", seed=3))
    torch.save(state, tmp_path / "w.pt")
    loaded = pretrained_backbone(tiny_model_config, PretrainConfig(source="file", checkpoint=str(tmp_path / "w.pt")))
    assert all(torch.equal(state[k], loaded[k]) for k in state)


def test_bad_pretrain_input(tiny_model_config, tmp_path):
    with pytest.raises(ValueError, match="source.*'hub'"):
        PretrainConfig(source="hub")
    with pytest.raises(ValueError, match="checkpoint"):
        PretrainConfig(source="file")
    with pytest.raises(ValueError, match="checkpoint.*nope.pt"):
        pretrained_backbone(tiny_model_config, PretrainConfig(source="file", checkpoint=str(tmp_path / "nope.pt")))
    with pytest.raises(ValueError, match="train_set"):
        pretrained_backbone(tiny_model_config, PretrainConfig())
    with pytest.raises(ValueError, match="epochs"):
        PretrainConfig(epochs=0)
