"""``zoo publish``: assemble a checkpoint's Hub repository and upload it.

The repository is the checkpoint folder as the Hub serves it: ``model.safetensors``,
``config.json``, ``README.md`` (the model card generated from the config and its recorded
evaluations) and, for checkpoints made by ``zoo train``, ``train_log.csv`` (per-epoch log). Publishing writes it into the local Hub mirror, writes the same card into
``model_cards/`` and records the checkpoint in ``zoo/pretrained.json``: its Hub id, revision, the
sha256 of ``model.safetensors`` and the sha256 of the ``config.json`` it wrote (``config_sha256``),
so that a load verifies every file it reads. With a token (``--token`` or ``HF_TOKEN``) it uploads
the folder with ``huggingface_hub`` and pins the commit it created; without one it says what it
would upload, and the revision recorded is ``main`` (the digests pin the content; see ``zoo.hub``).

Nothing is taken on trust: the checkpoint must load (its config records the weights' sha256 and the
weights fit the architecture it describes) before anything is written; the repository id must be
a valid Hub id ``owner/repo``; and every write lands inside the mirror or the cards folder
(``zoo.names.confined``), whatever the names say.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from .cards import neuron_of, render_card
from .checkpoint import (CARD, CONFIG, TRAIN_LOG, WEIGHTS, CheckpointFiles, check_architecture, read_checkpoint,
                         sha256_file, write_atomic)
from .cli import one_line_errors
from .config import CheckpointConfig
from .evaluation.references import load_references, papers_for
from .hub import HUB_FILES, mirror_folder, mirror_root
from .names import DEFAULT_OWNER, check_repo_id, confined, default_repo_id
from .registry import PRETRAINED_FILE as REGISTRY
from .registry import REGISTRY_FORMAT, PretrainedEntry, parse_entry, read_registry
from .train.files import file_lock

CHECKOUT = Path(__file__).resolve().parents[1]
CARDS_DIR = CHECKOUT / "model_cards"
REFERENCES = CHECKOUT / "evaluation" / "references.csv"  # the papers' results a card sets its checkpoint beside
REPOSITORY_FILES = (*HUB_FILES, TRAIN_LOG)
REGISTRY_LOCK = ".zoo-registry.lock"


def card_of(config: CheckpointConfig, repo_id: str, source: str = "config") -> str:
    """The model card publishing writes: the config's, beside the method's published results on its
    data set (``REFERENCES``)."""
    papers = papers_for(neuron_of(config), config.dataset["name"], load_references(REFERENCES))
    return render_card(config, repo_id, source=source, papers=papers)


def assemble(files: CheckpointFiles, repo_id: str, mirror: Path, cards_dir: Path | None) -> tuple[Path, str]:
    """Write the Hub repository of the verified checkpoint ``files`` into ``mirror``; returns its
    folder and the sha256 of the config.json written there."""
    config = files.config
    card = card_of(config, repo_id, source=str(files.config_path))
    target = mirror_folder(repo_id, mirror)
    card_file = confined(cards_dir, f"{config.name}.md") if cards_dir is not None else None
    target.mkdir(parents=True, exist_ok=True)
    if files.weights_path.resolve() != (target / WEIGHTS).resolve():
        write_atomic(target / WEIGHTS, files.weights)
    config_text = config.dumps().encode()
    write_atomic(target / CONFIG, config_text)
    write_atomic(target / CARD, card)
    if files.folder.resolve() != target.resolve():
        if (files.folder / TRAIN_LOG).is_file():
            write_atomic(target / TRAIN_LOG, (files.folder / TRAIN_LOG).read_bytes())
        else:
            (target / TRAIN_LOG).unlink(missing_ok=True)  # never serve the log of other weights
    if card_file is not None:
        write_atomic(card_file, card)
    return target, hashlib.sha256(config_text).hexdigest()


def register(registry: Path, entry: PretrainedEntry) -> None:
    """Add or update ``entry`` in the registry file (validated as loading validates it; kept sorted
    by name), read and rewritten under the lock ``REGISTRY_LOCK`` beside it, so that two checkpoints
    published at once both stay registered."""
    with file_lock(registry.parent / REGISTRY_LOCK):
        table = read_registry(registry)
        table[entry.name] = parse_entry(asdict(entry), f"{registry}: new entry {entry.name!r}")
        data = {"format_version": REGISTRY_FORMAT, "checkpoints": [asdict(table[name]) for name in sorted(table)]}
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
    """Publish a checkpoint folder; returns its registry entry (and the repository ``folder``).
    ``cards_dir=None`` writes no card copy and ``registry=None`` records nothing (the Hub repository
    is still assembled). The checkpoint is verified as a load verifies it before anything is written."""
    if repo_id is not None:
        check_repo_id(repo_id, "--repo-id")
    files = read_checkpoint(checkpoint)
    check_architecture(files, {})
    name = files.config.name
    repo_id = repo_id or default_repo_id(name)
    mirror = Path(mirror) if mirror is not None else (mirror_root() or CHECKOUT / "hub")
    folder, config_sha256 = assemble(files, repo_id, mirror, Path(cards_dir) if cards_dir else None)
    revision = upload(folder, repo_id, token, name) if token else "main"
    entry = PretrainedEntry(name=name, hf_hub_id=repo_id, revision=revision, sha256=files.config.weights_sha256,
                            config_sha256=config_sha256)
    if registry is not None:
        register(Path(registry), entry)
    return {**asdict(entry), "folder": str(folder)}


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
    parser.set_defaults(run=one_line_errors(run, "zoo publish"))


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
