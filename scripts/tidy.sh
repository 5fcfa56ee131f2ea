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
# Our modules other modules require: the libs, and each service's schema.
libs=$(cd "$root" && ls -d libs/*/ services/*/schema/)

# version prints a module's current version from versions.yaml: the version
# of the module set that lists the module (tools/release reads the same file
# with a YAML parser; this reader knows only the layout versions.yaml keeps).
version() {
	awk -v m="$prefix/$1" '
		/^[^ #]/ || /^  [^ #-]/ { v = "" }
		$1 == "version:" { v = $2 }
		$1 == "-" && $2 == m && v != "" { print v; exit }
	' "$root/versions.yaml"
}

mods=${*:-$(cd "$root" && find libs services tools tests -name go.mod -not -path '*/testdata/*' -exec dirname {} \; | sort)}
for mod in $mods; do
	dir="$root/$mod"
	reps=()
	for lib in $libs; do
		lib=${lib%/}
		[ "$lib" = "$mod" ] && continue
		rel=$(realpath --relative-to="$dir" "$root/$lib")
		case $rel in .*) ;; *) rel=./$rel ;; esac # a path within the module: ./schema
		reps+=("$prefix/$lib")
		(cd "$dir" && go mod edit -replace="$prefix/$lib=$rel")
	done
	echo "tidy $mod"
	status=0
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod tidy) || status=$?
	for r in "${reps[@]}"; do
		(cd "$dir" && go mod edit -dropreplace="$r")
		# A lib the module newly imports comes in at the zero pseudo-version
		# of a replaced module: require the lib's current version instead.
		if grep -q "$r v0.0.0-00010101000000-000000000000" "$dir/go.mod"; then
			(cd "$dir" && go mod edit -require="$r@$(version "${r#"$prefix/"}")")
		fi
	done
	[ $status -eq 0 ] || exit $status
done
