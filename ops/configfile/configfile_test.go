package configfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSetConfigLine(t *testing.T) {
	for _, c := range []struct{ in, key, value, want string }{
		{"", "lxc.a", "1", "lxc.a = 1\n"},
		{"lxc.b = 2\n", "lxc.a", "1", "lxc.b = 2\nlxc.a = 1\n"},
		{"lxc.b = 2", "lxc.a", "1", "lxc.b = 2\nlxc.a = 1\n"}, // no newline at the end
		{"lxc.a = 0\nlxc.b = 2\nlxc.a=3\n", "lxc.a", "1", "lxc.a = 1\nlxc.b = 2\n"},
		{"lxc.a.b = 0\n", "lxc.a", "1", "lxc.a.b = 0\nlxc.a = 1\n"},
		{"# ctrfs.restore-mode = mount-v2\nlxc.b = 2\n", "# ctrfs.restore-mode", "mntns-compat",
			"# ctrfs.restore-mode = mntns-compat\nlxc.b = 2\n"},
	} {
		if got := string(SetLine([]byte(c.in), c.key, c.value)); got != c.want {
			t.Errorf("SetLine(%q, %s, %s) = %q; want %q", c.in, c.key, c.value, got, c.want)
		}
	}
}

// A write that fails (here past RLIMIT_FSIZE, as a full disk would) leaves
// the old file: it once renamed the cut copy into place.
func TestWriteAtomicKeepsTheOldFileOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := WriteAtomic(path, []byte("old\n")); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	small := lim
	small.Cur = 16 // Go ignores SIGXFSZ: the write fails with EFBIG
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Fatal(err)
	}
	err := WriteAtomic(path, []byte(strings.Repeat("new config line\n", 10)))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("a write cut short succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("the file is now %q", b)
	}
	if _, err := os.Stat(path + ".ctrfs-new"); !os.IsNotExist(err) {
		t.Fatalf("the cut copy is left: %v", err)
	}
}
