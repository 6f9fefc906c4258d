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

from pathlib import Path

from ..lazy import lazy_attributes

DEFAULT_RESULTS = Path("evaluation") / "results"  # where `zoo eval` writes records, relative to the working folder

_LAZY = {"OperationCounter": ".counters", "evaluate": ".harness", "evaluate_checkpoint": ".harness",
         "build_leaderboard": ".leaderboard:build", "load_records": ".records", "write_to_checkpoint": ".records"}

__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["DEFAULT_RESULTS", "OperationCounter", "build_leaderboard", "evaluate", "evaluate_checkpoint",
           "load_records", "write_to_checkpoint"]
