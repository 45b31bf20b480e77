package templates

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/ops/network"
)

// TestDebianAppArmorProfile: where the kernel has AppArmor on, a debian
// container runs under the profile that lets systemd sandbox its
// services; where it has not, its config names no profile (LXC refuses
// one), and a busybox container never gets one.
func TestDebianAppArmorProfile(t *testing.T) {
	old := apparmorEnabledFile
	defer func() { apparmorEnabledFile = old }()
	apparmorEnabledFile = filepath.Join(t.TempDir(), "enabled")
	config := func(tmpl *Template) string {
		return string(tmpl.Config("c1", "/var/lib/lxc/c1/rootfs", network.Network{Bridge: "ctrfsbr0"},
			netip.MustParseAddr("10.89.0.2"), "00:16:3e:00:00:01", time.Unix(0, 0)))
	}
	want := "lxc.apparmor.profile = " + systemdProfile
	for _, c := range []struct {
		enabled string
		tmpl    *Template
		has     bool
	}{
		{"Y\n", debianTemplate, true},
		{"N\n", debianTemplate, false},
		{"", debianTemplate, false}, // no AppArmor module at all
		{"Y\n", busyboxTemplate, false},
	} {
		os.Remove(apparmorEnabledFile)
		if c.enabled != "" {
			if err := os.WriteFile(apparmorEnabledFile, []byte(c.enabled), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := strings.Contains(config(c.tmpl), want); got != c.has {
			t.Errorf("%s template, AppArmor %q: config has %q: %v, want %v", c.tmpl.Name, c.enabled, want, got, c.has)
		}
	}
}
