"""Test-session setup. Without a GPU, Triton kernels run under its interpreter on CPU tensors;
the variable must be set before triton is first imported, so it is set here, before any test
module is collected."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
