"""Neuron semantics against hand-computed sequences, backends against the reference, specs, errors.

The hand-computed sequences use values exact in binary floating point wherever a comparison is
close, so the expected spikes do not depend on rounding.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import zoo.neurons as zn
from zoo.neurons import SpecError

ALL_SPECS = [
    "lif",
    "lif(reset=soft)",
    "lif(detach_reset=true)",
    "lif(surrogate=triangle(width=0.5), tau=0.9)",
    "lif(surrogate=sigmoid(alpha=3.0))",
    "lif(surrogate=atan, reset=soft, detach_reset=true)",
    "lif(surrogate=ste)",
    "if",
    "if(reset=hard)",
    "mlf",
    "mlf(levels=2, width=0.5)",
    "srif",
    "srif(mpr=false)",
    "multibit",
    "multibit(m=3, n=2, v_th=0.5, decay=0.5)",
    "noisy_if",
]


def seq(values, *shape):
    """A [T, 1, ...] tensor holding the sequence ``values`` at every neuron."""
    x = torch.tensor(values, dtype=torch.float32)
    return x.view(-1, *([1] * (len(shape) + 1))).expand(-1, 1, *shape).clone()


def run(spec, x, backend="torch", train=False):
    neuron = zn.create(spec, backend=backend)
    neuron.train(train)
    return neuron(x)


# ---------------------------------------------------------------------------------------------
# Hand-computed sequences (every backend)
# ---------------------------------------------------------------------------------------------
BACKENDS = ["torch", "fused"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_hard_reset_sequence(backend):
    # tau=0.5, V_th=1: u = 0.625, 0.5*0.625+0.625=0.9375, 0.5*0.9375+0.625=1.09375 (fire),
    # reset: 0 + 2 = 2 (fire), reset: 0 + 0.25 = 0.25.
    x = seq([0.625, 0.625, 0.625, 2.0, 0.25], 3)
    out = run("lif(tau=0.5, v_th=1.0)", x, backend)
    assert out[:, 0, 0].tolist() == [0, 0, 1, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_soft_reset_sequence(backend):
    # tau=0.5, V_th=1, soft: u = 1.5 (fire) -> 0.5*(1.5-1)+0.75 = 1.0 (not > 1) -> 0.5*1+0.75=1.25
    # (fire) -> 0.5*0.25+0 = 0.125.
    x = seq([1.5, 0.75, 0.75, 0.0], 2)
    out = run("lif(tau=0.5, v_th=1.0, reset=soft)", x, backend)
    assert out[:, 0, 0].tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_integrates_without_leak(backend):
    # V_th=1, soft reset: u = 0.375, 0.75, 1.125 (fire) -> 0.125, 0.5, 0.875, 1.25 (fire) -> 0.25
    x = seq([0.375] * 7, 2)
    out = run("if(v_th=1.0)", x, backend)
    assert out[:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_starts_from_v_init(backend):
    # V_th=1, soft reset, u[0] = 0.5 (QCFS conversion): u = 0.875, 1.25 (fire; 0.25 left), 0.625,
    # 1.0 (not > 1), 1.375 (fire). From u[0] = 0 the same input fires at step 3 instead (see above).
    x = seq([0.375] * 5, 2)
    out = run("if(v_th=1.0, v_init=0.5)", x, backend)
    assert out[:, 0, 0].tolist() == [0, 1, 0, 0, 1]
    for bad in (math.nan, "half", True):
        with pytest.raises(SpecError, match="v_init must be a finite number"):
            zn.create({"name": "if", "v_init": bad})


@pytest.mark.parametrize("backend", BACKENDS)
def test_mlf_three_levels_with_reset(backend):
    # K=3, V = 0.6 / 1.6 / 2.6, tau = 0.25, every level fed the same x:
    # t1 u=(3,3,3) -> all fire: 3
    # t2 all reset: u=(2,2,2) -> levels 1,2 fire: 2
    # t3 u1=0+0.75, u2=0+0.75, u3=0.25*2+0.75=1.25 -> level 1 fires: 1
    # t4 u1=0, u2=0.25*0.75=0.1875, u3=0.3125 -> 0
    x = seq([3.0, 2.0, 0.75, 0.0], 4)
    out = run("mlf", x, backend)
    assert out[:, 0, 0].tolist() == [3, 2, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_srif_rounds_with_soft_reset(backend):
    # u = 0.25 -> 0; 0.75 -> fire, u=-0.25; 0.0 -> 0; 1.75 -> fire, u=0.75; 1.0 -> fire, u=0.0;
    # 0.5 -> phi(0.5) = 0.5 is not > 0.5: 0
    x = seq([0.25, 0.5, 0.25, 1.75, 0.25, 0.5], 2)
    out = run("srif", x, backend)
    assert out[:, 0, 0].tolist() == [0, 1, 0, 1, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_multibit_starts_from_v_init(backend):
    # m=2, n=0, V_th=1, u[0] = 0.5 (QCFS conversion with shift 1/2): x = 1.2 each step
    # u = 1.7 -> s=1, 0.7; 1.9 -> 1, 0.9; 2.1 -> 2, 0.1; 1.3 -> 1, 0.3. From u[0] = 0: 1.2, 1.4, 1.6, 1.8 -> 1 each.
    x = seq([1.2] * 4, 2)
    assert run("multibit(m=2, n=0, v_init=0.5)", x, backend)[:, 0, 0].tolist() == [1, 1, 2, 1]
    assert run("multibit(m=2, n=0)", x, backend)[:, 0, 0].tolist() == [1, 1, 1, 1]
    with pytest.raises(SpecError, match="v_init must be a finite number"):
        zn.create({"name": "multibit", "v_init": math.inf})


@pytest.mark.parametrize("backend", BACKENDS)
def test_multibit_soft_reset_sequence(backend):
    # m=2, n=1, V_th=1: q(v) = clip(floor(2v)/2, 0, 3.5)
    # u=0.75 -> s=0.5, u=0.25; u=1.0 -> s=1.0, u=0; u=5.5 -> s=3.5 (clipped), u=2.0;
    # u=2.0 -> s=2.0, u=0; u=-1 -> s=0, u=-1
    x = seq([0.75, 0.75, 5.5, 0.0, -1.0], 2)
    out = run("multibit(m=2, n=1)", x, backend)
    assert out[:, 0, 0].tolist() == [0.5, 1.0, 3.5, 2.0, 0.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_noisy_if_eval_is_if_with_soft_reset_and_initial_membrane(backend):
    # mu=0.5, V_th=2: u[0]=1.0; x=0.5: u=1.5, 2.0 (not > 2), 2.5 (fire 2.0) -> 0.5, 1.0, 1.5
    x = seq([0.5] * 6, 2)
    out = run("noisy_if(v_th=2.0)", x, backend, train=False)
    assert out[:, 0, 0].tolist() == [0, 0, 2.0, 0, 0, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_noisy_if_training_is_stateless_and_noisy(backend):
    x = torch.full((1, 20000), 0.5)
    deterministic = run("noisy_if(sigma=0.0)", seq([0.375, 0.625], 1), backend, train=True)
    assert deterministic[:, 0, 0].tolist() == [0.0, 1.0]  # x + 0.5 > 1 only for the second
    torch.manual_seed(0)
    for noise in ("gaussian", "uniform"):
        out = run(f"noisy_if(noise={noise})", x, backend, train=True)
        # x + mu V_th = V_th exactly: the noise decides, half the neurons fire
        assert abs(out.mean().item() - 0.5) < 0.02
    a = run("noisy_if", x, backend, train=True)
    b = run("noisy_if", x, backend, train=True)
    assert not torch.equal(a, b)  # fresh noise every pass


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_noisy_if_cpu_noise_has_the_distribution_and_is_reproducible(noise):
    """The C++ generator: z has mean 0, variance 1 and the normal (or uniform) quantiles; the draw
    is a function of torch's generator state only, not of the thread count."""
    from zoo.neurons.noisy_if import noise_library

    x = torch.zeros(1, 1_000_000)
    if noise_library(x) is None:
        pytest.skip("the fused backend's CPU library could not be built here (no C++ compiler)")
    neuron = zn.create(f"noisy_if(noise={noise}, mu=0.0, sigma=1.0)").train()
    threads = torch.get_num_threads()
    draws = []
    for n in (1, 2):
        torch.set_num_threads(n)
        torch.manual_seed(3)
        draws.append(neuron.noisy(x))
    torch.set_num_threads(threads)
    assert torch.equal(draws[0], draws[1])
    z = draws[0].flatten().double()
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    probs = torch.tensor([0.001, 0.023, 0.159, 0.5, 0.841, 0.977, 0.999], dtype=torch.float64)
    if noise == "gaussian":
        expected = math.sqrt(2) * torch.special.erfinv(2 * probs - 1)
        assert z.abs().max() < 4.33
    else:
        expected = (2 * probs - 1) * math.sqrt(3)
        assert z.abs().max() < math.sqrt(3)
    torch.testing.assert_close(torch.quantile(z, probs), expected, atol=0.03, rtol=0)  # 3 sd at the tails
    torch.manual_seed(3)
    assert not torch.equal(neuron.noisy(x), neuron.noisy(x))  # a fresh seed every draw


