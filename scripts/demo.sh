#!/bin/sh
# make demo: VMs -> config -> bootstrap -> Kubernetes -> GitOps synced, in network namespaces.
set -eu
exec /usr/bin/python3 -m tests.e2e.demo
