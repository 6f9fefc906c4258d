"""The documentation's examples run, and every model name the documentation uses exists.

- Every ```python block of the README and of evaluation/README.md is executed as written (one that
  reads ../shared/data only where that folder exists), except that ``torch.hub.load("snnzoo/snnzoo", ...)`` (GitHub, not reachable offline) loads this checkout
  with ``source="local"``, the same hubconf.py GitHub would serve.
- The ``>>>`` examples of the package docstrings are executed, line by line (``# doctest: +SKIP``
  lines, which need data, only name-checked).
- Every model name in the README, evaluation/README.md, the model cards, the package's source and
  hubconf.py, in ``create_model("...")``, ``create_transform("...")``, ``evaluate_checkpoint("...")``,
  ``zoo eval|info NAME`` and ``torch.hub.load(..., "arch", pretrained="tag")``, is a registered
  architecture or a published ``arch.tag``, so a renamed model breaks this test, not a user.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "evaluation" / "README.md"]
NAMED_IN = [*READMES, *sorted((ROOT / "model_cards").glob("*.md")), *sorted((ROOT / "zoo").rglob("*.py")),
            ROOT / "hubconf.py"]
NAME_PATTERNS = [
    re.compile(r"""(?:create_model|create_transform|evaluate_checkpoint)\(\s*["']([^"']+)["']"""),
    re.compile(r"""zoo (?:eval|info) ([^\s`'"]+)"""),
]
HUB_LOAD = re.compile(r"""hub\.load\(\s*["'][^"']+["']\s*,\s*["']([^"']+)["'](?:\s*,\s*pretrained\s*=\s*["']([^"']+)["'])?""")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def doctest_modules() -> list[Path]:
    return [path for path in sorted((ROOT / "zoo").rglob("*.py")) if ">>> " in (ast.get_docstring(
        ast.parse(path.read_text())) or "")]


def names_used() -> set[tuple[str, str]]:
    """(file, name) of every model name the documentation uses."""
    found = set()
    for path in NAMED_IN:
        text = path.read_text()
        for pattern in NAME_PATTERNS:
            found |= {(path.name, name) for name in pattern.findall(text)}
        for arch, tag in HUB_LOAD.findall(text):
            found.add((path.name, f"{arch}.{tag}" if tag else arch))
    def is_name(text: str) -> bool:  # not a path, an option or a placeholder such as NAME or arch.tag
        return not (text.isupper() or text in ("arch", "arch.tag") or text.startswith("-")
                    or any(c in text for c in "/{~"))

    return {(where, name) for where, name in found if is_name(name)}


@pytest.mark.parametrize("where,name", sorted(names_used()))
def test_every_documented_model_name_exists(where, name):
    arch, _, tag = name.partition(".")
    assert arch in zoo.list_models(), f"{where} uses {name!r}: no architecture {arch!r}"
    if tag:
        assert name in zoo.list_models(pretrained=True), f"{where} uses {name!r}: no published checkpoint"


def test_the_name_check_sees_the_examples():
    names = {name for _, name in names_used()}
    assert "spiking_convnet.mlf_fashion_mnist_t4_c32" in names and "spiking_vgg7.multibit_converted_cifar10_t1" in names


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_python_examples_run(readme, monkeypatch):
    monkeypatch.chdir(ROOT)
    for block in python_blocks(readme):
        if "../shared/data" in block and not (ROOT.parent / "shared" / "data").is_dir():
            continue  # an example on the real data sets of ../shared/data, absent here
        code = re.sub(r"""torch\.hub\.load\(\s*["']snnzoo/snnzoo["']\s*,(.*?)\)""",
                      lambda m: f"torch.hub.load({str(ROOT)!r},{m.group(1)}, source='local')", block)
        exec(compile(code, str(readme), "exec"), {})


@pytest.mark.parametrize("path", doctest_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_package_docstring_examples_run(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    lines = [line.strip()[4:] for line in ast.get_docstring(ast.parse(path.read_text())).splitlines()
             if line.strip().startswith(">>> ") and "doctest: +SKIP" not in line]
    namespace: dict = {}
    for line in lines:
        exec(compile(line, str(path), "exec"), namespace)
