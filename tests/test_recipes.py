"""Every recipe in recipes/ is valid, complete and fits its model and data set, so none can rot;
and the recipe schema rejects what it must, naming the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo.data import EVENT_DATASETS
from zoo.data.static import SPECS
from zoo.train.recipe import QCFSToIF, QCFSToMultiBit, RecipeError, apply_overrides, from_dict, load_recipe, read_file

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
CONVNET = RECIPES[0].parent / "lif_spiking_convnet_fashion_mnist_t4.yaml"


def test_the_required_recipes_exist():
    names = {p.name for p in RECIPES}
    required = [
        "mlf_ds_resnet20_cifar10_t4.yaml", "mlf_ds_resnet20_dvs128_gesture_t40.yaml", "mlf_ds_resnet14_cifar10_dvs_t10.yaml",
        *[f"inflor_spiking_resnet19_{d}_t{t}.yaml" for d in ("cifar10", "cifar100") for t in (2, 4, 6)],
        "inflor_spiking_resnet20_cifar10_t4.yaml", "inflor_spiking_resnet18_imagenet_t4.yaml",
        "inflor_spiking_resnet34_imagenet_t4.yaml", "inflor_spiking_resnet19_cifar10_dvs_t10.yaml",
        "multibit_spiking_resnet19_cifar10_t2.yaml", "multibit_spiking_resnet19_cifar100_t2.yaml",
        "multibit_ds_resnet20_dvs128_gesture_t16.yaml", "multibit_converted_vgg16_qcfs_cifar10_t1.yaml",
        "multibit_converted_vgg16_qcfs_cifar100_t1.yaml", "multibit_converted_vgg11_qcfs_dvs128_gesture_t16.yaml",
        *[f"noise_spiking_{a}_{d}_t1.yaml" for a in ("vgg16", "resnet19") for d in ("cifar10", "cifar100")],
        # the CPU recipes: every method on the small convnet, on each of the three small data sets
        *[f"{m}_{d}_t{t}.yaml" for d in ("fashion_mnist", "mnist")
          for m, t in (("lif_spiking_convnet", 4), ("mlf_spiking_convnet", 4), ("inflor_spiking_convnet", 4),
                       ("multibit_spiking_convnet", 4), ("multibit_converted_convnet_qcfs", 1),
                       ("if_converted_convnet_qcfs", 4), ("noise_spiking_convnet", 1))],
        *[f"{m}_nmnist_t{t}.yaml" for m, t in (("lif_spiking_convnet", 8), ("mlf_spiking_convnet", 8),
                                              ("inflor_spiking_convnet", 8), ("multibit_spiking_convnet", 8),
                                              ("multibit_converted_convnet_qcfs", 1),
                                              ("if_converted_convnet_qcfs", 8), ("noise_spiking_convnet", 1))],
    ]
    assert not [n for n in required if n not in names]


def input_fits(recipe) -> None:
    """Classes, channels and spatial size of the model against the data set's own metadata."""
    kwargs, data = recipe.model.kwargs, recipe.data
    if data.dataset in EVENT_DATASETS:
        cls = EVENT_DATASETS[data.dataset]
        integration = cls.resolve_params(data.params)[0]
        assert kwargs["img_size"] == integration.output_size(cls.sensor_size)[0]
        assert kwargs["in_chans"] == 2 and kwargs["num_classes"] == len(cls.classes)
        if recipe.convert is None:
            assert kwargs["T"] == integration.frames, "event frames are the time steps"
    else:
        spec = SPECS[data.dataset]
        assert kwargs["in_chans"] == spec.in_chans and kwargs["img_size"] == spec.size[0]
        assert kwargs["num_classes"] == (len(spec.classes) or 1000)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_is_valid_complete_and_builds(path):
    recipe = load_recipe(path)
    # <method>_<arch>_<dataset>_t<T>[_<variant>]: T trained (an ANN->SNN conversion's ANN has none: the SNN's T)
    steps = recipe.convert.T if isinstance(recipe.convert, (QCFSToIF, QCFSToMultiBit)) else recipe.model.kwargs["T"]
    pattern = rf".*_{recipe.data.dataset}_t{steps}(_[a-z0-9]+)?"
    assert re.fullmatch(pattern, path.stem) and re.fullmatch(pattern, recipe.name.partition(".")[2])
    input_fits(recipe)
    with torch.device("meta"):  # build the full-size graph without allocating it
        model = zoo.create_model(recipe.model.arch, **recipe.model.kwargs)
    assert model.arch_kwargs == recipe.model.kwargs, "every architecture keyword is written out in the recipe"
    if isinstance(recipe.convert, (QCFSToIF, QCFSToMultiBit)):
        with torch.device("meta"):
            snn = zoo.create_model(recipe.name.partition(".")[0], **{**recipe.model.kwargs, "neuron": "if", "T": recipe.convert.T})
        assert snn.arch_kwargs["num_classes"] == model.num_classes
    if recipe.model.arch.endswith("convnet") or "convnet_" in recipe.model.arch:  # small: run one real forward
        model = zoo.create_model(recipe.model.arch, **recipe.model.kwargs)
        size = model.default_input_size
        x = torch.rand(recipe.model.kwargs["T"], 2, *size) if recipe.data.dataset in EVENT_DATASETS else torch.rand(2, *size)
        assert model(x).shape == (2, recipe.model.kwargs["num_classes"])


