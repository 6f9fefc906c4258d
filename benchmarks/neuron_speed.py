#!/usr/bin/env python
"""Forward+backward time and peak memory of spiking neurons: the zoo's backends side by side with
SpikingJelly 2.0.0 and snnTorch 1.0.0, in one process, on the same input tensors.

    python benchmarks/neuron_speed.py                    # LIF, T = 4 8 16 32, B = 64, 64x32x32
    python benchmarks/neuron_speed.py --quick            # tiny shape smoke test (all rows)
    python benchmarks/neuron_speed.py --neurons lif if mlf --T 8 --repeats 3

Writes ``benchmarks/results/neuron_speed_<device>.{csv,md}`` (``..._quick`` with ``--quick``).

What is compared (all computing the same forward function; see ``--check`` output in the .md):

* zoo: ``zoo.neurons.create(name, backend=b)`` for b in torch, fused (+ triton on CUDA). On the
  CPU, fused runs its C++/OpenMP kernel (``zoo/neurons/backends/cpu_kernel.cpp``; the header
  records whether it was built, and the hashes of the sources).
* SpikingJelly 2.0.0, ``neuron.LIFNode(step_mode='m')``. SJ 2.0 has no ``backend=`` argument
  any more (``TypeError``); the implementation is picked per device: on the CPU it is always the
  Torch reference (``functional.neuron_implementation('lif', cpu)``), on CUDA the registered
  ``sj_lif`` op picks cuda > triton > torch (env ``SJ_LIF_CUDA_IMPLEMENTATION``, read at import;
  switched here at run time). The registered op is only used for SJ's 7 built-in surrogates
  (Sigmoid, ATan, PiecewiseQuadratic, ...); any other surrogate (e.g. ``Rect``) runs the Python
  reference loop under autograd. ``torch.compile`` of the node is SJ's other documented path.
  Rows:

  - ``torch``: ``Rect(alpha=1)`` = our rectangle(width=1), exactly our LIF (same gradients).
  - ``op:torch`` / ``op:cuda`` / ``op:triton``: ``PiecewiseQuadratic(alpha=2)`` = our
    triangle(width=1) surrogate (the only change: backward surrogate shape), through the
    registered op with that implementation.
  - ``inductor`` / ``op:inductor``: ``torch.compile(node)`` of the two above (compile time is
    excluded from the timing and reported separately).

  Parameter mapping (SJ, ``decay_input=False``, ``v_reset=0``):
  ``H = V - (V - 0)/tau + X = (1 - 1/tau) V + X``, so our decay factor 0.25 is ``tau = 4/3``;
  ``v_threshold = 0.5``, hard reset to 0, ``detach_reset=False``. SJ fires on ``H >= V_th``, we
  on ``H > V_th`` (differs only on exact ties). For ``if``: ``IFNode(v_threshold=1,
  v_reset=None)`` (soft reset).
* snnTorch 1.0.0: ``snn.Leaky(beta=0.25, threshold=0.5, reset_mechanism="zero")``, looped over T
  with ``mem = lif.init_leaky()``; surrogate = rectangle width 1 via
  ``surrogate.custom_surrogate`` (snnTorch has no built-in rectangle). snnTorch always detaches
  the reset, so it equals our ``lif(detach_reset=True)``. For ``if``: ``beta=1,
  threshold=1, reset_mechanism="subtract"``.

Timing: forward + ``out.backward(grad)`` with a fixed random grad, ``--warmup`` untimed calls, then
the median of ``--repeats`` (CUDA: synchronised). Peak memory is measured in a separate call:
CUDA ``max_memory_allocated`` minus the allocation before the call; CPU: torch.profiler memory
events (allocation/free deltas in time order, cumulative sum, maximum), a method verified at
start-up on a known allocation pattern. Both are the peak above what existed before the call
(the input and the fixed grad), i.e. include out, grad_x and everything saved for backward.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import hashlib
import io
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from zoo.checkpoint import write_atomic

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency of snnzoo
    def tqdm(it, **_):
        return it

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PEAK_GBPS = {"H200": 4800.0, "H100": 3350.0}  # HBM3e / HBM3 (SXM) spec sheets

# The zoo's neurons that have an equivalent in the other frameworks.
SJ_EQUIV = {"lif", "if"}
SNNTORCH_EQUIV = {"lif", "if"}


# ------------------------------------------------------------------------------------------------
# Implementations
# ------------------------------------------------------------------------------------------------
class Runner:
    """A callable x -> out with a cleanup hook (drops state between calls)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], cleanup: Callable[[], None] | None = None):
        self.fn, self.cleanup = fn, cleanup or (lambda: None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@dataclass
class Impl:
    neuron: str
    framework: str  # zoo | spikingjelly | snntorch
    backend: str
    build: Callable[[], Runner] | None
    note: str = ""
    ref_spec: str | None = None  # our neuron spec with exactly the same gradients
    compiled: bool = False
    unavailable: str | None = None
    setup: Callable[[], None] | None = None  # called before build (e.g. SJ CUDA selection)

    @property
    def label(self) -> str:
        short = {"zoo": "ours", "spikingjelly": "SJ", "snntorch": "snnTorch"}[self.framework]
        return f"{short} {self.backend}"


def _zoo_impls(neuron: str, device: torch.device) -> list[Impl]:
    import zoo.neurons as zn

    out = []
    backends = ["torch", "fused"] + (["triton"] if device.type == "cuda" else [])
    for backend in backends:
        reason = None
        if backend == "triton":
            try:
                from zoo.neurons.backends import triton as triton_backend

                if not triton_backend.available():
                    reason = "zoo.neurons.backends.triton.available() is False"
            except Exception as e:  # noqa: BLE001 - record why
                reason = f"{type(e).__name__}: {e}"

        def build(backend=backend):
            return Runner(zn.create(neuron, backend=backend).to(device))

        out.append(Impl(neuron, "zoo", backend, build, ref_spec=neuron, unavailable=reason))
    if device.type != "cuda":
        out.append(Impl(neuron, "zoo", "triton", None, unavailable="CUDA only"))
    return out


def _sj_node(neuron: str, op: bool):
    from spikingjelly.activation_based import neuron as sjn, surrogate as sjs

    sg = sjs.PiecewiseQuadratic(alpha=2.0) if op else sjs.Rect(alpha=1.0)
    if neuron == "lif":
        return sjn.LIFNode(tau=4.0 / 3.0, decay_input=False, v_threshold=0.5, v_reset=0.0,
                           surrogate_function=sg, detach_reset=False, step_mode="m")
    return sjn.IFNode(v_threshold=1.0, v_reset=None, surrogate_function=sg, detach_reset=False,
                      step_mode="m")


def _sj_select(neuron: str, implementation: str) -> None:
    """Switch SJ's CUDA implementation of the registered op (normally fixed at import by the env
    variable SJ_<NEURON>_CUDA_IMPLEMENTATION; private attributes, SJ 2.0.0)."""
    import importlib

    mod = importlib.import_module("spikingjelly._ops." + ("lif" if neuron == "lif" else "if_"))
    sel = mod._selection
    sel._requested = implementation
    sel._selections.clear()
    sel._compiled_selections.clear()


def _sj_impls(neuron: str, device: torch.device, compile_ok: str | None) -> list[Impl]:
    try:
        import spikingjelly  # noqa: F401
        from spikingjelly.activation_based import functional as sjf
    except Exception as e:  # noqa: BLE001
        return [Impl(neuron, "spikingjelly", "*", None, unavailable=f"import failed: {e}")]
    ref_triangle = f"{neuron}(surrogate=triangle)"
    variants = [("torch", False, None, neuron, "Rect(1): Python reference loop, autograd")]
    if device.type == "cuda":
        for impl in ("torch", "triton", "cuda"):
            variants.append((f"op:{impl}", True, impl, ref_triangle,
                             f"PiecewiseQuadratic(2): registered sj_{neuron} op, {impl} impl"))
    else:
        variants.append(("op:torch", True, None, ref_triangle,
                         "PiecewiseQuadratic(2): registered op; CPU impl = Torch reference"))
    variants += [("inductor", False, "compile", neuron, "torch.compile(Rect node)"),
                 ("op:inductor", True, "compile", ref_triangle, "torch.compile(PiecewiseQuadratic node)")]

    out = []
    for backend, op, sel, ref, note in variants:
        reason, setup = None, None
        compiled = sel == "compile"
        if compiled and compile_ok:
            reason = compile_ok
        if device.type == "cuda" and sel not in (None, "compile"):
            def setup(sel=sel):
                _sj_select(neuron, sel)
            try:
                setup()
                got = sjf.neuron_implementation(neuron, device)["implementation"]
                if got != sel:
                    reason = f"SJ selected {got!r} instead"
            except Exception as e:  # noqa: BLE001
                reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            finally:
                _sj_select(neuron, "auto")

        def build(op=op, compiled=compiled):
            node = _sj_node(neuron, op).to(device)
            call = torch.compile(node, dynamic=False) if compiled else node

            def fn(x):
                node.reset()
                return call(x)

            return Runner(fn, node.reset)

        out.append(Impl(neuron, "spikingjelly", backend, build, note=note, ref_spec=ref,
                        compiled=compiled, unavailable=reason, setup=setup))
    if device.type != "cuda":
        for impl in ("cuda", "triton"):
            out.append(Impl(neuron, "spikingjelly", f"op:{impl}", None,
                            unavailable="CUDA only (SJ 2.0 CPU implementation is the Torch reference)"))
    return out


def _snntorch_impls(neuron: str, device: torch.device) -> list[Impl]:
    try:
        import snntorch as snn
        from snntorch import surrogate as ssg
    except Exception as e:  # noqa: BLE001
        return [Impl(neuron, "snntorch", "*", None, unavailable=f"import failed: {e}")]

    def rectangle(input_, grad_input, spikes):  # our rectangle(width=1): 1[|x| < 1/2]
        return grad_input * (input_.abs() < 0.5).to(grad_input.dtype)

    def build():
        if neuron == "lif":
            lif = snn.Leaky(beta=0.25, threshold=0.5, reset_mechanism="zero",
                            spike_grad=ssg.custom_surrogate(rectangle))
        else:
            lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract",
                            spike_grad=ssg.custom_surrogate(rectangle))
        lif = lif.to(device)

        def fn(x):
            mem = lif.init_leaky()
            spikes = []
            for step in range(x.shape[0]):
                spk, mem = lif(x[step], mem)
                spikes.append(spk)
            return torch.stack(spikes)

        def cleanup():
            lif.mem = torch.zeros(0, device=device)  # as freshly constructed

        return Runner(fn, cleanup)

    return [Impl(neuron, "snntorch", "torch", build, ref_spec=f"{neuron}(detach_reset=True)",
                 note="Leaky, custom rectangle surrogate, reset detached")]


