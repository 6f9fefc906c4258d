"""Tests of the ``triton`` neuron backend (``zoo/neurons/backends/triton.py``) against ``torch``.

Without a CUDA device the kernels run in Triton's interpreter on CPU tensors. Triton decides at
``@triton.jit`` time whether to interpret, so ``TRITON_INTERPRET=1`` is set below, before triton
(and the backend) is first imported in this process; if the backend was already imported without
it (another test module imported it first), the CPU tests are skipped with that reason. With a GPU
the tests run on CUDA with compiled kernels instead.

Every case compares ``zoo.neurons.create(spec, backend="triton")`` with the reference
(``backend="torch"``): forward bit-exact (``torch.equal``), input gradients within float32
rounding; for fp16/bf16 inputs, forward equal to the reference on the same half-precision input
and gradients within one half-precision ulp. Shapes are small: the interpreter is slow.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton

pytest.importorskip("triton", reason="triton is not installed: the triton backend is unavailable")

import zoo.neurons as zn  # noqa: E402
from zoo.neurons.backends import triton as tb  # noqa: E402
from zoo.neurons.backends.layout import time_outer_dense  # noqa: E402

if torch.cuda.is_available():
    DEVICES = ["cuda"]
elif tb._INTERPRETED:
    DEVICES = ["cpu"]
else:
    DEVICES = []
if not DEVICES:
    pytest.skip(
        "no CUDA device, and zoo.neurons.backends.triton was imported before TRITON_INTERPRET=1 "
        "was set (run this file on its own)",
        allow_module_level=True,
    )

T = 6
SHAPE = (3, 50)  # N = 150 neurons

CASES = [
    "lif",
    "lif(reset='soft')",
    "lif(detach_reset=True)",
    "lif(reset='soft', detach_reset=True)",
    "if",
    "if(reset='hard', v_th=0.6)",
    "mlf",
    "mlf(levels=2, v_th=0.5, tau=0.5, width=0.5)",
    "mlf(levels=4, v_th=0.3, width=0.7)",  # V_4 = f32(0.3 + 3 * 0.7 in double) = f32(2.4)
    "srif",
    "srif(mpr=False)",
    "multibit(m=2, n=0)",
    "multibit(m=3, n=2, decay=0.5)",
    "multibit(m=2, n=1, v_init=0.25)",
    "noisy_if",
    "lif(surrogate=rectangle(width=0.5))",
    "lif(surrogate=triangle(width=1.0))",
    "lif(surrogate=sigmoid(alpha=4.0))",
    "lif(surrogate=atan(alpha=2.0))",
    "lif(surrogate=ste(width=1.0))",
    "lif(reset='soft', surrogate=atan(alpha=3.0))",
    "lif(reset='soft', surrogate=triangle(width=0.5))",
]

# values landing exactly on thresholds (0.5, 0.6, 1.6, 1.0, 2.6, 2.4), on the InfLoR boundaries
# (0, 1 and the float32 numbers next to 0.5) and on multi-bit quantisation steps (0.25, 7.75, 8.0)
SPECIAL = [
    0.5, 0.6, 1.6, 1.0, 0.0, 0.25, -0.5, 2.6, 0.75, 1.5, 3.0, 7.75, 8.0,
    0.5 + 2**-24, 0.5 - 2**-25, 0.3, 0.2, 0.1, -1.0, 0.125, 1.1, 0.4, 2.4,
]
CONSTANT = [0.5, 0.25, 0.6, 0.3, 0.2, 0.125, 1.0, 0.1, 0.4, 0.8]  # same input every step


def make_input(dtype=torch.float32, device="cpu", steps=T, shape=SHAPE, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((steps,) + shape, generator=gen) * 0.7 + 0.2
    flat = x.view(steps, -1)
    special = torch.tensor(SPECIAL)
    m = min(len(SPECIAL), flat.shape[1])
    for t in range(steps):
        flat[t, :m] = special.roll(t)[:m]
    c = min(len(CONSTANT), flat.shape[1] - m)
    if c > 0:
        flat[:, m : m + c] = torch.tensor(CONSTANT[:c])
    return x.to(device=device, dtype=dtype)


def make_pair(spec):
    tri, ref = zn.create(spec, backend="triton"), zn.create(spec, backend="torch")
    tri.eval(), ref.eval()  # only noisy_if cares: eval is its multi-step IF form
    return tri, ref


def membrane(dyn, x):
    """The pre-spike membrane h [T, K, N] (float32), stepped with the Dynamics description."""
    flat = x.detach().reshape(x.shape[0], -1).float()
    v = torch.full((dyn.levels, flat.shape[1]), dyn.v_init, dtype=torch.float32, device=x.device)
    hs = []
    for t in range(flat.shape[0]):
        h = v + flat[t] if dyn.decay == 1.0 else v * dyn.decay + flat[t]
        hs.append(h)
        v = dyn.reset_step(h)
    return torch.stack(hs)


def run(neuron, x, grad_out):
    x = x.detach().clone().requires_grad_()
    out = neuron(x)
    (gx,) = torch.autograd.grad(out, x, grad_out)
    return out.detach(), gx


def test_available():
    assert tb.available()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", CASES)
def test_matches_reference_fp32(spec, device):
    tri, ref = make_pair(spec)
    assert tri.dynamics() is not None
    x = make_input(device=device)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(device)
    out_t, gx_t = run(tri, x, g)
    out_r, gx_r = run(ref, x, g)
    assert out_t.dtype == x.dtype and out_t.shape == x.shape
    assert torch.equal(out_t, out_r)
    assert out_r.abs().sum() > 0  # the case fires at all
    torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)
    # and the same function as the fused backend, everywhere
    out_f, gx_f = run(zn.create(tri, backend="fused").eval(), x, g)
    assert torch.equal(out_t, out_f)
    torch.testing.assert_close(gx_t, gx_f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("spec", CASES)
def test_matches_reference_half(spec, dtype, device):
    tri, ref = make_pair(spec)
    x = make_input(dtype=dtype, device=device)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(device=device, dtype=dtype)
    out_t, gx_t = run(tri, x, g)
    out_r, gx_r = run(ref, x, g)
    assert out_t.dtype == dtype and gx_t.dtype == dtype
    assert torch.equal(out_t, out_r)
    tol = {torch.float16: (2e-3, 1e-4), torch.bfloat16: (1.6e-2, 1e-3)}[dtype]
    torch.testing.assert_close(gx_t, gx_r, rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("device", DEVICES)
def test_srif_phi_rounding_band(device):
    """Input 0.6 every step drives u to 1 + 1 ulp at t = 4, where the float32 phi(u) rounds to 1,
    so the authors' clamp passes the gradient there; every backend must agree."""
    x = torch.full((6, 1), 0.6, device=device)
    dyn = zn.create("srif").dynamics()
    assert membrane(dyn, x)[4, 0, 0].item() == 1.0 + 2**-23
    g = torch.ones_like(x)
    out_t, gx_t = run(zn.create("srif", backend="triton"), x, g)
    out_f, gx_f = run(zn.create("srif", backend="fused"), x, g)
    out_r, gx_r = run(zn.create("srif", backend="torch"), x, g)
    assert torch.equal(out_t, out_r) and torch.equal(out_t, out_f)
    torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_float64_input(device):
    tri, ref = make_pair("lif(reset='soft')")
    x = make_input(dtype=torch.float64, device=device)
    g = torch.randn(x.shape, dtype=torch.float64).to(device)
    out_t, gx_t = run(tri, x, g)
    out_r, gx_r = run(ref, x, g)
    assert out_t.dtype == torch.float64 and torch.equal(out_t, out_r)
    torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["srif", "mlf", "multibit(m=3, n=2, decay=0.5)"])
