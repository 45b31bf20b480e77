package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What systemd containers need from CRIU and LXC (issue 12), tried on the
// busybox template: restore modes, recorded cgroups, the criu file, check,
// and the gratuitous ARP sent from the host.

// TestRestoreModeFallback: a container that CRIU's mount-v2 cannot
// restore falls back to mntns-compat-mode (the failed attempt leaves
// nothing that breaks the second, whose images are served again).
// stop-stateful's restore rehearsal is the first restore: it falls back,
// the mode is remembered in the config, and the start and every restore
// after it use it at once. No container known fails with mount-v2 alone
// since CRIU patch 0011 (read-only bind mounts of /lib did), so the
// daemon's restores with mount-v2 fail by a test hook
// (CTRFS_TEST_FAIL_RESTORE): CRIU runs and fails before any task exists.
func TestRestoreModeFallback(t *testing.T) {
	d := NewDaemon(t, "dakara")
	d.Env = []string{"CTRFS_TEST_FAIL_RESTORE=mount-v2"}
	d.Start()
	d.reachableBase()
	ip := d.CreateRunning("c1")
	before := Count(t, ip)

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	if got := d.Info("c1")["rehearsal-restore-attempts"]; got != "mount-v2 failed, mntns-compat ok" {
		t.Fatalf("stop-stateful's rehearsal: rehearsal-restore-attempts %q; want mount-v2 failed, then mntns-compat ok", got)
	}
	log := d.Read("containers/c1/log")
	for _, want := range []string{"=== restore with mount-v2: failed ===", "/bin/false", "=== restore with mntns-compat: ok ==="} {
		if !strings.Contains(log, want) {
			t.Errorf("the rehearsal's log lacks %q", want)
		}
	}
	d.MustSh("echo start > containers/c1/ctl")
	info := d.Info("c1")
	if got := info["restore-attempts"]; got != "mntns-compat ok" {
		t.Fatalf("start after the rehearsal: restore-attempts %q; want mntns-compat ok at once", got)
	}
	if info["restore-mode"] != "mntns-compat" || info["status"] != "RUNNING" {
		t.Fatalf("after the fallback: restore-mode %q, status %q", info["restore-mode"], info["status"])
	}
	if !strings.Contains(d.Read("containers/c1/config"), "# ctrfs.restore-mode = mntns-compat") {
		t.Error("the config does not remember the mode")
	}
	n := CountsPast(t, ip, before, "after the fallback restore")
	if n < before {
		t.Fatalf("count %d after restore, was %d: state lost", n, before)
	}

	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	if got := d.Info("c1")["restore-attempts"]; got != "mntns-compat ok" {
		t.Fatalf("second restore: restore-attempts %q; want mntns-compat ok at once", got)
	}
	CountsPast(t, ip, n, "after the second restore")
	d.MustSh("echo stop > containers/c1/ctl")
}

// cgroupDirs are the directories of a container's cgroup in the cgroup2
// hierarchy and, if the daemon sees it, the v1 memory hierarchy, from its
// init's /proc/PID/cgroup.
func cgroupDirs(t *testing.T, d *Daemon, name string) map[string]string {
	t.Helper()
	pid := d.Info(name)["pid"]
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	mounts := d.cgroupMounts()
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if parts[0] == "0" && mounts["unified"] != "" {
			out["unified"] = filepath.Join(mounts["unified"], parts[2])
		} else if parts[1] == "memory" && mounts["memory"] != "" {
			out["memory"] = filepath.Join(mounts["memory"], parts[2])
		}
	}
	if out["unified"] == "" {
		t.Fatalf("no cgroup2 hierarchy found for %s:\n%s", name, data)
	}
	return out
}

