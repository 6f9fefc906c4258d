"""The evaluation harness (``zoo eval``, ``zoo leaderboard``): accuracy, firing statistics,
synaptic operation counts and energy (methods.md section 5), NeuroBench's metrics, speed and
memory of a checkpoint, written as JSON records under ``evaluation/results/`` and gathered into the
leaderboard.

>>> from zoo.evaluation import evaluate_checkpoint
>>> records = evaluate_checkpoint("spiking_convnet.mlf_mnist_t4_c32", "mnist", Ts=[1, 2, 4, 8])  # doctest: +SKIP

Modules, one job each: :mod:`counters` (ACs/MACs of synaptic layers), :mod:`firing` (neuron
layer activity), :mod:`energy` (the 45 nm constants), :mod:`neurobench` (NeuroBench's metrics
under their names and definitions), :mod:`harness` (the resumable evaluation loop), :mod:`records`
(record files, CSV, storing records in a checkpoint), :mod:`references` (published numbers),
:mod:`leaderboard` and :mod:`plots` (regenerated outputs), :mod:`cli`.

The names below load their modules (and PyTorch) on first use, so that ``zoo eval --help`` and
``zoo leaderboard --help`` start at once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path("evaluation") / "results"  # where `zoo eval` writes records, relative to the working folder

_LAZY = {"OperationCounter": ".counters", "evaluate": ".harness", "evaluate_checkpoint": ".harness",
         "build_leaderboard": ".leaderboard", "load_records": ".records", "write_to_checkpoint": ".records"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, "build" if name == "build_leaderboard" else name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo.evaluation' has no attribute {name!r}")


__all__ = ["DEFAULT_RESULTS", "OperationCounter", "build_leaderboard", "evaluate", "evaluate_checkpoint",
           "load_records", "write_to_checkpoint"]
