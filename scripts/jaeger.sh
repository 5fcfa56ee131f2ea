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
exec "$(dirname "${BASH_SOURCE[0]}")/gotool.sh" tools/jaeger github.com/jaegertracing/jaeger github.com/jaegertracing/jaeger/cmd/jaeger
