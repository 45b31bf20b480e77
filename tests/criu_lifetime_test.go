package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// No helper or CRIU outlives its daemon (ops/lxchelper/lifeline.go), and no CRIU is
// waited on forever (ops/lxchelper/criulimit.go). These tests hold CRIU at a known
// point of its work with an action script named in the container's `criu`
// file (criuHold), then kill the daemon, or let the deadline pass.

// criuHold holds the CRIU runs of a container at one of CRIU's actions
// (post-dump, post-restore, ...) for as long as it is armed.
type criuHold struct {
	t                      *testing.T
	script, armed, reached string
}

func newCRIUHold(t *testing.T, action string) *criuHold {
	t.Helper()
	dir := t.TempDir()
	h := &criuHold{t: t, script: filepath.Join(dir, "hold.sh"),
		armed: filepath.Join(dir, "armed"), reached: filepath.Join(dir, "reached")}
	script := fmt.Sprintf("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = %s ] && [ -e %s ] || exit 0\n"+
		": > %s\nwhile [ -e %s ]; do sleep 0.05; done\n", action, h.armed, h.reached, h.armed)
	if err := os.WriteFile(h.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.release)
	return h
}

// criuOptions writes c1's criu file on d: lines such as "dump: action-script X".
func criuOptions(d *Daemon, lines ...string) {
	d.t.Helper()
	d.MustSh(fmt.Sprintf("printf '%s\\n' > containers/c1/criu", strings.Join(lines, "\\n")))
}

