#!/usr/bin/env bash
# Builds the project's container image from the real Dockerfile, unchanged, on a machine that cannot pull its base
# images (as root, with the system's Docker engine running: scripts/lab-setup.sh starts it):
#   bash scripts/image.sh build [TAG]    # stand-ins for the base images, then `docker build` (default tag netlab-dashboard)
#   bash scripts/image.sh stand-ins      # only the stand-ins
#   bash scripts/image.sh clean          # removes the stand-ins, the image and the root filesystem
# The stand-ins carry the names of the Dockerfile's FROM lines:
#   mcr.microsoft.com/dotnet/sdk:10.0-bookworm-slim     a Debian 12 root filesystem + this machine's .NET SDK folder
#   mcr.microsoft.com/dotnet/aspnet:10.0-bookworm-slim  the same root filesystem + the .NET and ASP.NET Core runtimes only
# The root filesystem is made once by debootstrap (minbase, plus the libraries Microsoft's images install: ICU,
# OpenSSL, zlib, tzdata, CA certificates) from the Debian archive the machine's own apt sources name, under
# artifacts/image/rootfs. The .NET folder is /usr/share/dotnet (as in Microsoft's images, with /usr/bin/dotnet).
# CA certificates this machine adds to Debian's (/usr/local/share/ca-certificates) are added to the stand-ins too, so a
# restore inside the build trusts what the machine trusts. The build runs with --network host (the Dockerfile's
# `dotnet publish` restores from NuGet, its runtime stage installs Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[image] %s\n' "$*" >&2; }
action=${1:?usage: image.sh build [TAG] | stand-ins | clean}
tag=${2:-netlab-dashboard}
base=$PWD/artifacts/image
rootfs=$base/rootfs
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
sdk_image=mcr.microsoft.com/dotnet/sdk:10.0-bookworm-slim
aspnet_image=mcr.microsoft.com/dotnet/aspnet:10.0-bookworm-slim
standin_label=org.netlab.stand-in

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap and docker)" >&2; exit 1; }
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || { echo "the Docker engine does not answer: run scripts/lab-setup.sh first" >&2; exit 1; }

archive() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(http[^ ]*debian\)[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
  [ -n "$uri" ] || { echo "no Debian archive in the machine's apt sources" >&2; exit 1; }
  echo "$uri"
}

make_rootfs() {
  if [ -f "$rootfs/.netlab-complete" ]; then
    say "root filesystem present: $rootfs"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null
  fi
  rm -rf "$rootfs"
  mkdir -p "$base"
  local uri start
  uri=$(archive)
  start=$(date +%s)
  say "debootstrap bookworm (minbase) from $uri into $rootfs"
  debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,tzdata,zlib1g,libstdc++6,libgcc-s1 \
    bookworm "$rootfs" "$uri" >"$base/debootstrap.log" 2>&1 || { tail -20 "$base/debootstrap.log" >&2; exit 1; }
  # As in Microsoft's images: dotnet on PATH, no package lists kept.
  ln -sfn ../share/dotnet/dotnet "$rootfs/usr/bin/dotnet"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    say "added this machine's own CA certificates: $(cd /usr/local/share/ca-certificates && ls -- *.crt | tr '\n' ' ')"
  fi
  touch "$rootfs/.netlab-complete"
  say "root filesystem made in $(( $(date +%s) - start )) s ($(du -sh --exclude=proc "$rootfs" | cut -f1))"
}

# One image from the root filesystem and (part of) the .NET folder, streamed as one tar into `docker import` (the
# transform renames only the second folder's members: the root filesystem has no top-level ./dotnet).
import_standin() {
  local name=$1; shift
  local runtime start fingerprint
  runtime=$(dotnet --list-runtimes | sed -n 's/^Microsoft.AspNetCore.App \([^ ]*\) .*/\1/p' | tail -1)
  # Imported again only when its parts changed: a new image id would void docker build's layer cache.
  fingerprint=$(printf '%s|' "$(stat -c %Y "$rootfs/.netlab-complete")" "$(dotnet --version)" "$runtime" "$dotnet_root" "$@" | sha256sum | cut -c1-16)
  if [ "$(docker image inspect --format '{{index .Config.Labels "'$standin_label'"}}' "$name" 2>/dev/null)" = "$fingerprint" ]; then
    say "stand-in $name present"
    return
  fi
  start=$(date +%s)
  tar -cf - --exclude=./.netlab-complete --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' "$@" \
      -C "$rootfs" . \
      -C "$(dirname "$dotnet_root")" --transform="flags=rh;s,^\./$(basename "$dotnet_root"),./usr/share/dotnet," "./$(basename "$dotnet_root")" \
    | docker import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV DOTNET_RUNNING_IN_CONTAINER=true" \
      --change "ENV DOTNET_VERSION=$runtime" \
      --change "ENV ASPNET_VERSION=$runtime" \
      --change "ENV ASPNETCORE_HTTP_PORTS=8080" \
      --change "ENV NUGET_XMLDOC_MODE=skip" \
      --change "LABEL $standin_label=$fingerprint" \
      --change 'CMD ["bash"]' \
      - "$name" >/dev/null
  say "stand-in $name imported in $(( $(date +%s) - start )) s"
}

stand_ins() {
  make_rootfs
  local label
  for image in "$sdk_image" "$aspnet_image"; do
    if label=$(docker image inspect --format '{{index .Config.Labels "'$standin_label'"}}' "$image" 2>/dev/null) && [ -z "$label" ]; then
      echo "$image exists and is not this script's stand-in; not replacing it" >&2
      exit 1
    fi
  done
  import_standin "$sdk_image"
  import_standin "$aspnet_image" --exclude=./dotnet/sdk --exclude=./dotnet/sdk-manifests --exclude=./dotnet/packs \
    --exclude=./dotnet/templates --exclude=./dotnet/metadata --exclude=./dotnet/library-packs --exclude=./dotnet/shared/Microsoft.WindowsDesktop.App
}

case "$action" in
  stand-ins) stand_ins ;;
  build)
    stand_ins
    start=$(date +%s)
    say "docker build -t $tag . (the Dockerfile unchanged; log: $base/build.log)"
    if ! docker build --network host -t "$tag" . >"$base/build.log" 2>&1; then
      tail -30 "$base/build.log" >&2
      exit 1
    fi
    say "image $tag built in $(( $(date +%s) - start )) s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
    ;;
  clean)
    docker image rm "$tag" 2>/dev/null || true
    for image in "$sdk_image" "$aspnet_image"; do
      if [ -n "$(docker image inspect --format '{{index .Config.Labels "'$standin_label'"}}' "$image" 2>/dev/null)" ]; then
        docker image rm "$image" >/dev/null && say "removed stand-in $image"
      fi
    done
    rm -rf "$base"
    ;;
  *) echo "usage: image.sh build [TAG] | stand-ins | clean" >&2; exit 2 ;;
esac
