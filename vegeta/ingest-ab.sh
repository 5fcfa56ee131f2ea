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
# statio DB: the blocks DB's indexes and tables have read from outside
# shared_buffers so far and found in them, "index table index table", and each index's and table's
# count to stderr.
statio() {
	local url=$base/$1?sslmode=disable
	psql "$url" -Atc "SELECT relname || '.' || indexrelname || ' ' || idx_blks_read FROM pg_statio_user_indexes ORDER BY 1" >&2
	psql "$url" -Atc "SELECT relname || '.(table) ' || heap_blks_read FROM pg_statio_user_tables ORDER BY 1" >&2
	psql "$url" -Atc "SELECT coalesce(sum(idx_blks_read), 0) || ' ' || coalesce(sum(heap_blks_read), 0) || ' ' ||
		coalesce(sum(idx_blks_hit), 0) || ' ' || coalesce(sum(heap_blks_hit), 0) FROM pg_statio_user_tables"
}

# once NAME DB: one attack on DB, its line of the table.
once() {
	local name=$1 db=$2 out=$RESULTS/$1
	export DATABASE_URL=$base/$db?sslmode=disable
	start_services "$RESULTS/run.log" 600 # the first start on FULL may migrate it
	# The outbox and the status index are queues: every transaction adds
	# a row and removes it. Autovacuum clears their dead rows within a
	# minute or so; where it is off (this project's development machines
	# have it off), each run would leave the next one 60,000 more to read
	# past on the full database, which is not the cost of its size.
	psql "$base/$db?sslmode=disable" -qc "VACUUM outbox, status_index"
	local wal0 wal1 io0 io1
	wal0=$(psql "$admin" -Atc "SELECT wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
	io0=$(statio "$db" 2>"$out.statio0")
	RATE=$RATE DURATION=$DURATION DRAIN=60s RESULTS="$out" vegeta/load.sh >"$out.log" 2>&1 &
	local load=$!
	# The blocks read are taken when the attack's results are written,
	# before load.sh's drain report, whose reads are not the ingest's.
	while [ ! -s "$out/attack.env" ] && kill -0 "$load" 2>/dev/null; do sleep 0.2; done
	io1=$(statio "$db" 2>"$out.statio1")
	wait "$load" || true
	wal1=$(psql "$admin" -Atc "SELECT wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
	stop_services
	local a=$out/attack.env d=$out/drain.env n
	n=$(value "$a" accepted)
	# Each table's and index's blocks read during the attack, per accepted
	# transaction.
	LC_ALL=C join <(LC_ALL=C sort "$out.statio0") <(LC_ALL=C sort "$out.statio1") |
		awk -v n="$n" '{printf "%s %.3f\n", $1, ($3-$2)/n}' | sort -k2 -rn >"$out.statio"
	# WAL written during the run, per accepted transaction: full-page
	# images (the first change of a page after a checkpoint) and bytes.
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(value "$a" accepted_per_second)" "$(value "$a" p99_ms)" \
		"$([ "$(value "$d" lost)" = 0 ] && echo yes || echo "no: $(value "$d" lost) lost")" \
		"$(awk -v a="$wal0" -v b="$wal1" -v c="$io0" -v d="$io1" -v n="$n" 'BEGIN {split(a, x); split(b, y); split(c, p); split(d, q); printf "%.2f\t%.0f\t%.3f\t%.3f\t%.1f\t%.1f", (y[1]-x[1])/n, (y[2]-x[2])/n, (q[1]-p[1])/n, (q[2]-p[2])/n, (q[3]-p[3])/n, (q[4]-p[4])/n}')"
}

echo "FULL=$FULL ($stored transactions), RATE=$RATE, DURATION=$DURATION, ROUNDS=$ROUNDS, autovacuum $(psql "$admin" -Atc 'SHOW autovacuum')" | tee "$RESULTS/params.txt"
printf 'run\tingest_per_s\tingest_p99_ms\tdrained\twal_fpi_per_tx\twal_bytes_per_tx\tidx_reads_per_tx\ttable_reads_per_tx\tidx_hits_per_tx\ttable_hits_per_tx\n' | tee "$RESULTS/ingest-ab.tsv"
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
