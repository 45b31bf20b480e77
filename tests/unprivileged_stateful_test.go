package tests

// Stateful operations on one host for unprivileged containers (issue 21,
// item 2): check, stop-stateful and start, stateful snapshots and their
// restore, renames with saved state, bugreport. CRIU restores the tasks
// inside the container's user namespace, where they open most images
// themselves: the restore is streamed from the store (the images stay
// root's 0400, and another user cannot read them). An unprivileged
// container's veth needs CRIU's usernsd fix (ctrfs's CRIU patch 0007):
// without it every restore fails with "couldn't restore veth interface
// eth0 via usernsd".

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// busyboxPIDs is what the container's own PID namespace says of its
// init and of init's counter and TCP service (their short-lived children
// aside): CRIU restores the same PIDs.
func (d *Daemon) busyboxPIDs(name string) string {
	d.t.Helper()
	out, err := d.attach(name, "sh", "-c", `for p in /proc/[0-9]*; do
	p=${p#/proc/}; set -- $(cat /proc/$p/stat 2>/dev/null) x x x x
	[ "$p" = 1 ] || [ "$4" = 1 ] || continue
	echo "$p=$(tr '\0' ' ' < /proc/$p/cmdline)"
done | sort -n`)
	if err != nil || !strings.Contains(out, "/bin/counter") || !strings.Contains(out, "nc -ll") || !strings.HasPrefix(out, "1=init") {
		d.t.Fatalf("processes of %s: %v: %q", name, err, out)
	}
	return strings.Join(strings.Fields(out), " ")
}

// wantRootsImages checks that the saved state's files, in the mount and
// in the store, are root's and 0400 (directories 0700 or 0500), and that
// another local user can read none of them: the mapped root of the
// container gets no access to them on the host.
func (d *Daemon) wantRootsImages(uid string, dirs ...string) {
	d.t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(d.Path(dir))
		if err != nil || len(entries) == 0 {
			d.t.Fatalf("%s: %v (%d files)", dir, err, len(entries))
		}
		for _, e := range entries {
			fi, err := os.Stat(d.Path(dir, e.Name()))
			if err != nil {
				d.t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != 0o400 {
				d.t.Errorf("%s/%s: %v %d:%d; want 0400, root's", dir, e.Name(), fi.Mode(), st.Uid, st.Gid)
			}
		}
		for _, f := range []string{"inventory.img", "pstree.img", "pages-1.img"} {
			if _, err := d.asUser(uid, "cat "+dir+"/"+f+" > /dev/null"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
				d.t.Errorf("another user reading %s/%s: %v; want Permission denied", dir, f, err)
			}
		}
	}
	// The store is reachable from above (reachableBase opened the test's
	// directories for the container's root): its files stay root's.
	if out, err := d.asUser(uid, "find "+d.Store+" -type f -exec cat {} + > /dev/null"); err == nil || !strings.Contains(out+err.Error(), "Permission denied") {
		d.t.Errorf("another user reading the store: %v: %s; want Permission denied", err, out)
	}
}

// wantDelegatedCgroup checks, from the host, that the container's root
// may move tasks between its cgroups, as after LXC's start: the
// cgroup.procs of its cgroup2 cgroup is group-writable by the mapped root
// (a restore left it root's alone, and systemd could start no unit).
func (d *Daemon) wantDelegatedCgroup(name, when string) {
	d.t.Helper()
	b, err := os.ReadFile("/proc/" + d.Info(name)["pid"] + "/cgroup")
	if err != nil {
		d.t.Fatal(err)
	}
	var root string
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::/"); ok {
			root, _, _ = strings.Cut(p, "/") // LXC's lxc.payload.NAME; systemd sits lower
		}
	}
	mount := "/sys/fs/cgroup/unified"
	if !exists(mount) {
		mount = "/sys/fs/cgroup"
	}
	procs := mount + "/" + root + "/cgroup.procs"
	var st syscall.Stat_t
	if err := syscall.Stat(procs, &st); err != nil || root == "" {
		d.t.Fatalf("%s: %v", procs, err)
	}
	if gid := hostMap(d.t).GID; st.Gid != gid || st.Mode&0o060 != 0o060 {
		d.t.Errorf("%s %s: mode %o, gid %d; want group %d read-write, as LXC's start leaves it", when, procs, st.Mode&0o7777, st.Gid, gid)
	}
}

