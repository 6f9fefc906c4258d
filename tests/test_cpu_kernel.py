"""The fused backend's CPU kernel (``zoo/neurons/backends/cpu_kernel.{py,cpp}``) against the reference.

Every neuron family and surrogate: forward bit-exact with ``backend="torch"``, input gradients
within float32 rounding; half precision, float64, channels-last and strided inputs; the reuse of
the saved membrane's memory for dL/dx (only when the autograd graph is not kept); inference saving
nothing; ``torch.compile``; and the fallback to the PyTorch loops when the kernel is disabled or
cannot be built. Shapes are small, but some exceed one block of neurons and the size above which
the kernel runs on several threads.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch

import zoo.neurons as zn
from zoo.neurons.backends import cpu_kernel
from zoo.neurons.backends.layout import time_outer_dense

if not cpu_kernel.available():
    pytest.skip("the CPU kernel is disabled (ZOO_CPU_KERNEL=0) or could not be built",
                allow_module_level=True)

SPECS = [
    "lif",
    "lif(reset=soft)",
    "lif(detach_reset=true)",
    "lif(reset=soft, detach_reset=true)",
    "lif(surrogate=triangle(width=0.5), tau=0.9)",
    "lif(surrogate=sigmoid(alpha=3.0))",
    "lif(surrogate=atan, reset=soft)",
    "lif(surrogate=ste)",
    "if",
    "if(reset=hard, v_th=0.6)",
    "mlf",
    "mlf(levels=2, width=0.5, tau=0.5)",
    "mlf(levels=4, v_th=0.3, width=0.7)",
    "srif",
    "srif(mpr=false)",
    "multibit",
    "multibit(m=3, n=2, v_th=0.5, decay=0.5)",
    "multibit(m=2, n=1, v_init=0.25)",
    "noisy_if",
]

# exactly on thresholds (0.5, 0.6, 1.6, 2.6, 2.4, 1.0), InfLoR's boundaries, multi-bit steps
SPECIAL = [0.5, 0.6, 1.6, 1.0, 0.0, 0.25, -0.5, 2.6, 0.75, 1.5, 3.0, 7.75, 8.0, 0.5 + 2**-24,
           0.5 - 2**-25, 0.3, 0.125, 2.4, 1.1, 0.4]
CONSTANT = [0.5, 0.25, 0.6, 0.3, 0.2, 0.125, 1.0, 0.1, 0.4, 0.8]  # the same input at every step


def make_input(steps=7, shape=(3, 350), seed=0, dtype=torch.float32):
    """N(0.2, 0.7^2) with special values in the first columns (rotating over time) and constant
    sequences in the next ones."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((steps,) + shape, generator=gen) * 0.7 + 0.2
    flat = x.view(steps, -1)
    n = flat.shape[1]
    special = torch.tensor(SPECIAL)
    for t in range(steps):
        flat[t, : len(SPECIAL)] = special.roll(t)[:n]
    constant = torch.tensor(CONSTANT)[: max(0, n - len(SPECIAL))]
    flat[:, len(SPECIAL) : len(SPECIAL) + len(constant)] = constant
    return x.to(dtype)


