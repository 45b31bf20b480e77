package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// attachDaemon starts a long-running process in the container through
// lxc-attach, from a shell that first runs prepare (say, opens a file),
// as an operator would: the process's stdio is the container's /dev/null
// and it leads a session of its own, so that only what prepare did can
// stand in CRIU's way. It returns once the process runs.
func (d *Daemon) attachDaemon(name, prepare, command, marker string) {
	d.t.Helper()
	d.MustSh(fmt.Sprintf("%s lxc-attach -P %s -n %s -- /bin/sh -c 'setsid %s </dev/null >/dev/null 2>&1 &'",
		prepare, d.LXCPath, name, command))
	waitFor(d.t, marker+" in "+name, func() bool {
		out, _ := d.Sh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- ps")
		return strings.Contains(out, marker)
	})
}

// killAttached ends what attachDaemon started: the process whose command
// line holds marker, by its PID in the container.
func (d *Daemon) killAttached(name, marker string) {
	d.t.Helper()
	ps := d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- ps -o pid,args")
	for _, line := range strings.Split(ps, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, marker) {
			d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- kill " + f[0])
		}
	}
	waitFor(d.t, marker+" gone from "+name, func() bool {
		out, _ := d.Sh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- ps")
		return !strings.Contains(out, marker)
	})
}

// TestCheckCommonBlockers (issue 18, item 7): `check` names the cause and
// the fix of two common blockers, each made with a real container, and
// the container runs on: a process started through lxc-attach from a
// shell that held a host file open, which it inherits (CRIU: "Can't
// lookup mount=N for fd=M path=..."), and a process in a user namespace
// of its own, as systemd's PrivateUsers= makes (CRIU: "Can't dump nested
// user namespace").
func TestCheckCommonBlockers(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	held := filepath.Join(t.TempDir(), "held")
	if err := os.WriteFile(held, []byte("a file of the host\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	d.attachDaemon("c1", "exec 7<"+held+";", "sleep 100001", "sleep 100001")
	before := Count(t, ip)
	d.ShFails("echo check > containers/c1/ctl", "Operation not supported")
	e := d.Read("containers/c1/error")
	for _, want := range []string{held, "lxc-attach", "inside the container", "7>&-"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after check with an inherited host file lacks %q: %s", want, e)
		}
	}
	n := CountsPast(t, ip, before, "after check with an inherited host file")
	d.killAttached("c1", "sleep 100001")
	d.MustSh("echo check > containers/c1/ctl") // it was that process

	d.attachDaemon("c1", "", "unshare -U sleep 100002", "sleep 100002")
	d.ShFails("echo check > containers/c1/ctl", "Operation not supported")
	e = d.Read("containers/c1/error")
	for _, want := range []string{"user namespace of its own", "PrivateUsers=", "sleep"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after check with a nested user namespace lacks %q: %s", want, e)
		}
	}
	CountsPast(t, ip, n, "after check with a nested user namespace")
	d.WantStatus("containers/c1", "RUNNING", "after check")
	d.MustSh("echo stop > containers/c1/ctl")
}
