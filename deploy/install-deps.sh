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
  libsnappy-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
  wrk prometheus prometheus-alertmanager
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "deploy: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
