"""Checkpoint folders: strict configs, safetensors weights verified by sha256, cards, publishing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import zoo
from zoo import registry
from zoo.cards import render_card
from zoo.checkpoint import CONFIG, WEIGHTS, CheckpointError, load_checkpoint, sha256_file
from zoo.config import CheckpointConfig, ConfigError
from zoo.evaluation.references import Reference
from zoo.publish import REGISTRY_LOCK, card_of, publish, register
from zoo.registry import PretrainedEntry
from zoo.train.files import file_lock

from data_fixtures import SHARED_DATA
from checkpoint_fixtures import NAME, make_config, sample_input, write_checkpoint, write_registry


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "ckpt")


def test_save_load_round_trip_is_exact(checkpoint):
    model, folder = checkpoint
    loaded = load_checkpoint(folder).eval()
    x = sample_input()
    assert torch.equal(model(x), loaded(x))
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    config = loaded.checkpoint_config
    assert config.weights_sha256 == sha256_file(folder / WEIGHTS)
    assert config.arch_kwargs == model.arch_kwargs and config.T == 2
    assert config.software["snnzoo"] == zoo.__version__


def test_load_also_accepts_the_weights_file_and_overrides_T(checkpoint):
    _, folder = checkpoint
    assert load_checkpoint(folder / WEIGHTS, T=5).T == 5


def test_corrupt_weights_are_rejected_by_hash(checkpoint):
    _, folder = checkpoint
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 0x01
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256 is .* records"):
        load_checkpoint(folder)


def test_registry_pin_must_match_the_folder(checkpoint):
    _, folder = checkpoint
    with pytest.raises(CheckpointError, match="records weights sha256 .* but the given sha256 pins 0000"):
        load_checkpoint(folder, sha256="0" * 64)


def _rewrite_weights(folder, state):
    save_file(state, str(folder / WEIGHTS))
    config = json.loads((folder / CONFIG).read_text())
    config["weights_sha256"] = sha256_file(folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(config))


def test_missing_and_unexpected_keys_are_named(checkpoint):
    _, folder = checkpoint
    state = load_file(str(folder / WEIGHTS))
    dropped = sorted(state)[0]
    state.pop(dropped)
    state["extra.weight"] = torch.zeros(1)
    _rewrite_weights(folder, state)
    with pytest.raises(CheckpointError, match=rf"missing keys {dropped}.*unexpected keys extra\.weight"):
        load_checkpoint(folder)


def test_shape_mismatch_is_named(checkpoint):
    _, folder = checkpoint
    with pytest.raises(CheckpointError, match=r"shape mismatch .*checkpoint \(10, .*model \(7, "):
        load_checkpoint(folder, num_classes=7)


def test_a_pickle_is_never_loaded(checkpoint, tmp_path):
    _, folder = checkpoint
    torch.save({"w": torch.zeros(1)}, folder / WEIGHTS)  # a pickle in disguise
    config = json.loads((folder / CONFIG).read_text())
    config["weights_sha256"] = sha256_file(folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: byte offset 0: header length"):
        load_checkpoint(folder)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(format_version=2), "'format_version' is 2"),
    (lambda c: c.update(colour="red"), "unknown field\\(s\\) 'colour'"),
    (lambda c: c.pop("dataset"), "missing field\\(s\\) 'dataset'"),
    (lambda c: c.update(architecture=3), "field 'architecture' must be str"),
    (lambda c: c["input"].update(encoding="rate"), "'input.encoding' must be one of"),
    (lambda c: c["input"].update(size=[1, 28]), "'input.size' must be \\[C, H, W\\]"),
    (lambda c: c["input"].update(mean=[0.1, 0.2]), "'input.mean' has 2 values for 1 channels"),
    (lambda c: c["input"].update(gamma=1), "field 'input': unknown field\\(s\\) 'gamma'"),
    (lambda c: c["arch_kwargs"].pop("T"), "'arch_kwargs' lacks 'T'"),
    (lambda c: c.update(name="vgg.x"), "field 'name' must be 'spiking_convnet.<tag>'"),
    (lambda c: c["dataset"].pop("split"), "'dataset' lacks 'split'"),
])
def test_bad_configs_fail_naming_file_and_field(checkpoint, mutate, message):
    _, folder = checkpoint
    data = json.loads((folder / CONFIG).read_text())
    mutate(data)
    (folder / CONFIG).write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as error:
        load_checkpoint(folder)
    assert str(folder / CONFIG) in str(error.value)


def test_config_round_trips_through_json(checkpoint):
    _, folder = checkpoint
    config = CheckpointConfig.load(folder / CONFIG)
    assert CheckpointConfig.from_dict(json.loads(config.dumps())) == config


def test_card_front_matter_is_valid_hub_metadata(checkpoint):
    _, folder = checkpoint
    config = CheckpointConfig.load(folder / CONFIG)
    card = render_card(config, "snnzoo/" + NAME)
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "snnzoo" and "spiking-neural-network" in meta["tags"]
    result = meta["model-index"][0]["results"][0]
    assert result["metrics"][0] == {"type": "accuracy", "value": 12.5, "name": "top-1 accuracy (T=2)"}
    assert result["dataset"]["type"] == "fashion_mnist"
    assert config.weights_sha256 in body and "| 2 | test | 12.50 | 50.00 |" in body
    assert f"zoo eval {NAME} --dataset fashion_mnist" in body


def test_card_says_how_the_weights_were_made_and_what_training_cost():
    config = make_config()
    config.arch_kwargs = {"T": 4, "neuron": {"name": "lif"}}
    assert "SNN-trained: backpropagation through time" in render_card(config, "x/y")
    assert "## Training (measured)" not in render_card(config, "x/y")  # no training metrics recorded
    config.recipe = {"model": {"arch": "convnet_qcfs"}, "convert": {"kind": "qcfs_to_multibit", "T": 1}}
    config.metrics["train"] = {
        "epochs": 4, "device": "cpu (x86_64, 1 threads)", "processes": 1, "precision": "fp32", "train_time_s": 450.0,
        "wall_time_s": 510.0, "images_per_s": 533.3, "peak_memory_mb": 301.2, "test_top1": 88.5, "test_samples": 10000,
        "conversion": {"kind": "qcfs_to_multibit", "source_T": 1, "source_top1": 88.5,
                       "accuracy_vs_T": {"1": 88.5, "2": 88.75}}}
    card = render_card(config, "x/y")
    assert "ANN->SNN conversion: the ANN twin `convnet_qcfs`" in card and "SNN-trained" not in card
    assert ("4 epochs on cpu (x86_64, 1 threads) (1 process, fp32): 7.5 min of training steps (8.5 min with "
            "the per-epoch evaluations), 533 images/s, peak memory 301 MB; test top-1 at the end of training "
            "88.50 % on 10,000 samples.") in card
    assert "| T | 1 | 2 |\n|---|---|---|\n| top-1 % | 88.50 | 88.75 |" in card
    config.recipe = {"convert": {"kind": "noisy_t1_to_tn", "T": 4}}
    assert "trained at T=1 with noisy IF neurons and run here at T=4" in render_card(config, "x/y")


def test_card_sets_the_checkpoint_beside_the_papers_results():
    """An MLF network of CIFAR-10 against the MLF paper's published row: the paper's network, its
    parameter count (from the registry's architecture facts), and the gap at the nearest T."""
    config = make_config()
    config.architecture, config.dataset = "ds_resnet20_w32", {"name": "cifar10", "split": "train"}
    config.arch_kwargs = {"T": 4, "neuron": {"name": "mlf"}, "widths": [32, 64, 128]}
    config.metrics["evaluations"] = [{"dataset": "cifar10", "split": "test", "T": 4, "top1": 90.25, "params": 1084586}]
    papers = [Reference("MLF", "mlf", "ds_resnet20", "cifar10", "DS-ResNet-20 (64-128-256)", 4, 94.25, "Feng et al.")]
    assert "## Against the paper" not in render_card(config, "x/y")
    card = render_card(config, "x/y", papers=papers)
    assert "| Feng et al. | DS-ResNet-20 (64-128-256) | 4.33 M | 4 | 94.25 % |" in card
    assert "| this checkpoint | `ds_resnet20_w32` (32-64-128) | 1.08 M | 4 | 90.25 % |" in card
    assert "0.25 times the parameters of the paper's network, and is 4.00 points below its 94.25 % at T=4" in card
    # publishing finds the MLF paper's CIFAR-10 row in evaluation/references.csv by neuron and data set
    assert "DS-ResNet-20 (64-128-256) | 4.33 M | 4 | 94.25 %" in card_of(config, "x/y")


def test_card_says_when_a_neuron_is_our_interpretation(tmp_path):
    config = make_config()
    config.arch_kwargs = {"T": 1, "neuron": {"name": "noisy_if"}}
    assert "Interpretation" in render_card(config, "x/y")


def test_publish_without_token_assembles_mirror_card_and_registry(checkpoint, tmp_path, capsys):
    _, folder = checkpoint
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    cards = tmp_path / "cards"
    entry = publish(folder, mirror=tmp_path / "mirror", cards_dir=cards, registry=registry_file)
    repo = tmp_path / "mirror" / "snnzoo" / NAME
    assert entry["folder"] == str(repo) and entry["revision"] == "main"
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (cards / f"{NAME}.md").read_text() == (repo / "README.md").read_text()
    recorded = json.loads(registry_file.read_text())["checkpoints"]
    assert recorded == [{"name": NAME, "hf_hub_id": f"snnzoo/{NAME}", "revision": "main",
                         "sha256": sha256_file(folder / WEIGHTS), "config_sha256": sha256_file(repo / CONFIG)}]


def test_publish_carries_the_training_log(checkpoint, tmp_path):
    _, folder = checkpoint
    (folder / "train_log.csv").write_text("epoch,test_top1\n1,50.0\n")
    entry = publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=None)
    repo = Path(entry["folder"])
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.json", "model.safetensors", "train_log.csv"]
    assert (repo / "train_log.csv").read_text() == "epoch,test_top1\n1,50.0\n"
    (folder / "train_log.csv").unlink()  # other weights, published to the same repository, have no log
    publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=None)
    assert not (repo / "train_log.csv").exists()


