"""``zoo info NAME``: an architecture's defaults, parameter count, checkpoints and module summary.

The summary lists the modules down to ``--depth`` levels of nesting with their parameter counts
and the output shape of one forward pass at the default input size (T = 1, batch 1, evaluation
mode), given per step and per sample: ``C x H x W`` for feature maps, ``F`` for vectors.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from .registry import build_architecture, list_models, split_name


def add_parser(commands) -> None:
    p = commands.add_parser("info", help="an architecture's defaults, parameter count and module summary")
    p.add_argument("name", help="registered architecture (or arch.tag)")
    p.add_argument("--depth", type=int, default=2, help="nesting depth of the module summary (default 2)")
    p.set_defaults(run=run)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def output_shapes(model: nn.Module, names: list[str]) -> dict[str, str]:
    """Per-step, per-sample output shape of the named modules in one forward pass at T = 1."""
    shapes: dict[str, str] = {}
    modules = dict(model.named_modules())

    def record(name: str):
        def hook(_module, _inputs, out):
            if isinstance(out, torch.Tensor):  # [T, B, ...] or folded [T*B, ...]
                dims = out.shape[-3:] if out.dim() >= 4 else out.shape[-1:]
                shapes[name] = " x ".join(str(d) for d in dims)
        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in names]
    T = model.T
    try:
        model.T = 1
        with torch.no_grad():
            model.eval()(torch.zeros(1, *model.default_input_size))
    finally:
        model.T = T
        for handle in handles:
            handle.remove()
    return shapes


def run(args: argparse.Namespace) -> int:
    arch, _ = split_name(args.name)
    try:
        model = build_architecture(arch)
    except ValueError as err:  # unknown name: the registry's message lists similar ones
        print(f"zoo info: {err}", file=sys.stderr)
        return 2
    print(f"{arch}: {type(model).__module__}.{type(model).__name__}")
    print(f"parameters: {count_params(model):,}")
    print(f"default input: {list(model.default_input_size)} (C, H, W), T = {model.T}")
    print(f"neuron layers: {sum(1 for _ in model.neurons())}")
    checkpoints = list_models(f"{arch}.*", pretrained=True)
    print(f"checkpoints: {', '.join(checkpoints) if checkpoints else 'none published'}")
    print("default kwargs (create_model(arch, **kwargs) rebuilds this graph):")
    for key, value in model.arch_kwargs.items():
        print(f"  {key} = {json.dumps(value)}")

    names = [n for n, _ in model.named_modules() if n and n.count(".") < args.depth]
    shapes = output_shapes(model, names)
    modules = dict(model.named_modules())
    rows = [(n, type(modules[n]).__name__, f"{count_params(modules[n]):,}", shapes.get(n, "")) for n in names]
    header = ("module", "type", "params", "output / step / sample")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
    return 0
