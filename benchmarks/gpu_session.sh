#!/usr/bin/env bash
# The checks that only a GPU shows, prepared on the CPU to run in one device call (the flagship and
# directly-trained CIFAR-10 issues, item 5): the Triton neuron kernels compiled on CUDA against the
# reference path, then benchmarks/neuron_speed.py on CUDA with the zoo's backends side by side with
# SpikingJelly (torch, Triton, CuPy) and snnTorch.
#
# Here, once, before the call (the device machine reaches no package index; its image has torch,
# triton, cupy and pytest, not the two frameworks the benchmark compares with):
#   pip download --no-deps -d .whl spikingjelly==2.0.0 snntorch==1.0.0      # .whl/ is git-ignored
# The call (device tool): run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=540)
# Results come back under $OUT: the test log, the benchmark's csv/md and its log.
# A dry run on the CPU (interpreted kernels, a tiny benchmark): DEVICE=cpu QUICK=1 bash benchmarks/gpu_session.sh
#
# Not here: the paper-width training recipes (ds_resnet20 MLF T=4, spiking_resnet19 InfLoR T=2/4 on
# CIFAR-10). Their data cannot travel: the CIFAR-10 training PNGs are 111 MB, and the whole working tree
# that goes to the device machine may be 64 MiB, of which the repository already takes about 51 MB.
set -uo pipefail
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_session_out}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install --no-deps --no-index --quiet .whl/*.whl || status=1
fi
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
fi
"$PYTHON" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())" \
  | tee "$OUT/versions.txt"

# 1. Triton kernels against the reference path (compiled on CUDA; interpreted on the CPU dry run).
timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_triton.py > "$OUT/test_triton.log" 2>&1 || status=1
tail -5 "$OUT/test_triton.log"

# 2. Neuron speed and memory, every framework in one process on the same tensors: T = 8 and 32 of the
#    default 4-32, to leave time for torch.compile's rows (the dry run skips them: inductor takes minutes
#    to compile on the CPU). Its table is written only when it ends: if it is cut off, run it alone.
bench=(--device "$DEVICE" --out-dir "$OUT" --T 8 32)
[ -n "${QUICK:-}" ] && bench=(--device "$DEVICE" --out-dir "$OUT" --quick --no-compile)
timeout 420 "$PYTHON" benchmarks/neuron_speed.py "${bench[@]}" > "$OUT/neuron_speed.log" 2>&1 || status=1
cat "$OUT"/neuron_speed_*.md 2>/dev/null || tail -c 3000 "$OUT/neuron_speed.log"
exit $status
