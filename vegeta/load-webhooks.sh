#!/usr/bin/env bash
# load-webhooks.sh: vegeta/load.sh with a webhook endpoint subscribed to
# both events, so that every accepted transaction is also a webhook
# message: the cost of webhooks, beside a run of load.sh without them.
#
#   make run                                  # WEBHOOK_ALLOW_PRIVATE=true
#   RATE=2000 DURATION=30s vegeta/load-webhooks.sh
#
# It starts `loadgen sink` (a receiver that answers 204 and counts) on
# SINK_ADDR [127.0.0.1:9099], subscribes it (POST /v1/webhooks), runs
# load.sh with the same variables, waits up to WEBHOOK_DRAIN [60s] for a
# message of each accepted transaction, deletes the endpoint again, and
# writes webhooks.env to load.sh's results folder: accepted, messages,
# distinct webhook-ids, and the last message's time after the attack's end.
#
# Exit status: load.sh's, or 1 when messages are missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
API_URL=${API_URL:-http://127.0.0.1:8080}
SINK_ADDR=${SINK_ADDR:-127.0.0.1:9099}
WEBHOOK_DRAIN=${WEBHOOK_DRAIN:-60s}
export RESULTS=${RESULTS:-$root/vegeta/results/webhooks-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS"
auth=()
[ -n "${API_KEY:-}" ] && auth=(-H "Authorization: Bearer $API_KEY")

loadgen=$RESULTS/loadgen
go build -o "$loadgen" ./vegeta/loadgen
"$loadgen" sink -addr "$SINK_ADDR" >"$RESULTS/sink.txt" 2>"$RESULTS/sink.log" &
sink=$!
hook=''
cleanup() {
	[ -n "$hook" ] && curl -s -o /dev/null -X DELETE "${auth[@]}" "$API_URL/v1/webhooks/$hook"
	kill "$sink" 2>/dev/null || true
	wait "$sink" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -sf "http://$SINK_ADDR/count" >/dev/null && break; sleep 0.1; done
hook=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' "$API_URL/v1/webhooks" \
	-d "{\"url\": \"http://$SINK_ADDR/hooks\", \"events\": [\"transaction.processed\", \"transaction.failed\"]}" |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$hook" ] || { echo "load-webhooks.sh: POST /v1/webhooks failed (does the api run with WEBHOOK_ALLOW_PRIVATE=true?)" >&2; exit 2; }

status=0
vegeta/load.sh || status=$?
accepted=$(sed -n 's/^accepted=//p' "$RESULTS/attack.env")
end=$(sed -n 's/^end=//p' "$RESULTS/attack.env")
deadline=$(($(date +%s) + ${WEBHOOK_DRAIN%s}))
while :; do
	read -r messages distinct last < <(curl -sf "http://$SINK_ADDR/count")
	[ "$distinct" -ge "$accepted" ] && break
	[ "$(date +%s)" -ge "$deadline" ] && break
	sleep 0.2
done
after=$(awk -v l="$last" -v e="$(date -d "$end" +%s.%N)" 'BEGIN {printf "%.3f", l/1000 - e}')
{
	echo "accepted=$accepted"
	echo "messages=$messages"
	echo "distinct=$distinct"
	echo "last_message_after_attack_seconds=$after"
} | tee "$RESULTS/webhooks.env"
if [ "$distinct" -lt "$accepted" ]; then
	echo "load-webhooks.sh: $((accepted - distinct)) of $accepted transactions' messages missing after $WEBHOOK_DRAIN" >&2
	exit 1
fi
exit "$status"
