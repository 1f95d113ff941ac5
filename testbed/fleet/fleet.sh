#!/usr/bin/env bash
# A fleet on loopback: one etcd, N socks5d sharing it (store.kind etcd),
# and one haproxy in TCP mode in front, health-checking each instance's
# /ready. Everything listens on 127.0.0.1 only; etcd's data is in DIR.
#
#   fleet.sh [--dir DIR] [--n N] [--front PORT] [--user U --pass P] [--socks5d BIN]
#
# It writes DIR/ports.env (ETCD, FRONT, SOCKS_i, PCTP_i, METRICS_i,
# HAPROXY_STATS), DIR/<name>.pid and DIR/<name>.cmd for etcd, haproxy and
# socks5d-i (so a test can stop one and start it again with the same
# command), then DIR/ready, and waits until SIGTERM/SIGINT (or until the
# process that started it is gone), when it stops everything it started. Admin user: admin / admin-secret (PCTP).
# haproxy sends PROXY protocol v2 (send-proxy-v2) and every socks5d trusts
# it (socks.proxy_protocol.trusted: 127.0.0.1, haproxy's source) when the
# socks5d binary knows that setting; FLEET_PROXY_PROTOCOL=0/1 forces it.
# Clients that reach an instance directly must then come from another
# loopback address (127.0.0.2 and up), as the tests' do.
set -euo pipefail

dir="" n=3 front="" user="bench" pass="bench-secret"
bin="${SOCKS5D:-}"
here="$(cd "$(dirname "$0")" && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --front) front="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --pass) pass="$2"; shift 2 ;;
    --socks5d) bin="$2"; shift 2 ;;
    *) echo "fleet.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in etcd haproxy python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fleet.sh: $tool is missing (Debian: apt-get install etcd-server haproxy python3)" >&2; exit 3; }
done
own_dir=0
if [ -z "$dir" ]; then dir="$(mktemp -d)"; own_dir=1; fi
mkdir -p "$dir"
if [ -z "$bin" ]; then
  bin="$dir/socks5d"
  (cd "$here/../.." && go build -o "$bin" ./cmd/socks5d)
fi

# Free loopback ports: bound at once by one process, then released.
count=$((3 + 3 * n))
read -r -a ports <<<"$(python3 - "$count" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
etcd_port=${ports[0]} etcd_peer=${ports[1]} stats_port=${ports[2]}
[ -n "$front" ] || front=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

pids=()
stop_all() {
  trap - TERM INT EXIT
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$own_dir" = 1 ]; then rm -rf "$dir"; fi
}
trap stop_all TERM INT EXIT

# start NAME CMD...: run CMD in the background, log to DIR/NAME.log.
start() {
  local name="$1"; shift
  printf '%q ' "$@" >"$dir/$name.cmd"
  "$@" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

start etcd etcd --name fleet --data-dir "$dir/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "fleet=http://127.0.0.1:$etcd_peer" --log-level error --logger zap

{
  echo "ETCD=$etcd_port"
  echo "FRONT=$front"
  echo "HAPROXY_STATS=$stats_port"
  echo "N=$n"
} >"$dir/ports.env"

# PROXY protocol: on when this socks5d knows socks.proxy_protocol (auto),
# or as FLEET_PROXY_PROTOCOL=1/0 says.
pp="${FLEET_PROXY_PROTOCOL:-auto}"
if [ "$pp" = auto ]; then
  mkdir -p "$dir/probe"
  printf 'data_dir: %s/probe/data\nsocks: {proxy_protocol: {trusted: ["127.0.0.1/32"]}}\nusers: [{name: a, password: b, role: admin}]\n' "$dir" >"$dir/probe/proxy.yaml"
  if "$bin" -t -c "$dir/probe/proxy.yaml" >/dev/null 2>&1; then pp=1; else pp=0; fi
fi
echo "PROXY_PROTOCOL=$pp" >>"$dir/ports.env"
proxy_yaml=""
send_proxy=""
if [ "$pp" = 1 ]; then
  proxy_yaml="  proxy_protocol: {trusted: [\"127.0.0.1/32\"]}"
  send_proxy="send-proxy-v2"
fi
servers=""
for i in $(seq 1 "$n"); do
  s=${ports[$((3 * i))]} p=${ports[$((3 * i + 1))]} m=${ports[$((3 * i + 2))]}
  mkdir -p "$dir/n$i"
  cat >"$dir/n$i/proxy.yaml" <<YAML
data_dir: $dir/n$i/data
socks:
  address: 127.0.0.1
  port: $s
  drain_timeout: 2s
$proxy_yaml
pctp: {address: 127.0.0.1, port: $p}
metrics: {enabled: true, address: 127.0.0.1, port: $m}
log: {level: INFO}
store:
  kind: etcd
  endpoints: ["127.0.0.1:$etcd_port"]
  prefix: /socks5d/
  dial_timeout: 2s
users:
  - {name: admin, password: admin-secret, role: admin}
  - {name: "$user", password: "$pass", role: basic}
chain:
  - use: limits
  - use: auth
    max_failures: 3
    ban: 5s
  - use: filter
    default: allow
  - use: accounting
  - use: metrics
  - use: connlog
  - use: iobuf
YAML
  { echo "SOCKS_$i=$s"; echo "PCTP_$i=$p"; echo "METRICS_$i=$m"; } >>"$dir/ports.env"
  servers="$servers    server s$i 127.0.0.1:$s $send_proxy check port $m inter 300ms fall 1 rise 2
"
done

cat >"$dir/haproxy.cfg" <<CFG
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend socks
    bind 127.0.0.1:$front
    default_backend fleet
backend fleet
    balance roundrobin
    option httpchk
    http-check send meth GET uri /ready
    http-check expect status 200
$servers
listen stats
    mode http
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /
CFG

# etcd first: the instances refuse to start without it (no local copy yet).
for _ in $(seq 1 100); do
  etcdctl --endpoints "127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
for i in $(seq 1 "$n"); do
  start "socks5d-$i" "$bin" -c "$dir/n$i/proxy.yaml"
done
for i in $(seq 1 "$n"); do
  m=${ports[$((3 * i + 2))]}
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$m/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
start haproxy haproxy -db -f "$dir/haproxy.cfg"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$front") 2>/dev/null && break
  sleep 0.1
done
# haproxy marks servers up after `rise` checks.
sleep 1
touch "$dir/ready"
echo "fleet: $n instances behind 127.0.0.1:$front (etcd 127.0.0.1:$etcd_port; files in $dir)" >&2
# Until a signal, or until the process that started the bed is gone (a
# test binary that was killed): nothing of the bed outlives it.
parent=$PPID
while kill -0 "$parent" 2>/dev/null; do sleep 1 & wait $! || true; done