def test_publish_with_token_uploads_through_huggingface_hub(checkpoint, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class RecordingApi:  # stands in for the Hub's HTTP API, which this machine cannot reach
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo_id, repo_type, exist_ok):
            calls.append(("create_repo", repo_id, repo_type, exist_ok))

        def upload_folder(self, folder_path, repo_id, repo_type, allow_patterns, commit_message):
            calls.append(("upload_folder", sorted(p.name for p in Path(folder_path).iterdir()),
                          repo_id, sorted(allow_patterns)))
            return type("Commit", (), {"oid": "a" * 40})()

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    _, folder = checkpoint
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    entry = publish(folder, repo_id="me/model", token="hf_x", mirror=tmp_path / "m", cards_dir=None,
                    registry=registry_file)
    assert entry["revision"] == "a" * 40
    assert calls == [("token", "hf_x"), ("create_repo", "me/model", "model", True),
                     ("upload_folder", ["README.md", "config.json", "model.safetensors"], "me/model",
                      ["README.md", "config.json", "model.safetensors", "train_log.csv"])]
    assert json.loads(registry_file.read_text())["checkpoints"][0]["revision"] == "a" * 40


def test_pretrained_from_local_mirror_verifies_the_registry_hash(checkpoint, tmp_path, monkeypatch):
    model, folder = checkpoint
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=registry_file)
    monkeypatch.setattr(registry, "PRETRAINED_FILE", registry_file)
    monkeypatch.setenv("ZOO_HUB_MIRROR", str(tmp_path / "mirror"))
    assert zoo.list_models(pretrained=True) == [NAME]
    loaded = zoo.create_model(NAME, pretrained=True).eval()
    x = sample_input()
    assert torch.equal(loaded(x), model(x))
    random = zoo.create_model(NAME)  # a tag without pretrained: the checkpoint's graph, fresh weights
    assert random.arch_kwargs == model.arch_kwargs
    first = next(iter(model.state_dict()))
    assert not torch.equal(random.state_dict()[first], model.state_dict()[first])
    pinned = json.loads(registry_file.read_text())
    pinned["checkpoints"][0]["sha256"] = "f" * 64
    registry_file.write_text(json.dumps(pinned))
    with pytest.raises(CheckpointError, match=r"pretrained\.json \(entry '.*'\) pins ffff"):
        zoo.create_model(NAME, pretrained=True)


