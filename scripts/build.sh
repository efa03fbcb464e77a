#!/usr/bin/env bash
# Configures and builds chatrec (Release, warnings as errors) into build/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${CHATREC_BUILD_DIR:-$ROOT/build}"
JOBS="${CHATREC_JOBS:-$(nproc)}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHATREC_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD" -j "$JOBS"
