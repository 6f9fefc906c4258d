"""Input encoders: what a spiking network's first layer receives at each of T steps.

- Direct encoding (Rathi & Roy 2021; the MLF and InfLoR code): a static image ``[B, C, H, W]``
  is fed unchanged at every step, ``x[t] = image``, giving ``[T, B, C, H, W]``.
- Event frames (DVS128 Gesture, CIFAR10-DVS, N-MNIST): the dataset pipeline has already
  integrated the events into ``[F, B, C, H, W]`` frames, after which C (and H, W where the
  network needs a fixed size) are checked against the network. The frame count must fit T
  (:func:`check_frame_count`): ``F = T``, one frame per step, passed unchanged; ``F = 1`` (the
  whole recording integrated into one frame), the frame repeated at every step like direct
  encoding, so that a network trained at T = 1 on it keeps its input when converted to T = N
  (methods.md sections 3-4); or any F for a stateless network at ``T = 1`` (an ANN twin, no
  state between steps), which classifies each frame as one step and averages its logits, the
  frame count then being the T of its conversion. Anything else is an error: silently running
  F steps would evaluate a network at a T it was not built for.
"""

from __future__ import annotations

import torch


def check_frame_count(frames: int, T: int, stateless: bool, owner: str = "model") -> None:
    """Raise ValueError unless ``frames`` event frames fit a network of ``T`` steps (module
    docstring); ``stateless``: the network has no state between steps (no spiking neurons)."""
    if frames in (1, T) or (T == 1 and stateless):
        return
    raise ValueError(f"{owner} runs T={T} steps and takes event frames time first, [T, B, C, H, W]: {T} frames (one "
                     f"per step) or 1 (repeated at every step); got {frames} in dimension 0. A batch-first tensor "
                     f"[B, T, C, H, W] needs x.transpose(0, 1); otherwise integrate the events into {T} frames or 1, "
                     f"or set T to {frames}" + ("" if stateless else " (only a network without spiking neurons takes "
                                                                     "any frame count at T=1)"))


def encode_input(
    x: torch.Tensor,
    T: int,
    in_chans: int,
    input_size: tuple[int, int] | None = None,
    owner: str = "model",
    stateless: bool = False,
) -> torch.Tensor:
    """Time-first input ``[T, B, C, H, W]`` from a static image ``[B, C, H, W]`` or one event frame
    ``[1, B, C, H, W]`` (each repeated T times), or event frames ``[T, B, C, H, W]`` (returned as
    they are; a ``stateless`` network at ``T = 1`` takes any number of frames). ``input_size``
    (H, W), when given, must match; a wrong rank, channel count, size or frame count raises
    ValueError naming what was expected."""
    hw = "H, W" if input_size is None else f"{input_size[0]}, {input_size[1]}"
    expected = (f"a static image [B, {in_chans}, {hw}], event frames [T, B, {in_chans}, {hw}] "
                f"or one event frame [1, B, {in_chans}, {hw}]")
    if x.dim() not in (4, 5):
        raise ValueError(f"{owner} expects {expected}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
    if x.shape[-3] != in_chans or (input_size is not None and tuple(x.shape[-2:]) != tuple(input_size)):
        raise ValueError(f"{owner} expects {expected}, got shape {tuple(x.shape)}")
    if x.dim() == 4:
        return x.unsqueeze(0).expand(T, *x.shape)
    check_frame_count(x.shape[0], T, stateless, owner)
    return x.expand(T, *x.shape[1:]) if x.shape[0] == 1 else x