def all_impls(neurons: list[str], device: torch.device, compile_ok: str | None) -> list[Impl]:
    impls = []
    for neuron in neurons:
        impls += _zoo_impls(neuron, device)
        if neuron in SJ_EQUIV:
            impls += _sj_impls(neuron, device, compile_ok)
        if neuron in SNNTORCH_EQUIV:
            impls += _snntorch_impls(neuron, device)
    return impls


# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all threads."""
    t = os.times()
    return t.user, t.system


def fwd_bwd(run: Runner, x: torch.Tensor, grad: torch.Tensor, device: torch.device):
    """One forward+backward; returns (out detached, fwd s, total s, user CPU s, system CPU s)."""
    xx = x.detach().requires_grad_()
    sync(device)
    u0, s0 = _cpu_seconds()
    t0 = time.perf_counter()
    out = run(xx)
    sync(device)
    t1 = time.perf_counter()
    out.backward(grad)
    sync(device)
    t2 = time.perf_counter()
    u1, s1 = _cpu_seconds()
    out = out.detach()
    del xx
    run.cleanup()
    return out, t1 - t0, t2 - t0, u1 - u0, s1 - s0


def cpu_peak_bytes(fn: Callable[[], None]) -> float:
    """Peak bytes allocated on the CPU above the state at entry, from torch.profiler memory events."""
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    events = [(e.start_ns(), i, e.nbytes()) for i, e in enumerate(prof.profiler.kineto_results.events())
              if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")]
    events.sort()
    cur = peak = 0
    for _, _, nbytes in events:
        cur += nbytes
        peak = max(peak, cur)
    return float(peak)


def verify_cpu_peak_method() -> str:
    """Check the profiler method on a known pattern: +100 MiB, +50 MiB, -100 MiB, +30 MiB -> 150."""

    def pattern():
        a = torch.ones(100 * 2**18)
        b = torch.ones(50 * 2**18)
        del a
        c = torch.ones(30 * 2**18)
        del b, c

    got = cpu_peak_bytes(pattern) / 2**20
    ok = abs(got - 150.0) < 0.5
    return f"{'OK' if ok else 'FAILED'} (known pattern peak 150 MiB, measured {got:.1f} MiB)"


def peak_memory(run: Runner, x: torch.Tensor, grad: torch.Tensor, device: torch.device) -> float:
    """Peak MiB above the memory allocated before the call (input and grad already exist)."""
    gc.collect()
    if device.type == "cuda":
        sync(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fwd_bwd(run, x, grad, device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return cpu_peak_bytes(lambda: fwd_bwd(run, x, grad, device)) / 2**20


def ideal_bytes(x: torch.Tensor, levels: int = 1) -> int:
    """Bytes the ideal fused kernel moves: fwd reads x, writes out and h (fp32); bwd reads grad_out
    and h, writes grad_x."""
    n, e = x.numel(), x.element_size()
    return n * (e + e + 4 * levels) + n * (e + 4 * levels + e)


@dataclass
class Result:
    impl: Impl
    T: int
    dtype: str
    ms: float | None = None
    ms_fwd: float | None = None
    ms_min: float | None = None
    mb: float | None = None
    gbps: float | None = None
    bw_frac: float | None = None
    cpu_user_ms: float | None = None  # median CPU time of the process (all threads) per call
    cpu_sys_ms: float | None = None  # ... of which in the kernel (on the CPU mostly page faults)
    first_s: float | None = None  # first call (compiles where something is compiled)
    compile_s: float | None = None
    mismatch: float | None = None  # fraction of output elements differing from the zoo reference
    status: str = "ok"
    times: list = field(default_factory=list)


def _fail(res: Result, e: Exception, args) -> None:
    res.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    if args.verbose:
        traceback.print_exc()


def measure_all(impls: list[Impl], x, grad, device, args, refs: dict, bar) -> list[Result]:
    """All implementations on one input: warm up each, then ``repeats`` rounds in which every
    implementation runs once (rotating order), so that slow phases of a shared machine hit all of
    them alike; then one peak-memory call each."""
    import zoo.neurons as zn

    results = [Result(i, x.shape[0], args.dtype_name) for i in impls]
    runs: dict[int, Runner] = {}
    for k, (impl, res) in enumerate(zip(impls, results)):
        if impl.unavailable:
            res.status = f"unavailable: {impl.unavailable}"
            continue
        bar.set_postfix_str(f"warmup {impl.label} {impl.neuron} T={res.T} {res.dtype}")
        try:
            if impl.setup:
                impl.setup()
            run = impl.build()
            t0 = time.perf_counter()
            out = fwd_bwd(run, x, grad, device)[0]  # first call (compiles where something is compiled)
            res.first_s = time.perf_counter() - t0
            if impl.compiled:
                res.compile_s = res.first_s
            ref = refs.get(impl.neuron)
            if ref is not None and impl.neuron != "noisy_if":
                res.mismatch = (out != ref).sum().item() / out.numel()
            del out
            for _ in range(args.warmup - 1):
                fwd_bwd(run, x, grad, device)
            runs[k] = run
        except Exception as e:  # noqa: BLE001 - record and go on
            _fail(res, e, args)
        bar.update(args.warmup)
    samples: dict[int, list] = {k: [] for k in runs}
    for rep in range(args.repeats):
        order = list(runs)
        order = order[rep % max(1, len(order)):] + order[: rep % max(1, len(order))]
        for k in order:
            impl, res = impls[k], results[k]
            if res.status != "ok":
                continue
            bar.set_postfix_str(f"round {rep + 1}/{args.repeats} {impl.label} {impl.neuron} T={res.T}")
            try:
                if impl.setup:
                    impl.setup()
                samples[k].append(fwd_bwd(runs[k], x, grad, device)[1:])
            except Exception as e:  # noqa: BLE001
                _fail(res, e, args)
            bar.update(1)
    for k, run in runs.items():
        impl, res = impls[k], results[k]
        if res.status == "ok" and samples[k]:
            fwd_t, tot_t, usr, sys_ = (list(v) for v in zip(*samples[k]))
            res.ms = statistics.median(tot_t) * 1e3
            res.ms_fwd = statistics.median(fwd_t) * 1e3
            res.ms_min = min(tot_t) * 1e3
            res.cpu_user_ms = statistics.median(usr) * 1e3
            res.cpu_sys_ms = statistics.median(sys_) * 1e3
            res.times = [round(t * 1e3, 2) for t in tot_t]
            if device.type == "cuda":
                dyn = zn.create(impl.neuron).dynamics() if impl.neuron != "noisy_if" else None
                res.gbps = ideal_bytes(x, getattr(dyn, "levels", 1)) / (res.ms * 1e-3) / 1e9
                if args.peak_gbps:
                    res.bw_frac = res.gbps / args.peak_gbps
        if res.status == "ok" and not args.no_memory:
            bar.set_postfix_str(f"memory {impl.label} {impl.neuron} T={res.T}")
            try:
                if impl.setup:
                    impl.setup()
                res.mb = peak_memory(run, x, grad, device)
            except Exception as e:  # noqa: BLE001
                _fail(res, e, args)
        bar.update(0 if args.no_memory else 1)
    runs.clear()
    for impl in impls:
        if impl.setup and impl.framework == "spikingjelly":
            _sj_select(impl.neuron, "auto")
    if any(i.compiled for i in impls):
        torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return results


def check_equivalence(impls: list[Impl], device: torch.device, dtype: torch.dtype) -> list[str]:
    """Tiny-shape check: every eager implementation against the zoo reference (torch backend) of
    the neuron spec with identical gradients. Returns Markdown lines."""
    import zoo.neurons as zn

    lines = []
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 4, 8, 8, generator=gen).to(device, dtype)
    g = torch.randn(x.shape, generator=gen).to(device, dtype)
    for impl in impls:
        if impl.unavailable or impl.ref_spec is None or impl.compiled:
            continue
        if impl.neuron == "noisy_if":
            continue
        try:
            if impl.setup:
                impl.setup()
            run = impl.build()
            ref = zn.create(impl.ref_spec, backend="torch").to(device)
            xr = x.clone().requires_grad_()
            o_ref = ref(xr)
            o_ref.backward(g)
            xi = x.clone().requires_grad_()
            o = run(xi)
            o.backward(g)
            run.cleanup()
            d_out = (o.float() - o_ref.float()).abs().max().item()
            d_grad = (xi.grad.float() - xr.grad.float()).abs().max().item()
            ok = d_out == 0 and d_grad <= (1e-5 if dtype == torch.float32 else 1e-2)
            lines.append(f"| {impl.neuron} | {impl.label} | `{impl.ref_spec}` | {d_out:g} | {d_grad:.2g} | "
                         f"{'OK' if ok else 'DIFFERS'} |")
        except Exception as e:  # noqa: BLE001
            lines.append(f"| {impl.neuron} | {impl.label} | `{impl.ref_spec}` | - | - | failed: {type(e).__name__}: {e} |")
        finally:
            if impl.setup and impl.framework == "spikingjelly":
                _sj_select(impl.neuron, "auto")
    return lines


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
def _git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], cwd=HERE.parent, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def machine_info(device: torch.device, args) -> list[tuple[str, str]]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = []
    for mod in ("spikingjelly", "snntorch"):
        try:
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
        except Exception:  # noqa: BLE001
            versions.append(f"{mod} not installed")
    from zoo.neurons.backends import cpu_kernel, fused

    backend_files = [Path(fused.__file__), Path(cpu_kernel.__file__), cpu_kernel._SOURCE, Path(__file__)]
    digests = ", ".join(f"{f.name} {hashlib.sha256(f.read_bytes()).hexdigest()[:12]}" for f in backend_files)
    dirty = _git("status", "--porcelain", "--", "zoo", "benchmarks/neuron_speed.py")
    if device.type == "cpu":  # builds the kernel now (once per machine), outside any timing
        lib = cpu_kernel.library()
        kernel = (f"C++/OpenMP kernel {Path(lib._name).name}" if lib is not None
                  else "PyTorch loops (the C++ kernel is disabled or failed to build)")
    meminfo = {}  # GiB
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            if value.strip().endswith(" kB"):
                meminfo[key] = f"{int(value.split()[0]) / 2**20:.1f} GiB"
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except (OSError, ValueError):
        thp = "?"
    rows = [
        ("date", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}; {os.cpu_count()} logical cores ({usable} usable); "
                f"torch.get_num_threads() = {torch.get_num_threads()}; "
                f"ISA {torch.backends.cpu.get_cpu_capability()}"),
        ("memory", f"{meminfo.get('MemTotal', '?')} total, {meminfo.get('MemAvailable', '?')} available at "
                   f"start; OS {platform.system()} {platform.release()}; transparent huge pages {thp}"),
        ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
        ("software", f"Python {platform.python_version()}, torch {torch.__version__}, " + ", ".join(versions)),
        ("zoo source", f"{Path(fused.__file__).parents[3]} @ {_git('rev-parse', '--short', 'HEAD')}"
                       f"{' (working tree modified)' if dirty else ''}; sha256 {digests}"),
    ]
    if device.type == "cpu":
        rows.append(("zoo fused backend on the CPU", kernel))
    if device.type == "cuda":
        rows.append(("GPU", f"{torch.cuda.get_device_name(device)}; peak bandwidth used for the "
                            f"floor: {args.peak_gbps or 'unknown'} GB/s"))
    return rows


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def summarise(results: list[Result], Ts: list[int], device: torch.device) -> list[str]:
    """Speed-ups of our fused (and triton) over SJ torch and SJ's fastest, memory fractions, targets."""
    lines = []
    by = {}
    for r in results:
        if r.ms is not None:
            by[(r.impl.neuron, r.impl.framework, r.impl.backend, r.T, r.dtype)] = r
    dtypes = sorted({r.dtype for r in results})
    for neuron in sorted({r.impl.neuron for r in results if r.impl.neuron in SJ_EQUIV}):
        for dtype in dtypes:
            for ours in ("fused", "triton"):
                rows = []
                checks = {}
                for T in Ts:
                    o = by.get((neuron, "zoo", ours, T, dtype))
                    sj_t = by.get((neuron, "spikingjelly", "torch", T, dtype))
                    sj_all = [r for k, r in by.items() if k[0] == neuron and k[1] == "spikingjelly"
                              and k[3] == T and k[4] == dtype]
                    if o is None or sj_t is None or not sj_all:
                        continue
                    best = min(sj_all, key=lambda r: r.ms)
                    s_torch, s_best = sj_t.ms / o.ms, best.ms / o.ms
                    frac = o.mb / sj_t.mb if (o.mb is not None and sj_t.mb) else None
                    rows.append(f"| {T} | {o.ms:.1f} | {sj_t.ms:.1f} | **{s_torch:.2f}x** | "
                                f"{best.impl.backend} {best.ms:.1f} | **{s_best:.2f}x** | "
                                f"{_fmt(o.mb, 1)} / {_fmt(sj_t.mb, 1)} = **{_fmt(frac, 2)}** |")
                    checks[T] = (s_torch, s_best, frac)
                if not rows:
                    continue
                lines += [f"### {neuron}, ours {ours} vs SpikingJelly ({dtype}, {device.type})", "",
                          f"| T | ours {ours} ms | SJ torch ms | speed-up vs SJ torch | SJ fastest (ms) | "
                          f"speed-up vs SJ fastest | peak MB ours / SJ torch = fraction |",
                          "|---|---|---|---|---|---|---|", *rows, ""]
                if device.type == "cpu" and neuron == "lif" and ours == "fused":
                    lines.append("Targets (CPU, T = 8 and 32): >= 3x SJ torch, faster than SJ's fastest "
                                 "CPU backend, <= 0.5x SJ torch's peak memory.")
                    lines.append("")
                    for T in (8, 32):
                        if T not in checks:
                            lines.append(f"- T={T}: not measured")
                            continue
                        s_torch, s_best, frac = checks[T]
                        mark = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
                        lines.append(
                            f"- T={T}: {s_torch:.2f}x vs SJ torch {mark(s_torch >= 3)}; "
                            f"{s_best:.2f}x vs SJ fastest {mark(s_best > 1)}; memory {_fmt(frac, 2)} "
                            f"{mark(frac is not None and frac <= 0.5)}")
                    lines.append("")
    return lines


