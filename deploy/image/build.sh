#!/usr/bin/env bash
# Builds muppet's container image offline, from Debian's packages only:
#   1. a minimal Debian 12 root filesystem (mmdebstrap, essential variant, merged /usr) with the
#      runtime packages of packages.txt;
#   2. muppetd, muppet-worker, muppet-rank, muppetctl and muppet-train in /usr/local/bin, CUDA's
#      runtime library (which no Debian package has) in /usr/local/lib, and the user muppet
#      (65532) owning /var/lib/muppet;
#   3. an OCI image layout (umoci), OUT/oci, tagged with the binaries' version, which podman,
#      skopeo and containerd take: `podman pull oci:OUT/oci:VERSION`.
# OUT/context is the same files as a Docker build context: `docker build -t muppet:VERSION
# OUT/context` builds the equivalent image from Dockerfile on a stock Debian base.
# It prints, and writes to OUT/report.txt, the image's size and contents.
#
# Usage: deploy/image/build.sh [--binaries DIR] [--out DIR]
#   --binaries  a tree holding server/muppetd, worker/muppet-worker, worker/muppet-rank,
#               client/muppetctl and worker/muppet-train (default: bazel builds them; bazel-bin)
#   --out       where the image goes (default: build/image)
# Needs root (mmdebstrap's root mode) and Debian's mirrors; scripts/setup.sh installs the tools.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
binaries="" out=$repo/build/image
while (($#)); do
  case $1 in
    --binaries=*) binaries=${1#*=} ;;
    --out=*) out=${1#*=} ;;
    --binaries | --out) [[ $# -ge 2 ]] || { echo "build.sh: $1 needs a value" >&2; exit 2; }
      [[ $1 == --binaries ]] && binaries=$2 || out=$2; shift ;;
    *) echo "build.sh: unknown argument $1 (--binaries DIR, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
# Paths as given, from the caller's directory; everything else from the repository's root.
[[ -z $binaries ]] || binaries=$(realpath "$binaries")
mkdir -p "$out" && out=$(realpath "$out")
cd "$repo"
readonly PROGRAMS=(server/muppetd worker/muppet-worker worker/muppet-rank client/muppetctl
                   worker/muppet-train)
readonly CUDART=/usr/local/cuda/lib64/libcudart.so.13
if [[ -z $binaries ]]; then
  labels=()
  for program in "${PROGRAMS[@]}"; do labels+=("//${program%/*}:${program##*/}"); done
  bazel build "${labels[@]}" >&2
  binaries=$(bazel info bazel-bin 2>/dev/null)
fi
for program in "${PROGRAMS[@]}"; do
  [[ -x $binaries/$program ]] || { echo "build.sh: $binaries/$program: not built" >&2; exit 1; }
done
[[ -r $CUDART ]] || { echo "build.sh: $CUDART missing (CUDA 13)" >&2; exit 1; }
version=$("$binaries/server/muppetd" --version | awk '{print $NF}')

# The files the image adds to Debian's, staged as the Dockerfile's build context too.
context=$out/context
rm -rf "$out/oci" "$out/rootfs.tar" "$context"
mkdir -p "$context/bin"
for program in "${PROGRAMS[@]}"; do cp "$binaries/$program" "$context/bin/"; done
cp "$CUDART" deploy/image/Dockerfile deploy/image/packages.txt "$context/"

packages=$(grep -v '^#' deploy/image/packages.txt | paste -sd, -)
# Files the image does not need: manuals, documentation but the licences, translations.
mmdebstrap --quiet --mode=root --variant=essential --include="$packages" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook="cp '$context'/bin/* \"\$1/usr/local/bin/\"" \
  --customize-hook="cp '$context'/$(basename "$CUDART") \"\$1/usr/local/lib/\"" \
  --customize-hook='chroot "$1" ldconfig' \
  --customize-hook='echo "muppet:x:65532:65532:muppet:/var/lib/muppet:/usr/sbin/nologin" >> "$1/etc/passwd"' \
  --customize-hook='echo "muppet:x:65532:" >> "$1/etc/group"' \
  --customize-hook='install -d -o 65532 -g 65532 "$1/var/lib/muppet"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
  bookworm "$out/rootfs.tar" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"

umoci init --layout "$out/oci"
umoci new --image "$out/oci:$version"
umoci raw add-layer --image "$out/oci:$version" "$out/rootfs.tar"
umoci config --image "$out/oci:$version" --config.user=65532:65532 \
  --config.workingdir=/var/lib/muppet --config.cmd=muppetd \
  --config.exposedports=7070/tcp --config.exposedports=9464/tcp \
  --config.label="org.opencontainers.image.title=muppet" \
  --config.label="org.opencontainers.image.version=$version"
umoci gc --layout "$out/oci"

deploy/image/report.sh "$out" "$version" | tee "$out/report.txt"
