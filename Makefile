# txpersister: one command to start the system, one to test it.
#
#   make          start the system: the docker compose stack where a Docker
#                 engine runs, else local processes (make run)
#   make test     every module's tests, integration and end-to-end included
#
# See README.md for the rest.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := start

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Every module of the workspace, as listed in go.work.
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p')
BINARIES := bin/api bin/converter bin/ratesd bin/txctl

.PHONY: start up stop prod run jaeger prometheus-local build migrate test test-faults test-cluster measure-migration load load-webhooks load-backlog load-knee seed measure-growth ceilings versions release-check check-compose lint fmt tidy clean help

start: ## start the system (compose where Docker runs, else local processes)
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then $(MAKE) up; \
	else echo "No Docker engine here: running local processes against PostgreSQL and RabbitMQ on localhost."; $(MAKE) run; fi

.PHONY: images-proxy
images-proxy: ## the module proxy of our libs' releases the images build from, in results/goproxy (needs the git history)
	rm -rf results/goproxy
	$(RELEASE) proxy -o "$(CURDIR)/results/goproxy"

up: images-proxy ## the whole stack with docker compose
	VERSION=$(VERSION) docker compose up -d --build --wait
	@echo "API http://localhost:8080  Jaeger http://localhost:16686  Grafana http://localhost:3000  Prometheus http://localhost:9090"

stop: ## take the compose stack down
	docker compose down

prod: images-proxy ## the production variant of the compose stack (needs .env.prod)
	@test -f .env.prod || { echo "cp .env.prod.example .env.prod and set its secrets" >&2; exit 1; }
	VERSION=$(VERSION) docker compose -f docker-compose.yml -f docker-compose.prod.yml up -d --build --wait

run: build ## ratesd, api and converter as local processes; Ctrl-C stops them
	scripts/run-local.sh

jaeger: ## Jaeger v2 in the foreground for a local run: OTLP on 4317/4318, query API on 16686
	"$$(scripts/jaeger.sh)" --config tools/jaeger/config.yaml

prometheus-local: ## Prometheus in the foreground scraping a local run (make run), with the alert rules
	mkdir -p results/prometheus-data
	"$$(scripts/prometheus.sh)" --config.file=ops/prometheus/prometheus.local.yml \
		--storage.tsdb.path=results/prometheus-data --web.listen-address=127.0.0.1:9090

build: $(BINARIES) ## build bin/api, bin/converter, bin/ratesd, bin/txctl

bin/api bin/converter bin/ratesd bin/txctl: FORCE
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./$(if $(filter bin/ratesd bin/txctl,$@),tools,services)/$(notdir $@)

FORCE:

migrate: bin/api bin/converter ## apply every service's migrations to DATABASE_URL
	bin/api migrate
	bin/converter migrate

test: ## every module's tests against real PostgreSQL and RabbitMQ, and the container setup
	scripts/check-services.sh
	@# Built once per machine (minutes), outside go test's time limit.
	scripts/jaeger.sh >/dev/null
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -race -count=1 ./...); done
	$(MAKE) check-compose

test-faults: ## the fault suite: stops and restarts PostgreSQL and RabbitMQ under load (run it alone)
	scripts/check-services.sh
	mkdir -p results
	cd tests/e2e && FAULTS_REPORT_DIR=$(CURDIR)/results go test -tags faults -run TestFaults -count=1 -timeout 40m -v . 2>&1 | tee $(CURDIR)/results/faults.log | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|faults_test.go'

test-cluster: ## the cluster suite: three RabbitMQ nodes of its own (scripts/rabbitmq-cluster.sh), each killed under load and started again
	scripts/check-services.sh
	mkdir -p results
	cd tests/e2e && CLUSTER_REPORT_DIR=$(CURDIR)/results go test -tags cluster -run TestCluster -count=1 -timeout 30m -v . 2>&1 | tee $(CURDIR)/results/cluster.log | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|cluster_test.go'

measure-migration: ## the tenants migrations on a table of ROWS transactions (default 10000000), with a writer and a reader of the previous version
	scripts/check-services.sh
	cd tests/e2e && ROWS=$(or $(ROWS),10000000) go test -tags measure -run TestMeasureTenantMigration -count=1 -timeout 60m -v . 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|migration_measure_test.go'

load: ## vegeta attack on the running api, then the drain report (RATE=1000 DURATION=30s [MODE=batch BATCH=100] [DRAIN=30s] [API_KEY=...])
	vegeta/load.sh

load-webhooks: ## make load with a webhook endpoint (loadgen sink) subscribed to every outcome: the cost of webhooks
	vegeta/load-webhooks.sh

load-backlog: build ## the converter draining a backlog: starts the local processes, ingests with the converter paused, times the drain
	vegeta/backlog.sh

load-knee: ## rising rates until a bound breaks (START=500 STEP=500 MAX=8000 STEP_DURATION=10s [MODE=batch BATCH=100] [MAX_P99=50ms])
	vegeta/knee.sh

seed: migrate ## add ROWS (default 1000000) synthetic stored transactions and outcomes to DATABASE_URL, after those seeded before
	go -C vegeta/loadgen run . seed -rows $(or $(ROWS),1000000)

measure-growth: ## ingest and reads at each stored size of SIZES (default "0 10000000"), in a database of its own (vegeta/growth.sh)
	vegeta/growth.sh

ceilings: ## the machine's own ceilings: pgbench, a confirmed publisher, wrk on a trivial handler (run it alone)
	vegeta/ceilings.sh

# tools/release: a module outside go.work (README, "Releasing a module").
RELEASE := GOWORK=off go -C tools/release run .

versions: ## each module's version, the commit that released it, unreleased changes since
	@$(RELEASE) versions

release-check: ## every module requiring our libs built and tested outside go.work against the versions it requires; lib APIs against their versions
	cd tools/release && GOWORK=off go test -count=1 ./...
	$(RELEASE) check

check-compose: ## compose files, Dockerfiles and Prometheus config, checked without a Docker engine
	scripts/check-compose.sh
	cd tools/composecheck && GOWORK=off go test -race -count=1 ./...

# golangci-lint (configuration: .golangci.yml), built from tools/golangci-lint,
# a module outside go.work, into ~/.cache/txpersister once; it caches its
# analyses in ~/.cache/golangci-lint.
GOLANGCI_LINT = scripts/gotool.sh tools/golangci-lint github.com/golangci/golangci-lint/v2 github.com/golangci/golangci-lint/v2/cmd/golangci-lint
# The modules outside go.work that hold Go code, linted with GOWORK=off.
LINT_STANDALONE := tools/composecheck tools/release

lint: ## gofmt, then golangci-lint (errcheck, govet, staticcheck, gosec, ...; gofumpt) over every module
	@unformatted=$$(gofmt -l $(MODULES) $(LINT_STANDALONE)); if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@lint=$$($(GOLANGCI_LINT)); \
	echo "golangci-lint: the workspace"; $$lint run $(addsuffix /...,$(addprefix ./,$(MODULES))); \
	for m in $(LINT_STANDALONE); do echo "golangci-lint: $$m"; (cd $$m && GOWORK=off $$lint run ./...); done
	@echo "lint: gofmt and golangci-lint clean"

fmt: ## gofumpt every module (golangci-lint fmt)
	@lint=$$($(GOLANGCI_LINT)); $$lint fmt $(MODULES) $(LINT_STANDALONE)

tidy: ## go mod tidy in every module (libs resolved locally)
	scripts/tidy.sh

clean:
	rm -rf bin results

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12
