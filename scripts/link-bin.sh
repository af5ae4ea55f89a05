#!/usr/bin/env bash
# Put `kmsvol` on the PATH, as `npm link` does: a symbolic link
# /usr/local/bin/kmsvol (the directory: $KMSVOL_BIN_DIR) to this checkout's
# bin/kmsvol.js, so any new shell finds it after `npm ci && npm start`.
# Idempotent: a link that already points here is left as it is. A file
# that is not a link is never replaced; a directory we cannot write to is
# reported with the command to run. Never fails the start.
set -uo pipefail
# The physical path (pwd -P): the link names the very path checked below,
# never one through a symbolic link another user could retarget.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
dir=${KMSVOL_BIN_DIR:-/usr/local/bin}
target="$root/bin/kmsvol.js"
link="$dir/kmsvol"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "kmsvol: $link exists and is not a link; left as it is. Run $target, or remove $link and run npm start again." >&2
  exit 0
fi
# Precondition: what the link runs is writable only by root or the user who
# links it (docs/threat-model.md, the path rule): every directory from / to
# the checkout is owned by root or by this user, and is not writable by group
# or others (a sticky directory, like /tmp, may be); and so is every file and
# directory the CLI loads: bin/, dist/ (the bundle and its V8 code cache,
# which V8 does not check), native/build/ and node_modules/, symbolic links
# followed (sticky or not: a new file there would be loaded too).
me=$(id -u)
# refuse PATH MODE UID: say why $link is not made, in one line.
refuse() {
  if [ "$3" != 0 ] && [ "$3" != "$me" ]; then
    echo "kmsvol: not linking $link: $1 is owned by uid $3, neither root nor you, so its owner could change what 'kmsvol' runs; move the checkout somewhere owned by you or root (or chown it), then run npm start again." >&2
  else
    echo "kmsvol: not linking $link: $1 is writable by group or others (mode $2), so they could change what 'kmsvol' runs; run chmod go-w '$1' (or chmod -R go-w '$root'), then npm start again." >&2
  fi
  # A link made before, by a run that found the checkout sound, no longer is.
  if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then rm -f "$link"; fi
  exit 0
}
p=$(dirname "$root")
while [ -n "$p" ]; do
  read -r mode uid < <(stat -Lc '%a %u' "$p" 2>/dev/null) || break
  if { [ "$uid" != 0 ] && [ "$uid" != "$me" ]; } || { (( 8#$mode & 8#022 )) && (( !(8#$mode & 8#1000) )); }; then refuse "$p" "$mode" "$uid"; fi
  [ "$p" = / ] && break
  p=$(dirname "$p")
done
loaded=("$root")
for d in bin dist native/build node_modules; do [ -e "$root/$d" ] && loaded+=("$root/$d"); done
# The checkout directory itself (maxdepth 0), then each tree; the first offender.
bad=$({
  find -L "$root" -maxdepth 0 \( -perm /022 -o \( ! -user 0 ! -user "$me" \) \) -print
  find -L "${loaded[@]:1}" \( -perm /022 -o \( ! -user 0 ! -user "$me" \) \) -print 2>/dev/null
} | head -n 1)
if [ -n "$bad" ]; then
  read -r mode uid < <(stat -Lc '%a %u' "$bad" 2>/dev/null)
  refuse "$bad" "${mode:-?}" "${uid:-?}"
fi
if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then exit 0; fi
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  echo "kmsvol: cannot write $dir to put kmsvol on the PATH; run: sudo ln -sfn '$target' '$link'" >&2
  exit 0
fi
ln -sfn "$target" "$link"
echo "kmsvol: $link -> $target (kmsvol is on the PATH in new shells)" >&2
