package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"ctrfs/ops/moves"
)

// Pre-dump precopy (cluster/precopy.go, ops/moves/predump.go). This VM's kernel
// has no soft-dirty bits: CRIU's pre-dump aborts here (BUG at
// criu/mem.c:46), so the real rounds run on a stock host only (make
// vmtest). Here a live move must fall back to whole dumps and say so, and
// the pre-dump plumbing of ctrfs (LXC's pre-dump call, the chain of
// parents through the store, the target's restore through parent/) runs
// with a `criu` that passes the check and turns each pre-dump into a whole
// dump leaving the tasks running, and drops --track-mem and
// --prev-images-dir: ctrfs keeps the chain of rounds all the same, in the
// store and on the target under parent/, only no page is in a parent.

// wantPrecopyReport checks a live move's report on the target: the mode,
// and a round's bytes and pages for each precopy round, and the freeze's
// bytes.
func wantPrecopyReport(t *testing.T, info map[string]string, mode string) {
	t.Helper()
	if info["precopy-mode"] != mode {
		t.Errorf("precopy-mode %q, want %q:\n%v", info["precopy-mode"], mode, info)
	}
	rounds, err := strconv.Atoi(info["precopy-rounds"])
	bytes, pages := strings.Fields(info["precopy-round-bytes"]), strings.Fields(info["precopy-round-pages"])
	if err != nil || rounds < 1 || len(bytes) != rounds || len(pages) != rounds {
		t.Errorf("precopy-rounds %q, precopy-round-bytes %q, precopy-round-pages %q:\n%v",
			info["precopy-rounds"], info["precopy-round-bytes"], info["precopy-round-pages"], info)
	}
	for _, v := range append(append(bytes, pages...), info["freeze-sent-bytes"], info["freeze-criu-pages-written"]) {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			t.Errorf("not a count: %q in\n%v", v, info)
		}
	}
	t.Logf("%s rounds: bytes %v, pages %v; freeze: %s bytes sent, %s pages written, downtime %s s",
		mode, bytes, pages, info["freeze-sent-bytes"], info["freeze-criu-pages-written"], info["downtime-seconds"])
}

// TestMovePrecopyWholeDumps: where the kernel does not track dirty memory
// a live move's rounds are whole dumps, said once in events and, with the
// reason, in info; move --full-dumps makes them so on any host.
func TestMovePrecopyWholeDumps(t *testing.T) {
	if moves.DirtyTracking() == nil {
		t.Skip("this host tracks dirty memory: its moves pre-dump (make vmtest covers them)")
	}
	a, b := twoHosts(t)
	ip := a.CreateRunning("c1")
	events := a.readEvents()
	before := Count(t, ip)

	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move")
	after := countFrom(t, ip, before, "over the move")
	info := b.Info("c1")
	wantPrecopyReport(t, info, "dump")
	if why := info["precopy-mode-why"]; !strings.Contains(why, "does not track dirty memory") || !strings.Contains(why, "mem_dirty_track") {
		t.Errorf("precopy-mode-why %q", why)
	}
	events.waitFor(t, "dakara c1 move ok")
	text := events.Text()
	if n := strings.Count(text, "c1 move-precopy-mode "); n != 1 || !strings.Contains(text, "dakara c1 move-precopy-mode dump ") {
		t.Errorf("want one move-precopy-mode dump line, got %d:\n%s", n, text)
	}
	if !strings.Contains(text, "dakara c1 move-precopy-round dump ") {
		t.Errorf("no move-precopy-round line:\n%s", text)
	}

	b.MustSh("echo 'move dakara --full-dumps' > containers/c1/ctl")
	wantMoved(t, "c1", b, a, "after the move back")
	countFrom(t, ip, after, "over the move back")
	info = a.Info("c1")
	wantPrecopyReport(t, info, "dump")
	if info["precopy-mode-why"] != "move --full-dumps" {
		t.Errorf("precopy-mode-why %q after move --full-dumps", info["precopy-mode-why"])
	}
	a.ShFails("echo 'move tollana --post-copy --full-dumps' > containers/c1/ctl", "Invalid argument")
	a.MustSh("echo stop > containers/c1/ctl")
}

// preDumpCRIU is the `criu` of TestMovePreDumpChain's hosts: the check
// of dirty tracking passes, a pre-dump is a whole dump that leaves the
// tasks running, and --track-mem and --prev-images-dir are dropped (CRIU
// refuses a parent whose inventory has no dump uptime, which only dumps
// with --track-mem record); each dump's command line goes to the file
// dumps. A restore fails while the file fail exists, and each
// restore's images directory, parents included, is listed into restores.
func preDumpCRIU(t *testing.T, dumps, restores, fail string) string {
	t.Helper()
	return wrapCRIU(t, `[ "$1" = check ] && [ "$3" = mem_dirty_track ] && exit 0
if [ "$1" = pre-dump ] || [ "$1" = dump ]; then
	echo "$*" >> `+dumps+`
	action=$1
	shift
	skip=
	for a do
		shift
		if [ -n "$skip" ]; then skip=; continue; fi
		case $a in
		--track-mem) ;;
		--prev-images-dir) skip=1 ;;
		*) set -- "$@" "$a" ;;
		esac
	done
	if [ "$action" = pre-dump ]; then set -- dump "$@" --leave-running; else set -- dump "$@"; fi
fi
if [ "$1" = restore ]; then
	[ -e `+fail+` ] && { echo 'injected restore failure' >&2; exit 1; }
	prev=
	for a do
		[ "$prev" = -D ] && (cd "$a" && find . -name '*.img' | sort) >> `+restores+`
		prev=$a
	done
fi
`)
}

