#!/bin/sh
# Runs the unit tests (cmocka, under ASan/UBSan) and the integration tests
# (shell scripts driving the real binary), then prints one summary line:
#   N passed, N failed
# Unit test binaries print cmocka's own summaries; integration scripts print
# "PASS: name" / "FAIL: name" lines (tests/integration/lib.sh).
BUILD=${BUILD:-build}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ -z "$INTEGRATION_ONLY" ]; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *.o|*.d) continue ;; esac
        echo "== unit: $(basename "$t")"
        (cd tests && "../$t") >"$log" 2>&1
        rc=$?
        cat "$log"
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL: $(basename "$t") exited $rc (crash or sanitizer report)"
            failed=$((failed + 1))
        fi
    done
fi

if [ -z "$UNIT_ONLY" ]; then
    for t in tests/integration/test_*.sh; do
        [ -f "$t" ] || continue
        echo "== integration: $(basename "$t")"
        BUILD="$BUILD" sh "$t" </dev/null >"$log" 2>&1
        rc=$?
        cat "$log"
        p=$(grep -c '^PASS: ' "$log")
        f=$(grep -c '^FAIL: ' "$log")
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL: $(basename "$t") exited $rc"
            failed=$((failed + 1))
        fi
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
