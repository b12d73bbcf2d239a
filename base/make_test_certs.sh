#!/usr/bin/env bash
# Makes throwaway TLS material for tests in DIR (nothing of it is committed): a CA (ca.pem),
# a server certificate for 127.0.0.1 and localhost signed by it (server.pem, server.key), a
# client certificate for the principal "worker-1" (client.pem, client.key), and an unrelated
# CA with its own server certificate (other-ca.pem, other-server.pem, other-server.key).
#   base/make_test_certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "$2" -days 2 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # leaf NAME CA SUBJECT EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile <(printf '%s\n' "$4") -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}
ca ca "/CN=muppet test CA"
leaf server ca "/CN=muppetd" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf client ca "/CN=worker-1" "subjectAltName=DNS:worker-1
extendedKeyUsage=clientAuth"
ca other-ca "/CN=another CA"
leaf other-server other-ca "/CN=muppetd" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
