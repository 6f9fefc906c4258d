"""zoo.allocator: ``zoo train``/``zoo eval`` restart once with glibc told to keep freed memory, after
which a large tensor freed and allocated again reuses its pages instead of page-faulting them in
afresh (what halves a CPU training step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import zoo.cli
import zoo.train.cli

PROBE = r"""
import json, os, resource
print("start", os.environ.get("MALLOC_MMAP_MAX_"), flush=True)
import torch
from zoo.allocator import restart_keeping_freed_memory

restart_keeping_freed_memory()
w = torch.randn(64 << 18, requires_grad=True)  # a training step on 64 MB activations
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ((w * 2).sigmoid() * w).sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def probe(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          env={**base, "OMP_NUM_THREADS": "1", **env}).stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the malloc settings are glibc's (Linux)")
def test_restart_sets_the_malloc_settings_and_freed_blocks_are_reused():
    pages = (64 << 20) // 4096
    kept = probe(MALLOC_MMAP_MAX_="65536")  # the user's own setting (glibc's default count): no restart
    assert kept[0] == "start 65536" and len(kept) == 2, kept
    assert min(json.loads(kept[-1])) > pages, f"by default every step faults its activations in again: {kept}"
    restarted = probe()
    assert restarted[:2] == ["start None", "start 0"], restarted  # the same command, run again with the settings
    default, warm = json.loads(kept[-1])[6:], json.loads(restarted[-1])[6:]
    # glibc settles within a few steps, and even then now and again takes one fresh 64 MB block
    # (16384 faults): compare the warm half's total, not single steps
    assert sum(warm) < sum(default) / 4, f"once warm, steps should reuse the freed pages: {warm} vs {default}"


@pytest.mark.parametrize("command, restarts", [
    (["train", "recipes/lif_spiking_convnet_fashion_mnist_t4_c32.yaml"], True),
    (["info", "spiking_convnet"], False),
    (["eval", "spiking_convnet.mlf_fashion_mnist_t4_c32"], True),
])
def test_long_running_commands_restart_only_from_their_own_command_line(monkeypatch, command, restarts):
    class Restarted(Exception):
        pass

    def restart():
        raise Restarted

    for module in (zoo.cli, zoo.train.cli):
        monkeypatch.setattr(module, "restart_keeping_freed_memory", restart)
    monkeypatch.setattr(sys, "argv", ["zoo", *command])
    if restarts:
        with pytest.raises(Restarted):
            zoo.cli.main()
        if command[0] == "train":
            monkeypatch.setattr(sys, "argv", ["python -m zoo.train", *command[1:]])
            with pytest.raises(Restarted):
                zoo.train.cli.main()
    else:
        assert zoo.cli.main() == 0
