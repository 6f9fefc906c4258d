"""The training data path: which samples form each batch, and their augmentation on the device.

Batches. Every epoch draws one permutation of the training set from the run's data generator (a
CPU ``torch.Generator`` seeded by the recipe, saved in the train state). The permutation is cut
into global batches of ``train.batch_size`` (the incomplete last batch is dropped); a global
batch is cut into ``world * accumulation`` equal micro-batches, and process ``r`` takes
micro-batches ``r * accumulation ... (r + 1) * accumulation - 1``. Augmentation parameters are
drawn for the whole global batch from the same generator by every process, then sliced the same
way. So which sample a micro-batch holds, and how it is augmented, does not depend on how the
global batch is split between processes and accumulation steps: 2 processes x 1 step and
1 process x 2 accumulation steps see identical micro-batches.

Two pipelines (``data.pipeline``):

- ``device``: small static data sets (MNIST, Fashion-MNIST, CIFAR) live on the device as the
  uint8 arrays of ``zoo.data.load_arrays``; batches are gathered there, augmented there and
  normalised with the data set's mean and std. No worker processes, no host-device copies.
- ``loader``: a ``torch.utils.data.DataLoader`` over ``zoo.data.create_dataset`` (event frames,
  ImageNet), fed the same index lists as its ``batch_sampler``; the batch is augmented on the
  device after the copy (float tensors; padding and cutout fill 0, i.e. no events).

Augmentations (``data.augment``), in the order of InfLoR's pipeline (yfguo91/Re-Loss
``build_data``: RandomCrop(32, 4), RandomHorizontalFlip, CIFAR10Policy, ToTensor, Cutout(1, 16)):

- random crop: zero-pad by ``crop_padding`` on each side, crop back at a uniform offset
  (torchvision ``RandomCrop(size, padding)``);
- horizontal flip with probability 1/2, or alternating flip (Jordan 2024, airbench): each image is
  flipped in every other epoch, starting flipped or not at random (:func:`alternating_flips`), so
  consecutive epochs see both views of every image;
- AutoAugment (Cubuk et al., CVPR 2019) with torchvision's policy, applied per sample on the
  uint8 image, each sample's random choices seeded from the data generator;
- Cutout (DeVries & Taylor 2017): one ``cutout x cutout`` square, centre uniform over the image,
  clipped at the border, set to 0 (before normalisation, as in the InfLoR code).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .distributed import Context
from .recipe import Augment, Data, RecipeError

SEED_RANGE = 2**62


@dataclass
class Plan:
    """The batches of one epoch: ``order[step]`` holds the global batch's sample indices."""

    order: torch.Tensor  # [steps, batch_size] int64
    micro: int  # samples per micro-batch
    accumulation: int
    rank: int
    flips: torch.Tensor | None = None  # [steps, batch_size] bool: alternating flips (None: drawn at random)

    @property
    def steps(self) -> int:
        return self.order.shape[0]

    def step_flips(self, step: int) -> torch.Tensor | None:
        return None if self.flips is None else self.flips[step]

    def slices(self) -> list[slice]:
        """This process's micro-batches, as slices of a global batch."""
        first = self.rank * self.accumulation
        return [slice((first + j) * self.micro, (first + j + 1) * self.micro) for j in range(self.accumulation)]