@pytest.mark.parametrize("spec", ["noisy_if", "noisy_if(noise=uniform, v_th=0.5, surrogate=atan)"])
def test_noisy_if_training_fused_equals_reference(spec):
    """In training the fused backend draws the same noise (the same generator calls) and runs the
    noisy input through the IF step of its dynamics, every element a stateless neuron at any T:
    the same spikes as the reference, gradients equal up to rounding, in the input's layout."""
    x = (torch.randn(3 * 4, 6, 5, 5).contiguous(memory_format=torch.channels_last) + 0.5).view(3, 4, 6, 5, 5)
    grad = torch.randn(3, 4, 6, 5, 5)
    results = []
    for backend in ("torch", "fused"):
        torch.manual_seed(7)
        xb = x.detach().requires_grad_()
        out = run(spec, xb, backend, train=True)
        out.backward(grad)
        results.append((out, xb.grad))
    (out_ref, g_ref), (out, g) = results
    assert torch.equal(out, out_ref) and out.stride() == x.stride()
    assert 0.2 < out.ne(0).float().mean() < 0.8 and g_ref is not None and g_ref.ne(0).any()
    torch.testing.assert_close(g, g_ref)


# ---------------------------------------------------------------------------------------------
# Hand-computed gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach, expected_dx1", [(False, 1.1), (True, 1.5)])
def test_lif_gradient_through_reset(backend, detach, expected_dx1):
    # tau=0.5, V_th=1, rectangle width 1; x = (0.8, 0.9); L = o1 + o2.
    # u1 = 0.8 (o1=0, g1=1), u2 = 0.5*0.8 + 0.9 = 1.3 (o2=1, g2=1).
    # dL/du2 = 1; du2/du1 = tau*(1-o1) - tau*u1*g1 = 0.5 - 0.4 = 0.1 (0.5 with a detached reset)
    # dL/dx1 = g1 + du2/du1 * dL/du2 = 1.1 (1.5), dL/dx2 = 1
    x = torch.tensor([[0.8], [0.9]], requires_grad=True)
    out = run(f"lif(tau=0.5, v_th=1.0, detach_reset={str(detach).lower()})", x, backend)
    out.sum().backward()
    torch.testing.assert_close(x.grad[:, 0], torch.tensor([expected_dx1, 1.0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_srif_gradient_through_mpr_and_soft_reset(backend):
    # x = (0.25, 0.5): u1 = 0.25 (o1 = 0), u2 = 0.75 (o2 = 1). L = o1 + o2.
    # d o/du = phi'(u) on [0, 1]; u2 = u1 - o1 + x2 so du2/du1 = 1 - phi'(u1).
    # dL/dx2 = phi'(0.75); dL/dx1 = phi'(0.25) + (1 - phi'(0.25)) * phi'(0.75)
    x = torch.tensor([[0.25], [0.5]], requires_grad=True)
    run("srif", x, backend).sum().backward()
    d = lambda u: 1.5 * (1 - math.tanh(3 * (u - 0.5)) ** 2) / math.tanh(1.5)  # noqa: E731
    expected = torch.tensor([d(0.25) + (1 - d(0.25)) * d(0.75), d(0.75)])
    torch.testing.assert_close(x.grad[:, 0], expected)


def test_mpr_three_branches_and_quirks():
    u = torch.tensor([8.0, -7.0, 0.25, 0.5, 0.0, 1.0], dtype=torch.float64)
    phi = zn.mpr(u)
    mid = 0.5 * math.tanh(3 * (0.25 - 0.5)) / math.tanh(1.5) + 0.5
    torch.testing.assert_close(phi, torch.tensor([2.0, -1.0, mid, 0.5, 0.0, 1.0], dtype=torch.float64))
    # derivative branch by branch: (1/3) u^(-2/3), (1/3)(1-u)^(-2/3), tanh branch; identity at 0, 1
    from zoo.neurons.dynamics import mpr_grad

    grad = mpr_grad(u)
    expected = [1 / 12, 1 / 12, 1.5 * (1 - math.tanh(-0.75) ** 2) / math.tanh(1.5), 1.5 / math.tanh(1.5), 1.0, 1.0]
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))
    # phi is smooth inside each branch: autograd agrees with finite differences there
    inner = torch.tensor([3.0, -2.0, 0.3, 0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(zn.mpr, (inner,))
    torch.testing.assert_close(mpr_grad(inner.detach()), torch.autograd.grad(zn.mpr(inner).sum(), inner)[0])


def test_mpr_straight_through_window_is_where_float32_phi_is_in_0_1():
    from zoo.neurons.dynamics import MPR_STE_HIGH, MPR_STE_LOW, mpr_ste_grad

    edges = []
    for centre in (0.0, 1.0):
        u = torch.tensor([centre], dtype=torch.float32)
        down, up = u.clone(), u.clone()
        for _ in range(64):
            down, up = torch.nextafter(down, torch.tensor(-2.0)), torch.nextafter(up, torch.tensor(2.0))
            edges += [down, up]
    u = torch.cat(edges + [torch.tensor([0.0, 1.0])])
    phi = zn.mpr(u)
    clamp_passes = (phi >= 0) & (phi <= 1)
    assert torch.equal(clamp_passes, (u > MPR_STE_LOW) & (u <= MPR_STE_HIGH))
    assert torch.equal(mpr_ste_grad(u) > 0, clamp_passes)
    # a constant input of 0.6 drives u to 1 + 2^-23 at t = 4: the gradient must pass there
    x = torch.full((6, 1), 0.6)
    compare_backends("srif", x, "fused")


@pytest.mark.parametrize("name", list(zn.SURROGATES))
def test_surrogates_are_derivatives_of_unit_steps(name):
    sg = zn.create_surrogate(name)
    x = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    g = sg.grad(x)
    assert (g >= 0).all()
    area = torch.trapezoid(g, x).item()
    tail = {"atan": 0.04, "sigmoid": 1e-6}.get(name, 1e-3)  # atan's heavy tails leave |x| > 20
    assert abs(area - 1.0) < tail
    assert torch.allclose(g, sg.grad(-x))  # symmetric around the threshold


def test_surrogate_matches_finite_differences_of_its_primitive():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)
    eps = 1e-6
    primitives = {
        "sigmoid(alpha=4.0)": lambda v: torch.sigmoid(4 * v),
        "atan(alpha=2.0)": lambda v: torch.atan(math.pi / 2 * 2 * v) / math.pi + 0.5,
    }
    for spec, prim in primitives.items():
        fd = (prim(x + eps) - prim(x - eps)) / (2 * eps)
        torch.testing.assert_close(zn.create_surrogate(spec).grad(x), fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Fused backend against the reference, for every neuron
# ---------------------------------------------------------------------------------------------
def compare_backends(spec, x, backend, dtype=torch.float32, train=False, rtol=1e-5, atol=1e-6):
    ref, other = zn.create(spec, backend="torch"), zn.create(spec, backend=backend)
    ref.train(train), other.train(train)
    xr = x.to(dtype).detach().requires_grad_()
    xo = x.to(dtype).detach().requires_grad_()
    out_r, out_o = ref(xr), other(xo)
    assert out_o.dtype == dtype and out_o.shape == x.shape
    assert torch.equal(out_r, out_o), f"{spec}: forward differs from the reference"
    grad = torch.randn_like(out_r)
    out_r.backward(grad)
    out_o.backward(grad)
    torch.testing.assert_close(xo.grad, xr.grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_fused_equals_reference(spec):
    torch.manual_seed(1)
    x = torch.randn(7, 4, 3, 5, 5) * 1.5
    x[1, 0, 0] = 0.5  # exact thresholds
    x[2, 0, 1] = 0.6
    compare_backends(spec, x, "fused")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("spec", ["lif", "mlf", "srif", "multibit(m=2, n=1)"])
def test_fused_half_precision(spec, dtype):
    torch.manual_seed(2)
    compare_backends(spec, torch.randn(5, 3, 40) * 1.5, "fused", dtype=dtype, rtol=1e-2, atol=1e-2)


def test_fused_channels_last_and_non_contiguous():
    torch.manual_seed(3)
    frames = torch.randn(4 * 2, 3, 6, 6).to(memory_format=torch.channels_last)
    compare_backends("mlf", frames.view(4, 2, 3, 6, 6), "fused")
    compare_backends("lif", torch.randn(3, 5, 4).transpose(1, 2), "fused")


def test_fused_keeps_only_the_membrane_for_backward():
    saved = []
    x = torch.randn(6, 2, 10, requires_grad=True)
    for spec in ("lif", "mlf", "multibit"):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
            zn.create(spec, backend="fused")(x)
        # one level: h laid out like the output (backends/layout.py alloc_forward); K levels: [T, K, N]
        expected = torch.Size([6, 3, 20]) if spec == "mlf" else x.shape
        assert saved == [expected], f"{spec} saved {saved}"


def test_auto_backend_is_fused_on_cpu():
    from zoo.neurons.backends import resolve

    assert resolve("auto", torch.zeros(1)) == "fused"


# ---------------------------------------------------------------------------------------------
# State isolation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", ["lif", "if", "mlf", "srif", "multibit", "noisy_if"])
def test_state_never_leaks_between_calls(spec, backend):
    torch.manual_seed(4)
    neuron = zn.create(spec, backend=backend).eval()
    a, b = torch.randn(5, 2, 8) * 2, torch.randn(5, 2, 8) * 2
    fresh_b = zn.create(spec, backend=backend).eval()(b)
    neuron(a)
    assert torch.equal(neuron(b), fresh_b)
    # a batch of two sequences is the same as two batches of one
    both = neuron(torch.cat([a, b], dim=1))
    assert torch.equal(both[:, 2:], fresh_b)
    assert not any(t.numel() for t in neuron.buffers())  # nothing stored on the module


# ---------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_spec_round_trips_through_json_and_strings(spec):
    neuron = zn.create(spec)
    as_dict = neuron.spec()
    assert zn.create(json.loads(json.dumps(as_dict))).spec() == as_dict
    as_str = zn.spec.format(as_dict)
    assert zn.spec.parse(as_str) == json.loads(json.dumps(as_dict))
    assert zn.create(as_str).spec() == as_dict


def test_create_accepts_overrides_and_dicts():
    lif = zn.create("lif", tau=0.5, surrogate="atan(alpha=3.0)")
    assert lif.spec()["tau"] == 0.5
    assert lif.spec()["surrogate"] == {"name": "atan", "alpha": 3.0}
    assert zn.create({"name": "mlf", "levels": 2}).spec()["levels"] == 2
    assert zn.create(lif).spec() == lif.spec()
    assert sorted(zn.list_neurons()) == sorted(["lif", "if", "mlf", "srif", "multibit", "noisy_if"])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lif(tau=-0.5)", "tau must be a positive number"),
        ("lif(tau=2.0)", "decay factor in (0, 1]"),
        ("mlf(levels=0)", "levels (K) must be an integer >= 1"),
        ("mlf(levels=1.5)", "levels (K) must be an integer >= 1"),
        ("lif(surrogate=gauss)", "unknown surrogate 'gauss'"),
        ("lif(surrogate=atan(alpha=-1))", "'alpha' must be a positive number"),
        ("lif(reset=zero)", "reset must be one of"),
        ("lif(thresh=1.0)", "unknown parameter(s) thresh"),
        ("izhikevich", "unknown neuron 'izhikevich'"),
        ("lif(tau=", "cannot parse spec"),
        ("lif(0.5)", "must be given as key=value"),
        ("lif(tau=os.system)", "not a literal value"),
        ("lif(tau=__import__('os'))", "must be given as key=value"),
        ("multibit(m=0)", "m must be an integer >= 1"),
        ("noisy_if(sigma=-1.0)", "sigma must be >= 0"),
        ("noisy_if(noise=poisson)", "noise must be one of"),
    ],
)
def test_bad_parameters_fail_clearly(spec, message):
    with pytest.raises(SpecError) as err:
        zn.create(spec)
    assert message in str(err.value)


def test_bad_backend_and_input_fail_clearly():
    with pytest.raises(SpecError, match="unknown backend 'cuda'"):
        zn.create("lif", backend="cuda")
    with pytest.raises(ValueError, match=r"time-first tensor \[T, B, ...\].*got shape \(5,\)"):
        zn.create("lif")(torch.zeros(5))
    with pytest.raises(TypeError, match="floating-point"):
        zn.create("lif")(torch.zeros(3, 2, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# Firing statistics
# ---------------------------------------------------------------------------------------------
def test_record_firing_counts_events_and_values():
    net = torch.nn.Sequential(zn.create("mlf"), torch.nn.Identity(), zn.create("lif"))
    x = seq([3.0, 2.0, 0.75, 0.0], 4)  # MLF gives 3, 2, 1, 0 at each of 4 neurons
    assert all(m.stats is None for m in net.modules() if isinstance(m, zn.Neuron))
    with zn.record_firing(net) as stats:
        net(x)
        net(x)
    assert set(stats) == {"0", "2"}
    mlf = stats["0"]
    assert (mlf.steps, mlf.neurons, mlf.samples) == (4, 4, 2)
    assert mlf.events == 2 * 4 * 3 and mlf.value_sum == 2 * 4 * 6
    assert mlf.firing_rate == pytest.approx(24 / 32) and mlf.mean_event_value == pytest.approx(2.0)
    assert all(m.stats is None for m in net.modules() if isinstance(m, zn.Neuron))


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["lif", "mlf", "srif", "multibit(m=3, n=2, decay=0.5)"])
def test_fused_compiled_equals_reference(spec, monkeypatch):
    """The fused loops compiled by Inductor (the fallback where the CPU kernel is off) fire exactly
    as the reference."""
    from zoo.neurons.backends import fused

    monkeypatch.setenv("ZOO_CPU_KERNEL", "0")

    monkeypatch.setattr(fused, "COMPILE_MIN_ELEMENTS", 0)
    monkeypatch.delenv("ZOO_COMPILE", raising=False)
    torch.manual_seed(5)
    x = torch.randn(6, 4, 300) * 1.5
    x[2, 0, :5] = torch.tensor([0.5, 0.6, 1.6, 2.6, 1.0])
    compare_backends(spec, x, "fused")
    assert not fused._compile_broken, "torch.compile failed on this machine; the eager path was used"
