"""Keep freed CPU memory for reuse (glibc malloc settings), which halves the step time of CPU training.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
returns it to the kernel on ``free``. A spiking network's step allocates activations of
``T x batch x C x H x W`` floats (hundreds of MB, plus the saved membranes) and frees them when the
step ends, so the next step page-faults every one of those pages in again and zero-fills it. On
this project's 2-core machine that was half the time of an MLF training step (spiking_convnet,
64 channels, T=4, batch 128, one thread: 3.3 s -> 1.6 s per step).

``MALLOC_MMAP_MAX_=0`` (no mmap for malloc) and a huge ``MALLOC_TRIM_THRESHOLD_`` (never give the
heap top back) make freed blocks available to the next step. glibc reads them only at process
start (set later with ``mallopt``, this machine's heap fragmented instead: blocks were freed next
to small live allocations and not reused), so :func:`restart_keeping_freed_memory` re-executes the
command with them set. ``zoo train`` and ``zoo eval`` do so when run from the shell; the cost is
importing torch twice (about two seconds), and the process keeps its peak host memory until it
exits. A user's own ``MALLOC_*`` settings win. Accuracy and every other result are unchanged;
the images/s, latency and peak memory these commands record are those of the faster process.
"""

from __future__ import annotations

import os
import sys

SETTINGS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def restart_keeping_freed_memory() -> None:
    """Replace this process with the same command line and :data:`SETTINGS` in its environment;
    returns at once where they are already set, or off Linux (glibc)."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_MAX_" in os.environ or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, {**SETTINGS, **os.environ})
    except OSError:  # the interpreter cannot be run again (embedded Python): carry on as we are
        return
