#!/usr/bin/env bash
# Drives `chatrec llm-serve` (the built-in runtime and the real SmolLM2 file) with the official OpenAI Python
# client. Exits 77 (ctest: skipped) when the client's virtualenv (scripts/install-deps.sh) or the model file
# (scripts/fetch-model.sh) is absent.
# Usage: run.sh CHATREC_BINARY
set -euo pipefail
BIN="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="$HERE/.venv/bin/python"
if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import openai' 2>/dev/null; then
  echo "skipped: no OpenAI client venv in $HERE/.venv (run scripts/install-deps.sh)"
  exit 77
fi
MODEL="${CHATREC_MODEL:-${CHATREC_MODEL_DIR:-$HOME/.cache/chatrec/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [ ! -f "$MODEL" ]; then echo "skipped: no $MODEL (run scripts/fetch-model.sh)"; exit 77; fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN" llm-serve --model "builtin:$MODEL" --name smollm2 --port 0 >"$WORK/out" 2>"$WORK/err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 300); do
  URL="$(grep -o 'http://127.0.0.1:[0-9]*/v1' "$WORK/out" | head -1 || true)"
  if [ -n "$URL" ]; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/err"; echo "llm-serve exited"; exit 1; fi
  sleep 0.2
done
if [ -z "$URL" ]; then cat "$WORK/err"; echo "llm-serve did not start"; exit 1; fi
CHATREC_OPENAI_URL="$URL" CHATREC_OPENAI_MODEL=smollm2 "$PYTHON" "$HERE/test_official_client.py" -v
