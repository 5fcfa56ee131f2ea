#!/usr/bin/env bash
# vegeta.sh: prints the path of a vegeta binary, building it first when it is
# not in the cache yet.
#
# vegeta is built from its Go module (github.com/tsenart/vegeta/v12) at the
# version tools/vegeta/go.mod pins, with the dependencies that module's
# go.sum fixes; tools/vegeta is kept out of go.work so vegeta's dependencies
# never move the services' versions. The binary is cached under
# ${XDG_CACHE_HOME:-~/.cache}/txpersister/vegeta-<version>/vegeta; the first
# build takes about 10 seconds, later calls print the path at once. Build
# output goes to stderr, the path alone to stdout:
#
#   vegeta=$(vegeta/vegeta.sh)
#   "$vegeta" -version
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/tools/vegeta"

fail() {
	printf 'vegeta.sh: %s\n' "$*" >&2
	exit 1
}

version=$(awk '$1 == "github.com/tsenart/vegeta/v12" { print $2; exit }' "$mod/go.mod")
[ -n "$version" ] || fail "tools/vegeta/go.mod does not require github.com/tsenart/vegeta/v12"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/vegeta-$version"
bin="$dir/vegeta"

if [ ! -x "$bin" ]; then
	command -v go >/dev/null || fail "go is not installed"
	mkdir -p "$dir"
	# One build at a time; a second caller waits, then finds the binary.
	exec 9>"$dir/.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if [ ! -x "$bin" ]; then
		echo "vegeta.sh: building vegeta $version into $dir" >&2
		tmp="$dir/vegeta.tmp.$$"
		trap 'rm -f "$tmp"' EXIT
		# vegeta -version prints main.Version, which only its release
		# builds set; set it here too.
		GOWORK=off GOFLAGS=-buildvcs=false \
			go build -C "$mod" -o "$tmp" -ldflags "-X main.Version=$version" github.com/tsenart/vegeta/v12 >&2 ||
			fail "go build github.com/tsenart/vegeta/v12@$version failed (see above)"
		mv -f "$tmp" "$bin"
	fi
fi
printf '%s\n' "$bin"