// TestMovePreDumpChain: with dirty tracking emulated (preDumpCRIU), a live
// move pre-dumps, makes its final dump over the last round, and the
// target restores from images whose parents are there under parent/; a
// move whose target fails its restore leaves the source's held processes
// to run on: the source restores nothing (before the holds it restored
// them from its saved state and the parents). Both kinds: an unprivileged
// container's tasks open the parent directory from its user namespace.
func TestMovePreDumpChain(t *testing.T) {
	for _, kind := range []string{"privileged", "unprivileged"} {
		t.Run(kind, func(t *testing.T) { movePreDumpChain(t, kind) })
	}
}

func movePreDumpChain(t *testing.T, kind string) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	a, b := twoHostsWith(t, []string{preDumpCRIU(t, file("dumps"), file("source-restores"), file("never"))},
		[]string{preDumpCRIU(t, file("target-dumps"), file("restores"), file("fail"))})
	dumps, restores, fail := file("dumps"), file("restores"), file("fail")
	ip := a.createRunning("c1", "echo 'create c1 --"+kind+"' > ctl")
	before := Count(t, ip)

	// The target fails its restore: the source lets its held processes
	// run on, restoring nothing.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a.ShFails("echo 'move tollana' > containers/c1/ctl", "Input/output error")
	stillHere(t, a, b, ip, before)
	before = Count(t, ip)
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	if listed, _ := os.ReadFile(file("source-restores")); len(listed) > 0 {
		t.Errorf("the source restored c1 after its target failed, instead of letting its held processes run on:\n%s", listed)
	}

	events := a.readEvents()
	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move")
	countFrom(t, ip, before, "over the pre-dump move")
	info := b.Info("c1")
	wantPrecopyReport(t, info, "pre-dump")
	if info["precopy-mode-why"] != "" {
		t.Errorf("precopy-mode-why %q for pre-dumps", info["precopy-mode-why"])
	}
	events.waitFor(t, "dakara c1 move ok")
	if text := events.Text(); !strings.Contains(text, "dakara c1 move-precopy-mode pre-dump ") ||
		strings.Contains(text, "move-precopy-mode dump ") || !strings.Contains(text, "dakara c1 move-precopy-round pre-dump ") {
		t.Errorf("events:\n%s", text)
	}

	// What CRIU was asked: pre-dumps through LXC, each after the first
	// over the one before, and the final dump over the last.
	calls, _ := os.ReadFile(dumps)
	var pre, final []string
	for _, l := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		switch {
		case strings.HasPrefix(l, "pre-dump "):
			pre = append(pre, l)
		case strings.HasPrefix(l, "dump ") && strings.Contains(l, "--prev-images-dir"):
			final = append(final, l)
		}
	}
	if len(pre) < 2 || len(final) != 2 { // both moves pre-dumped
		t.Fatalf("pre-dumps and final dumps over them:\n%s", calls)
	}
	if !strings.Contains(final[1], "--track-mem") {
		t.Errorf("final dump without --track-mem: %s", final[1])
	}
	// The target restored with the rounds as parents.
	listed, _ := os.ReadFile(restores)
	if !strings.Contains(string(listed), "./parent/pagemap-") || !strings.Contains(string(listed), "./pages-") {
		t.Errorf("the target's restore found no parent images:\n%s", listed)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}

// TestCgroup2OnlyPreDumpRestored: on cgroup2-only hosts (stock Debian's
// layout), a container that LXC restored cannot be dumped by LXC (see
// ops/lxchelper/criudump.go), so its pre-dumps and the final dump over
// them run on ctrfs's own CRIU command line; with dirty tracking emulated
// as in TestMovePreDumpChain, the move pre-dumps and the counter goes on,
// for both kinds.
func TestCgroup2OnlyPreDumpRestored(t *testing.T) {
	for _, kind := range []string{"privileged", "unprivileged"} {
		t.Run(kind, func(t *testing.T) { cgroup2OnlyPreDumpRestored(t, kind) })
	}
}

func cgroup2OnlyPreDumpRestored(t *testing.T, kind string) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	secret := newSecret(t)
	a := newPeer(t, "dakara", loopback(2), secret, "")
	a.Cgroup2Only()
	a.Env = []string{preDumpCRIU(t, file("dumps"), file("source-restores"), file("never"))}
	a.Start()
	b := newPeer(t, "tollana", loopback(3), secret, a.Addr)
	b.Cgroup2Only()
	b.Env = []string{preDumpCRIU(t, file("target-dumps"), file("restores"), file("never"))}
	b.Start()
	a.waitHosts("dakara", "tollana")

	ip := a.createRunning("c1", "echo 'create c1 --"+kind+"' > ctl")
	a.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	n := Count(t, ip)
	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move")
	CountsPast(t, ip, n, "after the pre-dump move of a restored container")
	wantPrecopyReport(t, b.Info("c1"), "pre-dump")

	calls, _ := os.ReadFile(file("dumps"))
	var pre, final bool
	for _, l := range strings.Split(string(calls), "\n") {
		pre = pre || strings.HasPrefix(l, "pre-dump ") && strings.Contains(l, "pre-dump.log")
		final = final || strings.HasPrefix(l, "dump ") && strings.Contains(l, " --prev-images-dir ") && strings.Contains(l, " --track-mem ")
	}
	if !pre || !final {
		t.Errorf("no pre-dump, or no final dump over it:\n%s", calls)
	}
	if listed, _ := os.ReadFile(file("restores")); !strings.Contains(string(listed), "./parent/pagemap-") {
		t.Errorf("the target's restore found no parent images:\n%s", listed)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}
