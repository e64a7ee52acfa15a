from dataclasses import replace

import pytest
import torch

from learning.data import DEBIAN_FASHION_MNIST
from learning.pretrain import PretrainConfig, pretrained_backbone, split_public
from learning.split_vit import SplitViT, SplitViTConfig

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


# -- recipes and the shipped backbone ---------------------------------------------------------

def _tiny_recipe(seed: int = 0):
    from learning.recipes import Recipe

    model = SplitViTConfig(img_size=16, patch_size=4, depth=2, embed_dim=32, num_heads=2, num_classes=4, cut=1,
                           stem="conv")
    pre = PretrainConfig(public_samples=256, epochs=1.0, batch_size=32, warmup_steps=2, eval_samples=64,
                         lr=2e-3, seed=seed, keep_head=True)
    return Recipe(name="tiny", model=model, pretrain=pre, threads=1)


def test_recipe_on_a_tiny_budget_gives_the_same_bytes_twice(tiny_train, tiny_test):
    from learning.recipes import read_weights, recipe_from_metadata, train_recipe, weights_bytes

    recipe = _tiny_recipe()
    runs = []
    for _ in range(2):
        state, info = train_recipe(recipe, tiny_train, tiny_test)
        runs.append(weights_bytes(state, recipe))
    assert info["samples"] == 256 and info["threads"] == torch.get_num_threads()
    assert runs[0] == runs[1]
    other = weights_bytes(train_recipe(_tiny_recipe(seed=1), tiny_train, None)[0], _tiny_recipe(seed=1))
    assert other != runs[0]
    # the file carries the recipe and the exact weights
    loaded, meta = read_weights(runs[0])
    assert recipe_from_metadata(meta) == recipe
    assert all(torch.equal(loaded[k], state[k]) for k in state) and set(loaded) == set(state)
    assert any(k.startswith("patch_embed.convs.") for k in loaded)


