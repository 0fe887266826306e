#!/usr/bin/env bash
# Install the Debian packages NeuralOps needs to build, test and run.
# Idempotent: packages already present are skipped; nothing runs apt when all are there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev
  librdkafka-dev kcat
  libmicrohttpd-dev
  libcurl4-openssl-dev
  libfaiss-dev libopenblas-dev liblapack-dev
  libjansson-dev
  libpq-dev postgresql
  libcmocka-dev
  libssl-dev libxxhash-dev
  libsystemd-dev systemd
  libsnappy-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
  wrk prometheus prometheus-alertmanager
  python3 python3-yaml binutils
  chromium nodejs
)
# npm: Debian's package, unless node came with its own npm (as some nodejs builds do)
if ! command -v npm >/dev/null 2>&1; then PKGS+=(npm); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy: all ${#PKGS[@]} packages present"
else
  echo "deploy: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The browser test's one npm dependency (puppeteer-core, which drives the chromium above; it
# downloads no browser of its own), pinned by the committed package-lock.json, into
# tests/browser/node_modules. Reinstalled only when the lock file changed since the last install.
BROWSER_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if ! cmp -s "$BROWSER_DIR/package-lock.json" "$BROWSER_DIR/node_modules/.neuralops-lock" 2>/dev/null; then
  echo "deploy: npm ci in tests/browser"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$BROWSER_DIR/package-lock.json" "$BROWSER_DIR/node_modules/.neuralops-lock"
fi
