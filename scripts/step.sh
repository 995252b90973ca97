# Sourced by the GPU scripts: `step NAME COMMAND...` runs COMMAND into $out/NAME.log, prints one
# summary line prefixed by [$script], and exits on failure with the log's last lines.
step() {
  local name=$1 start=$SECONDS
  shift
  if "$@" >"$out/$name.log" 2>&1; then
    echo "[$script] $name: ok in $((SECONDS - start)) s ($out/$name.log)"
  else
    echo "[$script] $name: FAILED after $((SECONDS - start)) s; last lines of $out/$name.log:"
    tail -n 15 "$out/$name.log"
    exit 1
  fi
}

# `study_setup NAME OUTDIR`: the study scripts' (gpu_NAME.sh) set-up: OUTDIR made and made
# absolute ($out), the repository as the working folder, $py (PY, default .venv-gpu, which
# gpu_checks.sh builds) checked to exist and to see a GPU, $runs and $config for the study's GPU
# size; otherwise one line and exit 1.
study_setup() {
  script=gpu_$1
  [ -n "${2:-}" ] || { echo "usage: scripts/gpu_$1.sh OUTDIR"; exit 1; }
  out=$2
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  py=${PY:-.venv-gpu/bin/python}
  export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
  runs=$out/runs/$1_gpu
  config=experiments/$1.py:gpu
  [ -x "$py" ] || { echo "[$script] no $py: build it (scripts/gpu_checks.sh), or pass PY=..."; exit 1; }
  "$py" -c "import jax; assert jax.default_backend() == 'gpu', jax.devices()" \
    || { echo "[$script] JAX sees no GPU ($py)"; exit 1; }
}