// TestUnprivilegedStatefulBusybox: an unprivileged busybox container
// with a task of uid 65534 passes check, and its counter (in memory) and TCP service (over its
// veth) go on with the same PIDs across stop-stateful and start and
// across a stateful snapshot's restore; the images stay root's 0400,
// unreadable to another user; a stateless snapshot of it stopped with
// saved state, a rename with saved state and snapshots, then start and
// restore, and a bug report work too.
func TestUnprivilegedStatefulBusybox(t *testing.T) {
	logCRIU(t)
	d := StartDaemon(t, "unstate")
	d.reachableBase()
	uid := probeUser(t)
	d.MustSh("echo 'create u1 --unprivileged' > ctl")
	// A task of a user other than the container's root: CRIU reads its
	// limits though this host's root lacks CAP_SYS_RESOURCE.
	appendFile(t, d.rootfs("u1", "etc/passwd"), "nobody:x:65534:65534:nobody:/:/bin/sh\n")
	appendFile(t, d.rootfs("u1", "etc/inittab"), "::respawn:/bin/su -s /bin/sh nobody -c 'exec sleep 100000'\n")
	d.MustSh("echo start > containers/u1/ctl")
	ip := d.Info("u1")["ipv4"]
	Count(t, ip)
	pids := d.busyboxPIDs("u1")
	if !strings.Contains(pids, "=sleep 100000") {
		t.Fatalf("nobody's task does not run: %s", pids)
	}
	if out, err := d.attach("u1", "sh", "-c", "grep Uid /proc/$(pidof sleep)/status"); err != nil || !strings.Contains(out, "65534") {
		t.Fatalf("nobody's task: %v: %q", err, out)
	}

	d.MustSh("echo check > containers/u1/ctl")
	d.WantStatus("containers/u1", "RUNNING", "after check")
	before := CountsPast(t, ip, Count(t, ip), "after check")

	d.MustSh("echo stop-stateful > containers/u1/ctl")
	d.WantStatus("containers/u1", "STOPPED", "after stop-stateful")
	d.wantRootsImages(uid, "containers/u1/state")
	d.MustSh("echo start > containers/u1/ctl")
	d.WantStatus("containers/u1", "RUNNING", "after start")
	if info := d.Info("u1"); info["stateful"] != "no" || info["privileged"] != "no" {
		t.Errorf("after start: stateful %q, privileged %q", info["stateful"], info["privileged"])
	}
	d.wantDelegatedCgroup("u1", "after stop-stateful and start")
	after := countFrom(t, ip, before, "over stop-stateful and start")
	CountsPast(t, ip, after, "the restored counter counts")
	if got := d.busyboxPIDs("u1"); got != pids {
		t.Errorf("processes before stop-stateful: %s; after start: %s", pids, got)
	}

	// Past 40 counts, a count the snapshot's processes bring back (at
	// least 30) tells them from a cold start (read within seconds of it).
	CountsPast(t, ip, 40, "before the snapshot")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/u1/ctl")
	atSnapshot := Count(t, ip)
	d.wantRootsImages(uid, "containers/u1/snapshots/s1/state")
	// 25 counts (5 s) past the snapshot: a restored count is read well
	// within that of the restore's end.
	beforeRestore := CountsPast(t, ip, atSnapshot+25, "after the snapshot")
	d.MustSh("echo 'restore s1' > containers/u1/ctl")
	d.WantStatus("containers/u1", "RUNNING", "after restore s1")
	if n := Count(t, ip); n >= beforeRestore || n < atSnapshot-10 {
		t.Errorf("count %d at the snapshot, %d before restore, %d after: not the snapshot's processes", atSnapshot, beforeRestore, n)
	}
	if got := d.busyboxPIDs("u1"); got != pids {
		t.Errorf("processes before: %s; after restore s1: %s", pids, got)
	}
	d.wantDelegatedCgroup("u1", "after restore s1")

	// Stopped with saved state: a stateless snapshot, then a rename that
	// carries the saved state and the snapshots.
	before = Count(t, ip)
	d.MustSh("echo stop-stateful > containers/u1/ctl")
	d.MustSh("echo 'snapshot cold' > containers/u1/ctl")
	d.MustSh("cd containers && mv u1 u2")
	if info := d.Info("u2"); info["stateful"] != "yes" || info["privileged"] != "no" {
		t.Fatalf("after the rename: stateful %q, privileged %q", info["stateful"], info["privileged"])
	}
	d.MustSh("echo start > containers/u2/ctl")
	countFrom(t, ip, before, "over stop-stateful, a rename and start")
	if got := d.busyboxPIDs("u2"); got != pids {
		t.Errorf("processes before: %s; after the rename and start: %s", pids, got)
	}
	beforeRestore = CountsPast(t, ip, atSnapshot+25, "after the rename")
	d.MustSh("echo 'restore s1' > containers/u2/ctl")
	if n := Count(t, ip); n >= beforeRestore || n < atSnapshot-10 {
		t.Errorf("after the rename, restore s1 counts %d; %d at the snapshot, %d before the restore", n, atSnapshot, beforeRestore)
	}
	d.MustSh("echo 'restore cold' > containers/u2/ctl")
	if n := Count(t, ip); n >= atSnapshot-10 {
		t.Errorf("the stateless snapshot's restore counts from %d: not a cold start", n)
	}

	report := d.bugReport("u2")
	if !strings.Contains(report["info"], "privileged: no") {
		t.Errorf("the bug report's info: %q", report["info"])
	}
	d.MustSh("echo stop > containers/u2/ctl && rmdir containers/u2")
}

