#!/usr/bin/env bash
# jaeger.sh: prints the path of a Jaeger v2 binary, building it first when it
# is not in the cache yet.
#
# Jaeger is built from its Go module (github.com/jaegertracing/jaeger/cmd/jaeger)
# at the version tools/jaeger/go.mod pins, with the dependencies that module's
# go.sum fixes; tools/jaeger is kept out of go.work so Jaeger's dependencies
# never move the services' versions. The binary is cached under
# ${XDG_CACHE_HOME:-~/.cache}/txpersister/jaeger-<version>/jaeger; the first
# build takes about 8 minutes on a 2-core machine, later calls print the path
# at once. Build output goes to stderr, the path alone to stdout:
#
#   jaeger=$(scripts/jaeger.sh)
#   "$jaeger" --config tools/jaeger/config.yaml
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/tools/jaeger"

fail() {
	printf 'jaeger.sh: %s\n' "$*" >&2
	exit 1
}

version=$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2; exit }' "$mod/go.mod")
[ -n "$version" ] || fail "tools/jaeger/go.mod does not require github.com/jaegertracing/jaeger"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/jaeger-$version"
bin="$dir/jaeger"

if [ ! -x "$bin" ]; then
	command -v go >/dev/null || fail "go is not installed"
	mkdir -p "$dir"
	# One build at a time; a second caller waits, then finds the binary.
	exec 9>"$dir/.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if [ ! -x "$bin" ]; then
		echo "jaeger.sh: building Jaeger $version into $dir (about 8 minutes the first time)" >&2
		start=$(date +%s)
		tmp="$dir/jaeger.tmp.$$"
		trap 'rm -f "$tmp"' EXIT
		GOWORK=off GOFLAGS=-buildvcs=false \
			go build -C "$mod" -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2 ||
			fail "go build github.com/jaegertracing/jaeger/cmd/jaeger@$version failed (see above)"
		mv -f "$tmp" "$bin"
		echo "jaeger.sh: built in $(($(date +%s) - start)) s" >&2
	fi
fi
printf '%s\n' "$bin"
