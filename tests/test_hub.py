"""Loading through the real huggingface_hub client from a local server that behaves like the Hub,
and through torch.hub from this repository, each in a fresh process (both read their settings,
HF_ENDPOINT and HF_HUB_OFFLINE, from the environment at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.publish import publish

from checkpoint_fixtures import NAME, sample_input, write_checkpoint, write_registry

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"

LOAD = """
import sys, json, torch
from pathlib import Path
import zoo, zoo.registry
zoo.registry.PRETRAINED_FILE = Path(sys.argv[1])
x = torch.linspace(-1, 2, 2 * 28 * 28).reshape(2, 1, 28, 28)
try:
    model = zoo.create_model(sys.argv[2], pretrained=True).eval()
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
else:
    print(json.dumps({"logits": model(x).tolist(), "revision_dir": str(model.checkpoint_config.name)}))
"""


def run_python(code: str, *args: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env}, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def hub(tmp_path):
    """A published checkpoint served by a local Hub; the registry pins its revision and sha256."""
    from hub_server import HubServer

    model, folder = write_checkpoint(tmp_path / "ckpt")
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    entry = publish(folder, mirror=tmp_path / "served", cards_dir=None, registry=registry_file)
    pinned = json.loads(registry_file.read_text())
    pinned["checkpoints"][0]["revision"] = COMMIT
    registry_file.write_text(json.dumps(pinned))
    with HubServer({entry["hf_hub_id"]: Path(entry["folder"])}, COMMIT) as server:
        env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "ZOO_HUB_MIRROR": str(tmp_path / "empty"),
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        yield model, registry_file, server, env


@pytest.mark.slow
def test_hub_download_cache_offline_and_corruption(hub, tmp_path):
    model, registry_file, server, env = hub
    expected = model(sample_input())

    # 1. download through huggingface_hub at the pinned revision
    out = run_python(LOAD, str(registry_file), NAME, env=env)
    assert torch.allclose(torch.tensor(out["logits"]), expected, rtol=0, atol=0)
    assert any(f"/resolve/{COMMIT}/model.safetensors" in r for r in server.requests)
    snapshot = tmp_path / "hf" / "hub" / f"models--snnzoo--{NAME}" / "snapshots" / COMMIT
    assert (snapshot / "model.safetensors").is_file()

    # 2. offline mode serves the cache without touching the server
    served = len(server.requests)
    out = run_python(LOAD, str(registry_file), NAME, env={**env, "HF_HUB_OFFLINE": "1"})
    assert torch.equal(torch.tensor(out["logits"]), expected)
    assert len(server.requests) == served

    # 3. offline with an empty cache: a clear error naming every place tried
    out = run_python(LOAD, str(registry_file), NAME,
                     env={**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf2")})
    assert f"checkpoint '{NAME}' not found: tried the local mirror" in out["error"]
    assert f"Hub repository 'snnzoo/{NAME}' at revision '{COMMIT}'" in out["error"]

    # 4. a corrupted download (same size, one byte flipped) is rejected by the sha256 pin
    server.corrupt.add("model.safetensors")
    out = run_python(LOAD, str(registry_file), NAME, env={**env, "HF_HOME": str(tmp_path / "hf3")})
    assert out["error"].startswith("CheckpointError") and "sha256 is" in out["error"]

    # 5. so is a config.json changed on the Hub (the weights intact): the registry pins it too, and
    # the model card is never fetched by a load
    server.corrupt = {"config.json"}
    out = run_python(LOAD, str(registry_file), NAME, env={**env, "HF_HOME": str(tmp_path / "hf4")})
    pinned = json.loads(registry_file.read_text())["checkpoints"][0]["config_sha256"]
    assert out["error"].startswith("CheckpointError") and "config.json: sha256 is" in out["error"]
    assert f"records {pinned}" in out["error"]
    assert not any("README.md" in r for r in server.requests)


@pytest.mark.slow
def test_torch_hub_load_from_this_repository(tmp_path):
    """torch.hub.load(<repo dir>, name, source="local") in a fresh process, random and pretrained."""
    model, folder = write_checkpoint(tmp_path / "ckpt")
    registry_file = write_registry(tmp_path / "pretrained.json", [])
    publish(folder, mirror=tmp_path / "mirror", cards_dir=None, registry=registry_file)
    code = """
import sys, json, torch
from pathlib import Path
import zoo.registry
zoo.registry.PRETRAINED_FILE = Path(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import hubconf  # what torch.hub.list and torch.hub.help read for a GitHub repository
names = sorted(n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_"))
random = torch.hub.load(sys.argv[2], "spiking_convnet", source="local", pretrained=False, T=3)
tagged = torch.hub.load(sys.argv[2], "spiking_convnet", source="local", pretrained=sys.argv[3].split(".", 1)[1]).eval()
first = torch.hub.load(sys.argv[2], "spiking_convnet", source="local", pretrained=True).eval()
x = torch.linspace(-1, 2, 2 * 28 * 28).reshape(2, 1, 28, 28)
print(json.dumps({"names": names, "T": random.T, "doc": hubconf.spiking_convnet.__doc__,
                  "tagged": tagged(x).tolist(), "first": first(x).tolist()}))
"""
    out = run_python(code, str(registry_file), str(REPO), NAME, env={"ZOO_HUB_MIRROR": str(tmp_path / "mirror")})
    import zoo

    assert out["names"] == zoo.list_models()
    assert out["T"] == 3 and "pretrained:" in out["doc"]
    expected = model(sample_input())
    assert torch.equal(torch.tensor(out["tagged"]), expected) and torch.equal(torch.tensor(out["first"]), expected)
