package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// The debian template's tests: a real Debian 12 with systemd, sshd and
// nginx, driven through the whole life that the busybox template goes
// through. The template is built once (debootstrap, a few minutes) into
// the shared cache every test daemon names (templateCache), so only a fresh
// machine pays for it.

// debianContainer creates NAME from the debian template through the
// top-level ctl, starts it and waits until systemd has finished booting
// with no failed unit; it returns the container's address.
func (d *Daemon) debianContainer(name string) (ip string) {
	d.t.Helper()
	d.MustSh("echo 'create " + name + " --template debian' > ctl")
	return d.startDebian(name)
}

func (d *Daemon) startDebian(name string) (ip string) {
	d.t.Helper()
	d.MustSh("echo start > containers/" + name + "/ctl")
	ip = d.Info(name)["ipv4"]
	if ip == "" {
		d.t.Fatalf("container %s has no ipv4 in info", name)
	}
	d.systemRunning(name)
	return ip
}

// attach runs a command in the container, as lxc-attach does.
func (d *Daemon) attach(name string, args ...string) (string, error) {
	cmd := exec.Command("lxc-attach", append([]string{"-P", d.LXCPath, "-n", name, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// systemRunning waits for systemd in the container to finish its boot
// (or its restore) and fails unless it says `running`: every unit up and
// none failed. Right after a start systemd may not take connections yet.
func (d *Daemon) systemRunning(name string) {
	d.t.Helper()
	var state string
	var err error
	waitLong(d.t, "systemd in "+name+" to answer", 2*time.Minute, func() bool {
		state, err = d.attach(name, "timeout", "120", "systemctl", "is-system-running", "--wait")
		// "offline": PID 1 is not systemd yet (LXC's init has not exec'd
		// it): asked in the first instants of a start.
		return !strings.Contains(state, "Failed to connect to bus") && state != "offline"
	})
	if state != "running" {
		failed, _ := d.attach(name, "systemctl", "--failed", "--no-legend")
		d.t.Fatalf("systemd in %s is %q (%v); failed units:\n%s", name, state, err, failed)
	}
}

// httpStatus asks nginx for / and returns its status line.
func httpStatus(t *testing.T, ip string) string {
	t.Helper()
	var line string
	waitLong(t, "nginx on "+ip+" to answer", time.Minute, func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", ip)
		line, err = bufio.NewReader(conn).ReadString('\n')
		return err == nil
	})
	return strings.TrimSpace(line)
}

// sshSession is a TCP connection to the container's sshd that has read the
// server's banner and not yet sent its own: sshd waits in the middle of the
// protocol, holding the connection's state in its memory.
type sshSession struct {
	conn   net.Conn
	r      *bufio.Reader
	banner string
}

func openSSH(t *testing.T, ip string) *sshSession {
	t.Helper()
	var s *sshSession
	waitLong(t, "sshd on "+ip+" to greet", time.Minute, func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "22"), time.Second)
		if err != nil {
			return false
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(conn)
		banner, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
			conn.Close()
			return false
		}
		s = &sshSession{conn: conn, r: r, banner: strings.TrimSpace(banner)}
		return true
	})
	t.Cleanup(func() { s.conn.Close() })
	return s
}

func (s *sshSession) close() { s.conn.Close() }

// sshIdle waits until the container's sshd has no connection left. A
// connection in its key exchange has a child that OpenSSH sandboxes with
// no file descriptor to spare, and CRIU cannot dump it ("Can't create
// memfd in victim: Too many open files"): a checkpoint fails until the
// login finishes or the connection closes.
func (d *Daemon) sshIdle(name string) {
	d.t.Helper()
	waitLong(d.t, "sshd in "+name+" to have no connection", time.Minute, func() bool {
		out, _ := d.attach(name, "sh", "-c", "pgrep -P $(systemctl show -p MainPID --value ssh) || echo idle")
		return out == "idle"
	})
}

// continueKex sends the client's banner and reads the server's first
// packet: sshd must answer with its key exchange offer (SSH_MSG_KEXINIT,
// 20), which it can only do on the connection it had.
func (s *sshSession) continueKex(t *testing.T) {
	t.Helper()
	s.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(s.conn, "SSH-2.0-ctrfs_test\r\n"); err != nil {
		t.Fatalf("ssh connection opened before: write: %v", err)
	}
	head := make([]byte, 6) // packet length (4), padding length (1), message
	if _, err := io.ReadFull(s.r, head); err != nil {
		t.Fatalf("ssh connection opened before: no key exchange from sshd: %v", err)
	}
	if head[5] != 20 {
		t.Fatalf("ssh connection opened before: first packet is message %d, want KEXINIT (20)", head[5])
	}
}

