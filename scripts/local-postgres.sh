# Sourced by test.sh and bench.sh: a local PostgreSQL cluster for tests and benchmarks.
# start_local_postgres installs Debian's postgresql with apt when missing and starts a cluster when none runs;
# ensure_postgres_role NAME [CREATEDB] makes a login role whose password is its name.

start_local_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    printf '\n== installing PostgreSQL (apt)\n'
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; } || return 1
  fi
  pg_isready -h localhost -q 2>/dev/null && return 0
  printf '\n== starting PostgreSQL\n'
  local cluster
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main >/dev/null && cluster="$version main"
  fi
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start || service postgresql start || return 1
  for _ in $(seq 1 30); do pg_isready -h localhost -q && break; sleep 1; done
  # Test classes run in parallel, each with its own server and connection pool: allow more than the default 100.
  su postgres -c "psql -qc 'ALTER SYSTEM SET max_connections = 300'" >/dev/null &&
    { pg_ctlcluster $cluster restart || service postgresql restart; }
  for _ in $(seq 1 30); do pg_isready -h localhost -q && break; sleep 1; done
  pg_isready -h localhost -q
}

ensure_postgres_role() { # name [CREATEDB]
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = '$1'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE $1 LOGIN ${2:-} PASSWORD '$1'\""
}