def test_every_chain_starts_from_a_checkpoint_that_exists_or_a_recipe_that_makes_it():
    """A recipe whose ``model.init`` names ``arch.tag`` (stage 2 of a chain, a fine-tune) names a
    published checkpoint or the name of another recipe here, of the same architecture."""
    made = {load_recipe(p).name for p in RECIPES}
    published = set(zoo.list_models(pretrained=True))
    chained = 0
    for path in RECIPES:
        recipe = load_recipe(path)
        parent = recipe.model.init.checkpoint if recipe.model.init else None
        if parent is None or "/" in parent or ":" in parent:  # a folder or a Hub repository: not ours to check
            continue
        chained += 1
        assert parent in made or parent in published, f"{path.name}: model.init.checkpoint {parent!r} is made by no recipe"
        assert parent.partition(".")[0] == recipe.model.arch, f"{path.name}: the parent is another architecture"
    assert chained >= 4


# --------------------------------------------------------------------------------------------
# The schema's errors
# --------------------------------------------------------------------------------------------


def base() -> dict:
    return read_file(CONVNET)


@pytest.mark.parametrize("change, message", [
    (lambda r: r["train"].update(epocs=3), r"unknown field\(s\) 'train.epocs'"),
    (lambda r: r["train"]["optimizer"].pop("weight_decay"), r"missing field\(s\) 'train.optimizer.weight_decay'"),
    (lambda r: r["train"].update(epochs="3"), r"field 'train.epochs' must be an integer, got str"),
    (lambda r: r["train"].update(loss="mse"), r"field 'train.loss' must be one of 'ce', 'tet'"),
    (lambda r: r["train"]["optimizer"].update(name="lamb"), r"field 'train.optimizer.name' must be one of 'sgd', 'adamw'"),
    (lambda r: r["data"]["augment"].update(hflip=1), r"field 'data.augment.hflip' must be true or false"),
    (lambda r: r.update(name="other_arch.tag"), r"field 'name' must be 'spiking_convnet.<tag>'"),
    (lambda r: r["train"].update(ema={"decay": 1.0}), r"field 'train.ema.decay' must be in \(0, 1\)"),
    (lambda r: r["train"].update(ema={"decay": 0.9, "every": 2}), r"unknown field\(s\) 'train.ema.every'"),
    (lambda r: r["data"]["augment"].update(hflip=False, alternate_flip=True),
     r"field 'data.augment.alternate_flip' needs data.augment.hflip: true"),
    (lambda r: r["model"]["kwargs"].pop("T"), r"field 'model.kwargs' lacks 'T'"),
    (lambda r: r["train"].update(batch_size=100, accumulation=3), r"divisible by train.accumulation"),
    (lambda r: r.update(convert={"kind": "qcfs_to_if", "T": 4, "sweep": [4]}), r"field 'model.arch' must be an ANN twin"),
    (lambda r: r.update(convert={"kind": "noisy_t1_to_tn", "T": 4, "sweep": [4], "bn_recalibration_images": 0}),
     r"must be a 'noisy_if' spec"),
])
def test_schema_errors_name_file_and_field(change, message):
    raw = base()
    change(raw)
    with pytest.raises(RecipeError, match=message) as info:
        from_dict(raw, str(CONVNET))
    assert str(info.value).startswith(str(CONVNET))


