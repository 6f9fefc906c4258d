"""Keep freed CPU memory for reuse (glibc malloc settings), which takes the page faults out of CPU training.

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with a fresh
``mmap`` and returns it to the kernel on ``free``, and gives the top of its heap back above the trim
threshold. A spiking network's step allocates activations of ``T x batch x C x H x W`` floats (tens
to hundreds of MB, plus the saved membranes) and frees them when the step ends, so the next step
page-faults every one of those pages in again and zero-fills it: measured here, a LIF T=4 step of
``spiking_resnet20`` (16-32-64, batch 128, one thread) took 2.0 s with glibc's defaults and 1.4 s
with freed memory kept (``benchmarks/training_routes.py`` reports both figures for every route).

What the PyTorch CPU ecosystem does about it: PyTorch's own CPU allocator has no cache on Linux (its
caching CPU allocator is for mobile builds; the Windows build links mimalloc since 2.1), and the
usual advice (PyTorch's performance tuning guide, Intel's Extension for PyTorch guide, AMD's ZenDNN
guide) is to preload jemalloc or tcmalloc, or to set glibc's tunables in the environment, both
before the process starts. What this module does instead works inside a process that is already
running, so it holds for a user's own Python process as well as for ``zoo train``: on ``import zoo``
it calls glibc's ``mallopt`` with ``M_MMAP_MAX = 0`` (no mmap for malloc; the heap serves every
size) and ``M_TRIM_THRESHOLD`` at its maximum (never give the heap top back), the in-process form
of ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``. Freed blocks are then reused by the next
step. The price: a process keeps its peak host memory until it exits.

It is skipped off Linux/glibc, where the user set any ``MALLOC_*`` variable (their settings win), and
with ``ZOO_ALLOCATOR=default``. Results never change; only time and resident memory do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc <malloc.h>
INT_MAX = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Apply the settings to this process; True where they were applied."""
    if os.environ.get("ZOO_ALLOCATOR", "keep") == "default" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it (musl has mallopt as a no-op)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, INT_MAX))
