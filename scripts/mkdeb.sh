#!/bin/sh
# make deb: a Debian package of bootd, built with dpkg-deb from what `make install`
# puts under /usr. Depends are read off the binaries' shared libraries (the Debian
# packages that hold them here), plus what bootd runs: dnsmasq and iPXE's binaries.
# usage: scripts/mkdeb.sh BUILD_DIR OUT_DIR
set -eu
build=$1
out=${2:-$build}
version=${VERSION:-$(cat VERSION)}
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/bootd-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

PREFIX=/usr DESTDIR=$stage VERSION=$version scripts/install.sh "$build" >/dev/null
# Debian's layout: stripped binaries (no debug info naming the build tree), gzipped
# man pages, the changelog and copyright in the doc dir
strip --strip-unneeded --remove-section=.comment "$stage/usr/bin/bootd" "$stage/usr/bin/bootctl"
gzip -9n "$stage"/usr/share/man/man*/*
cat > "$stage/usr/share/doc/bootd/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: bootd

Files: *
Copyright: the bootd authors
License: see the bootd source
COPY
printf 'bootd (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- bootd <bootd@localhost>  %s\n' \
    "$version" "$version" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" |
    gzip -9n > "$stage/usr/share/doc/bootd/changelog.gz"

# one package per shared library the binaries load, at the version installed here
libs=$(objdump -p "$stage/usr/bin/bootd" "$stage/usr/bin/bootctl" | awk '/NEEDED/ { print $2 }' | sort -u)
deps=""
for lib in $libs; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|aarch64|AArch64/ { print $NF; exit }')
    [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    # with merged /usr the library may be known to dpkg under /lib or /usr/lib
    pkg=""
    for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        [ -n "$pkg" ] || pkg=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1)
    done
    [ -n "$pkg" ] || { echo "mkdeb: no Debian package holds $lib ($path)" >&2; exit 1; }
    case " $deps " in *" $pkg "*) ;; *) deps="$deps $pkg" ;; esac
done
depends=""
for pkg in $deps; do
    # the upstream version: any Debian 12 point release satisfies it
    v=$(dpkg-query -W -f '${Version}' "$pkg" | sed 's/-[^-]*$//')
    depends="$depends${depends:+, }$pkg (>= $v)"
done
depends="$depends, dnsmasq-base, ipxe"

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CTL
Package: bootd
Version: $version
Architecture: $arch
Maintainer: bootd <bootd@localhost>
Installed-Size: $size
Depends: $depends
Recommends: bash-completion
Section: admin
Priority: optional
Description: network boot and control service for Talos Linux clusters
 bootd takes empty machines (or a lost cluster) to a Talos Linux Kubernetes
 cluster over the network: it runs dnsmasq for DHCP and TFTP, serves iPXE
 scripts, Talos images and per-machine configs, bootstraps the cluster and
 applies a GitOps repository. bootctl is its admin CLI; a status page is
 served at / for the admin or a viewer token.
CTL
echo /etc/default/bootd > "$stage/DEBIAN/conffiles"
# the service is enabled by the user (systemctl enable --now bootd) once /etc/bootd
# holds a lab; the scripts only tell systemd about the unit. DPKG_ROOT is set when the
# package goes into another root (dpkg --root): there is no systemd to tell then.
cat > "$stage/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    mkdir -p "${DPKG_ROOT:-}/etc/bootd"
    chmod 0750 "${DPKG_ROOT:-}/etc/bootd"
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        if systemctl is-active --quiet bootd; then systemctl try-restart bootd || true; fi
    fi
    if [ ! -e "${DPKG_ROOT:-}/etc/bootd/lab.yaml" ]; then
        echo "bootd: put your lab in /etc/bootd/lab.yaml (examples in /usr/share/doc/bootd/examples),"
        echo "       then: systemctl enable --now bootd"
    fi
fi
SH
cat > "$stage/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl stop bootd || true
fi
SH
cat > "$stage/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
    # the state (machines, tokens, image cache) goes with a purge; /etc/bootd is the user's
    rm -rf "${DPKG_ROOT:-}/var/lib/bootd"
fi
SH
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod -R u+rwX,go+rX,go-w "$stage"
mkdir -p "$out"
deb="$out/bootd_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