def run(spec, x, grad, backend):
    neuron = zn.create(spec, backend=backend).eval()  # eval: noisy_if's multi-step form
    x = x.detach().clone().requires_grad_()
    out = neuron(x)
    out.backward(grad)
    return out.detach(), x.grad


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the kernel functions called during the test."""
    calls = []
    real = cpu_kernel._call

    def spy(fn, *args):
        calls.append(fn.__name__)
        return real(fn, *args)

    monkeypatch.setattr(cpu_kernel, "_call", spy)
    return calls


@pytest.mark.parametrize("spec", SPECS)
def test_every_neuron_matches_reference(spec, kernel_calls):
    x = make_input()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    out_r, gx_r = run(spec, x, g, "torch")
    out_k, gx_k = run(spec, x, g, "fused")
    assert kernel_calls == ["zoo_neuron_forward", "zoo_neuron_backward"]
    assert out_k.dtype == x.dtype and out_k.shape == x.shape
    assert torch.equal(out_k, out_r)
    assert out_r.abs().sum() > 0  # the case fires at all
    torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps, shape, seed", [
    (6, (2, 4000), 2),  # two blocks of neurons, 48,000 elements: several threads
    *((steps, shape, 11) for steps in (1, 2, 4)  # the T = 1 routes' T and the BPTT routes'
      for shape in ((2, 2048), (3, 1367))),  # whole blocks of 4096 neurons, or a partial last one
])
@pytest.mark.parametrize("spec", ["lif", "mlf", "srif", "multibit(m=3, n=2, decay=0.5)"])
def test_blocks_threads_and_short_sequences(spec, steps, shape, seed):
    x = make_input(steps=steps, shape=shape, seed=seed)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    out_r, gx_r = run(spec, x, g, "torch")
    out_k, gx_k = run(spec, x, g, "fused")
    assert torch.equal(out_k, out_r)
    torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("spec", ["lif", "mlf", "srif", "multibit(m=2, n=1)", "noisy_if"])
def test_other_dtypes(spec, dtype):
    x = make_input(dtype=dtype, seed=4)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    out_r, gx_r = run(spec, x, g, "torch")
    out_k, gx_k = run(spec, x, g, "fused")
    assert out_k.dtype == dtype and gx_k.dtype == dtype
    assert torch.equal(out_k, out_r)
    tol = {torch.float16: (2e-3, 1e-4), torch.bfloat16: (1.6e-2, 1e-3), torch.float64: (1e-5, 1e-6)}[dtype]
    torch.testing.assert_close(gx_k, gx_r, rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("spec", ["lif", "mlf", "multibit(m=3, n=2, decay=0.5)"])
def test_channels_last_runs_in_place_of_a_copy(spec):
    frames = make_input(steps=4 * 2, shape=(3, 5, 7)).contiguous(memory_format=torch.channels_last)
    x = frames.view(4, 2, 3, 5, 7)
    assert not x.is_contiguous() and time_outer_dense(x)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    g_cl = g.view(8, 3, 5, 7).contiguous(memory_format=torch.channels_last).view(x.shape)
    out_r, gx_r = run(spec, x.contiguous(), g, "torch")
    for grad in (g, g_cl):  # the gradient in another layout is re-laid out
        out_k, gx_k = run(spec, x, grad, "fused")
        assert out_k.stride() == x.stride() and gx_k.stride() == x.stride()
        assert torch.equal(out_k, out_r)
        torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


def test_strided_and_time_inner_inputs():
    transposed = make_input(shape=(2, 30)).transpose(1, 2)
    time_inner = make_input(shape=(2, 30)).permute(1, 2, 0).contiguous().permute(2, 0, 1)
    strided = make_input(shape=(2, 60))[..., ::2]
    for x in (transposed, time_inner, strided):
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
        out_r, gx_r = run("mlf", x, g, "torch")
        out_k, gx_k = run("mlf", x, g, "fused")
        assert torch.equal(out_k, out_r)
        torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


def test_single_step_single_neuron_and_empty():
    for steps, shape in ((1, (3, 5)), (6, (1,)), (5, (0, 4))):
        x = make_input(steps=steps, shape=shape)
        g = torch.ones_like(x)
        out_r, gx_r = run("srif", x, g, "torch")
        out_k, gx_k = run("srif", x, g, "fused")
        assert torch.equal(out_k, out_r)
        torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


def test_rectifier_gradient_at_every_membrane():
    """InfLoR's d o / d h (cpu_kernel.cpp mpr_ste_grad, inline exp, no branches) at one step: the
    reference's within 1e-6 on (0, 1) and as exact at 0, 1 and the floats of the straight-through
    window just beyond them (dynamics.MPR_STE_*), 0 outside it; and no farther from phi' computed in
    float64 than the reference is."""
    from zoo.neurons.dynamics import MPR_STE_HIGH, MPR_STE_LOW

    inside = torch.linspace(0, 1, 100_003)[1:-1]
    edges = torch.tensor([0.0, 1.0, MPR_STE_HIGH, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item(),
                          -2**-24, -2**-23, MPR_STE_LOW, -2**-22, 1.0 + 2**-22, -0.5, 1.5, 7.0, -7.0])
    h = torch.cat([inside, edges]).unsqueeze(0)
    _, gx_r = run("srif", h, torch.ones_like(h), "torch")
    _, gx_k = run("srif", h, torch.ones_like(h), "fused")
    torch.testing.assert_close(gx_k, gx_r, rtol=1e-6, atol=0)
    u = inside.double()
    exact = 1.5 / math.tanh(1.5) * (1 - torch.tanh(3 * (u - 0.5)) ** 2)
    n = len(inside)
    err_k = ((gx_k[0, :n].double() - exact).abs() / exact).max()
    err_r = ((gx_r[0, :n].double() - exact).abs() / exact).max()
    assert err_k <= max(err_r, 1e-6), (err_k, err_r)


# ---- the saved membrane and its memory --------------------------------------------------------------
def forward_saving(spec, x):
    """(out, data pointers of the tensors the neuron saved for backward)."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.data_ptr()) or t, lambda t: t):
        out = zn.create(spec, backend="fused")(x)
    return out, saved


