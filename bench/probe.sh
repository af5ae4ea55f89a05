#!/usr/bin/env bash
# An independent check of the e2e bench, in plain bash and fio: nothing of
# bench/ is used, only the kmsvol CLI to attach (as a user does).
#   sudo bash bench/probe.sh [REPS] [WORKDIR]   (default 3, /var/tmp/kmsvol-probe)
# Per repetition, the three targets in turn (kmsvol loop + ext4, plain loop +
# ext4, gocryptfs): 768 MiB sequential write (psync, 1 MiB, end_fsync), then
# the page cache dropped, then the sequential read of that file. Each figure
# is printed with the load average and the steal time over the job.
set -euo pipefail
reps=${1:-3}
work=${2:-/var/tmp/kmsvol-probe}
here=$(cd "$(dirname "$0")/.." && pwd)
kv() { KMSVOL_HOME="$work/home" node "$here/bin/kmsvol.js" "$@"; }
rm -rf "$work" && mkdir -p "$work" && chmod 700 "$work"
vol='' plainloop=''
cleanup() {
  set +e
  for m in "$work/m-kmsvol" "$work/m-plain"; do mountpoint -q "$m" && umount "$m"; done
  mountpoint -q "$work/g-plain" && umount "$work/g-plain"
  [[ -n $plainloop ]] && losetup -d "$plainloop"
  [[ -n $vol ]] && kv ec2 detach-volume --volume-id "$vol" --force >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
steal() { awk '/^cpu /{print $9}' /proc/stat; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
key=$(kv kms create-key --query KeyMetadata.KeyId --output text)
vol=$(kv ec2 create-volume --size 2 --encrypted --kms-key-id "$key" --query VolumeId --output text)
dev=$(kv ec2 attach-volume --volume-id "$vol" --loop --query LoopDevice --output text)
mkdir "$work/m-kmsvol" "$work/m-plain" "$work/g-cipher" "$work/g-plain"
mkfs.ext4 -q "$dev" && mount "$dev" "$work/m-kmsvol"
truncate -s 2G "$work/plain.img"
plainloop=$(losetup --find --show "$work/plain.img")
mkfs.ext4 -q "$plainloop" && mount "$plainloop" "$work/m-plain"
gocryptfs -q -init -extpass 'echo probe' -scryptn 10 "$work/g-cipher"
gocryptfs -q -nosyslog -extpass 'echo probe' "$work/g-cipher" "$work/g-plain" </dev/null >/dev/null 2>&1
job() { # target dir rw
  local s0 out
  s0=$(steal)
  out=$(fio --output-format=terse --terse-version=3 --name=p --filename="$2/f" --ioengine=psync --bs=1M --size=768M --rw="$3" --end_fsync=1)
  # terse v3: field 7 read bw KiB/s, field 48 write bw KiB/s
  awk -F';' -v t="$1" -v rw="$3" -v st="$(($(steal) - s0))" -v la="$(cut -d' ' -f1 /proc/loadavg)" \
    '{bw = (rw == "read") ? $7 : $48; printf "%s %-6s %-6s %6d MiB/s  load %s  steal %d ticks\n", strftime("%T"), t, rw, bw / 1024, la, st}' <<<"$out"
}
for r in $(seq "$reps"); do
  for t in kmsvol plain gocryptfs; do
    case $t in kmsvol) d=$work/m-kmsvol ;; plain) d=$work/m-plain ;; gocryptfs) d=$work/g-plain ;; esac
    rm -f "$d/f"
    drop
    job "$t" "$d" write
    drop
    job "$t" "$d" read
  done
done
