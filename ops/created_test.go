package ops

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"ctrfs/ops/network"
	"ctrfs/ops/templates"
)

// What the rest of ops reads back from a template config: the address shown
// while stopped, and the creation time.
func TestTemplateConfigReadBack(t *testing.T) {
	lxcpath := t.TempDir()
	n := network.Network{Bridge: "ctrfsbr0", Subnet: netip.MustParsePrefix("10.0.3.0/24")}
	created := time.Date(2026, 11, 25, 2, 10, 0, 0, time.UTC)
	busybox, err := templates.Lookup("busybox")
	if err != nil {
		t.Fatal(err)
	}
	conf := busybox.Config("c1", filepath.Join(lxcpath, "c1", "rootfs"), n, netip.MustParseAddr("10.0.3.57"), "00:16:3e:aa:bb:cc", created)
	writeConfig(t, lxcpath, "c1", string(conf))
	path := filepath.Join(lxcpath, "c1", "config")
	if got := configuredAddress(path); got != "10.0.3.57" {
		t.Errorf("configuredAddress = %q, want 10.0.3.57", got)
	}
	m := newManager(Config{LXCPath: lxcpath}, context.Background(), nil, nil, nil)
	if got := m.createdTimes.at(path); !got.Equal(created) {
		t.Errorf("created = %v, want %v", got, created)
	}
}
