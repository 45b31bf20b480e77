package savedstate

import (
	"os"
	"path/filepath"
	"testing"

	"ctrfs/ops/lxcpath"
)

// The restore mode is remembered in the config and read back from it.
func TestRestoreModeRemembered(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c1", "config"), []byte("lxc.uts.name = c1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &Keeper{containers: lxcpath.New(dir, "", "", "")}
	if got := m.RestoreMode("c1"); got != "" {
		t.Fatalf("mode of a new container: %q", got)
	}
	for _, mode := range []string{ModeCompat, ModeV2} {
		if err := m.RememberRestoreMode("c1", mode); err != nil {
			t.Fatal(err)
		}
		if got := m.RestoreMode("c1"); got != mode {
			t.Fatalf("remembered %s, read %q", mode, got)
		}
	}
	data, _ := os.ReadFile(m.containers.ConfigPath("c1"))
	if string(data) != "lxc.uts.name = c1\n# ctrfs.restore-mode = mount-v2\n" {
		t.Fatalf("config: %q", data)
	}
}
