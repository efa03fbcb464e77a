#!/usr/bin/env bash
# A private PostgreSQL 15 server for the "postgres" test label. Installs nothing (the `postgresql` Debian
# package must be present). Runs as root (the server itself runs as the `postgres` user) or as any
# non-root user (the server then runs as that user).
#
#   .ci/postgres.sh [start]   create the cluster if needed, start it, create role + database,
#                             print `export CHATREC_PG_URL=...` on stdout (everything else goes to stderr)
#   .ci/postgres.sh url       print the export line only
#   .ci/postgres.sh stop      stop the server (keeps the data)
#   .ci/postgres.sh purge     stop the server and delete the cluster
#
# Usage in CI:   eval "$(.ci/postgres.sh start)" && ctest -L postgres
# Knobs (env): CHATREC_PG_BASE (default /tmp/chatrec-pg, must be reachable by the postgres user),
#              CHATREC_PG_PORT (55432), CHATREC_PG_USER (chatrec), CHATREC_PG_PASSWORD (chatrec_test_pw),
#              CHATREC_PG_DB (chatrec_test), CHATREC_PG_BINDIR (/usr/lib/postgresql/15/bin).
set -euo pipefail

MODE=${1:-start}
BASE=${CHATREC_PG_BASE:-/tmp/chatrec-pg}
PORT=${CHATREC_PG_PORT:-55432}
DB_USER=${CHATREC_PG_USER:-chatrec}
DB_PASSWORD=${CHATREC_PG_PASSWORD:-chatrec_test_pw}
DB_NAME=${CHATREC_PG_DB:-chatrec_test}
BINDIR=${CHATREC_PG_BINDIR:-/usr/lib/postgresql/15/bin}
DATA=$BASE/data
SOCKDIR=$BASE/sock
LOG=$BASE/postgres.log

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Identifiers and the password go into SQL literals; keep them to characters that need no quoting.
[[ $DB_USER =~ ^[a-z_][a-z0-9_]*$ ]] || die "CHATREC_PG_USER must match [a-z_][a-z0-9_]*"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "CHATREC_PG_DB must match [a-z_][a-z0-9_]*"
[[ $DB_PASSWORD =~ ^[A-Za-z0-9_.-]+$ ]] || die "CHATREC_PG_PASSWORD must match [A-Za-z0-9_.-]+"
[[ $PORT =~ ^[0-9]+$ ]] || die "CHATREC_PG_PORT must be a number"

if [[ $(id -u) -eq 0 ]]; then
  RUN_AS=postgres
  id "$RUN_AS" >/dev/null 2>&1 || die "no 'postgres' user: is the postgresql package installed?"
  as_server() { runuser -u "$RUN_AS" -- "$@"; }
else
  RUN_AS=$(id -un)
  as_server() { "$@"; }
fi

url_line() { echo "export CHATREC_PG_URL=postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB_NAME"; }

is_running() { [[ -f $DATA/PG_VERSION ]] && as_server "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

psql_admin() {
  as_server "$BINDIR/psql" -X -q -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

start() {
  [[ -x $BINDIR/initdb ]] || die "$BINDIR/initdb not found: install the postgresql-15 package"
  mkdir -p "$BASE" "$SOCKDIR"
  if [[ $(id -u) -eq 0 ]]; then chown "$RUN_AS" "$BASE" "$SOCKDIR"; fi
  chmod 700 "$SOCKDIR"
  as_server test -w "$BASE" || die "$BASE is not writable by $RUN_AS (choose CHATREC_PG_BASE elsewhere)"

  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "initdb $DATA"
    # Local socket: trust (only $RUN_AS can enter the 0700 socket dir). TCP: password required.
    as_server "$BINDIR/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >>"$LOG.initdb" 2>&1 || { cat "$LOG.initdb" >&2; die "initdb failed"; }
  fi

  if is_running; then
    log "already running ($DATA)"
  else
    log "starting on 127.0.0.1:$PORT (log $LOG)"
    as_server "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-k $SOCKDIR -p $PORT -c listen_addresses=127.0.0.1" start >&2 ||
      { tail -n 20 "$LOG" >&2; die "pg_ctl start failed"; }
  fi

  psql_admin <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SQL
  if [[ -z $(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
  fi
  log "ready: database $DB_NAME, role $DB_USER"
  url_line
}

stop() {
  if is_running; then
    as_server "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    log "not running"
  fi
}

case $MODE in
  start) start ;;
  url) url_line ;;
  stop) stop ;;
  purge) stop; rm -rf "$BASE"; log "removed $BASE" ;;
  *) die "unknown mode '$MODE' (start | url | stop | purge)" ;;
esac
