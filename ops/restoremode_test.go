package ops

import (
	"os"
	"testing"
)

// The restore mode is remembered in the config and read back from it.
func TestRestoreModeRemembered(t *testing.T) {
	m := managerWith(t, "c1")
	if got := m.restoreMode("c1"); got != "" {
		t.Fatalf("mode of a new container: %q", got)
	}
	for _, mode := range []string{modeCompat, modeV2} {
		if err := m.rememberRestoreMode("c1", mode); err != nil {
			t.Fatal(err)
		}
		if got := m.restoreMode("c1"); got != mode {
			t.Fatalf("remembered %s, read %q", mode, got)
		}
	}
	data, _ := os.ReadFile(m.containers.ConfigPath("c1"))
	if string(data) != "lxc.uts.name = c1\n# ctrfs.restore-mode = mount-v2\n" {
		t.Fatalf("config: %q", data)
	}
}
