#!/usr/bin/env bash
# knee.sh: finds the highest rate the pipeline sustains. It runs short
# attacks (vegeta/load.sh) at rising rates, START, START+STEP, ... up to MAX,
# each followed by the drain, and stops at the first step that breaks a
# bound:
#   - the error ratio (transactions not answered 201/200) above MAX_ERROR_RATIO
#   - the request latency p99 above MAX_P99
#   - vegeta sending below 95% of the rate asked for (it ran out of workers:
#     the api answers too slowly for the rate)
#   - anything lost: an accepted transaction without an outcome DRAIN after
#     the step's attack, or an answer without a row
#
#   START=500 STEP=500 MAX=8000 STEP_DURATION=10s vegeta/knee.sh
#   MODE=batch BATCH=100 START=5000 STEP=5000 MAX=50000 vegeta/knee.sh
#
# Variables (defaults in brackets):
#   START, STEP, MAX   the rates to try, transactions a second [500, 500, 5000]
#   STEP_DURATION      each step's attack [10s]
#   MAX_ERROR_RATIO    [0.001]
#   MAX_P99            a duration: Nms, Ns or Nus [50ms]
#   RESULTS            the folder [vegeta/results/knee-<UTC time>], one
#                      sub-folder per step plus knee.txt and knee.tsv
#   MODE, BATCH, API_URL, API_KEY, DATABASE_URL, DRAIN, TIMEOUT, MAX_WORKERS
#                      as vegeta/load.sh takes them
#
# Exit status: 0 when at least one step held, 1 when none did, 2 when a step
# could not be run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

START=${START:-500}
STEP=${STEP:-500}
MAX=${MAX:-5000}
STEP_DURATION=${STEP_DURATION:-10s}
MAX_ERROR_RATIO=${MAX_ERROR_RATIO:-0.001}
MAX_P99=${MAX_P99:-50ms}
MODE=${MODE:-single}
BATCH=${BATCH:-100}
RESULTS=${RESULTS:-$root/vegeta/results/knee-$(date -u +%Y%m%dT%H%M%SZ)}

fail() {
	printf 'knee.sh: %s\n' "$*" >&2
	exit 2
}

