#!/usr/bin/env bash
# backlog.sh: how fast the converter drains a backlog. It starts the local
# processes (scripts/run-local.sh, on a fresh database), pauses the
# converter (SIGSTOP), ingests N transactions through the batch endpoint
# and waits until the relay has put them all in the queue, then resumes
# the converter and times the drain, from its first outcome to its last.
#
#   make load-backlog                      # RATE=20000 DURATION=15s
#   PREFETCH=2048 OUTBOX_MESSAGE_MAX=1 make load-backlog
#
# The environment reaches the services (PREFETCH, CONCURRENCY,
# OUTBOX_MESSAGE_MAX, ...). It needs the api's and the converter's ports
# free: stop a running `make run` first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
RATE=${RATE:-20000}
DURATION=${DURATION:-15s}
db=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable}
admin=${db/\/txpersister\?/\/postgres?}
psql "$admin" -qc "DROP DATABASE IF EXISTS txpersister WITH (FORCE)"

LOG_LEVEL=${LOG_LEVEL:-warn} setsid scripts/run-local.sh >"${TMPDIR:-/tmp}/backlog-run.log" 2>&1 &
run=$!
trap 'kill -TERM -- -$run 2>/dev/null; sleep 3; kill -KILL -- -$run 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
	curl -sf localhost:8081/readyz >/dev/null && curl -sf localhost:8082/readyz >/dev/null && break
	sleep 1
done
conv=$(pgrep -f '^bin/converter')
kill -STOP "$conv"
MODE=batch BATCH=100 RATE=$RATE DURATION=$DURATION DRAIN=1s vegeta/load.sh >/dev/null 2>&1 || true
until [ "$(curl -s localhost:8081/metrics | awk '/^txpersister_outbox_backlog /{print $2}')" = 0 ]; do sleep 1; done
n=$(psql "$db" -Atc "SELECT count(*) FROM accepted_transactions")
kill -CONT "$conv"
until [ "$(psql "$db" -Atc "SELECT count(*) FROM conversion_outcomes")" -ge "$n" ]; do sleep 0.2; done
span=$(psql "$db" -Atc "SELECT extract(epoch FROM max(processed_at) - min(processed_at)) FROM conversion_outcomes")
echo "backlog: $n transactions drained, first to last outcome $span s: $(awk -v n="$n" -v s="$span" 'BEGIN { printf "%.0f", n / s }')/s"
echo "converter peak resident: $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$conv/status")"
