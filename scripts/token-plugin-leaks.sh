#!/usr/bin/env bash
# The LUKS2 token plugin under AddressSanitizer and LeakSanitizer across N
# opens in one process (test/helpers/token-open.c), for the closing note's
# 1,000-open figure (the suite's valgrind test runs 20). Exit 0: every open
# unlocked a keyslot and nothing leaked; 99: ASan or LSan found something.
#   usage (root; the helper installed by `kmsvol luks install-token-plugin`):
#     scripts/token-plugin-leaks.sh IMAGE [N]
set -euo pipefail
img=$1
n=${2:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
asan=(-O1 -g -fsanitize=address -fno-omit-frame-pointer)
cc "${asan[@]}" -fPIC -shared -o "$tmp/libcryptsetup-token-kmsvol.so" "$root/native/token/kmsvol-token.c" \
  -Wl,--version-script="$root/native/token/kmsvol-token.map" -lcryptsetup -ljson-c
cc "${asan[@]}" -o "$tmp/token-open" "$root/test/helpers/token-open.c" -lcryptsetup
# The ASan build takes the installed plugin's place only inside a private mount namespace.
unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1" /usr/lib/x86_64-linux-gnu/cryptsetup &&
  ASAN_OPTIONS=detect_leaks=1:exitcode=99 exec "$1/token-open" "$2" "$3"' sh "$tmp" "$img" "$n"