for v in START STEP MAX; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || fail "$v=${!v}: want a positive whole number of transactions a second"
done
((START <= MAX)) || fail "START=$START is above MAX=$MAX"
((STEPS = (MAX - START) / STEP + 1))
((STEPS <= 100)) || fail "$STEPS steps from $START to $MAX by $STEP: at most 100; raise STEP"
[[ $MAX_ERROR_RATIO =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "MAX_ERROR_RATIO=$MAX_ERROR_RATIO: want a number such as 0.001"
max_p99_ms=$(awk -v d="$MAX_P99" 'BEGIN {
	if (d ~ /^[0-9]+(\.[0-9]+)?ms$/) { sub(/ms$/, "", d); print d + 0; exit }
	if (d ~ /^[0-9]+(\.[0-9]+)?(us|µs)$/) { sub(/(us|µs)$/, "", d); print d / 1000; exit }
	if (d ~ /^[0-9]+(\.[0-9]+)?s$/) { sub(/s$/, "", d); print d * 1000; exit }
	exit 1 }') || fail "MAX_P99=$MAX_P99: want a duration such as 50ms"

mkdir -p "$RESULTS"
dir=$(cd "$RESULTS" && pwd)
export MODE BATCH

# value prints the value of key in a name=value file, or "-".
value() {
	awk -F= -v k="$2" '$1 == k { v = substr($0, length(k) + 2) } END { print (v == "" ? "-" : v) }' "$1"
}

# above prints yes when a > b (decimal numbers).
above() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? "yes" : "no" }'; }

header=$(printf '%-8s %-9s %-9s %-9s %-8s %-9s %-9s %-9s %-9s %-9s %-6s %s' \
	rate sent/s requests accepted err_ratio p50_ms p99_ms max_ms drain_s e2e_p99 lost verdict)
printf 'rate\tsent_per_s\trequests\taccepted\terror_ratio\tp50_ms\tp99_ms\tmax_ms\tdrain_after_attack_s\te2e_p99_ms\tlost\tverdict\n' >"$dir/knee.tsv"
echo "$header" | tee "$dir/knee.txt"

best=0
broke=''
for ((rate = START; rate <= MAX; rate += STEP)); do
	step="$dir/rate-$rate"
	echo "knee.sh: $rate transactions/s for $STEP_DURATION ($MODE)" >&2
	set +e
	RATE=$rate DURATION=$STEP_DURATION RESULTS=$step "$root/vegeta/load.sh" >"$step.log" 2>&1
	status=$?
	set -e
	if [ "$status" -gt 1 ] || [ ! -f "$step/attack.env" ] || [ ! -f "$step/drain.env" ]; then
		tail -n 20 "$step.log" >&2
		fail "the step at $rate/s could not be run (exit status $status, log in $step.log)"
	fi
	a="$step/attack.env" d="$step/drain.env"
	sent=$(value "$a" rate)
	# vegeta's rate counts requests; in batch mode each carries BATCH.
	[ "$MODE" = batch ] && sent=$(awk -v r="$sent" -v b="$BATCH" 'BEGIN { printf "%.1f", r * b }')
	err=$(value "$a" error_ratio) p99=$(value "$a" p99_ms) lost=$(value "$d" lost)
	reasons=()
	[ "$(above "$err" "$MAX_ERROR_RATIO")" = yes ] && reasons+=("error ratio $err > $MAX_ERROR_RATIO")
	[ "$(above "$p99" "$max_p99_ms")" = yes ] && reasons+=("p99 ${p99}ms > $MAX_P99")
	[ "$(above "$((rate * 95))" "$(awk -v s="$sent" 'BEGIN { print s * 100 }')")" = yes ] &&
		reasons+=("sent $sent/s < 95% of $rate/s")
	[ "$lost" != 0 ] && reasons+=("$lost lost")
	verdict=held
	((${#reasons[@]} == 0)) || verdict="BROKE: $(
		IFS=';'
		echo "${reasons[*]}"
	)"
	row=("$rate" "$sent" "$(value "$a" requests)" "$(value "$a" accepted)" "$err" "$(value "$a" p50_ms)" "$p99"
		"$(value "$a" max_ms)" "$(value "$d" drain_after_attack_seconds)" "$(value "$d" e2e_p99_ms)" "$lost" "$verdict")
	(
		IFS=$'\t'
		echo "${row[*]}"
	) >>"$dir/knee.tsv"
	printf '%-8s %-9s %-9s %-9s %-8s %-9s %-9s %-9s %-9s %-9s %-6s %s\n' "${row[@]}" | tee -a "$dir/knee.txt"
	if [ "$verdict" != held ]; then
		broke=$verdict
		break
	fi
	best=$rate
done

{
	echo
	echo "mode $MODE$([ "$MODE" = batch ] && echo ", batches of $BATCH"), steps of $STEP_DURATION, bounds: error ratio <= $MAX_ERROR_RATIO, p99 <= $MAX_P99, sent >= 95% of the rate, nothing lost within ${DRAIN:-30s}"
	if ((best == 0)); then
		echo "no rate held: $START transactions/s already broke a bound (${broke#BROKE: })"
	elif [ -n "$broke" ]; then
		echo "highest rate sustained: $best transactions/s (the next step, $((best + STEP))/s, ${broke#BROKE: })"
	else
		echo "highest rate sustained: $best transactions/s, the last step tried (MAX=$MAX): the knee lies higher"
	fi
} | tee -a "$dir/knee.txt"
echo "results in $dir (knee.txt, knee.tsv, one folder and log per step)"
((best > 0))
