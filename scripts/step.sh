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