def test_recipe_validation():
    from learning.recipes import Recipe, get_recipe

    with pytest.raises(ValueError, match="recipe.*'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="threads"):
        replace(_tiny_recipe(), threads=0)
    with pytest.raises(ValueError, match="source"):
        Recipe(name="x", model=_tiny_recipe().model, pretrain=PretrainConfig(source="random"))


def test_every_recipe_head_has_one_output_per_label_of_its_task():
    from learning.recipes import RECIPES
    from learning.scenes import GROUPINGS

    for recipe in RECIPES.values():
        classes = 10 if recipe.labels == "fine" else len(GROUPINGS[recipe.labels])
        assert recipe.model.num_classes == classes, recipe.name


@pytest.mark.parametrize("name", ["default", "scenes", "scenes-garments", "scenes-garments-64"])
def test_the_shipped_backbone_file_is_the_recorded_one(tmp_path, monkeypatch, name):
    import hashlib

    from learning import recipes

    path = recipes.shipped_path(name)
    assert path.is_file(), f"{path} is missing (made by `sflsim pretrain --recipe {name}`)"
    data = path.read_bytes()
    assert len(data) <= 10 * 2**20
    assert hashlib.sha256(data).hexdigest() == recipes.SHIPPED[name]
    # the file records the recipe that made it
    _, meta = recipes.read_weights(data)
    assert recipes.recipe_from_metadata(meta).name == name
    # a corrupted copy is refused, naming both hashes
    bad = tmp_path / f"{name}.safetensors"
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(recipes, "shipped_path", lambda name="default": bad)
    with pytest.raises(ValueError, match="sha256"):
        recipes.load_shipped(recipes.shipped_model_config(name), name)


def test_an_unknown_shipped_backbone_is_refused_naming_the_choices():
    from learning import recipes

    with pytest.raises(ValueError, match="pretrain.recipe must name a shipped backbone.*'scenes'"):
        recipes.load_shipped(recipes.shipped_model_config(), "nope")


def test_shipped_backbone_needs_its_geometry():
    from learning.recipes import shipped_model_config

    with pytest.raises(ValueError, match="model.embed_dim=128"):
        pretrained_backbone(shipped_model_config(embed_dim=192, num_heads=3), PretrainConfig(source="shipped"))
    with pytest.raises(ValueError, match="model.stem='conv'"):
        pretrained_backbone(shipped_model_config(stem="linear"), PretrainConfig(source="shipped"))


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason=f"Fashion-MNIST not installed at {DEBIAN_FASHION_MNIST} (make data)")
def test_shipped_backbone_accuracy_on_a_test_subset():
    from learning.data import load_dataset
    from learning.pretrain import accuracy
    from learning.recipes import shipped_model_config

    # 0.88 on all 10 000 test images when made; on 2000 images the binomial sd is ~0.007, so
    # 0.85 leaves four sd of room while still catching a wrong or untrained file (~0.1)
    cfg = shipped_model_config()
    state, info = pretrained_backbone(cfg, PretrainConfig(source="shipped", keep_head=True), return_info=True)
    assert info["source"] == "shipped" and info["sha256"]
    _, test = load_dataset("fashion-mnist", download=False)
    model = SplitViT(cfg, seed=0, backbone_state=state)
    assert accuracy(model, test, 2000) >= 0.85
    # devices never get the images the backbone was trained on
    from learning.data import ImageDataset
    from learning.pretrain import devices_part

    train = ImageDataset(torch.zeros(60000, 1, 1, 1, dtype=torch.uint8), torch.zeros(60000, dtype=torch.long), 10)
    assert len(devices_part(train, PretrainConfig(source="shipped"))) == 10000


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason=f"Fashion-MNIST not installed at {DEBIAN_FASHION_MNIST} (make data)")
def test_shipped_scenes_backbone_knows_the_coarse_groups_of_scenes():
    from learning.data import load_dataset
    from learning.pretrain import accuracy
    from learning.recipes import RECIPES, coarse, shipped_model_config

    # 0.893 on all 10 000 coarse test scenes when made; on 1000 the binomial sd is ~0.01, so
    # 0.84 leaves five sd of room and still catches a wrong or untrained file (~0.3 for a 5-way
    # guess at the largest group)
    recipe = RECIPES["scenes"]
    cfg = shipped_model_config("scenes")
    state = pretrained_backbone(cfg, PretrainConfig(source="shipped", recipe="scenes", keep_head=True))
    _, test = load_dataset("fashion-scenes", download=False, scenes=recipe.scenes)
    model = SplitViT(cfg, seed=0, backbone_state=state)
    assert accuracy(model, coarse(test), 1000) >= 0.84
    # with a fresh head for the fine task, the 5-way head is dropped and any class count fits
    fine = pretrained_backbone(shipped_model_config("scenes", num_classes=10),
                               PretrainConfig(source="shipped", recipe="scenes", keep_head=False))
    assert not any(k.startswith("head.") for k in fine)


def test_logistic_probe_separates_what_is_separable_and_not_what_is_noise():
    from learning.recipes import fit_logistic

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 4
    y_fit, y_test = torch.randint(0, 3, (300,), generator=g), torch.randint(0, 3, (300,), generator=g)
    f_fit = centres[y_fit] + torch.randn(300, 16, generator=g)
    f_test = centres[y_test] + torch.randn(300, 16, generator=g)
    assert fit_logistic(f_fit, y_fit, f_test, y_test, 3) > 0.97
    # labels independent of the features: the probe cannot beat chance (1/3) on new samples by much
    noise = fit_logistic(torch.randn(300, 16, generator=g), y_fit, torch.randn(300, 16, generator=g), y_test, 3)
    assert noise < 0.45


def test_recipe_help_names_every_shipped_backbone():
    from dataclasses import fields

    from learning.recipes import RECIPES

    help_ = next(f for f in fields(PretrainConfig) if f.name == "recipe").metadata["help"]
    assert all(name in help_ for name in RECIPES), (help_, sorted(RECIPES))
