#!/usr/bin/env bash
# run-local.sh runs ratesd, the api and the converter as local processes
# against PostgreSQL and RabbitMQ on localhost, logs on this terminal.
# Ctrl-C stops all three cleanly (SIGTERM, then they drain and exit).
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable}
export LOG_FORMAT=${LOG_FORMAT:-text}
# A local run lets every request in, as the original did; production sets API_KEYS.
export AUTH_DISABLED=${AUTH_DISABLED:-true}
# A local run is where profiles are taken (docs/PERFORMANCE.md); production leaves pprof off.
export PPROF=${PPROF:-true}
# A local run's webhook receivers are on this machine; production refuses private addresses.
export WEBHOOK_ALLOW_PRIVATE=${WEBHOOK_ALLOW_PRIVATE:-true}

# Create the database when it is missing.
db=$(basename "${DATABASE_URL%%\?*}")
admin_url=${DATABASE_URL/\/$db/\/postgres}
if ! psql "$admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
	echo "run-local: creating database $db"
	psql "$admin_url" -qc "CREATE DATABASE \"$db\""
fi

pids=()
stop() {
	trap - INT TERM EXIT
	echo "run-local: stopping"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

bin/ratesd & pids+=($!)
bin/api & pids+=($!)
bin/converter & pids+=($!)
echo "run-local: api on http://127.0.0.1:8080, admin :8081 (api) :8082 (converter), ratesd on :8090; Ctrl-C stops"
# Stop everything when any one of them exits.
wait -n "${pids[@]}"
