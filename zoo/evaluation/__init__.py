"""The evaluation harness (``zoo eval``, ``zoo leaderboard``): accuracy, firing statistics,
synaptic operation counts and energy (methods.md section 5), speed and memory of a checkpoint,
written as JSON records under ``evaluation/results/`` and gathered into the leaderboard.

>>> from zoo.evaluation import evaluate_checkpoint
>>> records = evaluate_checkpoint("spiking_convnet.mlf_mnist_t4_c32", "mnist", Ts=[1, 2, 4, 8])  # doctest: +SKIP

Modules, one job each: :mod:`counters` (ACs/MACs of synaptic layers), :mod:`firing` (neuron
layer activity), :mod:`energy` (the 45 nm constants), :mod:`harness` (the resumable evaluation
loop), :mod:`records` (record files, CSV, storing records in a checkpoint), :mod:`references`
(published numbers), :mod:`leaderboard` and :mod:`plots` (regenerated outputs), :mod:`cli`.
"""

from .counters import OperationCounter
from .harness import evaluate, evaluate_checkpoint
from .leaderboard import build as build_leaderboard
from .records import load_records, write_to_checkpoint

__all__ = ["OperationCounter", "build_leaderboard", "evaluate", "evaluate_checkpoint", "load_records",
           "write_to_checkpoint"]
