#!/usr/bin/env bash
# Serves the demo: www/ and the built package on http://127.0.0.1:8080, the upload API on
# http://localhost:8081 (another origin, so every demo upload is cross-origin). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DEMO_DATA_DIR:-$PWD/.demo-data}"
mkdir -p "$data"
target/debug/server-fixture --www www --mount /pkg=pkg \
  --page-listen 127.0.0.1:8080 --api-listen localhost:8081 \
  --allow-origin http://127.0.0.1:8080 --data-dir "$data" "$@" |
{
  read -r urls
  page="$(node -e 'console.log(JSON.parse(process.argv[1]).page)' "$urls")"
  api="$(node -e 'console.log(JSON.parse(process.argv[1]).api)' "$urls")"
  token="$(node -e 'console.log(JSON.parse(process.argv[1]).control_token)' "$urls")"
  echo
  echo "  demo page : $page/"
  echo "  upload API: $api/upload   (cross-origin)"
  echo "  fixture controls: the demo page, or curl -H 'x-fixture-token: $token' $api/__fixture/stats"
  echo "  uploads land in $data/files"
  echo "  Ctrl-C stops the server."
  echo
  cat
}
