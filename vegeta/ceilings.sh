#!/usr/bin/env bash
# ceilings.sh: measures this machine's ceilings, the figures
# docs/PERFORMANCE.md sets the pipeline's beside:
#   - PostgreSQL (pgbench): one transaction + outbox row per commit, 1 and 8
#     clients; 100 per commit, 4 clients; on the api's real schema;
#   - RabbitMQ (vegeta/ceilings amqp): persistent messages to a quorum queue
#     with publisher confirms, 1,000 in flight; consumed with manual acks,
#     prefetch 500;
#   - HTTP (wrk, 64 connections): a trivial Go JSON POST handler.
# Run it with nothing else busy. DURATION (default 20) is seconds per step.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-20}
out=${RESULTS:-results/ceilings-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out" bin
admin_url=${ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bench_url=${admin_url/\/postgres\?/\/txpersister_bench?}

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y wrk >/dev/null; }; }
go build -o bin/api ./services/api
go build -o bin/ceilings ./vegeta/ceilings

psql "$admin_url" -qc "DROP DATABASE IF EXISTS txpersister_bench WITH (FORCE)" -qc "CREATE DATABASE txpersister_bench"
DATABASE_URL=$bench_url LOG_LEVEL=warn bin/api migrate

{
	echo "# ceilings, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, PostgreSQL $(psql "$admin_url" -Atc 'SHOW server_version'), RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?')"
	for c in 1 8; do
		tps=$(pgbench -n -c $c -j $((c < 2 ? 1 : 2)) -T "$duration" -f vegeta/ceilings/one-per-commit.sql "$bench_url" 2>/dev/null | awk '/^tps/ {print $3; exit}')
		echo "pgbench one transaction per commit, $c client(s): $tps transactions/s  (pgbench -n -c $c -T $duration -f vegeta/ceilings/one-per-commit.sql)"
	done
	tps=$(pgbench -n -c 4 -j 2 -T "$duration" -f vegeta/ceilings/hundred-per-commit.sql "$bench_url" 2>/dev/null | awk '/^tps/ {print $3; exit}')
	echo "pgbench 100 transactions per commit, 4 clients: $(awk -v t="$tps" 'BEGIN {printf "%.0f", t * 100}') transactions/s  (pgbench -n -c 4 -j 2 -T $duration -f vegeta/ceilings/hundred-per-commit.sql)"
	bin/ceilings amqp -n 200000 -inflight 1000 -prefetch 500 | sed 's/$/  (bin\/ceilings amqp -n 200000 -inflight 1000 -prefetch 500)/'
	bin/ceilings http -addr 127.0.0.1:8099 &
	pid=$!
	sleep 1
	rps=$(wrk -t2 -c64 -d"${duration}s" -s vegeta/ceilings/post.lua http://127.0.0.1:8099/ | awk '/Requests\/sec/ {print $2}')
	kill $pid
	echo "wrk, trivial Go JSON POST handler, 64 connections: $rps requests/s  (wrk -t2 -c64 -d${duration}s -s vegeta/ceilings/post.lua)"
} | tee "$out/ceilings.txt"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS txpersister_bench WITH (FORCE)"
echo "ceilings.sh: written to $out/ceilings.txt"
