#!/bin/bash
# A network change makes `piggyback forward` check its tunnel at once (GNetworkMonitor),
# instead of waiting for the keepalive deadline (here two minutes).
#
# In a network namespace of its own (unshare -rn: a user namespace, no privileges needed):
# serve and forward on its loopback, the server stopped (SIGSTOP: its TCP stays up, it
# answers nothing), then a route added, which is a real network change the kernel reports
# over netlink. The client, with --no-reconnect, must notice and exit within 20 s.
#
#   tests/network-change.sh PIGGYBACK
set -euo pipefail

piggyback=$1
if [ "${2:-}" != --inside ]; then
	if ! unshare -rn true 2>/dev/null; then
		echo "1..0 # SKIP no user and network namespaces here"
		exit 77
	fi
	exec unshare -rn "$0" "$piggyback" --inside
fi

. "$(dirname "${BASH_SOURCE[0]}")/script-helpers.sh" # work, pids, cleanup, wait_line

ip link set lo up
export GIO_USE_NETWORK_MONITOR=netlink NO_COLOR=1
"$piggyback" serve -p 0 -l 127.0.0.1 -H 127.0.0.1 --keepalive 60 >"$work/serve" 2>&1 &
server=$!
pids+=("$server")
port=$(wait_line "$work/serve" "Listening on" | sed 's/.*:\([0-9]*\)\/.*/\1/')
"$piggyback" forward -p 9 -h 127.0.0.1 -s "127.0.0.1:$port" --keepalive 60 --no-reconnect \
	--no-dbus >"$work/forward" 2>&1 &
client=$!
pids+=("$client")
wait_line "$work/forward" "Access URL:" >/dev/null

kill -STOP "$server"
sleep 1
ip route add 10.77.0.0/16 dev lo
start=$(date +%s)
for _ in $(seq 200); do
	kill -0 "$client" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$client" 2>/dev/null; then
	echo "not ok: the client did not notice the network change within 20 s" >&2
	cat "$work/forward" >&2
	exit 1
fi
status=0
wait "$client" || status=$?
echo "# client exited with $status after $(($(date +%s) - start)) s"
grep -q "network changed" "$work/forward" || {
	echo "not ok: the client did not say why" >&2
	cat "$work/forward" >&2
	exit 1
}
[ "$status" = 1 ]
echo "ok"