def epoch_plan(num_samples: int, batch_size: int, accumulation: int, ctx: Context, generator: torch.Generator) -> Plan:
    parts = ctx.world * accumulation
    if batch_size % parts:
        raise RecipeError(f"train.batch_size {batch_size} is not divisible by processes x accumulation = {parts}")
    steps = num_samples // batch_size
    if steps == 0:
        raise RecipeError(f"train.batch_size {batch_size} exceeds the {num_samples} training samples")
    perm = torch.randperm(num_samples, generator=generator)
    return Plan(perm[: steps * batch_size].view(steps, batch_size), batch_size // parts, accumulation, ctx.rank)


# --------------------------------------------------------------------------------------------
# Augmentation on the batch
# --------------------------------------------------------------------------------------------


def alternating_flips(order: torch.Tensor, num_samples: int, epoch: int, seed: int) -> torch.Tensor:
    """Which samples of ``order`` are flipped in 0-based ``epoch``: a fixed random half of the
    data set (drawn from ``seed``) in even epochs, the other half in odd ones."""
    first = torch.rand(num_samples, generator=torch.Generator().manual_seed(seed)) < 0.5
    return first[order] ^ bool(epoch % 2)


def draw_params(aug: Augment, batch: int, size: tuple[int, int], generator: torch.Generator,
                flips: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Random parameters for a global batch (CPU tensors, one row per sample); ``flips`` given
    (alternating flip) replaces the random flip draw."""
    h, w = size
    params = {}
    if aug.crop_padding:
        params["crop"] = torch.randint(0, 2 * aug.crop_padding + 1, (batch, 2), generator=generator)
    if flips is not None:
        params["flip"] = flips
    elif aug.hflip:
        params["flip"] = torch.rand(batch, generator=generator) < 0.5
    if aug.autoaugment:
        params["autoaugment"] = torch.randint(0, SEED_RANGE, (batch,), generator=generator)
    if aug.cutout:
        params["cutout"] = torch.stack([torch.randint(0, h, (batch,), generator=generator),
                                        torch.randint(0, w, (batch,), generator=generator)], 1)
    return params


def random_crop(x: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop ``x`` ``[B, ..., H, W]`` zero-padded by ``padding`` at per-sample ``offsets`` ``[B, 2]`` (dy, dx)."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    mid = x.shape[1:-2]
    padded = torch.nn.functional.pad(x.reshape(b, -1, h, w), (padding,) * 4).permute(0, 2, 3, 1)  # [B, Hp, Wp, M]
    offsets = offsets.to(x.device)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # [B, H]
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, M]
    return out.permute(0, 3, 1, 2).reshape(b, *mid, h, w)


def hflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    mask = flip.to(x.device).view(-1, *([1] * (x.dim() - 1)))
    return torch.where(mask, x.flip(-1), x)


def cutout(x: torch.Tensor, centres: torch.Tensor, length: int) -> torch.Tensor:
    """DeVries & Taylor's Cutout(n_holes=1): rows ``[cy - L//2, cy + L//2)`` and the same for
    columns, clipped to the image, set to 0 on every channel (and frame)."""
    h, w = x.shape[-2], x.shape[-1]
    centres = centres.to(x.device)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    cy, cx = centres[:, :1], centres[:, 1:]
    rows = (ys >= cy - length // 2) & (ys < cy + length // 2)  # [B, H]
    cols = (xs >= cx - length // 2) & (xs < cx + length // 2)  # [B, W]
    hole = (rows[:, :, None] & cols[:, None, :]).view(x.shape[0], *([1] * (x.dim() - 3)), h, w)
    return x.masked_fill(hole, 0)


def autoaugment(x: torch.Tensor, seeds: torch.Tensor, policy: str) -> torch.Tensor:
    """torchvision's AutoAugment on each uint8 image of ``x`` ``[B, C, H, W]``, the random choices
    of sample i drawn from a generator seeded with ``seeds[i]`` (the global RNG is left as it was).

    PyTorch's deterministic mode is lifted for the loop: on CUDA it refuses the ``scatter_add_``
    of the Equalize histogram, which counts integers and so gives the same result in any order."""
    from torchvision.transforms import v2

    transform = v2.AutoAugment(policy=v2.AutoAugmentPolicy(policy))
    out = torch.empty_like(x)
    checking = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        with torch.random.fork_rng(devices=[]):
            for i in range(x.shape[0]):
                torch.manual_seed(int(seeds[i]))
                out[i] = transform(x[i])
    finally:
        torch.use_deterministic_algorithms(checking)
    return out


def augment(x: torch.Tensor, params: dict[str, torch.Tensor], aug: Augment) -> torch.Tensor:
    """Apply the augmentations of ``aug`` to the batch ``x`` (uint8 images or float frames)."""
    if "crop" in params:
        x = random_crop(x, params["crop"], aug.crop_padding)
    if "flip" in params:
        x = hflip(x, params["flip"])
    if "autoaugment" in params:
        x = autoaugment(x, params["autoaugment"], aug.autoaugment)
    if "cutout" in params:
        x = cutout(x, params["cutout"], aug.cutout)
    return x


def slice_params(params: dict[str, torch.Tensor], part: slice) -> dict[str, torch.Tensor]:
    return {key: value[part] for key, value in params.items()}


# --------------------------------------------------------------------------------------------
# The two pipelines
# --------------------------------------------------------------------------------------------


class DeviceSplit:
    """A static split held on the device as uint8 ``[N, C, H, W]`` with int64 labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: list[float], std: list[float],
                 device: torch.device) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"the device pipeline needs uint8 images [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.int64)
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255.0 - self.mean) / self.std

    def train_batches(self, plan: Plan, aug: Augment, generator: torch.Generator) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
        """For each step, this process's micro-batches ``[(x, y), ...]``."""
        for step in range(plan.steps):
            params = draw_params(aug, plan.order.shape[1], self.size, generator, plan.step_flips(step))
            micro = []
            for part in plan.slices():
                index = plan.order[step, part].to(self.images.device)
                x = augment(self.images[index], slice_params(params, part), aug)
                micro.append((self.normalise(x), self.labels[index]))
            yield micro

    def eval_batches(self, batch_size: int, ctx: Context) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share (samples ``rank, rank + world, ...``) in batches."""
        return self.batches(list(range(ctx.rank, len(self), ctx.world)), batch_size)

    def batches(self, index: list[int], batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The samples ``index``, in that order, in batches, without augmentation."""
        for chunk in torch.tensor(index, dtype=torch.int64, device=self.images.device).split(batch_size):
            yield self.normalise(self.images[chunk]), self.labels[chunk]