def test_unknown_names_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "PRETRAINED_FILE", write_registry(tmp_path / "p.json", []))
    with pytest.raises(ValueError, match="unknown model 'resnet_nope'"):
        zoo.create_model("resnet_nope")
    with pytest.raises(ValueError, match="no published checkpoint 'spiking_convnet.nope'"):
        zoo.create_model("spiking_convnet.nope", pretrained=True)
    with pytest.raises(ValueError, match="'spiking_convnet' has no published checkpoint"):
        zoo.create_model("spiking_convnet", pretrained=True)


def test_shipped_cards_and_mirror_are_generated_from_the_published_configs():
    """Every published checkpoint: the mirror's weights and config match the registry's sha256s, and
    its card and the copy in model_cards/ are exactly what render_card makes of its config (never
    hand-written)."""
    from zoo.hub import mirror_root

    root = Path(__file__).resolve().parents[1]
    entries = registry._pretrained_table().values()
    if not entries:
        pytest.skip("no checkpoint is published in zoo/pretrained.json")
    for entry in entries:
        folder = mirror_root().joinpath(*entry.hf_hub_id.split("/"))
        assert sha256_file(folder / WEIGHTS) == entry.sha256, entry.name
        assert sha256_file(folder / CONFIG) == entry.config_sha256, entry.name
        config = CheckpointConfig.load(folder / CONFIG)
        assert config.name == entry.name and config.weights_sha256 == entry.sha256
        measured = [r for r in config.metrics.get("evaluations", []) if r.get("T") == config.T]
        assert measured, (f"{entry.name}: its card has no evaluation at its T={config.T}; "
                          "zoo eval FOLDER --write-checkpoint, then zoo publish FOLDER")
        for record in measured:  # the card's figure is the leaderboard's
            stored = root / "evaluation" / "results" / record["dataset"] / f"{entry.name}_{record['split']}_T{config.T}.json"
            assert json.loads(stored.read_text())["top1"] == record["top1"], f"{entry.name}: card and {stored} differ"
        card = card_of(config, entry.hf_hub_id)
        assert (folder / "README.md").read_text() == card, f"{entry.name}: mirror card is stale; run zoo publish"
        assert (root / "model_cards" / f"{entry.name}.md").read_text() == card, entry.name


