#!/bin/sh
# make start: bootd on examples/minimal, on loopback, in the foreground.
set -eu
build=${1:-build/release}
state=${STATE_DIR:-build/state}
port=${PORT:-8080}
cat <<MSG
bootd: serving examples/minimal/lab.yaml on http://127.0.0.1:$port (state in $state)

In another terminal:
  curl http://127.0.0.1:$port/boot.ipxe                          # the chain script
  curl 'http://127.0.0.1:$port/ipxe?mac=52-54-00-12-34-56&arch=x86_64&platform=efi'
  BOOTD_URL=http://127.0.0.1:$port BOOTD_TOKEN_FILE=$state/admin.token $build/bootctl machines

cp-1 is held until its Talos image is in the cache: bootd pulls it from Image Factory
(or use \`bootctl image import\` offline). Machines boot from bootd for real in
\`make demo\` (a VM in a network namespace).
Ctrl-C stops bootd.
MSG
# bootd generates the machine's Talos config from lab.yaml and the cluster secrets
[ -e examples/minimal/secrets.yaml ] || "$build/bootctl" gen secrets examples/minimal/lab.yaml
exec "$build/bootd" --lab examples/minimal/lab.yaml --state-dir "$state" --listen 127.0.0.1 --port "$port"