class LoaderSplit:
    """A data set read through a DataLoader; batches are moved to the device and augmented there."""

    def __init__(self, dataset: Dataset, workers: int, device: torch.device) -> None:
        self.dataset = dataset
        self.workers = workers
        self.device = device

    def __len__(self) -> int:
        return len(self.dataset)

    def _loader(self, batches: list[list[int]]) -> DataLoader:
        return DataLoader(self.dataset, batch_sampler=batches, num_workers=self.workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def _to_device(self, x: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = torch.as_tensor(y).to(self.device, dtype=torch.int64, non_blocking=True)
        return x, y

    def train_batches(self, plan: Plan, aug: Augment, generator: torch.Generator) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
        slices = plan.slices()
        lists = [plan.order[step, part].tolist() for step in range(plan.steps) for part in slices]
        loader = iter(self._loader(lists))
        for step in range(plan.steps):
            params, micro = None, []
            for part in slices:
                x, y = self._to_device(*next(loader))
                if params is None:
                    params = draw_params(aug, plan.order.shape[1], tuple(x.shape[-2:]), generator, plan.step_flips(step))
                micro.append((to_model_layout(augment(x, slice_params(params, part), aug)), y))
            yield micro

    def eval_batches(self, batch_size: int, ctx: Context) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(list(range(ctx.rank, len(self), ctx.world)), batch_size)

    def batches(self, index: list[int], batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self._loader([index[i : i + batch_size] for i in range(0, len(index), batch_size)]):
            x, y = self._to_device(x, y)
            yield to_model_layout(x), y


def to_model_layout(x: torch.Tensor) -> torch.Tensor:
    """Static batches ``[B, C, H, W]`` pass; event frames ``[B, T, C, H, W]`` become time-first."""
    return x.transpose(0, 1).contiguous() if x.dim() == 5 else x


def warn_if_classes_lost(dataset: str, split: str, limit: int, labels: torch.Tensor) -> None:
    """A limit takes the first samples in the data set's own order; where that order is by class
    (CIFAR-10's PNG folders), a small limit keeps only the first classes, and a smoke run then
    scores as if the task were solved: say so."""
    kept, present = len(torch.unique(labels[:limit])), len(torch.unique(labels))
    if kept < present:
        print(f"zoo train: warning: data.{split}_limit {limit} keeps {kept} of the {present} classes of {dataset} "
              f"(the first {limit} samples in the order it is stored); the run sees those alone", file=sys.stderr)


def build_splits(spec: Data, ctx: Context, root: str | None = None) -> tuple[DeviceSplit | LoaderSplit, DeviceSplit | LoaderSplit, Dataset]:
    """The train and test splits of ``spec`` for this process, and the train data set object
    (its ``describe()`` goes into the checkpoint config; its ``mean``/``std`` normalise the
    device pipeline exactly as the data set's own transform would)."""
    from .. import data as zd

    train_augment = {"augment": True} if spec.sample_augment else {}
    train_set = zd.create_dataset(spec.dataset, root, "train", **spec.params, **train_augment)
    limits = {"train": spec.train_limit, "test": spec.test_limit}
    if spec.pipeline == "device":
        mean, std = getattr(train_set, "mean", None), getattr(train_set, "std", None)
        if not mean or not std:
            raise ValueError(f"data set {spec.dataset!r} has no mean/std: the device pipeline needs a normalised static data set")
        splits = []
        for split in ("train", "test"):
            if split == "train" and getattr(train_set, "images", None) is not None:
                images, labels = train_set.images, train_set.labels  # already read (IDX, CIFAR batches)
            else:
                images, labels = zd.load_arrays(spec.dataset, root, split)
            limit = limits[split]
            if limit is not None:
                warn_if_classes_lost(spec.dataset, split, limit, labels)
            splits.append(DeviceSplit(images[:limit], labels[:limit], list(mean), list(std), ctx.device))
        return splits[0], splits[1], train_set
    test_set = zd.create_dataset(spec.dataset, root, "test", **spec.params)
    loaders = []
    for split, dataset in (("train", train_set), ("test", test_set)):
        limit = limits[split]
        loaders.append(LoaderSplit(Subset(dataset, range(min(limit, len(dataset)))) if limit else dataset, spec.workers, ctx.device))
    return loaders[0], loaders[1], train_set
