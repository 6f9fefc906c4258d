"""The training engine behind ``zoo train``: one module per job.

- :mod:`~zoo.train.recipe`: the recipe schema (one file per run, strict, no hidden defaults);
- :mod:`~zoo.train.loop`: BPTT training loop, determinism, resuming;
- :mod:`~zoo.train.losses`: CE on time-averaged logits and TET;
- :mod:`~zoo.train.optim`: SGD/AdamW and the per-epoch cosine/step schedules;
- :mod:`~zoo.train.data`: batch order and on-device augmentation, device and DataLoader pipelines;
- :mod:`~zoo.train.state`: the atomic, pickle-free train state (weights, optimizer, RNGs);
- :mod:`~zoo.train.distributed`: torchrun / DistributedDataParallel;
- :mod:`~zoo.train.evaluate`: top-1 on a split;
- :mod:`~zoo.train.log`: CSV/TensorBoard metrics, throughput and peak memory;
- :mod:`~zoo.train.export`: the final checkpoint folder;
- :mod:`~zoo.train.cli`: the ``zoo train`` command.


Its public names load their modules on first use (PEP 562), so that ``zoo train --help`` does not
import the training loop.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {"train": ".loop", "Recipe": ".recipe", "RecipeError": ".recipe", "from_dict": ".recipe",
         "load_recipe": ".recipe"}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = sorted(_LAZY)
