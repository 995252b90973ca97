#!/usr/bin/env bash
# The GPU size of experiments/diffusion.py (`--config=experiments/diffusion.py:gpu`): 8 layers of
# d_model 512 on 128-byte windows of the English Bible. By default a subset, seed 0 of AR, MDLM
# and BD3 blocks of 4, and the judge, then bits per byte against compute and the samples'
# generative NLL; the train steps side by side first (the families' step costs on this device,
# which the CPU's STEP_COST budgets may not match). With STUDY=full it trains every variant and
# seed of the study and evaluates it all (several times longer).
# Usage: scripts/gpu_diffusion.sh OUTDIR   (PY=... picks the Python; default .venv-gpu, which
# scripts/gpu_checks.sh builds). The run folders go to OUTDIR/runs, logs to OUTDIR/*.log.
#
# The data must be prepared first, on a machine with the SWORD modules (scripts/prepare_data.py;
# about 5 s), and found at $TFDS_DATA_DIR or ~/tensorflow_datasets.
#
# Recorded runs: none yet (no GPU was lent to the sessions that wrote it). Its size was chosen
# for about 10 minutes of the default subset on one H100: an estimate, not a measurement.
set -euo pipefail
source "$(dirname "$0")/step.sh"
study_setup diffusion "$@"
step train-step "$py" -m benchmarks.train_step --study=diffusion --size=gpu --steps=20 --rounds=3
if [ "${STUDY:-subset}" = full ]; then
  step train-all "$py" train.py --config="$config" --workdir="$runs"
  step eval "$py" eval.py --workdir="$runs"
else
  step train-judge "$py" train.py --config="$config" --workdir="$runs" --variant=judge
  for variant in ar mdlm bd3_block4; do
    step "train-$variant" "$py" train.py --config="$config" --workdir="$runs" --variant="$variant" --seed=0
  done
  step eval "$py" eval.py --workdir="$runs" --evaluators=likelihood,learning_curve,quality,speed
fi
grep -E "^\| (ar|mdlm|bd3_block4) \|" "$runs/report/report.md" | head -n 6 || true
echo "[gpu_diffusion] done: $runs/report/index.html"
