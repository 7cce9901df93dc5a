#!/bin/sh
# Installs the Debian packages in scripts/packages.txt that are missing. As root it runs
# apt-get; otherwise it prints the command to run.
set -eu
here=$(dirname "$0")
missing=""
for p in $(grep -v '^#' "$here/packages.txt"); do
    case "$p" in
    *:*)
        command -v "${p%%:*}" >/dev/null 2>&1 || missing="$missing ${p#*:}" ;;
    *)
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $p" ;;
    esac
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi
echo "deps: missing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root:  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
