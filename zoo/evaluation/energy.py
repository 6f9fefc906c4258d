"""Energy per inference from operation counts (methods.md section 5, the community convention).

    E = E_AC * ACs + E_MAC * MACs,   E_AC = 0.9 pJ, E_MAC = 4.6 pJ

are 32-bit floating-point add and multiply-add energies on a 45 nm process (Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014), as used by most SNN papers since
(e.g. Spikformer, MLF, InfLoR). The estimate counts synaptic operations only: memory traffic,
neuron updates, normalisation and pooling are left out, as in those papers. Every report states
these constants (``CONSTANTS`` goes into each evaluation record).
"""

from __future__ import annotations

E_AC_PJ = 0.9
E_MAC_PJ = 4.6
SOURCE = "Horowitz, ISSCC 2014, 45 nm, 32-bit float"
NOTE = (f"Energy = {E_AC_PJ} pJ x ACs (SOPs) + {E_MAC_PJ} pJ x MACs ({SOURCE}); ACs = non-zero input events x "
        "fan-out of every synaptic layer fed by spikes, MACs = output elements x fan-in of the first layer "
        "when its input is an analog (direct-encoded) image; synaptic operations only.")
CONSTANTS = {"e_ac_pj": E_AC_PJ, "e_mac_pj": E_MAC_PJ, "source": SOURCE}


def energy_pj(acs: float, macs: float) -> float:
    """Synaptic energy in picojoules of ``acs`` accumulates and ``macs`` multiply-accumulates."""
    return E_AC_PJ * acs + E_MAC_PJ * macs
