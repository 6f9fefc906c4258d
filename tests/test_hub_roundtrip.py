"""Sharing a changed model: ``save_pretrained`` writes what ``zoo publish`` writes, and
``push_to_hub`` -> ``zoo.create_model("hf-hub:owner/repo[@commit]")`` round-trips through
huggingface_hub's real client against a local Hub-compatible server (tests/hub_server.py).

The client work runs in fresh processes, as in test_hub.py: huggingface_hub reads HF_ENDPOINT,
HF_HOME and HF_HUB_OFFLINE from the environment when it is imported."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.checkpoint import CONFIG, WEIGHTS, CheckpointError, sha256_file
from zoo.config import CheckpointConfig
from zoo.hub import HUB_FILES
from zoo.names import UnsafeNameError
from zoo.publish import publish
from zoo.sharing import push_to_hub, save_pretrained

from checkpoint_fixtures import make_config, make_model, sample_input

REPO = Path(__file__).resolve().parents[1]
SHIPPED = "spiking_convnet.mlf_fashion_mnist_t4_c32"
NEW_NAME = "spiking_convnet.five_classes_t4"
REPO_ID = "someone/five-classes"
TOKEN = "hf_roundtrip_test_token"


def published_files(folder: Path, repo_id: str, tmp_path: Path) -> dict[str, bytes]:
    """The files ``zoo publish`` writes into the Hub repository for the checkpoint ``folder``."""
    entry = publish(folder, repo_id=repo_id, mirror=tmp_path / "published" / folder.name, cards_dir=None,
                    registry=None)
    return {path.name: path.read_bytes() for path in Path(entry["folder"]).iterdir()}


def folder_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def shipped_with_new_classifier() -> torch.nn.Module:
    model = zoo.create_model(SHIPPED, pretrained=True).eval()
    torch.manual_seed(0)
    model.reset_classifier(5)
    return model


# ------------------------------------------------------------------------------- save_pretrained


def test_save_pretrained_writes_what_publish_writes(tmp_path):
    model = shipped_with_new_classifier()
    shipped = model.checkpoint_config
    folder = model.save_pretrained(tmp_path / "mine", name=NEW_NAME)

    assert sorted(os.listdir(folder)) == sorted(HUB_FILES)
    config = CheckpointConfig.load(folder / CONFIG)
    assert config.name == NEW_NAME and config.architecture == shipped.architecture
    assert config.arch_kwargs == model.arch_kwargs and config.arch_kwargs["num_classes"] == 5
    assert config.weights_sha256 == sha256_file(folder / WEIGHTS)
    assert (config.input, config.dataset, config.recipe) == (shipped.input, shipped.dataset, shipped.recipe)
    assert config.metrics == {}  # the shipped metrics were measured on the 10-class network
    assert model.checkpoint_config is shipped and shipped.name == SHIPPED  # the model is left as it was

    loaded = zoo.create_model(folder, pretrained=True).eval()
    state, back = model.state_dict(), loaded.state_dict()
    assert list(back) == list(state)
    assert all(back[key].dtype == state[key].dtype and torch.equal(back[key], state[key]) for key in state)
    assert torch.equal(loaded(sample_input()), model(sample_input()))

    # byte for byte the repository zoo publish assembles for this checkpoint, and deterministic
    assert folder_files(folder) == published_files(folder, f"snnzoo/{NEW_NAME}", tmp_path)
    assert folder_files(save_pretrained(model, tmp_path / "again", name=NEW_NAME)) == folder_files(folder)


def test_save_pretrained_keeps_metrics_only_for_the_weights_they_describe(tmp_path, caplog):
    model = make_model()
    given = make_config()
    folder = save_pretrained(model, tmp_path / "a", config=given)  # a random model, its config given
    assert CheckpointConfig.load(folder / CONFIG).metrics == given.metrics
    assert given.weights_sha256 == ""  # the caller's config is not changed

    loaded = zoo.create_model(folder, pretrained=True)
    (folder / "train_log.csv").write_text("epoch,loss\n1,2.3\n")
    unchanged = save_pretrained(loaded, tmp_path / "b", name="spiking_convnet.renamed")
    assert CheckpointConfig.load(unchanged / CONFIG).metrics == given.metrics

    with torch.no_grad():
        loaded.get_classifier().weight.add_(0.25)
    with caplog.at_level(logging.WARNING, logger="zoo"):
        save_pretrained(loaded, folder)  # over the checkpoint it came from
    assert CheckpointConfig.load(folder / CONFIG).metrics == {}
    assert "metrics" in caplog.text and "not saved" in caplog.text
    assert sorted(os.listdir(folder)) == sorted(HUB_FILES)  # the old weights' training log is gone
    assert "No evaluation recorded yet." in (folder / "README.md").read_text()


def test_save_pretrained_and_push_to_hub_refuse_before_writing(tmp_path):
    random = make_model()
    with pytest.raises(ValueError, match=r"no checkpoint config .* pass config=zoo\.config\.CheckpointConfig"):
        random.save_pretrained(tmp_path / "random")
    with pytest.raises(ValueError, match="no checkpoint config"):
        random.push_to_hub(REPO_ID)  # before any request

    model = shipped_with_new_classifier()
    with pytest.raises(ValueError, match="architecture part must be the model's architecture 'spiking_convnet'"):
        model.save_pretrained(tmp_path / "other", name="spiking_vgg7.mine")
    with pytest.raises(UnsafeNameError):
        model.save_pretrained(tmp_path / "bad", name="../mine")
    other = make_config("spiking_vgg7.mine")
    other.architecture = "spiking_vgg7"
    with pytest.raises((ValueError, CheckpointError), match="spiking_vgg7"):
        model.save_pretrained(tmp_path / "vgg", config=other)
    with pytest.raises(UnsafeNameError, match="repo_id"):
        model.push_to_hub("not a repo id")
    with pytest.raises(UnsafeNameError, match="revision"):
        push_to_hub(model, REPO_ID, revision="../main")
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------- round trip

PUSH = """
import json, os, sys, torch, zoo
from pathlib import Path
repo, token, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
x = torch.linspace(-1, 2, 2 * 28 * 28).reshape(2, 1, 28, 28)
model = zoo.create_model("%(shipped)s", pretrained=True).eval()
torch.manual_seed(0)
model.reset_classifier(5)
result = {}
model.save_pretrained(out / "first", name="%(name)s", repo_id=repo)  # what the push should upload
result["hub_imported_by_save"] = "huggingface_hub" in sys.modules
result["first"] = model.push_to_hub(repo, token=token, name="%(name)s")
result["again"] = model.push_to_hub(repo, token=token, name="%(name)s")  # nothing changed
result["first_logits"] = model(x).tolist()
with torch.no_grad():
    model.get_classifier().weight.mul_(-1)
