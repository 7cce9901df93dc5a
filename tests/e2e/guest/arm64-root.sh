#!/bin/sh
# Unpacks what the arm64 end-to-end tests boot into ROOT: Debian's arm64 kernel (with its
# modules), static busybox and the systemd EFI stub, all from Debian's arm64 packages.
# They cannot be installed on an amd64 host, so they are downloaded with apt-get and
# unpacked with dpkg -x; the arm64 architecture is added to dpkg for that once.
set -eu
root=${1:?usage: arm64-root.sh ROOT}
stamp="$root/.stamp"
if [ -f "$stamp" ]; then
    exit 0
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
fi
kpkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "arm64-root: no arm64 kernel package found (apt-get update?)" >&2; exit 1; }
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 0755 "$debs" # apt's sandbox user writes the downloads
# apt's lock may be held by another apt run for a while: a few tries
tries=0
until (cd "$debs" && apt-get download -q "$kpkg" busybox-static:arm64 systemd-boot-efi:arm64 >/dev/null); do
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { echo "arm64-root: apt-get download failed" >&2; exit 1; }
    sleep 10
done
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
for d in "$debs"/*.deb; do
    dpkg -x "$d" "$root.tmp"
done
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$kpkg" > "$stamp"
