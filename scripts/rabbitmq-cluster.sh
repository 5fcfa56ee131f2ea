#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, from Debian's
# rabbitmq-server, beside the machine's own broker and apart from it: nodes
# txp-a, txp-b and txp-c @localhost, AMQP on 127.0.0.1 ports PORT, PORT+1 and
# PORT+2 (CLUSTER_PORT, default 5681), Erlang distribution on 20000 above
# each, no plugins, and their own Erlang cookie, data and logs under
# CLUSTER_DIR (default ${TMPDIR:-/tmp}/txpersister-rabbitmq-cluster). The
# services' quorum queues get a member on every node. Used by `make
# test-cluster` (tests/e2e, cluster_test.go); by hand:
#
#   scripts/rabbitmq-cluster.sh start     # prints the AMQP_URL list
#   AMQP_URL=$(scripts/rabbitmq-cluster.sh urls) make run
#   scripts/rabbitmq-cluster.sh leader transactions.convert
#   scripts/rabbitmq-cluster.sh kill txp-a      # SIGKILL, as a crash
#   scripts/rabbitmq-cluster.sh restart txp-a   # it rejoins by itself
#   scripts/rabbitmq-cluster.sh stop      # stops the nodes, removes CLUSTER_DIR
#
# Other commands: status, urls, ctl NODE ARGS... (rabbitmqctl on NODE).
set -euo pipefail

DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/txpersister-rabbitmq-cluster}
PORT=${CLUSTER_PORT:-5681}
NODES=(txp-a txp-b txp-c)
# The scripts themselves: /usr/sbin's wrappers would run them as the
# rabbitmq user, with its home and its cookie.
BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

[[ -x $BIN/rabbitmq-server ]] || die "no $BIN/rabbitmq-server: install Debian's rabbitmq-server (apt-get install rabbitmq-server)"

# index NODE: 0, 1 or 2.
index() {
	local i
	for i in "${!NODES[@]}"; do
		[[ ${NODES[$i]} == "$1" ]] && { echo "$i"; return; }
	done
	die "no node $1; the nodes are ${NODES[*]}"
}

ctl() { # ctl NODE ARGS...
	local node=$1
	shift
	# ERL_CRASH_DUMP_SECONDS=0: a CLI that cannot reach a node leaves no
	# erl_crash.dump in the working directory.
	HOME=$DIR ERL_CRASH_DUMP_SECONDS=0 "$BIN/rabbitmqctl" -n "$node@localhost" "$@"
}

start_node() { # start_node NODE: starts it detached, returns once it boots
	local node=$1 i port
	i=$(index "$node")
	port=$((PORT + i))
	mkdir -p "$DIR/$node"
	printf 'listeners.tcp.local = 127.0.0.1:%d\nloopback_users.guest = true\n' "$port" >"$DIR/$node/rabbitmq.conf"
	(
		cd "$DIR" # where an Erlang crash dump lands
		export HOME=$DIR
		export RABBITMQ_NODENAME=$node@localhost RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 20000))
		export RABBITMQ_MNESIA_BASE=$DIR/$node/mnesia RABBITMQ_LOG_BASE=$DIR/$node/log RABBITMQ_PID_FILE=$DIR/$node/pid
		export RABBITMQ_CONFIG_FILE=$DIR/$node/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/plugins
		export RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/$node/advanced.config
		"$BIN/rabbitmq-server" -detached
	)
	ctl "$node" -q wait --timeout 120 "$DIR/$node/pid" || die "$node did not start; its log: $DIR/$node/log"
}

urls() {
	local i list=()
	for i in "${!NODES[@]}"; do
		list+=("amqp://guest:guest@127.0.0.1:$((PORT + i))/")
	done
	(IFS=,; echo "${list[*]}")
}

pid_of() { # pid_of NODE: the node's Erlang VM, from its pid file
	local f=$DIR/$1/pid
	[[ -s $f ]] || die "$1 has no pid file ($f): not started here"
	cat "$f"
}

case ${1:-} in
start)
	for node in "${NODES[@]}"; do
		if ctl "$node" -q ping >/dev/null 2>&1; then
			die "$node is running already; scripts/rabbitmq-cluster.sh stop first"
		fi
	done
	rm -rf "$DIR"
	mkdir -p "$DIR"
	echo '[].' >"$DIR/plugins"
	head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DIR/.erlang.cookie"
	chmod 400 "$DIR/.erlang.cookie"
	for node in "${NODES[@]}"; do
		start_node "$node"
	done
	for node in "${NODES[@]:1}"; do
		ctl "$node" -q stop_app
		ctl "$node" -q join_cluster "${NODES[0]}@localhost"
		ctl "$node" -q start_app
	done
	running=$(ctl "${NODES[0]}" -q eval 'length(rabbit_nodes:all_running()).')
	[[ $running == 3 ]] || die "the cluster runs $running nodes, want 3"
	echo "three nodes running in $DIR; AMQP_URL=$(urls)" >&2
	urls
	;;
stop)
	for node in "${NODES[@]}"; do
		if [[ -s $DIR/$node/pid ]]; then
			ctl "$node" -q stop 2>/dev/null || kill -9 "$(cat "$DIR/$node/pid")" 2>/dev/null || true
		fi
	done
	rm -rf "$DIR"
	;;
kill)
	[[ $# == 2 ]] || die "usage: $0 kill NODE"
	kill -9 "$(pid_of "$2")"
	;;
restart)
	[[ $# == 2 ]] || die "usage: $0 restart NODE"
	start_node "$2"
	;;
leader)
	[[ $# -ge 2 ]] || die "usage: $0 leader QUEUE [VHOST]"
	for node in "${NODES[@]}"; do
		if out=$(ctl "$node" -q list_queues -p "${3:-/}" --no-table-headers name leader 2>/dev/null); then
			awk -v q="$2" '$1 == q { sub(/@.*/, "", $2); print $2; found = 1 } END { exit !found }' <<<"$out" ||
				die "no queue $2 in vhost ${3:-/}"
			exit 0
		fi
	done
	die "no node answers"
	;;
status)
	for node in "${NODES[@]}"; do
		ctl "$node" -q ping >/dev/null 2>&1 && echo "$node running" || echo "$node down"
	done
	;;
urls) urls ;;
ctl)
	[[ $# -ge 2 ]] || die "usage: $0 ctl NODE ARGS..."
	shift
	ctl "$@"
	;;
*)
	sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
