"""Input encoders: what a spiking network's first layer receives at each of T steps.

- Direct encoding (Rathi & Roy 2021; the MLF and InfLoR code): a static image ``[B, C, H, W]``
  is fed unchanged at every step, ``x[t] = image``, giving ``[T, B, C, H, W]``.
- Event frames (DVS128 Gesture, CIFAR10-DVS, N-MNIST): the dataset pipeline has already
  integrated the events into ``[T, B, C, H, W]`` frames; they pass through unchanged and T is
  taken from the input, after checking that C (and H, W where the network needs a fixed size)
  fit the network.
"""

from __future__ import annotations

import torch


def encode_input(
    x: torch.Tensor,
    T: int,
    in_chans: int,
    input_size: tuple[int, int] | None = None,
    owner: str = "model",
) -> torch.Tensor:
    """Time-first input ``[T, B, C, H, W]`` from a static image ``[B, C, H, W]`` (repeated T times)
    or event frames ``[T, B, C, H, W]`` (returned as they are). ``input_size`` (H, W), when given,
    must match; a wrong rank, channel count or size raises ValueError naming the expected shape."""
    hw = "H, W" if input_size is None else f"{input_size[0]}, {input_size[1]}"
    expected = f"a static image [B, {in_chans}, {hw}] or event frames [T, B, {in_chans}, {hw}]"
    if x.dim() not in (4, 5):
        raise ValueError(f"{owner} expects {expected}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
    if x.shape[-3] != in_chans or (input_size is not None and tuple(x.shape[-2:]) != tuple(input_size)):
        raise ValueError(f"{owner} expects {expected}, got shape {tuple(x.shape)}")
    if x.dim() == 4:
        return x.unsqueeze(0).expand(T, *x.shape)
    return x
