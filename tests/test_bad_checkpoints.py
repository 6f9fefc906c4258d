"""Hostile checkpoints, configs, registries and names: each is refused with one of the zoo's own
errors naming the file and the field (or byte offset), nothing is written outside its folder, every
file a load reads is pinned, and the same weights always save to the same bytes. Ends with a
bounded, seeded fuzzer over the checkpoint parser."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo import hub, registry
from zoo.checkpoint import (CONFIG, WEIGHTS, CheckpointError, check_architecture, load_checkpoint, load_weights,
                            read_checkpoint, save_checkpoint, serialize_safetensors, sha256_file)
from zoo.config import MAX_CONFIG_BYTES, ConfigError
from zoo.names import UnsafeNameError
from zoo.publish import publish
from zoo.registry import read_registry

from checkpoint_fixtures import ARCH, NAME, make_config, make_model, sample_input, write_checkpoint, write_registry

REPO = Path(__file__).resolve().parents[1]
ZOO_ERRORS = (CheckpointError, ConfigError, UnsafeNameError)


# ------------------------------------------------------------------------------------------ helpers


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return zoo.create_model(ARCH, T=1, channels=2, num_classes=3).eval()


@pytest.fixture
def tiny(tmp_path):
    """A small valid checkpoint folder (loads in milliseconds)."""
    folder = tmp_path / "ckpt"
    save_checkpoint(tiny_model(), folder, make_config())
    return folder


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def set_weights(folder: Path, data: bytes) -> None:
    """Replace model.safetensors with ``data`` and record its sha256 in the config, so that the
    parser, not the hash check, meets the bytes."""
    (folder / WEIGHTS).write_bytes(data)
    config = read_json(folder / CONFIG)
    config["weights_sha256"] = hashlib.sha256(data).hexdigest()
    write_json(folder / CONFIG, config)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (symlinks as their target) with its content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            out[str(path)] = sha256_file(path)
    return out


@pytest.fixture
def published(tmp_path, monkeypatch):
    """The fixture checkpoint published into a mirror and a registry that the zoo reads."""
    model, folder = write_checkpoint(tmp_path / "ckpt")
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    entry = publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=registry_file)
    monkeypatch.setattr(registry, "PRETRAINED_FILE", registry_file)
    monkeypatch.setenv("ZOO_HUB_MIRROR", str(tmp_path / "mirror"))
    return model, Path(entry["folder"]), registry_file


def threshold_times_ten(config: dict) -> dict:
    neuron = config["arch_kwargs"]["neuron"]
    neuron["v_th"] = neuron["v_th"] * 10
    return config


# ----------------------------------------------------------------- 1. names never become paths


@pytest.mark.parametrize("field, value, message", [
    ("name", "spiking_convnet.x/../../victim", "field 'name' must be 'arch.tag'"),
    ("name", "spiking_convnet./etc", "field 'name'"),
    ("architecture", "../../victim", "field 'architecture' must be letters"),
    ("dataset.name", "../../victim", "field 'dataset.name' must be letters"),
    ("dataset.split", "..", "field 'dataset.split' must be letters"),
])
def test_unsafe_names_in_a_config_are_refused_and_nothing_is_written(tiny, tmp_path, field, value, message):
    config = read_json(tiny / CONFIG)
    if field.startswith("dataset."):
        config["dataset"][field.split(".")[1]] = value
    else:
        config[field] = value
    write_json(tiny / CONFIG, config)
    registry_file = write_registry(tmp_path / "p.json", [])
    for action in (lambda: load_checkpoint(tiny),
                   lambda: publish(tiny, mirror=tmp_path / "mirror", cards_dir=tmp_path / "cards",
                                   registry=registry_file)):
        before = snapshot(tmp_path)
        with pytest.raises(UnsafeNameError, match=message) as error:
            action()
        assert str(tiny / CONFIG) in str(error.value)
        assert snapshot(tmp_path) == before
    assert not (tmp_path / "victim").exists() and not (tmp_path.parent / "victim").exists()


@pytest.mark.parametrize("repo_id", ["../../victim", "snnzoo/../../victim", "/tmp/victim", "a/b/c", "snnzoo/x..y",
                                     "snnzoo/.hidden", "snnzoo/a\\b", "snnzoo/", "victim"])
def test_unsafe_repo_ids_are_refused_and_nothing_is_written(tiny, tmp_path, repo_id):
    registry_file = write_registry(tmp_path / "p.json", [])
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeNameError, match="--repo-id: Hub repository id must be 'owner/repo'"):
        publish(tiny, repo_id=repo_id, mirror=tmp_path / "mirror", cards_dir=tmp_path / "cards",
                registry=registry_file)
    assert snapshot(tmp_path) == before


def test_a_mirror_symlinked_out_of_its_root_is_neither_read_nor_written(published, tmp_path):
    _, repo, _ = published
    outside = tmp_path / "outside"
    shutil.copytree(repo, outside / NAME)  # the same files, outside the mirror
    owner = repo.parent
    shutil.rmtree(owner)
    owner.symlink_to(outside, target_is_directory=True)  # mirror/snnzoo -> outside
    with pytest.raises(UnsafeNameError, match="outside .*mirror"):
        zoo.create_model(NAME, pretrained=True)
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeNameError, match="refusing to write there"):
        publish(tmp_path / "ckpt", mirror=tmp_path / "mirror", cards_dir=None, registry=None)
    assert snapshot(tmp_path) == before


def test_a_card_symlinked_out_of_the_cards_folder_is_not_written(tiny, tmp_path):
    victim = tmp_path / "precious.md"
    victim.write_text("precious\n")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / f"{NAME}.md").symlink_to(victim)
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeNameError, match="refusing to write there"):
        publish(tiny, mirror=tmp_path / "mirror", cards_dir=cards, registry=None)
    assert snapshot(tmp_path) == before and victim.read_text() == "precious\n"


@pytest.mark.parametrize("field, value", [("name", "../../victim.x"), ("hf_hub_id", "../../victim"),
                                          ("hf_hub_id", "snnzoo/../../victim"), ("revision", "../../victim"),
                                          ("revision", "refs/../../victim")])
def test_unsafe_registry_entries_are_refused(published, field, value):
    _, _, registry_file = published
    data = read_json(registry_file)
    data["checkpoints"][0][field] = value
    write_json(registry_file, data)
    with pytest.raises(ZOO_ERRORS, match=rf"{registry_file}: checkpoints\[0\].*field '{field}'"):
        zoo.create_model(NAME, pretrained=True)


def test_a_torch_hub_tag_never_becomes_a_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    import hubconf

    for tag in ("../../victim", "x/../../y", "/etc/passwd", ".hidden", ""):
        with pytest.raises(UnsafeNameError, match="checkpoint tag"):
            hubconf.spiking_convnet(pretrained=tag)


def test_a_folder_named_like_a_published_checkpoint_does_not_bypass_the_pins(published, tmp_path, monkeypatch):
    """A zoo name always goes through the registry, even when a folder of that name is in the
    working directory (it would carry its own, unpinned, config)."""
    model, _, _ = published
    save_checkpoint(make_model(seed=1), tmp_path / "cwd" / NAME, make_config())
    monkeypatch.chdir(tmp_path / "cwd")
    loaded = zoo.create_model(NAME, pretrained=True).eval()
    assert torch.equal(loaded(sample_input()), model(sample_input()))
    assert load_checkpoint(Path(NAME)).checkpoint_config.weights_sha256 != loaded.checkpoint_config.weights_sha256


# ----------------------------------------------------------------- 2. every file a load reads is pinned


def test_a_config_changed_in_the_mirror_is_refused_naming_file_and_pin(published):
    _, repo, registry_file = published
    write_json(repo / CONFIG, threshold_times_ten(read_json(repo / CONFIG)))  # same weights, same weights_sha256
    pinned = read_json(registry_file)["checkpoints"][0]["config_sha256"]
    for weights in (True, False):  # the graph of random weights comes from the config too
        with pytest.raises(CheckpointError, match=rf"{repo / CONFIG}: sha256 is .* but .*pretrained\.json "
                                                  rf"\(entry '{NAME}'\) records {pinned}"):
            zoo.create_model(NAME, pretrained=weights)


def test_a_config_changed_on_the_hub_is_refused(published, tmp_path, monkeypatch):
    _, repo, _ = published
    served = tmp_path / "served"
    served.mkdir()
    (served / WEIGHTS).write_bytes((repo / WEIGHTS).read_bytes())
    write_json(served / CONFIG, threshold_times_ten(read_json(repo / CONFIG)))
    monkeypatch.setenv("ZOO_HUB_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setattr(hub, "download", lambda repo_id, revision, cache_dir=None: served)
    with pytest.raises(CheckpointError, match=rf"{served / CONFIG}: sha256 is .* records"):
        zoo.create_model(NAME, pretrained=True)
    write_json(served / CONFIG, read_json(repo / CONFIG))  # the published content, re-serialised: other bytes
    with pytest.raises(CheckpointError, match="config.json: sha256 is"):
        zoo.create_model(NAME, pretrained=True)
    (served / CONFIG).write_bytes((repo / CONFIG).read_bytes())
    zoo.create_model(NAME, pretrained=True)


def test_a_wrong_config_pin_in_the_registry_is_refused(published):
    _, _, registry_file = published
    data = read_json(registry_file)
    data["checkpoints"][0]["config_sha256"] = "e" * 64
    write_json(registry_file, data)
    with pytest.raises(CheckpointError, match="records eeee"):
        zoo.create_model(NAME, pretrained=True)


@pytest.mark.parametrize("mutate", [lambda c: c.update(weights_sha256=""), lambda c: c.pop("weights_sha256")])
def test_a_config_without_the_weights_hash_is_refused(tiny, mutate):
    config = read_json(tiny / CONFIG)
    mutate(config)
    write_json(tiny / CONFIG, config)
    with pytest.raises(ConfigError, match=rf"{tiny / CONFIG}: field 'weights_sha256' .* must be a sha256 digest"):
        load_checkpoint(tiny)


def test_loading_weights_needs_a_hash(tiny):
    model = tiny_model()
    with pytest.raises(TypeError):
        load_weights(model, tiny / WEIGHTS)  # noqa: there is no unverified load
    with pytest.raises(CheckpointError, match="sha256 is"):
        load_weights(model, tiny / WEIGHTS, "0" * 64)
    load_weights(model, tiny / WEIGHTS, sha256_file(tiny / WEIGHTS))


def test_registries_without_config_pins_or_malformed_are_refused(published):
    _, _, registry_file = published
    good = read_json(registry_file)
    entry = good["checkpoints"][0]
    cases = [
        ({"format_version": 1, "checkpoints": [{k: v for k, v in entry.items() if k != "config_sha256"}]},
         "field 'format_version' is 1"),
        ({**good, "checkpoints": [{k: v for k, v in entry.items() if k != "config_sha256"}]},
         r"checkpoints\[0\]: expected an object with exactly the fields"),
        ({**good, "checkpoints": [{**entry, "sha256": "ABC"}]},
         r"checkpoints\[0\]: field 'sha256' .* must be a sha256 digest"),
        ({**good, "checkpoints": [entry, entry]}, r"checkpoints\[1\]: .* is listed twice"),
        ({**good, "checkpoints": {"a": 1}}, "field 'checkpoints' must be a list"),
        ([1, 2], "expected an object with exactly 'format_version' and 'checkpoints'"),
    ]
    for data, message in cases:
        write_json(registry_file, data)
        with pytest.raises(ConfigError, match=rf"{registry_file}: {message}"):
            zoo.list_models(pretrained=True)
    for raw, message in ((b"\xff\xfe{}", "not UTF-8 text"), (b"{", "not valid JSON"),
                         (b"[" * 100_000, "JSON nested too deeply"), (b'{"a": NaN}', "field 'a' is nan")):
        registry_file.write_bytes(raw)
        with pytest.raises(ConfigError, match=rf"{registry_file}: {message}"):
            zoo.create_model(NAME, pretrained=True)


# ----------------------------------------------------------------- 3. weights are never cast


def test_weights_in_another_dtype_are_refused_naming_keys_and_dtypes(tiny):
    state = {key: (value.double() if value.is_floating_point() else value)
             for key, value in tiny_model().state_dict().items()}
    set_weights(tiny, serialize_safetensors(state, {"format": "pt"}))
    with pytest.raises(CheckpointError, match=r"dtype mismatch \(snnzoo never casts weights\) features\.0\.conv\."
                                              r"weight: checkpoint torch\.float64, model torch\.float32"):
        load_checkpoint(tiny)
    f32 = save_checkpoint(tiny_model(), tiny.parent / "f32", make_config()) / WEIGHTS
    with pytest.raises(CheckpointError, match="checkpoint torch.float32, model torch.float64"):
        load_weights(tiny_model().double(), f32, sha256_file(f32))  # the other way round, through load_weights


# ----------------------------------------------------------------- 4. malformed configs: one ConfigError


def _text(mutate):
    """A mutation of the parsed config, written back as JSON (NaN allowed, as a hostile writer would)."""
    def apply(raw: bytes) -> bytes:
        data = json.loads(raw)
        mutate(data)
        return json.dumps(data).encode()
    return apply


def _set(path: str, value):
    def mutate(data):
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value
    return _text(mutate)


MALFORMED = [
    (lambda raw: raw.replace(b'"recipe"', b'"rec\xffipe"', 1), r"not UTF-8 text \(byte offset \d+"),
    (lambda raw: raw.replace(b'"recipe": {', b'"recipe": {"deep": ' + b"[" * 50_000 + b"]" * 50_000 + b",", 1),
     "JSON nested too deeply"),
    (_set("recipe.deep", json.loads("[" * 40 + "]" * 40)), "field 'recipe.deep.*' is nested more than 32 levels"),
    (_set("metrics.top1", float("nan")), "field 'metrics.top1' is nan; numbers must be finite"),
    (_set("input.mean", [float("inf")]), "field 'input.mean\\[0\\]' is inf"),
    (lambda raw: raw.replace(b'"recipe": {', b'"recipe": {"x": 1e999,', 1), "field 'recipe.x' is inf"),
    (lambda raw: raw.replace(b'"recipe": {', b'"recipe": {"x": 1' + b"0" * 5000 + b",", 1), "not valid JSON"),
    (lambda raw: raw.replace(b'"recipe": {', b'"recipe": {"x": "\\ud800",', 1),
     "field 'recipe.x' holds an invalid character"),
    (lambda raw: raw.replace(b'"recipe": {', b'"recipe": {"x": 1, "x": 2,', 1), "duplicate key 'x'"),
    (_set("arch_kwargs.T", "4"), "field 'arch_kwargs.T' must be an integer in 1..4096, got '4'"),
    (_set("arch_kwargs.T", 0), "field 'arch_kwargs.T' must be an integer"),
    (_set("arch_kwargs.T", -3), "field 'arch_kwargs.T' must be an integer"),
    (_set("arch_kwargs.T", True), "field 'arch_kwargs.T' must be an integer"),
    (_set("arch_kwargs.T", 2.0), "field 'arch_kwargs.T' must be an integer"),
    (_set("arch_kwargs.T", 10 ** 9), "field 'arch_kwargs.T' must be an integer"),
    (_set("arch_kwargs.neuron", 7), "field 'arch_kwargs.neuron' must be a neuron spec"),
    (_set("arch_kwargs.channels", "2"), "field 'arch_kwargs' does not build 'spiking_convnet'"),
    (_set("arch_kwargs.colour", "red"), "field 'arch_kwargs' does not build 'spiking_convnet' \\(TypeError"),
    (_set("architecture", "no_such_net"), "field 'name' must be 'no_such_net.<tag>'"),
    (_text(lambda c: c.update(name="no_such_net.x", architecture="no_such_net")),
     "field 'architecture' names no registered model: 'no_such_net'"),
    (_set("input.std", [0]), "field 'input.std\\[0\\]' must be a finite number > 0, got 0"),
    (_set("input.std", [-0.5]), "field 'input.std\\[0\\]' must be a finite number > 0"),
    (_set("input.std", ["0.3"]), "field 'input.std\\[0\\]' must be a finite number"),
    (_set("input.mean", [-0.5]), "field 'input.mean\\[0\\]' must be a finite number >= 0"),
    (_set("input.mean", [True]), "field 'input.mean\\[0\\]'"),
    (_set("input.std", []), "'input.mean' and 'input.std' must be given together"),
    (_set("input.size", [1, "28", 28]), "field 'input.size' must be \\[C, H, W\\] positive integers"),
    (_set("input.size", [1, 28.0, 28]), "field 'input.size'"),
    (_set("input.size", [1, True, 28]), "field 'input.size'"),
    (_set("input.size", [1, 0, 28]), "field 'input.size'"),
    (_set("input.size", [1, 2 ** 40, 28]), "field 'input.size'"),
    (_set("input.size", "1x28x28"), "field 'size' must be list"),
    (_set("format_version", True), "field 'format_version' is True"),
    (_set("weights_sha256", "abc"), "field 'weights_sha256' .* must be a sha256 digest"),
    (_set("metrics.train", [1]), "field 'metrics.train' must be an object"),
    (_set("metrics.evaluations", {"T": 1}), "field 'metrics.evaluations' must be a list"),
    (lambda raw: raw + b" " * MAX_CONFIG_BYTES, f"larger than {MAX_CONFIG_BYTES:,} bytes"),
    (lambda raw: b"", "not valid JSON"),
    (lambda raw: b"[]", "expected a JSON object, got list"),
]


@pytest.mark.parametrize("mutate, message", MALFORMED)
def test_malformed_configs_are_one_config_error_naming_file_and_field(tiny, mutate, message):
    raw = (tiny / CONFIG).read_bytes()
    (tiny / CONFIG).write_bytes(mutate(raw))
    with pytest.raises(ConfigError, match=message) as error:
        load_checkpoint(tiny)
    assert str(error.value).startswith(str(tiny / CONFIG)), error.value


def test_a_config_that_is_a_folder_or_missing_is_a_config_error(tiny):
    (tiny / CONFIG).unlink()
    with pytest.raises(ConfigError, match=rf"{tiny / CONFIG}: no such file"):
        load_checkpoint(tiny)
    (tiny / CONFIG).mkdir()
    with pytest.raises(ConfigError, match=rf"{tiny / CONFIG}: cannot be read"):
        load_checkpoint(tiny)


def test_metrics_a_card_cannot_render_are_refused_by_publish(tiny, tmp_path):
    config = read_json(tiny / CONFIG)
    config["metrics"]["train"] = {key: "many" for key in ("epochs", "device", "processes", "precision",
                                                          "train_time_s", "wall_time_s", "images_per_s",
                                                          "peak_memory_mb", "test_top1", "test_samples")}
    write_json(tiny / CONFIG, config)
    with pytest.raises(ConfigError, match=rf"{tiny / CONFIG}: field 'metrics.train' cannot be rendered"):
        publish(tiny, mirror=tmp_path / "mirror", cards_dir=None, registry=None)
    assert not (tmp_path / "mirror").exists()


def _header(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]), data[8 + size:]


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def _edit_header(edit):
    def apply(data: bytes) -> bytes:
        header, body = _header(data)
        edit(header)
        return _with_header(header, body)
    return apply


def _first(header: dict) -> dict:
    return header[sorted(k for k in header if k != "__metadata__")[0]]


BAD_WEIGHTS = [
    (lambda d: (2 ** 64 - 1).to_bytes(8, "little") + d[8:], "byte offset 0: header length 18,446,744,073,709,551,615"),
    (lambda d: (len(d)).to_bytes(8, "little") + d[8:], "byte offset 0: header length"),
    (lambda d: d[:5], "5 bytes; a safetensors file starts with an 8-byte header length"),
    (lambda d: d[:-3], "the tensors end there, but the file has"),
    (lambda d: d + b"\0" * 8, "the tensors end there, but the file has"),
    (lambda d: (3).to_bytes(8, "little") + b"abc" + d[8:], "header \\(bytes 8..11\\): not valid JSON"),
    (_edit_header(lambda h: _first(h).update(dtype="F128")), "dtype 'F128' is not one snnzoo reads"),
    (_edit_header(lambda h: _first(h).update(shape=[-1])), "shape must be a list of at most 64 non-negative"),
    (_edit_header(lambda h: _first(h).update(shape=[2] * 100_000)), r"shape must be .*\.\.\. \(300,000 characters\)"),
    (_edit_header(lambda h: _first(h).update(shape=[10 ** 30])), "non-negative 64-bit integers"),
    (_edit_header(lambda h: _first(h).update(shape=[1000])), r"span \d+ bytes, but [A-Z0-9]+ \[1000\] needs"),
    (_edit_header(lambda h: _first(h).update(data_offsets=[0, 2 ** 70])), "data_offsets"),
    (_edit_header(lambda h: _first(h).update(data_offsets=[8, 4])), "0 <= begin <= end"),
    (_edit_header(lambda h: _first(h).pop("dtype")), "must be an object with exactly dtype, shape and data_offsets"),
    (_edit_header(lambda h: h.update(__metadata__={"format": 3})), "'__metadata__' must map strings to strings"),
    (_edit_header(lambda h: h.update(extra={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})),
     "tensor .* starts at [0-9,]+; tensor data must follow the header without gaps or overlaps"),
]


@pytest.mark.parametrize("mutate, message", BAD_WEIGHTS)
def test_malformed_safetensors_are_one_checkpoint_error(tiny, mutate, message):
    set_weights(tiny, mutate((tiny / WEIGHTS).read_bytes()))
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(tiny)
    assert str(error.value).startswith(str(tiny / WEIGHTS)), error.value


# ----------------------------------------------------------------- 5. reproducible bytes


SAVE = """
import sys, hashlib
sys.path.insert(0, sys.argv[1])
from checkpoint_fixtures import make_config, make_model
from zoo.checkpoint import save_checkpoint
from pathlib import Path
folder = save_checkpoint(make_model(), Path(sys.argv[2]), make_config())
print(hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
      hashlib.sha256((folder / "config.json").read_bytes()).hexdigest())
