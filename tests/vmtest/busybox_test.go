//go:build vmtest

package vmtest

// The busybox template on stock Debian 12 hosts: checkpoints, snapshots,
// moves both ways across the two kernels with a client counting from this
// host, post-copy with the pipe size limit as the kernel has it, evacuate,
// and a service run as its own user.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CreateRunning makes and starts a busybox container on v and waits until
// its counter answers on the segment. With create options (such as
// --unprivileged) it is made by the host's `create` rather than mkdir.
func (v *VM) CreateRunning(t *testing.T, name string, createOpts ...string) (ip string) {
	t.Helper()
	removeAfter(t, name)
	if len(createOpts) == 0 {
		v.MustSh(t, "mkdir containers/"+name)
	} else if out, err := v.Sh("echo 'create " + name + " " + strings.Join(createOpts, " ") + "' > ctl"); err != nil {
		e, _ := v.Sh("cat error")
		t.Fatalf("%s: create %s %s: %v %s (error: %s)", v.Name, name, strings.Join(createOpts, " "), err, out, e)
	}
	v.MustCtl(t, name, "start")
	ip = v.Info(name)["ipv4"]
	if ip == "" {
		t.Fatalf("%s on %s has no ipv4 in info", name, v.Name)
	}
	Count(t, ip)
	return ip
}

// move moves name from one VM to the other with a client counting, checks
// that the count went on and the container runs on the target only, and
// prints the move's figures.
func move(t *testing.T, name, ip string, from, to *VM, postCopy bool) {
	t.Helper()
	moveAs(t, "", name, ip, from, to, postCopy)
}

// moveAs is move with kind (such as "unprivileged ") leading its FIGURE
// line, so that the figures of two kinds of container can be told apart.
func moveAs(t *testing.T, kind, name, ip string, from, to *VM, postCopy bool) {
	t.Helper()
	cmd, mode := "move "+to.Name, "live"
	if postCopy {
		cmd, mode = cmd+" --post-copy", "post-copy"
	}
	before := Count(t, ip)
	p := StartProber(ip)
	start := time.Now()
	err := from.Ctl(name, cmd)
	took := time.Since(start)
	gap, backward := p.Stop()
	if err != nil {
		t.Fatalf("%s move %s -> %s: %v%s", mode, from.Name, to.Name, err, from.why(name))
	}
	to.WantStatus(t, name, "RUNNING", "on the target after the move")
	if from.Has(name) {
		t.Errorf("%s is still on %s after its move to %s", name, from.Name, to.Name)
	}
	after := countFrom(t, ip, before, "over the "+mode+" move")
	if backward {
		t.Errorf("the count went back during the %s move: the processes restarted", mode)
	}
	info := to.Info(name)
	if info["move-mode"] != mode {
		t.Errorf("move-mode on the target: %q, want %q", info["move-mode"], mode)
	}
	t.Logf("FIGURE %s%s move %s -> %s (%s -> %s): write %.1f s, move-seconds %s, downtime-seconds %s, client gap %.1f s, sent %s bytes, count %d -> %d",
		kind, mode, from.Name, to.Name, kernel(from), kernel(to), took.Seconds(), info["move-seconds"], info["downtime-seconds"],
		gap.Seconds(), info["move-sent-bytes"], before, after)
}

func kernel(v *VM) string {
	k, _ := v.Run("uname -r")
	return k
}

// TestStopStatefulStart: checkpoint to the store, stop, start from it.
func TestStopStatefulStart(t *testing.T) {
	ip := vmA.CreateRunning(t, "bb1")
	before := Count(t, ip)
	vmA.MustCtl(t, "bb1", "stop-stateful")
	vmA.WantStatus(t, "bb1", "STOPPED", "after stop-stateful")
	dump := pick(vmA.Info("bb1"), "criu-frozen-seconds", "dump-seconds", "store-seconds")
	vmA.MustCtl(t, "bb1", "start")
	countFrom(t, ip, before, "over stop-stateful and start")
	t.Logf("FIGURE stop-stateful/start on %s: %s; %s", vmA.Name, dump, pick(vmA.Info("bb1"), "criu-restore-seconds", "restore-mode"))
}

// TestStatefulSnapshot: a stateful snapshot, then a restore of it brings
// the processes back as they were: the count from before the snapshot on,
// not from 1, and below what it had reached before the restore.
func TestStatefulSnapshot(t *testing.T) {
	ip := vmB.CreateRunning(t, "bb2")
	// Far from a cold start's count, and far below what it reaches before
	// the restore, whatever the pace of the emulation.
	pre := CountsPast(t, ip, 300)
	vmB.MustCtl(t, "bb2", "snapshot s1 --stateful")
	later := CountsPast(t, ip, Count(t, ip)+300)
	vmB.MustCtl(t, "bb2", "restore s1")
	vmB.WantStatus(t, "bb2", "RUNNING", "after restore of a stateful snapshot")
	if n := Count(t, ip); n < pre || n >= later {
		t.Errorf("after restore s1 the count is %d; before the snapshot it was %d, before the restore %d", n, pre, later)
	}
}

// TestMovesLive: pre-copy moves from A (bookworm's 6.1) to B (backports'
// kernel) and back, then a pull.
func TestMovesLive(t *testing.T) {
	ip := vmA.CreateRunning(t, "bb3")
	move(t, "bb3", ip, vmA, vmB, false)
	move(t, "bb3", ip, vmB, vmA, false)
	// A pull: B asks A for it.
	before := Count(t, ip)
	vmB.MustSh(t, "mv hosts/"+vmA.Name+"/bb3 containers/")
	vmB.WantStatus(t, "bb3", "RUNNING", "after the pull")
	countFrom(t, ip, before, "over the pull")
}

