#!/usr/bin/env bash
# The main job: sets up everything on a fresh Debian 12 machine (packages, build, MovieLens-100K, the built-in
# SmolLM2 model), trains the default recommender and starts the chat server with the built-in LLM.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
# A separate assignment, so that a failed fetch stops the script (export would hide its status).
CHATREC_DATA_DIR="$("$ROOT/scripts/fetch-data.sh")"
export CHATREC_DATA_DIR
"$ROOT/scripts/fetch-model.sh" >/dev/null
"$ROOT/scripts/build.sh"
BIN="${CHATREC_BUILD_DIR:-$ROOT/build}/src/cli/chatrec"
STATE="${CHATREC_HOME:-$HOME/.local/share/chatrec}"
mkdir -p "$STATE"
"$BIN" train --dataset ml-100k --model ease --data-dir "$CHATREC_DATA_DIR" --out "$STATE/movies-ease.model"
exec "$BIN" serve --data-dir "$CHATREC_DATA_DIR" --store "sqlite:$STATE/chatrec.db" --llm builtin \
  --model-file "$STATE/movies-ease.model" --host "${CHATREC_HOST:-127.0.0.1}" --port "${CHATREC_PORT:-8080}" "$@"
