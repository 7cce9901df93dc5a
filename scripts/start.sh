#!/bin/sh
# make start: bootd on this machine's loopback, in the foreground, with a one-machine lab
# like examples/minimal (cp-1). Nothing here needs root, a bridge or a LAN: bootd does
# not run dnsmasq, so no machine boots from it for real (make demo does that, in a
# network namespace). Ctrl-C stops bootd.
set -eu
build=${1:-build/release}
state=${STATE_DIR:-build/start}
port=${PORT:-8080}
url="http://127.0.0.1:$port"

if curl -s -o /dev/null --max-time 2 "$url/" 2>/dev/null; then
    echo "start: something already answers on 127.0.0.1:$port; run: make start PORT=<another port>" >&2
    exit 1
fi
mkdir -p "$state"
lab="$state/lab.yaml"
cat > "$lab" <<LAB
# written by make start: examples/minimal moved to loopback (lan.dnsmasq: false, so bootd
# serves HTTP only). For a real LAN start from examples/minimal/lab.yaml.
cluster:
  name: minimal
  talos_version: v1.13.9
lan:
  interface: lo
  dnsmasq: false
  dhcp: full
  subnet: 127.0.0.0/8
  range: [127.0.1.1, 127.0.1.250]
  boot_server: 127.0.0.1
  http_port: $port
machines:
  - name: cp-1
    mac: "52:54:00:12:34:56"
    role: controlplane
    ip: 127.0.0.11
    install_disk: /dev/vda
LAB
# bootd generates cp-1's Talos config from the lab and these cluster secrets
[ -e "$state/secrets.yaml" ] || "$build/bootctl" gen secrets "$lab" >/dev/null

log="$state/bootd.log"
: > "$log"
"$build/bootd" --lab "$lab" --state-dir "$state/state" --listen 127.0.0.1 --port "$port" \
    >>"$log" 2>&1 &
pid=$!
stop() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "start: bootd stopped"
}
trap 'stop; exit 0' INT TERM

# say what runs only once it answers
i=0
until curl -s -o /dev/null --max-time 1 "$url/healthz"; do
    if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 100 ]; then
        echo "start: bootd did not start; its log ($log):" >&2
        cat "$log" >&2
        kill -TERM "$pid" 2>/dev/null || true
        exit 1
    fi
    i=$((i + 1))
    sleep 0.1
done

token="$state/state/admin.token"
cat <<MSG
start: bootd $("$build/bootd" --version | cut -d' ' -f2) is up on $url (pid $pid), on loopback only
       lab $lab (cp-1; no dnsmasq, so nothing boots from it for real: make demo does)
       state $state/state, log $log

Status page: $url/  (sign in with the token: cat $token)
In another terminal:
  curl $url/boot.ipxe
  curl '$url/ipxe?mac=52-54-00-12-34-56&arch=x86_64&platform=efi&uuid='
  BOOTD_URL=$url BOOTD_TOKEN_FILE=$token $build/bootctl machines
  BOOTD_URL=$url BOOTD_TOKEN_FILE=$token $build/bootctl status

cp-1 is held until its Talos image is in the cache: bootd pulls it from Image Factory,
which needs Internet access (or: bootctl image import --lab $lab --state-dir $state/state FILE...).
Ctrl-C stops bootd.
MSG
tail -n +1 -f "$log" --pid="$pid" &
wait "$pid"
rc=$?
echo "start: bootd exited with status $rc; its log: $log" >&2
exit $rc