// TestDebianTemplate: `create NAME --template debian` makes a Debian
// container whose systemd boots with no failed unit, with its own
// hostname, machine-id and ssh host keys, its counter, sshd and nginx
// answering; `stop` halts it cleanly through systemd.
func TestDebianTemplate(t *testing.T) {
	d := StartDaemon(t, "dakara")
	if info := tree.ParseKV(d.Read("templates", "debian", "info")); info["name"] != "debian" || info["default"] != "no" {
		t.Errorf("templates/debian/info:\n%v", info)
	}

	// A unit that leaves a mark when systemd stops it: only a clean
	// shutdown (systemd took the halt signal) runs it.
	d.MustSh("echo 'create deb1 --template debian' > ctl")
	unit := "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecStop=/usr/bin/touch /root/stopped-cleanly\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile(d.rootfs("deb1", "etc/systemd/system/stopmark.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/stopmark.service", d.rootfs("deb1", "etc/systemd/system/multi-user.target.wants/stopmark.service")); err != nil {
		t.Fatal(err)
	}
	ip := d.startDebian("deb1")
	Count(t, ip)
	if line := httpStatus(t, ip); !strings.Contains(line, " 200 ") {
		t.Errorf("nginx: %q", line)
	}
	openSSH(t, ip).continueKex(t)
	if host, _ := d.attach("deb1", "hostname"); host != "deb1" {
		t.Errorf("hostname in the container: %q", host)
	}
	if info := tree.ParseKV(d.Read("templates", "debian", "info")); info["built"] == "" || info["built"] == "not built yet" || info["size"] == "" {
		t.Errorf("templates/debian/info after a create:\n%v", info)
	}
	// The template's drop-in leaves no unit a device allow list, device
	// policy or IP filter: each makes systemd attach a cgroup BPF program
	// (on a cgroup2-only host) that CRIU cannot dump.
	for _, unit := range []string{"systemd-journald", "systemd-journald@x", "systemd-logind", "systemd-timedated",
		"systemd-hostnamed", "systemd-localed", "systemd-networkd"} {
		out, err := d.attach("deb1", "systemctl", "show", unit, "-p", "DevicePolicy", "-p", "DeviceAllow", "-p", "IPAddressDeny", "-p", "PrivateDevices")
		props := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				props[k] = v
			}
		}
		if err != nil || props["DevicePolicy"] != "auto" || props["DeviceAllow"] != "" || props["IPAddressDeny"] != "" || props["PrivateDevices"] != "no" {
			t.Errorf("systemctl show %s: %v\n%s", unit, err, out)
		}
	}
	if conf := d.Read("containers", "deb1", "config"); !strings.Contains(conf, "lxc.signal.halt = SIGRTMIN+3") {
		t.Errorf("config lacks systemd's halt signal:\n%s", conf)
	}

	// A second container is another machine: its own machine-id and
	// host keys, none of them the template's.
	d.MustSh("echo 'create deb2 --template debian' > ctl")
	for _, f := range []string{"etc/machine-id", "etc/hostname"} {
		a, _ := os.ReadFile(d.rootfs("deb1", f))
		b, _ := os.ReadFile(d.rootfs("deb2", f))
		if len(strings.TrimSpace(string(b))) == 0 || string(a) == string(b) {
			t.Errorf("%s: deb1 has %q, deb2 %q", f, a, b)
		}
	}
	if keys, _ := filepath.Glob(d.rootfs("deb2", "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("a new container has the template's ssh host keys: %v", keys)
	}
	if keys, _ := filepath.Glob(d.rootfs("deb1", "etc/ssh/ssh_host_*_key")); len(keys) == 0 {
		t.Error("deb1 made no ssh host keys at its first boot")
	}

	// systemd halts on SIGRTMIN+3 and stops its units; with another
	// signal it would be killed after the stop's timeout, units running.
	d.MustSh("echo stop > containers/deb1/ctl")
	d.WantStatus("containers/deb1", "STOPPED", "after stop")
	if !exists(d.rootfs("deb1", "root", "stopped-cleanly")) {
		t.Error("stop did not shut systemd down cleanly: the units were not stopped")
	}
}

