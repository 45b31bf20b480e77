//go:build vmtest

package vmtest

// Unprivileged containers (issue 21) on stock Debian 12 hosts: what `make
// test` shows on its one VM (hybrid cgroups, no AppArmor, root without
// CAP_SYS_RESOURCE), here on cgroup2-only hosts with AppArmor on, across
// the two kernels, with CRIU's patches 0007 (usernsd veth) and 0008
// (/dev/userfaultfd for lazy restores in a user namespace) installed.
// Their FIGURE lines say "unprivileged", beside the privileged ones of
// busybox_test.go and debian_test.go.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// apparmorDenials is the tail of AppArmor's denials in the VM's kernel
// log: under AppArmor a unit or a restore that fails often says only
// "Permission denied", and the denial names the profile and the operation.
func (v *VM) apparmorDenials() string {
	out, _ := v.Run(`journalctl -k --no-pager -o short-monotonic 2>/dev/null | grep 'apparmor="DENIED"' | tail -n 20`)
	if out == "" {
		return "(none)"
	}
	return out
}

// diagnose is deferred by a test: if it failed, it logs each VM's error
// and log of name (whatever step failed, in a shared helper too) and
// their AppArmor denials. Deferred, it runs before the cleanups that
// destroy the container.
func diagnose(t *testing.T, name string) {
	if !t.Failed() {
		return
	}
	for _, v := range []*VM{vmA, vmB} {
		if v.Has(name) {
			t.Logf("%s", v.why(name))
		}
		t.Logf("--- AppArmor denials in %s's kernel log:\n%s", v.Name, v.apparmorDenials())
	}
}

// hostIDs is the start of root's ranges on a host: an unprivileged
// container's uids and gids 0-65535 are the host's from there.
type hostIDs struct{ uid, gid int }

// rootMap is the map an unprivileged container gets on v: the start of
// root's ranges in /etc/subuid and /etc/subgid (the daemon adds them at
// startup where root has none).
func (v *VM) rootMap(t *testing.T) hostIDs {
	t.Helper()
	out := v.MustSh(t, "grep -m1 '^root:' /etc/subuid | cut -d: -f2; grep -m1 '^root:' /etc/subgid | cut -d: -f2")
	var m hostIDs
	if _, err := fmt.Sscan(out, &m.uid, &m.gid); err != nil {
		t.Fatalf("%s: root's ranges in /etc/subuid and /etc/subgid: %q: %v", v.Name, out, err)
	}
	return m
}

// wantUnprivileged fails the test unless name on v says `privileged: no`
// with map m (the one it was made with: a move keeps it), and its init's
// /proc/PID/uid_map in the VM is that map.
func (v *VM) wantUnprivileged(t *testing.T, name string, m hostIDs, when string) {
	t.Helper()
	wantIdmap := fmt.Sprintf("u 0 %d 65536, g 0 %d 65536", m.uid, m.gid)
	info := v.Info(name)
	if info["privileged"] != "no" || info["idmap"] != wantIdmap {
		t.Fatalf("%s on %s %s: privileged %q, idmap %q; want no, %q%s", name, v.Name, when, info["privileged"], info["idmap"], wantIdmap, v.why(name))
	}
	if info["pid"] == "" {
		t.Fatalf("%s on %s %s: no pid in info%s", name, v.Name, when, v.why(name))
	}
	wantUIDMap := fmt.Sprintf("0 %d 65536", m.uid)
	got, err := v.Run("cat /proc/" + info["pid"] + "/uid_map")
	if got = strings.Join(strings.Fields(got), " "); err != nil || got != wantUIDMap {
		t.Fatalf("%s on %s %s: uid_map of its init (pid %s): %q (%v); want %q%s", name, v.Name, when, info["pid"], got, err, wantUIDMap, v.why(name))
	}
}

// attachSh runs a shell command in name on v as its root.
func (v *VM) attachSh(t *testing.T, name, cmd string) string {
	t.Helper()
	out, err := v.Run(fmt.Sprintf("lxc-attach -P /var/lib/lxc -n %s -- /bin/sh -c '%s' </dev/null 2>&1", name, cmd))
	if err != nil {
		t.Fatalf("%s: attach %s: %s: %v: %s%s", v.Name, name, cmd, err, out, v.why(name))
	}
	return out
}

