"""zoo.allocator: ``import zoo`` tells glibc to keep freed memory, in the process as it runs, after
which a large tensor freed and allocated again reuses its pages instead of page-faulting them in
afresh (what takes the page faults out of a CPU training step, for ``zoo train`` and for a user's
own process alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, resource
import torch
import zoo

w = torch.randn(64 << 18, requires_grad=True)  # a training step on 64 MB activations (above glibc's mmap threshold)
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ((w * 2).sigmoid() * w).sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(zoo.ALLOCATOR_KEEPS_FREED_MEMORY, json.dumps(faults))
"""


def probe(**env: str) -> tuple[bool, list[int]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "ZOO_ALLOCATOR"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**base, "OMP_NUM_THREADS": "1", **env}).stdout.split(maxsplit=1)
    return out[0] == "True", json.loads(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the malloc settings are glibc's (Linux)")
def test_import_zoo_keeps_freed_memory_in_a_plain_process():
    pages = (64 << 20) // 4096
    applied, kept = probe()
    assert applied
    opted_out, default = probe(ZOO_ALLOCATOR="default")
    assert not opted_out and min(default) > pages, f"by default every step faults its activations in again: {default}"
    users_own, _ = probe(MALLOC_ARENA_MAX="2")  # any MALLOC_* setting of the user's wins
    assert not users_own
    # glibc settles within a few steps, and even then now and again takes one fresh 64 MB block
    # (16384 faults): compare the warm half's total, not single steps
    assert sum(kept[6:]) < sum(default[6:]) / 4, f"once warm, steps should reuse the freed pages: {kept} vs {default}"
