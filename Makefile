# Storefront API: development, test and CI entry points. `make help` lists the targets.
# PostgreSQL and Redis run as private servers under .run/ (scripts/pg.sh, scripts/redis.sh),
# never as system services.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PG := scripts/pg.sh
REDIS := scripts/redis.sh

# `make run`: a durable cluster whose data survives restarts.
RUN_PG_DIR := .run/pg
RUN_PG_PORT := 5433
# The analytics mode of make run: auto (TimescaleDB, which scripts/pg.sh installs and preloads,
# else plain PostgreSQL), timescaledb or postgres. A database's mode is chosen once, at its
# first migration, so plain PostgreSQL gets a database of its own.
ANALYTICS ?= auto
RUN_DB := $(if $(filter postgres,$(ANALYTICS)),storefront_plain,storefront)
# `make run`: a durable Redis (append-only file) whose sessions survive restarts.
RUN_REDIS_DIR := .run/redis
RUN_REDIS_PORT := 6380
HTTP_ADDR := 127.0.0.1:8080
# `make run`: the secret that signs its tokens, random, made once per checkout: there is no
# default secret (a default would be public, and anyone could sign tokens with it).
RUN_JWT_SECRET := .run/jwt-secret
# `make run`: pages of the usual front-end dev servers may call the API (CORS).
DEV_ORIGINS := http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173,http://localhost:8081,http://127.0.0.1:8081
# `make run SEARCH=elasticsearch`: a search node (OpenSearch, scripts/search.sh) on 9200;
# the default SEARCH=postgres needs no JVM.
SEARCH ?= postgres
RUN_SEARCH_DIR := .run/search
RUN_SEARCH_PORT := 9200

# Servers of `make test` and `make bench` (scripts/test.sh, scripts/bench.sh).
TEST_PG_DIR := .run/test-pg
BENCH_PG_DIR := .run/bench-pg
TEST_REDIS_DIR := .run/test-redis
TEST_REDIS_CLUSTER_DIR := .run/test-redis-cluster
BENCH_REDIS_DIR := .run/bench-redis

# Where go generate writes (graph/generated.go, graph/model/models_gen.go, resolvers/).
GENERATED_DIRS := graph resolvers

# The playground and dashboard: Vite sources in web/, built into web/dist (committed, embedded
# by the binary). npm ci runs again when package-lock.json is newer than its last install.
WEB_DEPS := web/node_modules/.package-lock.json

.PHONY: help run jwt-secret stop test test-fleet fuzz bench generate check-generated lint check clean web check-web

help: ## List the targets.
	@echo "Targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-16s %s\n", $$1, $$2}'

run: $(RUN_JWT_SECRET) ## Start PostgreSQL with TimescaleDB (.run/pg, port 5433) and Redis (.run/redis, port 6380), build, migrate, seed if empty and serve on http://localhost:8080. SEARCH=elasticsearch adds a search node on 9200; ANALYTICS=postgres serves plain-PostgreSQL analytics.
	$(PG) start $(RUN_PG_DIR) $(RUN_PG_PORT) durable
	$(PG) createdb $(RUN_PG_PORT) $(RUN_DB)
	$(REDIS) start $(RUN_REDIS_DIR) $(RUN_REDIS_PORT) durable
	if [ "$(SEARCH)" = elasticsearch ]; then scripts/search.sh start $(RUN_SEARCH_DIR) $(RUN_SEARCH_PORT); fi
	go build -o bin/storefront .
	export DATABASE_URL="$$($(PG) url $(RUN_PG_PORT) $(RUN_DB))" HTTP_ADDR="$(HTTP_ADDR)" ANALYTICS="$(ANALYTICS)" \
		REDIS_URL="$$($(REDIS) url $(RUN_REDIS_PORT))" JWT_SECRET="$${JWT_SECRET:-$$(cat $(RUN_JWT_SECRET))}" CORS_ORIGINS="$${CORS_ORIGINS:-$(DEV_ORIGINS)}"; \
	if [ "$(SEARCH)" = elasticsearch ]; then export ELASTICSEARCH_URL="$$(scripts/search.sh url $(RUN_SEARCH_PORT))"; fi; \
	bin/storefront migrate; \
	bin/storefront seed --products 3000 --seed 1 --if-empty; \
	bin/storefront seed --orders 20000 --seed 1 --if-empty; \
	echo "storefront: API and playground on http://localhost:$${HTTP_ADDR##*:}, dashboard on http://localhost:$${HTTP_ADDR##*:}/dashboard (Ctrl-C stops the server; make stop stops PostgreSQL and Redis)"; \
	echo "storefront: a merchandiser token for the playground's headers pane and the dashboard's sign-in (valid 12 h):"; \
	bin/storefront token --role merchandiser --ttl 12h; \
	exec bin/storefront serve

