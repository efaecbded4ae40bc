#!/usr/bin/env bash
# Serves the demo: www/ and the built package on http://127.0.0.1:8080, the upload API on
# http://localhost:8081 (another origin, so every demo upload is cross-origin). Ctrl-C stops it.
#   PAGE_PORT=9080 API_PORT=9081 scripts/demo.sh   (or `make demo PAGE_PORT=9080 API_PORT=9081`)
# picks other ports; API_PORT defaults to PAGE_PORT + 1. Extra arguments go to server-fixture.
set -euo pipefail
cd "$(dirname "$0")/.."
page_port="${PAGE_PORT:-8080}"
[[ "$page_port" =~ ^[0-9]+$ ]] || { echo "demo: PAGE_PORT must be a port number, got '$page_port'" >&2; exit 2; }
# Port 0 (any free port) for the page means any free port for the API too.
api_port="${API_PORT:-$((page_port == 0 ? 0 : page_port + 1))}"
[[ "$api_port" =~ ^[0-9]+$ ]] || { echo "demo: API_PORT must be a port number, got '$api_port'" >&2; exit 2; }
data="${DEMO_DATA_DIR:-$PWD/.demo-data}"
mkdir -p "$data"
# CORS admits the page origin only (the fixture's default allowlist).
target/debug/server-fixture --www www --mount /pkg=pkg \
  --page-listen "127.0.0.1:$page_port" --api-listen "localhost:$api_port" --data-dir "$data" "$@" |
{
  if ! read -r urls; then
    # The fixture exited before printing its URLs; its own message (above) says why.
    echo "demo: the server did not start. If port $page_port or $api_port is in use, pick free ones:" >&2
    echo "demo:   make demo PAGE_PORT=9080 API_PORT=9081   (or PAGE_PORT=… API_PORT=… scripts/demo.sh)" >&2
    exit 1
  fi
  api="$(node -e 'console.log(JSON.parse(process.argv[1]).api)' "$urls")"
  token="$(node -e 'console.log(JSON.parse(process.argv[1]).control_token)' "$urls")"
  # The page assumes its API at http://localhost:<its own port + 1>; any other API goes in ?api=.
  page_url="$(node -e '
    const { page, api } = JSON.parse(process.argv[1]);
    const usual = `http://localhost:${Number(new URL(page).port) + 1}`;
    console.log(api === usual ? `${page}/` : `${page}/?api=${api}`);' "$urls")"
  echo
  echo "  demo page : $page_url"
  echo "  upload API: $api/upload   (cross-origin)"
  echo "  fixture controls: the demo page, or curl -H 'x-fixture-token: $token' $api/__fixture/stats"
  echo "  uploads land in $data/files"
  echo "  Ctrl-C stops the server."
  echo
  cat
}
