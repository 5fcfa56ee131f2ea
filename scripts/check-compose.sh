#!/usr/bin/env bash
# check-compose.sh: validates the container setup on a machine with no Docker
# engine (`make check-compose`):
#
#   1. docker-compose.yml, and it merged with docker-compose.prod.yml, with
#      compose-go, the library `docker compose` (v2) itself loads files with:
#      merge, !reset/!override, interpolation, schema, references; plus the
#      checks of tools/composecheck (bind-mount sources exist, service_healthy
#      dependencies have a healthcheck, the published ports are exactly the
#      intended ones, production credentials come from .env.prod — read from
#      .env.prod.example when .env.prod is absent);
#   2. every Dockerfile with BuildKit's parser and linter, then its `go build`
#      line, as written, in its build stage as its WORKDIR and COPY lines lay
#      it out from the build context filtered by .dockerignore, with the
#      module proxy of our libs at results/goproxy, built the way `make up`
#      builds it (tools/release proxy): so a build that reads anything but
#      its own module's directory, or requires a lib version that was never
#      released, fails here. Each binary must be static (CGO_ENABLED=0),
#      the build of the module of its Dockerfile's directory, and built from
#      versions, no module taken from a local directory;
#   3. ops/prometheus with promtool (config, which includes the rule files,
#      and the rules), and the alert rules' unit tests (alerts_test.yml).
#
# It installs what it lacks by itself: tools/composecheck is built with the
# Go toolchain (a module outside go.work, fetched through the Go module
# proxy); promtool comes from scripts/prometheus.sh, out of Debian's prometheus package with
# apt-get download + dpkg-deb, never installed, so no Prometheus server is
# started. Both are cached under ${XDG_CACHE_HOME:-~/.cache}/txpersister,
# and so is the module cache of the replayed builds (public modules only:
# ours are removed from it before every run).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/txpersister/check-compose"
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
	printf '\ncheck-compose: FAILED: %s\n' "$*" >&2
	exit 1
}

# The host ports each stack publishes; anything else published is an error.
dev_ports="api:8080,api:8081,converter:8082,ratesd:8090,postgres:5432"
dev_ports+=",rabbitmq:5672,rabbitmq:15672,rabbitmq:15692"
dev_ports+=",jaeger:16686,jaeger:4317,jaeger:4318,prometheus:9090,grafana:3000"
prod_ports="api:8080,grafana:3000"
# What production must get from .env.prod.
prod_env="postgres:POSTGRES_PASSWORD,rabbitmq:RABBITMQ_DEFAULT_USER,rabbitmq:RABBITMQ_DEFAULT_PASS"
prod_env+=",api:DATABASE_URL,api:AMQP_URL,converter:DATABASE_URL,converter:AMQP_URL"
prod_env+=",grafana:GF_SECURITY_ADMIN_PASSWORD"

step "build tools/composecheck"
command -v go >/dev/null || fail "go is not installed"
cc="$cache/composecheck"
GOWORK=off GOFLAGS= go build -C tools/composecheck -o "$cc" . ||
	fail "cannot build tools/composecheck"

step "the build context, with the module proxy make up writes to results/goproxy"
# The same command as `make images-proxy`, into a directory of this run's
# own, put at results/goproxy of the context copy through .dockerignore.
GOWORK=off go -C tools/release run . proxy -o "$tmp/goproxy" ||
	fail "cannot build the module proxy (tools/release proxy)"
"$cc" context -add "results/goproxy=$tmp/goproxy" -o "$tmp/context" . ||
	fail "cannot copy the build context"

step "compose files (compose-go)"
"$cc" compose -context "$tmp/context" -published "$dev_ports" docker-compose.yml ||
	fail "docker-compose.yml"
"$cc" compose -context "$tmp/context" -published "$prod_ports" -require-env "$prod_env" \
	docker-compose.yml docker-compose.prod.yml ||
	fail "docker-compose.yml + docker-compose.prod.yml"

step "Dockerfiles (BuildKit parser) and their go build lines"
# The builds' module cache: kept between runs for the public modules, never
# for ours, which must come from the proxy above as in an image build. A
# run holds it to the end, so that a concurrent one cannot empty it of our
# modules under its builds.
modcache="$cache/gomodcache"
if command -v flock >/dev/null; then
	exec 9>"$cache/gomodcache.lock"
	flock 9
fi
for d in "$modcache/github.com/txpersister" "$modcache/cache/download/github.com/txpersister"; do
	if [ -e "$d" ]; then chmod -R u+w "$d" && rm -rf "$d"; fi
done
mapfile -t dockerfiles < <(find services tools -name Dockerfile -not -path '*/testdata/*' | sort)
[ "${#dockerfiles[@]}" -gt 0 ] || fail "no Dockerfile found"
mkdir -p "$tmp/out"
for df in "${dockerfiles[@]}"; do
	name=$(basename "$(dirname "$df")")
	# Replays the build stage's WORKDIR and COPYs into $tmp/stage-$name and
	# writes a script that runs its go build line there.
	"$cc" dockerfile -context "$tmp/context" -go-build "$tmp/build-$name.sh" \
		-stage "$tmp/stage-$name" -out "$tmp/out" "$df" ||
		fail "$df"
	# The build stage's environment is the image's, not this shell's: no go
	# env file, no module settings of the caller's.
	env -u GOFLAGS -u GOWORK -u GOOS -u GOARCH -u GOPROXY -u GONOSUMDB -u GONOPROXY \
		-u GOPRIVATE -u GOSUMDB -u GOINSECURE GOENV=off GOMODCACHE="$modcache" \
		VERSION=check-compose sh "$tmp/build-$name.sh" ||
		fail "$df: its go build line fails in the build context"
	"$cc" static -module "$(dirname "$df")" "$tmp/out/$name" ||
		fail "$df: its binary is not static, not built from versions, or not its module's"
done

step "Prometheus configuration (promtool)"
promtool=$("$root/scripts/prometheus.sh" promtool) || fail "no promtool (see scripts/prometheus.sh above)"
"$promtool" --version 2>&1 | head -1
for cfg in ops/prometheus/prometheus.yml ops/prometheus/prometheus.local.yml; do
	"$promtool" check config "$cfg" || fail "$cfg"
done
"$promtool" check rules ops/prometheus/alerts.yml || fail "ops/prometheus/alerts.yml"
"$promtool" test rules ops/prometheus/alerts_test.yml || fail "ops/prometheus/alerts_test.yml"

printf '\ncheck-compose: ok\n'