jwt-secret: $(RUN_JWT_SECRET) ## Make the random secret of make run's tokens (.run/jwt-secret, readable by its owner only) unless there is one.

$(RUN_JWT_SECRET):
	mkdir -p $(@D)
	umask 077 && head -c 32 /dev/urandom | base64 > $@.tmp && mv $@.tmp $@

stop: ## Stop the PostgreSQL cluster, the Redis server and the search node of make run.
	scripts/search.sh stop $(RUN_SEARCH_DIR)
	$(REDIS) stop $(RUN_REDIS_DIR)
	$(PG) stop $(RUN_PG_DIR)

test: ## Run go test -race on ./... against private PostgreSQL with TimescaleDB (port 5434), Redis (6381), Redis Cluster (7101-7103) and OpenSearch (9250), stopped afterwards.
	scripts/test.sh

test-fleet: ## Run the scale-out tests (TestFleet*, tag fleet) against a primary and its streaming read replica (5437).
	scripts/test.sh --fleet

FUZZTIME ?= 5m
fuzz: ## Fuzz the GraphQL HTTP handler for FUZZTIME (default 5m) against the test servers; make test only runs its corpus.
	scripts/test.sh -run '^$$' -fuzz FuzzGraphQLRequest -fuzztime $(FUZZTIME) .

bench: ## Run the benchmarks: catalog and search (scripts/bench.sh), then analytics (scripts/bench_analytics.sh).
	bash scripts/bench.sh
	bash scripts/bench_analytics.sh

generate: ## Regenerate gqlgen code (go generate ./...).
	go generate ./...

check-generated: generate ## Fail if go generate changed or added files under graph/ or resolvers/.
check-generated: REMADE := $(GENERATED_DIRS)
check-generated: REMAKE := generate
check-web: web ## Fail if web/dist differs from a fresh build of its sources.
check-web: REMADE := web/dist
check-web: REMAKE := web

# check-generated and check-web: once their prerequisite REMAKE has rebuilt REMADE from its
# sources, git must see no changed or new file there.
check-generated check-web:
	@changed="$$(git status --porcelain --untracked-files=all -- $(REMADE))"; \
	if [ -n "$$changed" ]; then \
		echo "$@: after make $(REMAKE), git sees changed or new files under $(REMADE):" >&2; \
		echo "$$changed" >&2; \
		echo "$@: run 'make $(REMAKE)' and commit the result." >&2; \
		exit 1; \
	fi; \
	echo "$@: make $(REMAKE) left $(REMADE) as committed"

lint: ## Fail on files gofmt would change, then run go vet ./...
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "lint: these files need gofmt -w:" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	go vet ./...
	go vet -tags fleet ./...

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

web: $(WEB_DEPS) ## Build the playground and dashboard from web/ into web/dist (commit the result).
	cd web && npm run build --silent

check: ## Run lint, check-generated and check-web (what CI checks before the tests).
	$(MAKE) lint
	$(MAKE) check-generated
	$(MAKE) check-web

clean: ## Stop every private server and cluster under .run, then delete .run and bin.
	@for d in $$(find .run -mindepth 1 -maxdepth 1 -type d 2>/dev/null); do \
		scripts/search.sh stop "$$d"; \
		scripts/search.sh cluster-stop "$$d"; \
	done
	@for d in $(RUN_REDIS_DIR) $(TEST_REDIS_DIR) $(TEST_REDIS_CLUSTER_DIR) $(BENCH_REDIS_DIR) \
		$$(find .run -mindepth 1 -maxdepth 1 -type d 2>/dev/null); do \
		$(REDIS) destroy "$$d"; \
	done
	@for d in $(RUN_PG_DIR) $(TEST_PG_DIR) $(BENCH_PG_DIR) \
		$$(find .run -mindepth 1 -maxdepth 1 -type d 2>/dev/null); do \
		$(PG) destroy "$$d"; \
	done
	rm -rf .run bin
