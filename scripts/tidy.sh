#!/usr/bin/env bash
# tidy.sh runs `go mod tidy` in every module of the workspace.
#
# `go mod tidy` ignores go.work, so in a module that requires one of our own
# libs it would look the lib up on the module proxy, where our unreleased
# versions are not. For the duration of the tidy, each module gets `replace`
# directives pointing at the local libs; they are removed again afterwards,
# so go.mod keeps requiring the released versions it names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=github.com/txpersister/txpersister
libs=$(cd "$root" && ls -d libs/*/)

mods=${*:-$(cd "$root" && find libs services tools -name go.mod -not -path '*/testdata/*' -exec dirname {} \; | sort)}
for mod in $mods; do
	dir="$root/$mod"
	reps=()
	for lib in $libs; do
		lib=${lib%/}
		[ "$lib" = "$mod" ] && continue
		rel=$(realpath --relative-to="$dir" "$root/$lib")
		reps+=("$prefix/$lib")
		(cd "$dir" && go mod edit -replace="$prefix/$lib=$rel")
	done
	echo "tidy $mod"
	status=0
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod tidy) || status=$?
	for r in "${reps[@]}"; do
		(cd "$dir" && go mod edit -dropreplace="$r")
	done
	[ $status -eq 0 ] || exit $status
done
