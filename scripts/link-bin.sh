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
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  echo "kmsvol: cannot write $dir to put kmsvol on the PATH; run: sudo ln -sfn '$target' '$link'" >&2
  exit 0
fi
ln -sfn "$target" "$link"
echo "kmsvol: $link -> $target (kmsvol is on the PATH in new shells)" >&2
