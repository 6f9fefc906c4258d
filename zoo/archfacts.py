"""What ``zoo info ARCH`` prints about an architecture at its defaults, measured by building it, and
``zoo/architectures.json``, where those measurements are kept as data.

Building a network imports PyTorch (seconds); the facts it yields change only when an architecture's
code does. So they are measured once for every registered architecture and written to
``zoo/architectures.json``, which :func:`zoo.catalog.architecture_facts` reads without PyTorch:

- ``class``: the module class the entry point returns; ``parameters``: learnable elements;
- ``input_size`` ``[C, H, W]`` and ``T``: the default input and time steps; ``neuron_layers``;
- ``kwargs``: the default ``arch_kwargs`` (``create_model(arch, **kwargs)`` rebuilds the graph);
- ``modules``: ``[name, type, parameters, output]`` for each module nested less than
  ``zoo.catalog.FACTS_DEPTH`` levels deep, the output being its per-step, per-sample shape in one
  forward pass at the default input size (T = 1, batch 1, evaluation mode): ``C x H x W`` for
  feature maps, ``F`` for vectors, empty where the module returns no tensor.

After changing an architecture (or adding one), rewrite the file::

    python -m zoo.archfacts

``tests/test_cli.py`` builds every architecture again and fails, naming this command, when the file
disagrees. ``zoo info ARCH --depth N`` for another depth measures the network itself
(:func:`measure`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch
from torch import nn

from .catalog import FACTS_COMMAND, FACTS_DEPTH, FACTS_FILE, FACTS_FORMAT
from .checkpoint import write_atomic
from .registry import build_architecture, list_models


def count_params(module: nn.Module) -> int:
    """Learnable elements of ``module`` and its submodules."""
    return sum(p.numel() for p in module.parameters())


def measure(arch: str, depth: int = FACTS_DEPTH) -> dict[str, Any]:
    """The facts of ``arch`` built with its defaults (see the module docstring), with the modules
    nested less than ``depth`` levels deep; JSON-able, as the file stores them."""
    model = build_architecture(arch)
    modules = dict(model.named_modules())
    names = [name for name in modules if name and name.count(".") < depth]
    shapes = output_shapes(model, names)
    facts = {"class": f"{type(model).__module__}.{type(model).__name__}",
             "parameters": count_params(model),
             "input_size": list(model.default_input_size),
             "T": model.T,
             "neuron_layers": sum(1 for _ in model.neurons()),
             "kwargs": model.arch_kwargs,
             "modules": [[name, type(modules[name]).__name__, count_params(modules[name]), shapes.get(name, "")]
                         for name in names]}
    return json.loads(json.dumps(facts))  # as the file reads back: tuples become lists


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


def measure_all() -> dict[str, Any]:
    """The whole file: every registered architecture measured at ``FACTS_DEPTH``."""
    return {"format": FACTS_FORMAT, "depth": FACTS_DEPTH, "generated_by": FACTS_COMMAND,
            "architectures": {arch: measure(arch) for arch in list_models()}}


def dumps(table: dict[str, Any]) -> str:
    """``table`` as the file holds it: one line per field and per module row, so that a changed
    architecture changes the lines of what changed."""
    def field(key: str, value: Any) -> str:
        return f"{json.dumps(key)}: {json.dumps(value)}"

    blocks = []
    for arch, facts in table["architectures"].items():
        lines = [field(key, value) for key, value in facts.items() if key != "modules"]
        rows = ",\n    ".join(json.dumps(row) for row in facts["modules"])
        lines.append(f'"modules": [\n    {rows}]')
        blocks.append(f"  {json.dumps(arch)}: {{\n   " + ",\n   ".join(lines) + "}")
    head = ",\n ".join(field(key, value) for key, value in table.items() if key != "architectures")
    return f"{{{head},\n \"architectures\": {{\n" + ",\n".join(blocks) + "}}\n"


def main() -> int:
    """``python -m zoo.archfacts``: measure every architecture and rewrite ``zoo/architectures.json``."""
    table = measure_all()
    write_atomic(FACTS_FILE, dumps(table))
    print(f"{FACTS_FILE}: {len(table['architectures'])} architectures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
