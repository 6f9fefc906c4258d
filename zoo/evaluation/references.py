"""The papers' published results, the leaderboard's reference column (methods.md section 6).

They are read from a CSV file (``evaluation/references.csv`` in a source checkout) with the
columns ``method, match_neuron, match_arch, dataset, architecture, T, top1, source``. The numbers
are the authors' reported results as recalled, not confirmed against the papers, so every place
that shows them marks them "paper (unverified)". A measured record is compared with a reference
of the same dataset and T whose ``match_neuron`` and ``match_arch`` globs match its neuron name and
architecture. A file that is not such a CSV is one :class:`ReferencesError` naming it and the line.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

LABEL = "paper (unverified)"
MAX_BYTES = 4 << 20


class ReferencesError(ValueError):
    """A references file that cannot be read; the message names the file and the line."""


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
    data = path.read_bytes()[: MAX_BYTES + 1]
    if len(data) > MAX_BYTES:
        raise ReferencesError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReferencesError(f"{path}: not UTF-8 text at byte offset {error.start}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [f.name for f in fields(Reference)]
    if sorted(reader.fieldnames or []) != sorted(columns):
        raise ReferencesError(f"{path}: expected the columns {', '.join(columns)}, got {reader.fieldnames}")
    refs = [_reference(row, f"{path}: line {reader.line_num}") for row in reader]
    return sorted(refs, key=lambda r: (r.dataset, r.method, r.architecture, r.T))


def _reference(row: dict[str, Any], where: str) -> Reference:
    """One CSV row: every column present, T a positive integer, top-1 a percentage."""
    if None in row or any(value is None for value in row.values()):
        raise ReferencesError(f"{where}: expected {len(fields(Reference))} columns")
    try:
        T, top1 = int(row["T"]), float(row["top1"])
    except ValueError:
        raise ReferencesError(f"{where}: T must be an integer and top1 a number, got {row['T']!r}, {row['top1']!r}") from None
    if T < 1 or not (math.isfinite(top1) and 0 <= top1 <= 100):
        raise ReferencesError(f"{where}: needs T >= 1 and top1 in [0, 100], got {T}, {top1}")
    return Reference(**{**row, "T": T, "top1": top1})


def reference_for(record: dict[str, Any], references: list[Reference]) -> Reference | None:
    """The first reference that a measured record is compared with, if any."""
    return next((ref for ref in references if ref.matches(record)), None)


def papers_for(neuron: str, dataset: str, references: list[Reference]) -> list[Reference]:
    """The published results of a neuron's method on ``dataset``, whatever the network and T (a
    model card sets its checkpoint beside them)."""
    return [ref for ref in references if ref.dataset == dataset and fnmatch.fnmatchcase(neuron, ref.match_neuron)]