// TestMovesPostCopy: post-copy moves both ways, with fs.pipe-max-size as
// the kernel has it (a stock host's root has CAP_SYS_RESOURCE, so nothing
// needs to raise it).
func TestMovesPostCopy(t *testing.T) {
	pipeMax := map[string]string{}
	for _, v := range []*VM{vmA, vmB} {
		pipeMax[v.Name], _ = v.Run("sysctl -n fs.pipe-max-size")
	}
	unchanged := func(when string) {
		t.Helper()
		for _, v := range []*VM{vmA, vmB} {
			now, _ := v.Run("sysctl -n fs.pipe-max-size")
			if now != pipeMax[v.Name] || now != "1048576" {
				t.Errorf("%s: fs.pipe-max-size %s before the post-copy moves, %s %s (the kernel's default is 1048576)", v.Name, pipeMax[v.Name], now, when)
			}
		}
	}
	ip := vmA.CreateRunning(t, "bb5")
	move(t, "bb5", ip, vmA, vmB, true)
	unchanged("after the move to " + vmB.Name)
	move(t, "bb5", ip, vmB, vmA, true)
	unchanged("after the move back")
}

// TestEvacuate: every container of A goes to B, running ones live.
func TestEvacuate(t *testing.T) {
	ips := map[string]string{}
	counts := map[string]int{}
	for _, n := range []string{"ev1", "ev2"} {
		ips[n] = vmA.CreateRunning(t, n)
	}
	removeAfter(t, "ev3")
	vmA.MustSh(t, "mkdir containers/ev3") // a stopped one moves cold
	for n, ip := range ips {
		counts[n] = Count(t, ip)
	}
	start := time.Now()
	if out, err := vmA.Sh("echo evacuate > ctl"); err != nil {
		e, _ := vmA.Sh("cat error")
		t.Fatalf("evacuate: %v %s (error: %s)", err, out, e)
	}
	t.Logf("FIGURE evacuate of 3 containers %s -> %s: %.1f s", vmA.Name, vmB.Name, time.Since(start).Seconds())
	for n, ip := range ips {
		vmB.WantStatus(t, n, "RUNNING", "after evacuate")
		countFrom(t, ip, counts[n], "over evacuate")
	}
	vmB.WantStatus(t, "ev3", "STOPPED", "after evacuate")
	// containers/hosts is the tree's own (ctrfs(5)), not a container.
	if out, _ := vmA.Sh("ls containers | grep -vx hosts"); strings.TrimSpace(out) != "" {
		t.Errorf("%s still has containers after evacuate: %s", vmA.Name, out)
	}
}

// TestServiceAsItsUser: a process of uid 1000 in the container (a stock
// host's root has CAP_SYS_RESOURCE, so CRIU can read its rlimits) goes
// through stop-stateful/start and a move with its pid, uid and memory.
func TestServiceAsItsUser(t *testing.T) {
	ip := vmA.CreateRunning(t, "bb4")
	attach := func(v *VM, user, cmd string) string {
		t.Helper()
		ids := ""
		if user != "" {
			ids = "--uid " + user + " --gid " + user
		}
		out, err := v.Run(fmt.Sprintf("lxc-attach -P /var/lib/lxc -n bb4 %s -- /bin/sh -c '%s' </dev/null 2>&1", ids, cmd))
		if err != nil {
			t.Fatalf("%s: attach %s: %v: %s", v.Name, cmd, err, out)
		}
		return out
	}
	attach(vmA, "", "mkdir -p /home/u && chown 1000:1000 /home/u")
	// Its descriptors are the container's own /dev/null, none of the
	// attaching shell's (which would fail the dump).
	attach(vmA, "1000", `exec </dev/null >/dev/null 2>&1; setsid /bin/sh -c "i=0; while :; do i=\$((i+1)); echo \$i > /home/u/n; sleep 1; done" &`)
	read := func(v *VM) (pid string, uid string, n int) {
		t.Helper()
		var out string
		waitFor(t, "the uid 1000 loop to count", 2*time.Minute, func() bool {
			out = attach(v, "", `for p in /proc/[0-9]*; do if grep -q "^Uid:.1000" $p/status 2>/dev/null && grep -q "while" $p/cmdline 2>/dev/null; then echo ${p#/proc/} $(awk "/^Uid/{print \$2}" $p/status) $(cat /home/u/n); break; fi; done`)
			return len(strings.Fields(out)) == 3
		})
		f := strings.Fields(out)
		n, _ = strconv.Atoi(f[2])
		return f[0], f[1], n
	}
	pid, uid, n := read(vmA)
	if uid != "1000" {
		t.Fatalf("the loop runs as uid %s", uid)
	}
	time.Sleep(3 * time.Second)
	vmA.MustCtl(t, "bb4", "stop-stateful")
	vmA.MustCtl(t, "bb4", "start")
	pid2, uid2, n2 := read(vmA)
	if pid2 != pid || uid2 != "1000" || n2 < n {
		t.Fatalf("over stop-stateful/start the loop went from pid %s uid 1000 count %d to pid %s uid %s count %d", pid, n, pid2, uid2, n2)
	}
	move(t, "bb4", ip, vmA, vmB, false)
	pid3, uid3, n3 := read(vmB)
	if pid3 != pid || uid3 != "1000" || n3 < n2 {
		t.Fatalf("over the move the loop went from pid %s count %d to pid %s uid %s count %d", pid, n2, pid3, uid3, n3)
	}
}

// pick formats the keys of info that are there.
func pick(info map[string]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if v, ok := info[k]; ok {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}
