"""The shared layers against hand computations: tdBN (both eps conventions, affine or not), time
folding, ECA, input encoding, the readout and the QCFS activation."""

from __future__ import annotations

import copy

import math

import pytest
import torch
from torch import nn

from zoo.layers import (
    ECA, QCFS, ConvNormAct, Readout, TdBatchNorm2d, create_act, eca_kernel_size, encode_input, fold,
)
from zoo.layers.norm import OutsideEpsBatchNorm
from zoo.neurons import Neuron, SpecError


def _stats(x):
    """Per-channel mean and biased variance over (N, H, W), by explicit sums."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = x.sum(dim=(0, 2, 3)) / n
    var = ((x - mean[:, None, None]) ** 2).sum(dim=(0, 2, 3)) / n
    return mean, var, n


def _tdbn_by_hand(x, mean, var, scale, eps, mode, weight=None, bias=None):
    c = (slice(None), None, None)
    denom = torch.sqrt(var + eps) if mode == "inside" else torch.sqrt(var) + eps
    y = scale * (x - mean[c]) / denom[c]
    if weight is not None:
        y = y * weight[c] + bias[c]
    return y


@pytest.mark.parametrize("mode", ["inside", "outside"])
@pytest.mark.parametrize("affine", [True, False])
def test_tdbn_matches_hand_computation(mode, affine):
    torch.manual_seed(0)
    # eps = 0.5 makes the two conventions differ visibly; alpha * V_th = 0.7 * 0.6
    bn = TdBatchNorm2d(3, alpha=0.7, v_th=0.6, eps_mode=mode, eps=0.5, affine=affine)
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    w, b = (bn.weight.detach(), bn.bias.detach()) if affine else (None, None)
    x = torch.randn(4, 3, 2, 5) * 3 + 1  # [T*B, C, H, W]
    mean, var, n = _stats(x)

    y = bn.train()(x)
    torch.testing.assert_close(y, _tdbn_by_hand(x, mean, var, 0.42, 0.5, mode, w, b), rtol=1e-5, atol=1e-6)
    # running statistics: momentum 0.1, running_var updated with the unbiased variance n/(n-1)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5, atol=1e-7)
    assert int(bn.num_batches_tracked) == 1

    x2 = torch.randn(2, 3, 2, 5)
    y2 = bn.eval()(x2)
    torch.testing.assert_close(y2, _tdbn_by_hand(x2, bn.running_mean, bn.running_var, 0.42, 0.5, mode, w, b),
                               rtol=1e-5, atol=1e-6)


def test_tdbn_conventions_differ_and_match_authors_constants():
    x = torch.randn(8, 2, 3, 3)
    inside = TdBatchNorm2d(2, v_th=0.5, eps_mode="inside", eps=0.5).train()(x)
    outside = TdBatchNorm2d(2, v_th=0.5, eps_mode="outside", eps=0.5).train()(x)
    assert not torch.allclose(inside, outside)
    bn = TdBatchNorm2d(4)
    assert (bn.eps, bn.momentum, bn.scale) == (1e-5, 0.1, 1.0)


@pytest.mark.parametrize("mode", ["inside", "outside"])
def test_tdbn_gradient_matches_hand_computation(mode):
    torch.manual_seed(1)
    bn = TdBatchNorm2d(2, alpha=1 / math.sqrt(2), v_th=0.5, eps_mode=mode, eps=0.1).train()
    x = torch.randn(6, 2, 3, 3, requires_grad=True)
    g = torch.randn(6, 2, 3, 3)
    (bn(x) * g).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    mean, var, _ = _stats(x_ref)
    weight, bias = (p.detach().clone().requires_grad_() for p in (bn.weight, bn.bias))
    (_tdbn_by_hand(x_ref, mean, var, 0.5 / math.sqrt(2), 0.1, mode, weight, bias) * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn.weight.grad, weight.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn.bias.grad, bias.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("affine", [True, False])
def test_outside_eps_gradient_is_exact_in_float64(affine):
    """MLF's tdBN on the fused BatchNorm kernels: the hand-derived backward against finite
    differences, a channels-last input among them."""
    torch.manual_seed(2)
    x = torch.randn(4, 3, 3, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    gain = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True) if affine else None
    inputs = (x.requires_grad_(), gain, bias, None, None, 0.0, 0.3)
    assert torch.autograd.gradcheck(OutsideEpsBatchNorm.apply, inputs)


def test_outside_eps_constant_channel_has_a_finite_gradient():
    """A channel whose input is constant (sqrt(var) = 0): autograd through sqrt gives NaN; the
    kernel path gives the limit, gain / eps * (g - mean(g)), and leaves the other channels exact."""
    torch.manual_seed(3)
    bn = TdBatchNorm2d(2, v_th=0.6, eps_mode="outside", eps=0.1).train()
    x = torch.randn(4, 2, 3, 3)
    x[:, 0] = 2.0
    x.requires_grad_()
    g = torch.randn(4, 2, 3, 3)
    y = bn(x)
    (y * g).sum().backward()
    assert torch.equal(y[:, 0], torch.zeros_like(y[:, 0]))
    torch.testing.assert_close(x.grad[:, 0], 0.6 / 0.1 * (g[:, 0] - g[:, 0].mean()))
    x_ref = x.detach()[:, 1:].clone().requires_grad_()
    mean, var, _ = _stats(x_ref)
    (_tdbn_by_hand(x_ref, mean, var, 0.6, 0.1, "outside") * g[:, 1:]).sum().backward()
    torch.testing.assert_close(x.grad[:, 1:], x_ref.grad, rtol=1e-4, atol=1e-6)


def test_tdbn_is_a_batchnorm_for_checkpoints():
    bn = TdBatchNorm2d(5, alpha=0.5, v_th=0.6, eps_mode="outside")
    assert isinstance(bn, nn.BatchNorm2d)
    assert bn.state_dict().keys() == nn.BatchNorm2d(5).state_dict().keys()
    assert TdBatchNorm2d(2, affine=False).state_dict().keys() == nn.BatchNorm2d(2, affine=False).state_dict().keys()
    with pytest.raises(ValueError, match="eps_mode"):
        TdBatchNorm2d(2, eps_mode="between")


def test_fold_equals_per_step_application():
    torch.manual_seed(0)
    conv, pool = nn.Conv2d(3, 4, 3, padding=1), nn.AvgPool2d(2)
    x = torch.randn(3, 2, 3, 8, 8)  # [T, B, C, H, W]
    y = fold(x, conv, pool)
    assert y.shape == (3, 2, 4, 4, 4)
    torch.testing.assert_close(y, torch.stack([pool(conv(x[t])) for t in range(3)]))


def test_conv_norm_act_folds_stateless_layers_and_keeps_time_for_the_neuron():
    torch.manual_seed(0)
    seen = []
    unit = ConvNormAct(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4).eval(), create_act("lif"), nn.AvgPool2d(2))
    unit.act.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    x = torch.randn(3, 2, 2, 6, 6)
    y = unit(x)
    assert seen == [torch.Size([3, 2, 4, 6, 6])] and y.shape == (3, 2, 4, 3, 3)
    current = torch.stack([unit.bn(unit.conv(x[t])) for t in range(3)])
    torch.testing.assert_close(y, torch.stack([unit.pool(s) for s in unit.act(current)]))


def test_eca_kernel_size_rule():
    # ECA-Net eq. 12 with gamma = 2, b = 1
    assert [eca_kernel_size(c) for c in (16, 64, 128, 256, 512)] == [3, 3, 5, 5, 5]


def test_eca_matches_hand_computation():
    eca = ECA(4, kernel_size=3)
    with torch.no_grad():
        eca.conv.weight.copy_(torch.tensor([[[0.5, -1.0, 2.0]]]))
    x = torch.randn(2, 4, 3, 3)
    p = x.mean(dim=(2, 3))  # [N, C]
    padded = torch.nn.functional.pad(p, (1, 1))
    z = 0.5 * padded[:, :-2] - 1.0 * padded[:, 1:-1] + 2.0 * padded[:, 2:]  # cross-correlation over channels
    torch.testing.assert_close(eca(x), x * torch.sigmoid(z)[:, :, None, None])
    with pytest.raises(ValueError, match="odd"):
        ECA(4, kernel_size=2)


def test_direct_encoding_repeats_the_image():
    x = torch.randn(2, 3, 5, 5)
    seq = encode_input(x, 4, 3)
    assert seq.shape == (4, 2, 3, 5, 5)
    assert all(torch.equal(seq[t], x) for t in range(4))


def test_event_frames_pass_through_and_are_checked():
    frames = torch.rand(6, 2, 2, 34, 34)
    assert encode_input(frames, 6, 2, (34, 34)) is frames  # one frame per step
    assert encode_input(frames, 1, 2, (34, 34), stateless=True) is frames  # an ANN twin: each frame one step
    one = frames[:1]
    seq = encode_input(one, 4, 2, (34, 34))  # one integrated frame, repeated at every step
    assert seq.shape == (4, 2, 2, 34, 34) and all(torch.equal(seq[t], one[0]) for t in range(4))
    with pytest.raises(ValueError, match=r"runs T=4 steps and takes event frames time first, \[T, B, C, H, W\]: 4 frames .* or 1 .* got 6 in "
                                         r"dimension 0\. A batch-first tensor \[B, T, C, H, W\] needs x\.transpose\(0, 1\)"):
        encode_input(frames, 4, 2, (34, 34))
    with pytest.raises(ValueError, match=r"runs T=1 steps .* got 6 in dimension 0.*only a network without spiking neurons"):
        encode_input(frames, 1, 2, (34, 34))  # a spiking network would carry its state across the frames
    with pytest.raises(ValueError, match=r"\[T, B, 2, 34, 34\]"):
        encode_input(torch.rand(6, 2, 2, 32, 32), 4, 2, (34, 34))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"):
        encode_input(torch.rand(6, 2, 3, 34, 34), 4, 2)
    with pytest.raises(ValueError, match="3-D"):
        encode_input(torch.rand(2, 34, 34), 4, 2)


def test_readout_is_a_linear_at_each_step():
    torch.manual_seed(0)
    head = Readout(6, 3)
    x = torch.randn(4, 2, 6)
    torch.testing.assert_close(head(x), torch.stack([head.fc(x[t]) for t in range(4)]))
    assert head.hidden is None and head.act is None

    hidden = Readout(6, 3, hidden=5, act_layer=lambda: create_act("lif"))
    expected = hidden.fc(hidden.act(hidden.hidden(x)))
    torch.testing.assert_close(hidden(x), expected)
    with pytest.raises(ValueError, match="act_layer"):
        Readout(6, 3, hidden=5)


def test_qcfs_matches_hand_computation():
    act = QCFS(levels=4, shift=0.5, threshold_init=2.0)
    x = torch.tensor([-1.0, 0.2, 0.3, 1.0, 1.9, 2.5], requires_grad=True)
    y = act(x)
    # y = 2 * clamp(floor(4 x / 2 + 0.5) / 4, 0, 1)
    torch.testing.assert_close(y, torch.tensor([0.0, 0.0, 0.5, 1.0, 2.0, 2.0]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 0.0]))
    # dy/dlambda: (y - x) / lambda where 0 <= q <= 1 (bounds included), 1 above, 0 below
    inside = (torch.tensor([0.0, 0.5, 1.0, 2.0]) - torch.tensor([0.2, 0.3, 1.0, 1.9])) / 2
    torch.testing.assert_close(act.threshold.grad, inside.sum() + 1.0)
    # the gradient window is 0 <= q <= 1, bounds included: x in [-lambda/(2L), lambda (1 + 1/(2L)))
    edges = torch.tensor([-0.3, -0.2, 2.1, 2.3], requires_grad=True)
    act(edges).sum().backward()
    torch.testing.assert_close(edges.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_qcfs_equals_clip_floor_shift_formula():
    torch.manual_seed(0)
    act = QCFS(levels=3, shift=0.5, threshold_init=1.7)
    x = torch.randn(1000) * 2
    lam, L = 1.7, 3
    expected = lam * torch.clamp(torch.floor(x * L / lam + 0.5) / L, 0, 1)
    torch.testing.assert_close(act(x), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_qcfs_fused_function_equals_autograd_through_the_straight_through_expression(dtype):
    """The authors' formulation (straight-through floor, clamp gradient with its bounds) run by
    autograd: the fused function's forward is bit-identical, its gradients equal up to rounding."""
    torch.manual_seed(0)
    act = QCFS(levels=3, shift=0.5, threshold_init=1.7).to(dtype)
    x = (torch.randn(4, 8, 5, 5, dtype=dtype) * 2).requires_grad_()
    grad = torch.randn_like(x)

    c = x / act.threshold * act.levels + act.shift
    q = (c + (c.floor() - c).detach()) / act.levels
    expected = torch.where((q >= 0) & (q <= 1), q, q.detach().clamp(0, 1)) * act.threshold
    expected_grads = torch.autograd.grad(expected, (x, act.threshold), grad)

    y = act(x)
    assert torch.equal(y, expected)
    for got, want in zip(torch.autograd.grad(y, (x, act.threshold), grad), expected_grads):
        torch.testing.assert_close(got, want)
    act.threshold.requires_grad_(False)  # the x-only path
    torch.testing.assert_close(torch.autograd.grad(act(x), x, grad)[0], expected_grads[0])
    compiled = torch.compile(act, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(torch.autograd.grad(compiled(x), x, grad)[0], expected_grads[0])


@pytest.mark.parametrize("channels_last", [False, True])
def test_qcfs_cpu_kernel_equals_the_pytorch_expressions(monkeypatch, channels_last):
    """The C++ forward gives the same y bit for bit and dL/dx exactly, in the input's own storage
    order (a channels-last activation viewed time-first); dL/dlambda (summed in double) equal up to
    rounding. Values sit on every side of the window, and exactly on its edges."""
    import zoo.layers.qcfs as qcfs_module

    if qcfs_module._library() is None:
        pytest.skip("the fused backend's CPU library could not be built here (no C++ compiler)")
    torch.manual_seed(0)
    act = QCFS(levels=7, shift=0.5, threshold_init=2.0)
    x = torch.randn(2 * 3, 8, 5, 5) * 2
    x[0, 0, 0, :4] = torch.tensor([-1 / 7, 2.0 * 7.5 / 7, 2.0, 0.0])  # window edges (below/inside, inside/above)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x = x.view(2, 3, 8, 5, 5).requires_grad_()
    grad = torch.randn(2, 3, 8, 5, 5)
    results = []
    for kernel in (True, False):
        monkeypatch.setattr(qcfs_module, "_kernel_applies", lambda *a, use=kernel: use)
        y = act(x)
        results.append((y, *torch.autograd.grad(y, (x, act.threshold), grad)))
    (y, gx, gl), (y_ref, gx_ref, gl_ref) = results
    assert y.stride() == x.stride() and torch.equal(y, y_ref) and torch.equal(gx, gx_ref)
    torch.testing.assert_close(gl, gl_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("norm", ["batchnorm", "tdbn_outside"])
def test_fold_runs_a_repeated_input_once(norm, momentum):
    """The same image at every step (direct encoding, stride 0 over T): conv + BN in training mode
    run once on B samples; output, gradients and running statistics (the running variance's
    unbiased correction included, over two steps) as on the T * B copies."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4, momentum=momentum) if norm == "batchnorm" else \
        TdBatchNorm2d(4, alpha=0.7, v_th=0.5, eps_mode="outside", momentum=momentum)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)  # (a bias before BN has gradient 0)
    twin = copy.deepcopy((conv, bn))
    for _ in range(2):
        x = torch.randn(5, 3, 6, 6).contiguous(memory_format=torch.channels_last)
        repeated = x.unsqueeze(0).expand(4, *x.shape)
        y = fold(repeated, conv, bn)
        y_ref = fold(repeated.contiguous(), *twin)
        assert y.shape == y_ref.shape == (4, 5, 4, 6, 6)
        assert y.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, y_ref)
        grad = torch.randn(4, 5, 4, 6, 6)
        y.backward(grad)
        y_ref.backward(grad)
    for p, p_ref in zip([*conv.parameters(), *bn.parameters()], [*twin[0].parameters(), *twin[1].parameters()]):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, twin[1].running_mean)
    torch.testing.assert_close(bn.running_var, twin[1].running_var, rtol=1e-6, atol=0)
    assert bn.num_batches_tracked == twin[1].num_batches_tracked == 2


def test_fold_once_leaves_layers_without_running_statistics_alone():
    """A batch norm in evaluation, or without running statistics, and per-sample layers: the
    repeated input's single run equals the T copies' run."""
    torch.manual_seed(1)
    x = torch.randn(3, 2, 5, 5)
    repeated = x.unsqueeze(0).expand(3, *x.shape)
    for layers in ((torch.nn.BatchNorm2d(2).eval(),), (torch.nn.BatchNorm2d(2, track_running_stats=False),),
                   (torch.nn.AvgPool2d(2),)):
        torch.testing.assert_close(fold(repeated, *layers), fold(repeated.contiguous(), *layers))


def test_create_act_builds_neurons_and_ann_activations():
    qcfs = create_act("qcfs(levels=3)")
    assert isinstance(qcfs, QCFS) and qcfs.spec() == {"name": "qcfs", "levels": 3, "shift": 0.5, "threshold_init": 8.0}
    assert create_act(qcfs.spec()).spec() == qcfs.spec()
    lif = create_act("lif(tau=0.5)", backend="torch")
    assert isinstance(lif, Neuron) and lif.backend == "torch" and lif.params["tau"] == 0.5
    assert create_act(lif, v_th=0.3).params["v_th"] == 0.3
    with pytest.raises(SpecError, match="levels"):
        create_act("qcfs(levels=0)")
    with pytest.raises(SpecError, match="shift"):
        create_act("qcfs(shift=1.0)")
    relu = create_act("relu")
    assert isinstance(relu, torch.nn.ReLU) and relu.spec() == {"name": "relu"}
    with pytest.raises(SpecError, match="unknown"):
        create_act("tanh")
