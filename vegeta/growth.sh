#!/usr/bin/env bash
# growth.sh: ingest and reads as the tables grow. For each size of SIZES,
# in rising order and in one database of its own (txpersister_growth,
# dropped first), it seeds stored transactions and their outcomes up to
# that size (loadgen seed), starts the local processes on the database
# (scripts/run-local.sh), attacks POST /v1/transactions at RATE for
# DURATION (vegeta/load.sh: the rate and p99 of ingest, and the drain),
# then times each read at READ_RATE for READ_DURATION: GET by id, the
# tenant's list, by user, by status (processed, failed, received) and by
# user and status. It prints a table, also written to the results folder.
#
#   make measure-growth                             # SIZES="0 10000000"
#   SIZES="0 10000000 50000000" make measure-growth # about 25 GB, an hour
#
# Variables (defaults in brackets): SIZES ["0 10000000"], RATE [2000],
# DURATION [30s], READ_RATE [100], READ_DURATION [10s], RESULTS
# [vegeta/results/growth-<UTC time>]. It needs the api's and the
# converter's ports free: stop a running `make run` first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
SIZES=${SIZES:-0 10000000}
RATE=${RATE:-2000}
DURATION=${DURATION:-30s}
READ_RATE=${READ_RATE:-100}
READ_DURATION=${READ_DURATION:-10s}
RESULTS=${RESULTS:-$root/vegeta/results/growth-$(date -u +%Y%m%dT%H%M%SZ)}
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/txpersister_growth?sslmode=disable
admin=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
mkdir -p "$RESULTS"

vegeta=$(vegeta/vegeta.sh)
loadgen=$RESULTS/loadgen
go build -o "$loadgen" ./vegeta/loadgen
make -s build >/dev/null
psql "$admin" -qc "DROP DATABASE IF EXISTS txpersister_growth WITH (FORCE)" -qc "CREATE DATABASE txpersister_growth"
bin/api migrate >/dev/null 2>&1
bin/converter migrate >/dev/null 2>&1

. vegeta/local-services.sh
trap stop_services EXIT
value() { sed -n "s/^$2=//p" "$1"; }

# reads SIZE: one vegeta attack per kind of read, its p99 in the table.
reads() {
	local size=$1 users=100000 kind
	for kind in get list user processed failed received user-failed; do
		if [ "$kind" = get ] && [ "$size" = 0 ]; then
			printf '\t-' # nothing seeded to get
			continue
		fi
		local targets=$RESULTS/$size-$kind.targets
		for _ in $(seq 1 500); do
			local n=$((RANDOM * 32768 + RANDOM)) u="user-$((RANDOM % users))" path
			case $kind in
			get) path="/v1/transactions/seed-$(printf %010d $((n % size + 1)))" ;;
			list) path="/v1/transactions?limit=50" ;;
			user) path="/v1/transactions?user_id=$u&limit=50" ;;
			processed | failed | received) path="/v1/transactions?status=$kind&limit=50" ;;
			user-failed) path="/v1/transactions?user_id=$u&status=failed&limit=50" ;;
			esac
			echo "GET http://127.0.0.1:8080$path"
		done >"$targets"
		"$vegeta" attack -targets="$targets" -rate="$READ_RATE" -duration="$READ_DURATION" -timeout=30s |
			"$vegeta" encode -to=json | "$loadgen" results -shell "$RESULTS/$size-$kind.env" >/dev/null
		printf '\t%s' "$(value "$RESULTS/$size-$kind.env" p99_ms)"
		[ "$(value "$RESULTS/$size-$kind.env" error_ratio)" = 0.000000 ] || printf '(errors %s)' "$(value "$RESULTS/$size-$kind.env" codes)"
	done
}

header=$'stored\tseed_s\tingest_per_s\tingest_p99_ms\tdrained\tget_p99_ms\tlist_p99_ms\tuser_p99_ms\tprocessed_p99_ms\tfailed_p99_ms\treceived_p99_ms\tuser_failed_p99_ms'
echo "$header" | tee "$RESULTS/growth.tsv"
seeded=0
for size in $SIZES; do
	seed_s=0
	if [ "$size" -gt "$seeded" ]; then
		start=$(date +%s)
		"$loadgen" seed -rows $((size - seeded)) 2>>"$RESULTS/seed.log" >>"$RESULTS/seed.log"
		seed_s=$(($(date +%s) - start))
		seeded=$size
	fi
	# As a database of that history would be: vacuumed (the visibility map
	# set for index-only scans) and analyzed.
	psql "$DATABASE_URL" -qc "VACUUM (ANALYZE)"
	start_services "$RESULTS/run.log"
	RATE=$RATE DURATION=$DURATION DRAIN=60s RESULTS="$RESULTS/$size-ingest" vegeta/load.sh >"$RESULTS/$size-ingest.log" 2>&1 || true
	a=$RESULTS/$size-ingest/attack.env d=$RESULTS/$size-ingest/drain.env
	# The reads are planned on statistics of the tables as they are now,
	# not as they were before the attack (at size 0, empty).
	psql "$DATABASE_URL" -qc "ANALYZE"
	{
		printf '%s\t%s\t%s\t%s\t%s' "$size" "$seed_s" "$(value "$a" accepted_per_second)" "$(value "$a" p99_ms)" \
			"$([ "$(value "$d" lost)" = 0 ] && echo yes || echo "no: $(value "$d" lost) lost")"
		reads "$size"
		printf '\n'
	} | tee -a "$RESULTS/growth.tsv"
	stop_services
done
psql "$DATABASE_URL" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))" | tee -a "$RESULTS/growth.tsv"
echo "results in $RESULTS"
