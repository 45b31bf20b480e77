//go:build vmtest

package vmtest

// A VM killed (its qemu, by pid: a power cut) during a live move. What is
// right depends on whose power goes and when; after the killed VM boots
// again and its ctrfs starts, the container is on exactly one host:
//
//   - target killed in the precopy: the container never stopped running
//     on the source; it is RUNNING there with its count, and the target,
//     back, holds no copy.
//   - target killed in the handover (the source has dumped; the target
//     is restoring a provisional copy): the source restores its own copy
//     (RUNNING there, its count going on from the freeze); the target,
//     back, holds no copy.
//   - source killed in the precopy: the container's processes died with
//     their host; the target never holds it. The source, back, lists it
//     STOPPED (a crashed host's containers are not started by anyone),
//     and a start runs it again (afresh: its memory is gone).
//   - source killed in the handover: the final dump is complete on the
//     source's disk and the target has a provisional, uncommitted copy.
//     Either the target had committed (RUNNING there; the source, back,
//     does not list it), or the target drops its copy once the source is
//     quiet for its lease, and the source, back, settles the move from its
//     journal and restores the final dump: RUNNING there, the count going
//     on (or STOPPED with that dump as saved state, from which a start
//     continues the count).
// Never both hosts, never neither.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigContainer makes a running container whose rootfs holds 150 MiB of
// random data, so that a move's precopy lasts long enough to be cut.
func bigContainer(t *testing.T, v *VM, name string) (ip string) {
	t.Helper()
	ip = v.CreateRunning(t, name)
	v.MustSh(t, fmt.Sprintf("head -c 150M /dev/urandom > /var/lib/lxc/%s/rootfs/root/ballast", name))
	return ip
}