"""


def test_the_same_weights_always_save_to_the_same_bytes(tmp_path):
    model = make_model()
    hashes = {(sha256_file(f / WEIGHTS), sha256_file(f / CONFIG))
              for f in (save_checkpoint(model, tmp_path / str(i), make_config()) for i in range(6))}
    assert len(hashes) == 1
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # another hash seed than this process's
    out = subprocess.run([sys.executable, "-c", SAVE, str(Path(__file__).parent), str(tmp_path / "fresh")],
                         capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert tuple(out.stdout.split()) == hashes.pop()


def test_published_files_written_by_the_safetensors_library_still_load():
    """The shipped model.safetensors were written by safetensors' own writer (metadata in another
    order); they are not rewritten, and the new reader accepts every one of them."""
    entries = list(registry._pretrained_table().values())
    if not entries:
        pytest.skip("no checkpoint is published")
    root = hub.mirror_root()
    for entry in entries:
        files = read_checkpoint(root.joinpath(*entry.hf_hub_id.split("/")), entry.pins)
        check_architecture(files, {})
    smallest = min(entries, key=lambda e: (root.joinpath(*e.hf_hub_id.split("/")) / WEIGHTS).stat().st_size)
    assert zoo.create_model(smallest.name, pretrained=True).checkpoint_config.name == smallest.name


# ----------------------------------------------------------------- 6. a bounded, seeded fuzzer


HOSTILE_VALUES = [None, True, False, 0, -1, 2 ** 63, 2 ** 70, 1e308, -0.0, 0.5, "", "x", "../../victim", "4",
                  "lif", [], [0], [1, 28, 28], {}, {"name": "lif"}, [[[[]]]], "\u0000", "a" * 300]


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON tree."""
    yield prefix, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, prefix + (i,))


