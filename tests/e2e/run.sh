#!/bin/sh
# End-to-end tests: PXE boots of QEMU VMs in network namespaces. Needs root.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "e2e: needs root (network namespaces, taps, DHCP); run make test as root" >&2
    exit 1
fi
exec /usr/bin/python3 -m unittest ${E2E_TESTS:-tests.e2e.test_dnsmasq tests.e2e.test_pxe tests.e2e.test_boot_paths tests.e2e.test_proxmox_vms tests.e2e.test_deb tests.e2e.test_deb_systemd tests.e2e.test_demo} -v
