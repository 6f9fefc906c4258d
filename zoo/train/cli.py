"""``zoo train RECIPE [--set key=value ...] [--resume] [--out DIR]``.

One process: ``zoo train recipes/lif_spiking_convnet_fashion_mnist_t4.yaml``. Several processes
(DistributedDataParallel; NCCL on GPUs, gloo on CPUs)::

    torchrun --nproc_per_node 4 -m zoo.train recipes/....yaml

``--check`` validates the recipe and builds its model (from its parent checkpoint when it has one)
without training. ``--init-from CHECKPOINT`` fine-tunes: the model starts from that checkpoint's
weights (a published ``arch.tag``, a checkpoint folder or ``hf-hub:owner/repo[@revision]``; the
recipe field ``model.init``, :mod:`zoo.train.init`), with a new classifier where the recipe's
``num_classes`` differs. ``--convert-from RUN`` converts the finished run in RUN as this recipe's
``convert`` section says, without training.

Exit status: 0 done, 2 bad input (recipe, data, run folder, a file that cannot be read or
written: one line naming the file and the field), 1 a run whose loss or weights turned
non-finite (one line naming the epoch and the step).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ..cli import at_least, data_dir_hint, one_line_errors

RUNS = Path("runs")  # the default parent of run folders: runs/<recipe name>
# zoo.neurons.backends.BACKENDS, spelt out so that building this parser imports no torch (tests/test_cli.py
# checks they agree); the training modules are imported when the command runs
BACKEND_CHOICES = ("auto", "torch", "fused", "triton")


def add_parser(commands) -> None:
    p = commands.add_parser("train", help="train a model from a recipe file (recipes/*.yaml)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(run=run)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe file (recipes/*.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field by its dotted path, e.g. --set train.epochs=1 (repeatable)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--convert-from", default=None, metavar="RUN",
                   help="do not train: convert the finished run in the folder RUN (the same recipe but for its name, "
                        "method, source and convert fields) as this recipe says, e.g. one ANN twin as IF and as multi-bit")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start from this checkpoint's weights (arch.tag, a checkpoint folder or "
                        "hf-hub:owner/repo[@rev]); sets model.init.checkpoint, keeping the recipe's other init fields")
    p.add_argument("--stop-after", type=at_least(1), default=None, metavar="EPOCHS",
                   help="stop (state saved, resumable) once this many epochs are done")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="neuron backend (never changes results)")
    p.add_argument("--data-dir", default=None, help="data root (default: $ZOO_DATA_DIR)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--check", action="store_true", help="validate the recipe and build its model, then exit")


def run(args: argparse.Namespace) -> int:
    return one_line_errors(_train_or_diverge, "zoo train", data_dir_hint)(args)


def _train_or_diverge(args: argparse.Namespace) -> int:
    """Exit status 1, with one line, for a run whose loss or weights turned non-finite."""
    from .loop import TrainingDiverged

    try:
        return _check_or_train(args)
    except TrainingDiverged as error:
        print(f"zoo train: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


def _check_or_train(args: argparse.Namespace) -> int:
    from ..names import confined
    from .init import initialise
    from .loop import train
    from .recipe import build_model, load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.init_from is not None:  # an override of model.init, recorded with the others
        init = {"new_classifier": False, "freeze": [], **(asdict(recipe.model.init) if recipe.model.init else {}),
                "checkpoint": args.init_from}
        args.overrides = [*args.overrides, f"model.init={json.dumps(init)}"]
        recipe = load_recipe(args.recipe, args.overrides)
    if args.check:
        model = build_model(recipe, args.recipe)
        if recipe.model.init is not None:  # the parent checkpoint is found, verified and fits
            initialise(model, recipe.model.init, args.recipe)
        params = sum(p.numel() for p in model.parameters())
        print(f"{args.recipe}: ok, {recipe.name}: {recipe.model.arch} with {params:,} parameters")
        return 0
    out = Path(args.out) if args.out else confined(RUNS, recipe.name)
    folder = train(recipe, out, recipe_file=args.recipe, overrides=args.overrides, resume=args.resume,
                   stop_after=args.stop_after, device=args.device, backend=args.backend, data_root=args.data_dir,
                   progress=not args.no_progress, convert_from=args.convert_from)
    if folder is not None:
        print(f"checkpoint: {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m zoo.train``; ``argv=None`` means this process's own command line."""
    from ..cli import OneLineParser  # zoo.cli imports this module

    parser = OneLineParser(prog="python -m zoo.train", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    args = parser.parse_args(argv)
    return run(args)
