#!/usr/bin/env bash
# The end-to-end demo: a throwaway gateway and attacker in two network
# namespaces joined by a veth pair, sentry-xdp on the gateway side, a real nmap
# SYN scan from the attacker. Everything it makes is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (XDP, network namespaces): run \`sudo make demo\`" >&2
  exit 1
fi

id=$$
GW=sxdemo-gw-$id
ATK=sxdemo-atk-$id
export SENTRY_XDP_PIN_ROOT=/sys/fs/bpf/sentry-xdp-demo-$id
export SENTRY_XDP_RUN_DIR=/tmp/sentry-xdp-demo-$id
export SENTRY_XDP_STATE_DIR=/tmp/sentry-xdp-demo-$id-state # its own journal, not the machine's
LOG=$(mktemp /tmp/sentry-xdp-demo-$id.XXXX.log)
CONF=$(mktemp /tmp/sentry-xdp-demo-$id.XXXX.yaml)
DAEMON=

gw() { nsenter --net=/run/netns/$GW "$@"; }
atk() { ip netns exec $ATK "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  [[ -n $DAEMON ]] && kill -TERM $DAEMON 2>/dev/null && wait $DAEMON 2>/dev/null
  [[ -e /run/netns/$GW ]] && gw ./bin/sentry-xdp detach --all >/dev/null 2>&1
  ip netns del $GW 2>/dev/null
  ip netns del $ATK 2>/dev/null
  rm -rf "$SENTRY_XDP_RUN_DIR" "$SENTRY_XDP_STATE_DIR" "$LOG" "$CONF"
}
trap cleanup EXIT INT TERM

say "lab: gateway namespace $GW (198.18.0.1), attacker namespace $ATK (198.18.0.2), no route out"
ip netns add $GW
ip netns add $ATK
ip link add sxgw0 netns $GW type veth peer name sxatk0 netns $ATK
ip -n $GW addr add 198.18.0.1/24 dev sxgw0
ip -n $ATK addr add 198.18.0.2/24 dev sxatk0
for ns in $GW $ATK; do ip -n $ns link set lo up; done
ip -n $GW link set sxgw0 up
ip -n $ATK link set sxatk0 up

# Built-in defaults (PortSentry's "aware" port lists, trigger 0, blocking on),
# with a 20-second ban so the demo can show the ban lapsing too.
echo "ban_ttl: 20s" > "$CONF"

say "sentry-xdp attach sxgw0 --config $CONF   (daemon in the foreground, here in the background)"
nsenter --net=/run/netns/$GW ./bin/sentry-xdp attach sxgw0 --config "$CONF" >"$LOG" 2>&1 &
DAEMON=$!
for _ in $(seq 50); do grep -q 'alerts follow' "$LOG" && break; sleep 0.2; done
cat "$LOG"

say "attacker: ping 198.18.0.1 before the scan"
atk ping -c1 -W1 198.18.0.1 | grep -E 'transmitted'

say "attacker: nmap -sS -p 1,11,15,79,111,119,143 198.18.0.1"
atk nmap -Pn -n -sS -T5 --max-retries 1 --host-timeout 30s --initial-rtt-timeout 100ms --max-rtt-timeout 200ms \
  -p 1,11,15,79,111,119,143 198.18.0.1 | grep -E '^(PORT|[0-9]+/tcp|Nmap done)'

say "daemon output: one alert and one ban for the whole scan"
sleep 0.5
grep attackalert "$LOG"

say "attacker: ping again (dropped in XDP: the scanner is banned)"
atk ping -c2 -W1 198.18.0.1 | grep -E 'transmitted' || true

say "sentry-xdp status"
gw ./bin/sentry-xdp status

say "waiting for the 20 s ban to lapse (enforced by the kernel, logged by the daemon)"
for _ in $(seq 60); do grep -q 'unblocked' "$LOG" && break; sleep 0.5; done
grep unblocked "$LOG"
atk ping -c1 -W1 198.18.0.1 | grep -E 'transmitted'

say "sentry-xdp detach --all, then clean up"
kill -TERM $DAEMON && wait $DAEMON || true
DAEMON=
tail -n1 "$LOG"
gw ./bin/sentry-xdp detach --all
echo "demo done"