// counterPid is the pid, inside the container, of the busybox counter:
// the child of init running /bin/counter (its own forks, between fork and
// exec, have the counter as parent). The same pid over a checkpoint shows
// the same process came back; init's host pid in info is new after every
// restore, and inside it is always 1. The pattern's brackets keep the
// searching shell, whose command line holds it, from matching.
func (v *VM) counterPid(t *testing.T, name string) string {
	t.Helper()
	var out string
	waitFor(t, "the counter's process in "+name+" on "+v.Name, 2*time.Minute, func() bool {
		out, _ = v.Run(fmt.Sprintf(`lxc-attach -P /var/lib/lxc -n %s -- /bin/sh -c 'for p in /proc/[0-9]*; do grep -q "/bin/[c]ounter" $p/cmdline 2>/dev/null && grep -q "^PPid:.1$" $p/status 2>/dev/null && echo ${p#/proc/}; done' </dev/null 2>&1`, name))
		return len(strings.Fields(out)) == 1
	})
	return strings.TrimSpace(out)
}

// owners is uid:gid on v of each path of name's rootfs, as the host sees
// them.
func (v *VM) owners(t *testing.T, name string, paths ...string) string {
	t.Helper()
	cmd := "cd /var/lib/lxc/" + name + "/rootfs && stat -c '%n %u:%g'"
	for _, p := range paths {
		cmd += " " + p
	}
	out, err := v.Run(cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v: %s%s", v.Name, cmd, err, out, v.why(name))
	}
	return out
}

// logUserfaultfd logs what a lazy (post-copy) restore of an unprivileged
// container has on v: the sysctl (the kernel's default is 0; does Debian's
// sysctl.d change it?), /dev/userfaultfd, and root's ranges as the peer
// gossips them for the map check.
func logUserfaultfd(t *testing.T) {
	for _, v := range []*VM{vmA, vmB} {
		sysctl, _ := v.Run("sysctl -n vm.unprivileged_userfaultfd")
		set, _ := v.Run("grep -rs unprivileged_userfaultfd /etc/sysctl.conf /etc/sysctl.d /usr/lib/sysctl.d /run/sysctl.d || echo 'set in no sysctl.d file: the kernel default'")
		dev, _ := v.Run("ls -l /dev/userfaultfd 2>&1")
		t.Logf("FIGURE %s (%s): vm.unprivileged_userfaultfd = %s (%s); %s", v.Name, kernel(v), sysctl, set, dev)
	}
	for _, pair := range [][2]*VM{{vmA, vmB}, {vmB, vmA}} {
		r, _ := pair[0].Sh("grep root-id-ranges hosts/" + pair[1].Name + "/info")
		t.Logf("%s sees %s's %s", pair[0].Name, pair[1].Name, r)
	}
}