def test_gradient_overwrites_the_membrane_when_the_graph_is_freed():
    x = make_input().requires_grad_()
    out, (h_ptr,) = forward_saving("lif", x)
    out.backward(torch.ones_like(out))
    assert x.grad.data_ptr() == h_ptr  # no new [T, N] buffer
    _, gx_r = run("lif", x, torch.ones_like(out), "torch")
    torch.testing.assert_close(x.grad, gx_r, rtol=1e-5, atol=1e-6)


def test_donated_gradient_is_accumulated_in_place():
    """A residual shortcut around the neuron's input: the gradient the neuron hands back is h's own
    tensor (not a view of it), the only one on its storage, so autograd adds the other path's
    gradient into it in place, as it does into ReLU's, instead of allocating the sum."""
    gen = torch.Generator().manual_seed(10)
    x = make_input(shape=(4, 48)).requires_grad_()
    weight = torch.randn(48, 48, generator=gen) / 7
    g = torch.randn(x.shape, generator=gen)
    grads = {}
    for backend in ("fused", "torch"):
        xb = x.detach().clone().requires_grad_()
        a = xb * 2.0
        out = zn.create("lif", backend=backend)(a + torch.nn.functional.linear(torch.relu(a), weight))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out.backward(g)
        grads[backend] = xb.grad
        if backend == "fused":
            names = [event.name for event in prof.events()]
            assert "aten::add_" in names and "aten::add" not in names
    torch.testing.assert_close(grads["fused"], grads["torch"], rtol=1e-5, atol=1e-6)


def test_one_level_membrane_is_laid_out_like_the_output():
    """One level: h has the output's shape and strides (a channels-last activation's h too)."""
    x = make_input(steps=3 * 2, shape=(4, 5, 6)).contiguous(memory_format=torch.channels_last).view(3, 2, 4, 5, 6)
    out, h = cpu_kernel.forward(x, zn.create("lif").dynamics(), save_h=True)
    assert h.shape == out.shape == x.shape and h.stride() == out.stride() == x.stride()
    assert h.dtype == torch.float32


@pytest.mark.parametrize("spec, dtype", [("mlf", torch.float32), ("lif", torch.bfloat16)])
def test_membrane_kept_when_it_cannot_hold_the_gradient(spec, dtype):
    x = make_input(dtype=dtype).requires_grad_()
    out, (h_ptr,) = forward_saving(spec, x)
    out.backward(torch.ones_like(out))
    assert x.grad.data_ptr() != h_ptr


@pytest.mark.parametrize("spec", ["lif", "mlf", "srif"])
def test_retain_graph_and_create_graph_keep_the_membrane(spec):
    x = make_input().requires_grad_()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    _, gx_r = run(spec, x, g, "torch")
    out, (h_ptr,) = forward_saving(spec, x)
    (first,) = torch.autograd.grad(out, x, g, retain_graph=True)
    (second,) = torch.autograd.grad(out, x, g, create_graph=True)
    (third,) = torch.autograd.grad(out, x, g, retain_graph=True)
    out.backward(g)  # last use: may reuse the membrane
    for gx in (first, second, third, x.grad):
        torch.testing.assert_close(gx, gx_r, rtol=1e-5, atol=1e-6)
    assert h_ptr not in (first.data_ptr(), second.data_ptr(), third.data_ptr())


def test_inference_saves_nothing():
    x = make_input()
    ints, floats = cpu_kernel._pack(zn.create("mlf").dynamics())
    out, h = torch.ops.zoo.cpu_neuron_forward(x, False, ints, floats)
    assert h.numel() == 0
    out2, h2 = torch.ops.zoo.cpu_neuron_forward(x, True, ints, floats)
    assert h2.shape == (x.shape[0], 3, x[0].numel()) and h2.dtype == torch.float32
    assert torch.equal(out, out2)
    with torch.no_grad():
        assert torch.equal(zn.create("mlf", backend="fused")(x), zn.create("mlf", backend="torch")(x))


