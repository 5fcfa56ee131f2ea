#!/usr/bin/env bash
# check-services.sh makes sure PostgreSQL and RabbitMQ answer on localhost
# before the tests run. Where one does not answer, it starts it: with the
# local server's own command when it is installed here, else with docker
# compose when a Docker engine runs. Where neither is possible it fails,
# saying what to start.
#
# The tests administer RabbitMQ (a vhost per test) with rabbitmqctl when it
# is installed here, else through the management HTTP API (the broker of
# docker-compose.yml publishes it on 15672); TEST_AMQP_ADMIN=rabbitmqctl or
# =http forces one, TEST_AMQP_MANAGEMENT_URL moves the API (see
# libs/amqpx/amqptest). This script checks that the chosen way answers.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_host=127.0.0.1 pg_port=5432 mq_host=127.0.0.1 mq_port=5672

up() { timeout 1 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }

wait_up() { # name host port seconds
	for _ in $(seq 1 "$4"); do
		up "$2" "$3" && return 0
		sleep 1
	done
	echo "check-services: $1 still not answering on $2:$3 after $4 s" >&2
	return 1
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

start() { # name compose-service local-command...
	local name=$1 svc=$2
	shift 2
	if command -v "$1" >/dev/null 2>&1; then
		echo "check-services: $name is not answering; starting the local server: $*"
		"$@" >/dev/null 2>&1 || true
	elif docker_engine; then
		echo "check-services: $name is not answering; starting it with docker compose"
		docker compose up -d --wait "$svc"
		compose_started+=" $svc"
	else
		echo "check-services: $name is not reachable and neither a local $name nor a Docker engine is here." >&2
		echo "  Start $name on localhost (see README.md, 'Requirements'), or install Docker." >&2
		return 1
	fi
}

compose_started=""
if ! up $pg_host $pg_port; then
	start PostgreSQL postgres pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | tail -1)" main start
	wait_up PostgreSQL $pg_host $pg_port 60
fi
if ! up $mq_host $mq_port; then
	start RabbitMQ rabbitmq rabbitmq-server -detached
	wait_up RabbitMQ $mq_host $mq_port 90
fi

# How the tests will administer RabbitMQ, as amqptest chooses it.
admin=${TEST_AMQP_ADMIN:-}
if [ -z "$admin" ]; then
	if command -v rabbitmqctl >/dev/null 2>&1; then admin=rabbitmqctl; else admin=http; fi
fi
case $admin in
rabbitmqctl)
	# RabbitMQ opens its port before it accepts logins; rabbitmqctl answers
	# once the node is fully up.
	if ! rabbitmqctl await_startup >/dev/null 2>&1; then
		echo "check-services: rabbitmqctl cannot reach a running RabbitMQ node on this machine" >&2
		echo "  (it did not finish starting, or this user may not run rabbitmqctl: use root or rabbitmq)." >&2
		echo "  If the broker on $mq_host:$mq_port runs in a container (make up), run the tests with" >&2
		echo "  TEST_AMQP_ADMIN=http to administer it through its management API." >&2
		exit 1
	fi
	;;
http)
	mgmt_url=${TEST_AMQP_MANAGEMENT_URL:-http://$mq_host:15672}
	hostport=${mgmt_url#*://}
	hostport=${hostport%%/*}
	mgmt_host=${hostport%:*} mgmt_port=${hostport##*:}
	if [ "$mgmt_host" = "$hostport" ]; then # no port in the URL
		case $mgmt_url in https://*) mgmt_port=443 ;; *) mgmt_port=80 ;; esac
	fi
	mgmt_host=${mgmt_host#[} mgmt_host=${mgmt_host%]}
	# A broker just started with compose may open the API a little after
	# its AMQP port; any other broker either has the API or does not.
	wait=1
	[[ $compose_started == *rabbitmq* ]] && wait=60
	if ! wait_up "RabbitMQ's management API" "$mgmt_host" "$mgmt_port" $wait 2>/dev/null; then
		why="rabbitmqctl is not installed here"
		[ -n "${TEST_AMQP_ADMIN:-}" ] && why="TEST_AMQP_ADMIN=http"
		echo "check-services: $why, and RabbitMQ's management API does not answer at $mgmt_url." >&2
		echo "  The tests administer RabbitMQ with one of the two: install RabbitMQ's CLI tools on the broker's" >&2
		echo "  machine, or enable the rabbitmq_management plugin (docker-compose.yml's broker has it)" >&2
		echo "  and set TEST_AMQP_MANAGEMENT_URL if it is not at http://$mq_host:15672." >&2
		exit 1
	fi
	;;
*)
	echo "check-services: TEST_AMQP_ADMIN=$admin: want rabbitmqctl, http or empty" >&2
	exit 1
	;;
esac
echo "check-services: PostgreSQL on $pg_host:$pg_port and RabbitMQ on $mq_host:$mq_port answer (RabbitMQ administered with $admin)"
