#!/usr/bin/env bash
# Sets up what the tests need (packages, data, the SmolLM2 and Gemma 3 model files), builds, and runs the
# test suite.
# Tests labelled "postgres" run when CHATREC_PG_URL points at a server (.ci/run starts one).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
# A separate assignment, so that a failed fetch stops the script (export would hide its status).
CHATREC_DATA_DIR="$("$ROOT/scripts/fetch-data.sh")"
export CHATREC_DATA_DIR
"$ROOT/scripts/fetch-model.sh" >/dev/null
# Gemma 3 270M (Gemma Terms of Use, printed by the fetch) for the gemma3 runtime's integration test.
"$ROOT/scripts/fetch-model.sh" gemma3-270m >/dev/null
"$ROOT/scripts/build.sh"
cd "${CHATREC_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure -j "${CHATREC_TEST_JOBS:-2}" --timeout 900 "$@"