// TestUnprivilegedBusyboxBed: an unprivileged busybox container on stock
// Debian hosts runs in the host's map, passes check, goes through
// stop-stateful/start and a stateful snapshot's restore with its
// processes, and moves live A -> B (6.1 -> 6.12) and post-copy B -> A
// with its count, its map and its files' owners.
func TestUnprivilegedBusyboxBed(t *testing.T) {
	const name = "ub1"
	defer diagnose(t, name)
	logUserfaultfd(t)
	ip := vmA.CreateRunning(t, name, "--unprivileged")
	m := vmA.rootMap(t)
	vmA.wantUnprivileged(t, name, m, "after create --unprivileged and start")
	vmA.mustCtlWhy(t, name, "check")

	// Files root and a user made inside: the host sees them as the
	// mapped ids, and a move must keep them so.
	vmA.attachSh(t, name, "echo r > /root/by-root && echo u > /root/by-user && chown 1000:100 /root/by-user")
	files := []string{"root/by-root", "root/by-user"}
	owned := vmA.owners(t, name, files...)
	if want := fmt.Sprintf("root/by-root %d:%d\nroot/by-user %d:%d", m.uid, m.gid, m.uid+1000, m.gid+100); owned != want {
		t.Fatalf("files made inside %s on %s are owned on the host as\n%s\nwant\n%s", name, vmA.Name, owned, want)
	}

	// stop-stateful and start: the same counter process, its count on.
	pid := vmA.counterPid(t, name)
	before := Count(t, ip)
	vmA.mustCtlWhy(t, name, "stop-stateful")
	vmA.WantStatus(t, name, "STOPPED", "after stop-stateful")
	dump := pick(vmA.Info(name), "criu-frozen-seconds", "dump-seconds", "store-seconds")
	vmA.mustCtlWhy(t, name, "start")
	vmA.WantStatus(t, name, "RUNNING", "after start from saved state")
	countFrom(t, ip, before, "over stop-stateful and start")
	if p := vmA.counterPid(t, name); p != pid {
		t.Fatalf("the counter's pid went from %s to %s over stop-stateful and start: not the same process%s", pid, p, vmA.why(name))
	}
	vmA.wantUnprivileged(t, name, m, "after stop-stateful and start")
	t.Logf("FIGURE unprivileged stop-stateful/start on %s: %s; %s", vmA.Name, dump, pick(vmA.Info(name), "criu-restore-seconds", "restore-mode"))

	// A stateful snapshot and its restore: the count from before the
	// snapshot on, below what it had reached before the restore.
	pre := CountsPast(t, ip, Count(t, ip)+50)
	vmA.mustCtlWhy(t, name, "snapshot s1 --stateful")
	later := CountsPast(t, ip, Count(t, ip)+300)
	vmA.mustCtlWhy(t, name, "restore s1")
	vmA.WantStatus(t, name, "RUNNING", "after restore of a stateful snapshot")
	if n := Count(t, ip); n < pre || n >= later {
		t.Fatalf("after restore s1 the count is %d; before the snapshot it was %d, before the restore %d%s", n, pre, later, vmA.why(name))
	}
	vmA.wantUnprivileged(t, name, m, "after restore s1")

	// The moves: live to the newer kernel, post-copy back.
	pid = vmA.counterPid(t, name)
	for _, hop := range []struct {
		from, to *VM
		postCopy bool
	}{{vmA, vmB, false}, {vmB, vmA, true}} {
		moveAs(t, "unprivileged ", name, ip, hop.from, hop.to, hop.postCopy)
		when := "after its move from " + hop.from.Name
		hop.to.wantUnprivileged(t, name, m, when)
		if got := hop.to.owners(t, name, files...); got != owned {
			t.Errorf("%s: files made inside are owned on %s as\n%s\nwant, as on %s,\n%s", when, hop.to.Name, got, vmA.Name, owned)
		}
		if p := hop.to.counterPid(t, name); p != pid {
			t.Fatalf("%s: the counter's pid went from %s to %s: not the same process%s", when, pid, p, hop.to.why(name))
		}
	}
}

// TestUnprivilegedDebianBed: an unprivileged debian-template container
// (systemd, sshd, nginx, the counter service) on stock Debian hosts with
// AppArmor on: systemd running, then stop-stateful/start and live moves
// A -> B and back, systemd running and the counter service the same
// process after each.
func TestUnprivilegedDebianBed(t *testing.T) {
	const name = "udeb1"
	defer diagnose(t, name)
	ip := vmA.debianContainer(t, name, "--unprivileged")
	m := vmA.rootMap(t)
	vmA.wantUnprivileged(t, name, m, "after create --unprivileged and start")
	if t.Failed() { // systemd not running: the steps after would only repeat it
		t.FailNow()
	}
	mainPid := func(v *VM) string {
		t.Helper()
		pid := v.attachSh(t, name, "systemctl show -p MainPID --value ctrfs-counter")
		if pid == "" || pid == "0" {
			t.Fatalf("ctrfs-counter in %s on %s has no main pid (%q)%s", name, v.Name, pid, v.why(name))
		}
		return pid
	}
	pid := mainPid(vmA)
	same := func(v *VM, when string) {
		t.Helper()
		v.systemRunning(t, name)
		v.wantUnprivileged(t, name, m, when)
		if p := mainPid(v); p != pid {
			t.Errorf("%s: ctrfs-counter's main pid on %s went from %s to %s: not the same process%s", when, v.Name, pid, p, v.why(name))
		}
		httpOK(t, ip)
	}

	before := Count(t, ip)
	vmA.mustCtlWhy(t, name, "stop-stateful")
	vmA.mustCtlWhy(t, name, "start")
	countFrom(t, ip, before, "over stop-stateful and start")
	same(vmA, "after stop-stateful and start")
	t.Logf("FIGURE unprivileged debian stop-stateful/start on %s: %s", vmA.Name, pick(vmA.Info(name), "criu-frozen-seconds", "dump-seconds", "criu-restore-seconds", "restore-mode"))

	moveAs(t, "unprivileged debian ", name, ip, vmA, vmB, false)
	same(vmB, "after its live move to "+vmB.Name)
	moveAs(t, "unprivileged debian ", name, ip, vmB, vmA, false)
	same(vmA, "after its live move back to "+vmA.Name)
}
