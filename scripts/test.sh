#!/usr/bin/env bash
# The test command: installs what the tests need, type-checks, lints, runs the unit, integration
# and end-to-end tiers, and ends with one line of its own: "N passed, N failed, N skipped".
# Extra arguments go to mocha (e.g. a file, or --grep).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

passed=0
failed=0
skipped=0
failures=()
check() {
    local name="$1"
    shift
    echo "== $name: $*"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

start=$SECONDS
if ! bash scripts/setup.sh; then
    echo "setup failed: nothing was tested"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "[test] setup took $((SECONDS - start))s"

# The type check is the build: tsc emits even when it reports errors, so the tests still run.
check typecheck npx tsc -p tsconfig.json
check lint npx biome check .

export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
summary="$(mktemp)"
AIRGAP_TEST_SUMMARY="$summary" npx mocha "$@"
mocha_status=$?
if [[ -s "$summary" ]]; then
    read -r mp mf ms < <(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(s.passed, s.failed, s.skipped)' "$summary")
    passed=$((passed + mp))
    failed=$((failed + mf))
    skipped=$((skipped + ms))
elif [[ $mocha_status -ne 0 ]]; then
    # Mocha stopped before running (a load error): count it as a failure.
    failed=$((failed + 1))
    failures+=("mocha did not run")
fi
rm -f "$summary"

if ((${#failures[@]} > 0)); then
    echo "failed checks: ${failures[*]}"
fi
echo "[test] total time $((SECONDS - start))s"
echo "$passed passed, $failed failed, $skipped skipped"
if ((failed > 0 || mocha_status != 0)); then
    exit 1
fi
