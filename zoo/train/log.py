"""Per-epoch metrics: a CSV file (always), TensorBoard scalars (when tensorboard is installed),
and the memory and throughput figures every epoch reports.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` since the epoch began (reset each
epoch); on the CPU the process's peak resident set size (``ru_maxrss``; a high-water mark over the
whole process, so it never decreases between epochs).
"""

from __future__ import annotations

import csv
import io
import math
import resource
import sys
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import write_atomic
from .state import StateError

COLUMNS = ("epoch", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "epoch_time_s",
           "eval_time_s", "images_per_s", "peak_memory_mb")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return kilobytes / (2**20 if sys.platform == "darwin" else 2**10)


class MetricsLog:
    """``log.csv`` in the run folder, one row per epoch; resuming drops rows after the resumed
    epoch (an epoch logged but not saved is run again). The rows are checked when read (the
    columns, epochs 1, 2, ..., finite numbers; the test columns may be empty): the exported
    checkpoint reports them, so a damaged log is a StateError naming the file and the line,
    found when the run starts rather than after its last epoch."""

    def __init__(self, folder: Path, tensorboard: bool) -> None:
        self.path = folder / "log.csv"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(folder / "tensorboard"))

    def start(self, completed_epochs: int) -> None:
        rows = self.rows()
        if len(rows) < completed_epochs:
            raise StateError(f"{self.path}: holds {len(rows)} epoch(s), but the run's state has finished "
                             f"{completed_epochs}; the log of a resumed run must cover its finished epochs")
        self._write(rows[:completed_epochs])

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        try:
            text = self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise StateError(f"{self.path}: not UTF-8 text at byte offset {error.start}") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames != list(COLUMNS):
            raise StateError(f"{self.path}: expected the columns {', '.join(COLUMNS)}, got {reader.fieldnames}")
        rows = list(reader)
        for epoch, row in enumerate(rows, start=1):
            _check_row(row, epoch, self.path)
        return rows

    def append(self, row: dict[str, Any]) -> None:
        self._write(self.rows() + [row])
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and value != "":
                    self.writer.add_scalar(key, float(value), int(row["epoch"]))
            self.writer.flush()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.path, buffer.getvalue())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _check_row(row: dict[str, str], epoch: int, path: Path) -> None:
    """Row ``epoch`` of a log: that epoch, and a finite number in every column (test ones may be empty)."""
    where = f"{path}: epoch {epoch}"
    if None in row or any(value is None for value in row.values()):
        raise StateError(f"{where}: expected {len(COLUMNS)} columns")
    if row["epoch"] != str(epoch):
        raise StateError(f"{where}: the row says epoch {row['epoch']!r}; rows must be epochs 1, 2, ...")
    for key in COLUMNS[1:]:
        if row[key] == "" and key in ("test_loss", "test_top1"):
            continue
        try:
            finite = math.isfinite(float(row[key]))
        except ValueError:
            finite = False
        if not finite:
            raise StateError(f"{where}: column {key!r} must be a finite number, got {row[key]!r}")
