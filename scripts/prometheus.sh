#!/usr/bin/env bash
# prometheus.sh: prints the path of a Prometheus server binary for local
# runs: $PROMETHEUS, else `prometheus` on PATH, else the one inside Debian's
# prometheus package, downloaded and unpacked (never installed, so no
# service starts) into the cache that scripts/check-compose.sh shares.
set -euo pipefail

if [ -n "${PROMETHEUS:-}" ]; then
	echo "$PROMETHEUS"
	exit 0
fi
if command -v prometheus >/dev/null 2>&1; then
	command -v prometheus
	exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/check-compose"
bin="$cache/prometheus-deb/usr/bin/prometheus"
if [ ! -x "$bin" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	echo "prometheus.sh: fetching Debian's prometheus package (downloaded, not installed)" >&2
	(cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) ||
		(apt-get update -qq && cd "$tmp" && apt-get download prometheus >/dev/null) ||
		{ echo "prometheus.sh: cannot download Debian's prometheus package" >&2; exit 1; }
	mkdir -p "$cache"
	rm -rf "$cache/prometheus-deb"
	dpkg-deb -x "$tmp"/prometheus_*.deb "$cache/prometheus-deb"
fi
echo "$bin"
