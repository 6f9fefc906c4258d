"""``zoo publish``: assemble a checkpoint's Hub repository and upload it.

The repository is the checkpoint folder as the Hub serves it: ``model.safetensors``,
``config.json``, ``README.md`` (the model card generated from the config and its recorded
evaluations) and, for checkpoints made by ``zoo train``, ``train_log.csv`` (per-epoch log). Publishing writes it into the local Hub mirror, writes the same card into
``model_cards/`` and records the checkpoint (Hub id, revision, sha256) in ``zoo/pretrained.json``.
With a token (``--token`` or ``HF_TOKEN``) it uploads the folder with ``huggingface_hub`` and pins
the commit it created; without one it says what it would upload.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .cards import render_card
from .checkpoint import CARD, CONFIG, TRAIN_LOG, WEIGHTS, sha256_file, verify_sha256, write_atomic
from .config import CheckpointConfig
from .hub import HUB_FILES, mirror_folder, mirror_root
from .registry import PRETRAINED_FILE as REGISTRY

CHECKOUT = Path(__file__).resolve().parents[1]
CARDS_DIR = CHECKOUT / "model_cards"
DEFAULT_OWNER = "snnzoo"
REPOSITORY_FILES = (*HUB_FILES, TRAIN_LOG)


def default_repo_id(name: str) -> str:
    """``convnet.lif_fashion_mnist_t4`` -> ``snnzoo/convnet.lif_fashion_mnist_t4``."""
    return f"{DEFAULT_OWNER}/{name}"


def assemble(checkpoint: Path, repo_id: str, mirror: Path, cards_dir: Path | None) -> tuple[Path, CheckpointConfig]:
    """Write the Hub repository of ``checkpoint`` into ``mirror``; returns its folder and config."""
    config = CheckpointConfig.load(checkpoint / CONFIG)
    verify_sha256(checkpoint / WEIGHTS, config.weights_sha256, str(checkpoint / CONFIG))
    card = render_card(config, repo_id)
    target = mirror_folder(repo_id, mirror)
    target.mkdir(parents=True, exist_ok=True)
    if (checkpoint / WEIGHTS).resolve() != (target / WEIGHTS).resolve():
        write_atomic(target / WEIGHTS, (checkpoint / WEIGHTS).read_bytes())
    write_atomic(target / CONFIG, config.dumps())
    write_atomic(target / CARD, card)
    if checkpoint.resolve() != target.resolve():
        if (checkpoint / TRAIN_LOG).is_file():
            write_atomic(target / TRAIN_LOG, (checkpoint / TRAIN_LOG).read_bytes())
        else:
            (target / TRAIN_LOG).unlink(missing_ok=True)  # never serve the log of other weights
    if cards_dir is not None:
        write_atomic(cards_dir / f"{config.name}.md", card)
    return target, config


def register(registry: Path, name: str, repo_id: str, revision: str, sha256: str) -> None:
    """Add or update the checkpoint ``name`` in the registry file (kept sorted by name)."""
    data = json.loads(registry.read_text())
    entries = {entry["name"]: entry for entry in data["checkpoints"]}
    entries[name] = {"name": name, "hf_hub_id": repo_id, "revision": revision, "sha256": sha256}
    data["checkpoints"] = [entries[key] for key in sorted(entries)]
    write_atomic(registry, json.dumps(data, indent=2) + "\n")


def upload(folder: Path, repo_id: str, token: str, name: str) -> str:
    """Upload ``folder`` to the Hub repository ``repo_id``; returns the commit it created."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               allow_patterns=list(REPOSITORY_FILES), commit_message=f"snnzoo: publish {name}")
    return commit.oid


def publish(checkpoint: str | Path, repo_id: str | None = None, token: str | None = None,
            mirror: str | Path | None = None, cards_dir: str | Path | None = CARDS_DIR,
            registry: str | Path | None = REGISTRY) -> dict[str, str]:
    """Publish a checkpoint folder; returns its registry entry. ``cards_dir=None`` writes no card
    copy and ``registry=None`` records nothing (the Hub repository is still assembled)."""
    checkpoint = Path(checkpoint)
    name = CheckpointConfig.load(checkpoint / CONFIG).name
    repo_id = repo_id or default_repo_id(name)
    mirror = Path(mirror) if mirror is not None else (mirror_root() or CHECKOUT / "hub")
    folder, config = assemble(checkpoint, repo_id, mirror, Path(cards_dir) if cards_dir else None)
    revision = upload(folder, repo_id, token, name) if token else "main"
    if registry is not None:
        register(Path(registry), name, repo_id, revision, config.weights_sha256)
    return {"name": name, "hf_hub_id": repo_id, "revision": revision, "sha256": config.weights_sha256,
            "folder": str(folder)}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("publish", help="assemble a checkpoint's Hub repository and upload it",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint folder (model.safetensors + config.json)")
    parser.add_argument("--repo-id", help=f"Hub repository (default {DEFAULT_OWNER}/<name>)")
    parser.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="Hub token (default $HF_TOKEN); "
                        "without one nothing is uploaded")
    parser.add_argument("--mirror", help="local Hub mirror (default $ZOO_HUB_MIRROR or the checkout's hub/)")
    parser.add_argument("--cards-dir", default=str(CARDS_DIR), help="where the model card copy goes "
                        "(default the checkout's model_cards/)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    entry = publish(args.checkpoint, args.repo_id, args.token, args.mirror, args.cards_dir)
    folder = Path(entry["folder"])
    print(f"{entry['name']}: repository assembled in {folder}")
    for filename in REPOSITORY_FILES:
        path = folder / filename
        if not path.exists():
            continue
        print(f"  {filename:<18} {path.stat().st_size:>12,d} bytes  sha256 {sha256_file(path)}")
    if args.token:
        print(f"uploaded to https://huggingface.co/{entry['hf_hub_id']} at revision {entry['revision']}")
    else:
        print(f"no token given: would upload these files to https://huggingface.co/{entry['hf_hub_id']} "
              "(pass --token or set HF_TOKEN)")
    print(f"registered {entry['name']} in {REGISTRY}")
    return 0
