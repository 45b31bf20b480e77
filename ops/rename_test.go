package ops

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRenameInConfig: the hostname and every path in the container's
// directory follow the new name; a name that the old one is a prefix of,
// paths elsewhere and comments stay; a second run changes nothing.
func TestRenameInConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	// Each line of the config, and what the rename makes of it ("" where
	// it stays as it is).
	lines := []struct{ before, after string }{
		{"# ctrfs.created = 2026-01-01T00:00:00Z", ""},
		{"# moved from /lxc/c4/rootfs once", ""},
		{"lxc.uts.name = c4", "lxc.uts.name = c5"},
		{"lxc.rootfs.path = dir:/lxc/c4/rootfs", "lxc.rootfs.path = dir:/lxc/c5/rootfs"},
		{"lxc.mount.fstab = /lxc/c4/fstab", "lxc.mount.fstab = /lxc/c5/fstab"},
		{"lxc.mount.entry = /lxc/c4n/shared srv none bind 0 0", ""},
		{"lxc.hook.pre-start = /srv/c4/hook", ""},
		{"lxc.log.file=/lxc/c4", "lxc.log.file = /lxc/c5"},
	}
	var config, want string
	for _, l := range lines {
		config += l.before + "\n"
		if l.after == "" {
			l.after = l.before
		}
		want += l.after + "\n"
	}
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := renameInConfig(path, "/lxc/c4", "/lxc/c5", "c5"); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Fatalf("run %d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
}
