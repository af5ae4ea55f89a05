#!/usr/bin/env bash
# Installs the Debian packages kmsvol's tests and benchmarks use, when missing.
# As root it runs apt-get; otherwise it stops with the exact line to run.
#   usage: scripts/ensure-system-deps.sh [test|bench|all]   (default: test)
set -euo pipefail
want="${1:-test}"

# command -> Debian package
declare -A PKG=(
  [cryptsetup]=cryptsetup-bin
  [mkfs.ext4]=e2fsprogs
  [fsck.ext4]=e2fsprogs
  [losetup]=mount
  [fusermount]=fuse
  [gcore]=gdb
  [fio]=fio
  [fsfreeze]=util-linux
  [clang-format]=clang-format
  [openssl]=openssl
  [jq]=jq
  [useradd]=passwd
  [userdel]=passwd
  [pkill]=procps
  [cc]=gcc
  [pkcs11-tool]=opensc
  [softhsm2-util]=softhsm2
  # The auth conformance sweep runs the AWS CLI and boto3 with their clock off (libfaketime).
  [faketime]=faketime
)
if [[ "$want" == bench || "$want" == all ]]; then
  PKG[gocryptfs]=gocryptfs
fi

missing=()
for cmd in "${!PKG[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$cmd" && ! -x "/sbin/$cmd" ]]; then
    missing+=("${PKG[$cmd]}")
  fi
done
# The real AWS clients the interop tests use are Debian's own, at fixed paths
# (an `aws` or `python3` found first on PATH may be another installation).
if [[ "$want" == test || "$want" == all ]]; then
  [[ -x /usr/bin/aws ]] || missing+=(awscli)
  /usr/bin/python3 -c 'import boto3' >/dev/null 2>&1 || missing+=(python3-boto3)
  /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing+=(python3-pytest)
  # Headers the LUKS2 token plugin (native/token) builds against; valgrind checks it for leaks.
  [[ -e /usr/include/libcryptsetup.h ]] || missing+=(libcryptsetup-dev)
  [[ -e /usr/include/json-c/json.h ]] || missing+=(libjson-c-dev)
  command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
  # The XKS tests: curl's --aws-sigv4 drives kmsvol xks-proxy (Debian's curl, at its fixed path), and the
  # test's own spec-written proxy (test/helpers/xks-spec-proxy.py) does AES-GCM with python3-cryptography.
  [[ -x /usr/bin/curl ]] || missing+=(curl)
  /usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || missing+=(python3-cryptography)
fi
# The PKCS#11 module the AWS_CLOUDHSM key stores use by default (src/hsm/token.ts).
[[ -e /usr/lib/softhsm/libsofthsm2.so ]] || missing+=(softhsm2)
if [[ ! -e /dev/fuse ]]; then
  echo "kmsvol: /dev/fuse is missing; load the module with: modprobe fuse" >&2
  exit 1
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs"
if [[ $(id -u) -ne 0 ]]; then
  echo "kmsvol: missing system packages. Run as root:" >&2
  echo "  $line" >&2
  exit 1
fi
echo "kmsvol: installing $pkgs" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
