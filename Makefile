# ctrfs: a FUSE control filesystem over LXC containers.
# Every target runs as root on Debian and installs what it needs first.

export PATH := /usr/local/go/bin:$(PATH)
export GOFLAGS ?= -mod=mod

GO      ?= go
BIN     := bin/ctrfs
SOURCES := $(shell find . -name '*.go' -not -path './.git/*') go.mod go.sum
MANPAGES := docs/man/ctrfs.5 docs/man/ctrfs.8
# `ctrfs version` prints it; a plain `go build` falls back to "devel".
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)

# Where `make install` puts things; DESTDIR is prepended to each.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
SETTINGS   := $(SYSCONFDIR)/default/ctrfs

.PHONY: all deps uninstall-deps build test unit e2e vet demo demo-stop bench clean man install uninstall soak fuzz vmtest vmbench FORCE

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

$(BIN): $(SOURCES) bin/version
	@mkdir -p bin
	$(GO) build -ldflags "-X ctrfs/ops.buildVersion=$(VERSION)" -o $@ ./cmd/ctrfs

# Changes when VERSION does, so that a new commit rebuilds the binary.
bin/version: FORCE
	@mkdir -p bin
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@

# The man pages ctrfs(5) and ctrfs(8), from docs/*.md.
man: $(MANPAGES)

docs/man/%: docs/%.md
	@command -v go-md2man >/dev/null || { echo "go-md2man is missing: make deps installs it" >&2; exit 1; }
	@mkdir -p docs/man
	go-md2man -in $< -out $@

# The binary, the systemd unit, its settings file and the man pages. The
# settings file is not overwritten: it holds the operator's flags.
install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(dir $(SETTINGS))
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ctrfs
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/ctrfs.service \
		> $(DESTDIR)$(UNITDIR)/ctrfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ctrfs.service
	install -m 0644 docs/man/ctrfs.5 $(DESTDIR)$(MANDIR)/man5/ctrfs.5
	install -m 0644 docs/man/ctrfs.8 $(DESTDIR)$(MANDIR)/man8/ctrfs.8
	@if [ -e $(DESTDIR)$(SETTINGS) ]; then echo "keeping $(DESTDIR)$(SETTINGS)"; \
	else install -m 0644 dist/ctrfs.default $(DESTDIR)$(SETTINGS); fi
	@[ -n "$(DESTDIR)" ] || echo "then: systemctl daemon-reload && systemctl enable --now ctrfs"

# Removes what install put there; the settings file only if unchanged.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ctrfs $(DESTDIR)$(UNITDIR)/ctrfs.service \
		$(DESTDIR)$(MANDIR)/man5/ctrfs.5 $(DESTDIR)$(MANDIR)/man8/ctrfs.8
	@if cmp -s dist/ctrfs.default $(DESTDIR)$(SETTINGS); then rm -f $(DESTDIR)$(SETTINGS); \
	elif [ -e $(DESTDIR)$(SETTINGS) ]; then echo "keeping $(DESTDIR)$(SETTINGS): it has local changes"; fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Unit tests under the race detector, then end-to-end tests against real
# LXC, CRIU and FUSE: those that exercise concurrency (renames, events,
# moves, the trust tests, dead daemons' mounts) against a daemon built with
# -race, the others against bin/ctrfs. A daemon that reports a race fails
# its test (tests/harness_daemon_test.go). Each test runs once: the race
# daemon checks all that the plain one would (it is slower, 2 to 3 times
# for these tests), so running them against both cost some 100 s for
# nothing. The two passes run at once, in lanes of their own
# (scripts/e2e.sh: CTRFS_TEST_LANE, default 0, and CTRFS_RACE_LANE,
# default 5): the race pass (about 4 minutes alone) then ends within the
# plain one (about 14).
RACE_BIN := bin/ctrfs-race
RACE_E2E := ^(TestLiveMigration|TestPostCopyMove|TestPostCopyPageServerRacer|TestEvacuate|TestBusyAndParallel|TestEvents|TestRename.*|TestTrust.*|TestSecretFileRefused|TestWeakSecretRefused|TestWrongSecretSaysSo|TestDuplicateNameRefused|TestMemoryIsRootsAlone|TestConfigWrites|TestRealTimes|TestReservedContainerNames|TestDamagedCopiesAreNoKeys|TestDeadDaemonMountAborted|TestKilledDaemonLeavesNoLiveMount)$$

test: deps build vet
	$(GO) test -race $$($(GO) list ./... | grep -v '/tests$$') -count=1 -timeout 10m
	$(GO) build -race -o $(RACE_BIN) ./cmd/ctrfs
	GO=$(GO) scripts/e2e.sh '$(RACE_E2E)' $(CURDIR)/$(RACE_BIN)

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

# Not in `make test` (too slow under emulation): two stock Debian 12 VMs
# on two kernels, this checkout installed in both with `make install`, and
# the suite of tests/vmtest run against them (docs/vmtest.md).
# VMTEST_KEEP=1 leaves the VMs up; VMTEST_RUN=REGEX runs some tests only.
vmtest: deps build
	@scripts/vmtest/run.sh

# The bench's services part on the bed (docs/vmtest.md): Redis and
# PostgreSQL, which this VM cannot checkpoint, raw lxc-checkpoint beside
# them, run in VM A with binaries built here. BENCH_FLAGS go to
# ctrfs-bench (default --runs 3); VMTEST_KEEP=1 as for vmtest.
vmbench: deps build
	@scripts/vmtest/bench.sh $(BENCH_FLAGS)

# The main job: a daemon with default flags at /mnt/ctrfs, and a running demo
# container. `make demo-stop` takes it down again.
demo: deps build
	@scripts/demo.sh start

demo-stop:
	@scripts/demo.sh stop

# Checkpoint/restore benchmark: raw lxc-checkpoint against ctrfs.
# It measures the btrfs backend beside the directory one too (BENCH_BTRFS=0
# turns that off; docs/hacking.md, The bench).
bench: deps
	@scripts/bench.sh $(BENCH_FLAGS)

clean:
	rm -rf bin docs/man
