#!/bin/bash
# PiggyBack on one machine: a local web service, `piggyback serve` and `piggyback forward`,
# all on loopback. Prints the access URL and a curl line that reaches the service through
# the tunnel, then waits for Ctrl+C.
#
#   tests/loopback-demo.sh [BUILD_DIR]      (default: build; built first if needed)
#   tests/loopback-demo.sh --check [BUILD_DIR]
#                                           fetch through the tunnel once, then stop (a test)
set -euo pipefail

check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$top/build}
piggyback=$build/src/piggyback

if [ ! -x "$piggyback" ]; then
	[ -d "$build" ] || meson setup "$build" "$top"
	meson compile -C "$build"
fi

. "$(dirname "${BASH_SOURCE[0]}")/script-helpers.sh" # work, pids, cleanup, wait_line
trap 'exit 0' INT TERM

# The local service: a tiny web site, on a port the kernel picks.
mkdir "$work/site"
echo "Hello from behind the tunnel!" >"$work/site/index.html"
python3 - "$work/site" >"$work/service.log" 2>&1 <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print("service port", server.server_address[1], flush=True)
server.serve_forever()
PY
pids+=($!)
service_port=$(wait_line "$work/service.log" '^service port' | awk '{print $3}')

LC_ALL=C.UTF-8 "$piggyback" serve --port 0 --listen 127.0.0.1 --tunnel-host 127.0.0.1 \
	>"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
ws_url=$(wait_line "$work/serve.out" '^Listening on' | awk '{print $3}')
ws_port=${ws_url##*:}
ws_port=${ws_port%%/*}

LC_ALL=C.UTF-8 "$piggyback" forward --port "$service_port" --host 127.0.0.1 \
	--server "127.0.0.1:$ws_port" >"$work/forward.out" 2>"$work/forward.err" &
pids+=($!)
access=$(wait_line "$work/forward.out" '^Access URL:' | awk '{print $3}')
http_url=$(wait_line "$work/forward.out" '^HTTP URL:' | awk '{print $3}')

cat <<EOT
PiggyBack loopback demo
  local service   http://127.0.0.1:$service_port/  (a Python web server)
  server          piggyback serve --port $ws_port --listen 127.0.0.1 --tunnel-host 127.0.0.1
  client          piggyback forward --port $service_port --server 127.0.0.1:$ws_port

Access URL: $access
Try it:     curl $http_url/
EOT

if [ "$check" = 1 ]; then
	body=$(curl --silent --show-error --max-time 10 "$http_url/")
	if [ "$body" != "Hello from behind the tunnel!" ]; then
		echo "unexpected answer through the tunnel: $body" >&2
		exit 1
	fi
	echo "curl through the tunnel answered: $body"
	exit 0
fi
echo "Press Ctrl+C to stop."
while kill -0 "${pids[@]}" 2>/dev/null; do
	sleep 1
done
echo "a process of the demo ended:" >&2
cat "$work"/*.err >&2
exit 1
