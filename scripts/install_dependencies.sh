#!/usr/bin/env bash
# Installs what blipcpp builds, tests and benchmarks with, from Debian's
# packages (Debian 12 "bookworm"). Run as root (or through sudo).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo "$0" "$@"; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  cmake make g++ pkg-config ca-certificates curl python3 \
  libeigen3-dev libstb-dev doctest-dev libbenchmark-dev nlohmann-json3-dev \
  libopenblas-dev \
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev \
  pybind11-dev python3-dev python3-numpy python3-pil "$@"
