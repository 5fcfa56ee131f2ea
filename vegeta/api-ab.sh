#!/usr/bin/env bash
# api-ab.sh: two builds of the api, alternating, under the same batch
# attack, each on a new database beside the same converter and ratesd:
#
#   vegeta/api-ab.sh /tmp/api-old /tmp/api-new      # ROUNDS=2
#   vegeta/api-ab.sh /tmp/bin-old /tmp/bin-new      # directories: api and converter both
#
# Build each with `make build` and copy bin/api away (or bin/ whole, for a
# directory holding an api and a converter: both are swapped). Each run prints the
# drain report of `make load MODE=batch BATCH=100 RATE=20000 DURATION=30s
# DRAIN=120s` (override with RATE, DURATION, DRAIN), then the api's CPU
# seconds (utime + stime, /proc), peak resident (VmHWM; the converter's too) and, for a build
# with the in-flight bound, the ingest requests it refused
# (txpersister_ingest_shed_total), and the converter's CPU seconds. bin/
# is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 API_A API_B" >&2; exit 2; }
source vegeta/local-services.sh
cp bin/api bin/api.ab-saved
cp bin/converter bin/converter.ab-saved
restore() { stop_services; mv -f bin/api.ab-saved bin/api; mv -f bin/converter.ab-saved bin/converter; }
trap restore EXIT
admin=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
mkdir -p vegeta/results
for round in $(seq 1 "${ROUNDS:-2}"); do
	for build in "$1" "$2"; do
		psql "$admin" -qc 'DROP DATABASE IF EXISTS txpersister WITH (FORCE)'
		if [ -d "$build" ]; then
			cp "$build/api" bin/api
			cp "$build/converter" bin/converter
		else
			cp "$build" bin/api
			cp bin/converter.ab-saved bin/converter
		fi
		start_services vegeta/results/api-ab-services.log
		pid=$(pgrep -f '^bin/api' | head -1) cpid=$(pgrep -f '^bin/converter' | head -1)
		echo "=== round $round, $build, $(date -u +%T), api pid $pid"
		make --no-print-directory load MODE=batch BATCH=100 RATE="${RATE:-20000}" DURATION="${DURATION:-30s}" DRAIN="${DRAIN:-120s}" 2>&1 | sed -n '/== pipeline/,$p'
		awk '{print "api CPU seconds (utime+stime):", ($14+$15)/100}' "/proc/$pid/stat"
		grep VmHWM "/proc/$pid/status"
		echo "converter $(grep VmHWM "/proc/$cpid/status")"
		awk '{print "converter CPU seconds (utime+stime):", ($14+$15)/100}' "/proc/$cpid/stat"
		# The ingest requests refused for want of room (api 0.6 on).
		curl -fsS localhost:8081/metrics | grep -E '^txpersister_ingest_shed_total' || true
		stop_services
	done
done
