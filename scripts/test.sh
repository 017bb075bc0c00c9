#!/usr/bin/env bash
# Runs every lazyblob test on a fresh Debian 12 machine: installs dependencies, checks
# formatting, builds with warnings as errors, runs the unit tests plain, under ASan+UBSan
# and under TSan, runs the decoder fuzzer for a bounded time, the Prometheus integration
# test, the benchmark smoke runs, and the real-kernel VM suite (then the VM benchmark's smoke).
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --quick    formatting + plain build + unit tests only
#   SKIP_VM=1 scripts/test.sh  everything but the VM suite and VM benchmark smoke
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
JOBS=${JOBS:-$(nproc)}

stages_passed=0
stages_failed=0
failed_names=()
stage() {  # name, command...
  local name=$1
  shift
  echo
  echo "=== stage: $name"
  local t0=$SECONDS
  if "$@"; then
    echo "=== stage: $name: PASS ($((SECONDS - t0)) s)"
    stages_passed=$((stages_passed + 1))
  else
    echo "=== stage: $name: FAIL ($((SECONDS - t0)) s)"
    stages_failed=$((stages_failed + 1))
    failed_names+=("$name")
  fi
}

build_and_test() {  # preset, extra ctest args...
  local preset=$1
  shift
  cmake --preset "$preset" >/dev/null &&
    cmake --build "build-${preset}" -j "$JOBS" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] ' ;
  [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1
  ctest --test-dir "build-${preset}" --output-on-failure -j "$JOBS" "$@"
}

tsan_build_and_test() {
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" build_and_test tsan "$@"
}

format_check() {
  local files
  files=$(git ls-files '*.cc' '*.h')
  [[ -z "$files" ]] || clang-format --dry-run -Werror $files
}

fuzz_run() {
  cmake --preset fuzz >/dev/null || return 1
  # Only the fuzz targets: the rest of the project is covered by the gcc builds.
  local targets
  targets=$(ninja -C build-fuzz -t targets all | sed -n 's/^\([a-z_]*_fuzz\): .*/\1/p' | grep -v '^cmake_' | sort -u)
  [[ -n "$targets" ]] || { echo "no fuzz targets found"; return 1; }
  cmake --build build-fuzz -j "$JOBS" --target $targets >/dev/null || return 1
  local ok=0 f
  for f in $(find build-fuzz -type f -name '*_fuzz' -perm -u+x); do
    echo "fuzzing $f for ${FUZZ_SECONDS:-30} s"
    mkdir -p "build-fuzz/corpus/$(basename "$f")"
    "$f" -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 \
      "build-fuzz/corpus/$(basename "$f")" 2>&1 | tail -4 || ok=1
  done
  return $ok
}

stage deps scripts/install-deps.sh
stage format format_check
stage "unit (RelWithDebInfo, -Werror)" build_and_test ci -LE integration
if ((QUICK == 0)); then
  stage "unit (ASan+UBSan)" build_and_test asan -LE integration
  stage "unit (TSan)" tsan_build_and_test -LE integration
  stage "fuzz (libFuzzer, bounded)" fuzz_run
  stage "integration (real Prometheus, daemon on the simulator)" ctest --test-dir build-ci --output-on-failure -L integration
  if [[ -x bench/run.sh ]]; then
    stage "benchmarks (smoke)" bench/run.sh --smoke
  fi
  if [[ "${SKIP_VM:-0}" != 1 && -x scripts/vm-test.sh ]]; then
    stage "e2e (real kernel in qemu)" scripts/vm-test.sh --build-dir build-ci
    stage "benchmarks (VM smoke: lazyblobd vs loop)" bench/vm/run.sh --smoke --build-dir build-ci
  fi
fi

echo
echo "=== summary"
for n in "${failed_names[@]}"; do echo "failed stage: $n"; done
echo "stages: $stages_passed passed, $stages_failed failed"
[[ $stages_failed -eq 0 ]]
