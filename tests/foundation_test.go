package tests

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLifecycle: create, start (the service answers), freeze and back,
// restart (a cold start counts from 1 again), stop, destroy.
func TestLifecycle(t *testing.T) {
	d := StartDaemon(t, "dakara")
	if got := d.Read("host"); got != "dakara" {
		t.Fatalf("host = %q", got)
	}
	d.MustSh("mkdir containers/c1")
	d.WantStatus("containers/c1", "STOPPED", "a new container")
	d.MustSh("echo start > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after start")
	info := d.Info("c1")
	for _, k := range []string{"name", "status", "pid", "ipv4", "ipv6", "memory", "created", "snapshots", "stateful", "last-op", "last-op-seconds"} {
		if _, ok := info[k]; !ok {
			t.Errorf("info lacks %q:\n%v", k, info)
		}
	}
	if info["last-op"] != "start" || info["pid"] == "" {
		t.Errorf("info after start: %v", info)
	}
	ip := info["ipv4"]
	first := Count(t, ip)
	CountsPast(t, ip, first, "the counter counts")
	// The same container is reachable through hosts/THIS-HOST/.
	d.WantStatus("hosts/dakara/c1", "RUNNING", "this host's container under hosts/")

	d.MustSh("echo freeze > containers/c1/ctl")
	d.WantStatus("containers/c1", "FROZEN", "after freeze")
	d.MustSh("echo unfreeze > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after unfreeze")
	before := Count(t, ip)
	d.MustSh("echo restart > containers/c1/ctl")
	if after := Count(t, ip); after >= before {
		t.Fatalf("restart kept the in-memory count (%d then %d): not a real restart", before, after)
	}
	d.MustSh("echo stop > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "after stop")
	if e := d.Read("containers/c1/error"); e != "" {
		t.Fatalf("error after successes: %q", e)
	}
	d.MustSh("rmdir containers/c1")
	if out := d.MustSh("ls containers"); strings.Contains(out, "c1") {
		t.Fatalf("c1 still listed after rmdir: %q", out)
	}
	if _, err := os.Stat(d.LXCPath + "/c1"); !os.IsNotExist(err) {
		t.Fatalf("c1 still in the LXC path: %v", err)
	}
}

// TestErrors: every refusal has docs/ctrfs.5.md's errno, a readable `error`, and
// leaves the container as it was.
func TestErrors(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")

	d.ShFails("echo bogus > containers/c1/ctl", "Invalid argument")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, `unknown command "bogus"`) {
		t.Fatalf("error after unknown command: %q", e)
	}
	d.ShFails("echo 'start now' > containers/c1/ctl", "Invalid argument")
	d.ShFails("echo 'snapshot ../x' > containers/c1/ctl", "Invalid argument")
	d.ShFails("echo start > containers/c1/ctl", "Device or resource busy")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "RUNNING") {
		t.Fatalf("error after start of a running container: %q", e)
	}
	d.ShFails("rmdir containers/c1", "Device or resource busy")
	d.ShFails("mv containers/c1 containers/c2", "Device or resource busy")
	d.ShFails("echo 'lxc.bogus = 1' >> containers/c1/config", "Device or resource busy")
	d.ShFails("echo unfreeze > containers/c1/ctl", "Device or resource busy")
	// Another user may look but not act: the mount is shared with other
	// users (allow_other) and the kernel checks the modes.
	asNobody := func(cmd string) string {
		return "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '" + cmd + "'"
	}
	if out := d.MustSh(asNobody("cat containers/c1/status host")); !strings.HasPrefix(out, "RUNNING\n") {
		t.Fatalf("another user reads %q", out)
	}
	d.ShFails(asNobody("echo stop > containers/c1/ctl"), "Permission denied")
	d.ShFails(asNobody("mkdir containers/c9"), "Permission denied")
	d.ShFails(asNobody("rmdir containers/c1"), "Permission denied")
	d.ShFails(asNobody("echo lxc.bogus = 1 >> containers/c1/config"), "Permission denied")
	for _, bad := range []string{"bad..name", ".hidden", "-dash", "with space", strings.Repeat("x", 64)} {
		d.ShFails("mkdir 'containers/"+bad+"'", "Invalid argument")
	}
	d.ShFails("mkdir containers/c1", "File exists")
	d.ShFails("echo start > containers/nosuch/ctl", "No such file")
	d.WantStatus("containers/c1", "RUNNING", "after the refusals")
	// A success clears `error`.
	d.MustSh("echo freeze > containers/c1/ctl; echo unfreeze > containers/c1/ctl")
	if e := d.Read("containers/c1/error"); e != "" {
		t.Fatalf("error after success: %q", e)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestBusyAndParallel: a second command on a container whose command is
// under way is EBUSY; a command on another container goes ahead.
func TestBusyAndParallel(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.CreateRunning("c2")

	stop := d.Background("echo stop > containers/c1/ctl")
	stopped := make(chan error, 1)
	go func() { stopped <- stop.Wait() }()
	stillStopping := func(what string) {
		t.Helper()
		select {
		case err := <-stopped:
			t.Fatalf("c1's stop (%v) ended before %s: the commands did not overlap", err, what)
		default:
		}
	}
	// The clean stop of the template takes about two seconds: long enough
	// to find it under way. Both commands below must return while it is.
	time.Sleep(300 * time.Millisecond)
	_, busyErr := d.Sh("echo freeze > containers/c1/ctl")
	stillStopping("the second command on c1 returned")
	busyMsg := d.Read("containers/c1/error")
	_, otherErr := d.Sh("echo freeze > containers/c2/ctl")
	stillStopping("the command on c2 returned")
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if busyErr == nil || !strings.Contains(busyErr.Error(), "Device or resource busy") {
		t.Fatalf("freeze during stop: %v; want EBUSY", busyErr)
	}
	if !strings.Contains(busyMsg, "stop is under way") {
		t.Fatalf("error during stop: %q; want it to name the stop under way", busyMsg)
	}
	if otherErr != nil {
		t.Fatalf("command on another container blocked by c1's: %v", otherErr)
	}
	d.WantStatus("containers/c1", "STOPPED", "after its stop")
	d.WantStatus("containers/c2", "FROZEN", "beside c1's stop")
	d.MustSh("echo stop > containers/c2/ctl")
}

// TestRenameAndConfig: mv renames a stopped container, which still starts;
// config is writable while stopped and LXC must be able to load it.
func TestRenameAndConfig(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.MustSh("mkdir containers/a containers/taken")
	d.ShFails("mv -T containers/a containers/taken", "File exists")
	d.MustSh("cd containers && mv a b")
	if out := d.MustSh("ls containers"); strings.Contains(out, "a\n") || !strings.Contains(out, "b\n") {
		t.Fatalf("after mv a b: %q", out)
	}
	d.MustSh("echo 'lxc.environment = CTRFS_TEST=1' >> containers/b/config")
	if conf := d.Read("containers/b/config"); !strings.Contains(conf, "CTRFS_TEST=1") {
		t.Fatalf("config write lost:\n%s", conf)
	}
	d.ShFails("printf 'lxc.no.such.key = 1\\n' | cat > containers/b/config", "Invalid argument")
	if conf := d.Read("containers/b/config"); !strings.Contains(conf, "CTRFS_TEST=1") {
		t.Fatalf("rejected config replaced the old one:\n%s", conf)
	}
	d.MustSh("echo start > containers/b/ctl")
	Count(t, d.Info("b")["ipv4"])
	d.MustSh("echo stop > containers/b/ctl")
}

// TestExternalContainers: containers made and destroyed with LXC's own
// tools in the same LXC path come and go in the tree.
func TestExternalContainers(t *testing.T) {
	d := StartDaemon(t, "dakara")
	out, err := exec.Command("lxc-create", "-P", d.LXCPath, "-n", "ext", "-t", "busybox").CombinedOutput()
	if err != nil {
		t.Fatalf("lxc-create: %v\n%s", err, out)
	}
	if ls := d.MustSh("ls containers"); !strings.Contains(ls, "ext") {
		t.Fatalf("ext not listed: %q", ls)
	}
	d.WantStatus("containers/ext", "STOPPED", "a container made with lxc-create")
	if out, err := exec.Command("lxc-destroy", "-P", d.LXCPath, "-n", "ext").CombinedOutput(); err != nil {
		t.Fatalf("lxc-destroy: %v\n%s", err, out)
	}
	if ls := d.MustSh("ls containers"); strings.Contains(ls, "ext") {
		t.Fatalf("ext still listed: %q", ls)
	}
	if _, err := os.Stat(d.Path("containers/ext/status")); !os.IsNotExist(err) {
		t.Fatalf("ext/status after destroy: %v", err)
	}
}

// TestEvents: every command appends TIME HOST CONTAINER WHAT RESULT SECONDS.
func TestEvents(t *testing.T) {
	d := StartDaemon(t, "dakara")
	// A cat, not os.Open: Go registers FUSE files with its poller, and then
	// Close waits for the blocked read, which ends only with the daemon.
	reader := exec.Command("cat", d.Path("events"))
	out, err := reader.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	defer reader.Wait()
	defer reader.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	d.MustSh("mkdir containers/e1")
	d.Sh("echo bogus > containers/e1/ctl")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ dakara e1 create ok \d+\.\d\d$`),
		regexp.MustCompile(`^\S+Z dakara e1 unknown-command failed \d+\.\d\d$`),
	}
	for _, re := range want {
		select {
		case l := <-lines:
			if !re.MatchString(l) {
				t.Fatalf("event %q does not match %s", l, re)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event matching %s", re)
		}
	}
}

// TestDaemonMount: SIGTERM unmounts and exits 0; a second daemon on a live
// mount is refused; a stale mount of a killed daemon is recovered.
func TestDaemonMount(t *testing.T) {
	d := StartDaemon(t, "dakara")
	// A reader blocked on events must not keep the daemon from stopping.
	reader := exec.Command("cat", d.Path("events"))
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	defer reader.Process.Kill()

	second := exec.Command(ctrfsBin, "serve", "--mount", d.Mount, "--lxcpath", d.LXCPath,
		"--store", d.Store, "--name", "other", "--bridge", testBridge, "--subnet", testSubnet)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already mounted") {
		t.Fatalf("second daemon on a live mount: %v\n%s", err, out)
	}

	d.Kill()
	if _, err := os.Stat(d.Path("host")); !errorIs(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL the mount should be stale (ENOTCONN), got %v", err)
	}
	d.Start() // must recover the stale mount
	if err := d.Stop(); err != nil {
		t.Fatalf("SIGTERM: daemon exit: %v", err)
	}
	if isMounted(d.Mount) {
		t.Fatalf("%s still mounted after SIGTERM", d.Mount)
	}
	if !strings.Contains(d.Log(), "stale mount") {
		t.Errorf("log does not mention the stale mount:\n%s", d.Log())
	}
}

func errorIs(err error, target syscall.Errno) bool {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e == target
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestKilledDaemonLeavesNoLiveMount: the helpers and the LXC monitors they
// fork must not inherit /dev/fuse, or a killed daemon's mount hangs instead
// of failing, and the next daemon cannot recover it; nor does it leave
// scratch files behind for good.
func TestKilledDaemonLeavesNoLiveMount(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	// A restore is where LXC's monitor kept every descriptor it got.
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if !strings.Contains(cmdline, d.LXCPath) || strings.Contains(cmdline, " serve ") {
			continue
		}
		fds, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "fd", "*"))
		for _, fd := range fds {
			if target, _ := os.Readlink(fd); target == "/dev/fuse" {
				t.Fatalf("%q holds /dev/fuse", cmdline)
			}
		}
	}
	d.Kill()
	out, err := exec.Command("timeout", "5", "stat", d.Path("host")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not connected") {
		t.Errorf("stat on a killed daemon's mount: %v: %s", err, out)
	}
	// What a kill mid-operation leaves of the daemon's scratch files (a
	// helper's output, tar's state of a move) goes when it starts again.
	left := filepath.Join(d.Store, "tmp", "helper-123")
	if err := os.WriteFile(left, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a killed daemon's scratch file outlived its restart: %v", err)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}
