#!/bin/sh
# Builds OUT, an initramfs for this host's kernel that enrolls the Secure Boot keys in
# KEYDIR (db.auth, KEK.auth, PK.auth from bootctl gen secureboot) through efivarfs.
set -eu
keys=${1:?usage: enroll.sh KEYDIR OUT}
out=${2:?usage: enroll.sh KEYDIR OUT}
here=$(cd "$(dirname "$0")" && pwd)
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
kver=${kernel#/boot/vmlinuz-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/lib/modules" "$root/keys"
cp /bin/busybox "$root/bin/busybox"
for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
done
f=$(find "/lib/modules/$kver" -name "efivarfs.ko*" | head -n 1)
case "$f" in
"") ;; # built in
*.xz) xz -dc "$f" > "$root/lib/modules/efivarfs.ko" ;;
*.zst) zstd -qdc "$f" > "$root/lib/modules/efivarfs.ko" ;;
*) cp "$f" "$root/lib/modules/efivarfs.ko" ;;
esac
cp "$keys/db.auth" "$keys/KEK.auth" "$keys/PK.auth" "$root/keys/"
install -m 0755 "$here/enroll-init" "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip) > "$out"
