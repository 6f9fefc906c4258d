"""The CPU kernel of the ``fused`` backend: a small C++/OpenMP library, compiled on first use.

``cpu_kernel.cpp`` computes the recurrence of :mod:`zoo.neurons.dynamics` for every neuron family,
written once and templated on the firing rule and surrogate (and, in the same library, the QCFS
activation of the ANN twins, called from :mod:`zoo.layers.qcfs`, and the noisy input of the noisy
IF neuron's training step with its noise, :mod:`zoo.neurons.noisy_if`):

- forward: x ``[T, N]`` -> out ``[T, N]``, and the pre-spike membrane h ``[T, K, N]`` (float32)
  when a gradient will be needed;
- backward: dL/dout and h -> dL/dx, the reverse-time recurrence
  ``dL/dh[t] = dL/dout[t] * do/dh + decay * dv/dh * dL/dh[t+1]`` with the partials recomputed
  from h.

Neurons are processed in blocks of 4096 that run the whole time loop with their state in cache,
so every array is streamed through once, in its own storage order (a channels-last activation is
not copied), any of float32 / float64 / float16 / bfloat16, with the membrane in float32.
Forward spikes are bit-identical to the reference: same operations, same float32 rounding, built
with ``-ffp-contract=off`` (no fused multiply-add).

Build: ``$CXX`` (default ``c++``) ``-O3 -fopenmp -shared``, once per machine (with a message on
stderr and the time it took), into the torch extensions cache (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``) under a name that hashes the source, the flags, the compiler and
torch's version. A shared library runs code on load, so one is loaded only from a folder that is
this user's alone (owned by them, writable by no group or other; else the kernel is built in a
fresh private temporary folder) and only if it matches the sha256 recorded beside it at build time
(else it is rebuilt). ``ZOO_CPU_KERNEL=0``
disables the kernel; if the build fails the fused backend warns once and runs its PyTorch loops.

The two entry points are ``torch.library`` custom ops, ``zoo::cpu_neuron_forward`` and
``zoo::cpu_neuron_backward``, with fake (shape-only) implementations, so ``torch.compile`` traces
through the fused backend with the kernel as an opaque call; eager calls (:func:`forward`,
:func:`backward`) run the ops' implementations directly.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

from ..dynamics import MPR_STE_HIGH, MPR_STE_LOW, Dynamics
from .layout import FIRE_CODES, alloc_forward

_SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
_FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp", "-fPIC", "-shared", "-std=c++17"]
_DTYPES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}

# The parameters, in the order of ZooNeuronParams in cpu_kernel.cpp; the thresholds V_k follow
# the float fields in the op's ``floats`` argument.
_INT_FIELDS = ("fire", "surrogate", "levels", "hard_reset", "detach_reset", "mpr")
_FLOAT_FIELDS = ("decay", "v_th", "amplitude", "v_init", "s_a", "s_b", "q_scale", "q_top", "ste_top",
                 "mpr_low", "mpr_high", "mpr_scale")


class _Params(ctypes.Structure):
    _fields_ = ([(name, ctypes.c_int32) for name in _INT_FIELDS]
                + [(name, ctypes.c_float) for name in _FLOAT_FIELDS]
                + [("thresholds", ctypes.POINTER(ctypes.c_float))])


# ---- build and load ------------------------------------------------------------------------------
_lock = threading.Lock()
_library_state: ctypes.CDLL | bool | None = None  # None: not tried yet; False: the build failed


def _cache_root() -> Path:
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "torch_extensions"))


def _untrusted(path: Path) -> str | None:
    """Why ``path`` (a folder or file) could hold code planted by someone else, or None: it must be
    owned by this user and writable by no one else (group or others)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if info.st_uid != os.getuid():
        return f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _private_folder() -> Path:
    """The folder the library is built in and loaded from: ``zoo_neuron_cpu`` in the torch
    extensions cache, created private (0700); if that folder is not this user's alone (a shared
    cache where someone else could plant a library), a fresh private temporary folder instead."""
    folder = _cache_root() / "zoo_neuron_cpu"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        reason = _untrusted(folder)
    except OSError as error:
        reason = f"{folder} cannot be used ({error})"
    if reason is None:
        return folder
    fallback = Path(tempfile.mkdtemp(prefix="zoo_neuron_cpu_"))
    warnings.warn(f"zoo.neurons: not loading the CPU kernel from the cache: {reason}; building it in {fallback}")
    return fallback


