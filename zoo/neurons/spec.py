"""JSON-able specifications of neurons and surrogates.

A spec names a component and its parameters. It has two equivalent forms that round-trip:

- a dict: ``{"name": "lif", "tau": 0.25, "surrogate": {"name": "rectangle", "width": 1.0}}``
- a string: ``"lif(tau=0.25, surrogate=rectangle(width=1.0))"``; a bare ``"lif"`` means defaults.

Strings are parsed with :mod:`ast` and only literals and nested calls are accepted, so parsing a
spec never executes code.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Mapping

Spec = dict[str, Any]


class SpecError(ValueError):
    """A neuron or surrogate spec is malformed, names an unknown component or a bad parameter."""


def parse(spec: str | Mapping[str, Any]) -> Spec:
    """Turn a string or dict spec into a dict spec ``{"name": ..., **params}`` (a new dict)."""
    if isinstance(spec, Mapping):
        if "name" not in spec or not isinstance(spec["name"], str):
            raise SpecError(f"spec {dict(spec)!r} has no string field 'name'")
        return {k: (parse(v) if isinstance(v, Mapping) else v) for k, v in spec.items()}
    if not isinstance(spec, str):
        raise SpecError(f"a spec is a string or a dict with a 'name' field, got {type(spec).__name__}")
    match = _HEAD.fullmatch(spec.strip())
    if match is None:
        raise SpecError(f"cannot parse spec {spec!r}: expected NAME or NAME(key=value, ...)")
    name, args = match.group(1), match.group(2) or ""
    try:  # the name may be a Python keyword ("if"), so only the argument list goes to ast
        node = ast.parse(f"_({args})", mode="eval").body
    except SyntaxError as err:
        raise SpecError(f"cannot parse spec {spec!r}: {err.msg}") from None
    return {**_from_node(node, spec), "name": name}


_HEAD = re.compile(r"([A-Za-z_]\w*)\s*(?:\((.*)\))?", re.DOTALL)


def _from_node(node: ast.AST, source: str) -> Spec:
    if isinstance(node, ast.Name):
        return {"name": node.id}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.args:
            raise SpecError(f"spec {source!r}: parameters must be given as key=value")
        out: Spec = {"name": node.func.id}
        for kw in node.keywords:
            if kw.arg is None or kw.arg == "name":
                raise SpecError(f"spec {source!r}: bad parameter name {kw.arg!r}")
            out[kw.arg] = _value(kw.value, source)
        return out
    raise SpecError(f"spec {source!r}: expected NAME or NAME(key=value, ...)")


def _value(node: ast.AST, source: str) -> Any:
    if isinstance(node, (ast.Call, ast.Name)):
        if isinstance(node, ast.Name) and node.id in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[node.id]
        if isinstance(node, ast.Name):  # a bare word is a string: reset=hard
            return node.id
        return _from_node(node, source)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SpecError(f"spec {source!r}: {ast.unparse(node)!r} is not a literal value") from None


def format(spec: Mapping[str, Any]) -> str:  # noqa: A001 - mirrors str.format's role for specs
    """The string form of a dict spec: ``name(key=value, ...)`` with JSON-style literals."""
    params = ", ".join(f"{k}={_format_value(v)}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({params})" if params else spec["name"]


def _format_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return format(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    raise SpecError(f"spec value {value!r} is not JSON-able")


def check_params(component: str, given: Mapping[str, Any], allowed: Mapping[str, Any]) -> Spec:
    """Merge ``given`` over the defaults ``allowed``; unknown keys fail with the known ones listed."""
    unknown = sorted(set(given) - set(allowed) - {"name"})
    if unknown:
        raise SpecError(
            f"{component}: unknown parameter(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(allowed))}"
        )
    merged = dict(allowed)
    merged.update({k: v for k, v in given.items() if k != "name"})
    return merged
