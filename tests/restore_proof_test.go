package tests

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Issue 19, item 1: no saved state that cannot be restored, and no move
// that can strand a container. A container whose restore must fail (an
// action script of its criu file fails at post-restore, on every host) is
// refused by check and stop-stateful, and a live and a post-copy move of
// it fail leaving it RUNNING on the source: the same processes (PIDs) and
// a client's TCP connection, never a restore from the images. A start of
// saved state that fails keeps the state and says what to try.

// echoConn is a client's TCP connection, held open, to an echo service in
// a container (BusyBox nc running cat for each connection).
type echoConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// echoPort is where startEcho's service listens.
const echoPort = "9090"

// startEcho starts the echo service in the container and connects to it.
func (d *Daemon) startEcho(name, ip string) *echoConn {
	d.t.Helper()
	d.MustSh(fmt.Sprintf("lxc-attach -P %s -n %s -- /bin/sh -c 'setsid nc -ll -p %s -e /bin/cat </dev/null >/dev/null 2>&1 &'",
		d.LXCPath, name, echoPort))
	var conn net.Conn
	waitFor(d.t, "the echo service in "+name, func() bool {
		var err error
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(ip, echoPort), time.Second)
		return err == nil
	})
	e := &echoConn{t: d.t, conn: conn, r: bufio.NewReader(conn)}
	d.t.Cleanup(func() { conn.Close() })
	e.ping("connected")
	return e
}

// ping sends a numbered line and wants it back on the same connection.
func (e *echoConn) ping(when string) {
	e.t.Helper()
	e.n++
	line := fmt.Sprintf("ping %d", e.n)
	e.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintln(e.conn, line); err != nil {
		e.t.Fatalf("the client's connection broke %s: %v", when, err)
	}
	got, err := e.r.ReadString('\n')
	if err != nil || strings.TrimSpace(got) != line {
		e.t.Fatalf("the client's connection %s: got %q, %v; want %q", when, got, err, line)
	}
}

// sameProcesses checks that c1 runs on d with init's PID as before.
func sameProcesses(t *testing.T, d *Daemon, pid, when string) {
	t.Helper()
	d.WantStatus("containers/c1", "RUNNING", when)
	if got := d.Info("c1")["pid"]; got != pid {
		t.Fatalf("%s: c1's init is PID %s, was %s: its processes were replaced", when, got, pid)
	}
}

// failingRestore makes every restore of c1 on d fail, on any host, at
// CRIU's post-restore action (after its tasks were restored, before they
// run), as a cause only a restore meets.
func failingRestore(t *testing.T, d *Daemon) {
	t.Helper()
	criuOptions(d, "restore: action-script "+failingActionScript(t, "post-restore", ""))
}

// TestStopStatefulRefusesUnrestorable: check and stop-stateful of a
// container whose restore fails are refused (EOPNOTSUPP, EIO), naming the
// cause; it runs on, same PIDs, same connection, no saved state. Once it
// restores, stop-stateful and start work as before.
func TestStopStatefulRefusesUnrestorable(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	echo := d.startEcho("c1", ip)
	pid := d.Info("c1")["pid"]
	n := Count(t, ip)
	failingRestore(t, d)

	d.ShFails("echo check > containers/c1/ctl", "Operation not supported")
	e := d.Read("containers/c1/error")
	wantCause(t, e, "action script", "check")
	if !strings.Contains(e, "does not restore") {
		t.Errorf("check's error does not say the restore fails: %s", e)
	}
	sameProcesses(t, d, pid, "after check")
	echo.ping("after check")

	d.ShFails("echo stop-stateful > containers/c1/ctl", "Input/output error")
	e = d.Read("containers/c1/error")
	wantCause(t, e, "action script", "stop-stateful")
	if !strings.Contains(e, "RUNNING") {
		t.Errorf("stop-stateful's error does not say c1 runs: %s", e)
	}
	sameProcesses(t, d, pid, "after the refused stop-stateful")
	if d.Info("c1")["stateful"] != "no" {
		t.Error("a refused stop-stateful left saved state")
	}
	echo.ping("after the refused stop-stateful")
	n = CountsPast(t, ip, n, "after the refused stop-stateful")

	criuOptions(d, "# restores again")
	d.MustSh("echo check > containers/c1/ctl")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "after stop-stateful")
	if d.Info("c1")["rehearsal-restore-attempts"] == "" {
		t.Errorf("stop-stateful reports no restore rehearsal: %v", d.Info("c1"))
	}
	d.MustSh("echo start > containers/c1/ctl")
	echo.ping("over stop-stateful and start")
	countFrom(t, ip, n, "over stop-stateful and start")
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStartFailureOffersFixes: a start whose restore fails keeps the
// saved state until stop, and `error` says what was tried and what to
// change; changed, start works.
func TestStartFailureOffersFixes(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	n := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	failingRestore(t, d)

	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	d.WantStatus("containers/c1", "STOPPED", "after a failed start")
	if d.Info("c1")["stateful"] != "yes" {
		t.Fatal("a failed start dropped the saved state")
	}
	e := d.Read("containers/c1/error")
	wantCause(t, e, "action script", "a failed start")
	for _, want := range []string{"mount-v2", "kept until `stop`", "`start` again", "action-script"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after a failed start lacks %q: %s", want, e)
		}
	}

	criuOptions(d, "# restores again")
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, n, "over the failed start and a good one")
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestMoveTargetRestoreFailsKeepsSource: a live and a post-copy move whose
// restore fails on the target, and would fail on the source too, leave
// c1 RUNNING on the source with the same processes and the client's
// connection, and no copy on the target.
func TestMoveTargetRestoreFailsKeepsSource(t *testing.T) {
	a, b := twoHosts(t)
	ip := a.CreateRunning("c1")
	echo := a.startEcho("c1", ip)
	n := Count(t, ip)
	failingRestore(t, a.Daemon)

	for _, move := range []string{"move tollana", "move tollana --post-copy"} {
		pid := a.Info("c1")["pid"]
		a.ShFails("echo '"+move+"' > containers/c1/ctl", "Input/output error")
		wantCause(t, a.Read("containers/c1/error"), "action script", move)
		stillHere(t, a, b, ip, n)
		sameProcesses(t, a.Daemon, pid, "after "+move)
		echo.ping("after " + move)
		n = Count(t, ip)
	}
	a.MustSh("echo stop > containers/c1/ctl")
}
