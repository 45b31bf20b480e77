# ctrfs: a FUSE control filesystem over LXC containers.
# Every target runs as root on Debian and installs what it needs first.

export PATH := /usr/local/go/bin:$(PATH)
export GOFLAGS ?= -mod=mod

GO      ?= go
BIN     := bin/ctrfs
SOURCES := $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum

.PHONY: all deps build test unit e2e vet demo demo-stop bench clean soak fuzz

all: build

# Installs LXC, FUSE, busybox-static, CRIU >= 4.2 (from Debian unstable,
# pinned low) and Go; skips whatever is already right.
deps:
	@scripts/deps.sh

build: $(BIN)

$(BIN): $(SOURCES)
	@mkdir -p bin
	$(GO) build -o $@ ./cmd/ctrfs

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Unit tests, then end-to-end tests against real LXC, CRIU and FUSE.
test: deps build vet
	$(GO) test $$($(GO) list ./... | grep -v '/tests$$') -count=1 -timeout 5m
	$(GO) test ./tests/ -count=1 -timeout 14m -v

# Runs each fuzz target for FUZZTIME (`go test -fuzz` takes one target of
# one package at a time). `make test` runs their seed corpora as unit tests.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./... | grep -v '/tests$$'); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME); \
		done; \
	done

# Not in CI: SOAK_ROUNDS rounds of random operations on containers of two
# daemons, with random SIGKILLs, checking after each round that no container
# is lost or changed (tests/soak_test.go). SOAK_SEED=N replays a run.
SOAK_ROUNDS ?= 20
soak: deps build
	SOAK_ROUNDS=$(SOAK_ROUNDS) SOAK_SEED=$(SOAK_SEED) SOAK_CONTAINERS=$(SOAK_CONTAINERS) \
		$(GO) test -tags soak ./tests/ -run '^TestSoak$$' -count=1 -v -timeout 0

# The main job: a daemon with default flags at /mnt/ctrfs, and a running demo
# container. `make demo-stop` takes it down again.
demo: deps build
	@scripts/demo.sh start

demo-stop:
	@scripts/demo.sh stop

# Checkpoint/restore benchmark: raw lxc-checkpoint against ctrfs.
bench: deps
	@scripts/bench.sh $(BENCH_FLAGS)

clean:
	rm -rf bin
