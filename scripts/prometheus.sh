#!/usr/bin/env bash
# prometheus.sh: prints the path of a Prometheus binary, `prometheus` (the
# server, the default) or `promtool`: $PROMETHEUS (for the server), else the
# one on PATH, else the one inside Debian's prometheus package, downloaded
# and unpacked (never installed, so no service starts) into
# ${XDG_CACHE_HOME:-~/.cache}/txpersister/check-compose/prometheus-deb.
# The one place that fetches it: make prometheus-local, check-compose.sh and
# the e2e Prometheus test all call it. The path alone goes to stdout.
#
#   scripts/prometheus.sh [prometheus|promtool]
set -euo pipefail

name=${1:-prometheus}
case $name in
prometheus | promtool) ;;
*) echo "usage: prometheus.sh [prometheus|promtool]" >&2; exit 2 ;;
esac
if [ "$name" = prometheus ] && [ -n "${PROMETHEUS:-}" ]; then
	echo "$PROMETHEUS"
	exit 0
fi
if command -v "$name" >/dev/null 2>&1; then
	command -v "$name"
	exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/check-compose"
deb="$cache/prometheus-deb"
bin="$deb/usr/bin/$name"
if [ ! -x "$bin" ]; then
	command -v apt-get >/dev/null || { echo "prometheus.sh: $name is not on PATH and there is no apt-get to fetch Debian's prometheus package" >&2; exit 1; }
	mkdir -p "$cache"
	tmp=$(mktemp -d)
	staging=$(mktemp -d "$cache/prometheus-deb-XXXXXX")
	trap 'rm -rf "$tmp" "$staging"' EXIT
	echo "prometheus.sh: fetching Debian's prometheus package (downloaded, not installed)" >&2
	(cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) ||
		(apt-get update -qq && cd "$tmp" && apt-get download prometheus >/dev/null) ||
		{ echo "prometheus.sh: cannot download Debian's prometheus package" >&2; exit 1; }
	dpkg-deb -x "$tmp"/prometheus_*.deb "$staging" ||
		{ echo "prometheus.sh: cannot unpack Debian's prometheus package" >&2; exit 1; }
	# Unpacked beside the cache and renamed into place, so that a concurrent
	# caller never sees half a tree; if another one won the race, keep its.
	mv -T "$staging" "$deb" 2>/dev/null || true
fi
[ -x "$bin" ] || { echo "prometheus.sh: $bin is missing after unpacking" >&2; exit 1; }
echo "$bin"
