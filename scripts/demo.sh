#!/bin/sh
# make demo: a VM PXE-boots from bootd (examples/minimal) in a network namespace.
set -eu
exec /usr/bin/python3 -m tests.e2e.demo