func (h *criuHold) arm() {
	os.Remove(h.reached)
	if err := os.WriteFile(h.armed, nil, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *criuHold) release() { os.Remove(h.armed) }

func (h *criuHold) waitReached(what string) {
	h.t.Helper()
	waitLong(h.t, what, 2*time.Minute, func() bool { return exists(h.reached) })
}

// leftBy lists the processes that daemon d started and that still run:
// its helpers and lazy-pages watchers (their command lines name its LXC
// path; LXC's monitors rename themselves) and the CRIU runs on its images
// (in its store or its memory staging).
func leftBy(d *Daemon) []string {
	sum := sha256.Sum256([]byte(d.Store))
	staging := "/ctrfs-staging-" + hex.EncodeToString(sum[:6])
	var out []string
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range paths {
		b, _ := os.ReadFile(path)
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 3 { // zombies have no command line
			continue
		}
		helper := (args[1] == "lxc-helper" && len(args) > 3 && args[3] == d.LXCPath) ||
			(args[1] == "lazy-pages-watch" && args[2] == d.LXCPath)
		criu := filepath.Base(args[0]) == "criu" && (strings.Contains(string(b), d.Store) || strings.Contains(string(b), staging))
		if helper || criu {
			out = append(out, filepath.Base(filepath.Dir(path))+": "+strings.Join(args, " "))
		}
	}
	return out
}

// noneLeftBy waits until nothing that the killed daemon d started runs,
// and fails the test if something still does after 30 s (and kills it, so
// that the test can go on).
func noneLeftBy(t *testing.T, d *Daemon, when string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if left = leftBy(d); len(left) == 0 {
			return
		}
	}
	t.Errorf("%s, processes it started still run 30 s later:\n%s", when, strings.Join(left, "\n"))
	for _, p := range left {
		var pid int
		fmt.Sscanf(p, "%d:", &pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// eventsSince is what the events reader has seen past offset from.
func eventsSince(e *events, from int) string {
	text := e.Text()
	if len(text) < from {
		return ""
	}
	return text[from:]
}

// runsOnOneHost waits until c1 runs on exactly one of a and b, with its
// count not behind before, and says whether that is a.
func runsOnOneHost(t *testing.T, a, b *Peer, ip string, before int, when string) (onA bool) {
	t.Helper()
	status := func(d *Peer) string {
		if !d.has("c1") {
			return "none"
		}
		st, _ := d.Sh("cat containers/c1/status")
		return strings.TrimSpace(st)
	}
	var sa, sb string
	waitLong(t, "c1 to run on exactly one host "+when, 2*time.Minute, func() bool {
		sa, sb = status(a), status(b)
		return (sa == "RUNNING" && sb == "none") || (sa == "none" && sb == "RUNNING")
	})
	countFrom(t, ip, before, when)
	return sa == "RUNNING"
}

// TestTargetKilledEachPhase: the target of a move is killed (SIGKILL) in
// each phase of a pre-copy and of a post-copy move, while its CRIU
// restores in the handover. Nothing it started is left running (its
// helpers, CRIU runs, lazy-pages daemons and watchers die with it), and
// the container runs on the source with its count (killed in the commit,
// on exactly one host).
func TestTargetKilledEachPhase(t *testing.T) {
	t.Run("pre-copy", func(t *testing.T) { targetKilledEachPhase(t, false) })
	t.Run("post-copy", func(t *testing.T) { targetKilledEachPhase(t, true) })
}

func targetKilledEachPhase(t *testing.T, postCopy bool) {
	phases := []string{"check", "precopy", "freeze", "handover", "commit"}
	line := "move tollana"
	// A post-copy move pauses once its page server listens, so that the
	// postcopy phase can be held (stalledPostCopy); otherwise the pause
	// is let go at once.
	env, pause := pauseAt(t, "postcopy-serving")
	var a, b *Peer
	if postCopy {
		phases = []string{"check", "precopy", "freeze", "handover", "postcopy", "commit"}
		line += " --post-copy"
		a, b = twoHostsEnv(t, env)
	} else {
		a, b = twoHosts(t)
	}
	var holdPause atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if !holdPause.Load() {
				os.Remove(pause)
			}
		}
	}()

	ip := a.CreateRunning("c1")
	hold := newCRIUHold(t, "post-restore")
	criuOptions(a.Daemon, "restore: action-script "+hold.script)
	events := a.readEvents()
	for _, phase := range phases {
		when := fmt.Sprintf("after the target was killed in the %s phase of a %s", phase, line)
		before := Count(t, ip)
		from := len(eventsSince(events, 0))
		var move *backgroundMove
		var sourceCRIU int
		switch phase {
		case "postcopy":
			holdPause.Store(true)
			move, sourceCRIU, _ = stalledPostCopy(t, a, b, pause)
			holdPause.Store(false)
		case "handover":
			hold.arm()
			fallthrough
		default:
			stderr := filepath.Join(t.TempDir(), "stderr")
			move = &backgroundMove{a.Background("{ echo '" + line + "' > containers/c1/ctl; } 2>" + stderr), stderr}
		}
		if phase == "handover" {
			hold.waitReached("the target's CRIU to restore c1")
		} else if phase != "postcopy" {
			waitLong(t, "the "+phase+" phase", 2*time.Minute, func() bool {
				return strings.Contains(eventsSince(events, from), "dakara c1 move-"+phase+" started")
			})
		}
		b.Kill()
		noneLeftBy(t, b.Daemon, when)
		hold.release()
		if sourceCRIU != 0 {
			syscall.Kill(sourceCRIU, syscall.SIGCONT)
		}
		b.Start()
		err := move.Wait()
		onA := runsOnOneHost(t, a, b, ip, before, when)
		t.Logf("%s: the move %s; c1 runs on %s; error: %s", when, map[bool]string{true: "failed", false: "succeeded"}[err != nil],
			map[bool]string{true: "the source", false: "the target"}[onA], strings.TrimSpace(move.Stderr()))
		switch {
		case onA && err == nil:
			t.Errorf("%s: the move succeeded, but c1 runs on the source", when)
		case !onA && phase != "commit":
			t.Fatalf("%s: c1 runs on the target", when)
		case !onA:
			b.MustSh("echo 'move dakara' > containers/c1/ctl")
		}
		a.waitHosts("dakara", "tollana")
	}
	a.MustSh("echo stop > containers/c1/ctl")
}

// TestCRIUDeadline: a CRIU run that does not finish is killed at its
// deadline (CTRFS_CRIU_LIMIT shortens it for the test), and the operation
// fails saying so, leaving the container as it was: a stop-stateful whose
// dump hangs leaves it RUNNING, thawed and its network unlocked; a start
// whose restore hangs leaves it STOPPED with its saved state, from which
// it starts once CRIU can finish. No CRIU or helper is left waiting.
func TestCRIUDeadline(t *testing.T) {
	d := NewDaemon(t, "dakara")
	d.Env = []string{"CTRFS_CRIU_LIMIT=" + criuLimit.String()}
	d.Start()
	ip := d.CreateRunning("c1")
	dump, restore := newCRIUHold(t, "post-dump"), newCRIUHold(t, "post-restore")
	criuOptions(d, "dump: action-script "+dump.script, "restore: action-script "+restore.script)

	before := Count(t, ip)
	dump.arm()
	overdue(t, d, "stop-stateful", dump)
	d.WantStatus("containers/c1", "RUNNING", "after a stop-stateful whose CRIU was killed")
	before = countFrom(t, ip, before, "after a dump whose CRIU was killed")
	if d.Info("c1")["stateful"] != "no" {
		t.Error("a dump whose CRIU was killed left saved state")
	}
	dump.release()

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	restore.arm()
	overdue(t, d, "start", restore)
	if info := d.Info("c1"); info["status"] != "STOPPED" || info["stateful"] != "yes" {
		t.Fatalf("after a start whose CRIU was killed, c1 is %s, stateful %s", info["status"], info["stateful"])
	}
	restore.release()
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, before, "after the restore that CRIU could finish")
	d.MustSh("echo stop > containers/c1/ctl")
}

