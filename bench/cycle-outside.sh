#!/usr/bin/env bash
# The attach + detach cycle as an outsider times it (issue 30, part 5): plain
# bash and `date +%s%N` around whole `kmsvol` processes, on a fresh home, the
# first cycle (the first call after install) included in the median.
#   bash bench/cycle-outside.sh [RUNS] [KMSVOL_BIN ...]
# RUNS (default 7) cycles per build; each KMSVOL_BIN (default: this checkout's
# bin/kmsvol.js) is timed in turn, cycle by cycle, so builds share the load.
# CLI: `ec2 attach-volume` then `ec2 detach-volume` (which waits for the
# card to be gone), two processes. API: the same two calls through the
# package's Kmsvol class in one node process per build.
# Prints median and min-max (ms) per build and the load average. Needs root.
set -euo pipefail
runs=${1:-7}
shift || true
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$here/bin/kmsvol.js")
work=$(mktemp -d /tmp/kmsvol-cycle-outside.XXXXXX)
trap 'for h in "$work"/h*; do KMSVOL_HOME=$h node "${bins[0]}" ec2 detach-volume --volume-id "$(cat "$h/vol" 2>/dev/null)" --force >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
ms() { echo $(( ($2 - $1) / 1000000 )); }
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{printf "median %4d ms  min %4d  max %4d  (n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
declare -a cli api start
for i in "${!bins[@]}"; do
  h="$work/h$i"; mkdir -m 700 "$h"
  key=$(KMSVOL_HOME=$h node "${bins[$i]}" kms create-key --query KeyMetadata.KeyId --output text)
  KMSVOL_HOME=$h node "${bins[$i]}" ec2 create-volume --size 1 --encrypted --kms-key-id "$key" --query VolumeId --output text > "$h/vol"
done
# CLI: cycle r of every build, then cycle r+1 (interleaved).
for ((r = 0; r < runs; r++)); do
  for i in "${!bins[@]}"; do
    h="$work/h$i"; vol=$(cat "$h/vol")
    s=$(date +%s%N)
    KMSVOL_HOME=$h node "${bins[$i]}" ec2 attach-volume --volume-id "$vol" >/dev/null
    KMSVOL_HOME=$h node "${bins[$i]}" ec2 detach-volume --volume-id "$vol" >/dev/null
    e=$(date +%s%N)
    cli[$i]+="$(ms "$s" "$e") "
  done
done
# API: one node process holds every build's Kmsvol (their homes opened
# first) and alternates them cycle by cycle, printing "go I" before and
# "done I" after each attach + detach; the times are taken here, as the lines
# arrive. Each build's first cycle is its first attach in the process.
homes=() pkgs=()
for i in "${!bins[@]}"; do homes+=("$work/h$i"); pkgs+=("$(cd "$(dirname "${bins[$i]}")/.." && pwd)"); done
while read -r what i; do
  t=$(date +%s%N)
  if [ "$what" = go ]; then start[$i]=$t; elif [ "$what" = done ]; then api[$i]+="$(ms "${start[$i]}" "$t") "; fi
done < <(RUNS=$runs HOMES="${homes[*]}" PKGS="${pkgs[*]}" node --input-type=module -e "
  const homes = process.env.HOMES.split(' '), pkgs = process.env.PKGS.split(' ');
  const fs = await import('node:fs');
  const kvs = [];
  for (const [i, pkg] of pkgs.entries()) kvs.push((await import(pkg + '/dist/index.js')).Kmsvol.open({ home: homes[i] }));
  const vols = homes.map((h) => fs.readFileSync(h + '/vol', 'utf8').trim());
  for (let r = 0; r < Number(process.env.RUNS); r++) {
    for (const [i, kv] of kvs.entries()) {
      fs.writeSync(1, 'go ' + i + '\\n');
      await kv.attachVolume(vols[i]);
      await kv.detachVolume(vols[i]);
      fs.writeSync(1, 'done ' + i + '\\n');
    }
  }
  for (const kv of kvs) await kv.close();")
for i in "${!bins[@]}"; do
  echo "CLI attach+detach  $(echo "${cli[$i]}" | stats)  runs in order, first after install first: [${cli[$i]% }]  ${bins[$i]}"
  echo "API attach+detach  $(echo "${api[$i]}" | stats)  runs in order, first in its process first: [${api[$i]% }]  ${bins[$i]}"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) CPUs; $(date -u +%FT%TZ))"
