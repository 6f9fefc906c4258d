"""The ``triton`` backend: fused multi-step forward and backward kernels, as torch.library ops.

Same math as :mod:`.fused` (see :mod:`zoo.neurons.dynamics`), one program per block of neurons and
the loop over time inside the kernel:

- forward: the membrane ``v`` of every level stays in float32 registers for all T steps; the input
  is upcast on load, the output stored in the input dtype, and only the pre-spike membrane h
  ``[T, K, N]`` (float32) is written for the backward pass (nothing at all without autograd).
- backward: the reverse-time recurrence ``dL/dh[t] = A[t] + B[t] * dL/dh[t+1]`` with A and B
  recomputed from h (spikes, surrogate, reset path), summed over the levels into ``dL/dx``.

Forward spikes are bit-exact with the other backends: every operation is the reference's, in the
same order and float32 rounding (``h = v * decay + x`` as two rounded ops, thresholds
``v_th + k * spacing`` computed in double and rounded once, IEEE division in the multi-bit
quantizer, strict ``>`` comparisons), and kernels are launched with
``enable_fp_fusion=False`` so the compiler contracts no multiply-add into an FMA.

Ops: ``zoo::neuron_forward`` and ``zoo::neuron_backward``, connected by
``torch.library.register_autograd``. The dynamics are passed as plain float/int/bool arguments.
On CUDA they are ``torch.library.triton_op`` ops (``torch.compile`` traces into the kernels). With
``TRITON_INTERPRET=1`` (CPU tensors, for tests) ``@triton.jit`` gives interpreted functions that
``wrap_triton`` cannot trace, so the same functions are registered as opaque
``torch.library.custom_op`` ops with a fake (shape-only) implementation instead; compiled graphs
then call the op, which runs the interpreter.

Layout: a tensor that is non-overlapping and dense with time outermost in memory (for example a
channels-last ``[T*B, C, H, W]`` activation viewed as ``[T, B, C, H, W]``) is processed in its own
storage order, outputs allocated with ``torch.empty_like`` (same strides), without a copy; any
other input is made contiguous first.
"""

import math
import os

import torch

from ..dynamics import MPR_STE_HIGH, MPR_STE_LOW, Dynamics
from .layout import FIRE_CODES, alloc_forward, time_outer_dense

try:  # the backend is optional: the module imports without Triton, available() is then False
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None
    tl = None

_TANH_1_5 = math.tanh(1.5)

# (fire, decay, v_th, levels, level_spacing, hard_reset, detach_reset, amplitude, v_init,
#  surrogate_kind, surrogate_param, mpr, int_bits, frac_bits)
_PARAMS = (
    "int fire, float decay, float v_th, int levels, float level_spacing, bool hard_reset, "
    "bool detach_reset, float amplitude, float v_init, int surrogate_kind, float surrogate_param, "
    "bool mpr, int int_bits, int frac_bits"
)
_N_PARAMS = 14


def available() -> bool:
    """True when Triton imports and kernels can run: a CUDA device, or ``TRITON_INTERPRET=1``."""
    if triton is None:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


def _op_params(dyn: Dynamics) -> tuple:
    fire = FIRE_CODES.get(dyn.fire)
    if fire is None:
        raise ValueError(f"triton backend: unknown fire {dyn.fire!r}; expected one of {tuple(FIRE_CODES)}")
    if dyn.levels < 1:
        raise ValueError(f"triton backend: levels must be >= 1, got {dyn.levels}")
    kind, param = -1, 1.0
    if fire == 0:
        if dyn.surrogate is None:
            raise ValueError("triton backend: fire='step' needs a surrogate")
        kind, param = int(dyn.surrogate.kind), float(dyn.surrogate.param)
        if not 0 <= kind <= 4:
            raise ValueError(f"triton backend: unsupported surrogate {dyn.surrogate!r} (kind {kind})")
    return (
        fire, float(dyn.decay), float(dyn.v_th), int(dyn.levels), float(dyn.level_spacing),
        dyn.reset == "hard", bool(dyn.detach_reset), float(dyn.amplitude), float(dyn.v_init),
        kind, param, bool(dyn.mpr), int(dyn.int_bits), int(dyn.frac_bits),
    )


