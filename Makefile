# imgd: `make run` and `make test` are the whole quick start.
SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/imgd
FUZZTIME ?= 30s
.DEFAULT_GOAL := help

.PHONY: help deps build run test bench bench-service fuzz lint bench-scale bench-compress eval-orientation container-check

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps:
	@scripts/deps.sh run

build: deps ## build bin/imgd
	$(GO) build -o $(BIN) ./cmd/imgd

run: build ## start imgd serve: API, web page and workers on http://127.0.0.1:8080, data in ./data
	$(BIN) serve

test: ## vet and run every test (installs what it needs)
	@scripts/deps.sh test
	@scripts/versitygw.sh
	@scripts/chromium.sh
	$(GO) vet ./...
	@if [ -z "$$IMGD_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
		echo "make test: using PostgreSQL on 127.0.0.1:5432 (database test)"; \
		export IMGD_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'; \
	fi; $(GO) test -count=1 -timeout 20m ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@scripts/deps.sh test
	GO=$(GO) scripts/fuzz.sh FuzzRun ./internal/engine $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh FuzzSniff ./internal/engine $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh FuzzParsePipeline . $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh FuzzApply ./internal/dither $(FUZZTIME)

bench: build ## compare imgd with vipsthumbnail and Pillow (BENCH_DIR=folder for other photos)
	@scripts/deps.sh bench
	$(GO) run ./bench $(if $(BENCH_DIR),-dir $(BENCH_DIR))

bench-service: build ## imgd serve end to end: tasks/s and latency (N=500 tasks, C=8 clients)
	$(GO) run ./bench/service -imgd $(BIN) $(if $(N),-n $(N)) $(if $(C),-c $(C))

bench-scale: build ## scale-out: embedded SQLite vs 1 and 2 imgd worker processes on PostgreSQL + versitygw, tasks/s and queue latency (N=300, C=8, WORKERS=1,2)
	@scripts/versitygw.sh
	$(GO) run ./bench/scale -imgd $(BIN) $(if $(N),-n $(N)) $(if $(C),-c $(C)) $(if $(WORKERS),-workers $(WORKERS))

eval-orientation: deps ## orientation detection vs the seed's Hough baseline on a labelled folder (EVAL_DIR=, default the dev set)
	$(GO) run ./cmd/imgd-eval-orientation $(if $(EVAL_DIR),-dir $(EVAL_DIR))

bench-compress: ## compress vs fixed JPEG q80: bytes, SSIM (scikit-image), Butteraugli (BENCH_DIR=folder)
	@/usr/bin/python3 -c 'import skimage' 2>/dev/null && command -v butteraugli >/dev/null || \
		apt-get install -y --no-install-recommends python3-skimage butteraugli
	$(GO) run ./bench/compress $(if $(BENCH_DIR),-dir $(BENCH_DIR))

lint: ## gofmt, go vet, go mod tidy -diff, staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

container-check: ## Dockerfile + docker-compose.yml without Docker: debootstrap, chroot, run the image (root, minutes; not in make test)
	@scripts/container-check.sh
