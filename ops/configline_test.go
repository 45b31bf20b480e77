package ops

import (
	"os"
	"testing"
)

func TestSetConfigLine(t *testing.T) {
	for _, c := range []struct{ in, key, value, want string }{
		{"", "lxc.a", "1", "lxc.a = 1\n"},
		{"lxc.b = 2\n", "lxc.a", "1", "lxc.b = 2\nlxc.a = 1\n"},
		{"lxc.b = 2", "lxc.a", "1", "lxc.b = 2\nlxc.a = 1\n"}, // no newline at the end
		{"lxc.a = 0\nlxc.b = 2\nlxc.a=3\n", "lxc.a", "1", "lxc.a = 1\nlxc.b = 2\n"},
		{"lxc.a.b = 0\n", "lxc.a", "1", "lxc.a.b = 0\nlxc.a = 1\n"},
		{"# ctrfs.restore-mode = mount-v2\nlxc.b = 2\n", restoreModeKey, modeCompat,
			"# ctrfs.restore-mode = mntns-compat\nlxc.b = 2\n"},
	} {
		if got := string(setConfigLine([]byte(c.in), c.key, c.value)); got != c.want {
			t.Errorf("setConfigLine(%q, %s, %s) = %q; want %q", c.in, c.key, c.value, got, c.want)
		}
	}
}

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
	data, _ := os.ReadFile(m.configPath("c1"))
	if string(data) != "lxc.uts.name = c1\n# ctrfs.restore-mode = mount-v2\n" {
		t.Fatalf("config: %q", data)
	}
}
