#!/bin/sh
# Builds the Talos stand-in guest: OUT/kernel and OUT/initramfs (busybox + virtio-net
# modules + init), the files bootd serves as kernel-<arch> and initramfs-<arch>.xz in the
# end-to-end tests and `make demo`. ROOT (default /) is where the kernel, its modules and
# busybox come from: this host, or Debian's arm64 packages unpacked by arm64-root.sh.
set -eu
out=${1:?usage: build.sh OUTDIR [ROOT]}
src=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
kernel=$(ls "$src"/boot/vmlinuz-* | sort -V | tail -n 1)
kver=${kernel#"$src"/boot/vmlinuz-}
stamp="$out/.stamp"
want="$kver $(cat "$here/init" "$here/udhcpc.script" "$0" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/lib/modules"
cp "$src/bin/busybox" "$root/bin/busybox"
# the applet list is the same for both architectures; this host's busybox can print it
for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
done
# modules the kernel has built in are not there, and need no loading
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
         net_failover virtio_net; do
    f=$(find "$src/lib/modules/$kver" -name "$m.ko*" | head -n 1)
    case "$f" in
    "") ;;
    *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
done
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/bin/udhcpc.script"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initramfs.tmp"
cp "$kernel" "$out/kernel.tmp"
mv "$out/initramfs.tmp" "$out/initramfs"
mv "$out/kernel.tmp" "$out/kernel"
echo "$want" > "$stamp"
