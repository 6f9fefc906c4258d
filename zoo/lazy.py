"""Package attributes that import their module on first use (PEP 562).

``import zoo`` and the ``zoo`` command stay light: a package names its public attributes and the
modules that define them, and each module (with PyTorch) is imported only when one of its names is
first used.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``table`` maps a public name to the relative
    module that defines it (``".factory"``), or to ``".module:attribute"`` when the name differs
    there; a submodule's own name maps to itself (``"spec": ".spec"``). A value is imported on first
    access and then kept in the package."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = table[name].partition(":")
        imported = importlib.import_module(module, package)
        value = imported if module == f".{name}" else getattr(imported, attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
