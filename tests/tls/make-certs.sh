#!/bin/sh
# Regenerates the throwaway test certificates in this directory (committed, so tests run
# offline and the same everywhere). Self-signed, CA:TRUE, valid for 100 years.
#   server.pem/.key  localhost and 127.0.0.1: the tests' server certificate and its own CA
#   other.pem/.key   other.invalid only: a CA that did not sign server.pem, and a
#                    certificate for the wrong host
#   wildcard.pem/.key *.example.test, example.test and 127.0.0.1: named tunnels over TLS
#   alpha.pem/.key   alpha.example.test only: a local service's own certificate, passed
#                    through by name (serve --sni-port)
#   expired.pem/.key like server.pem, but valid only during 2020 (`openssl req -x509`
#                    cannot back-date a certificate, so `openssl ca -selfsign` signs it)
# The private keys protect nothing: never use them outside the tests.
set -eu
cd "$(dirname "$0")"
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc -days 36500 \
		-subj "/CN=$2" -addext "subjectAltName=$3" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
make_cert server localhost 'DNS:localhost,IP:127.0.0.1'
make_cert other other.invalid 'DNS:other.invalid'
make_cert wildcard example.test 'DNS:*.example.test,DNS:example.test,IP:127.0.0.1'
make_cert alpha alpha.example.test 'DNS:alpha.example.test'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc -subj /CN=localhost \
	-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
	-addext 'basicConstraints=critical,CA:TRUE' -keyout expired.key -out "$tmp/expired.csr" \
	2>/dev/null
touch "$tmp/index"
echo 01 >"$tmp/serial"
printf '%s\n' '[ca]' 'default_ca = ca' '[ca]' "database = $tmp/index" "new_certs_dir = $tmp" \
	"serial = $tmp/serial" 'default_md = sha256' 'policy = any' 'copy_extensions = copy' \
	'unique_subject = no' '[any]' 'commonName = supplied' >"$tmp/ca.cnf"
openssl ca -batch -config "$tmp/ca.cnf" -selfsign -keyfile expired.key -in "$tmp/expired.csr" \
	-out expired.pem -startdate 20200101000000Z -enddate 20210101000000Z -notext 2>/dev/null
