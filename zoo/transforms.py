"""The input transform a checkpoint was evaluated with (torchvision's weights idea).

``zoo.create_transform(NAME)`` (or ``model.transforms()``) turns what a user has into what the
checkpoint's network was evaluated on:

- a static image (``direct`` encoding): a PIL image, an ``[H, W(, C)]`` uint8 array or a
  ``[C, H, W]`` uint8 tensor -> ``float32 [C, H, W]``: converted to the network's channel count
  (``L`` or ``RGB``), resized (shorter side, bilinear) and centre-cropped to the input size when
  it differs, scaled to [0, 1] and normalised with the checkpoint's mean and std. These are the
  steps of timm's eval transform at ``crop_pct = 1``, so ``timm.data.create_transform(
  **timm.data.resolve_model_data_config(model))`` gives the same tensor.
- an event recording (``frames`` / ``repeated_frame`` encodings): a :data:`zoo.data.events.
  EVENT_DTYPE` array (``t, x, y, p``, as the zoo's readers decode it) -> event counts
  ``float32 [F, 2, H, W]``, integrated exactly as the checkpoint's data set was (its
  :class:`~zoo.data.events.Integration` and sensor size, recorded in the config), with
  ``F = T`` frames for ``frames`` (one per step; ``T`` the model's, or given) and one frame for
  ``repeated_frame``; then normalised if the checkpoint says so.

Batch the outputs with ``torch.stack`` (static: ``[B, C, H, W]``) or ``torch.stack(..., dim=1)``
(events: time-first ``[F, B, 2, H, W]``, which is what the zoo's networks take).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from .config import CheckpointConfig


class ImageTransform:
    """A static image -> the normalised ``[C, H, W]`` the checkpoint was evaluated on."""

    def __init__(self, size: tuple[int, int, int], mean: list[float], std: list[float]) -> None:
        self.channels, self.height, self.width = size
        steps: list[Any] = [v2.Resize(min(self.height, self.width), interpolation=v2.InterpolationMode.BILINEAR,
                                      antialias=True),
                            v2.CenterCrop((self.height, self.width)), v2.ToImage(),
                            v2.ToDtype(torch.float32, scale=True)]
        if mean:
            steps.append(v2.Normalize(list(mean), list(std)))
        self.steps = v2.Compose(steps)

    def __call__(self, image: Any) -> torch.Tensor:
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if isinstance(image, Image.Image):
            image = image.convert("L" if self.channels == 1 else "RGB")
        elif not (isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == self.channels):
            raise ValueError(f"expected a PIL image, an [H, W(, C)] array or a [{self.channels}, H, W] tensor, "
                             f"got {type(image).__name__} {tuple(getattr(image, 'shape', ()))}")
        return self.steps(image)

    def __repr__(self) -> str:
        return f"ImageTransform({self.steps})"


class EventTransform:
    """An event recording -> the event-count frames ``[F, 2, H, W]`` the checkpoint was evaluated on."""

    def __init__(self, integration: Any, sensor_size: tuple[int, int], mean: list[float], std: list[float]) -> None:
        self.integration = integration
        self.sensor_size = sensor_size
        self.normalize = v2.Normalize(list(mean), list(std)) if mean else None

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        from .data.events import EVENT_DTYPE
        from .data.events.integrate import integrate

        if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
            raise ValueError(f"expected an event array of dtype {EVENT_DTYPE} (fields t, x, y, p; "
                             f"see zoo.data.events.make_events), got {type(events).__name__} "
                             f"{getattr(events, 'dtype', '')}")
        frames = torch.from_numpy(np.asarray(integrate(events, self.sensor_size, self.integration), np.float32))
        return frames if self.normalize is None else self.normalize(frames)

    def __repr__(self) -> str:
        return f"EventTransform({self.integration}, sensor {self.sensor_size})"


def transform_for(config: CheckpointConfig, T: int | None = None) -> ImageTransform | EventTransform:
    """The transform of the checkpoint ``config`` (``T``: frames for a ``frames`` encoding; default
    the checkpoint's own T)."""
    spec = config.input
    if spec.encoding == "direct":
        return ImageTransform(tuple(spec.size), spec.mean, spec.std)
    from dataclasses import replace

    from .data.events import Integration

    described = config.dataset
    if "integration" not in described or "sensor_size" not in described:
        raise ValueError(f"{config.name}: its config records no event integration (dataset.integration, "
                         "dataset.sensor_size); it cannot say how to turn events into frames")
    integration = Integration(**described["integration"])
    if spec.encoding == "frames":
        integration = replace(integration, frames=T or config.T)
    return EventTransform(integration, tuple(described["sensor_size"]), spec.mean, spec.std)


def create_transform(model: Any, T: int | None = None) -> ImageTransform | EventTransform:
    """The input transform of a checkpoint: ``model`` is a name (``arch.tag``), a checkpoint folder
    or a model loaded with weights. ``T``: frames for event checkpoints (default: the model's T)."""
    if isinstance(model, torch.nn.Module):
        config = getattr(model, "checkpoint_config", None)
        if config is None:
            raise ValueError(f"{type(model).__name__} was built without weights; its input transform is the "
                             "one of the checkpoint it will load (create_transform(NAME))")
        return transform_for(config, T or model.T)
    from .checkpoint import read_config
    from .hub import resolve_checkpoint

    folder, pins = resolve_checkpoint(model)
    return transform_for(read_config(folder, pins), T)  # config.json verified as a load verifies it