def _block(n: int, k_pow2: int, interpret: bool) -> tuple[int, int]:
    """(BLOCK, num_warps): neurons per program (each holding k_pow2 levels)."""
    if interpret:  # numpy-vectorised: few, large programs
        return max(16, min(triton.next_power_of_2(n), 8192 // k_pow2)), 4
    block = max(64, 1024 // k_pow2)
    while block > 128 and triton.cdiv(n, block) < 1024:  # keep enough programs to fill the GPU
        block //= 2
    return block, 4


if triton is not None:

    @triton.jit
    def _thresholds(k, v_th, THS: tl.constexpr, LEVELS: tl.constexpr, KP: tl.constexpr):
        """V_k as a [KP, 1] float32 column: v_th (a runtime scalar) for one level, else the
        float32 roundings of the compile-time constants THS[k] = v_th + k * spacing (computed in
        double on the host, as Dynamics.thresholds does)."""
        vth = tl.zeros([KP], tl.float32) + v_th
        if LEVELS > 1:
            for kk in tl.static_range(LEVELS):
                vth = tl.where(k == kk, THS[kk], vth)
        return vth[:, None]

    @triton.jit
    def _neuron_fwd_kernel(
        x_ptr, out_ptr, h_ptr, N, T, KN,
        decay, v_th, amplitude, v_init, scale, inv_scale, q_top,
        THS: tl.constexpr, FIRE: tl.constexpr, LEVELS: tl.constexpr, KP: tl.constexpr,
        HARD: tl.constexpr, HAS_DECAY: tl.constexpr, SAVE_H: tl.constexpr, BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        nmask = offs < N
        k = tl.arange(0, KP)
        mask2 = (k < LEVELS)[:, None] & nmask[None, :]
        vth = _thresholds(k, v_th, THS, LEVELS, KP)
        v = tl.full([KP, BLOCK], v_init, tl.float32)
        vth_full = tl.full([KP, BLOCK], v_th, tl.float32)
        x_p = x_ptr + offs
        o_p = out_ptr + offs
        h_p = h_ptr + k.to(tl.int64)[:, None] * N + offs[None, :]
        for _t in range(T):
            xt = tl.load(x_p, mask=nmask, other=0.0).to(tl.float32)
            if HAS_DECAY:
                h = v * decay + xt[None, :]
            else:
                h = v + xt[None, :]
            if SAVE_H:
                tl.store(h_p, h, mask=mask2)
            if FIRE == 0:  # step: o = amplitude * H(h - V_k)
                fired = h > vth
                o = tl.where(fired, amplitude, 0.0)
                if HARD:
                    v = tl.where(fired, 0.0, h)
                else:
                    v = tl.where(fired, h - vth, h)
            elif FIRE == 1:  # InfLoR: phi(h) > 1/2 exactly when h > 1/2; soft reset by 1
                fired = h > 0.5
                o = tl.where(fired, 1.0, 0.0)
                v = tl.where(fired, h - 1.0, h)
            else:  # multi-bit: v_th * clip(floor(h / v_th * 2^n) / 2^n, 0, 2^m - 2^-n)
                q = tl.floor(tl.math.div_rn(h, vth_full) * scale) * inv_scale
                q = tl.where(q < 0.0, 0.0, q)
                q = tl.where(q > q_top, q_top, q)
                o = q * v_th
                v = h - o
            if LEVELS == 1:
                acc = tl.sum(o, axis=0)
            else:  # sum_k o_k in level order, as torch does
                acc = tl.zeros([BLOCK], tl.float32)
                for kk in tl.static_range(LEVELS):
                    acc += tl.sum(tl.where(k[:, None] == kk, o, 0.0), axis=0)
            tl.store(o_p, acc.to(out_ptr.dtype.element_ty), mask=nmask)
            x_p += N
            o_p += N
            h_p += KN

    @triton.jit
    def _neuron_bwd_kernel(
        g_ptr, h_ptr, gx_ptr, N, T, KN, last_x, last_h,
        decay, v_th, amplitude, s_a, s_b, top,
        THS: tl.constexpr, FIRE: tl.constexpr, LEVELS: tl.constexpr, KP: tl.constexpr,
        HARD: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, MPR: tl.constexpr,
        HAS_DECAY: tl.constexpr, MPR_SCALE: tl.constexpr, MPR_STE_LOW: tl.constexpr,
        MPR_STE_HIGH: tl.constexpr, BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        nmask = offs < N
        k = tl.arange(0, KP)
        mask2 = (k < LEVELS)[:, None] & nmask[None, :]
        vth = _thresholds(k, v_th, THS, LEVELS, KP)
        gh = tl.zeros([KP, BLOCK], tl.float32)  # dL/dh[t+1]
        g_p = g_ptr + last_x + offs
        gx_p = gx_ptr + last_x + offs
        h_p = h_ptr + last_h + k.to(tl.int64)[:, None] * N + offs[None, :]
        for _i in range(T):
            go = tl.load(g_p, mask=nmask, other=0.0).to(tl.float32)
            h = tl.load(h_p, mask=mask2, other=0.0)
            if FIRE == 0:
                z = h - vth
                if SURR == 0:  # rectangle: s_a = width / 2, s_b = 1 / width
                    sg = tl.where(tl.abs(z) < s_a, s_b, 0.0)
                elif SURR == 1:  # triangle: s_a = 2 / width
                    sg = tl.maximum(1.0 - tl.abs(z) * s_a, 0.0) * s_a
                elif SURR == 2:  # sigmoid: s_a = alpha
                    s = tl.sigmoid(s_a * z)
                    sg = s_a * s * (1.0 - s)
                elif SURR == 3:  # atan: s_a = pi / 2 * alpha, s_b = alpha / 2
                    y = s_a * z
                    sg = s_b / (1.0 + y * y)
                else:  # ste: s_a = width / 2 (bounds included), s_b = 1 / width
                    sg = tl.where(tl.abs(z) <= s_a, s_b, 0.0)
                do = sg * amplitude
                if HARD:
                    keep = tl.where(h <= vth, 1.0, 0.0)
                    if DETACH:
                        dv = keep
                    else:
                        dv = keep - h * sg
                else:
                    if DETACH:
                        dv = tl.full([KP, BLOCK], 1.0, tl.float32)
                    else:
                        dv = 1.0 - sg * vth
            elif FIRE == 1:
                if MPR:  # 1[0 <= phi(h) <= 1] * phi'(h), see dynamics.MPR_STE_LOW / HIGH
                    y = tl.minimum(tl.maximum(3.0 * (h - 0.5), -2.0), 2.0)
                    e = tl.exp(2.0 * y)
                    sech2 = 4.0 * e / ((e + 1.0) * (e + 1.0))  # 1 - tanh(y)^2
                    strict = (h > 0.0) & (h < 1.0)
                    inside = (h > MPR_STE_LOW) & (h <= MPR_STE_HIGH)
                    # phi' = 1 at exactly 0 and 1 (identity); in the two rounding bands just outside
                    # [0, 1] it is the cube-root branch's (1/3) |.|^(-2/3) = 1/3 within 1e-7
                    edge = tl.where((h == 0.0) | (h == 1.0), 1.0, 1.0 / 3.0)
                    sg = tl.where(strict, sech2 * MPR_SCALE, tl.where(inside, edge, 0.0))
                else:
                    sg = tl.where((h >= 0.0) & (h <= 1.0), 1.0, 0.0)
                do = sg
                dv = 1.0 - sg
            else:  # multi-bit straight-through on [0, 2^m v_th)
                sg = tl.where((h >= 0.0) & (h < top), 1.0, 0.0)
                do = sg
                dv = 1.0 - sg
            if HAS_DECAY:
                dv = dv * decay
            gh = do * go[None, :] + dv * gh
            if LEVELS == 1:
                acc = tl.sum(gh, axis=0)
            else:
                acc = tl.zeros([BLOCK], tl.float32)
                for kk in tl.static_range(LEVELS):
                    acc += tl.sum(tl.where(k[:, None] == kk, gh, 0.0), axis=0)
            tl.store(gx_p, acc.to(gx_ptr.dtype.element_ty), mask=nmask)
            g_p -= N
            gx_p -= N
            h_p -= KN

    try:
        from triton.runtime.interpreter import InterpretedFunction as _Interpreted
    except ImportError:  # pragma: no cover
        _Interpreted = ()
    _INTERPRETED = isinstance(_neuron_fwd_kernel, _Interpreted)
else:
    _INTERPRETED = False


def _launch(kernel, grid, *args, num_warps: int, **meta) -> None:
    torch.library.wrap_triton(kernel)[grid](*args, num_warps=num_warps, enable_fp_fusion=False, **meta)


def _threshold_values(v_th: float, levels: int, spacing: float) -> tuple:
    """V_k = v_th + k * spacing in double, as Dynamics.thresholds; rounded to float32 in the kernel.
    A compile-time constant of the kernel (empty for one level, whose v_th is a runtime argument)."""
    if levels == 1:
        return ()
    return tuple(v_th + k * spacing for k in range(levels))


def _forward_impl(x, save_h, fire, decay, v_th, levels, level_spacing, hard_reset, detach_reset,
                  amplitude, v_init, surrogate_kind, surrogate_param, mpr, int_bits, frac_bits):
    xk, out, h = alloc_forward(x, save_h, levels)
    steps = x.shape[0]
    n = x.numel() // steps if steps else 0
    if out.numel() == 0:
        return out, h
    kp = triton.next_power_of_2(levels)
    block, warps = _block(n, kp, _INTERPRETED)
    scale = float(2**frac_bits)
    _launch(
        _neuron_fwd_kernel, (triton.cdiv(n, block),),
        xk, out, h, n, steps, levels * n,
        decay, v_th, amplitude, v_init, scale, 1.0 / scale, float(2**int_bits) - 1.0 / scale,
        num_warps=warps, THS=_threshold_values(v_th, levels, level_spacing), FIRE=fire,
        LEVELS=levels, KP=kp, HARD=hard_reset, HAS_DECAY=decay != 1.0, SAVE_H=save_h, BLOCK=block,
    )
    return out, h


def _fake_forward(x, save_h, fire, decay, v_th, levels, *_):
    _, out, h = alloc_forward(x, save_h, levels)
    return out, h


def _backward_impl(grad, h, fire, decay, v_th, levels, level_spacing, hard_reset, detach_reset,
                   amplitude, v_init, surrogate_kind, surrogate_param, mpr, int_bits, frac_bits):
    gx = torch.empty_like(grad)
    if gx.numel() == 0:
        return gx
    if not time_outer_dense(grad):
        raise ValueError("zoo::neuron_backward: grad must be laid out like the forward output")
    steps = grad.shape[0]
    n = grad.numel() // steps
    kp = triton.next_power_of_2(levels)
    block, warps = _block(n, kp, _INTERPRETED)
    p = surrogate_param
    if surrogate_kind in (0, 4):  # rectangle, ste: half width, height
        s_a, s_b = p / 2, 1.0 / p
    elif surrogate_kind == 1:  # triangle
        s_a, s_b = 2 / p, 0.0
    elif surrogate_kind == 2:  # sigmoid
        s_a, s_b = p, 0.0
    else:  # atan (kind 3), or unused (fire != step)
        s_a, s_b = math.pi / 2 * p, p / 2
    _launch(
        _neuron_bwd_kernel, (triton.cdiv(n, block),),
        grad, h, gx, n, steps, levels * n, (steps - 1) * n, (steps - 1) * levels * n,
        decay, v_th, amplitude, s_a, s_b, float(2**int_bits) * v_th,
        num_warps=warps, THS=_threshold_values(v_th, levels, level_spacing), FIRE=fire,
        LEVELS=levels, KP=kp, HARD=hard_reset, DETACH=detach_reset, SURR=max(surrogate_kind, 0),
        MPR=mpr, HAS_DECAY=decay != 1.0, MPR_SCALE=1.5 / _TANH_1_5, MPR_STE_LOW=MPR_STE_LOW,
        MPR_STE_HIGH=MPR_STE_HIGH, BLOCK=block,
    )
    return gx


def _fake_backward(grad, *_):
    return torch.empty_like(grad)


_FWD_SCHEMA = f"(Tensor x, bool save_h, {_PARAMS}) -> (Tensor, Tensor)"
_BWD_SCHEMA = f"(Tensor grad, Tensor h, {_PARAMS}) -> Tensor"


def _setup_context(ctx, inputs, output):
    out, h = output
    ctx.mark_non_differentiable(h)
    ctx.save_for_backward(h)
    ctx.params = tuple(inputs[2:])
    ctx.layout = (tuple(out.shape), tuple(out.stride()))


def _backward(ctx, grad_out, _grad_h):
    (h,) = ctx.saved_tensors
    shape, stride = ctx.layout
    if tuple(grad_out.stride()) != stride:  # bring the gradient into the kernel's storage order
        laid_out = torch.empty_strided(shape, stride, dtype=grad_out.dtype, device=grad_out.device)
        grad_out = laid_out.copy_(grad_out)
    gx = torch.ops.zoo.neuron_backward(grad_out, h, *ctx.params)
    return (gx, None) + (None,) * _N_PARAMS


if triton is not None:
    if _INTERPRETED:
        _define = torch.library.custom_op
    else:
        _define = torch.library.triton_op
    _fwd_op = _define("zoo::neuron_forward", _forward_impl, mutates_args=(), schema=_FWD_SCHEMA)
    _bwd_op = _define("zoo::neuron_backward", _backward_impl, mutates_args=(), schema=_BWD_SCHEMA)
    if _INTERPRETED:  # triton_op uses the implementation itself as fake kernel; custom_op needs one
        _fwd_op.register_fake(_fake_forward)
        _bwd_op.register_fake(_fake_backward)
    _fwd_op.register_autograd(_backward, setup_context=_setup_context)


def triton_neuron(x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """Run a neuron over a time-first tensor x ``[T, ...]`` with the fused Triton kernels."""
    if not available():
        raise RuntimeError(
            "triton backend unavailable: needs the triton package and a CUDA device "
            "(or TRITON_INTERPRET=1 set before triton is imported, for CPU tensors)"
        )
    if not x.is_cuda and not _INTERPRETED:
        raise RuntimeError("triton backend: CPU tensors need TRITON_INTERPRET=1 (set before importing triton)")
    save_h = torch.is_grad_enabled() and x.requires_grad
    out, _ = torch.ops.zoo.neuron_forward(x, save_h, *_op_params(dyn))
    return out