def pivot(results: list[Result], Ts: list[int], attr: str, nd: int, small: bool = True) -> list[str]:
    """Rows = implementations, columns = T; values below 10 get 2 decimals when ``small``."""
    head = "| neuron | dtype | implementation | " + " | ".join(f"T={T}" for T in Ts) + " |"
    out = [head, "|" + "---|" * (3 + len(Ts))]
    seen = []
    for r in results:
        key = (r.impl.neuron, r.dtype, r.impl.label)
        if key not in seen and not r.status.startswith("unavailable"):
            seen.append(key)
    for key in seen:
        cells = []
        for T in Ts:
            r = next((r for r in results if (r.impl.neuron, r.dtype, r.impl.label) == key and r.T == T), None)
            if r is None:
                cells.append("")
            elif r.status != "ok":
                cells.append("failed")
            else:
                v = getattr(r, attr)
                if attr == "bw_frac" and v is not None:
                    v *= 100
                cells.append(_fmt(v, nd if v is None or abs(v) >= 10 or not small else 2))
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return out


def write_outputs(results, impls, Ts, device, args, info, check_lines, mem_check, elapsed) -> str:
    suffix = "_quick" if args.quick else ""
    stem = args.out_dir / f"neuron_speed_{device.type}{suffix}"
    fields = ["device", "dtype", "neuron", "framework", "backend", "T", "batch", "features",
              "ms_fwd_bwd_median", "ms_fwd_median", "ms_bwd_median", "ms_min", "repeats", "times_ms", "cpu_user_ms", "cpu_sys_ms",
              "peak_mb_above_input", "ideal_gbps", "frac_peak_bw", "first_call_s", "spike_mismatch_frac",
              "status", "note"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(fields)
    for r in results:
        w.writerow([device.type, r.dtype, r.impl.neuron, r.impl.framework, r.impl.backend, r.T, args.batch,
                    "x".join(map(str, args.features)), _fmt(r.ms, 3), _fmt(r.ms_fwd, 3),
                    _fmt(None if r.ms is None else r.ms - r.ms_fwd, 3), _fmt(r.ms_min, 3), args.repeats,
                    " ".join(map(str, r.times)), _fmt(r.cpu_user_ms, 1), _fmt(r.cpu_sys_ms, 1), _fmt(r.mb, 1), _fmt(r.gbps, 1), _fmt(r.bw_frac, 4),
                    _fmt(r.first_s, 2), "" if r.mismatch is None else f"{r.mismatch:.3g}", r.status,
                    r.impl.note])
    write_atomic(stem.with_suffix(".csv"), buf.getvalue())

    md = [f"# Neuron forward+backward speed and peak memory ({device.type})", ""]
    md += [f"- **{k}**: {v}" for k, v in info]
    md += [f"- **shape**: x = [T, {args.batch}, {', '.join(map(str, args.features))}] "
           f"({args.batch * math.prod(args.features):,} neurons per step), dtypes {', '.join(args.dtypes)}; "
           f"warmup {args.warmup}, then {args.repeats} rounds running every implementation once "
           f"(rotating order), median; memory in a separate call",
           f"- **CPU peak-memory method** (torch.profiler memory events): {mem_check}",
           f"- **total run time**: {elapsed / 60:.1f} min",
           "- **note**: every row allocates its outputs fresh on each call. On a small VM the first touch "
           "of a freshly mmapped buffer (page faults) can cost as much as the arithmetic, and whether glibc "
           "serves a large block from a free heap chunk (no faults) depends on what ran before; rows are "
           "therefore run interleaved, round by round, so that they share the machine's state. "
           "'SJ fastest' below is the fastest SJ row, including the PiecewiseQuadratic (op:) rows.", ""]
    md += ["## ms per forward+backward (median)", "", *pivot(results, Ts, "ms", 1), ""]
    md += ["## of which forward ms (median)", "", *pivot(results, Ts, "ms_fwd", 1), ""]
    if device.type == "cpu":
        md += ["## of which CPU time in the kernel, ms (median, both threads; mostly first-touch page "
               "faults of freshly allocated buffers)", "", *pivot(results, Ts, "cpu_sys_ms", 0, small=False), ""]
    md += ["## peak MB above the input", "", *pivot(results, Ts, "mb", 0), ""]
    if device.type == "cuda":
        md += ["## bandwidth floor: ideal bytes / time, % of peak", "", *pivot(results, Ts, "bw_frac", 1), ""]
    md += ["## Summary", "", *summarise(results, Ts, device)]
    md += ["## Rows", "", "| implementation | neuron | notes |", "|---|---|---|"]
    for impl in impls:
        note = "; ".join(filter(None, [impl.note, impl.unavailable and "UNAVAILABLE: " + impl.unavailable]))
        md.append(f"| {impl.label} | {impl.neuron} | {note} |")
    fails = [r for r in results if r.status not in ("ok",) and not r.status.startswith("unavailable")]
    if fails:
        md += ["", "Failures:", ""] + [f"- {r.impl.label} {r.impl.neuron} T={r.T} {r.dtype}: {r.status}" for r in fails]
    firsts = [r for r in results if r.first_s is not None]
    if firsts:
        md += ["", "First (warmup) call in seconds, excluded from timing; includes torch.compile for SJ "
                   "inductor rows and, on CUDA, for ours fused (Inductor above 2^20 elements; on the CPU "
                   "its C++ kernel is built before any timing): " +
               ", ".join(f"{r.impl.label}/{r.impl.neuron} T={r.T}: {r.first_s:.1f}" for r in firsts)]
    mism = [r for r in results if r.mismatch]
    md += ["", "Output check at the benchmark shape (fraction of output elements differing from ours "
               "torch; SJ uses `>=` and `(1-1/tau)V` in place of `>` and `0.25 V`, so rare threshold ties "
               "and last-bit rounding differ): " +
           (", ".join(f"{r.impl.label}/{r.impl.neuron} T={r.T}: {r.mismatch:.2g}" for r in mism) or "all identical")]
    if check_lines:
        md += ["", "## Equivalence check (tiny shape, eager rows vs ours torch with the same gradient definition)", "",
               "| neuron | implementation | ours reference | max abs diff out | max abs diff grad_x | |",
               "|---|---|---|---|---|---|", *check_lines]
    text = "\n".join(md) + "\n"
    write_atomic(stem.with_suffix(".md"), text)
    return text


# ------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, nargs="+", default=None, help="time steps (default 4 8 16 32)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 64)")
    p.add_argument("--features", type=int, nargs="+", default=None, help="neurons per sample (default 64 32 32)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", dest="dtypes", nargs="+", choices=sorted(DTYPES), default=None,
                   help="default fp32 on CPU, fp32 fp16 on CUDA")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats, median reported (default 5)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 1 CPU, 3 CUDA)")
    p.add_argument("--neurons", nargs="+", default=["lif"], help="zoo neuron names (default lif)")
    p.add_argument("--frameworks", nargs="+", default=["zoo", "spikingjelly", "snntorch"])
    p.add_argument("--quick", action="store_true", help="tiny shape smoke test, writes *_quick files")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile (inductor) rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--no-check", action="store_true", help="skip the tiny equivalence check")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--peak-gbps", type=float, default=None,
                   help="device peak memory bandwidth for the floor column (default: H100 3350, H200 4800)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.T = args.T or [4, 8]
        args.batch = args.batch or 2
        args.features = args.features or [4, 8, 8]
        args.repeats = args.repeats or 2
    args.T = args.T or [4, 8, 16, 32]
    args.batch = args.batch or 64
    args.features = args.features or [64, 32, 32]
    args.repeats = args.repeats or 5
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    args.dtypes = args.dtypes or (["fp32", "fp16"] if device.type == "cuda" else ["fp32"])
    args.warmup = max(1, args.warmup or (3 if device.type == "cuda" else 1))
    if device.type == "cuda" and args.peak_gbps is None:
        name = torch.cuda.get_device_name(device)
        args.peak_gbps = next((v for k, v in PEAK_GBPS.items() if k in name), None)

    compile_ok = "skipped (--no-compile)" if args.no_compile else None
    # One compiled graph per (row, T): stay below dynamo's recompile limit (reset after each row).
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
    impls = [i for i in all_impls(args.neurons, device, compile_ok) if i.framework in args.frameworks]
    info = machine_info(device, args)
    mem_check = verify_cpu_peak_method() if device.type == "cpu" and not args.no_memory else "n/a"
    print(f"CPU peak-memory method: {mem_check}", flush=True)

    check_lines = []
    if not args.no_check:
        check_lines = check_equivalence(impls, device, DTYPES[args.dtypes[0]])
        print("\n".join(check_lines), flush=True)

    import zoo.neurons as zn

    results: list[Result] = []
    n_avail = sum(1 for i in impls if not i.unavailable)
    per_input = n_avail * (args.warmup + args.repeats + (0 if args.no_memory else 1))
    bar = tqdm(total=per_input * len(args.dtypes) * len(args.T), desc="neuron_speed", unit="call",
               dynamic_ncols=True)
    for dtype_name in args.dtypes:
        args.dtype_name = dtype_name
        for T in args.T:
            gc.collect()
            gen = torch.Generator().manual_seed(T)
            shape = (T, args.batch, *args.features)
            x = torch.randn(shape, generator=gen).to(device, DTYPES[dtype_name])
            grad = torch.randn(shape, generator=gen).to(device, DTYPES[dtype_name])
            refs = {}
            for neuron in dict.fromkeys(i.neuron for i in impls):  # reference output: ours torch
                try:
                    with torch.no_grad():
                        torch.manual_seed(0)
                        refs[neuron] = zn.create(neuron, backend="torch").to(device)(x)
                except Exception:  # noqa: BLE001
                    refs[neuron] = None
            results += measure_all(impls, x, grad, device, args, refs, bar)
            del x, grad, refs
    bar.close()
    for r in results:
        if r.status != "ok" and not r.status.startswith("unavailable"):
            print(f"{r.impl.label} {r.impl.neuron} T={r.T} {r.dtype}: {r.status}")

    text = write_outputs(results, impls, args.T, device, args, info, check_lines, mem_check,
                         time.perf_counter() - start)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
