#!/usr/bin/env bash
# Measures Referloop against this machine's raw ceilings, prints the table and writes bench/results/latest.json.
# Installs wrk (apt) when missing and, for the PostgreSQL run, a local cluster with a referloop_bench database.
# Settings (environment): BENCH_PROVIDERS=sqlite,postgres  QUICK=1  BENCH_DURATION=10  ... see docs/performance.md.
set -uo pipefail
cd "$(dirname "$0")"

log() { printf '\n== %s\n' "$*"; }
fail() { printf 'bench: %s\n' "$*" >&2; exit 1; }

providers=${BENCH_PROVIDERS:-sqlite,postgres}

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  log "installing wrk (apt)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || return 1
  command -v wrk >/dev/null 2>&1
}

# shellcheck source=scripts/local-postgres.sh
source scripts/local-postgres.sh

ensure_postgres() {
  if [ -n "${REFERLOOP_BENCH_PG:-}" ]; then return 0; fi
  start_local_postgres && ensure_postgres_role referloop_bench || return 1
  # Debian's default max_wal_size (1 GB) makes PostgreSQL checkpoint every few seconds while 100,000 deliveries are
  # recorded, and every first change of a page after a checkpoint writes the whole page to the log again. A
  # write-heavy production database gets more room; so does this cluster (the ceilings run on it too).
  su postgres -c "psql -qc \"ALTER SYSTEM SET max_wal_size = '4GB'\" -c 'SELECT pg_reload_conf()'" >/dev/null || return 1
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'referloop_bench'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE DATABASE referloop_bench OWNER referloop_bench\"" || return 1
  export REFERLOOP_BENCH_PG="Host=localhost;Database=referloop_bench;Username=referloop_bench;Password=referloop_bench"
}

ensure_wrk || fail "wrk is missing and could not be installed with apt-get"
case ",${providers// /,}," in
  *,postgres,* | *,postgresql,* | *,pg,*) ensure_postgres || fail "PostgreSQL could not be installed or started" ;;
esac

log "building (Release)"
build_log=$(mktemp)
# The bench project references the server and the bare server, so one build compiles all three.
if ! dotnet build bench/Referloop.Bench -c Release >"$build_log" 2>&1; then
  grep -E "error" "$build_log" | sort -u | head -40
  rm -f "$build_log"
  fail "the build failed"
fi
rm -f "$build_log"

log "running the benchmark"
dotnet bench/Referloop.Bench/bin/Release/net10.0/Referloop.Bench.dll "$PWD" &
driver=$!
# Ctrl+C or a TERM reaches the driver, which stops every process it started before it exits.
trap 'kill -TERM "$driver" 2>/dev/null' INT TERM
wait "$driver"
status=$?
# A signal interrupts the first wait; wait again for the driver to finish its cleanup.
if kill -0 "$driver" 2>/dev/null; then wait "$driver"; status=$?; fi
exit $status
