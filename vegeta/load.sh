#!/usr/bin/env bash
# load.sh: a vegeta attack on the running api with unique transactions, then
# a wait for the pipeline to drain, and a report of what became of every
# transaction the api accepted (read from the database).
#
#   RATE=1000 DURATION=30s vegeta/load.sh
#   MODE=batch BATCH=100 RATE=20000 DURATION=30s vegeta/load.sh
#
# Variables (defaults in brackets):
#   RATE          transactions a second [100]; in batch mode vegeta sends
#                 RATE/BATCH requests a second
#   DURATION      how long to attack, a Go duration such as 30s [10s]
#   MODE          single (POST /v1/transactions) or batch
#                 (POST /v1/transactions/batch) [single]
#   BATCH         transactions per batch request [100]
#   API_URL       the api [http://127.0.0.1:8080]; only this machine's
#                 addresses unless ALLOW_REMOTE=1
#   DATABASE_URL  the pipeline's database
#                 [postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable]
#   API_KEY       sent as Authorization: Bearer $API_KEY when set (an api
#                 started by make run lets every request in); mind the api's
#                 rate limit per key, RATE_LIMIT
#   DRAIN         how long to wait for the pipeline after the attack [30s]
#   TIMEOUT       vegeta's per-request timeout [10s]
#   MAX_WORKERS   vegeta's most concurrent requests [512]
#   RESULTS       the folder the results go to [vegeta/results/<UTC time>]
#
# The results folder holds results.bin (vegeta's raw results), report.txt and
# report.json (vegeta's reports), hist.txt (its latency histogram), plot.html
# (its latency plot), attack.txt/attack.json (the attack counted in
# transactions, batch results included), drain.txt/drain.json (the drain
# report), params.txt and summary.txt.
#
# Exit status: 0 when every accepted transaction was processed or failed
# within DRAIN, 1 when any was lost, 2 when the test could not be run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

RATE=${RATE:-100}
DURATION=${DURATION:-10s}
MODE=${MODE:-single}
BATCH=${BATCH:-100}
API_URL=${API_URL:-http://127.0.0.1:8080}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable}
DRAIN=${DRAIN:-30s}
TIMEOUT=${TIMEOUT:-10s}
MAX_WORKERS=${MAX_WORKERS:-512}
RESULTS=${RESULTS:-$root/vegeta/results/$(date -u +%Y%m%dT%H%M%SZ)}

fail() {
	printf 'load.sh: %s\n' "$*" >&2
	exit 2
}

# Check the parameters: every attack must end, and hit only this machine.
[[ $RATE =~ ^[1-9][0-9]*$ ]] || fail "RATE=$RATE: want a positive whole number of transactions a second"
[[ $DURATION =~ ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ && ! $DURATION =~ ^0+(\.0+)?[a-z]+$ ]] ||
	fail "DURATION=$DURATION: want a positive Go duration such as 30s (vegeta's 0, forever, is not allowed)"
[[ $DRAIN =~ ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ ]] || fail "DRAIN=$DRAIN: want a Go duration such as 30s"
case $MODE in
single) batch=0 rate="$RATE/1s" ;;
batch)
	if ! [[ $BATCH =~ ^[1-9][0-9]*$ ]] || ((BATCH > 1000)); then
		fail "BATCH=$BATCH: want 1 to 1000"
	fi
	batch=$BATCH
	# RATE transactions a second in batches of BATCH: RATE requests every
	# BATCH seconds, evenly spaced, whatever the remainder of RATE/BATCH.
	rate="$RATE/${BATCH}s"
	;;
