"""Share a zoo model as a checkpoint repository: ``save_pretrained`` and ``push_to_hub``.

``save_pretrained(model, folder)`` writes the folder ``zoo publish`` assembles for the Hub:
``model.safetensors`` (:func:`zoo.checkpoint.save_checkpoint`: the same weights always give the
same bytes), ``config.json`` (the zoo's checkpoint config, :class:`zoo.config.CheckpointConfig`)
and ``README.md`` (the model card, :func:`zoo.cards.render_card`). ``push_to_hub(model,
"owner/repo")`` writes that folder into a temporary directory and uploads it with
huggingface_hub's ``HfApi`` (``create_repo``, then ``upload_folder``) to the Hub, or to
``HF_ENDPOINT``; it returns the commit it created. Anyone then loads it, verified by the weights
sha256 its config records, with::

    model = zoo.create_model("hf-hub:owner/repo", pretrained=True)            # main
    model = zoo.create_model("hf-hub:owner/repo@<commit>", pretrained=True)   # that very upload

or, the same, ``model.save_pretrained(folder)`` / ``model.push_to_hub("owner/repo")``.

The config. A model whose weights were loaded from a checkpoint carries its config
(``model.checkpoint_config``); the saved config is a copy of it with ``arch_kwargs`` (a new
classifier, another T), ``weights_sha256`` and ``software`` refreshed from what is written and
``name`` replaced when one is given (``arch.tag``, the model's own architecture). Its recorded
``metrics`` (evaluations, training cost) are kept only when the weights are provably the ones they
were measured on: serialized as ``save_checkpoint`` writes them under the config's name, they have
the config's ``weights_sha256``. Otherwise (fine-tuned, a new classifier, or a checkpoint written
before the safetensors bytes were made deterministic, whose header cannot be reproduced) they are
dropped, with a warning, so that a card never reports another network's accuracy; a
``train_log.csv`` left in ``folder`` is removed for the same reason. A model with random weights
has no config: pass ``config=`` (a :class:`zoo.config.CheckpointConfig` saying name,
architecture, input, dataset and recipe), which is taken as given (its metrics too) but for the
refreshed fields. Whichever config is used, it must describe the model: its architecture, built on
the ``meta`` device from the model's ``arch_kwargs``, must be the model's class with its parameter
names, shapes and dtypes, checked before anything is written.

Why functions over ``HfApi`` rather than huggingface_hub's ``ModelHubMixin`` (or
``PyTorchModelHubMixin``), as read in huggingface_hub 1.33's ``hub_mixin.py``:

- the mixin's ``config.json`` is the model's constructor arguments: its ``__new__`` records the
  JSON-able ``__init__`` kwargs of every instance, ``save_pretrained`` writes them as
  ``config.json`` (unless ``_save_pretrained`` wrote one) and a README from its own template, and
  ``from_pretrained`` hands every key of ``config.json`` back to ``__init__`` (all of them, since
  ``SpikingModel.__init__`` takes ``**arch``). The zoo's ``config.json`` is the checkpoint config
  (name, architecture, input, dataset, recipe, metrics, weights sha256), not constructor
  arguments, and its card is generated from it: keeping the mixin would mean overriding its
  config handling, its loading and its card, all it does besides calling ``HfApi``;
- ``PyTorchModelHubMixin`` loads with ``strict=False`` by default and without a hash check; zoo
  weights load only through ``zoo.create_model``, which verifies every file it reads;
- inheriting it makes every zoo model class import huggingface_hub (``hub_mixin`` pulls in
  ``hf_api``, ``file_download`` and ``repocard``: about 0.4 s and 42 modules here, on top of
  ``import zoo``, which does not import huggingface_hub at all) and adds its ``__init_subclass__``
  signature inspection and ``__new__`` bookkeeping to every model. Here huggingface_hub is
  imported only when pushing (and by the loader when it downloads).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import tempfile
from pathlib import Path

from torch import nn

from .cards import render_card
from .checkpoint import (CARD, CONFIG, TRAIN_LOG, CheckpointError, TensorInfo, build_model, check_fits,
                         save_checkpoint, serialize_safetensors, tensors_sha256, write_atomic)
from .config import CheckpointConfig
from .hub import HUB_FILES
from .names import check_checkpoint_name, check_repo_id, check_revision, default_repo_id

__all__ = ["save_pretrained", "push_to_hub", "derive_config"]
_log = logging.getLogger("zoo")


def derive_config(model: nn.Module, name: str | None = None,
                  config: CheckpointConfig | None = None) -> tuple[CheckpointConfig, bool]:
    """The config ``save_pretrained`` writes for ``model`` (before the fields that saving
    refreshes), and whether the model's weights changed since they were loaded: a copy of
    ``config``, else of ``model.checkpoint_config`` (its metrics dropped when the weights are not
    the ones it describes), ``name`` replacing its name. Checked against the model; nothing is
    written."""
    loaded = getattr(model, "checkpoint_config", None)
    if config is None and loaded is None:
        raise ValueError(
            f"{type(model).__name__} has no checkpoint config (model.checkpoint_config is None: its weights were not "
            "loaded from a checkpoint), so nothing says what it is: pass config=zoo.config.CheckpointConfig("
            "name='<architecture>.<tag>', architecture=..., arch_kwargs={}, input=zoo.config.InputSpec(...), "
            "dataset={'name': ..., 'split': ...}, recipe={...}), or load the model with pretrained=True")
    if config is not None and not isinstance(config, CheckpointConfig):
        raise TypeError(f"config must be a zoo.config.CheckpointConfig, got {type(config).__name__}")
    result = copy.deepcopy(config if config is not None else loaded)
    changed = config is None and not _same_weights(model, loaded)
    if changed and result.metrics:
        _log.warning("%s: the recorded metrics (evaluations, training) are not saved: they were measured on other "
                     "weights than the model's now; evaluate "
                     "the model and pass config= with its metrics to keep some", result.name)
        result.metrics = {}
    if name is not None:
        check_checkpoint_name(name, what="name")
        if name.partition(".")[0] != result.architecture:
            raise ValueError(f"name {name!r}: the architecture part must be the model's architecture "
                             f"{result.architecture!r}, as in {result.architecture + '.<tag>'!r}")
        result.name = name
    result.arch_kwargs = dict(model.arch_kwargs)
    _check_describes(model, result)
    return result, changed


def save_pretrained(model: nn.Module, folder: str | Path, name: str | None = None,
                    config: CheckpointConfig | None = None, repo_id: str | None = None) -> Path:
    """Write ``model`` into ``folder`` as the checkpoint repository ``zoo publish`` assembles:
    ``model.safetensors``, ``config.json`` and ``README.md`` (see the module docstring for the
    config). ``repo_id`` is the Hub repository the card names (default ``snnzoo/<name>``, as
    ``zoo publish``). Returns the folder."""
    folder = Path(folder)
    new, changed = derive_config(model, name, config)
    repo_id = check_repo_id(repo_id, "repo_id") if repo_id is not None else default_repo_id(new.name)
    # render the card once before writing, so that a config the card cannot show fails first
    render_card(_with_placeholder_digest(new), repo_id, source=f"{folder / CONFIG} (to be written)")
    save_checkpoint(model, folder, new)
    write_atomic(folder / CARD, render_card(new, repo_id, source=str(folder / CONFIG)))
    if changed:
        (folder / TRAIN_LOG).unlink(missing_ok=True)  # the log of other weights
    return folder


def push_to_hub(model: nn.Module, repo_id: str, token: str | None = None, revision: str | None = None,
                private: bool = False, commit_message: str | None = None, name: str | None = None,
                config: CheckpointConfig | None = None) -> str:
    """Upload ``model`` as the checkpoint repository ``repo_id`` (``owner/repo``; created if it
    does not exist) on the Hub, or on ``HF_ENDPOINT``, in one commit on the branch ``revision``
    (default ``main``; created from ``main`` if missing). ``token`` defaults to huggingface_hub's
    (``HF_TOKEN`` or the stored login). The repository gets exactly ``save_pretrained``'s files;
    a ``train_log.csv`` there from earlier weights is deleted in the same commit. Returns the
    commit id, which ``zoo.create_model(f"hf-hub:{repo_id}@{commit}", pretrained=True)`` loads."""
    check_repo_id(repo_id, "repo_id")
    if revision is not None:
        check_revision(revision, "revision")
    with tempfile.TemporaryDirectory(prefix="snnzoo-push-") as tmp:
        save_pretrained(model, tmp, name=name, config=config, repo_id=repo_id)
        saved = CheckpointConfig.load(Path(tmp) / CONFIG)
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="model", revision=revision,
                                   allow_patterns=list(HUB_FILES), delete_patterns=[TRAIN_LOG],
                                   commit_message=commit_message or f"snnzoo: push {saved.name}")
    return commit.oid


def _same_weights(model: nn.Module, config: CheckpointConfig) -> bool:
    """Whether ``model``'s tensors are the ones ``config`` describes: unchanged since they were loaded
    from it (``checkpoint_tensors_sha256``), or serialised to bytes with its ``weights_sha256``."""
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    loaded = getattr(model, "checkpoint_tensors_sha256", None)
    if loaded is not None and model.checkpoint_config is config and tensors_sha256(state) == loaded:
        return True
    try:
        data = serialize_safetensors(state, {"format": "pt", "name": str(config.name)})
    except CheckpointError:
        return False
    return hashlib.sha256(data).hexdigest() == config.weights_sha256


def _check_describes(model: nn.Module, config: CheckpointConfig) -> None:
    """Refuse a config whose architecture, built from the model's kwargs, is not the model."""
    where = f"config {config.name!r}"
    skeleton = build_model(config, where, {}, meta=True)  # ConfigError for an unknown architecture
    if type(skeleton) is not type(model):
        raise ValueError(f"{where}: architecture {config.architecture!r} builds {type(skeleton).__name__}, "
                         f"but the model is a {type(model).__name__}")
    state = {key: TensorInfo(value.dtype, tuple(value.shape), 0, 0) for key, value in model.state_dict().items()}
    check_fits(skeleton.state_dict(), state, "the model's state dict",
               f"{config.architecture!r} built from the model's arch_kwargs ({where})")


def _with_placeholder_digest(config: CheckpointConfig) -> CheckpointConfig:
    trial = copy.deepcopy(config)
    trial.weights_sha256 = "0" * 64
    return trial
