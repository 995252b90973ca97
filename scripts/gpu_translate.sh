#!/usr/bin/env bash
# The GPU size of experiments/translate.py (`--config=experiments/translate.py:gpu`): the AR
# recipe at a Transformer-base-like size, 3 seeds, then its BLEU ± sem over the seeds, on one
# GPU. With STUDY=full it also distils with beam 4 and trains the students (CMLM raw and
# distilled, GLAT, CTC and MDLM; 3 seeds each at this size) and evaluates the whole table; that
# takes several times longer.
# Usage: scripts/gpu_translate.sh OUTDIR   (PY=... picks the Python; default .venv-gpu, which
# scripts/gpu_checks.sh builds). The run folders go to OUTDIR/runs, logs to OUTDIR/*.log.
#
# The data must be prepared first, on a machine with the SWORD modules (scripts/prepare_data.py;
# about 5 s), and found at $TFDS_DATA_DIR or ~/tensorflow_datasets.
#
# Recorded runs: none yet (no GPU was available to the sessions that wrote it). Its size was
# chosen for about 10 minutes of training for the 3 seeds on one H200: an estimate, not a
# measurement.
set -euo pipefail
source "$(dirname "$0")/step.sh"
study_setup translate "$@"
step train-ar "$py" train.py --config="$config" --workdir="$runs" --variant=ar
if [ "${STUDY:-ar}" = full ]; then
  step distill "$py" distill.py --teacher="$runs/ar/seed_0" --decoder=beam4 \
    --out=runs/translate_gpu_distilled --overwrite
  for variant in cmlm cmlm_distilled glat_distilled ctc_distilled mdlm_distilled; do
    step "train-$variant" "$py" train.py --config="$config" --workdir="$runs" --variant="$variant"
  done
  step eval "$py" eval.py --workdir="$runs"
else
  step eval "$py" eval.py --workdir="$runs" --evaluators=quality,learning_curve
fi
grep -E "^\| ar \|" "$runs/report/report.md" | head -n 3 || true
echo "[gpu_translate] done: $runs/report/index.html"