// TestDebianStopStateful: stop-stateful and start carry a Debian container
// over: systemd still `running`, the counter continues, nginx answers and
// an ssh connection opened before the checkpoint goes on after it.
func TestDebianStopStateful(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.debianContainer("deb1")
	httpStatus(t, ip)
	ssh := openSSH(t, ip)
	before := CountsPast(t, ip, 10, "before stop-stateful")

	d.MustSh("echo stop-stateful > containers/deb1/ctl")
	d.WantStatus("containers/deb1", "STOPPED", "after stop-stateful")
	t.Logf("stop-stateful: dump %s s, frozen %s s", d.Info("deb1")["dump-seconds"], d.Info("deb1")["criu-frozen-seconds"])
	d.MustSh("echo start > containers/deb1/ctl")
	info := d.Info("deb1")
	t.Logf("start: restore %s s (%s)", info["criu-restore-seconds"], info["restore-mode"])
	countFrom(t, ip, before, "over stop-stateful and start")
	ssh.continueKex(t)
	if line := httpStatus(t, ip); !strings.Contains(line, " 200 ") {
		t.Errorf("nginx after the restore: %q", line)
	}
	d.systemRunning("deb1")
}

// TestDebianSnapshot: a stateful snapshot of a Debian container, restored,
// brings back its processes as they were (the counter goes back) and its
// files (one made after the snapshot is gone).
func TestDebianSnapshot(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.debianContainer("deb1")
	beforeSnapshot := CountsPast(t, ip, 10, "before the snapshot")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/deb1/ctl")
	info := d.Info("deb1")
	t.Logf("snapshot --stateful: %s s, frozen %s s; stored %s bytes", info["last-op-seconds"],
		info["criu-frozen-seconds"], d.snapshotInfo("deb1", "s1")["stored"])
	atSnapshot := Count(t, ip)
	if _, err := d.attach("deb1", "touch", "/root/after-s1"); err != nil {
		t.Fatal(err)
	}
	// 25 counts (5 s) past the snapshot: a restored count is read well
	// within that of the restore's end.
	beforeRestore := CountsPast(t, ip, atSnapshot+25, "after the snapshot")

	d.MustSh("echo 'restore s1' > containers/deb1/ctl")
	t.Logf("restore: %s s", d.Info("deb1")["last-op-seconds"])
	// The processes were dumped between the two counts around the
	// snapshot command; the restore brings back a count from then.
	if n := Count(t, ip); n >= beforeRestore || n < beforeSnapshot {
		t.Errorf("after restore s1 the count is %d; it was %d before the snapshot, %d after it and %d just before the restore",
			n, beforeSnapshot, atSnapshot, beforeRestore)
	}
	if exists(d.rootfs("deb1", "root", "after-s1")) {
		t.Error("a file made after the snapshot is still there after restore s1")
	}
	openSSH(t, ip).continueKex(t)
	d.systemRunning("deb1")
}

// countWatch reads a counter service ten times a second, for as long as
// it runs, keeping every count it gets.
type countWatch struct {
	mu      sync.Mutex
	seen    []int
	stopped atomic.Bool
	wg      sync.WaitGroup
}

func watchCount(ip string) *countWatch {
	w := &countWatch{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for !w.stopped.Load() {
			if n, err := tryCount(ip); err == nil {
				w.mu.Lock()
				w.seen = append(w.seen, n)
				w.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return w
}

func (w *countWatch) stop() {
	w.stopped.Store(true)
	w.wg.Wait()
}

// check fails the test if the count ever went down.
func (w *countWatch) check(t *testing.T, when string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.seen); i++ {
		if w.seen[i] < w.seen[i-1] {
			t.Fatalf("%s: the count went from %d back to %d", when, w.seen[i-1], w.seen[i])
		}
	}
	if len(w.seen) == 0 {
		t.Fatalf("%s: the counter never answered", when)
	}
}

// TestDebianLiveMove: a Debian container moves live to a peer and back;
// its counter never goes backwards, and sshd and nginx answer on both.
func TestDebianLiveMove(t *testing.T) {
	a, b := twoHosts(t)
	ip := a.debianContainer("deb1")
	CountsPast(t, ip, 10, "before the move")

	// The counter is watched all along: a value lower than one seen
	// before means the processes started again somewhere.
	w := watchCount(ip)
	defer w.stop()
	ssh := openSSH(t, ip) // a connection that moves with sshd
	a.MustSh("mv containers/deb1 hosts/tollana/")
	wantMoved(t, "deb1", a, b, "after the move")
	info := b.Info("deb1")
	t.Logf("move there: %s s, downtime %s s", info["move-seconds"], info["downtime-seconds"])
	there := CountsPast(t, ip, 0, "after the move")
	ssh.continueKex(t)
	ssh.close()
	httpStatus(t, ip)
	b.systemRunning("deb1")
	w.check(t, "moving there")
	b.sshIdle("deb1")

	a.MustSh("mv hosts/tollana/deb1 containers/")
	wantMoved(t, "deb1", b, a, "after the move back")
	countFrom(t, ip, there, "over the move back")
	openSSH(t, ip).continueKex(t)
	httpStatus(t, ip)
	a.systemRunning("deb1")
	w.stop()
	w.check(t, "moving back")
}
