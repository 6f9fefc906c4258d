"""Operation counters and firing summaries against counts done by hand (methods.md section 5).

Every expected number below is derived in the comment beside it from the receptive fields or the
neuron equations, not from the code under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo.neurons as zn
from zoo.evaluation import counters, energy, firing
from zoo.evaluation.counters import OperationCounter


def sparse_4x4() -> torch.Tensor:
    """A [1, 1, 4, 4] input with events at (0, 0) (a corner), (1, 2) (inside) and (3, 3) (a
    corner), valued 1, 2 and 0.5: the value must not matter, only that it is non-zero."""
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0], x[0, 0, 1, 2], x[0, 0, 3, 3] = 1.0, 2.0, 0.5
    return x


@pytest.mark.parametrize("stride, padding, expected", [
    # 3x3 windows centred on every pixel (output 4x4): the corner events are seen by 2x2 windows,
    # the inner one by 3x3: 4 + 9 + 4.
    (1, 1, 17),
    # no padding, output 2x2, windows with top-left (i, j) in {0, 1}^2 covering rows i..i+2:
    # (0, 0) only by (0, 0); (1, 2) by all four; (3, 3) only by (1, 1): 1 + 4 + 1.
    (1, 0, 6),
    # stride 2, padding 1, output 2x2, windows centred on rows/cols {0, 2}: (0, 0) by the (0, 0)
    # window; (1, 2) by rows {0, 2} x col {2}; (3, 3) by row 2 x col 2: 1 + 2 + 1.
    (2, 1, 4),
])
def test_conv_acs_are_event_synapse_pairs(stride, padding, expected):
    conv = nn.Conv2d(1, 1, 3, stride=stride, padding=padding, bias=False)
    assert counters.synaptic_events(conv, sparse_4x4()).item() == expected


def test_conv_acs_scale_with_output_channels_and_respect_groups():
    # 2 output channels: every pair counted once per output channel.
    conv = nn.Conv2d(1, 2, 3, padding=1)
    assert counters.synaptic_events(conv, sparse_4x4()).item() == 2 * 17
    # groups=2 with 2 input and 6 output channels: events in input channel 1 reach only the 3
    # output channels of group 1; channel 0 is empty.
    grouped = nn.Conv2d(2, 6, 3, padding=1, groups=2)
    x = torch.cat([torch.zeros(1, 1, 4, 4), sparse_4x4()], dim=1)
    assert counters.synaptic_events(grouped, x).item() == 3 * 17


def test_conv_acs_dilation_and_circular_padding():
    # dilation 2, padding 2 on 4x4: a window centred on (r, c) reads rows r-2, r, r+2. Event (0, 0)
    # is read by centres with r, c in {0, 2}: 4; (1, 2) by r in {1, 3}, c in {0, 2}: 4; (3, 3) by
    # r, c in {1, 3}: 4.
    dilated = nn.Conv2d(1, 1, 3, padding=2, dilation=2)
    assert counters.synaptic_events(dilated, sparse_4x4()).item() == 12
    # circular padding 1 makes the 4x4 input a torus: every event lies in 9 windows.
    circular = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")
    assert counters.synaptic_events(circular, sparse_4x4()).item() == 27


def test_linear_acs_and_fan_in():
    fc = nn.Linear(5, 4)
    x = torch.tensor([[0.0, 1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])  # 3 events, fan-out 4
    assert counters.synaptic_events(fc, x).item() == 12
    assert counters.fan_in(fc) == 5
    assert counters.fan_in(nn.Conv2d(4, 8, (3, 5), groups=2)) == 2 * 3 * 5


class TwoLayer(nn.Module):
    """fc1 (analog input) -> LIF -> fc2 over T steps, time folded into the batch around the
    stateless layers, as the zoo's models do."""

    def __init__(self, neuron: str, weights: list[float], T: int = 3) -> None:
        super().__init__()
        self.T = T
        self.fc1 = nn.Linear(2, len(weights), bias=False)
        self.neuron = zn.create(neuron)
        self.fc2 = nn.Linear(len(weights), 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.zero_()
            self.fc1.weight[:, 0] = torch.tensor(weights)
            self.fc2.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        current = self.fc1(x.unsqueeze(0).expand(self.T, -1, -1).reshape(self.T * B, -1))
        spikes = self.neuron(current.reshape(self.T, B, -1))
        return self.fc2(spikes.reshape(self.T * B, -1)).reshape(self.T, B, -1).mean(0)


def test_two_layer_lif_network_by_hand():
    # Input [1, 0]: the three LIF neurons (tau 0.25, V_th 0.5, hard reset) get constant currents
    # 1.0, 0.45 and 0.2 over T = 3 steps.
    #   1.0 : u = 1.0 > 0.5 fires, resets to 0, so fires at every step       -> 3 spikes
    #   0.45: u = 0.45; 0.25*0.45 + 0.45 = 0.5625 fires; reset, u = 0.45     -> 1 spike (t = 2)
    #   0.2 : u = 0.2, 0.25, 0.2625: never above 0.5                          -> 0 spikes
    net = TwoLayer("lif", [1.0, 0.45, 0.2])
    with OperationCounter(net, analog_input=True) as ops, zn.record_firing(net) as stats:
        net(torch.tensor([[1.0, 0.0]]))
    # fc1 is fed the analog image: 3 steps x 3 outputs x fan-in 2 = 18 MACs, no ACs.
    # fc2 is fed 4 spikes, each reaching 2 synapses: 8 ACs.
    assert ops.first == "fc1"
    assert (ops.macs, ops.acs) == (18, 8)
    assert ops.counts()["fc2"] == {"acs": 8, "macs": 0, "input_events": 4, "input_elements": 9}
    counts = firing.batch_counts(stats)
    assert counts["neuron"] == {"events": 4, "value_sum": 4.0, "elements": 9}
    [layer] = firing.layer_summary(net, counts, samples=1, T=3)
    assert layer["neurons"] == 3 and layer["firing_rate"] == pytest.approx(4 / 9)
    assert layer["mean_event_value"] == 1.0 and layer["bits_per_spike"] == 1
    assert layer["events_per_sample"] == 4
    # 0.9 pJ x 8 + 4.6 pJ x 18 = 90 pJ
    assert energy.energy_pj(ops.acs, ops.macs) == pytest.approx(90.0)


def test_event_input_counts_acs_in_the_first_layer():
    net = TwoLayer("lif", [1.0, 0.45, 0.2])
    with OperationCounter(net, analog_input=False) as ops:
        net(torch.tensor([[1.0, 0.0]]))
    # fc1 now sees events: 1 non-zero input per step reaching 3 synapses, over 3 steps: 9 ACs.
    assert ops.counts()["fc1"]["acs"] == 9 and ops.macs == 0
    assert ops.acs == 9 + 8


def test_network_without_neurons_is_dense():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with OperationCounter(net) as ops:
        net(torch.tensor([[1.0, 0.0]]))
    assert ops.dense and ops.acs == 0 and ops.macs == 3 * 2 + 2 * 3


def test_counter_hooks_are_removed():
    net = TwoLayer("lif", [1.0])
    with OperationCounter(net) as ops:
        net(torch.ones(1, 2))
    net(torch.ones(1, 2))
    assert ops.macs == 3 * 1 * 2  # the second call was not counted


def test_mlf_multi_level_values():
    # MLF (K = 3, V_k = 0.6, 1.6, 2.6, tau = 0.25, hard reset per level) with current 2.0:
    #   t=1: u = (2, 2, 2)            -> levels 1, 2 fire        -> value 2
    #   t=2: u = (2, 2, 0.25*2 + 2)   = (2, 2, 2.5)               -> value 2
    #   t=3: u = (2, 2, 0.25*2.5 + 2) = (2, 2, 2.625)  > 2.6      -> value 3
    # 3 events of summed value 7 per neuron; fc2 counts 3 events x 2 synapses, whatever the values.
    net = TwoLayer("mlf", [2.0])
    with OperationCounter(net) as ops, zn.record_firing(net) as stats:
        net(torch.tensor([[1.0, 0.0]]))
    [layer] = firing.layer_summary(net, firing.batch_counts(stats), samples=1, T=3)
    assert layer["firing_rate"] == 1.0
    assert layer["mean_event_value"] == pytest.approx(7 / 3)
    assert layer["bits_per_spike"] == 2  # 4 output levels {0, 1, 2, 3}
    assert ops.counts()["fc2"]["acs"] == 3 * 2


def test_bits_per_spike():
    assert firing.bits_per_spike(zn.create("multibit(m=3, n=2)")) == 5
    assert firing.bits_per_spike(zn.create("multibit(m=1, n=0)")) == 1
    assert firing.bits_per_spike(zn.create("mlf(levels=1)")) == 1
    assert firing.bits_per_spike(zn.create("srif")) == 1


def test_overall_rate_weights_layers_by_neuron_steps():
    counts = {"a": {"events": 1, "value_sum": 1.0, "elements": 10},
              "b": {"events": 9, "value_sum": 18.0, "elements": 30}}
    assert firing.overall(counts) == (pytest.approx(10 / 40), pytest.approx(19 / 10))


def test_synaptic_layer_summary():
    net = TwoLayer("lif", [1.0, 0.45, 0.2])
    with OperationCounter(net) as ops:
        net(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    fc1, fc2 = counters.layer_summary(net, ops.counts(), samples=2)
    assert fc1["input"] == "analog" and fc1["macs_per_sample"] == 18 and fc1["acs_per_sample"] == 0
    assert fc2["input"] == "events" and fc2["acs_per_sample"] == 8 and fc2["input_event_rate"] == pytest.approx(4 / 9)