def place_fashion_image(folder: Path) -> int:
    """The first Fashion-MNIST test image as ``image.png``; returns its label."""
    from PIL import Image

    from zoo.data import create_dataset

    image, label = create_dataset("fashion_mnist", root=SHARED_DATA, split="test", normalize=False)[0]
    Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy()).save(folder / "image.png")
    return label


def place_nmnist_recording(folder: Path) -> int:
    """The first recording of the SLAYER N-MNIST test list where the card's example reads one; returns its label."""
    sample, label = (SHARED_DATA / "nmnist" / "NMNISTsmall" / "test100.txt").read_text().splitlines()[1].split()
    (folder / "Test" / "0").mkdir(parents=True)
    (folder / "Test" / "0" / "00004.bin").write_bytes((SHARED_DATA / "nmnist" / "NMNISTsmall" / f"{sample}.bs2").read_bytes())
    return int(label)


@pytest.mark.skipif(not (SHARED_DATA / "fashion-mnist").is_dir() or not (SHARED_DATA / "nmnist").is_dir(),
                    reason=f"real data under {SHARED_DATA} absent")
@pytest.mark.parametrize("name, place", [
    ("spiking_convnet.mlf_fashion_mnist_t4_c32", place_fashion_image),
    ("spiking_convnet_nmnist.noise_nmnist_t1", place_nmnist_recording),
])
def test_card_example_runs_on_real_data(name, place, tmp_path, monkeypatch):
    """The card's usage example, as written, classifies a real image or recording through the
    checkpoint's own transform."""
    card = (Path(__file__).resolve().parents[1] / "model_cards" / f"{name}.md").read_text()
    example = card.split("```python\n", 1)[1].split("```", 1)[0]
    label = place(tmp_path)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(example, scope)
    assert scope["logits"].shape == (1, 10) and int(scope["logits"].argmax()) == label


def test_registering_waits_for_the_registry_lock(tmp_path):
    """Two checkpoints published at once: the second registration reads the registry only after the
    first has rewritten it, so neither entry is lost."""
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    entry = PretrainedEntry(name=NAME, hf_hub_id=f"snnzoo/{NAME}", revision="main", sha256="0" * 64,
                            config_sha256="1" * 64)
    registered = threading.Event()
    with file_lock(tmp_path / REGISTRY_LOCK):  # another publish holds the registry
        worker = threading.Thread(target=lambda: (register(registry_file, entry), registered.set()))
        worker.start()
        assert not registered.wait(0.5)
    worker.join(timeout=30)
    assert registered.is_set()
    assert [item["name"] for item in json.loads(registry_file.read_text())["checkpoints"]] == [NAME]
