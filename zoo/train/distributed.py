"""Multi-process training: ``torchrun`` sets RANK/WORLD_SIZE/LOCAL_RANK; each process holds one
device (``cuda:LOCAL_RANK``, or the CPU with the gloo backend) and a DistributedDataParallel
replica. A single process (plain ``zoo train``) is world size 1 and needs no process group."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


class DeviceError(ValueError):
    """A device that this machine does not have."""


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device: str) -> Context:
    """Join the process group when launched by torchrun; pick this process's device.

    ``device`` is ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: this machine has no CUDA device (torch.cuda.is_available() is False)")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    target = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Context(rank=rank, world=world, device=target)


def teardown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(ctx: Context, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over the processes (float64 on the device)."""
    if not ctx.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather(ctx: Context, obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (on every process)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def check_replicas(ctx: Context, module: torch.nn.Module) -> None:
    """Fail unless every process holds bit-identical parameters (DDP keeps them so; a difference
    means the processes diverged, e.g. through a non-deterministic kernel or a skipped step)."""
    if not ctx.distributed:
        return
    digest = hashlib.sha256()
    for tensor in module.parameters():
        digest.update(tensor.detach().to("cpu").reshape(-1).view(torch.uint8).numpy().tobytes())
    digests = gather(ctx, digest.hexdigest())
    if len(set(digests)) != 1:
        raise RuntimeError(f"the {ctx.world} processes hold different parameters (sha256 per rank: {digests})")
