#!/usr/bin/env bash
# Put `kmsvol` on the PATH, as `npm link` does: a symbolic link
# /usr/local/bin/kmsvol (the directory: $KMSVOL_BIN_DIR) to this checkout's
# bin/kmsvol.js, so any new shell finds it after `npm ci && npm start`.
# Idempotent: a link that already points here is left as it is. A file
# that is not a link is never replaced; a directory we cannot write to is
# reported with the command to run. Never fails the start.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${KMSVOL_BIN_DIR:-/usr/local/bin}
target="$root/bin/kmsvol.js"
link="$dir/kmsvol"
if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then exit 0; fi
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "kmsvol: $link exists and is not a link; left as it is. Run $target, or remove $link and run npm start again." >&2
  exit 0
fi
# Precondition: what the link runs is writable only by root or the user who
# links it (docs/threat-model.md, the path rule): every directory from / to
# bin/kmsvol.js, and the file, is owned by root or by this user, and is not
# writable by group or others (a sticky directory, like /tmp, may be).
me=$(id -u)
p=$(realpath -e "$target" 2>/dev/null) || p=""
while [ -n "$p" ]; do
  read -r mode uid < <(stat -Lc '%a %u' "$p" 2>/dev/null) || break
  sticky=$(( 8#$mode & 8#1000 ))
  if [ "$uid" != 0 ] && [ "$uid" != "$me" ]; then
    echo "kmsvol: not linking $link: $p is owned by uid $uid, neither root nor you, so its owner could change what 'kmsvol' runs; move the checkout somewhere owned by you or root (or chown it), then run npm start again." >&2
    exit 0
  fi
  if (( 8#$mode & 8#022 )) && { [ ! -d "$p" ] || [ "$sticky" = 0 ]; }; then
    echo "kmsvol: not linking $link: $p is writable by group or others (mode $mode), so they could change what 'kmsvol' runs; run chmod go-w '$p' (or move the checkout), then npm start again." >&2
    exit 0
  fi
  [ "$p" = / ] && break
  p=$(dirname "$p")
done
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  echo "kmsvol: cannot write $dir to put kmsvol on the PATH; run: sudo ln -sfn '$target' '$link'" >&2
  exit 0
fi
ln -sfn "$target" "$link"
echo "kmsvol: $link -> $target (kmsvol is on the PATH in new shells)" >&2
