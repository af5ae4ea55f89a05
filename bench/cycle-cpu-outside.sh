#!/usr/bin/env bash
# The CPU time (user+sys, ms) of the attach + detach cycle's processes, a
# figure the machine's load moves less than wall time: the attach CLI, the
# card (read from /proc/PID/stat once attached: its start, the unwrap, the
# mount) and the detach CLI. Builds alternate cycle by cycle, each on a fresh
# home of its own. Needs root.
#   bash bench/cycle-cpu-outside.sh RUNS KMSVOL_BIN [KMSVOL_BIN ...]
set -euo pipefail
runs=$1; shift
tck=$(getconf CLK_TCK)
bins=("$@"); homes=()
for b in "${bins[@]}"; do h=$(mktemp -d /tmp/kmsvol-cycle-cpu.XXXXXX); k=$(KMSVOL_HOME=$h node $b kms create-key --query KeyMetadata.KeyId --output text); KMSVOL_HOME=$h node $b ec2 create-volume --size 1 --encrypted --kms-key-id $k --query VolumeId --output text > $h/vol; homes+=("$h"); done
for ((r=0;r<runs;r++)); do for i in "${!bins[@]}"; do b=${bins[$i]}; h=${homes[$i]}; v=$(cat $h/vol)
  a=$( { /usr/bin/time -f '%U %S' env KMSVOL_HOME=$h node $b ec2 attach-volume --volume-id $v >/dev/null; } 2>&1 | awk '{print int(($1+$2)*1000)}')
  pid=$(pgrep -f "card/main.js $v")
  c=$(awk -v t=$tck '{print int(($14+$15)*1000/t)}' /proc/$pid/stat)
  d=$( { /usr/bin/time -f '%U %S' env KMSVOL_HOME=$h node $b ec2 detach-volume --volume-id $v >/dev/null; } 2>&1 | awk '{print int(($1+$2)*1000)}')
  echo "$b attachCLI $a card $c detachCLI $d"
done; done
for h in "${homes[@]}"; do rm -rf "$h"; done
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
