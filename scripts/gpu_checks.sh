#!/usr/bin/env bash
# The checks that need a GPU, in one go: the whole test suite (slow tests too) on one GPU, then
# the benchmarks in fp32 and bf16. Usage: scripts/gpu_checks.sh OUTDIR (logs, JSON lines).
#
# The suite runs with pytest-xdist (4 workers, one test file per worker) and without
# preallocating GPU memory, so the workers share the GPU. Tests that fail under JAX's default
# matmul precision (TF32 on NVIDIA GPUs since Ampere) are rerun at "highest" precision, so the
# log tells a TF32 difference from a real failure.
#
# Measured on one H100 (2026-11-26; jax 0.11.2 with CUDA 13, flax 0.12.10, Python 3.12; grain,
# TFDS and ml_collections carried as wheels): of 261 tests 245 passed in 5 min 21 s, the
# Chromium test skipped (no browser there), 15 failed, for reasons since fixed:
#   - 3 fp32 tests compare two computations at 1e-5: they ask for "highest" precision now (the
#     exact_fp32_matmuls fixture), as NVIDIA GPUs run fp32 matmuls in TF32 by default;
#   - bf16 cache-vs-forward logits differed by 2.3e-2 (1e-4 on the CPU): off the CPU that
#     tolerance is 3e-2, 4 bf16 steps at the logits' size; on the CPU it stays 1e-3;
#   - the refusal of sequential bf16 training is the CPU's: its test runs on CPU devices;
#   - a second train.py on a live workdir could be told "config differs" rather than "in use"
#     (a race): the lock is checked before anything else now;
#   - 8 tests lacked a package on that machine (grain's portpicker).
# A rerun of those 24 tests after the fixes: 24 passed in 75 s. The fp32 benchmark figures of
# that run are in benchmarks/sampling.py and train_step.py; the bf16 ones were not reached
# (the session's device time ran out).
set -uo pipefail
out=${1:?usage: scripts/gpu_checks.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py -c "import sys, jax, flax; print(sys.version.split()[0], 'jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
} 2>&1 | tee "$out/environment.txt"

start=$(date +%s)
$py -m pytest -m '' -n 4 --dist loadfile -rfEs --junitxml="$out/tests.xml" 2>&1 | tee "$out/tests.log"
echo "suite: $(( $(date +%s) - start )) s" | tee -a "$out/tests.log"
JAX_DEFAULT_MATMUL_PRECISION=highest $py -m pytest -m '' --lf --lfnf=none -n 4 --dist loadfile -rfE \
  2>&1 | tee "$out/tests-highest-precision.log"

for dtype in float32 bfloat16; do
  $py -m benchmarks.sampling --dtype=$dtype --decoders=kv_cache,no_cache
  $py -m benchmarks.train_step --dtype=$dtype
  $py -m benchmarks.nar --dtype=$dtype
done 2>&1 | tee "$out/benchmarks.log"
