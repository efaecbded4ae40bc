#!/usr/bin/env bash
# Serves the demo: www/ and the built package on http://127.0.0.1:8080, the upload API on
# http://localhost:8081 (another origin, so every demo upload is cross-origin). Ctrl-C stops it.
#   PAGE_PORT=9080 API_PORT=9081 scripts/demo.sh   (or `make demo PAGE_PORT=9080 API_PORT=9081`)
# picks other ports; API_PORT defaults to PAGE_PORT + 1. With TLS=1 (`make demo TLS=1`) both are
# served over HTTPS (HTTP/2) with a certificate made at start. Extra arguments go to
# server-fixture (e.g. --link rtt=100,up=20,down=50).
# When moto's S3 server is installed (scripts/ensure-tools.sh puts it in .tools/moto-venv), the
# demo also runs it as a local S3 store (on STORE_PORT, default a free port) with the fixture's S3
# signing role, so the page's Protocol switch offers 's3' (direct to the bucket). S3=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
page_port="${PAGE_PORT:-8080}"
[[ "$page_port" =~ ^[0-9]+$ ]] || { echo "demo: PAGE_PORT must be a port number, got '$page_port'" >&2; exit 2; }
# Port 0 (any free port) for the page means any free port for the API too.
api_port="${API_PORT:-$((page_port == 0 ? 0 : page_port + 1))}"
[[ "$api_port" =~ ^[0-9]+$ ]] || { echo "demo: API_PORT must be a port number, got '$api_port'" >&2; exit 2; }
data="${DEMO_DATA_DIR:-$PWD/.demo-data}"
mkdir -p "$data"
s3_flags=()
moto="${MOTO_SERVER_BIN:-$PWD/.tools/moto-venv/bin/moto_server}"
if [ "${S3:-1}" != 0 ] && [ -x "$moto" ]; then
  store_port="${STORE_PORT:-$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')}"
  [[ "$store_port" =~ ^[0-9]+$ ]] || { echo "demo: STORE_PORT must be a port number, got '$store_port'" >&2; exit 2; }
  # The bucket's own CORS rule (set by the page through the fixture) is what the browser sees.
  # scripts/moto-server.py: moto, with the bucket's rule applied to form POSTs (s3-post) as S3 does.
  MOTO_DISABLE_GLOBAL_CORS=true "$(dirname "$moto")/python3" scripts/moto-server.py -H 127.0.0.1 -p "$store_port" >"$data/moto.log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  trap 'exit 130' INT TERM
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$store_port") 2>/dev/null && break
    kill -0 "$moto_pid" 2>/dev/null || { echo "demo: moto did not start (see $data/moto.log); S3=0 runs the demo without it" >&2; exit 1; }
    sleep 0.1
  done
  s3_flags=(--s3-endpoint "http://127.0.0.1:$store_port" --s3-bucket demo)
fi
scheme=http
tls_flag=()
if [ "${TLS:-0}" = 1 ]; then
  scheme=https
  tls_flag=(--tls)
fi
# CORS admits the page origin only (the fixture's default allowlist).
target/debug/server-fixture --www www --mount /pkg=pkg \
  --page-listen "127.0.0.1:$page_port" --api-listen "localhost:$api_port" --data-dir "$data" \
  "${tls_flag[@]}" "${s3_flags[@]}" "$@" |
{
  if ! read -r urls; then
    # The fixture exited before printing its URLs; its own message (above) says why.
    echo "demo: the server did not start. If port $page_port or $api_port is in use, pick free ones:" >&2
    echo "demo:   make demo PAGE_PORT=9080 API_PORT=9081   (or PAGE_PORT=… API_PORT=… scripts/demo.sh)" >&2
    exit 1
  fi
  field() { node -e 'const v = JSON.parse(process.argv[1]); console.log(process.argv[2].split(".").reduce((o, k) => o?.[k], v) ?? "")' "$urls" "$1"; }
  page="$(field page)"
  api="$(field api)"
  token="$(field control_token)"
  # The page assumes its API at <its own scheme>://localhost:<its own port + 1>; any other API
  # goes in ?api=.
  page_url="$(node -e '
    const { page, api } = JSON.parse(process.argv[1]);
    const u = new URL(page);
    const usual = `${u.protocol}//localhost:${Number(u.port) + 1}`;
    console.log(api === usual ? `${page}/` : `${page}/?api=${api}`);' "$urls")"
  echo
  echo "  demo page : $page_url"
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
  if [ "${#s3_flags[@]}" -gt 0 ]; then
    echo "  direct to S3: moto at http://127.0.0.1:$store_port, bucket 'demo' (Protocol: s3 on the page; log in $data/moto.log)"
  elif [ "${S3:-1}" = 0 ]; then
    echo "  direct to S3: off (S3=0)"
  else
    echo "  direct to S3: off (moto is not installed: scripts/ensure-tools.sh installs it)"
  fi
  echo "  Ctrl-C stops the server."
  echo
  cat
}