// unitsStart checks that systemd in the container can still start units
// (it moves their tasks into cgroups of their own): a transient unit runs,
// and cron restarted gets back to active.
func (d *Daemon) unitsStart(name, when string) {
	d.t.Helper()
	if out, err := d.attach(name, "timeout", "60", "systemd-run", "--wait", "--quiet", "true"); err != nil {
		d.t.Errorf("systemd-run %s: %v: %s", when, err, out)
	}
	if out, err := d.attach(name, "systemctl", "restart", "--no-block", "cron"); err != nil {
		d.t.Fatalf("systemctl restart cron %s: %v: %s", when, err, out)
	}
	var state string
	waitLong(d.t, "cron to be active again "+when, 30*time.Second, func() bool {
		state, _ = d.attach(name, "systemctl", "is-active", "cron")
		return state == "active"
	})
}

// TestUnprivilegedStatefulDebian: an unprivileged debian container
// (systemd) passes check and goes through stop-stateful and start and
// through a stateful snapshot's restore: systemd `running` after each and
// still able to start units, the counter service with the same main PID
// and its count going on.
func TestUnprivilegedStatefulDebian(t *testing.T) {
	logCRIU(t)
	d := StartDaemon(t, "undebst")
	d.reachableBase()
	d.MustSh("echo 'create deb1 --template debian --unprivileged' > ctl")
	ip := d.startDebian("deb1")
	mainPID := func() string {
		t.Helper()
		out, err := d.attach("deb1", "systemctl", "show", "-p", "MainPID", "--value", "ctrfs-counter")
		if err != nil || out == "" || out == "0" {
			t.Fatalf("the counter service's main PID: %v: %q", err, out)
		}
		return out
	}
	pid := mainPID()
	d.MustSh("echo check > containers/deb1/ctl")
	before := CountsPast(t, ip, 10, "before stop-stateful")

	d.MustSh("echo stop-stateful > containers/deb1/ctl")
	d.WantStatus("containers/deb1", "STOPPED", "after stop-stateful")
	d.MustSh("echo start > containers/deb1/ctl")
	countFrom(t, ip, before, "over stop-stateful and start")
	d.systemRunning("deb1")
	if got := mainPID(); got != pid {
		t.Errorf("the counter service's main PID was %s, is %s after start", pid, got)
	}
	d.wantDelegatedCgroup("deb1", "after stop-stateful and start")
	d.unitsStart("deb1", "after stop-stateful and start")

	d.MustSh("echo 'snapshot s1 --stateful' > containers/deb1/ctl")
	atSnapshot := Count(t, ip)
	beforeRestore := CountsPast(t, ip, atSnapshot+5, "after the snapshot")
	d.MustSh("echo 'restore s1' > containers/deb1/ctl")
	if n := Count(t, ip); n >= beforeRestore || n < atSnapshot-25 {
		t.Errorf("count %d at the snapshot, %d before restore, %d after", atSnapshot, beforeRestore, n)
	}
	d.systemRunning("deb1")
	if got := mainPID(); got != pid {
		t.Errorf("the counter service's main PID was %s, is %s after restore s1", pid, got)
	}
	d.unitsStart("deb1", "after restore s1")
	d.MustSh("echo stop > containers/deb1/ctl && rmdir containers/deb1")
}

// TestUnprivilegedStatefulDebianCgroup2Only: on a host with cgroup2 alone
// (as real Debian hosts are), systemd in a restored unprivileged container
// still starts units: the restore delegated its cgroup again.
func TestUnprivilegedStatefulDebianCgroup2Only(t *testing.T) {
	logCRIU(t)
	d := NewDaemon(t, "undebc2")
	d.Cgroup2Only()
	d.Start()
	d.reachableBase()
	d.MustSh("echo 'create deb1 --template debian --unprivileged' > ctl")
	ip := d.startDebian("deb1")
	before := CountsPast(t, ip, 10, "before stop-stateful")
	d.MustSh("echo stop-stateful > containers/deb1/ctl")
	d.MustSh("echo start > containers/deb1/ctl")
	countFrom(t, ip, before, "over stop-stateful and start")
	d.systemRunning("deb1")
	d.wantDelegatedCgroup("deb1", "after stop-stateful and start")
	d.unitsStart("deb1", "after stop-stateful and start")
	d.MustSh("echo stop > containers/deb1/ctl && rmdir containers/deb1")
}
