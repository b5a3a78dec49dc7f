# shellcheck shell=bash
# Sourced by the test and demo scripts that start processes: a work directory, the PIDs
# they start (stopped, and woken first if stopped, when the script exits), and wait_line.

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill -CONT "$pid" 2>/dev/null || true
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# Waits up to 10 s for a line matching the extended regular expression $2 in file $1 and
# prints it.
wait_line() {
	for _ in $(seq 100); do
		if grep -m1 -E -- "$2" "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "no line matching '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}
