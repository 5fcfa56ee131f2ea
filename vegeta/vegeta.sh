#!/usr/bin/env bash
# vegeta.sh: prints the path of a vegeta binary, building it first when it is
# not in the cache yet.
#
# vegeta is built from its Go module (github.com/tsenart/vegeta/v12) at the
# version vegeta/tool/go.mod pins, with the dependencies that module's
# go.sum fixes; vegeta/tool is kept out of go.work so vegeta's dependencies
# never move the services' versions. The binary is cached under
# ${XDG_CACHE_HOME:-~/.cache}/txpersister/vegeta-<version>/vegeta; the first
# build takes about 10 seconds, later calls print the path at once. Build
# output goes to stderr, the path alone to stdout:
#
#   vegeta=$(vegeta/vegeta.sh)
#   "$vegeta" -version
set -euo pipefail
# vegeta -version prints main.Version, which only its release builds set.
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/gotool.sh" vegeta/tool github.com/tsenart/vegeta/v12 github.com/tsenart/vegeta/v12 "-X main.Version={version}"
