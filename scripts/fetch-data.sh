#!/usr/bin/env bash
# Makes MovieLens-100K (and Amazon Games, when a shared copy exists) available under $CHATREC_DATA_DIR.
# Uses ../shared/data when present; otherwise downloads MovieLens-100K from GroupLens. Prints only the
# directory on stdout (callers capture it); messages go to stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared/data"
DATA_DIR="${CHATREC_DATA_DIR:-}"
if [ -z "$DATA_DIR" ]; then
  if [ -f "$SHARED/ml-100k/u.data" ]; then DATA_DIR="$SHARED"; else DATA_DIR="$HOME/.cache/chatrec/data"; fi
fi
mkdir -p "$DATA_DIR"
if [ ! -f "$DATA_DIR/ml-100k/u.data" ]; then
  echo "fetch-data: downloading MovieLens-100K from GroupLens into $DATA_DIR" >&2
  tmp="$(mktemp -d)"
  if ! curl -fsSL --retry 3 -o "$tmp/ml-100k.zip" https://files.grouplens.org/datasets/movielens/ml-100k.zip; then
    echo "fetch-data: cannot download MovieLens-100K; put it in $DATA_DIR/ml-100k or set CHATREC_DATA_DIR" >&2
    exit 1
  fi
  (cd "$DATA_DIR" && unzip -q -o "$tmp/ml-100k.zip")
  lines="$(wc -l < "$DATA_DIR/ml-100k/u.data")"
  if [ "$lines" -ne 100000 ]; then echo "fetch-data: u.data has $lines lines, expected 100000" >&2; exit 1; fi
  rm -rf "$tmp"
fi
if [ ! -f "$DATA_DIR/amazon-games/games.item" ]; then
  echo "fetch-data: amazon-games not found under $DATA_DIR (only the games-seq protocol and the games domain need it)" >&2
fi
echo "$DATA_DIR"
