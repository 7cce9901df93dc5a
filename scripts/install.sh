#!/bin/sh
# make install: bootd, bootctl, the systemd unit, man pages, bash completion and docs
# under DESTDIR/PREFIX. Nothing installed names the build tree: bootd finds bootctl
# (the dnsmasq lease hook) next to itself, and the unit names PREFIX/bin.
# usage: scripts/install.sh BUILD_DIR   (PREFIX, DESTDIR, VERSION from the environment)
set -eu
build=$1
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
version=${VERSION:-$(cat VERSION)}
bindir=$prefix/bin
# systemd reads units from /usr/lib and /usr/local/lib alike; Debian 12 ships its
# packages' units in /lib
case $prefix in
    /usr) unitdir=${UNITDIR:-/lib/systemd/system} ;;
    *) unitdir=${UNITDIR:-$prefix/lib/systemd/system} ;;
esac
mandir=$prefix/share/man
compdir=$prefix/share/bash-completion/completions
docdir=$prefix/share/doc/bootd

install -d "$dest$bindir" "$dest$unitdir" "$dest$mandir/man1" "$dest$mandir/man5" \
    "$dest$mandir/man8" "$dest$compdir" "$dest$docdir/docs" "$dest/etc/default"
install -m 0755 "$build/bootd" "$build/bootctl" "$dest$bindir/"
sed "s|@BINDIR@|$bindir|g" packaging/bootd.service.in > "$dest$unitdir/bootd.service"
chmod 0644 "$dest$unitdir/bootd.service"
# an edited /etc/default/bootd is the user's: never replaced
[ -e "$dest/etc/default/bootd" ] || install -m 0644 packaging/bootd.default "$dest/etc/default/bootd"
sed "s|@VERSION@|$version|g" packaging/man/bootd.8 > "$dest$mandir/man8/bootd.8"
sed "s|@VERSION@|$version|g" packaging/man/bootctl.1 > "$dest$mandir/man1/bootctl.1"
awk -v version="$version" -f packaging/man/md2man.awk docs/lab-yaml.md > "$dest$mandir/man5/lab.yaml.5"
chmod 0644 "$dest$mandir"/man*/*
install -m 0644 packaging/bash-completion "$dest$compdir/bootctl"
ln -sf bootctl "$dest$compdir/bootd"
install -m 0644 README.md "$dest$docdir/"
install -m 0644 docs/*.md "$dest$docdir/docs/"
if [ -d docs/img ]; then
    install -d "$dest$docdir/docs/img"
    install -m 0644 docs/img/* "$dest$docdir/docs/img/"
fi
cp -R examples "$dest$docdir/"
# an example lab must never carry a secrets bundle made on this machine
find "$dest$docdir/examples" -name 'secrets.yaml' -delete
echo "installed bootd $version under ${dest:-}$prefix"
