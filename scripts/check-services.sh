#!/usr/bin/env bash
# check-services.sh makes sure PostgreSQL and RabbitMQ answer on localhost
# before the tests run. Where one does not answer, it starts it: with the
# local server's own command when it is installed here, else with docker
# compose when a Docker engine runs. Where neither is possible it fails,
# saying what to start.
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
	else
		echo "check-services: $name is not reachable and neither a local $name nor a Docker engine is here." >&2
		echo "  Start $name on localhost (see README.md, 'Requirements'), or install Docker." >&2
		return 1
	fi
}

if ! up $pg_host $pg_port; then
	start PostgreSQL postgres pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | tail -1)" main start
	wait_up PostgreSQL $pg_host $pg_port 60
fi
if ! up $mq_host $mq_port; then
	start RabbitMQ rabbitmq rabbitmq-server -detached
	wait_up RabbitMQ $mq_host $mq_port 90
fi
# RabbitMQ opens its port before it accepts logins; the tests' vhost helper
# needs rabbitmqctl too, which answers once the node is fully up.
if command -v rabbitmqctl >/dev/null 2>&1; then
	rabbitmqctl await_startup >/dev/null 2>&1 || { echo "check-services: RabbitMQ did not finish starting" >&2; exit 1; }
fi
echo "check-services: PostgreSQL on $pg_host:$pg_port and RabbitMQ on $mq_host:$mq_port answer"
