#!/usr/bin/env bash
# Where a job's time goes, on the three targets of the e2e bench, from the
# kernel's own counters (bash, fio, perf; nothing of bench/ is used, only the
# kmsvol CLI to attach, as a user does).
#   sudo bash bench/profile.sh JOB [REPS] [WORKDIR]   (default 3, a fresh /var/tmp/kmsvol-profile.XXXXXX;
#        a WORKDIR given must not exist yet: the script makes it and removes it at exit)
#   JOB: randread (cold 4 KiB QD1), warmread (4 KiB QD1 O_DIRECT with everything
#        below cached: the path's own cost), randwrite16 (4 KiB QD16 O_DIRECT;
#        randwrite16cold: the page cache dropped first),
#        smallfiles (the e2e job), seqread (cold 1 MiB), cpout (cold cp of 1 GiB)
#   PERF=1: also a system-wide perf profile of kmsvol's run: CPU by process,
#           and the card's heaviest kernel and user functions (with callees)
#   WAITS=1: also where fio sleeps on kmsvol (sched_switch call chains)
#   KMSVOL_READ_AROUND_KB=N: the card's read-around window (0: off)
# First, how many extents each target's backing file takes on the disk
# (filefrag). Then per repetition, the targets in turn (kmsvol, plain loop, gocryptfs); per run:
# the figure, context switches per operation, reads that reached the disk
# under the work directory per operation and their mean size, the server's
# CPU (the card or the gocryptfs daemon) per operation, and how busy the CPUs
# were.
set -euo pipefail
job=${1:?usage: sudo bash bench/profile.sh randread|warmread|randwrite16|randwrite16cold|smallfiles|seqread|cpout [REPS] [WORKDIR]}
reps=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
# Run as root, the script writes, mounts and finally removes everything below
# its work directory, so it only uses one it made itself (mkdir fails on any
# name that exists, a symbolic link included): never one another user could
# have planted in a world-writable directory, nor one of the caller's.
if [[ -n ${3:-} ]]; then
  work=$3
  if [[ -e $work || -L $work ]]; then
    echo "profile.sh: $work exists; name a WORKDIR that does not exist yet (the script makes it and removes it at exit)" >&2
    exit 2
  fi
  mkdir -m 700 -- "$work"
else
  work=$(mktemp -d /var/tmp/kmsvol-profile.XXXXXX)
fi
kv() { KMSVOL_HOME="$work/home" node "$here/bin/kmsvol.js" "$@"; }
vol='' plainloop=''
cleanup() {
  set +e
  trap '' INT TERM # a second Ctrl-C must not cut the unmounting and detaching short
  for m in "$work/k" "$work/p" "$work/g"; do mountpoint -q "$m" && umount "$m"; done
  [[ -n $plainloop ]] && losetup -d "$plainloop"
  [[ -n $vol ]] && kv ec2 detach-volume --volume-id "$vol" --force >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
# The disk under the work directory, whose counters every run reads (Linux's dev_t: minor bits 0-7 and 20-31).
disk=$(stat -c '%d' "$work")
disk=/sys/dev/block/$(((disk >> 8) & 0xfff)):$(((disk & 0xff) | ((disk >> 12) & 0xfff00)))/stat
if [[ ! -r $disk ]]; then
  echo "profile.sh: $work is on no disk the kernel counts ($disk is missing: tmpfs, overlay, btrfs?); name a WORKDIR on one" >&2
  exit 2
fi
mkdir "$work/k" "$work/p" "$work/g" "$work/gc"
key=$(kv kms create-key --query KeyMetadata.KeyId --output text)
vol=$(kv ec2 create-volume --size 4 --encrypted --kms-key-id "$key" --query VolumeId --output text)
dev=$(kv ec2 attach-volume --volume-id "$vol" --loop --query LoopDevice --output text)
mkfs.ext4 -q "$dev" && mount "$dev" "$work/k"
truncate -s 4G "$work/plain.img"
plainloop=$(losetup --find --show "$work/plain.img")
mkfs.ext4 -q "$plainloop" && mount "$plainloop" "$work/p"
gocryptfs -q -init -extpass 'echo profile' -scryptn 10 "$work/gc"
gocryptfs -q -nosyslog -extpass 'echo profile' "$work/gc" "$work/g" </dev/null >/dev/null 2>&1
card=$(pgrep -f "card/main.js $vol")
gocryptfsd=$(pgrep -f "gocryptfs.*$work/gc" | head -1)
case $job in
  smallfiles) ;;
  cpout) for t in k p g; do head -c 1G /dev/urandom >"$work/$t/cp.bin"; done ;;
  *) for t in k p g; do fio --name=lay --filename="$work/$t/fio.bin" --rw=write --bs=1M --size=768M --end_fsync=1 --ioengine=psync >/dev/null; done ;;