def test_torch_compile_traces_the_kernel_ops(kernel_calls):
    torch._dynamo.reset()
    neuron, ref = zn.create("mlf", backend="fused"), zn.create("mlf", backend="torch")
    compiled = torch.compile(lambda x: neuron(x) * 2.0 + 1.0, backend="aot_eager", fullgraph=True)
    x = make_input()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    xc, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_c, out_r = compiled(xc), ref(xr) * 2.0 + 1.0
    assert torch.equal(out_c, out_r)
    out_c.backward(g)
    out_r.backward(g)
    torch.testing.assert_close(xc.grad, xr.grad, rtol=1e-5, atol=1e-6)
    assert kernel_calls == ["zoo_neuron_forward", "zoo_neuron_backward"]
    torch._dynamo.reset()


def test_available_carries_the_mark_of_assume_constant_result():
    """``available`` is marked by hand (the decorator imports torch._dynamo); the mark must be the
    decorator's own, so a torch release that changes it fails here, not in a user's compiled model."""
    def probe():
        return True
    marks = set(vars(torch.compiler.assume_constant_result(probe)))
    assert marks and all(getattr(cpu_kernel.available, m) == getattr(probe, m) for m in marks)


def test_importing_the_zoo_does_not_import_dynamo():
    code = "import sys, zoo, zoo.neurons, zoo.models; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- fallback -------------------------------------------------------------------------------------
def test_disabled_by_environment(monkeypatch, kernel_calls):
    monkeypatch.setenv("ZOO_CPU_KERNEL", "0")
    assert not cpu_kernel.available()
    x = make_input()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(10))
    out_r, gx_r = run("mlf", x, g, "torch")
    out_k, gx_k = run("mlf", x, g, "fused")
    assert kernel_calls == []
    assert torch.equal(out_k, out_r)
    torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


def test_failed_build_warns_once_and_falls_back(monkeypatch, kernel_calls):
    monkeypatch.setattr(cpu_kernel, "_library_state", None)  # not tried yet
    monkeypatch.setenv("CXX", "no-such-compiler-zoo")
    x = make_input()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(11))
    out_r, gx_r = run("lif", x, g, "torch")
    with pytest.warns(UserWarning, match="CPU kernel is unavailable.*no-such-compiler-zoo"):
        out_k, gx_k = run("lif", x, g, "fused")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        run("lif", x, g, "fused")
    assert kernel_calls == []
    assert torch.equal(out_k, out_r)
    torch.testing.assert_close(gx_k, gx_r, rtol=1e-5, atol=1e-6)


# ---- where the shared library is loaded from -------------------------------------------------------
@pytest.fixture
def fake_compile(monkeypatch, tmp_path):
    """Build a stand-in "library" instead of running the compiler; records each build's path."""
    built = []

    def compile_(compiler, flags, library_path):
        library_path.write_bytes(b"stand-in library")
        library_path.chmod(0o700)
        digest = library_path.with_name(library_path.name + ".sha256")
        digest.write_text(cpu_kernel.hashlib.sha256(b"stand-in library").hexdigest() + "\n")
        digest.chmod(0o600)
        built.append(library_path)

    monkeypatch.setattr(cpu_kernel, "_compile", compile_)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    return built


def test_library_built_once_into_a_private_folder(fake_compile, tmp_path):
    path = cpu_kernel._build()
    assert path.parent == tmp_path / "extensions" / "zoo_neuron_cpu"
    assert path.parent.stat().st_mode & 0o077 == 0
    assert cpu_kernel._build() == path and fake_compile == [path]  # the verified build is reused


def test_library_changed_after_its_build_is_rebuilt(fake_compile):
    path = cpu_kernel._build()
    path.write_bytes(b"planted code")
    assert cpu_kernel._build() == path and fake_compile == [path, path]


def test_library_in_a_folder_others_can_write_is_never_loaded(fake_compile, tmp_path):
    shared = tmp_path / "extensions" / "zoo_neuron_cpu"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    with pytest.warns(UserWarning, match="writable by group or others"):
        path = cpu_kernel._build()
    assert shared not in path.parents and path.parent.stat().st_mode & 0o077 == 0
    assert fake_compile == [path]


@pytest.mark.skipif(not hasattr(cpu_kernel.os, "getuid") or cpu_kernel.os.getuid() != 0,
                    reason="planting a file owned by another user needs root")
def test_library_owned_by_another_user_is_rebuilt(fake_compile):
    path = cpu_kernel._build()
    cpu_kernel.os.chown(path, 4242, 4242)
    assert cpu_kernel._untrusted(path).endswith("not by this user (uid 0)")
    assert cpu_kernel._build() == path and len(fake_compile) == 2