model.save_pretrained(out / "second", name="%(name)s", repo_id=repo)
result["second"] = model.push_to_hub(repo, token=token, name="%(name)s", commit_message="flip the classifier")
result["second_logits"] = model(x).tolist()
result["with_log"] = model.push_to_hub("someone/with-log", token=token, name="%(name)s")
with torch.no_grad():
    model.get_classifier().bias.add_(1.0)
result["branch"] = model.push_to_hub(repo, token=token, name="%(name)s", revision="experiment")
result["branch_logits"] = model(x).tolist()
try:
    model.push_to_hub("someone/no-token", name="%(name)s")
except Exception as error:
    result["no_token"] = f"{type(error).__name__}: {error}"

for key, name in (("main", f"hf-hub:{repo}"), ("pinned", f"hf-hub:{repo}@{result['first']}"),
                  ("experiment", f"hf-hub:{repo}@experiment")):
    loaded = zoo.create_model(name, pretrained=True).eval()
    result[key] = {"logits": loaded(x).tolist(), "name": loaded.checkpoint_config.name,
                   "num_classes": loaded.num_classes}
from huggingface_hub import snapshot_download
result["snapshot"] = sorted(os.listdir(snapshot_download(repo, revision=result["first"])))
print(json.dumps(result))
""" % {"shipped": SHIPPED, "name": NEW_NAME}

LOAD = """
import json, sys, torch, zoo
x = torch.linspace(-1, 2, 2 * 28 * 28).reshape(2, 1, 28, 28)
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = zoo.create_model(name, pretrained=True).eval()(x).tolist()
    except Exception as error:
        out[name] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


def run_python(code: str, *args: str, env: dict[str, str]) -> dict:
    base = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                            env={**base, **env}, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_push_to_hub_download_pin_offline_and_tampering(tmp_path):
    from hub_server import HubServer

    with HubServer(token=TOKEN) as server:
        server.add_repo("someone/with-log", {"README.md": b"# hand-written\n", "train_log.csv": b"epoch\n1\n"})
        env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        out = run_python(PUSH, REPO_ID, TOKEN, str(tmp_path / "saved"), env=env)
        first, second, branch = out["first"], out["second"], out["branch"]
        repo = server.repos[REPO_ID]

        # 1. the pushes: one commit each, none for an unchanged model, the branch beside main
        assert not out["hub_imported_by_save"]
        assert out["again"] == first and len({first, second, branch}) == 3
        assert len(repo.commits) == 4  # the repository's initial commit and three pushes
        assert repo.branches == {"main": second, "experiment": branch}
        assert not repo.private
        assert out["no_token"].startswith("HfHubHTTPError") and "401" in out["no_token"]

        # 2. each commit holds exactly the files zoo publish writes for that checkpoint, byte for byte
        assert server.files(REPO_ID, first) == published_files(tmp_path / "saved" / "first", REPO_ID, tmp_path)
        assert server.files(REPO_ID, second) == published_files(tmp_path / "saved" / "second", REPO_ID, tmp_path)
        assert sorted(server.files("someone/with-log")) == sorted(HUB_FILES)  # the stale log deleted
        assert out["snapshot"] == sorted(HUB_FILES)

        # 3. downloaded by id (main), pinned by commit, and on the branch: the pushed models' outputs
        for key, expected in (("main", "second_logits"), ("pinned", "first_logits"), ("experiment", "branch_logits")):
            assert out[key]["name"] == NEW_NAME and out[key]["num_classes"] == 5
            assert torch.equal(torch.tensor(out[key]["logits"]), torch.tensor(out[expected])), key
        assert f"GET /{REPO_ID}/resolve/main/model.safetensors" in server.requests
        assert f"GET /{REPO_ID}/resolve/{first}/model.safetensors" in server.requests

        # 4. offline, from the cache alone: no request reaches the server
        served = len(server.requests)
        names = [f"hf-hub:{REPO_ID}", f"hf-hub:{REPO_ID}@{first}"]
        offline = run_python(LOAD, *names, env={**env, "HF_HUB_OFFLINE": "1"})
        assert torch.equal(torch.tensor(offline[names[0]]), torch.tensor(out["second_logits"]))
        assert torch.equal(torch.tensor(offline[names[1]]), torch.tensor(out["first_logits"]))
        assert len(server.requests) == served

        # 5. a tampered download (one byte flipped, same size and ETag) is refused by the config's sha256
        server.corrupt.add(WEIGHTS)
        tampered = run_python(LOAD, names[1], env={**env, "HF_HOME": str(tmp_path / "hf-fresh")})[names[1]]
        assert tampered.startswith("CheckpointError") and "sha256 is" in tampered
