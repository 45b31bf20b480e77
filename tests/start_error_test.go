package tests

import (
	"os"
	"strings"
	"testing"
)

// TestStartErrorNamesCause: a container that LXC cannot start (here its
// init, /sbin/init, is gone from the rootfs) fails `start` with an
// `error` that names the cause LXC logged first, not only LXC's last
// words ("Failed to spawn container", which every cause ends with); it
// stays STOPPED, and starts once the cause is fixed.
func TestStartErrorNamesCause(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.MustSh("mkdir containers/c1")
	init := d.rootfs("c1", "sbin", "init")
	if err := os.Rename(init, init+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sh("echo start > containers/c1/ctl"); err == nil {
		t.Fatal("a container without its init started")
	}
	e := d.Read("containers", "c1", "error")
	if !strings.Contains(e, "/sbin/init") {
		t.Errorf("error does not name the cause (LXC's log does):\n%s\nlog:\n%s", e, d.Read("containers", "c1", "log"))
	}
	d.WantStatus("containers/c1", "STOPPED", "after a start that failed")
	if err := os.Rename(init+".away", init); err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo start > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after the cause was fixed")
	d.MustSh("echo stop > containers/c1/ctl")
}
