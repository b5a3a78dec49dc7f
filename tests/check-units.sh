#!/bin/bash
# SPDX-License-Identifier: ISC
# systemd-analyze verify on the units in data/, with ExecStart= pointing into the build
# tree. It exits 0 on unknown keys and bad values, printing only a complaint, so any output
# fails the check; a control unit with an unknown key proves the check can fail.
# Usage: check-units.sh BINDIR SYSTEM_UNIT.in USER_UNIT.in
set -euo pipefail

bindir=$1
system_unit=$2
user_unit=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/run"
export XDG_RUNTIME_DIR=$tmp/run
n=0
status=0

verify() { # name, then systemd-analyze's options and the unit
	local name=$1 out
	shift
	n=$((n + 1))
	if out=$(systemd-analyze "$@" 2>&1) && [ -z "$out" ]; then
		echo "ok $n - $name"
		return 0
	fi
	echo "not ok $n - $name"
	sed 's/^/# /' <<<"$out"
	return 1
}

echo "1..3"
sed "s|@bindir@|$bindir|g" "$system_unit" >"$tmp/piggyback-serve.service"
sed "s|@bindir@|$bindir|g" "$user_unit" >"$tmp/piggyback-forward.service"
verify "system unit piggyback-serve.service" verify --man=no "$tmp/piggyback-serve.service" ||
	status=1
verify "user unit piggyback-forward.service" --user verify --man=no \
	"$tmp/piggyback-forward.service" || status=1
printf '[Service]\nExecStart=%s/piggyback\nNoSuchKey=yes\n' "$bindir" >"$tmp/control.service"
n=$((n + 1))
if [ -n "$(systemd-analyze verify --man=no "$tmp/control.service" 2>&1)" ]; then
	echo "ok $n - control: a unit with an unknown key is reported"
else
	echo "not ok $n - control: a unit with an unknown key is reported"
	status=1
fi
exit $status
