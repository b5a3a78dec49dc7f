#!/bin/sh
# Regenerates the throwaway test certificates in this directory (committed, so tests run
# offline and the same everywhere). Self-signed, CA:TRUE, valid for 100 years.
#   server.pem/.key  localhost and 127.0.0.1: the tests' server certificate and its own CA
#   other.pem/.key   other.invalid only: a CA that did not sign server.pem, and a
#                    certificate for the wrong host
# The private keys protect nothing: never use them outside the tests.
set -eu
cd "$(dirname "$0")"
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc -days 36500 \
		-subj "/CN=$2" -addext "subjectAltName=$3" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
make_cert server localhost 'DNS:localhost,IP:127.0.0.1'
make_cert other other.invalid 'DNS:other.invalid'