*) fail "MODE=$MODE: want single or batch" ;;
esac
host=${API_URL#*://}
host=${host%%/*}
host=${host%:*}
case $host in
127.* | localhost | "[::1]") ;;
*) [ "${ALLOW_REMOTE:-}" = 1 ] || fail "API_URL=$API_URL is not on this machine; set ALLOW_REMOTE=1 to attack it anyway" ;;
esac

command -v go >/dev/null || fail "go is not installed"
vegeta=$("$root/vegeta/vegeta.sh") || fail "could not build vegeta"
bindir="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/loadgen"
mkdir -p "$bindir"
loadgen="$bindir/loadgen.$$"
trap 'rm -f "$loadgen"' EXIT
go build -C "$root" -o "$loadgen" ./vegeta/loadgen || fail "could not build vegeta/loadgen"

# Both ends must be there before the attack, not found missing after it.
"$loadgen" check -database-url "$DATABASE_URL" >/dev/null ||
	fail "the database at DATABASE_URL is not usable (see above); is the pipeline running (make run)?"
if command -v curl >/dev/null; then
	auth=()
	[ -n "${API_KEY:-}" ] && auth=(-H @-)
	# The key goes in through stdin, not the command line (no pipe: curl
	# need not read it, and an unread pipe would fail the check).
	curl -sS -o /dev/null --max-time 5 "${auth[@]}" "$API_URL/v1/transactions?limit=1" \
		<<<"Authorization: Bearer ${API_KEY:-}" ||
		fail "the api does not answer at $API_URL; start it (make run, or docker compose up)"
fi

mkdir -p "$RESULTS"
dir=$(cd "$RESULTS" && pwd)
run="$(date -u +%Y%m%dT%H%M%S)-$RANDOM"
# A batch answer's body holds each transaction's status, which attack.txt
# counts; a single answer's status code says it all.
maxbody=0
[ "$MODE" = batch ] && maxbody=-1
{
	echo "run=$run"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "mode=$MODE"
	[ "$MODE" = batch ] && echo "batch=$BATCH"
	echo "rate=$RATE transactions/s (vegeta -rate=$rate)"
	echo "duration=$DURATION"
	echo "api_url=$API_URL"
	echo "drain=$DRAIN"
	echo "vegeta=$("$vegeta" -version | awk '/^Version/ { print $2 }') -timeout=$TIMEOUT -max-workers=$MAX_WORKERS -keepalive=true -max-body=$maxbody"
	echo "machine=$(nproc) cores, $(uname -sr)"
} >"$dir/params.txt"

echo "load.sh: run $run: $MODE, $RATE transactions/s for $DURATION against $API_URL" >&2
set +e
"$loadgen" targets -url "$API_URL" -run "$run" -batch "$batch" |
	"$vegeta" attack -format=json -lazy -name="$run" -rate="$rate" -duration="$DURATION" \
		-timeout="$TIMEOUT" -max-workers="$MAX_WORKERS" -keepalive=true -max-body="$maxbody" \
		>"$dir/results.bin"
status=("${PIPESTATUS[@]}")
set -e
[ "${status[1]}" -eq 0 ] || fail "vegeta attack failed (exit status ${status[1]})"
[ "${status[0]}" -eq 0 ] || fail "loadgen targets failed (exit status ${status[0]})"

"$vegeta" encode -to=json "$dir/results.bin" |
	"$loadgen" results -batch "$batch" -json "$dir/attack.json" -shell "$dir/attack.env" >"$dir/attack.txt"

# The attack's start and end, and how many transactions it got 201/200 for.
accepted='' start='' end=''
while IFS='=' read -r k v; do
	case $k in
	accepted) accepted=$v ;;
	start) start=$v ;;
	end) end=$v ;;
	esac
done <"$dir/attack.env"
[ -n "$accepted" ] || fail "no accepted count in $dir/attack.env"
since=()
[ -n "$start" ] && [ "$start" != 0001-01-01T00:00:00Z ] && since=(-since "$start" -attack-end "$end")

echo "load.sh: attack done, waiting up to $DRAIN for the pipeline to drain" >&2
set +e
"$loadgen" report -run "$run" -database-url "$DATABASE_URL" -expect "$accepted" -drain "$DRAIN" "${since[@]}" \
	-json "$dir/drain.json" -shell "$dir/drain.env" >"$dir/drain.txt"
drain_status=$?
set -e
[ "$drain_status" -le 1 ] || fail "loadgen report failed (exit status $drain_status)"

# vegeta's reports come after the drain report, so that their time does not
# count as the pipeline's.
"$vegeta" report "$dir/results.bin" >"$dir/report.txt"
"$vegeta" report -type=json "$dir/results.bin" >"$dir/report.json"
"$vegeta" report -type='hist[0,2ms,5ms,10ms,20ms,50ms,100ms,200ms,500ms,1s]' "$dir/results.bin" >"$dir/hist.txt"
"$vegeta" plot -title="txpersister $MODE, $RATE tx/s for $DURATION (run $run)" "$dir/results.bin" >"$dir/plot.html"

{
	echo "== vegeta ($MODE, $RATE transactions/s for $DURATION)"
	cat "$dir/report.txt"
	echo
	echo "== in transactions"
	cat "$dir/attack.txt"
	echo
	echo "== request latency histogram"
	cat "$dir/hist.txt"
	echo
	echo "== pipeline"
	cat "$dir/drain.txt"
} >"$dir/summary.txt"
cat "$dir/summary.txt"
echo
echo "results in $dir (summary.txt, report.txt, hist.txt, plot.html, drain.txt, ...)"
exit "$drain_status"
