package testenv

import (
	"os"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how the test would have ended
// instead of ending it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = args[0].(string) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = f }

func TestMissingToolSkipsOrFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	NeedTool(r, "go-md2man", "make deps installs it")
	if !strings.Contains(r.skipped, "needs go-md2man (make deps installs it)") || r.failed != "" {
		t.Errorf("without CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	NeedTool(r, "go-md2man", "make deps installs it")
	if r.failed == "" || r.skipped != "" {
		t.Errorf("under CI: skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestPresentToolAndRoot(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	if path := NeedTool(r, "sh", "the system"); path == "" || r.failed != "" || r.skipped != "" {
		t.Errorf("sh: path %q, skipped %q, failed %q", path, r.skipped, r.failed)
	}
	NeedRoot(r, "to test NeedRoot")
	if (os.Geteuid() == 0) != (r.failed == "") {
		t.Errorf("uid %d: NeedRoot failed %q", os.Geteuid(), r.failed)
	}
}

func TestMissingDeviceSkips(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	NeedDevice(r, "/dev/nosuch-ctrfs", "to mount FUSE")
	if !strings.Contains(r.skipped, "needs /dev/nosuch-ctrfs (to mount FUSE)") || r.failed != "" {
		t.Errorf("skipped %q, failed %q", r.skipped, r.failed)
	}
	r = &recorder{TB: t}
	NeedDevice(r, "/dev/null", "to test NeedDevice")
	if r.skipped != "" || r.failed != "" {
		t.Errorf("/dev/null: skipped %q, failed %q", r.skipped, r.failed)
	}
}