def _replace(tree, rng: random.Random):
    paths = [p for p, _ in _paths(tree) if p]
    path = rng.choice(paths)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    return tree


def _bit_flips(data: bytes, rng: random.Random, region: int | None = None) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(region or len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def _mutate_config(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return _bit_flips(raw, rng)
    if kind == 1:
        return raw[:rng.randrange(len(raw))]
    tree = _replace(json.loads(raw), rng)
    if kind == 3:
        tree = _replace(tree, rng)
    return json.dumps(tree).encode()


def _mutate_weights(data: bytes, rng: random.Random) -> bytes:
    size = int.from_bytes(data[:8], "little")
    kind = rng.randrange(5)
    if kind == 0:
        return _bit_flips(data, rng, region=8 + size if rng.random() < 0.7 else None)
    if kind == 1:
        return data[:rng.randrange(len(data))]
    if kind == 2:
        huge = rng.choice([2 ** 64 - 1, 2 ** 63, 2 ** 32, len(data), size + 1, size - 1, 0, rng.randrange(2 ** 64)])
        return huge.to_bytes(8, "little") + data[8:]
    header, body = _header(data)
    header = _replace(header, rng)
    if kind == 4:
        body = body[:rng.randrange(len(body) + 1)] + bytes(rng.randrange(16))
    return _with_header(header, body)


def _outcome(action) -> str:
    try:
        action()
    except ZOO_ERRORS as error:
        return type(error).__name__
    return "loaded"


def test_fuzzed_checkpoints_load_or_fail_with_the_zoos_errors(tiny, tmp_path, monkeypatch):
    """A few hundred seeded mutations of a valid config.json, model.safetensors and registry: each
    either loads or raises CheckpointError, ConfigError or UnsafeNameError, never anything else."""
    rng = random.Random(20261203)
    config, weights = (tiny / CONFIG).read_bytes(), (tiny / WEIGHTS).read_bytes()
    outcomes: dict[str, int] = {}

    def record(what: str, i: int, action) -> None:
        try:
            result = _outcome(action)
        except Exception as error:  # the failure to find: report the case that produced it
            pytest.fail(f"{what} mutation {i}: {type(error).__name__}: {error}")
        outcomes[result] = outcomes.get(result, 0) + 1

    for i in range(200):
        (tiny / WEIGHTS).write_bytes(weights)
        (tiny / CONFIG).write_bytes(_mutate_config(config, rng))
        record("config", i, lambda: load_checkpoint(tiny))
    (tiny / CONFIG).write_bytes(config)
    for i in range(250):
        set_weights(tiny, _mutate_weights(weights, rng))
        record("weights", i, lambda: load_checkpoint(tiny))

    _, folder = write_checkpoint(tmp_path / "published")
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=registry_file)
    monkeypatch.setattr(registry, "PRETRAINED_FILE", registry_file)
    good = registry_file.read_bytes()
    for i in range(80):
        registry_file.write_bytes(_mutate_config(good, rng))
        record("registry", i, lambda: read_registry(registry_file))
    assert outcomes.get("loaded", 0) > 0 and sum(outcomes.values()) == 530, outcomes