esac
sync

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
fiojob() { # dir args...: prints "ops value" (value: IOPS, or MiB/s for seqread)
  local d=$1; shift
  fio --output-format=json --name=j "$@" | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
ops = j["read"]["total_ios"] + j["write"]["total_ios"]
bw = (j["read"]["bw"] + j["write"]["bw"]) / 1024
iops = j["read"]["iops"] + j["write"]["iops"]
print(ops, round(bw) if "'"$job"'" == "seqread" else round(iops))'
}
run() { # target dir: the job once; prints "ops value"
  local t=$1 d=$2
  case $job in
    randread) cold; fiojob "$d" --filename="$d/fio.bin" --ioengine=psync --rw=randread --bs=4k --size=768M --time_based --runtime=8 ;;
    warmread)
      cat "$d/fio.bin" >/dev/null
      case $t in kmsvol) cat "$work/home/volumes/$vol.img" >/dev/null ;; plain) cat "$work/plain.img" >/dev/null ;; esac
      fiojob "$d" --filename="$d/fio.bin" --ioengine=psync --direct=1 --rw=randread --bs=4k --size=768M --time_based --runtime=5 ;;
    randwrite16cold) cold; fiojob "$d" --filename="$d/fio.bin" --ioengine=libaio --iodepth=16 --direct=1 --rw=randwrite --bs=4k --size=768M --time_based --runtime=8 ;;
    randwrite16) fiojob "$d" --filename="$d/fio.bin" --ioengine=libaio --iodepth=16 --direct=1 --rw=randwrite --bs=4k --size=768M --time_based --runtime=8 ;;
    smallfiles)
      rm -rf "$d/small" && mkdir "$d/small" && sync
      fiojob "$d" --directory="$d/small" --ioengine=psync --nrfiles=2000 --filesize=16k --bs=4k --rw=randrw --file_service_type=random --openfiles=64 --time_based --runtime=8 ;;
    seqread) cold; fiojob "$d" --filename="$d/fio.bin" --ioengine=psync --rw=read --bs=1M --size=768M ;;
    cpout)
      cold
      local t0 t1; t0=$(date +%s%N); cp "$d/cp.bin" "$work/out.bin" && sync "$work/out.bin"; t1=$(date +%s%N); rm -f "$work/out.bin"
      echo "262144 $((1024 * 1000000000 / (t1 - t0)))" ;;
    *) echo "unknown job $job" >&2; exit 2 ;;
  esac
}
unit() { case $job in seqread|cpout) echo MiB/s ;; *) echo IOPS ;; esac; }
cpu() { [[ -n ${1:-} ]] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
measure() { # target dir pid
  local t=$1 d=$2 pid=${3:-} cs0 cs1 r0 s0 r1 s1 c0 c1 a b out
  read -r cs0 < <(awk '/^ctxt/{print $2}' /proc/stat); read -r r0 _ s0 _ < "$disk"; c0=$(cpu "$pid"); read -ra a < <(head -1 /proc/stat)
  out=$(run "$t" "$d")
  read -r cs1 < <(awk '/^ctxt/{print $2}' /proc/stat); read -r r1 _ s1 _ < "$disk"; c1=$(cpu "$pid"); read -ra b < <(head -1 /proc/stat)
  python3 - "$t" "$out" "$cs0" "$cs1" "$r0" "$r1" "$s0" "$s1" "$c0" "$c1" "${a[*]:1:8}" "${b[*]:1:8}" "$(unit)" <<'EOF'
import sys
t, out, cs0, cs1, r0, r1, s0, s1, c0, c1, a, b, unit = sys.argv[1:]
ops, value = map(int, out.split())
d = [y - x for x, y in zip(map(int, a.split()), map(int, b.split()))]
reads = int(r1) - int(r0)
print(f"{t:9} {value:8} {unit:6} ctx switches/op {(int(cs1) - int(cs0)) / ops:5.1f}  disk reads/op {reads / ops:5.2f} ({(int(s1) - int(s0)) / 2 / max(1, reads):6.1f} KiB each)"
      f"  server CPU/op {(float(c1) - float(c0)) * 1e4 / ops:6.1f} us  busy {100 * (sum(d) - d[3] - d[4]) / sum(d):3.0f}% (iowait {100 * d[4] / sum(d):2.0f}%)")
EOF
}
echo "$job, $reps repetitions; card read-around ${KMSVOL_READ_AROUND_KB:-default}; load $(cut -d' ' -f1-3 /proc/loadavg)"
# How the files the job reads lie on the disk: the extents of each target's backing file (e2fsprogs' filefrag).
extents() { filefrag "$@" 2>/dev/null | awk '{n += $(NF - 2)} END {print n + 0}'; }
case $job in smallfiles) ;; *)
  echo "extents of the backing files: kmsvol image $(extents "$work/home/volumes/$vol.img"), plain image $(extents "$work/plain.img"), gocryptfs $(extents "$work"/gc/*)" ;;
esac
for r in $(seq "$reps"); do
  targets=(kmsvol plain gocryptfs)
  for i in 0 1 2; do
    t=${targets[$(((i + r - 1) % 3))]}
    case $t in kmsvol) measure kmsvol "$work/k" "$card" ;; plain) measure plain "$work/p" ;; gocryptfs) measure gocryptfs "$work/g" "$gocryptfsd" ;; esac
  done
done
if [[ ${PERF:-} == 1 ]]; then
  perf record -q -a -g -o "$work/perf.data" -- bash -c "$(declare -f run fiojob cold); job=$job work=$work vol=$vol; run kmsvol $work/k" >/dev/null 2>&1
  echo "CPU by process (kmsvol, system-wide):"
  perf report -i "$work/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -10
  echo "the card's functions, with what they call:"
  perf report -i "$work/perf.data" --children --pid "$card" --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25
fi
if [[ ${WAITS:-} == 1 ]]; then
  perf record -q -e sched:sched_switch -a -g -o "$work/waits.data" -- bash -c "$(declare -f run fiojob cold); job=$job work=$work vol=$vol; run kmsvol $work/k" >/dev/null 2>&1
  echo "where fio sleeps on kmsvol (sleeps, then the call chain):"
  perf script -i "$work/waits.data" --comm fio 2>/dev/null |
    awk '/^fio/{getline; getline; a=$2; getline; b=$2; getline; c=$2; print a" <- "b" <- "c}' | sort | uniq -c | sort -rn | head -6
fi