// moveAndKill starts a live move of name from one VM to the other and
// kills victim as soon as the source's events show phase started. It
// returns the move's error (the write on the source; nil if the source
// itself was killed) and the events seen up to the kill.
func moveAndKill(t *testing.T, name string, from, to, victim *VM, phase string) (error, string) {
	t.Helper()
	ev := from.Follow(t)
	done := make(chan error, 1)
	go func() { done <- from.Ctl(name, "move "+to.Name) }()
	marker := fmt.Sprintf("%s %s move-%s started", from.Name, name, phase)
	deadline := time.Now().Add(10 * time.Minute)
	for !ev.Has(marker) {
		select {
		case err := <-done:
			t.Fatalf("the move ended before its %s (%v); events:\n%s", phase, err, ev.Text())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 10 minutes; events:\n%s", marker, ev.Text())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if phase == "precopy" {
		// Into the transfer, not only its first instant.
		time.Sleep(2 * time.Second)
	}
	seen := ev.Text()
	victim.Kill(t)
	t.Logf("killed %s in the %s; events on %s by then:\n%s", victim.Name, phase, from.Name, seen)
	if victim == from {
		return nil, seen
	}
	select {
	case err := <-done:
		return err, seen
	case <-time.After(shTimeout):
		t.Fatalf("the move did not end %s after its target died", shTimeout)
	}
	return nil, seen
}

// lacks fails the test if v lists name.
func lacks(t *testing.T, v *VM, name, when string) {
	t.Helper()
	if v.Has(name) {
		t.Fatalf("%s holds %s %s (status %q)%s", v.Name, name, when, v.Status(name), v.why(name))
	}
}

func waitPeer(t *testing.T, v, peer *VM) {
	t.Helper()
	waitFor(t, v.Name+" to see "+peer.Name+" again", 5*time.Minute, func() bool {
		out, _ := v.Sh("ls hosts")
		return strings.Contains(out, peer.Name)
	})
}

func TestKillTargetDuringPrecopy(t *testing.T) {
	ip := bigContainer(t, vmA, "k1")
	before := Count(t, ip)
	err, seen := moveAndKill(t, "k1", vmA, vmB, vmB, "precopy")
	if err == nil {
		t.Fatal("the move succeeded although its target died")
	}
	if strings.Contains(seen, "move-freeze started") {
		t.Fatalf("the precopy was over when the target died: the container too small to cut it")
	}
	t.Logf("the move's error: %v", err)
	vmA.WantStatus(t, "k1", "RUNNING", "on the source after its target died in the precopy")
	before = countFrom(t, ip, before, "over a move whose target died in the precopy")
	vmB.Boot(t)
	waitPeer(t, vmA, vmB)
	lacks(t, vmB, "k1", "after it died in the precopy and came back")
	vmA.WantStatus(t, "k1", "RUNNING", "once the target came back")
	countFrom(t, ip, before, "once the target came back")
}

func TestKillTargetDuringHandover(t *testing.T) {
	ip := bigContainer(t, vmA, "k2")
	before := Count(t, ip)
	err, seen := moveAndKill(t, "k2", vmA, vmB, vmB, "handover")
	if err == nil {
		t.Fatal("the move succeeded although its target died in the handover")
	}
	if strings.Contains(seen, "move-commit started") {
		t.Fatalf("the move was committing when the target died: the kill came too late to test the handover")
	}
	t.Logf("the move's error: %v", err)
	waitFor(t, "k2 RUNNING on the source again", 5*time.Minute, func() bool { return vmA.Status("k2") == "RUNNING" })
	before = countFrom(t, ip, before, "over a move whose target died in the handover")
	vmB.Boot(t)
	waitPeer(t, vmA, vmB)
	lacks(t, vmB, "k2", "after it died in the handover and came back")
	vmA.WantStatus(t, "k2", "RUNNING", "once the target came back")
	countFrom(t, ip, before, "once the target came back")
}

func TestKillSourceDuringPrecopy(t *testing.T) {
	bigContainer(t, vmA, "k3")
	_, seen := moveAndKill(t, "k3", vmA, vmB, vmA, "precopy")
	if strings.Contains(seen, "move-freeze started") {
		t.Fatalf("the precopy was over when the source died: the container too small to cut it")
	}
	// The target's lease on a reserved name is 15 s; give it time to act.
	time.Sleep(time.Minute)
	lacks(t, vmB, "k3", "a minute after its source died in the precopy")
	vmA.Boot(t)
	waitPeer(t, vmB, vmA)
	lacks(t, vmB, "k3", "once the source came back")
	waitFor(t, "k3 listed on the source", 2*time.Minute, func() bool { return vmA.Has("k3") })
	vmA.WantStatus(t, "k3", "STOPPED", "on the source after it crashed in the precopy and came back")
	vmA.MustCtl(t, "k3", "start")
	ip := vmA.Info("k3")["ipv4"]
	Count(t, ip)
}

func TestKillSourceDuringHandover(t *testing.T) {
	ip := bigContainer(t, vmA, "k4")
	before := Count(t, ip)
	moveAndKill(t, "k4", vmA, vmB, vmA, "handover")
	time.Sleep(time.Minute)
	onB := vmB.Has("k4") && vmB.Status("k4") == "RUNNING"
	vmA.Boot(t)
	waitPeer(t, vmB, vmA)
	// Settled both ways once the source's daemon is back.
	time.Sleep(30 * time.Second)
	hasA, hasB := vmA.Has("k4"), vmB.Has("k4")
	t.Logf("after the source died in the handover and came back: on %s %v (%s), on %s %v (%s); RUNNING on %s a minute after the kill: %v",
		vmA.Name, hasA, vmA.Status("k4"), vmB.Name, hasB, vmB.Status("k4"), vmB.Name, onB)
	switch {
	case hasA && hasB:
		t.Fatalf("both hosts hold k4%s%s", vmA.why("k4"), vmB.why("k4"))
	case !hasA && !hasB:
		t.Fatal("neither host holds k4")
	case hasB:
		vmB.WantStatus(t, "k4", "RUNNING", "on the target, which had committed")
		countFrom(t, ip, before, "on the target that committed before the source died")
	default:
		if vmA.Status("k4") == "RUNNING" {
			countFrom(t, ip, before, "restored by the source from the final dump of the move its host died in")
			return
		}
		info := vmA.Info("k4")
		if vmA.Status("k4") != "STOPPED" || info["stateful"] != "yes" {
			t.Fatalf("k4 on the source after it came back: status %q, stateful %q; want RUNNING, or STOPPED with the final dump as saved state%s",
				vmA.Status("k4"), info["stateful"], vmA.why("k4"))
		}
		vmA.MustCtl(t, "k4", "start")
		countFrom(t, ip, before, "started from the final dump of the move its host died in")
	}
}
