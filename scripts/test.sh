#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a full test run:
# installs the packages, builds (Release for this machine's CPU, -march=native;
# tests + examples + benchmarks) and runs every test with CTest. The fixtures
# and assets are read from ../shared (override with BLIP_FIXTURES_DIR /
# BLIP_ASSETS_DIR); a test whose inputs are absent is reported as skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install_dependencies.sh
cmake -B build -DCMAKE_BUILD_TYPE=Release -DBLIP_NATIVE=ON \
  ${BLIP_FIXTURES_DIR:+-DBLIP_FIXTURES_DIR="$BLIP_FIXTURES_DIR"} ${BLIP_ASSETS_DIR:+-DBLIP_ASSETS_DIR="$BLIP_ASSETS_DIR"}
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
