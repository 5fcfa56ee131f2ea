#!/usr/bin/env bash
# gotool.sh: prints the path of a binary built from a tools module (a
# module kept out of go.work, so its dependencies never move the services'
# versions), building it into the cache first when it is not there yet.
#
#   scripts/gotool.sh DIR MODULE PACKAGE [LDFLAGS]
#
# DIR is the tools module (tools/jaeger), MODULE the module it requires at
# the version to build (its go.mod pins it, its go.sum fixes the rest), and
# PACKAGE the main package. The binary is cached under
# ${XDG_CACHE_HOME:-~/.cache}/txpersister/<name>-<version>/<name>, named
# after PACKAGE's last element; one build runs at a time and a second
# caller waits for it. Build output goes to stderr, the path alone to
# stdout. In LDFLAGS, {version} stands for the version.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 3 ] || { echo "usage: gotool.sh DIR MODULE PACKAGE [LDFLAGS]" >&2; exit 2; }
mod="$root/$1" module=$2 pkg=$3 ldflags=${4:-}
name=$(basename "$pkg")
[[ $name =~ ^v[0-9]+$ ]] && name=$(basename "$(dirname "$pkg")")

fail() {
	printf '%s: %s\n' "$name" "$*" >&2
	exit 1
}

version=$(awk -v m="$module" '$1 == m { print $2; exit }' "$mod/go.mod")
[ -n "$version" ] || fail "$1/go.mod does not require $module"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/$name-$version"
bin="$dir/$name"

if [ ! -x "$bin" ]; then
	command -v go >/dev/null || fail "go is not installed"
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if [ ! -x "$bin" ]; then
		echo "$name: building $pkg $version into $dir" >&2
		start=$(date +%s)
		tmp="$dir/$name.tmp.$$"
		trap 'rm -f "$tmp"' EXIT
		GOWORK=off GOFLAGS=-buildvcs=false \
			go build -C "$mod" -o "$tmp" -ldflags "${ldflags//\{version\}/$version}" "$pkg" >&2 ||
			fail "go build $pkg@$version failed (see above)"
		mv -f "$tmp" "$bin"
		echo "$name: built in $(($(date +%s) - start)) s" >&2
	fi
fi
printf '%s\n' "$bin"