// emptyCgroupsBesideTasks lays the container's cgroups out as systemd
// does: its tasks move to init.scope below its cgroup, and an empty
// cgroup ctrfs-empty-HIERARCHY/sub is made beside it, in each hierarchy
// of cgroupDirs, whose names it returns. CRIU itself makes again the
// cgroups below a task's (empty or not), never those beside it: only the
// recorded cgroups bring these back.
func emptyCgroupsBesideTasks(t *testing.T, d *Daemon, name string) (hierarchies []string) {
	t.Helper()
	for h, dir := range cgroupDirs(t, d, name) {
		scope := filepath.Join(dir, "init.scope")
		for _, p := range []string{scope, filepath.Join(dir, "ctrfs-empty-"+h, "sub")} {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		moveTasks(t, dir, scope)
		hierarchies = append(hierarchies, h)
	}
	return hierarchies
}

// moveTasks moves every task of cgroup dir into cgroup to. The counter's
// short-lived children come and go meanwhile: one that has exited is not
// moved (ESRCH), and one forked before its parent moved is moved in a
// next pass, until dir holds none.
func moveTasks(t *testing.T, dir, to string) {
	t.Helper()
	for pass := 0; ; pass++ {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		pids := strings.Fields(string(procs))
		if len(pids) == 0 {
			return
		}
		if pass == 50 {
			t.Fatalf("%s still holds tasks %v after %d passes", dir, pids, pass)
		}
		for _, pid := range pids {
			err := os.WriteFile(filepath.Join(to, "cgroup.procs"), []byte(pid), 0o644)
			if err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("move %s to %s: %v", pid, to, err)
			}
		}
	}
}

// checkEmptyCgroups fails the test unless the cgroups that
// emptyCgroupsBesideTasks made are under the container's cgroups.
func checkEmptyCgroups(t *testing.T, d *Daemon, name, when string) {
	t.Helper()
	for h, dir := range cgroupDirs(t, d, name) {
		// The tasks are in init.scope: its parent is the container's.
		dir = strings.TrimSuffix(dir, "/init.scope")
		if p := filepath.Join(dir, "ctrfs-empty-"+h, "sub"); !exists(p) {
			t.Errorf("%s: the empty cgroup %s is not there", when, p)
		}
	}
}

// TestRecordedCgroups: empty cgroups under the container's own (as systemd
// leaves them) are recorded at dump time in state/ctrfs-cgroups and are
// there again after the restore, from saved state (streamed) and from a
// stateful snapshot of the restored container.
func TestRecordedCgroups(t *testing.T) {
	recordedCgroups(t, StartDaemon(t, "dakara"))
}

// TestCgroup2Only: TestRecordedCgroups's container (create and start,
// stop-stateful and start, a stateful snapshot of the restored container
// and its restore, the empty cgroups recorded and made again) on a daemon
// that sees cgroup2 alone at /sys/fs/cgroup, as on a Debian host with
// systemd. That snapshot is ctrfs's own CRIU dump (see
// TestCgroup2OnlyCheckpointAfterRestore, cgroup2_restored_test.go).
func TestCgroup2Only(t *testing.T) {
	recordedCgroups(t, startCgroup2Only(t))
}

// startCgroup2Only starts a daemon on the cgroup2-only view and checks
// that it sees cgroup2 alone.
func startCgroup2Only(t *testing.T) *Daemon {
	t.Helper()
	d := NewDaemon(t, "dakara")
	d.Cgroup2Only()
	d.Start()
	if mounts := d.cgroupMounts(); mounts["v1"] != "" || mounts["unified"] != d.pidPath("/sys/fs/cgroup") {
		t.Fatalf("the daemon's cgroup mounts are %v; want cgroup2 alone at /sys/fs/cgroup", mounts)
	}
	return d
}

