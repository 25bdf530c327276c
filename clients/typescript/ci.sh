#!/usr/bin/env bash
# CI for the TypeScript SDK and the browser playground, from a fresh machine: installs Chromium when
# it is missing (Debian package; browser downloads are not used), `npm ci`, builds the release server,
# then runs the SDK tests (codec vectors, a real server) and the browser tests. Anything missing is a
# failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "Chromium is missing at $CHROMIUM_PATH; installing the Debian package"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
test -x "$CHROMIUM_PATH" || { echo "no Chromium at $CHROMIUM_PATH" >&2; exit 1; }
export CHROMIUM_PATH

command -v node >/dev/null || { echo "Node.js 20 or later is required" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { echo "Node.js 20 or later is required, found $(node --version)" >&2; exit 1; }

npm ci --no-audit --no-fund
(cd ../.. && cargo build --release --bin skirmish)
export SKIRMISH_BIN="${SKIRMISH_BIN:-${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/release/skirmish}"

npm test
npm run test:browser
