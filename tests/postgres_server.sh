#!/usr/bin/env bash
# Start Debian's PostgreSQL cluster for the tests (as root; installs nothing) and
# make sure the test role (allowed to create a scratch database per test) and database exist. Idempotent: run it as often as you like.
# Listens on 127.0.0.1 only. Prints the connection settings as `export` lines:
#   eval "$(sudo bash tests/postgres_server.sh)"
set -euo pipefail

DB=${DAGSTER_PG_DB:-fazhi_test}
USER_NAME=${DAGSTER_PG_USER:-fazhi}
PASSWORD=${DAGSTER_PG_PASSWORD:-fazhi}

command -v pg_lsclusters >/dev/null || { echo "postgresql is not installed: apt-get install postgresql" >&2; exit 1; }
read -r VERSION CLUSTER _ <<<"$(pg_lsclusters --no-header | head -n1)"
[ -n "${VERSION:-}" ] || { echo "no PostgreSQL cluster: pg_createcluster --start <version> main" >&2; exit 1; }

CONF=/etc/postgresql/$VERSION/$CLUSTER/postgresql.conf
if ! grep -q "^listen_addresses = '127.0.0.1'" "$CONF"; then
  echo "listen_addresses = '127.0.0.1'" >>"$CONF"  # the last setting wins
  pg_ctlcluster "$VERSION" "$CLUSTER" stop >/dev/null 2>&1 || true
fi
# stdout carries only the export lines below: pg_ctlcluster chatters there ("Removed stale pid file.").
pg_ctlcluster "$VERSION" "$CLUSTER" status >/dev/null 2>&1 || pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
PORT=$(pg_conftool -s "$VERSION" "$CLUSTER" show port)

psql_admin() { su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -qtAX $*"; }
for _ in $(seq 30); do psql_admin "-c 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
if [ "$(psql_admin "-c \"select 1 from pg_roles where rolname = '$USER_NAME'\"")" != 1 ]; then
  psql_admin "-c \"create role $USER_NAME\""
fi
psql_admin "-c \"alter role $USER_NAME login createdb password '$PASSWORD'\""
if [ "$(psql_admin "-c \"select 1 from pg_database where datname = '$DB'\"")" != 1 ]; then
  psql_admin "-c \"create database $DB owner $USER_NAME\""
fi

cat <<EOF
export DAGSTER_PG_HOST=127.0.0.1
export DAGSTER_PG_PORT=$PORT
export DAGSTER_PG_USER=$USER_NAME
export DAGSTER_PG_PASSWORD=$PASSWORD
export DAGSTER_PG_DB=$DB
EOF
