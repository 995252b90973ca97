#!/usr/bin/env bash
# The checks that need a GPU, in one go: the whole test suite (slow tests too) on one GPU, then the benchmarks in fp32
# and bf16. Usage: scripts/gpu_checks.sh OUTDIR (logs and JSON lines go there).
#
# The suite runs with pytest-xdist (4 workers, one test file per worker) and without
# preallocating GPU memory, so the workers share the GPU. Tests that fail under JAX's default
# matmul precision (TF32 on NVIDIA GPUs since Ampere) are rerun at "highest" precision, so the
# log tells a TF32 difference from a real failure.
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
