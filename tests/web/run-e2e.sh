#!/usr/bin/env bash
# Browser end-to-end test of the web chat page: starts `chatrec serve` on a free loopback port over a temp
# SQLite store, then drives Debian's chromium with playwright-core (tests/web/node_modules, installed by
# scripts/install-deps.sh with `npm ci`). Exits 77 (ctest: skipped) when chromium, node or the module is absent.
# Usage: run-e2e.sh CHATREC_BINARY ARTIFACT_DIR
set -euo pipefail
BIN="$1"
ARTIFACTS="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
CHROMIUM="${CHATREC_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then echo "skipped: no $CHROMIUM (apt install chromium)"; exit 77; fi
if ! command -v node >/dev/null; then echo "skipped: no node"; exit 77; fi
if [ ! -d "$HERE/node_modules/playwright-core" ]; then echo "skipped: run 'npm ci' in tests/web"; exit 77; fi
DATA="${CHATREC_DATA_DIR:-$HERE/../../../shared/data}"
if [ ! -f "$DATA/ml-100k/u.data" ]; then echo "skipped: no ml-100k under $DATA"; exit 77; fi

mkdir -p "$ARTIFACTS"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The scripted mock by default: the page, the API and the persistence are under test here, and the built-in
# model's turns take minutes on a loaded 2-core machine (docs/api.md). CHATREC_E2E_LLM=builtin:FILE uses it.
LLM="${CHATREC_E2E_LLM:-mock}"
# With API keys, as a deployment would run: the page is driven with an admin key, then with a user key.
ADMIN_KEY="e2e-admin-key-$RANDOM$RANDOM"
USER_KEY="e2e-user-key-$RANDOM$RANDOM"
printf '%s admin\n%s user 2\n' "$ADMIN_KEY" "$USER_KEY" >"$WORK/keys"
"$BIN" serve --data-dir "$DATA" --store "sqlite:$WORK/chatrec.db" --llm "$LLM" --domains movies \
  --movies-model popularity --max-reply-tokens 32 --port 0 --api-keys "$WORK/keys" \
  >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 600); do
  URL="$(grep -o 'http://127.0.0.1:[0-9]*/' "$WORK/serve.out" | head -1 || true)"
  if [ -n "$URL" ]; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/serve.err"; echo "chatrec serve exited"; exit 1; fi
  sleep 0.2
done
if [ -z "$URL" ]; then cat "$WORK/serve.err"; echo "chatrec serve did not start"; exit 1; fi
echo "server $URL (LLM $LLM)"

status=0
CHATREC_ADMIN_KEY="$ADMIN_KEY" CHATREC_USER_KEY="$USER_KEY" CHATREC_URL="$URL" CHATREC_CHROMIUM="$CHROMIUM" CHATREC_ARTIFACTS="$ARTIFACTS" CHATREC_PROFILE="$WORK/profile" \
  node "$HERE/e2e.mjs" || status=$?
if [ "$status" -ne 0 ]; then tail -50 "$WORK/serve.err"; fi
exit "$status"
