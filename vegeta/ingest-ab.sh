#!/usr/bin/env bash
# ingest-ab.sh: ingest on an empty database and on a full one, alternately,
# in one run: the comparison the growth target asks for ("at 50 million,
# ingest within 20 % of the empty database's figure"), measured side by
# side so that the machine's drift between runs falls on both.
#
#   make seed ROWS=50000000 DATABASE_URL=…/txpersister_growth   # once
#   vegeta/ingest-ab.sh                                          # ROUNDS=3
#
# Each round attacks POST /v1/transactions at RATE for DURATION
# (vegeta/load.sh, with its drain check) on a new empty database
# (txpersister_ab_empty, dropped and created each round), then on FULL, the
# seeded database. It prints each run's rate and p99, the WAL it wrote per
# transaction (full-page images and bytes, from pg_stat_wal: what the
# machine's PostgreSQL did meanwhile, this run's load nearly all of it),
# and the medians, also written to RESULTS/ingest-ab.tsv.
#
# Variables (defaults in brackets): FULL [txpersister_growth], ROUNDS [3],
# RATE [2000], DURATION [30s], RESULTS [vegeta/results/ingest-ab-<UTC
# time>]. It needs the api's and the converter's ports free: stop a running
# `make run` first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
FULL=${FULL:-txpersister_growth}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-2000}
DURATION=${DURATION:-30s}
RESULTS=${RESULTS:-$root/vegeta/results/ingest-ab-$(date -u +%Y%m%dT%H%M%SZ)}
base=postgres://postgres@127.0.0.1:5432
admin=$base/postgres?sslmode=disable
mkdir -p "$RESULTS"
make -s build >/dev/null
psql "$admin" -Atc "SELECT 1 FROM pg_database WHERE datname = '$FULL'" | grep -q 1 ||
	{ echo "ingest-ab.sh: no database $FULL; seed it first (see the top of this script)" >&2; exit 2; }
stored=$(psql "$base/$FULL?sslmode=disable" -Atc "SELECT count(*) FROM transactions")

. vegeta/local-services.sh
trap stop_services EXIT
value() { sed -n "s/^$2=//p" "$1"; }

# once NAME DB: one attack on DB, its line of the table.
once() {
	local name=$1 db=$2 out=$RESULTS/$1
	export DATABASE_URL=$base/$db?sslmode=disable
	start_services "$RESULTS/run.log" 600 # the first start on FULL may migrate it
	local wal0 wal1
	wal0=$(psql "$admin" -Atc "SELECT wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
	RATE=$RATE DURATION=$DURATION DRAIN=60s RESULTS="$out" vegeta/load.sh >"$out.log" 2>&1 || true
	wal1=$(psql "$admin" -Atc "SELECT wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
	stop_services
	local a=$out/attack.env d=$out/drain.env
	# WAL written during the run, per accepted transaction: full-page
	# images (the first change of a page after a checkpoint) and bytes.
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(value "$a" accepted_per_second)" "$(value "$a" p99_ms)" \
		"$([ "$(value "$d" lost)" = 0 ] && echo yes || echo "no: $(value "$d" lost) lost")" \
		"$(awk -v a="$wal0" -v b="$wal1" -v n="$(value "$a" accepted)" 'BEGIN {split(a, x); split(b, y); printf "%.2f\t%.0f", (y[1]-x[1])/n, (y[2]-x[2])/n}')"
}

echo "FULL=$FULL ($stored transactions), RATE=$RATE, DURATION=$DURATION, ROUNDS=$ROUNDS" | tee "$RESULTS/params.txt"
printf 'run\tingest_per_s\tingest_p99_ms\tdrained\twal_fpi_per_tx\twal_bytes_per_tx\n' | tee "$RESULTS/ingest-ab.tsv"
for i in $(seq 1 "$ROUNDS"); do
	psql "$admin" -qc "DROP DATABASE IF EXISTS txpersister_ab_empty WITH (FORCE)" -qc "CREATE DATABASE txpersister_ab_empty"
	once "empty-$i" txpersister_ab_empty | tee -a "$RESULTS/ingest-ab.tsv"
	once "full-$i" "$FULL" | tee -a "$RESULTS/ingest-ab.tsv"
done
psql "$admin" -qc "DROP DATABASE IF EXISTS txpersister_ab_empty WITH (FORCE)"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
e=$(awk -F'\t' '$1 ~ /^empty/ {print $3}' "$RESULTS/ingest-ab.tsv" | median)
f=$(awk -F'\t' '$1 ~ /^full/ {print $3}' "$RESULTS/ingest-ab.tsv" | median)
echo "median p99: empty $e ms, full $f ms, full/empty $(awk -v e="$e" -v f="$f" 'BEGIN {printf "%.2f", f/e}')" | tee -a "$RESULTS/ingest-ab.tsv"
echo "results in $RESULTS"
