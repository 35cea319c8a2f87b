# Shared by scripts/postgres.sh and scripts/redis.sh (sourced; they run as root).

# remove_marked_dir DIR MARKER SCRIPT: removes DIR only when it is a real folder (not a symlink) that holds MARKER
# (that is, one the script made); anything else there is left alone and stops the script.
remove_marked_dir() {
  local dir=$1 marker=$2 script=$3
  if [ -L "$dir" ]; then
    echo "$script: $dir is a symlink: left alone" >&2
    exit 1
  fi
  if [ -d "$dir" ] && [ -f "$marker" ]; then
    rm -rf --one-file-system "$dir"
  elif [ -e "$dir" ]; then
    echo "$script: $dir was not made by this script (no marker): left alone" >&2
    exit 1
  fi
}

# install_without_starting PACKAGE...: installs Debian packages whose maintainer scripts would start a service,
# with a policy-rc.d that forbids it (any policy already there is put back afterwards).
install_without_starting() {
  local saved=""
  export DEBIAN_FRONTEND=noninteractive
  if [ -e /usr/sbin/policy-rc.d ]; then saved=$(mktemp); cp -p /usr/sbin/policy-rc.d "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  local rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  if [ -n "$saved" ]; then mv -f "$saved" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
  return "$rc"
}