def _verified(library_path: Path) -> bool:
    """The library exists, is this user's alone, and matches the sha256 recorded when it was built."""
    digest = library_path.with_name(library_path.name + ".sha256")
    if not (library_path.is_file() and digest.is_file()):
        return False
    if _untrusted(library_path) or _untrusted(digest):
        return False
    return hashlib.sha256(library_path.read_bytes()).hexdigest() == digest.read_text().strip()


def _compile(compiler: str, flags: list[str], library_path: Path) -> None:
    """Compile cpu_kernel.cpp into ``library_path`` (atomically), with its sha256 beside it."""
    print(f"zoo: building the fused backend's CPU kernel into {library_path.parent} (once per machine) ...",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    tmp = library_path.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run([compiler, *flags, str(_SOURCE), "-o", str(tmp)], check=False, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[-800:]}")
    os.chmod(tmp, 0o700)
    digest_tmp = tmp.with_suffix(".sha256.tmp")
    digest_tmp.write_text(hashlib.sha256(tmp.read_bytes()).hexdigest() + "\n")
    os.chmod(digest_tmp, 0o600)
    os.replace(tmp, library_path)  # atomic: concurrent builds are harmless
    os.replace(digest_tmp, library_path.with_name(library_path.name + ".sha256"))
    print(f"zoo: CPU kernel built in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def _build() -> Path:
    """The compiled library, built unless a verified build of this source, these flags, this
    compiler and this torch is already in the private cache folder."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (set CXX)")
    flags = list(_FLAGS)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mf16c"]
    flags.append(f"-I{Path(torch.__file__).parent / 'include'}")  # c10's Half and BFloat16
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join([compiler, *flags, torch.__version__]).encode()]))
    path = _private_folder() / f"zoo_neuron_cpu_{key.hexdigest()[:16]}.so"
    if not _verified(path):
        _compile(compiler, flags, path)
    return path


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(_build()))
    for fn in (lib.zoo_neuron_forward, lib.zoo_neuron_backward):
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64,
                       ctypes.c_int64, ctypes.POINTER(_Params), ctypes.c_int]
    qcfs = [ctypes.c_int64, ctypes.c_float, ctypes.c_int32, ctypes.c_float, ctypes.c_int]  # n, lambda, L, shift, threads
    lib.zoo_qcfs_forward.restype, lib.zoo_qcfs_forward.argtypes = None, [ctypes.c_void_p] * 3 + qcfs
    lib.zoo_qcfs_backward.restype, lib.zoo_qcfs_backward.argtypes = ctypes.c_double, [ctypes.c_void_p] * 4 + qcfs
    noise = [ctypes.c_int64, ctypes.c_uint64] + [ctypes.c_float] * 3 + [ctypes.c_int32, ctypes.c_int]  # n, seed, mu, sigma, V_th, uniform, threads
    lib.zoo_noisy_input.restype, lib.zoo_noisy_input.argtypes = None, [ctypes.c_void_p] * 2 + noise
    lib.zoo_noisy_fire.restype, lib.zoo_noisy_fire.argtypes = None, [ctypes.c_void_p] * 3 + noise
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernel library, built on first use; None when ``ZOO_CPU_KERNEL=0`` or when the
    build failed (which warns once)."""
    if os.environ.get("ZOO_CPU_KERNEL", "1") == "0":
        return None
    return _loaded()


def _loaded() -> ctypes.CDLL | None:
    global _library_state
    with _lock:
        if _library_state is None:
            try:
                _library_state = _load()
            except Exception as err:  # no compiler, no OpenMP, read-only cache, ...
                _library_state = False
                warnings.warn(f"zoo.neurons: the fused backend's CPU kernel is unavailable ({err}); "
                              "running its PyTorch loops instead (ZOO_CPU_KERNEL=0 skips the build)")
    return _library_state or None


def available() -> bool:
    return library() is not None


# torch.compile decides (and builds) once, at trace time. The mark is what
# torch.compiler.assume_constant_result sets; applying that decorator would import torch._dynamo
# (1.5 s) on every `import zoo`. tests/test_cpu_kernel.py checks the two marks agree.
available._dynamo_marked_constant = True


def supports(dyn: Dynamics, dtype: torch.dtype) -> bool:
    """The kernel computes these dynamics on this dtype (every zoo neuron, on floating dtypes but
    the float8 ones)."""
    if dtype not in _DTYPES or dyn.fire not in FIRE_CODES or dyn.levels < 1:
        return False
    return dyn.fire != "step" or (dyn.surrogate is not None and 0 <= dyn.surrogate.kind <= 4)


# ---- the parameters ------------------------------------------------------------------------------
def _pack(dyn: Dynamics) -> tuple[list[int], list[float]]:
    """The dynamics as the ops' (ints, floats) arguments: the fields of ZooNeuronParams, then the
    thresholds ``V_k = v_th + k * spacing`` (in double, rounded to float32 on the way to the kernel,
    as :meth:`Dynamics.thresholds`)."""
    kind, s_a, s_b = -1, 0.0, 0.0
    if dyn.fire == "step":
        kind, p = int(dyn.surrogate.kind), float(dyn.surrogate.param)
        s_a, s_b = {  # see surrogate() in cpu_kernel.cpp
            0: (p / 2, 1.0 / p),  # rectangle: half width, height
            1: (2.0 / p, 0.0),  # triangle
            2: (p, 0.0),  # sigmoid: alpha
            3: (math.pi / 2 * p, p / 2),  # atan
            4: (p / 2, 1.0 / p),  # ste
        }[kind]
    scale = float(2**dyn.frac_bits)
    ints = [FIRE_CODES[dyn.fire], kind, dyn.levels, dyn.reset == "hard", dyn.detach_reset, dyn.mpr]
    floats = [dyn.decay, dyn.v_th, dyn.amplitude, dyn.v_init, s_a, s_b, scale,
              float(2**dyn.int_bits) - 1.0 / scale, float(2**dyn.int_bits) * dyn.v_th,
              MPR_STE_LOW, MPR_STE_HIGH, 1.5 / math.tanh(1.5)]
    thresholds = [dyn.v_th + k * dyn.level_spacing for k in range(dyn.levels)]
    return [int(i) for i in ints], [float(f) for f in floats + thresholds]


def _kernel(name: str):
    lib = _loaded()  # (a compiled graph calls the ops without asking available() first)
    if lib is None:
        raise RuntimeError("zoo CPU neuron kernel: the library could not be built")
    return getattr(lib, name)


def _call(fn, inp: torch.Tensor, out: torch.Tensor, h: torch.Tensor, ints, floats) -> None:
    n_float = len(_FLOAT_FIELDS)
    thresholds = (ctypes.c_float * (len(floats) - n_float))(*floats[n_float:])
    params = _Params(*ints, *floats[:n_float], thresholds)
    steps = inp.shape[0]
    status = fn(inp.data_ptr(), out.data_ptr(), h.data_ptr() or None, _DTYPES[inp.dtype], steps,
                inp.numel() // steps, ctypes.byref(params), torch.get_num_threads())
    if status != 0:
        raise ValueError(f"zoo CPU neuron kernel: unsupported parameters {ints} {floats}")


# ---- ops -----------------------------------------------------------------------------------------
def _forward_impl(x: torch.Tensor, save_h: bool, ints: list[int],
                  floats: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    xk, out, h = alloc_forward(x, save_h, ints[_INT_FIELDS.index("levels")])
    if out.numel():
        _call(_kernel("zoo_neuron_forward"), xk, out, h, ints, floats)
    return out, h


def _backward_impl(grad: torch.Tensor, h: torch.Tensor, grad_x: torch.Tensor, ints: list[int],
                   floats: list[float]) -> None:
    if grad.numel():
        _call(_kernel("zoo_neuron_backward"), grad, grad_x, h, ints, floats)


@torch.library.custom_op("zoo::cpu_neuron_forward", mutates_args=())
def _forward_op(x: torch.Tensor, save_h: bool, ints: list[int],
                floats: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    return _forward_impl(x, save_h, ints, floats)


@_forward_op.register_fake
def _(x, save_h, ints, floats):
    return alloc_forward(x, save_h, ints[_INT_FIELDS.index("levels")])[1:]


@torch.library.custom_op("zoo::cpu_neuron_backward", mutates_args=("grad_x",))
def _backward_op(grad: torch.Tensor, h: torch.Tensor, grad_x: torch.Tensor, ints: list[int],
                 floats: list[float]) -> None:
    """grad_x = dL/dx from grad = dL/dout; both laid out like the forward's output. grad_x may be
    h's memory (one level, float32)."""
    _backward_impl(grad, h, grad_x, ints, floats)


@_backward_op.register_fake
def _(grad, h, grad_x, ints, floats):
    return None


def forward(x: torch.Tensor, dyn: Dynamics, save_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, h) for x ``[T, ...]``: out in x's dtype, laid out like x when x is
    :func:`~zoo.neurons.backends.layout.time_outer_dense` (else contiguous); h float32 (see
    :func:`~zoo.neurons.backends.layout.alloc_forward`), or empty unless save_h.

    Under ``torch.compile`` the kernel is the custom op ``zoo::cpu_neuron_forward``, opaque to the
    tracer; in eager mode the op's implementation is called directly, which saves the dispatcher's
    Python overhead (about 22 us of 37 per call on a small tensor, measured here; two calls per
    neuron per step)."""
    if torch.compiler.is_compiling():
        return torch.ops.zoo.cpu_neuron_forward(x, save_h, *_pack(dyn))
    return _forward_impl(x, save_h, *_pack(dyn))


def same_layout(x: torch.Tensor, stride: tuple[int, ...]) -> bool:
    """x's elements lie in storage as those of a tensor of x's shape with ``stride`` (the strides of
    dimensions of size 1 do not matter)."""
    return all(a == b for a, b, size in zip(x.stride(), stride, x.shape) if size != 1)


def backward(grad: torch.Tensor, h: torch.Tensor, dyn: Dynamics, layout: tuple,
             donate_h: bool) -> torch.Tensor:
    """dL/dx from dL/dout and the saved h; ``layout`` = (shape, stride) of the forward's output.

    With ``donate_h`` the caller gives up h: where h is laid out like the output (one level, see
    :func:`~zoo.neurons.backends.layout.alloc_forward`) and the gradients are float32, dL/dx is then
    written over h's memory (the kernel reads each element of h before it writes the gradient of
    the same neuron and step there) and h itself is returned, which saves allocating, and
    page-faulting, a ``[T, N]`` buffer. Returning h itself, not a view of it, leaves dL/dx the only
    tensor on its storage, so that autograd can add a second gradient of the same input into it in
    place (a view would cost an out-of-place add and a fresh buffer at every residual shortcut)."""
    shape, stride = layout
    one_level = tuple(h.shape) == tuple(shape)  # h laid out like the output
    if one_level:
        if not same_layout(h, stride):  # (it is, unless a saved-tensors hook changed it)
            h = torch.empty_strided(shape, stride, dtype=h.dtype, device=h.device).copy_(h)
    else:
        h = h.contiguous()
    if not same_layout(grad, stride):  # into the forward's storage order
        grad = torch.empty_strided(shape, stride, dtype=grad.dtype, device=grad.device).copy_(grad)
    if donate_h and one_level and h.dtype == grad.dtype:
        grad_x = h
    else:
        grad_x = torch.empty_strided(shape, stride, dtype=grad.dtype, device=grad.device)
    if torch.compiler.is_compiling():
        torch.ops.zoo.cpu_neuron_backward(grad, h, grad_x, *_pack(dyn))
    else:
        _backward_impl(grad, h, grad_x, *_pack(dyn))
    return grad_x