// criuLimit is every CRIU run's deadline in TestCRIUDeadline: short, so
// that the test does not wait long for the deadline of a held CRIU, but
// several times what a busybox container's dump or restore takes on a
// loaded machine (about a second), since those that are not held must
// finish within it.
const criuLimit = 8 * time.Second

// overdue writes verb to c1's ctl while hold holds its CRIU, and checks
// that the write fails (EIO) once the deadline has passed, with an error
// that says so, and that nothing of the CRIU run is left.
func overdue(t *testing.T, d *Daemon, verb string, hold *criuHold) {
	t.Helper()
	stderr := filepath.Join(t.TempDir(), "stderr")
	write := &backgroundMove{d.Background("{ echo " + verb + " > containers/c1/ctl; } 2>" + stderr), stderr}
	hold.waitReached("CRIU to reach the hold during " + verb)
	done := make(chan error, 1)
	go func() { done <- write.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		hold.release()
		<-done
		t.Fatalf("%s still waited for its CRIU 90 s after it was held (the deadline is %v)", verb, criuLimit)
	}
	if err == nil || !strings.Contains(write.Stderr(), "Input/output error") {
		t.Fatalf("%s whose CRIU never finishes: %v %s; want EIO", verb, err, write.Stderr())
	}
	e := d.Read("containers/c1/error")
	if !strings.Contains(e, "did not finish") {
		t.Errorf("error of %s whose CRIU was killed: %q", verb, e)
	}
	t.Logf("%s whose CRIU never finishes: %s", verb, e)
	if left := leftBy(d); len(left) > 0 {
		t.Errorf("after %s failed, processes of its CRIU run still run:\n%s", verb, strings.Join(left, "\n"))
	}
}

// TestDaemonKilledUnderCRIU: a daemon killed while CRIU dumps or restores
// a container takes its helper and CRIU with it: a dump once CRIU has
// finished (lxchelper.DumpGrace: a CRIU killed while it infects a task
// would leave the task to die of its parasite's trap), a restore at once.
// The dump's container runs on, thawed and its network unlocked, with no
// saved state; the restore's stays STOPPED with its saved state, from
// which the next daemon starts it.
func TestDaemonKilledUnderCRIU(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	dump, restore := newCRIUHold(t, "post-dump"), newCRIUHold(t, "post-restore")
	criuOptions(d, "dump: action-script "+dump.script, "restore: action-script "+restore.script)

	before := Count(t, ip)
	dump.arm()
	write := d.Background("echo stop-stateful > containers/c1/ctl")
	dump.waitReached("CRIU to dump c1")
	d.Kill()
	write.Wait()
	// CRIU, held in its post-dump hook, is let finish: still there a
	// moment later, however soon the helper noticed.
	time.Sleep(time.Second)
	if len(leftBy(d)) == 0 {
		t.Error("the daemon's death stopped its dump at once; it is to be let finish")
	}
	dump.release()
	noneLeftBy(t, d, "after the daemon was killed during a dump, once the dump finished")
	before = countFrom(t, ip, before, "after its dump was cut short, before a daemon started")
	d.Start()
	if info := d.Info("c1"); info["status"] != "RUNNING" || info["stateful"] != "no" {
		t.Fatalf("after a dump cut short: c1 is %s, stateful %s", info["status"], info["stateful"])
	}

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	restore.arm()
	write = d.Background("echo start > containers/c1/ctl")
	restore.waitReached("CRIU to restore c1")
	d.Kill()
	write.Wait()
	noneLeftBy(t, d, "after the daemon was killed during a restore")
	restore.release()
	d.Start()
	if info := d.Info("c1"); info["status"] != "STOPPED" || info["stateful"] != "yes" {
		t.Fatalf("after a restore cut short: c1 is %s, stateful %s", info["status"], info["stateful"])
	}
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, before, "after the restore cut short")
	d.MustSh("echo stop > containers/c1/ctl")
}
