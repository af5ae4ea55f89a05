#!/usr/bin/env bash
# One CLI call as an outsider times it (issue 26: <= 150 ms): plain bash and
# `date +%s%N` around whole processes of `kmsvol kms list-keys`, each build on
# a fresh home of its own, with `node -e 0` (the floor: Node's own start) in
# the same loop. Builds alternate call by call, so they share the load.
#   bash bench/cli-call-outside.sh [RUNS] [KMSVOL_BIN ...]
# RUNS (default 25); KMSVOL_BIN default: this checkout's bin/kmsvol.js. The
# first call of each build is its first on a fresh home (after install),
# and is counted. Prints median and min-max wall time (ms), the CPU time
# (user+sys, ms) the same way, and the load average.
set -euo pipefail
runs=${1:-25}
shift || true
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$here/bin/kmsvol.js")
work=$(mktemp -d /tmp/kmsvol-call-outside.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmds=()
for i in "${!bins[@]}"; do mkdir -m 700 "$work/h$i"; cmds+=("env KMSVOL_HOME=$work/h$i node ${bins[$i]} kms list-keys"); done
cmds+=("node -e 0")
declare -a wall cpu
for ((r = 0; r < runs; r++)); do
  for i in "${!cmds[@]}"; do
    s=$(date +%s%N)
    /usr/bin/time -o "$work/t" -f '%U %S' bash -c "exec ${cmds[$i]}" >/dev/null
    e=$(date +%s%N)
    wall[$i]+="$(( (e - s) / 1000000 )) "
    cpu[$i]+="$(awk '{printf "%d", ($1 + $2) * 1000}' "$work/t") "
  done
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{printf "median %4d  min %4d  max %4d", a[int((NR+1)/2)], a[1], a[NR]}'; }
for i in "${!cmds[@]}"; do
  echo "wall ms: $(echo "${wall[$i]}" | stats) (first ${wall[$i]%% *}) | cpu ms: $(echo "${cpu[$i]}" | stats) | n=$runs | ${cmds[$i]#env KMSVOL_HOME=$work/}"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) CPUs; $(date -u +%FT%TZ))"