// recordedCgroups makes empty cgroups under c1's, checks that they are
// recorded and made again by a start from saved state, and then by the
// restore of a stateful snapshot of the restored container.
func recordedCgroups(t *testing.T, d *Daemon) {
	ip := d.CreateRunning("c1")
	var made []string
	for _, h := range emptyCgroupsBesideTasks(t, d, "c1") {
		made = append(made, h+" ctrfs-empty-"+h+"/sub")
	}
	before := Count(t, ip)

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	recorded := d.Read("containers/c1/state/ctrfs-cgroups")
	for _, line := range made {
		if !strings.Contains(recorded, line) {
			t.Errorf("state/ctrfs-cgroups lacks %q:\n%s", line, recorded)
		}
	}
	d.MustSh("echo start > containers/c1/ctl")
	checkCgroups := func(when string) {
		t.Helper()
		checkEmptyCgroups(t, d, "c1", when)
	}
	checkCgroups("after start from saved state")
	n := CountsPast(t, ip, before, "after the restore")

	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	if !strings.Contains(d.Read("containers/c1/snapshots/s1/state/ctrfs-cgroups"), made[0]) {
		t.Error("the stateful snapshot has no record of the cgroups")
	}
	d.MustSh("echo 'restore s1' > containers/c1/ctl")
	checkCgroups("after restore of a stateful snapshot")
	countFrom(t, ip, n, "over restoring the snapshot")
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestCriuOptionsAndCheck: `check` passes on a healthy container and
// leaves it running with no state; a ramfs mount makes it fail with
// EOPNOTSUPP, and stop-stateful with EIO, each naming the cause and the
// fix; an option CRIU does not know is refused; `enable-fs ramfs` in the
// criu file reaches CRIU, so check passes and the container checkpoints;
// the file goes with a rename.
func TestCriuOptionsAndCheck(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	if got := d.Read("containers/c1/criu"); got != "" {
		t.Fatalf("a new container has CRIU options: %q", got)
	}

	before := Count(t, ip)
	d.MustSh("echo check > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after check")
	if info := d.Info("c1"); info["stateful"] != "no" || info["last-op"] != "check" {
		t.Fatalf("check left state or was not recorded: %v", info)
	}
	if !strings.Contains(d.Read("containers/c1/log"), "dump.log") {
		t.Error("log lacks CRIU's dump log after check")
	}
	if left := stagingLeft(d); len(left) > 0 {
		t.Errorf("check left images behind: %v", left)
	}
	n := CountsPast(t, ip, before, "after check")

	d.MustSh("lxc-attach -P " + d.LXCPath + " -n c1 -- /bin/sh -c 'mkdir -p /mnt/r && mount -t ramfs none /mnt/r'")
	d.ShFails("echo check > containers/c1/ctl", "Operation not supported")
	e := d.Read("containers/c1/error")
	for _, want := range []string{"/mnt/r", "enable-fs ramfs"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after check lacks %q: %s", want, e)
		}
	}
	stopStatefulFailsOnRamfs(t, d)

	d.ShFails("printf 'bogus-opt-x\\n' | cat > containers/c1/criu", "Invalid argument")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "bogus-opt-x") {
		t.Errorf("error does not name the unknown option: %s", e)
	}
	if got := d.Read("containers/c1/criu"); got != "" {
		t.Fatalf("a refused criu file was kept: %q", got)
	}
	d.MustSh("printf '# for /mnt/r\\ndump: enable-fs ramfs\\n' | cat > containers/c1/criu")
	d.MustSh("echo check > containers/c1/ctl")
	n = CountsPast(t, ip, n, "after check with the criu file")
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	CountsPast(t, ip, n, "after a checkpoint with the criu file")

	d.MustSh("echo stop > containers/c1/ctl && mv containers/c1 containers/c9")
	if got := d.Read("containers/c9/criu"); !strings.Contains(got, "dump: enable-fs ramfs") {
		t.Fatalf("the criu file did not follow the rename: %q", got)
	}
}

// stagingLeft lists what the daemon's staging directories hold.
func stagingLeft(d *Daemon) []string {
	var out []string
	for _, pattern := range []string{filepath.Join(d.Store, "staging", "*"), "/dev/shm/ctrfs-staging-*/check-*"} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// hasCapSysResource says whether this process (root, like the daemon) has
// CAP_SYS_RESOURCE in its effective set.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<24) != 0
		}
	}
	return false
}

