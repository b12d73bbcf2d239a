#!/usr/bin/env bash
# Prints what build.sh built: the image's reference and sizes, the Debian packages in it (the
# largest first) and muppet's own files.
# Usage: deploy/image/report.sh OUT VERSION (OUT holding build.sh's oci/ and rootfs.tar)
set -euo pipefail
out=$1 version=$2
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
layers=$(find "$out/oci/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "image: muppet:$version (OCI layout $out/oci, tag $version)"
echo "compressed (the blobs a registry stores): $(mib "$layers")"
echo "unpacked root filesystem: $(mib "$(stat -c %s "$out/rootfs.tar")")"
# One dpkg status stanza a package: "Installed-Size KiB name version" each.
tar -xOf "$out/rootfs.tar" ./var/lib/dpkg/status | awk '
  /^Package: / {name = $2} /^Version: / {version = $2} /^Installed-Size: / {size = $2}
  /^$/ && name != "" {print size, name, version; n++; total += size; name = ""}
  END {if (name != "") {print size, name, version; n++; total += size}
       print total, "TOTAL", n}' | sort -rn | awk '
  $2 == "TOTAL" {printf "Debian packages: %d, %.1f MiB installed; the largest:\n", $3, $1 / 1024;
                 next}
  shown++ < 12 {printf "  %7.1f MiB  %s %s\n", $1 / 1024, $2, $3}'
echo "muppet's files:"
tar -tvf "$out/rootfs.tar" ./usr/local/bin ./usr/local/lib | awk '$1 !~ /^d/ {
  printf "  %7.1f MiB  /%s\n", $3 / 1048576, substr($6, 3)}'
