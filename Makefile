# ctrfs: a FUSE control filesystem over LXC containers.
# Every target runs as root on Debian and installs what it needs first.

export PATH := /usr/local/go/bin:$(PATH)
export GOFLAGS ?= -mod=mod

GO      ?= go
BIN     := bin/ctrfs
SOURCES := $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum

.PHONY: all deps uninstall-deps build test unit e2e vet demo demo-stop bench clean

all: build

# Installs LXC, FUSE, busybox-static and the rest from the host's Debian
# release, CRIU >= 4.2 as a local .deb built from source, and Go from the
# release or its backports; skips whatever is already right. README,
# "Requirements", says what and from where.
deps:
	@scripts/deps.sh

# Purges what deps recorded as installed by it, and its cache.
uninstall-deps:
	@scripts/uninstall-deps.sh

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
