"""The papers' published results, the leaderboard's reference column (methods.md section 6).

They are read from a CSV file (``evaluation/references.csv`` in a source checkout) with the
columns ``method, match_neuron, match_arch, dataset, architecture, T, top1, source``. The numbers
are the authors' reported results as recalled, not confirmed against the papers, so every place
that shows them marks them "paper (unverified)". A measured record is compared with a reference
of the same dataset and T whose ``match_neuron`` and ``match_arch`` globs match its neuron name and
architecture.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABEL = "paper (unverified)"


@dataclass(frozen=True)
class Reference:
    method: str
    match_neuron: str
    match_arch: str
    dataset: str
    architecture: str
    T: int
    top1: float
    source: str

    def matches(self, record: dict[str, Any]) -> bool:
        neuron = record["neuron"].split("(")[0]
        return (record["dataset"] == self.dataset and record["T"] == self.T
                and fnmatch.fnmatchcase(neuron, self.match_neuron)
                and fnmatch.fnmatchcase(record["architecture"], self.match_arch))


def load_references(path: str | Path) -> list[Reference]:
    """The references in ``path`` (none when the file does not exist), sorted by dataset,
    method, architecture and T."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    refs = [Reference(**{**row, "T": int(row["T"]), "top1": float(row["top1"])}) for row in rows]
    return sorted(refs, key=lambda r: (r.dataset, r.method, r.architecture, r.T))


def reference_for(record: dict[str, Any], references: list[Reference]) -> Reference | None:
    """The first reference that a measured record is compared with, if any."""
    return next((ref for ref in references if ref.matches(record)), None)