NMNIST = RECIPES[0].parent / "mlf_spiking_convnet_nmnist_t8.yaml"
QCFS_NMNIST = RECIPES[0].parent / "if_converted_convnet_qcfs_nmnist_t8.yaml"
NOISE_NMNIST = RECIPES[0].parent / "noise_spiking_convnet_nmnist_t1.yaml"


@pytest.mark.parametrize("path, change, message", [
    (NMNIST, lambda r: r["data"]["params"].update(frames=4), r"field 'data.params' model spiking_convnet_nmnist runs "
                                                             r"T=8 steps and takes event frames time first.* got 4 in dimension 0"),
    (NMNIST, lambda r: r["model"]["kwargs"].update(T=1), r"runs T=1 steps .* got 8 in dimension 0.*without spiking neurons"),
    (NOISE_NMNIST, lambda r: (r["data"]["params"].update(frames=8), r["convert"].update(sweep=[8])),
     r"runs T=1 steps .* got 8 in dimension 0"),  # noisy IF is stateful: T=1 training on 8 frames would be T=8
    (QCFS_NMNIST, lambda r: r["data"]["params"].update(frames=4),
     r"field 'convert.sweep' must be \[convert.T\] with convert.T = data.params.frames"),
])
def test_event_frame_counts_must_fit_T(path, change, message):
    """Event data reaches a network as one frame per step (F = T) or as one frame repeated over T
    (F = 1, any conversion sweep); other frame counts are refused before training."""
    raw = read_file(path)
    from_dict(raw, str(path))  # the shipped recipe is valid: frames 8 at T = 8, frames 1 with a sweep
    change(raw)
    with pytest.raises(RecipeError, match=message):
        from_dict(raw, str(path))


def as_twin(raw: dict) -> None:
    """The N-MNIST recipe turned into QCFS conversion of its ANN twin on the same 8 frames."""
    raw["model"]["arch"] = "convnet_nmnist_qcfs"
    raw["model"]["kwargs"].update(T=1, neuron={"name": "qcfs", "levels": 4, "shift": 0.5, "threshold_init": 4.0})
    raw["convert"] = {"kind": "qcfs_to_if", "T": 8, "sweep": [8]}


@pytest.mark.parametrize("change", [
    lambda r: r["data"].update(params={"preset": "plif"}),  # the preset's 8 frames
    lambda r: r["data"]["params"].update(frames=None),  # null: the default preset's frame count
    lambda r: r["data"]["params"].update(frames=1),  # one frame, repeated over T = 8
    lambda r: as_twin(r),  # an ANN twin takes the 8 frames at T=1, one per step
])
def test_event_frame_counts_that_fit(change):
    """Frame counts the data set integrates (from a preset, null or given) that fit T are accepted."""
    raw = read_file(NMNIST)
    change(raw)
    from_dict(raw, str(NMNIST))  # raises RecipeError if refused


def test_multibit_conversion_needs_matching_levels():
    raw = read_file(RECIPES[0].parent / "multibit_converted_convnet_qcfs_fashion_mnist_t1.yaml")
    raw["convert"]["m"] = 3
    with pytest.raises(RecipeError, match="levels = 2\\^\\(m\\+n\\) - 1 = 7"):
        from_dict(raw)


def test_yaml_strictness_and_overrides(tmp_path):
    text = CONVNET.read_text()
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text(text + "seed: 1\n")
    with pytest.raises(RecipeError, match="duplicate key 'seed'"):
        load_recipe(duplicate)
    exponent = tmp_path / "exp.yaml"
    exponent.write_text(text.replace("lr: 0.001", "lr: 1e-3"))
    assert load_recipe(exponent).train.optimizer.lr == 1e-3  # YAML 1.1 would read "1e-3" as a string
    recipe = load_recipe(CONVNET, ["train.epochs=2", "data.augment={crop_padding: 0, hflip: false, alternate_flip: false, autoaugment: null, cutout: 0}"])
    assert recipe.train.epochs == 2 and recipe.data.augment.hflip is False
    with pytest.raises(RecipeError, match="no field 'train.epoch'"):
        apply_overrides(base(), ["train.epoch=2"], "x.yaml")
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        apply_overrides(base(), ["train.epochs"], "x.yaml")
    assert yaml.safe_load(text)["name"] == load_recipe(CONVNET).name