// TestCheckOtherUser: a task of uid 1000, started by the container's init,
// blocks checkpoints on a host whose root lacks CAP_SYS_RESOURCE (as these
// machines): check fails naming the task, the capability and the fix, and
// the container runs on. Where root has the capability, check passes.
// The container is privileged: an unprivileged one's tasks of any uid are
// checkpointed without the capability (ctrfs(5), UNPRIVILEGED CONTAINERS).
func TestCheckOtherUser(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreatePrivilegedRunning("c1")
	appendFile(t, d.rootfs("c1", "etc/passwd"), "u1000:x:1000:1000::/tmp:/bin/sh\n")
	appendFile(t, d.rootfs("c1", "etc/inittab"), "::respawn:/bin/su -s /bin/sh -c \"exec sleep 100000\" u1000\n")
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n c1 -- kill -HUP 1")
	waitFor(t, "a task of uid 1000 in c1", func() bool {
		out, _ := d.Sh("lxc-attach -P " + d.LXCPath + " -n c1 -- ps")
		return strings.Contains(out, "u1000")
	})
	before := Count(t, ip)

	if hasCapSysResource(t) {
		d.MustSh("echo check > containers/c1/ctl")
	} else {
		d.ShFails("echo check > containers/c1/ctl", "Operation not supported")
		e := d.Read("containers/c1/error")
		for _, want := range []string{"CAP_SYS_RESOURCE", "uid 1000", "sleep", "uid 0"} {
			if !strings.Contains(e, want) {
				t.Errorf("error lacks %q: %s", want, e)
			}
		}
	}
	d.WantStatus("containers/c1", "RUNNING", "after check")
	CountsPast(t, ip, before, "after check")
	d.MustSh("echo stop > containers/c1/ctl")
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestAnnounceWithoutArping: the gratuitous ARP after a restore or move is
// sent by the host's BusyBox in the container's network namespace, so a
// container whose own /bin/busybox cannot run (a Debian container has
// none) is still announced on its bridge.
func TestAnnounceWithoutArping(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	pid := d.Info("c1")["pid"]
	// Inside c1's mount namespace only: the running shells keep their
	// BusyBox, an exec of /bin/busybox fails.
	d.MustSh("nsenter -t " + pid + " -m -- /bin/mount --bind /dev/null /bin/busybox")
	if out, err := d.Sh("lxc-attach -P " + d.LXCPath + " -n c1 -- /bin/busybox true"); err == nil {
		t.Fatalf("c1's busybox still runs: %s", out)
	}

	got := make(chan error, 1)
	ready := make(chan struct{})
	go func() { got <- captureGratuitousARP(testBridge, net.ParseIP(ip), ready, 30*time.Second) }()
	<-ready
	logFile := filepath.Join(t.TempDir(), "announce.log")
	out, err := exec.Command(ctrfsBin, "lxc-helper", "announce", d.LXCPath, "c1", logFile).CombinedOutput()
	if err != nil {
		t.Errorf("announce failed: %v: %s", err, out)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// captureGratuitousARP waits on the bridge for an ARP packet whose sender
// and target addresses are both ip.
func captureGratuitousARP(bridge string, ip net.IP, ready chan struct{}, timeout time.Duration) error {
	defer func() {
		select {
		case <-ready:
		default:
			close(ready)
		}
	}()
	ifi, err := net.InterfaceByName(bridge)
	if err != nil {
		return err
	}
	const ethPArp = 0x0806
	proto := htons(ethPArp)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(proto))
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return err
	}
	tv := syscall.NsecToTimeval(int64(500 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	close(ready)
	want := ip.To4()
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // timeout: look at the clock again
		}
		// Ethernet header (14), then ARP: ... SHA 8:14, SPA 14:18, THA 18:24, TPA 24:28.
		if n < 14+28 {
			continue
		}
		arp := buf[14:n]
		if net.IP(arp[14:18]).Equal(want) && net.IP(arp[24:28]).Equal(want) {
			return nil
		}
	}
	return fmt.Errorf("no gratuitous ARP for %s on %s within %s", ip, bridge, timeout)
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// stopStatefulFailsOnRamfs: with a ramfs mounted in c1, stop-stateful
// fails with EIO, names the cause and its fix (not CRIU's noise), and c1
// stays RUNNING.
func stopStatefulFailsOnRamfs(t *testing.T, d *Daemon) {
	t.Helper()
	d.ShFails("echo stop-stateful > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "enable-fs ramfs") || strings.Contains(e, "cgroupd") {
		t.Errorf("error after stop-stateful does not name the cause: %s", e)
	}
	d.WantStatus("containers/c1", "RUNNING", "after a refused stop-stateful")
}
