#!/usr/bin/env bash
# The checks that need a GPU, in one go, from a fresh clone: builds its own venv from the
# project's files (requirements-gpu.txt: a CUDA jax, pytest-xdist, portpicker), then runs the
# whole test suite (slow tests too) on the GPU, then the benchmarks in fp32 and bf16.
# Usage: scripts/gpu_checks.sh OUTDIR   (logs and JSON lines go there; PYTHON=python3.11 to pick)
#
# It stops at the first step that fails, and prints one summary line per step. The suite runs
# in 4 pytest-xdist workers (one test file per worker) without preallocating GPU memory, so the
# workers share the GPU. Tests that fail under JAX's default matmul precision (TF32 on NVIDIA
# GPUs since Ampere) are rerun at "highest" precision, so the log tells a TF32 difference from a
# real failure; the step fails only if a test fails at both precisions.
#
# Recorded runs: none of the current suite yet. The 2026-11-26 H100 run (an older suite, 261
# tests) is described in git history (this file at commit fda2aa6); README "Tests" says what of
# it still stands.
set -uo pipefail
out=${1:?usage: scripts/gpu_checks.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1

script=gpu_checks
source scripts/step.sh

command -v nvidia-smi >/dev/null || { echo "[gpu_checks] no nvidia-smi: not a GPU machine"; exit 1; }
venv=.venv-gpu
py=$venv/bin/python
step venv bash -c "${PYTHON:-python3} -m venv $venv && $py -m pip install -q --upgrade pip \
  && $py -m pip install -q -r requirements-gpu.txt"
step environment bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader && $py -c \"import sys, jax, flax; print(sys.version.split()[0], 'jax', \
  jax.__version__, 'flax', flax.__version__, jax.devices()); assert jax.default_backend() == 'gpu'\""
cat "$out/environment.log"
start=$SECONDS
if $py -m pytest -m '' -n 4 --dist loadfile -rfEs --junitxml="$out/tests.xml" \
  >"$out/tests.log" 2>&1; then
  echo "[gpu_checks] tests: ok in $((SECONDS - start)) s: $(tail -n 1 "$out/tests.log")"
else  # Only the failures run again, at "highest" precision; they decide.
  echo "[gpu_checks] tests: $(tail -n 1 "$out/tests.log"); rerunning the failures"
  step tests-highest-precision env JAX_DEFAULT_MATMUL_PRECISION=highest \
    $py -m pytest -m '' --lf -n 4 --dist loadfile -rfE
fi
for dtype in float32 bfloat16; do
  step "sampling-$dtype" $py -m benchmarks.sampling --dtype=$dtype --decoders=kv_cache,no_cache
  step "train_step-$dtype" $py -m benchmarks.train_step --dtype=$dtype
  step "nar-$dtype" $py -m benchmarks.nar --dtype=$dtype
done
echo "[gpu_checks] all steps passed; logs in $out"
