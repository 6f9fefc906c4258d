"""Closest-name suggestions for the one-line errors about unknown names (architectures, checkpoint
tags, data sets, neurons).

``closest(name, known)`` ranks the known names a user most likely meant:

1. names that start with ``name`` (``ds_resnet`` -> ``ds_resnet110, ds_resnet14, ...``), then names
   that contain it (``resnet20`` -> ``ds_resnet20, spiking_resnet20, ...``), each alphabetically: a
   part of a name means "one of this family";
2. then the close matches by :class:`difflib.SequenceMatcher`'s similarity ``2 M / T`` (M matching
   characters, T the two lengths together), best first, at least ``cutoff`` and within ``MARGIN`` of
   the best one: typos, transpositions and dropped letters (``spiking_convnt`` -> ``spiking_convnet``
   alone, not every ``spiking_*`` name);
3. for a checkpoint name ``arch.tag`` of a known architecture, only that architecture's checkpoints,
   compared on the tag alone first: a typo in the tag finds the architecture's own checkpoints,
   never another architecture's that happens to share letters; a tag like none of them is answered
   with the architecture's checkpoints.

Standard library only: the ``zoo`` command's error paths use it before (or without) importing torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_SUGGESTIONS = 5
CUTOFF = 0.6  # difflib's default: below it, names share too little to be worth showing
MARGIN = 0.1  # a match this much less similar than the best one is noise beside it


def closest(name: str, known: Iterable[str], n: int = MAX_SUGGESTIONS, cutoff: float = CUTOFF) -> list[str]:
    """Up to ``n`` names of ``known`` closest to ``name`` (see the module docstring for the order)."""
    known = sorted(set(known) - {name})
    parts = [k for k in known if name and k.startswith(name)]
    parts += [k for k in known if name and name in k and k not in parts]
    arch, dot, tag = name.partition(".")
    siblings = [k for k in known if k.startswith(arch + ".")] if dot else []
    if siblings:  # a checkpoint of a known architecture: its own checkpoints, the tag compared first
        tags = {k.partition(".")[2]: k for k in siblings}
        parts += [tags[t] for t in _similar(tag, list(tags), cutoff)]
        known = siblings
    similar = list(dict.fromkeys(parts + _similar(name, known, cutoff)))
    return (similar or siblings)[:n]  # a tag like none of them: the architecture's checkpoints


def _similar(name: str, known: list[str], cutoff: float) -> list[str]:
    """The names of ``known`` at least ``cutoff`` similar to ``name`` and within ``MARGIN`` of the
    most similar one, best first (ties alphabetically)."""
    matcher = difflib.SequenceMatcher(b=name)
    scored = []
    for candidate in known:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
            scored.append((matcher.ratio(), candidate))
    best = max((score for score, _ in scored), default=0.0)
    return [c for score, c in sorted(scored, key=lambda s: (-s[0], s[1])) if score >= max(cutoff, best - MARGIN)]


def unknown(what: str, name: str, known: Iterable[str], listing: str = "") -> str:
    """One line for an unknown ``name``: what it is, the closest known names, where to see all.

    >>> unknown("architecture", "spiking_convnt", ["spiking_convnet", "spiking_vgg7"], "`zoo list` shows every one")
    "unknown architecture 'spiking_convnt'; similar: spiking_convnet. `zoo list` shows every one"
    """
    known = sorted(set(known))
    close = closest(name, known)
    if close:
        hint = f"; similar: {', '.join(close)}"
    elif len(known) <= 2 * MAX_SUGGESTIONS:  # a short list: show all of it
        hint = f"; expected one of {', '.join(known)}"
    else:
        hint = ""
    return f"unknown {what} {name!r}{hint}" + (f". {listing}" if listing else "")
