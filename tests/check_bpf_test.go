package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNamesDeviceProgram: on a cgroup2-only host (as stock Debian 12
// is) systemd enforces a unit's DeviceAllow= with a cgroup device BPF
// program that PID 1 holds, which CRIU cannot dump. With journald's
// DeviceAllow= given back (a drop-in after the template's), `check` names
// the program's type, the unit it serves and the fix, not IPAddressDeny=
// (what it blamed before, sending operators after the wrong setting).
func TestCheckNamesDeviceProgram(t *testing.T) {
	d := startCgroup2Only(t)
	// Privileged: systemd in an unprivileged container may not attach
	// device programs (BPF needs CAP_SYS_ADMIN on the host), so there
	// is nothing for check to name.
	d.MustSh("echo 'create deb1 --template debian --privileged' > ctl")
	dropIn := d.rootfs("deb1", "etc/systemd/system/systemd-journald.service.d/zz-devices.conf")
	if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dropIn, []byte("[Service]\nDeviceAllow=char-* rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.startDebian("deb1")
	d.ShFails("echo check > containers/deb1/ctl", "Operation not supported")
	e := d.Read("containers/deb1/error")
	for _, want := range []string{"cgroup device filter (BPF program type 15", "attached to systemd-journald.service's cgroup",
		"DeviceAllow= (empty) and DevicePolicy=auto", "drop-in for systemd-journald.service"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after check lacks %q:\n%s", want, e)
		}
	}
	if strings.Contains(e, "IPAddressDeny") {
		t.Errorf("error after check blames IPAddressDeny= for a device program:\n%s", e)
	}
	t.Logf("check: %s", e)
	d.WantStatus("containers/deb1", "RUNNING", "after check")

	// Without it, the template's own drop-in leaves nothing to blame.
	if err := os.Remove(dropIn); err != nil {
		t.Fatal(err)
	}
	if _, err := d.attach("deb1", "sh", "-c", "systemctl daemon-reload && systemctl restart systemd-journald"); err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo check > containers/deb1/ctl")
	d.MustSh("echo stop > containers/deb1/ctl")
}
