#!/usr/bin/env bash
# Serves the demo: www/ and the built package on http://127.0.0.1:8080, the upload API on
# http://localhost:8081 (another origin, so every demo upload is cross-origin). With TLS=1 both
# are served over HTTPS (HTTP/2) with a certificate made at start. Extra arguments go to the
# fixture (e.g. --link rtt=100,up=20,down=50). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DEMO_DATA_DIR:-$PWD/.demo-data}"
mkdir -p "$data"
scheme=http
tls_flag=()
if [ "${TLS:-0}" = 1 ]; then
  scheme=https
  tls_flag=(--tls)
fi
target/debug/server-fixture --www www --mount /pkg=pkg \
  --page-listen 127.0.0.1:8080 --api-listen localhost:8081 \
  --allow-origin "$scheme://127.0.0.1:8080" --data-dir "$data" "${tls_flag[@]}" "$@" |
{
  read -r urls
  field() { node -e 'const v = JSON.parse(process.argv[1]); console.log(process.argv[2].split(".").reduce((o, k) => o?.[k], v) ?? "")' "$urls" "$1"; }
  page="$(field page)"
  api="$(field api)"
  token="$(field control_token)"
  echo
  echo "  demo page : $page/"
  echo "  upload API: $api/upload   (cross-origin)"
  if [ "$scheme" = https ]; then
    spki="$(field tls.spki_sha256)"
    pem="$(field tls.cert_pem)"
    echo "  HTTPS with a certificate made just now ($pem). To trust it, either:"
    echo "    - start Chromium with --ignore-certificate-errors-spki-list=$spki"
    echo "    - or open $api/__probe and $page/ once and accept the warning on both"
    echo "      (the upload origin too: a cross-origin request cannot show the warning)"
    echo "    - or import $pem into the browser's trusted authorities (it changes at every start)"
    echo "  curl: curl --cacert $pem -H 'x-fixture-token: $token' $api/__fixture/stats"
  else
    echo "  fixture controls: the demo page, or curl -H 'x-fixture-token: $token' $api/__fixture/stats"
  fi
  echo "  uploads land in $data/files"
  echo "  Ctrl-C stops the server."
  echo
  cat
}
