# local-services.sh, sourced by the measuring scripts (growth.sh,
# ingest-ab.sh): the local processes (scripts/run-local.sh) on
# DATABASE_URL, started and stopped once per measurement.
#
#   start_services LOG [SECONDS]   start them, output appended to LOG, and
#                                  wait up to SECONDS [60] for both to be
#                                  ready; exit 2 if they are not
#   stop_services                  SIGTERM to their process group, and wait
#
# The caller sets `trap stop_services EXIT`.

run=''

start_services() {
	local log=$1 seconds=${2:-60}
	LOG_LEVEL=warn setsid scripts/run-local.sh >>"$log" 2>&1 &
	run=$!
	for _ in $(seq 1 "$seconds"); do
		curl -sf localhost:8081/readyz >/dev/null && curl -sf localhost:8082/readyz >/dev/null && return 0
		sleep 1
	done
	echo "$(basename "$0"): the services did not become ready within ${seconds}s; see $log" >&2
	exit 2
}

stop_services() {
	[ -n "$run" ] || return 0
	kill -TERM -- "-$run" 2>/dev/null || true
	wait "$run" 2>/dev/null || true
	run=''
}