def test_single_step_and_single_neuron(spec, device):
    tri, ref = make_pair(spec)
    for steps, shape in ((1, SHAPE), (T, (1,))):
        x = make_input(device=device, steps=steps, shape=shape)
        g = torch.ones_like(x)
        out_t, gx_t = run(tri, x, g)
        out_r, gx_r = run(ref, x, g)
        assert torch.equal(out_t, out_r)
        torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)


def test_time_outer_dense():
    x = torch.empty(4, 2, 3, 5, 5)
    assert time_outer_dense(x)
    cl = torch.empty(8, 3, 5, 5).to(memory_format=torch.channels_last).view(4, 2, 3, 5, 5)
    assert not cl.is_contiguous() and time_outer_dense(cl)
    assert not time_outer_dense(torch.empty(2, 4, 7).transpose(0, 1))  # dense, time inner
    assert not time_outer_dense(torch.empty(4, 2, 14)[..., ::2])  # not dense
    assert time_outer_dense(torch.empty(4, 1, 7)[:, :, :])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["lif", "mlf", "multibit(m=3, n=2, decay=0.5)"])
def test_channels_last_no_copy(spec, device):
    tri, ref = make_pair(spec)
    base = make_input(device=device, shape=(2, 3, 4, 5)).view(T * 2, 3, 4, 5)
    x = base.contiguous(memory_format=torch.channels_last).view(T, 2, 3, 4, 5)
    assert not x.is_contiguous() and time_outer_dense(x)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(device)
    out_r, gx_r = run(ref, x.contiguous(), g)
    # the kernel works on x's storage: the output keeps x's strides
    out, _ = torch.ops.zoo.neuron_forward(x, False, *tb._op_params(tri.dynamics()))
    assert out.stride() == x.stride() and torch.equal(out, out_r)
    # gradient given contiguous (re-laid out in backward) and in x's own layout
    g_cl = g.view(T * 2, 3, 4, 5).contiguous(memory_format=torch.channels_last).view(x.shape)
    assert g_cl.stride() == x.stride()
    for grad in (g, g_cl):
        out_t, gx_t = run(tri, x, grad)
        assert torch.equal(out_t, out_r)
        torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_noncontiguous_inputs_fall_back(device):
    tri, ref = make_pair("mlf")
    transposed = make_input(device=device, shape=(2, 30)).transpose(0, 1).contiguous().transpose(0, 1)
    strided = make_input(device=device, shape=(2, 60))[..., ::2]
    for x in (transposed, strided):
        assert not time_outer_dense(x)
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(4)).to(device)
        out_t, gx_t = run(tri, x, g)
        out_r, gx_r = run(ref, x, g)
        assert torch.equal(out_t, out_r)
        torch.testing.assert_close(gx_t, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_inference_saves_nothing(device):
    tri, ref = make_pair("mlf")
    x = make_input(device=device)
    params = tb._op_params(tri.dynamics())
    out, h = torch.ops.zoo.neuron_forward(x, False, *params)
    assert h.numel() == 0
    out2, h2 = torch.ops.zoo.neuron_forward(x, True, *params)
    assert h2.shape == (T, 3, x[0].numel()) and h2.dtype == torch.float32
    assert torch.equal(out, out2)
    with torch.no_grad():
        assert torch.equal(tri(x), ref(x))


@pytest.mark.parametrize("device", DEVICES)
def test_auto_backend_resolution(device):
    x = make_input(device=device)
    expected = "triton" if device == "cuda" else "fused"
    assert zn.backends.resolve("auto", x) == expected


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile(device):
    """torch.compile traces through the neuron with fullgraph=True. On CUDA the ops are triton_ops
    (the kernels enter the graph). Under TRITON_INTERPRET=1 ``wrap_triton`` cannot trace interpreted
    kernels, so the backend registers the same ops as opaque custom ops with a fake implementation:
    the graph then calls the op, which runs the interpreter."""
    torch._dynamo.reset()
    tri, ref = make_pair("mlf")

    def f(x):
        return tri(x) * 2.0 + 1.0

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    x = make_input(device=device)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(device)
    xc, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_c = compiled(xc)
    out_r = ref(xr) * 2.0 + 1.0
    assert torch.equal(out_c, out_r)
    (gc,) = torch.autograd.grad(out_c, xc, g)
    (gr,) = torch.autograd.grad(out_r, xr, g)
    torch.testing.assert_close(gc, gr, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()
