#!/usr/bin/env bash
# Runs the whole test suite on SQLite and on PostgreSQL and ends with one line: "tests: N passed, N failed".
# PostgreSQL: uses REFERLOOP_TEST_PG when set; otherwise installs (apt) and starts a local cluster when none runs.
set -uo pipefail
cd "$(dirname "$0")"

log() { printf '\n== %s\n' "$*"; }

# shellcheck source=scripts/local-postgres.sh
source scripts/local-postgres.sh

ensure_postgres() {
  if [ -n "${REFERLOOP_TEST_PG:-}" ]; then return 0; fi
  start_local_postgres && ensure_postgres_role referloop_test CREATEDB || return 1
  export REFERLOOP_TEST_PG="Host=localhost;Username=referloop_test;Password=referloop_test"
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  log "installing Chromium (apt) for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
}

passed=0 failed=0 skipped=0 status=0

run_suite() { # name, test filter, then environment assignments
  local name=$1; shift
  log "tests on $name"
  local out
  out=$(mktemp)
  env "${@:2}" dotnet test tests/Referloop.Tests --no-build -c Release --filter "$1" 2>&1 | tee "$out" | grep -vE "^\s+at " | head -300
  local code=${PIPESTATUS[0]}
  local summary
  summary=$(grep -E "(Passed|Failed)! +- " "$out" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "no test summary from the $name run (exit $code)"; tail -n 40 "$out"; failed=$((failed + 1)); status=1
  else
    passed=$((passed + $(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$summary")))
    failed=$((failed + $(sed -E 's/.*Failed: +([0-9]+),.*/\1/' <<<"$summary")))
    skipped=$((skipped + $(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$summary")))
  fi
  [ "$code" -eq 0 ] || status=1
  rm -f "$out"
}

log "installing the Node reference receivers (tests/node)"
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! npm ci --prefix tests/node --no-audit --no-fund >/dev/null; then
  echo "npm ci --prefix tests/node failed"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

log "building"
build_log=$(mktemp)
if ! dotnet build -c Release >"$build_log" 2>&1; then
  grep -E "error" "$build_log" | sort -u | head -40
  echo "tests: 0 passed, 1 failed"
  exit 1
fi
tail -n 3 "$build_log"

if ! ensure_chromium; then
  echo "Chromium could not be installed"; failed=$((failed + 1)); status=1
fi
run_suite SQLite "FullyQualifiedName~Referloop" REFERLOOP_TEST_DB=sqlite

if ensure_postgres; then
  # Browser tests exercise pages, not storage: they run once, on SQLite.
  run_suite PostgreSQL "Category!=Browser" REFERLOOP_TEST_DB=postgres REFERLOOP_TEST_PG="$REFERLOOP_TEST_PG"
else
  echo "PostgreSQL could not be installed or started"; failed=$((failed + 1)); status=1
fi

line="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo
echo "$line"
[ "$failed" -eq 0 ] || status=1
exit $status
