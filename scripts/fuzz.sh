#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (ASan+UBSan, coverage-guided) into
# build-fuzz/ and runs each target (all by default) from a scratch copy of its checked-in corpus.
#   scripts/fuzz.sh [--seconds N] [--runs N] [--jobs N] [TARGET...]
# Prints per target the executions, executions per second, edges covered and crashes; exits non-zero
# when a target crashed, naming the input that did (kept under build-fuzz/fuzz-runs/TARGET/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${CHATREC_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CXX_FUZZ="${CHATREC_FUZZ_CXX:-clang++-14}"
CC_FUZZ="${CHATREC_FUZZ_CC:-clang-14}"
SECONDS_PER_TARGET=60
RUNS=-1
JOBS="${CHATREC_JOBS:-2}"
TARGETS=()
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage 2 >&2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL=()
for f in "$ROOT"/tests/fuzz/fuzz_*.cpp; do n="$(basename "$f" .cpp)"; ALL+=("${n#fuzz_}"); done
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=("${ALL[@]}"); fi
for t in "${TARGETS[@]}"; do
  [ -f "$ROOT/tests/fuzz/fuzz_$t.cpp" ] || { echo "fuzz.sh: no target '$t' (have: ${ALL[*]})" >&2; exit 2; }
done

# Only the harnesses and the libraries they link are built (target chatrec_fuzz, or single targets).
build_start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DCMAKE_C_COMPILER="$CC_FUZZ" -DCHATREC_FUZZ=ON -DCHATREC_BUILD_BENCH=OFF >/dev/null
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}"
echo "fuzz.sh: build took $(( $(date +%s) - build_start )) s"

RUNS_DIR="$BUILD/fuzz-runs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
summary=()
for t in "${TARGETS[@]}"; do
  dir="$RUNS_DIR/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # libFuzzer adds the inputs it finds to its first corpus directory: a scratch copy, not the repo.
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$dir/corpus/"
  log="$dir/fuzz.log"
  echo
  echo "=== fuzz $t (${SECONDS_PER_TARGET} s, runs ${RUNS})"
  rc=0
  "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -runs="$RUNS" -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" -timeout=25 -rss_limit_mb=2048 "$dir/corpus" >"$log" 2>&1 || rc=$?
  # A target that dies before its first status line has no stats: "?" rather than an exit here.
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)"
  edges="$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)"
  crash="$(find "$dir/artifacts" -type f | head -1)"
  crashes="$(find "$dir/artifacts" -type f | wc -l)"
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; crash="(no artifact; see $log)"; fi
  line="$(printf '%-18s executions %10s  exec/s %7s  edges %6s  crashes %s' "$t" "${execs:-?}" "${rate:-?}" \
    "${edges:-?}" "$crashes")"
  echo "$line"
  summary+=("$line")
  if [ "$crashes" -gt 0 ]; then
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz property violated|terminate called' "$log" || true
    echo "crashing input: $crash"
    echo "log: $log"
    failed+=("$t")
  fi
done
echo
echo "=== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (reproduce: $BUILD/tests/fuzz/fuzz_TARGET INPUT)" >&2
  exit 1
fi
