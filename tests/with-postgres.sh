#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL server: initdb in a temp dir, start on a loopback
# port, create database `neuralops`, export NEURALOPS_TEST_PG_DSN (and commands to stop/start
# it again for outage tests), run the command, then stop the server and remove its files.
# As root, initdb and pg_ctl run as the `postgres` user (they refuse root).
set -euo pipefail

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "with-postgres: no PostgreSQL server binaries (run deploy/install-deps.sh)" >&2
  exit 1
fi
TMP=$(mktemp -d /tmp/nops-pg-XXXXXX)
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$TMP"
  AS=(runuser -u postgres --)
fi
PGDATA="$TMP/data"
SOCK="$TMP"
CTL="${AS[*]} $BIN/pg_ctl -D $PGDATA -l $TMP/log -w"

cleanup() {
  $CTL -m fast stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT   # so that an interrupted run still stops its server
trap 'exit 143' TERM

"${AS[@]}" "$BIN/initdb" -D "$PGDATA" --no-sync --auth=trust -U postgres >/dev/null
# a random loopback port; another one if it is taken
for attempt in 1 2 3 4 5; do
  PORT=$(( 20000 + RANDOM % 20000 ))
  OPTS="-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if $CTL -o "$OPTS" start >/dev/null 2>&1; then break; fi
  if [ "$attempt" -eq 5 ]; then echo "with-postgres: cannot start PostgreSQL:" >&2; cat "$TMP/log" >&2; exit 1; fi
done
"${AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres neuralops

export NEURALOPS_TEST_PG_DSN="host=127.0.0.1 port=$PORT user=postgres dbname=neuralops connect_timeout=3"
export NEURALOPS_TEST_PG_STOP="$CTL -m fast stop"
export NEURALOPS_TEST_PG_START="$CTL -o '$OPTS' start"
"$@"
