#!/usr/bin/env bash
# Installs every build and run-time dependency of chatrec from Debian 12 packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3 python3-pip python3-venv unzip curl ca-certificates
  libeigen3-dev libopenblas-dev libfaiss-dev libomp-dev
  libsqlitecpp-dev libsqlite3-dev libpqxx-dev postgresql
  libcpp-httplib-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
  libxml2-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format chromium
  # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
  clang-14 libclang-rt-14-dev
)
# Node.js drives the web page's browser test; a node that is already installed (e.g. from NodeSource,
# which bundles npm) is kept, since Debian's npm package conflicts with it.
if ! command -v npm >/dev/null; then PACKAGES+=(nodejs npm); fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The web page's browser test driver (tests/web): playwright-core, pinned by its package-lock.json.
WEB="$(cd "$(dirname "$0")/../tests/web" && pwd)"
if command -v npm >/dev/null && [ ! -d "$WEB/node_modules/playwright-core" ]; then
  (cd "$WEB" && npm ci --no-audit --no-fund --silent) || echo "install-deps: npm ci in tests/web failed (web e2e test skips)"
fi
# The official OpenAI Python client for llm-serve's compatibility test (tests/llm/openai/python), pinned by its
# requirements file, in a private virtualenv; reinstalled when the requirements change.
PY="$(cd "$(dirname "$0")/../tests/llm/openai/python" && pwd)"
if [ ! -f "$PY/.venv/requirements.txt" ] || ! cmp -s "$PY/requirements.txt" "$PY/.venv/requirements.txt"; then
  if python3 -m venv "$PY/.venv" && "$PY/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$PY/requirements.txt"; then
    cp "$PY/requirements.txt" "$PY/.venv/requirements.txt"
  else
    echo "install-deps: the OpenAI client venv in tests/llm/openai/python failed (its test skips)"
  fi
fi
